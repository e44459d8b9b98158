"""Every word a notice says, in one place: Vietnamese first (the default) and English.

Times are shown in Vietnam time (UTC+7, no daylight saving since 1975), numbers with the
Vietnamese conventions (decimal comma, "." between thousands: ``12,5 Mbit/s``,
``1.250 ms``). Anything that came from an agent or a notice body is passed through
:func:`clean` (``linewatch.text.printable``) before it is shown.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

from linewatch.text import printable

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"
#: Asia/Ho_Chi_Minh: UTC+7 all year (fixed, so no tz database is needed)
VN_TZ = timezone(timedelta(hours=7), "ICT")

KIND_NAMES: dict[str, dict[str, str]] = {
    "vi": {
        "line_down": "Mất kết nối đường truyền",
        "site_unreachable": "Không liên lạc được với điểm đo",
        "slow_line": "Tốc độ thấp hơn cam kết",
        "high_latency": "Độ trễ cao",
        "packet_loss": "Mất gói cao",
        "lan_fault": "Lỗi mạng nội bộ / máy tính",
        "service_unreachable": "Không truy cập được dịch vụ công",
        "availability": "Độ khả dụng tháng dưới mức tối thiểu",
    },
    "en": {
        "line_down": "Line down",
        "site_unreachable": "Site unreachable",
        "slow_line": "Speed below contract",
        "high_latency": "High latency",
        "packet_loss": "High packet loss",
        "lan_fault": "LAN / PC fault",
        "service_unreachable": "Public service unreachable",
        "availability": "Monthly availability below minimum",
    },
}

#: "20 điểm của VNPT <phrase>" — what a group of sites has in common.
KIND_PHRASES: dict[str, dict[str, str]] = {
    "vi": {
        "line_down": "mất kết nối",
        "site_unreachable": "không liên lạc được",
        "slow_line": "có tốc độ thấp hơn cam kết",
        "high_latency": "có độ trễ cao",
        "packet_loss": "bị mất gói cao",
        "lan_fault": "bị lỗi mạng nội bộ / máy tính",
        "service_unreachable": "không truy cập được dịch vụ công",
        "availability": "có độ khả dụng tháng dưới mức tối thiểu",
    },
    "en": {
        "line_down": "are down",
        "site_unreachable": "cannot be reached",
        "slow_line": "are slower than contracted",
        "high_latency": "have high latency",
        "packet_loss": "have high packet loss",
        "lan_fault": "have a LAN / PC fault",
        "service_unreachable": "cannot reach the public services",
        "availability": "are below the monthly availability minimum",
    },
}

CAUSE_NAMES: dict[str, dict[str, str]] = {
    "vi": {"line": "đường truyền của nhà mạng", "unknown": "chưa xác định", "power_or_pc": "mất điện hoặc máy đo tắt",
           "lan": "mạng nội bộ của điểm", "service": "dịch vụ ở xa"},
    "en": {"line": "the operator's line", "unknown": "not yet known", "power_or_pc": "power cut or probe PC off",
           "lan": "the site's LAN", "service": "the remote service"},
}

#: Event words: what happened to the incident, as a status tag.
EVENT_WORDS: dict[str, dict[str, str]] = {
    "vi": {"opened": "mở", "resolved": "đã khắc phục", "escalated": "chuyển cấp", "refined": "cập nhật",
           "digest": "tổng hợp", "opened_resolved": "đã xảy ra và đã khắc phục"},
    "en": {"opened": "opened", "resolved": "resolved", "escalated": "escalated", "refined": "updated",
           "digest": "digest", "opened_resolved": "occurred and was resolved"},
}

STATE_NAMES: dict[str, dict[str, str]] = {
    "vi": {"open": "đang xảy ra", "acknowledged": "đã tiếp nhận", "recovering": "đang hồi phục", "closed": "đã đóng"},
    "en": {"open": "open", "acknowledged": "acknowledged", "recovering": "recovering", "closed": "closed"},
}

#: Evidence columns shown in tables (the CSV has every key).
EVIDENCE_COLUMNS: dict[str, dict[str, str]] = {
    "vi": {"at": "Thời điểm", "kind": "Loại đo", "ok": "Kết quả", "target": "Đích đo",
           "download_mbps": "Tải xuống", "upload_mbps": "Tải lên", "rtt_avg_ms": "Độ trễ TB",
           "loss_pct": "Mất gói", "state": "Trạng thái"},
    "en": {"at": "Time", "kind": "Probe", "ok": "Result", "target": "Target", "download_mbps": "Download",
           "upload_mbps": "Upload", "rtt_avg_ms": "Avg RTT", "loss_pct": "Loss", "state": "State"},
}

#: Summary keys shown in the incident block: (label, unit kind)
SUMMARY_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "vi": {
        "contracted_down_mbps": ("Tốc độ tải xuống cam kết", "mbps"),
        "threshold_down_mbps": ("Ngưỡng tối thiểu", "mbps"),
        "measured_down_mbps": ("Tốc độ tải xuống đo được", "mbps"),
        "contracted_up_mbps": ("Tốc độ tải lên cam kết", "mbps"),
        "measured_up_mbps": ("Tốc độ tải lên đo được", "mbps"),
        "min_speed_ratio": ("Tỷ lệ tối thiểu so với cam kết", "ratio"),
        "max_latency_ms": ("Độ trễ tối đa cho phép", "ms"),
        "rtt_avg_ms": ("Độ trễ trung bình đo được", "ms"),
        "loss_pct": ("Tỷ lệ mất gói", "pct"),
        "max_loss_pct": ("Tỷ lệ mất gói tối đa cho phép", "pct"),
        "availability_pct": ("Độ khả dụng đo được", "pct"),
        "min_availability_pct": ("Độ khả dụng tối thiểu", "pct"),
        "down_s": ("Thời gian gián đoạn", "duration"),
        "tests_low": ("Số lần đo không đạt", "count"),
        "tests_seen": ("Số lần đo", "count"),
    },
    "en": {
        "contracted_down_mbps": ("Contracted download", "mbps"),
        "threshold_down_mbps": ("Minimum accepted", "mbps"),
        "measured_down_mbps": ("Measured download", "mbps"),
        "contracted_up_mbps": ("Contracted upload", "mbps"),
        "measured_up_mbps": ("Measured upload", "mbps"),
        "min_speed_ratio": ("Minimum ratio of contract", "ratio"),
        "max_latency_ms": ("Maximum latency allowed", "ms"),
        "rtt_avg_ms": ("Measured average latency", "ms"),
        "loss_pct": ("Packet loss", "pct"),
        "max_loss_pct": ("Maximum packet loss allowed", "pct"),
        "availability_pct": ("Measured availability", "pct"),
        "min_availability_pct": ("Minimum availability", "pct"),
        "down_s": ("Time down", "duration"),
        "tests_low": ("Tests below threshold", "count"),
        "tests_seen": ("Tests", "count"),
    },
}

_MESSAGES: dict[str, tuple[str, str]] = {
    # subjects
    "subj_one": ("[linewatch] Sự cố #{id}: {kind} — {where}", "[linewatch] Incident #{id}: {kind} — {where}"),
    "subj_resolved": ("[linewatch] Đã khắc phục sự cố #{id}: {kind} — {where}",
                      "[linewatch] Resolved incident #{id}: {kind} — {where}"),
    "subj_escalated": ("[linewatch] Chuyển cấp sự cố #{id}: {kind} — {where}",
                       "[linewatch] Escalated incident #{id}: {kind} — {where}"),
    "subj_refined": ("[linewatch] Cập nhật sự cố #{id}: {kind} — {where}",
                     "[linewatch] Updated incident #{id}: {kind} — {where}"),
    "subj_opened_resolved": ("[linewatch] Sự cố #{id} đã xảy ra và đã khắc phục: {kind} — {where}",
                             "[linewatch] Incident #{id} occurred and was resolved: {kind} — {where}"),
    "subj_digest": ("[linewatch] Bản tổng hợp sự cố {date}", "[linewatch] Incident digest {date}"),
    "subj_group_same": ("[linewatch] {n} điểm của {isp} {phrase}", "[linewatch] {n} {isp} sites {phrase}"),
    "subj_group_kind": ("[linewatch] {n} điểm: {kind}", "[linewatch] {n} sites: {kind}"),
    "subj_group": ("[linewatch] {n} thông báo sự cố ({sites} điểm)", "[linewatch] {n} incident notices ({sites} sites)"),
    "group_resolved_suffix": (" — đã khắc phục", " — resolved"),
    "group_escalated_suffix": (" — chuyển cấp", " — escalated"),
    # body
    "greeting": ("Kính gửi {name},", "Dear {name},"),
    "greeting_anon": ("Kính gửi Quý đơn vị,", "Dear colleagues,"),
    "intro_opened": ("linewatch phát hiện sự cố sau trên đường truyền do Quý đơn vị cung cấp hoặc quản lý:",
                     "linewatch detected the following problem on a line you provide or manage:"),
    "intro_resolved": ("Sự cố sau đã được khắc phục (đo lại đạt yêu cầu):",
                       "The following problem has been resolved (measured good again):"),
    "intro_escalated": ("Sự cố sau chưa được xác nhận tiếp nhận trong thời hạn và được chuyển cấp:",
                        "The following problem was not acknowledged in time and is escalated:"),
    "intro_refined": ("Thông tin về sự cố sau đã được cập nhật:", "The following incident was updated:"),
    "intro_opened_resolved": ("Sự cố sau đã xảy ra và đã được khắc phục:",
                              "The following problem occurred and has been resolved:"),
    "intro_digest": ("Bản tổng hợp sự cố:", "Incident digest:"),
    "intro_group": ("linewatch gửi Quý đơn vị {n} thông báo sự cố ({sites} điểm đo):",
                    "linewatch has {n} incident notices for you ({sites} sites):"),
    "incident_head": ("Sự cố #{id}: {kind} [{event}]", "Incident #{id}: {kind} [{event}]"),
    "f_site": ("Điểm đo", "Site"),
    "f_province": ("Tỉnh", "Province"),
    "f_line": ("Đường truyền", "Line"),
    "f_target": ("Đích đo", "Target"),
    "f_cause": ("Nguyên nhân (ước đoán)", "Likely cause"),
    "f_state": ("Trạng thái", "State"),
    "f_opened": ("Bắt đầu", "Began"),
    "f_detected": ("Phát hiện", "Detected"),
    "f_resolved": ("Khắc phục", "Resolved"),
    "f_duration": ("Thời gian gián đoạn", "Duration"),
    "f_acked": ("Đã tiếp nhận", "Acknowledged"),
    "f_since": ("Từ", "Since"),
    "f_kind": ("Sự cố", "Problem"),
    "f_event": ("Thông báo", "Notice"),
    "f_escalation": ("Cấp chuyển", "Escalation level"),
    "f_late": ("Ghi chú", "Note"),
    "late_note": ("dữ liệu đến muộn (máy đo mất kết nối rồi gửi bù)", "data arrived late (the probe sent its backlog)"),
    "acked_by": ("{by} lúc {at}", "{by} at {at}"),
    "ack_line": ("Xác nhận đã tiếp nhận sự cố #{id}: {url}", "Acknowledge incident #{id}: {url}"),
    "ack_button": ("Xác nhận đã tiếp nhận", "Acknowledge"),
    "ack_hint": ("Vui lòng bấm liên kết để xác nhận Quý đơn vị đã tiếp nhận và đang xử lý (liên kết có hạn {days} ngày).",
                 "Please open the link to acknowledge that you are handling it (valid for {days} days)."),
    "evidence_head": ("Số liệu đo (giờ Việt Nam):", "Measurements (Vietnam time):"),
    "evidence_more": ("... và {n} dòng khác (xem tệp CSV đính kèm)", "... and {n} more rows (see the attached CSV)"),
    "evidence_none": ("(không có số liệu đo kèm theo)", "(no measurements attached)"),
    "summary_head": ("Tóm tắt", "Summary"),
    "csv_note": ("Tệp đính kèm {file}: toàn bộ số liệu đo (UTF-8, mở được bằng Excel).",
                 "Attached {file}: every measurement row (UTF-8, opens in Excel)."),
    "footer": ("Thư này do hệ thống giám sát đường truyền linewatch gửi tự động. Mã thông báo: {ids}.",
               "This message was sent automatically by the linewatch line monitor. Notice ids: {ids}."),
    "ok_yes": ("đạt", "ok"),
    "ok_no": ("lỗi", "failed"),
    "and_more": ("... và {n} điểm khác", "... and {n} more sites"),
    "chat_ack": ("Xác nhận: {url}", "Acknowledge: {url}"),
    "chat_group_head": ("{n} thông báo sự cố:", "{n} incident notices:"),
    # the acknowledgement page
    "page_title": ("Xác nhận tiếp nhận sự cố #{id}", "Acknowledge incident #{id}"),
    "page_name": ("Họ tên người tiếp nhận", "Your name"),
    "page_note": ("Ghi chú (không bắt buộc)", "Note (optional)"),
    "page_done": ("Đã ghi nhận: sự cố #{id} đã được {by} xác nhận tiếp nhận lúc {at}.",
                  "Recorded: incident #{id} acknowledged by {by} at {at}."),
    "page_already": ("Sự cố #{id} đã được xác nhận trước đó bởi {by} lúc {at}; không thay đổi gì.",
                     "Incident #{id} was already acknowledged by {by} at {at}; nothing changed."),
    "page_closed": ("Sự cố #{id} đã đóng; không cần xác nhận nữa.", "Incident #{id} is closed; nothing to acknowledge."),
    "page_refused": ("Liên kết không hợp lệ", "Invalid link"),
    "page_not_found": ("Không tìm thấy", "Not found"),
    "page_no_incident": ("Không có sự cố #{id}.", "There is no incident #{id}."),
    "page_bad_request": ("Yêu cầu không hợp lệ", "Bad request"),
    "reason_forged": ("Chữ ký của liên kết không đúng (liên kết bị sửa hoặc giả mạo).",
                      "The link's signature is wrong (the link was altered or forged)."),
    "reason_expired": ("Liên kết đã hết hạn; hãy dùng liên kết trong thư mới nhất hoặc liên hệ Sở/Trung tâm CNTT.",
                       "The link has expired; use the link of the latest message or contact the IT office."),
    "reason_malformed": ("Liên kết không đầy đủ hoặc sai định dạng (có thể bị cắt khi sao chép).",
                         "The link is incomplete or malformed (perhaps cut when copied)."),
}


def lang_of(lang: str | None) -> str:
    return lang if lang in LANGS else DEFAULT_LANG


def t(key: str, lang: str = DEFAULT_LANG, **kw: Any) -> str:
    vi, en = _MESSAGES[key]
    s = en if lang == "en" else vi
    return s.format(**kw) if kw else s


def both(key: str, **kw: Any) -> str:
    """Vietnamese, then English: "… / …" (error pages, where the reader may be either)."""
    return f"{t(key, 'vi', **kw)} / {t(key, 'en', **kw)}"


def clean(v: Any, max_len: int | None = 200) -> str:
    """Any value from a notice body or an agent, as one printable line."""
    if v is None:
        return ""
    return printable(str(v), max_len)


def kind_name(kind: Any, lang: str = DEFAULT_LANG) -> str:
    return KIND_NAMES[lang_of(lang)].get(str(kind), clean(kind, 60) or "?")


def kind_phrase(kind: Any, lang: str = DEFAULT_LANG) -> str:
    return KIND_PHRASES[lang_of(lang)].get(str(kind), kind_name(kind, lang).lower())


def cause_name(cause: Any, lang: str = DEFAULT_LANG) -> str:
    return CAUSE_NAMES[lang_of(lang)].get(str(cause), clean(cause, 60))


def event_word(event: str, lang: str = DEFAULT_LANG) -> str:
    return EVENT_WORDS[lang_of(lang)].get(event, clean(event, 30))


def state_name(state: Any, lang: str = DEFAULT_LANG) -> str:
    return STATE_NAMES[lang_of(lang)].get(str(state), clean(state, 30))


def _ts(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    if not -62135596800 < v < 253402300799:  # datetime's range
        return None
    return float(v)


def fmt_time(ts: Any, lang: str = DEFAULT_LANG) -> str:
    """``14:05:09 ngày 23/11/2026`` (Vietnam time); "" for a missing time."""
    v = _ts(ts)
    if v is None:
        return ""
    d = datetime.fromtimestamp(v, VN_TZ)
    return d.strftime("%H:%M:%S ngày %d/%m/%Y" if lang != "en" else "%H:%M:%S on %d/%m/%Y")


def fmt_time_short(ts: Any) -> str:
    """``14:05 23/11`` (tables, chat)."""
    v = _ts(ts)
    return "" if v is None else datetime.fromtimestamp(v, VN_TZ).strftime("%H:%M %d/%m")


def fmt_date(ts: Any) -> str:
    v = _ts(ts)
    return "" if v is None else datetime.fromtimestamp(v, VN_TZ).strftime("%d/%m/%Y")


def iso_vn(ts: Any) -> str:
    v = _ts(ts)
    return "" if v is None else datetime.fromtimestamp(v, VN_TZ).isoformat(timespec="seconds")


def fmt_duration(seconds: Any, lang: str = DEFAULT_LANG) -> str:
    """``1 giờ 5 phút``, ``45 giây``, ``2 ngày 3 giờ`` (the two largest units)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return ""
    s = int(round(max(0.0, float(seconds))))
    units = (("ngày", "d", 86400), ("giờ", "h", 3600), ("phút", "min", 60), ("giây", "s", 1))
    parts = []
    for vi, en, n in units:
        q, s = divmod(s, n)
        if q:
            parts.append(f"{q} {en if lang == 'en' else vi}")
    if not parts:
        return "0 giây" if lang != "en" else "0 s"
    return " ".join(parts[:2])


def fmt_num(v: Any, digits: int = 1, lang: str = DEFAULT_LANG) -> str:
    """12.5 -> ``12,5`` (vi) / ``12.5`` (en); 1250 -> ``1.250`` / ``1,250``; trailing zeros dropped."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return clean(v, 40)
    if not math.isfinite(v):
        return "—"
    s = f"{v:,.{digits}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s in ("-0", ""):
        s = "0"
    if lang == "en":
        return s
    return s.translate(str.maketrans({",": ".", ".": ","}))


def fmt_value(v: Any, unit: str, lang: str = DEFAULT_LANG) -> str:
    if v is None:
        return ""
    if unit == "mbps":
        return f"{fmt_num(v, 1, lang)} Mbit/s"
    if unit == "ms":
        return f"{fmt_num(v, 1, lang)} ms"
    if unit == "pct":
        return f"{fmt_num(v, 2, lang)} %"
    if unit == "ratio":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return f"{fmt_num(v * 100, 0, lang)} %"
        return clean(v, 40)
    if unit == "duration":
        return fmt_duration(v, lang)
    if unit == "count":
        return fmt_num(v, 0, lang)
    return fmt_num(v, 2, lang) if isinstance(v, (int, float)) and not isinstance(v, bool) else clean(v, 80)


def evidence_cell(key: str, v: Any, lang: str = DEFAULT_LANG) -> str:
    """One evidence value as shown in a table."""
    if v is None:
        return ""
    if key == "at":
        return fmt_time_short(v) if _ts(v) is not None else clean(v, 30)
    if key == "ok":
        return t("ok_yes", lang) if v is True else t("ok_no", lang) if v is False else clean(v, 20)
    if key in ("download_mbps", "upload_mbps"):
        return fmt_value(v, "mbps", lang)
    if key == "rtt_avg_ms":
        return fmt_value(v, "ms", lang)
    if key == "loss_pct":
        return fmt_value(v, "pct", lang)
    return clean(v, 60)


def where(inc: dict[str, Any]) -> str:
    """``UBND phường X (21583), vnpt-fiber (VNPT)``"""
    site = clean(inc.get("site"), 40)
    name = clean(inc.get("site_name"), 120)
    out = f"{name} ({site})" if name and name != site else site
    line = clean(inc.get("line"), 40)
    if line:
        isp = clean(inc.get("isp"), 40)
        out += f", {line} ({isp})" if isp else f", {line}"
    return out


def site_label(inc: dict[str, Any]) -> str:
    site = clean(inc.get("site"), 40)
    name = clean(inc.get("site_name"), 120)
    return f"{name} ({site})" if name and name != site else site


def line_label(inc: dict[str, Any]) -> str:
    line = clean(inc.get("line"), 40)
    if not line:
        return ""
    isp = clean(inc.get("isp"), 40)
    return f"{line} ({isp})" if isp else line

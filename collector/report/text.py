"""Every word of the monthly reports, in Vietnamese (officials read them), numbers and dates in
Vietnamese conventions (1.234,5; ngày 05 tháng 01 năm 2026), times in Vietnam time. The
incident and unit terms are the notifications' (collector/notify/text.py), so a mail and a
report name a thing the same way. Renderers lay out; they do not word.

Longer than 400 lines on purpose: it is the reports' whole vocabulary (shared terms, then the
XLSX's and the DOCX's sections); splitting it would scatter the wording officials proofread."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ..notify.text import VN_TZ, fmt_duration, fmt_num, kind_name, state_name  # noqa: F401
from .model import LineFigures, Period, Shortfall, SiteFigures, Verdict

NOT_ENOUGH = "Chưa đủ dữ liệu"
NO_DATA = "Không có số liệu đo"
YES, NO = "Có", "Không"

VERDICTS: dict[str, str] = {
    "pass": "Đạt",
    "fail": "Không đạt",
    "insufficient": NOT_ENOUGH,
    "none": NO_DATA,
}

LINE_KINDS = {"internet": "Internet", "tslcd": "TSLCD"}

CAUSES = {
    "line": "đường truyền", "lan": "mạng nội bộ", "service": "dịch vụ", "power_or_pc": "mất điện / máy tính",
    "unknown": "chưa rõ", "agent": "máy đo",
}

ROUTES = {"operator": "Nhà mạng", "it_office": "Cơ quan CNTT"}

LAN_SOURCES = {"measured": "đo được", "declared": "khai báo", "unknown": "chưa rõ"}

KIND_WORDS = {
    "latency": "đo độ trễ", "bandwidth": "đo tốc độ", "dns": "phân giải tên miền", "http": "truy cập dịch vụ",
    "reach": "theo dõi kết nối",
}

#: Sheet names (Excel allows 31 characters, no []:*?/\).
SHEETS = {
    "form": "Biểu số liệu hạ tầng",
    "operator": "Nhà mạng",
    "short": "Đơn vị chưa đạt",
    "completeness": "Độ đầy đủ số liệu",
    "incidents": "Sự cố",
    "basis": "Truy vết số liệu",
    "notes": "Ghi chú",
}


def vn(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, VN_TZ)


def month_label(p: Period) -> str:
    """``tháng 10 năm 2026``."""
    return f"tháng {p.mon:02d} năm {p.year}"


def place_date(place: str, ts: float) -> str:
    """``Quy Nhơn, ngày 05 tháng 01 năm 2026`` (Nghị định 30/2020: day and month < 10 get a 0)."""
    d = vn(ts)
    s = f"ngày {d.day:02d} tháng {d.month:02d} năm {d.year}"
    return f"{place}, {s}" if place else s.capitalize()


def date(ts: float | None) -> str:
    return "" if ts is None else vn(ts).strftime("%d/%m/%Y")


def time_(ts: float | None) -> str:
    """``14:05 23/11/2026`` (Vietnam time)."""
    return "" if ts is None else vn(ts).strftime("%H:%M %d/%m/%Y")


def num(v: float | int | None, digits: int = 1) -> str:
    return "" if v is None else fmt_num(v, digits)


def money(v: float | None) -> str:
    """``330.000`` (đồng)."""
    return "" if v is None else fmt_num(round(v), 0)


def pct(v: float | None, digits: int = 1) -> str:
    """A fraction 0..1 as ``85,3 %``."""
    return "" if v is None else f"{fmt_num(100 * v, digits)} %"


def hours(seconds: float | None) -> str:
    return "" if seconds is None else fmt_num(seconds / 3600, 1)


def duration(seconds: float | None) -> str:
    return "" if seconds is None else fmt_duration(seconds)


def verdict(v: Verdict) -> str:
    return VERDICTS.get(v, v)


def yes_no(v: bool | None) -> str:
    return "" if v is None else (YES if v else NO)


def speed_pair(ln: LineFigures) -> str:
    """``150/150`` (contracted down/up, Mbit/s)."""
    return f"{num(ln.down.contracted_mbps, 0)}/{num(ln.up.contracted_mbps, 0)}"


def line_name(ln: LineFigures) -> str:
    """``VNPT Internet (vnpt-fiber)``."""
    return f"{ln.isp} {LINE_KINDS.get(ln.kind, ln.kind)} ({ln.line})"


def shortfall(s: Shortfall, site: SiteFigures | None = None) -> str:
    """One reason a unit falls short, with its numbers, as the IT office writes it."""
    d = s.detail
    if s.code == "computers_fewer_than_staff":
        return f"Số máy tính ({d['computers']}) ít hơn số CBCCVC ({d['staff']}), thiếu {d['staff'] - d['computers']}"
    if s.code == "no_lan":
        return "Không có mạng nội bộ (LAN)" + (" (theo số liệu đo)" if d.get("source") == "measured" else "")
    if s.code == "line_below_minimum":
        return (f"Đường truyền {d['line_name']}: tốc độ trung bình {d['direction']} {num(d['mean_mbps'])} Mbit/s, "
                f"bằng {pct(d['ratio'])} tốc độ cam kết {num(d['contracted_mbps'], 0)} Mbit/s "
                f"(yêu cầu ≥ {pct(d['min_ratio'], 0)}, QCVN 34:2022/BTTTT)")
    if s.code == "availability_below_minimum":
        return (f"Đường truyền {d['line_name']}: độ khả dụng {num(d['availability_pct'], 2)} % "
                f"(yêu cầu ≥ {num(d['min_pct'], 2)} %), mất kết nối {duration(d['down_s'])}")
    if s.code == "no_measurements":
        return "Không có số liệu đo trong tháng (chưa lắp hoặc máy đo không hoạt động)"
    return s.code


def direction(d: str) -> str:
    return {"down": "tải xuống", "up": "tải lên"}.get(d, d)


def insufficient(what: str) -> str:
    words = {"speed": "tốc độ", "latency": "độ trễ", "availability": "độ khả dụng"}
    return f"{NOT_ENOUGH} ({words.get(what, what)})"


def report_title(p: Period) -> str:
    return f"Kết quả đo chất lượng đường truyền và hạ tầng CNTT của cấp xã {month_label(p)}"


def file_stem(p: Period, part: str) -> str:
    """File names without diacritics (mail clients, Windows shares): ``bao-cao-2026-10-tong-hop``."""
    return f"bao-cao-{p.month}-{part}"


def ascii_slug(s: str) -> str:
    import unicodedata
    t = unicodedata.normalize("NFD", s.replace("Đ", "D").replace("đ", "d"))
    t = "".join(c for c in t if not unicodedata.combining(c))
    out = "".join(c.lower() if c.isalnum() else "-" for c in t)
    return "-".join(p for p in out.split("-") if p) or "x"


def any_text(v: Any) -> str:
    return "" if v is None else str(v)


# -- docx
# The cover report (Nghị định 30/2020/NĐ-CP, Phụ lục I) and its charts.

NATIONAL_TITLE = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"
DOC_KIND = "BÁO CÁO"
RECIPIENTS_HEAD = "Nơi nhận:"
AS_ABOVE = "Như trên"
LEGAL_BASIS = (
    "Căn cứ Quy chuẩn kỹ thuật quốc gia QCVN 34:2022/BTTTT về chất lượng dịch vụ truy nhập Internet băng rộng "
    "cố định mặt đất;",
    "Căn cứ Điều 9 Thông tư số 06/2026/TT-BKHCN của Bộ Khoa học và Công nghệ;",
)
HEAD_TOTALS = "I. KẾT QUẢ CHUNG"
HEAD_PROVINCES = "II. KẾT QUẢ ĐO TỐC ĐỘ THEO ĐỊA BÀN"
HEAD_SHORT = "III. ĐƠN VỊ CHƯA ĐẢM BẢO HẠ TẦNG CÔNG NGHỆ THÔNG TIN CƠ BẢN"
HEAD_SHORT_OPERATOR = "III. ĐƯỜNG TRUYỀN CHƯA ĐẠT YÊU CẦU"
HEAD_INCIDENTS = "IV. SỰ CỐ TRONG THÁNG"
HEAD_PROPOSALS = "V. ĐỀ XUẤT, KIẾN NGHỊ"
NONE_SHORT = "Không có đơn vị nào chưa đảm bảo hạ tầng công nghệ thông tin cơ bản."
NONE_SHORT_OPERATOR = "Không có đường truyền nào chưa đạt yêu cầu."
NONE_INCIDENTS = "Không có sự cố nào trong tháng."
NONE_PROPOSALS = "Không có."
NONE_SITES = "Không có đơn vị nào trong phạm vi báo cáo."
SITE_INCIDENTS = "Sự cố tại điểm đo (không thuộc một đường truyền)"
PROPOSE_OPERATORS = "Đề nghị các doanh nghiệp viễn thông kiểm tra, khắc phục các đường truyền chưa đạt yêu cầu nêu trên."
PROPOSE_UNITS = ("Đề nghị các đơn vị chưa đảm bảo hạ tầng công nghệ thông tin cơ bản rà soát, bố trí kinh phí "
                 "khắc phục theo quy định.")
#: The chart (matplotlib): legend and axis words.
CHART_AXIS = "Tốc độ trung bình so với tốc độ cam kết (%)"
CHART_DOWN_PASS, CHART_DOWN_FAIL, CHART_DOWN_THIN = "Tải xuống: đạt", "Tải xuống: không đạt", f"Tải xuống: {NOT_ENOUGH.lower()}"
CHART_UP = "Tải lên"
CHART_VALUES = "Đo được/\ncam kết\n(Mbit/s)"
CHART_EMPTY = "Không có số liệu đo tốc độ"


def chart_minimum(min_ratio: float) -> str:
    return f"Yêu cầu ≥ {pct(min_ratio, 0)}"


_XML_BAD = {0xFFFE, 0xFFFF} | set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def doc_text(v: Any) -> str:
    """Any text on its way into the DOCX or a chart, on one line: characters XML cannot hold
    (controls, lone surrogates, U+FFFE/FFFF) and bidi overrides dropped, line breaks and tabs
    made spaces. python-docx (lxml) refuses the former; the latter could make a name read
    differently than it is."""
    import unicodedata
    out = []
    for c in "" if v is None else str(v):
        n = ord(c)
        if c in "\t\n\r\v\f\x85\u2028\u2029":
            out.append(" ")
        elif n in _XML_BAD or unicodedata.category(c) in ("Cc", "Cs") or (n & 0xFFFE) == 0xFFFE:
            continue
        else:
            out.append(c)
    return "".join(out)


def doc_number(doc_code: str) -> str:
    """``Số:      /BC-SKHCN``: the number is left blank for the văn thư to fill in."""
    return f"Số:{' ' * 6}/BC-{doc_code}"


def operator_subject(operator: str) -> str:
    return f"Đường truyền do doanh nghiệp viễn thông {operator} cung cấp"


def addressed_to(operator: str) -> str:
    return f"Kính gửi: {operator}."


def intro(p: Period, operator: str | None = None) -> str:
    what = (f"các đường truyền do {operator} cung cấp tại các đơn vị" if operator else
            "đường truyền Internet, đường truyền số liệu chuyên dùng và hạ tầng công nghệ thông tin cơ bản "
            "của các đơn vị")
    return f"Kết quả đo chất lượng {what} {month_label(p)} được báo cáo như sau:"


def measured_by(p: Period, min_ratio: float) -> str:
    return (f"Số liệu trong báo cáo do hệ thống giám sát đường truyền linewatch đo tự động tại các đơn vị từ ngày "
            f"{date(p.start)} đến ngày {date(p.end - 1)}. Một đường truyền đạt yêu cầu về tốc độ khi tốc độ tải "
            f"xuống và tải lên trung bình đều không thấp hơn {pct(min_ratio, 0)} tốc độ cam kết trong hợp đồng "
            f"(QCVN 34:2022/BTTTT).")


def totals_units(n: int, measured: int, short: int | None) -> str:
    s = f"Số đơn vị: {n}, trong đó {measured} đơn vị có số liệu đo trong tháng"
    return s + (f"; {short} đơn vị chưa đảm bảo hạ tầng công nghệ thông tin cơ bản." if short is not None else ".")


def totals_lines(n: int, ok: int, fail: int, thin: int, none: int) -> str:
    return (f"Số đường truyền: {n}; đạt yêu cầu về tốc độ: {ok}; không đạt: {fail}; "
            f"{NOT_ENOUGH.lower()} để đánh giá: {thin}" + (f"; không có số liệu đo: {none}." if none else "."))


def totals_incidents(n: int, still_open: int) -> str:
    return f"Số sự cố trong tháng: {n}, trong đó {still_open} sự cố chưa khắc phục."


def province_summary(name: str, sites: int, lines: int, ok: int, fail: int, thin: int, median_ratio: float | None) -> str:
    s = (f"{name}: {sites} đơn vị, {lines} đường truyền; đạt yêu cầu về tốc độ: {ok}; không đạt: {fail}; "
         f"{NOT_ENOUGH.lower()}: {thin}.")
    if median_ratio is not None:
        s += f" Tốc độ tải xuống trung bình của một đường truyền (trung vị) bằng {pct(median_ratio, 0)} tốc độ cam kết."
    return s


def chart_caption(n: int, province: str, shown: int, measured: int, unmeasured: int) -> str:
    s = f"Hình {n}. Tốc độ trung bình so với tốc độ cam kết, {province}"
    if shown < measured:
        s += f" ({shown} đường truyền có tỷ lệ thấp nhất trong {measured} đường truyền có số liệu)"
    if unmeasured:
        s += f"; {unmeasured} đường truyền chưa có số liệu đo tốc độ"
    return s + "."


def unit_short(name: str, code: str, reasons: list[str]) -> str:
    return f"{name} (mã {code}): " + "; ".join(reasons) + "."


def not_verdicts(n: int) -> str:
    return (f"Các số liệu ghi “{NOT_ENOUGH}” (đo chưa đủ số lần hoặc chưa đủ thời gian trong tháng) chưa phải là "
            f"kết luận đạt hay không đạt; trong tháng có {n} đường truyền thuộc trường hợp này.")


def incidents_of(who: str, n: int, still_open: int, median_repair_s: float | None) -> str:
    s = f"{who}: {n} sự cố, {still_open} chưa khắc phục"
    return s + (f"; thời gian khắc phục (trung vị) {duration(median_repair_s)}." if median_repair_s is not None else ".")


def open_incident(kind: str, site: str, line: str | None, opened_at: float) -> str:
    return f"Chưa khắc phục: {kind_name(kind)} tại {site}" + (f", đường truyền {line}" if line else "") + \
        f", từ {time_(opened_at)}."


def more_open(n: int) -> str:
    return f"… và {n} sự cố chưa khắc phục khác (xem tệp Excel kèm theo)."


def propose_operator(operator: str) -> str:
    return (f"Đề nghị {operator} kiểm tra, khắc phục các đường truyền chưa đạt yêu cầu và các sự cố chưa khắc phục "
            f"nêu trên, bảo đảm chất lượng dịch vụ theo hợp đồng.")


def unit_proposal(name: str, proposal: str) -> str:
    proposal = proposal.strip()
    return f"{name}: {proposal}" + ("" if proposal.endswith((".", "!", "?", ";")) else ".")


def attachment() -> str:
    return (f"Chi tiết số liệu của từng đơn vị, từng đường truyền tại tệp Excel kèm theo (các trang “{SHEETS['form']}”, "
            f"“{SHEETS['operator']}”, “{SHEETS['incidents']}” và “{SHEETS['basis']}”: nguồn gốc của từng số liệu)./.")


def note(s: str) -> str:
    s = s.strip()
    return f"Ghi chú: {s}" + ("" if s.endswith((".", "!", "?")) else ".")


def recipient(s: str, last: bool = False) -> str:
    return f"- {s}{'.' if last else ';'}"


# -- xlsx
# The workbook (collector/report/xlsx.py): sheet titles, column headers, definitions.

FORM_TITLE = "BÁO CÁO SỐ LIỆU HẠ TẦNG CÔNG NGHỆ THÔNG TIN"
MEASURED_GROUP = "Số liệu đo được (linewatch)"
NONE_SHORT_ROW = "Không có đơn vị nào chưa đạt"
WHOLE_SITE = "(cả đơn vị)"
TOTAL = "Tổng cộng"
NOTE_ITEMS = {"report": "Báo cáo", "month": "Tháng", "scope": "Phạm vi", "operator": "Nhà mạng",
              "generated": "Thời điểm lập", "note": "Ghi chú"}

SHEET_TITLES = {
    "form": FORM_TITLE,
    "operator": "CHẤT LƯỢNG ĐƯỜNG TRUYỀN THEO NHÀ MẠNG",
    "short": "CÁC ĐƠN VỊ CHƯA ĐẢM BẢO HẠ TẦNG CÔNG NGHỆ THÔNG TIN CƠ BẢN",
    "completeness": "ĐỘ ĐẦY ĐỦ SỐ LIỆU ĐO",
    "incidents": "SỰ CỐ TRONG THÁNG",
    "basis": "TRUY VẾT SỐ LIỆU (NGUỒN GỐC CỦA TỪNG SỐ LIỆU)",
    "notes": "GHI CHÚ, ĐỊNH NGHĨA VÀ NGƯỠNG ĐÁNH GIÁ",
}

_STAFF = "Số lượng CBCCVC"
_DEVICES = "Số lượng máy tính, máy quét (scanner) đang sử dụng"
_SOFTWARE = "Tên phần mềm đang triển khai sử dụng, kinh phí chi trả (nếu có)"
_INTERNET = ("Đang sử dụng đường truyền internet của nhà cung cấp dịch vụ nào, số lượng đường truyền "
             "(Mỗi đường truyền internet có 1 hợp đồng với nhà mạng)")
_CONTRACTED, _MEAN = "Tốc độ cam kết (Mbit/s)", "Tốc độ đo trung bình (Mbit/s)"
_RATIO, _TESTS_OK = "Tỷ lệ so với cam kết", "Tỷ lệ lần đo đạt ngưỡng (QCVN 34:2022/BTTTT)"
_TESTS, _LATENCY, _VERDICT = "Số lần đo tốc độ", "Độ trễ (ms)", "Đánh giá"
_COUNT = "Số lần đo"
_DOWN, _UP = "Tải xuống", "Tải lên"

#: Column headers: key -> (group header or None, header). The form's follow seed 000's, in order.
XLSX_COLUMNS: dict[str, tuple[str | None, str]] = {
    "stt": (None, "STT"),
    "unit": ("Đơn vị", "Tên đơn vị"), "unit_code": ("Đơn vị", "Mã"),
    "staff_ft": (_STAFF, "Chuyên trách"), "staff_pt": (_STAFF, "Không chuyên trách"), "staff_ct": (_STAFF, "Hợp đồng"),
    "laptops": (_DEVICES, "Laptop"), "desktops": (_DEVICES, "Máy tính để bàn"), "scanners": (_DEVICES, "Máy quét"),
    "software": (_SOFTWARE, "Tên phần mềm"), "software_cost": (_SOFTWARE, "Kinh phí"),
    "isp": (_INTERNET, "Tên nhà cung cấp dịch vụ Internet"), "n_lines": (_INTERNET, "Số lượng đường truyền"),
    "line_cost": (_INTERNET, "Kinh phí chi trả hàng tháng"),
    "lan": (None, "Có hệ thống mạng nội bộ (LAN) (Có hoặc không)"),
    "proposals": (None, "Đề xuất/kiến nghị liên quan đến hạ tầng CNTT"),
    "m_computers": (MEASURED_GROUP, "Máy tính đo được trên mạng LAN"),
    "m_printers": (MEASURED_GROUP, "Máy in, máy quét đo được"),
    "m_unsure": (MEASURED_GROUP, "Thiết bị chưa rõ loại"),
    "m_lan": (MEASURED_GROUP, "Nguồn số liệu LAN"),
    "m_speed": (MEASURED_GROUP, "Tốc độ cam kết → đo được, tải xuống/tải lên (tỷ lệ thấp hơn so với cam kết)"),
    "m_avail": (MEASURED_GROUP, "Độ khả dụng (%) (đường truyền thấp nhất)"),
    "m_incidents": (MEASURED_GROUP, "Số sự cố"),
    "m_verdict": (MEASURED_GROUP, "Đánh giá"),
    "m_short": (MEASURED_GROUP, "Chưa đảm bảo hạ tầng CNTT cơ bản"),
    # operator
    "operator": (None, "Nhà mạng"), "line": (None, "Đường truyền"), "line_kind": (None, "Loại"),
    "c_down": (_CONTRACTED, _DOWN), "c_up": (_CONTRACTED, _UP),
    "mean_down": (_MEAN, _DOWN), "mean_up": (_MEAN, _UP),
    "ratio_down": (_RATIO, _DOWN), "ratio_up": (_RATIO, _UP),
    "min_ratio": (_TESTS_OK, "Ngưỡng (× cam kết)"), "ok_down": (_TESTS_OK, _DOWN), "ok_up": (_TESTS_OK, _UP),
    "tests_down": (_TESTS, _DOWN), "tests_up": (_TESTS, _UP),
    "lat_mean": (_LATENCY, "Trung bình"), "lat_p95": (_LATENCY, "Phân vị 95"),
    "loss": (None, "Mất gói (%)"), "avail": (None, "Độ khả dụng (%)"),
    "down_h": (None, "Thời gian mất kết nối (giờ)"), "n_incidents": (None, "Số sự cố"),
    "v_speed": (_VERDICT, "Tốc độ"), "v_latency": (_VERDICT, "Độ trễ"), "v_avail": (_VERDICT, "Độ khả dụng"),
    # short
    "province": (None, "Tỉnh/thành phố"), "reason": (None, "Lý do chưa đạt"),
    # completeness
    "probe": (None, "Loại đo"), "scheduled": (_COUNT, "Theo lịch"), "received": (_COUNT, "Nhận được"),
    "failed": (_COUNT, "Đo lỗi"), "share": (_COUNT, "Tỷ lệ nhận được"),
    "messages": (None, "Số tin nhận được"), "seq_missing": (None, "Số tin bị mất trên đường truyền"),
    "offline_h": (None, "Thời gian mất liên lạc với máy đo (giờ)"), "remark": (None, "Ghi chú"),
    # incidents
    "inc_id": (None, "Mã sự cố"), "inc_kind": (None, "Loại sự cố"), "cause": (None, "Nguyên nhân"),
    "route": (None, "Chuyển cho"), "opened": (None, "Bắt đầu"), "acked": (None, "Tiếp nhận lúc"),
    "acked_by": (None, "Người tiếp nhận"), "resolved": (None, "Khắc phục lúc"), "closed": (None, "Đóng lúc"),
    "tta": (None, "Thời gian đến khi tiếp nhận"), "ttr": (None, "Thời gian khắc phục"), "state": (None, "Trạng thái"),
    "maint": (None, "Trong thời gian bảo trì"), "suppressed": (None, "Gộp vào sự cố của cả đơn vị"),
    "flaps": (None, "Số lần chập chờn"),
    # basis
    "figure": (None, "Số liệu"), "value": (None, "Giá trị"), "source": (None, "Nguồn (bảng dữ liệu)"),
    "first": (None, "Từ"), "last": (None, "Đến"), "count": (None, "Số bản ghi"), "query": (None, "Cách truy xuất lại"),
    # notes
    "item": (None, "Mục"), "text": (None, "Nội dung"),
}

FIGURE_NAMES = {
    "download_mean_mbps": "Tốc độ tải xuống trung bình (Mbit/s)", "upload_mean_mbps": "Tốc độ tải lên trung bình (Mbit/s)",
    "latency_mean_ms": "Độ trễ trung bình (ms)", "latency_p95_ms": "Độ trễ phân vị 95 (ms)", "loss_pct": "Mất gói (%)",
    "availability_pct": "Độ khả dụng (%)", "computers": "Số máy tính", "completeness": "Độ đầy đủ số liệu",
}

DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("Tốc độ", "Tốc độ tải xuống/tải lên trung bình là trung bình cộng của các lần đo tốc độ trên từng đường truyền "
               "trong tháng (tốc độ = dung lượng truyền / thời gian truyền, QCVN 34:2022/BTTTT). Đường truyền đạt yêu "
               "cầu về tốc độ khi tốc độ trung bình của cả hai chiều không thấp hơn ngưỡng × tốc độ cam kết. Tỷ lệ lần "
               "đo đạt ngưỡng là số lần đo không thấp hơn ngưỡng × tốc độ cam kết chia cho tổng số lần đo."),
    ("Độ trễ", "Độ trễ trung bình là trung bình độ trễ khứ hồi trung bình của các lượt đo tới các đích; phân vị 95 "
               "tính trên độ trễ trung vị của các lượt. Mất gói = số gói bị mất / số gói đã gửi."),
    ("Độ khả dụng", "Độ khả dụng = 100 % × (1 − thời gian đường truyền mất kết nối về phía nhà mạng / thời gian trạng "
                    "thái đường truyền được theo dõi). Thời gian lỗi mạng nội bộ của đơn vị không tính cho nhà mạng."),
    ("Độ đầy đủ số liệu", "Tỷ lệ nhận được = số lần đo nhận được (kể cả lần đo lỗi) / số lần đo theo lịch cấu hình "
                          "trong tháng. Số liệu dựa trên quá ít lần đo được ghi “Chưa đủ dữ liệu” và không được đánh "
                          "giá đạt hay không đạt; ô để trống là không có số liệu, không phải bằng 0."),
    ("Máy tính", "Số máy tính đang sử dụng theo khai báo của đơn vị (laptop + máy tính để bàn); khi đơn vị chưa khai "
                 "báo, dùng số máy tính đo được trên mạng nội bộ (kể cả máy đặt máy đo). Ô khai báo để trống là đơn vị "
                 "chưa khai báo."),
    ("Tin nhắn", "Số tin bị mất trên đường truyền là số tin máy đo đã gửi mà máy chủ không nhận được (khoảng trống "
                 "số thứ tự); thời gian mất liên lạc là thời gian máy chủ không nhận được tin của bất kỳ máy đo nào "
                 "của đơn vị."),
    ("Đơn vị chưa đạt", "Đơn vị chưa đảm bảo hạ tầng CNTT cơ bản khi: số máy tính ít hơn số CBCCVC; không có mạng "
                        "nội bộ (LAN); có đường truyền có tốc độ trung bình hoặc độ khả dụng dưới mức tối thiểu; hoặc "
                        "không có số liệu đo trong tháng."),
    ("Thời gian", "Mọi thời điểm theo giờ Việt Nam (UTC+7), dạng giờ:phút ngày/tháng/năm."),
)


def scope_label(scope: dict[str, str], provinces: dict[str, str]) -> str:
    """``Gia Lai; nhà mạng VNPT`` (what the report covers)."""
    parts = []
    if scope.get("province"):
        parts.append(", ".join(provinces.get(c.strip(), c.strip()) for c in str(scope["province"]).split(",")))
    if scope.get("site"):
        parts.append(f"đơn vị {scope['site']}")
    if scope.get("operator"):
        parts.append(f"nhà mạng {scope['operator']}")
    return "; ".join(parts) or ", ".join(provinces.values()) or "toàn bộ đơn vị"


def figure_name(figure: str) -> str:
    return f"{FIGURE_NAMES[figure]} ({figure})" if figure in FIGURE_NAMES else figure


def speed_measured(ln: LineFigures) -> str:
    """``150/150 → 141,2/148 Mbit/s (94 %)``: contracted, measured means, the lower ratio."""
    if ln.down.mean_mbps is None and ln.up.mean_mbps is None:
        return f"{speed_pair(ln)} → {NO_DATA}"
    ratios = [r for r in (ln.down.ratio, ln.up.ratio) if r is not None]
    s = f"{speed_pair(ln)} → {num(ln.down.mean_mbps) or '—'}/{num(ln.up.mean_mbps) or '—'} Mbit/s ({pct(min(ratios), 0)})"
    return s + (f" – {NOT_ENOUGH}" if "speed" in ln.insufficient or ln.speed_verdict == "insufficient" else "")


def figure_verdict(ln: LineFigures, what: str, v: Verdict) -> str:
    """A verdict, or ``Chưa đủ dữ liệu`` whenever the figure rests on too little data."""
    return NOT_ENOUGH if what in ln.insufficient else verdict(v)


def line_verdicts(ln: LineFigures) -> str:
    """``Tốc độ: Đạt; Độ trễ: Đạt; Độ khả dụng: Chưa đủ dữ liệu`` (or ``Không có số liệu đo``)."""
    vs = (("speed", "Tốc độ", ln.speed_verdict), ("latency", "Độ trễ", ln.latency_verdict),
          ("availability", "Độ khả dụng", ln.availability_verdict))
    if all(v == "none" for *_, v in vs):
        return NO_DATA
    return "; ".join(f"{label}: {figure_verdict(ln, what, v)}" for what, label, v in vs)


def thresholds(lines: list[LineFigures]) -> list[tuple[str, str]]:
    """The thresholds the verdicts used (each distinct value, as configured per line)."""
    def each(vals: set[float], fmt) -> str:
        return "; ".join(fmt(v) for v in sorted(vals)) or "—"
    return [
        ("Ngưỡng tốc độ", "Tốc độ trung bình ≥ " + each({ln.down.min_ratio for ln in lines} | {ln.up.min_ratio for ln in lines},
                                                      lambda v: pct(v, 0)) + " tốc độ cam kết (QCVN 34:2022/BTTTT)"),
        ("Ngưỡng độ trễ", "Độ trễ trung bình ≤ " + each({ln.max_latency_ms for ln in lines}, lambda v: f"{num(v)} ms")),
        ("Ngưỡng độ khả dụng", "Độ khả dụng ≥ " + each({ln.min_availability_pct for ln in lines},
                                                      lambda v: f"{num(v, 2)} %") + " mỗi tháng"),
    ]

"""Every word of the monthly reports, in Vietnamese (officials read them), numbers and dates in
Vietnamese conventions (1.234,5; ngày 05 tháng 01 năm 2026), times in Vietnam time. The
incident and unit terms are the notifications' (collector/notify/text.py), so a mail and a
report name a thing the same way. Renderers lay out; they do not word."""
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

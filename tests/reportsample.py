"""A small monthly Report built by hand (no record), for the renderers' tests: every kind of
unit the report must show (compliant, slow line, no LAN, fewer computers than staff, no
measurements, too little data) and incidents in every state."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from linewatch.collector.report.model import (
    Basis, IncidentRow, Issuer, KindCompleteness, LineFigures, Period, Report, Shortfall, SiteFigures, SpeedFigure,
    Totals,
)

VN = timezone(timedelta(hours=7))


def period(month: str = "2026-10") -> Period:
    y, m = map(int, month.split("-"))
    start = datetime(y, m, 1, tzinfo=VN)
    end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=VN)
    return Period(month, y, m, start.timestamp(), end.timestamp())


def speed(contracted: float, values: list[float], min_ratio: float = 0.8) -> SpeedFigure:
    return SpeedFigure(contracted, min_ratio, len(values), sum(values) / len(values) if values else None,
                       min(values) if values else None, max(values) if values else None,
                       sum(1 for v in values if v >= min_ratio * contracted))


def completeness(scale: float = 1.0, days: int = 31) -> tuple[KindCompleteness, ...]:
    return (KindCompleteness("latency", 288 * days, int(288 * days * scale), 3),
            KindCompleteness("bandwidth", days, int(days * scale), 0),
            KindCompleteness("reach", 288 * days, int(288 * days * scale), 0))


def incident(i: int, p: Period, site: str, line: str | None, kind: str = "line_down", state: str = "closed",
             acked: bool = True, hours: float = 2.0) -> IncidentRow:
    opened = p.start + 86400 * (i + 2) + 3600 * 9
    return IncidentRow(i, kind, "line" if line else "unknown", "operator" if line else "it_office", site, line,
                       None, state, opened, opened + 20, opened + 600 if acked else None,
                       "Trần NOC <noc@vnpt.example>" if acked else None,
                       opened + hours * 3600 if state == "closed" else None,
                       opened + hours * 3600 + 900 if state == "closed" else None,
                       580.0 if acked else None, hours * 3600 if state == "closed" else None, False, False, 1)


def line(p: Period, site: str, line_id: str, isp: str, kind: str, down_vals: list[float], up_vals: list[float],
         contracted: float = 100, *, rounds: int = 8928, observed: float | None = None, down_s: float = 0.0,
         incidents: tuple[IncidentRow, ...] = (), scale: float = 1.0, insufficient: tuple[str, ...] = ()
         ) -> LineFigures:
    d, u = speed(contracted, down_vals), speed(contracted, up_vals)
    if not down_vals and not up_vals:
        sv = "none"
    elif "speed" in insufficient:
        sv = "insufficient"
    else:
        sv = "pass" if (d.ratio or 0) >= 0.8 and (u.ratio or 0) >= 0.8 else "fail"
    obs = p.seconds * scale if observed is None else observed
    avail = None if obs <= 0 else 100 * (1 - down_s / obs)
    return LineFigures(
        site, line_id, isp, kind, isp, 330000.0 if kind == "internet" else None, d, u, sv,
        rounds, 18.4 if rounds else None, 31.2 if rounds else None, 50.0,
        ("pass" if rounds else "none") if "latency" not in insufficient else "insufficient",
        rounds * 20, rounds // 50, obs, down_s, 0.0, 99.5,
        "none" if obs <= 0 else ("insufficient" if "availability" in insufficient else
                                 ("pass" if avail >= 99.5 else "fail")),
        completeness(scale, p.days), incidents, insufficient)


def site(code: str, name: str, lines: tuple[LineFigures, ...], *, staff=(20, 8, 3), computers=(4, 24, 2),
         measured=(30, 3, 2), lan: bool | None = True, shortfalls: tuple[Shortfall, ...] = (),
         group: str | None = "Hoài Nhơn (cũ)", incidents: tuple[IncidentRow, ...] = ()) -> SiteFigures:
    return SiteFigures(
        code, name, "52", group, "commune", *staff, *computers, *measured,
        (("Hệ thống quản lý văn bản và điều hành", 12_000_000.0), ("Phần mềm kế toán MISA", None)),
        tuple(sorted({ln.isp for ln in lines})), sum(ln.monthly_cost_vnd or 0 for ln in lines) or None,
        lan, "measured" if lan is not None else "unknown", "Đề nghị nâng cấp đường truyền TSLCD" if code == "21584" else None,
        lines, (f"ag-{code}-01",), 9000, 12, 7200.0, shortfalls, incidents)


def sample(month: str = "2026-10") -> Report:
    p = period(month)
    good = site("21583", "UBND phường Hoài Nhơn Bắc", (
        line(p, "21583", "vnpt-fiber", "VNPT", "internet", [140, 150, 138] * 10, [145, 150, 149] * 10, 150,
             incidents=(incident(1, p, "21583", "vnpt-fiber"),)),
        line(p, "21583", "vnpt-tslcd", "VNPT", "tslcd", [190] * 31, [195] * 31, 200)))
    slow_line = line(p, "21584", "viettel-fiber", "Viettel", "internet", [60, 70, 65] * 10, [90, 95] * 15, 100,
                     down_s=3 * 3600, incidents=(incident(2, p, "21584", "viettel-fiber", "slow_line", "open", False),
                                                 incident(3, p, "21584", "viettel-fiber", hours=3)))
    slow = site("21584", "UBND xã Hoài Châu & \"Bắc\" <Tam Quan>", (slow_line,),
                staff=(18, 0, 0), computers=(None, None, None), measured=(1, 0, 1), lan=False,
                shortfalls=(Shortfall("computers_fewer_than_staff", None, {"computers": 1, "staff": 18}),
                            Shortfall("no_lan", None, {"source": "measured"}),
                            Shortfall("line_below_minimum", "viettel-fiber",
                                      {"line_name": "Viettel Internet (viettel-fiber)", "direction": "tải xuống",
                                       "mean_mbps": 65.0, "ratio": 0.65, "contracted_mbps": 100, "min_ratio": 0.8}),
                            Shortfall("availability_below_minimum", "viettel-fiber",
                                      {"line_name": "Viettel Internet (viettel-fiber)", "availability_pct": 99.6,
                                       "min_pct": 99.5, "down_s": 10800.0})),
                incidents=(incident(4, p, "21584", None, "site_unreachable", "closed"),))
    dark = site("21585", "UBND xã Hoài Sơn", (
        line(p, "21585", "fpt-fiber", "FPT", "internet", [], [], 100, rounds=0, observed=0, scale=0.0),),
        measured=(None, None, None), lan=None,
        shortfalls=(Shortfall("no_measurements", None, {}),))
    thin = site("21586", "UBND xã Tam Quan", (
        line(p, "21586", "vnpt-fiber", "VNPT", "internet", [120, 130], [140], 150, rounds=900, scale=0.1,
             insufficient=("speed", "availability")),))
    sites = (good, slow, dark, thin)
    basis = tuple(Basis(s.code, ln.line, "download_mean_mbps", f"{ln.down.mean_mbps}", "bandwidth_tests",
                        p.start + 3600, p.end - 3600, ln.down.tests,
                        f"SELECT at, download_mbps FROM bandwidth_tests WHERE site='{s.code}' AND line='{ln.line}' "
                        f"AND at >= {p.start} AND at < {p.end}")
                  for s in sites for ln in s.lines)
    return Report(p, p.end + 3600 * 5, {"province": "52"}, {"52": "Gia Lai"},
                  Issuer(parent_body="UBND TỈNH GIA LAI", place="Quy Nhơn", signer_title="KT. GIÁM ĐỐC\nPHÓ GIÁM ĐỐC",
                         signer_name="Nguyễn Văn A"),
                  sites, ("FPT", "VNPT", "Viettel"), basis,
                  Totals(4, 3, 2, 5, 2, 1, 1, 4, 1), ("Mẫu dữ liệu thử",))

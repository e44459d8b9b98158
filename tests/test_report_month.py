"""The monthly report against a month of traffic sent through the real ingest path.

tests/monthlab.py makes October 2026 of eight units (compliant; slow evenings with a 6-hour
outage; no LAN; fewer computers than staff; sequence gaps; a late backfill; no measurements at
all; an agent installed on the 27th) as agent messages, stores them with Ingestor.store on
SQLite and PostgreSQL, and keeps what it sent as the ground truth. Every figure of the report
is recomputed here from that truth (monthlab.Truth: the definitions written out, not the
report's code), then read back cell by cell from the XLSX (openpyxl) and the DOCX
(python-docx), and again from the rollups alone after the raw rows are pruned.
"""
from __future__ import annotations

import math
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

import monthlab
from monthlab import END, NOW, START

from linewatch.collector.record import open_record
from linewatch.collector.record.types import EventFilter
from linewatch.collector.report import text as T
from linewatch.collector.report.config import ReportConfig, Schedule
from linewatch.collector.errors import BadMonth, NoData, UnknownScope
from linewatch.collector.report.model import Report
from linewatch.collector.report.run import build, write

REL = 1e-6          # floats: sums in another order
P95_REL = 0.02      # the rollups' histograms (rollup.REL_ERROR)
P = monthlab.Params()
CFG = ReportConfig(
    schedule=Schedule(latency_interval_s=P.latency_interval_s, bandwidth_per_day=P.bandwidth_per_day,
                      reach_report_s=P.reach_report_s, dns_interval_s=P.dns_interval_s,
                      http_interval_s=P.http_interval_s),
    min_completeness_pct=P.min_completeness_pct, min_tests=P.min_tests)
LETTERS = "ABCDEFGH"


# ----------------------------------------------------------------------------- fixtures
@dataclass
class Loaded:
    record: Any
    registry: Any
    outcomes: dict[str, int]
    backend: str


@pytest.fixture(scope="module")
def month() -> monthlab.Month:
    return monthlab.generate()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def loaded(request, tmp_path_factory, month):
    """The month stored once per backend (ingest + rollups + the late backlog)."""
    cleanup = []
    if request.param == "sqlite":
        url = str(tmp_path_factory.mktemp("month") / "record.sqlite3")
    else:
        server = request.getfixturevalue("pg_server")
        import psycopg

        if not server.running():
            server.start()
        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(server.url(), autocommit=True, connect_timeout=10) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        url = server.url(name)

        def dropdb():
            with psycopg.connect(server.url(), autocommit=True, connect_timeout=10) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cleanup.append(dropdb)
    rec = open_record(url)
    registry = month.registry()
    try:
        yield Loaded(rec, registry, month.ingest(rec, registry), request.param)
    finally:
        rec.close()
        for f in cleanup:
            f()


def report_of(loaded: Loaded, **kw) -> Report:
    return build(loaded.record, loaded.registry, CFG, monthlab.MONTH, now=NOW, **kw)


# ----------------------------------------------------------------------------- comparing
def close(got: float | None, exp: float | None, what: str, rel: float = REL) -> None:
    if exp is None or got is None:
        assert got == exp, f"{what}: got {got!r}, expected {exp!r}"
        return
    assert math.isclose(got, exp, rel_tol=rel, abs_tol=1e-9), f"{what}: got {got!r}, expected {exp!r}"


def check_line(ln, exp: dict) -> None:
    w = f"{ln.site}/{ln.line}"
    assert (ln.site, ln.line, ln.isp, ln.kind, ln.operator, ln.monthly_cost_vnd) == (
        exp["site"], exp["line"], exp["isp"], exp["kind"], exp["isp"], exp["monthly_cost_vnd"]), w
    for d in ("down", "up"):
        s, e = getattr(ln, d), exp[d]
        assert s.contracted_mbps == e["contracted_mbps"] and s.min_ratio == P.min_speed_ratio, f"{w} {d}"
        assert s.tests == e["tests"], f"{w} {d}: tests {s.tests}, expected {e['tests']}"
        assert s.tests_ok == e["tests_ok"], f"{w} {d}: tests_ok {s.tests_ok}, expected {e['tests_ok']}"
        for f in ("mean_mbps", "min_mbps", "max_mbps"):
            close(getattr(s, f), e[f], f"{w} {d} {f}")
    assert ln.speed_verdict == exp["speed_verdict"], f"{w}: speed {ln.speed_verdict}, expected {exp['speed_verdict']}"
    assert ln.latency_rounds == exp["latency_rounds"], f"{w}: rounds {ln.latency_rounds} != {exp['latency_rounds']}"
    close(ln.latency_mean_ms, exp["latency_mean_ms"], f"{w} latency_mean_ms")
    close(ln.latency_p95_ms, exp["latency_p95_ms"], f"{w} latency_p95_ms", P95_REL)
    assert (ln.pings_sent, ln.pings_lost) == (exp["pings_sent"], exp["pings_lost"]), w
    for f in ("observed_s", "down_s", "lan_down_s", "availability_pct"):
        close(getattr(ln, f), exp[f], f"{w} {f}")
    assert ln.availability_verdict == exp["availability_verdict"], \
        f"{w}: availability {ln.availability_verdict}, expected {exp['availability_verdict']}"
    assert ln.latency_verdict == exp["latency_verdict"], w
    assert ln.min_availability_pct == P.min_availability_pct and ln.max_latency_ms == P.max_latency_ms
    got = {c.kind: {"scheduled": c.scheduled, "received": c.received, "failed": c.failed} for c in ln.completeness}
    assert got == exp["completeness"], f"{w} completeness"
    assert tuple(ln.insufficient) == exp["insufficient"], w
    assert ln.incidents == ()


def check_site(s, exp: dict) -> None:
    w = s.code
    assert (s.name, s.province, s.kind) == (exp["name"], monthlab.PROVINCE, "commune"), w
    assert (s.staff_full_time, s.staff_part_time, s.staff_contract) == exp["staff"], w
    assert (s.laptops, s.desktops, s.scanners) == (exp["laptops"], exp["desktops"], exp["scanners"]), w
    for f in ("computers_measured", "printers_measured", "unsure_measured", "computers", "lan", "lan_source",
              "messages", "seq_missing", "monthly_cost_vnd", "isps"):
        assert getattr(s, f) == exp[f], f"{w} {f}: got {getattr(s, f)!r}, expected {exp[f]!r}"
    close(s.offline_s, exp["offline_s"], f"{w} offline_s")
    assert sorted((x.code, x.line or "") for x in s.shortfalls) == [(c, ln or "") for c, ln in exp["shortfalls"]], w
    assert [ln.line for ln in s.lines] == list(exp["lines"]), w
    for ln in s.lines:
        check_line(ln, exp["lines"][ln.line])


def check_report(report: Report, month: monthlab.Month, codes: list[str] | None = None) -> None:
    truth = month.truth
    codes = codes or [truth.units[x].code for x in LETTERS]
    assert [s.code for s in report.sites] == codes
    for s in report.sites:
        check_site(s, truth.site(s.code))


# ----------------------------------------------------------------------------- the month itself
def test_the_generated_month_has_every_kind_of_unit(month):
    t = month.truth
    a, b, c, d, e, f, g, h = (t.site(x) for x in LETTERS)
    assert a["shortfalls"] == [] and len(a["lines"]) == 2 and a["computers"] >= a["staff_total"]
    bl = b["lines"]["viettel-fiber"]
    assert bl["speed_verdict"] == "fail" and bl["failing_directions"] == ["down"]
    assert bl["down"]["mean_mbps"] < 0.8 * 100 and bl["availability_pct"] < 99.5 and bl["down_s"] == 6 * 3600
    assert c["lan"] is False and c["lan_source"] == "measured"
    assert d["staff_total"] == 18 and d["computers_measured"] == 4 and d["printers_measured"] == 1
    assert e["seq_missing"] == e["dropped_in_month"] == monthlab.DROPPED_E
    el = e["lines"]["vnpt-fiber"]
    assert 0 < el["down_s"] < 3 * 3600 and el["availability_verdict"] == "pass"   # 2 of 3 down hours unobserved
    covered = Counter()
    for m in t.of("21586", "fpt-fiber", "reach"):
        covered[int(m.at // 3600)] += m.data["sent"] * m.data["interval_s"]
    assert max(covered.values()) > 3600     # D's clock step: an hour claims more coverage than it has seconds
    late = [m for m in month.sent if m.late]
    assert late and all(START <= m.at < END and m.received_at > END for m in late)
    assert f["offline_s"] > 2 * 86400 - 200
    assert {m.kind for m in late} >= {"latency", "reach", "bandwidth", "heartbeat"}
    assert all(ln["observed_s"] == END - START for ln in f["lines"].values())   # the backlog fills the 2 days
    assert g["messages"] == 0 and g["shortfalls"] == [("no_measurements", None)]
    assert h["lines"]["vnpt-fiber"]["insufficient"] == ("speed", "latency", "availability")
    assert len(month.sent) < 40_000


def test_every_message_is_stored(loaded, month):
    assert loaded.outcomes == {"stored": len(month.sent), "status": len(month.statuses)}


# ----------------------------------------------------------------------------- figures
def test_figures_match_the_ground_truth(loaded, month):
    report = report_of(loaded)
    check_report(report, month)
    assert report.period.start == START and report.period.end == END and report.period.days == 31
    assert report.provinces == {"52": "Gia Lai"} and report.operators == ("FPT", "VNPT", "Viettel")
    t = report.totals
    lines = [ln for s in (month.truth.site(x) for x in LETTERS) for ln in s["lines"].values()]
    verdicts = Counter(ln["speed_verdict"] for ln in lines)
    assert (t.sites, t.sites_measured, t.sites_short, t.lines, t.lines_speed_pass, t.lines_speed_fail) == (
        8, 7, 4, 10, verdicts["pass"], verdicts["fail"])
    assert (t.incidents, t.incidents_open) == (0, 0)


def test_scopes_province_site_and_operator(loaded, month):
    assert report_of(loaded, province="52").sites == report_of(loaded).sites
    one = report_of(loaded, site="21587")
    check_report(one, month, ["21587"])
    viettel = report_of(loaded, operator="viettel")      # any case
    assert viettel.scope == {"operator": "Viettel"} and viettel.operators == ("Viettel",)
    assert [s.code for s in viettel.sites] == ["21584", "21588"]
    for s in viettel.sites:
        exp = month.truth.site(s.code)
        assert [ln.line for ln in s.lines] == ["viettel-fiber"]       # F's VNPT TSLCD is not Viettel's
        check_line(s.lines[0], exp["lines"]["viettel-fiber"])
        assert s.messages == exp["messages"]


def test_errors_say_what_is_wrong(loaded):
    def err(exc, month=monthlab.MONTH, **kw) -> str:
        with pytest.raises(exc) as e:
            build(loaded.record, loaded.registry, CFG, month, now=NOW, **kw)
        return str(e.value)

    assert err(NoData, "2026-08") == (
        "Không có số liệu đo nào trong tháng 2026-08 (toàn bộ danh mục): các máy đo chưa gửi số liệu của tháng "
        "này, hoặc số liệu đã quá hạn lưu giữ. Kiểm tra: linewatch-collector status (nothing was measured in 2026-08)")
    assert err(NoData, site="21589") == (
        "Không có số liệu đo nào trong tháng 2026-10 (đơn vị 21589): các máy đo chưa gửi số liệu của tháng "
        "này, hoặc số liệu đã quá hạn lưu giữ. Kiểm tra: linewatch-collector status (nothing was measured in 2026-10)")
    assert err(UnknownScope, province="99") == (
        "Không có tỉnh '99' trong danh mục registry; các tỉnh có: 52 (unknown province)")
    assert err(UnknownScope, operator="MobiFone") == (
        "Không có nhà mạng 'MobiFone' trong danh mục; các nhà mạng có: FPT, VNPT, Viettel (unknown operator)")
    assert err(UnknownScope, site="99999") == "Không có đơn vị '99999' trong danh mục registry (unknown site)"
    # NOW is 00:00 on 24 November, Vietnam time: November has not ended
    assert err(BadMonth, "2026-11") == (
        "Tháng 2026-11 chưa kết thúc: báo cáo tháng lập được từ ngày 01/12/2026 (month 2026-11 has not ended yet)")
    assert err(BadMonth, "2026-13") == (
        "--month '2026-13': viết theo dạng NĂM-THÁNG, ví dụ 2026-10 (month must be YYYY-MM)")
    # the month ends at 00:00 on 1 November Vietnam time (17:00 UTC on 31 October), not at UTC midnight
    with pytest.raises(BadMonth):
        build(loaded.record, loaded.registry, CFG, monthlab.MONTH, now=END - 1)
    assert build(loaded.record, loaded.registry, CFG, monthlab.MONTH, now=END).period.end == END


# ----------------------------------------------------------------------------- the files
def vn_num(v: float, digits: int = 1) -> str:
    """12.34 -> 12,3; 1234.5 -> 1.234,5 (Vietnamese), trailing zeros dropped."""
    s = f"{v:,.{digits}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s.replace(",", "\0").replace(".", ",").replace("\0", ".")


def table(ws) -> tuple[dict[tuple[str | None, str], int], list[list[Any]]]:
    """A report sheet's table: {(group header, header): column} and the rows under the header.
    Titles take rows 1-3, row 4 is blank, the header starts at row 5 (one or two rows)."""
    top = 5
    merged = list(ws.merged_cells.ranges)

    def at(r: int, c: int):
        return next((m for m in merged if m.min_row <= r <= m.max_row and m.min_col <= c <= m.max_col), None)

    two = any(m.min_row == top and (m.max_row == top + 1 or m.max_col > m.min_col) for m in merged)
    cols: dict[tuple[str | None, str], int] = {}
    for c in range(1, ws.max_column + 1):
        m = at(top, c)
        head = ws.cell(m.min_row, m.min_col).value if m else ws.cell(top, c).value
        key = (head, ws.cell(top + 1, c).value) if two and (m is None or m.max_row == top) else (None, head)
        cols[key] = c
    first = top + (2 if two else 1)
    rows = [[ws.cell(r, c).value for c in range(1, ws.max_column + 1)] for r in range(first, ws.max_row + 1)]
    return cols, rows


class Sheet:
    def __init__(self, ws):
        self.cols, self.rows = table(ws)

    def col(self, key: str) -> int:
        return self.cols[T.XLSX_COLUMNS[key]] - 1

    def where(self, **kw) -> list[list[Any]]:
        return [r for r in self.rows if all(r[self.col(k)] == v for k, v in kw.items())]

    def one(self, **kw) -> dict[str, Any]:
        rows = self.where(**kw)
        assert len(rows) == 1, (kw, rows)
        return {k: rows[0][c - 1] for k, c in ((k, self.cols[h]) for k, h in T.XLSX_COLUMNS.items() if h in self.cols)}


def line_name(exp: dict) -> str:
    return f"{exp['isp']} {'Internet' if exp['kind'] == 'internet' else 'TSLCD'} ({exp['line']})"


def speed_text(exp: dict) -> str:
    d, u = exp["down"], exp["up"]
    s = f"{vn_num(d['contracted_mbps'], 0)}/{vn_num(u['contracted_mbps'], 0)} → "
    if d["mean_mbps"] is None and u["mean_mbps"] is None:
        return s + T.NO_DATA
    ratio = min(d["mean_mbps"] / d["contracted_mbps"], u["mean_mbps"] / u["contracted_mbps"])
    s += f"{vn_num(d['mean_mbps'])}/{vn_num(u['mean_mbps'])} Mbit/s ({vn_num(100 * ratio, 0)} %)"
    return s + (f" – {T.NOT_ENOUGH}" if exp["speed_verdict"] == "insufficient" else "")


def verdict_word(exp: dict, what: str) -> str:
    return T.NOT_ENOUGH if what in exp["insufficient"] else T.VERDICTS[exp[f"{what}_verdict"]]


def reason_fragments(site: dict, code: str, line: str | None) -> list[str]:
    """What the sentence of one shortfall must say (its numbers, formatted the Vietnamese way)."""
    if code == "computers_fewer_than_staff":
        return [f"({site['computers']})", f"({site['staff_total']})"]
    if code == "no_lan":
        return ["LAN"]
    if code == "no_measurements":
        return ["Không có số liệu đo"]
    ln = site["lines"][line]
    if code == "availability_below_minimum":
        return [line_name(ln), f"{vn_num(ln['availability_pct'], 2)} %", vn_num(P.min_availability_pct, 2)]
    return [line_name(ln)]


def test_workbook_and_cover_say_the_same_figures(loaded, month, tmp_path):
    import docx
    import openpyxl

    report = report_of(loaded)
    written = write(report, tmp_path)
    xlsx = next(p for p in written.whole if p.suffix == ".xlsx")
    cover = next(p for p in written.whole if p.suffix == ".docx")
    assert sorted(written.by_operator) == ["FPT", "VNPT", "Viettel"]
    wb = openpyxl.load_workbook(xlsx)
    assert wb.sheetnames == [T.SHEETS[k] for k in ("form", "operator", "short", "completeness", "incidents",
                                                   "basis", "notes")]
    truth = {x: month.truth.site(x) for x in LETTERS}

    # -- the form: one row per unit, declared columns then measured ones
    form = Sheet(wb[T.SHEETS["form"]])
    for n, x in enumerate(LETTERS, 1):
        e, u = truth[x], month.truth.units[x]
        r = form.one(unit_code=e["code"])
        lines = list(e["lines"].values())
        assert (r["stt"], r["unit"]) == (n, e["name"]), x
        assert (r["staff_ft"], r["staff_pt"], r["staff_ct"]) == e["staff"], x
        assert (r["laptops"], r["desktops"], r["scanners"]) == (e["laptops"], e["desktops"], e["scanners"]), x
        assert r["software"] == ("\n".join(name for name, _ in u.software) or None), x
        assert r["software_cost"] == (sum(c for _, c in u.software if c) or None), x
        assert (r["isp"], r["n_lines"], r["line_cost"]) == ("\n".join(e["isps"]), len(lines), e["monthly_cost_vnd"]), x
        assert r["lan"] == {True: "Có", False: "Không", None: None}[e["lan"]], x
        assert r["proposals"] == u.proposals, x
        assert (r["m_computers"], r["m_printers"], r["m_unsure"]) == (
            e["computers_measured"], e["printers_measured"], e["unsure_measured"]), x
        assert r["m_lan"] == T.LAN_SOURCES[e["lan_source"]], x
        enough = [ln["availability_pct"] for ln in lines if ln["availability_verdict"] in ("pass", "fail")]
        if enough:
            close(r["m_avail"], min(enough), f"{x} m_avail")
        else:
            assert r["m_avail"] == (T.NOT_ENOUGH if any(ln["availability_verdict"] == "insufficient"
                                                        for ln in lines) else T.NO_DATA), x
        assert r["m_incidents"] == 0, x
        assert r["m_short"] == ("Có" if e["shortfalls"] else "Không"), x
        speeds = [speed_text(ln) for ln in lines]
        assert r["m_speed"] == (speeds[0] if len(lines) == 1 else
                                "\n".join(f"{ln['line']}: {s}" for ln, s in zip(lines, speeds))), x
        verdicts = ["; ".join(f"{label}: {verdict_word(ln, what)}" for what, label in
                              (("speed", "Tốc độ"), ("latency", "Độ trễ"), ("availability", "Độ khả dụng")))
                    if any(ln[f"{w}_verdict"] != "none" for w in ("speed", "latency", "availability")) else T.NO_DATA
                    for ln in lines]
        assert r["m_verdict"] == (verdicts[0] if len(lines) == 1 else
                                  "\n".join(f"{ln['line']}: {v}" for ln, v in zip(lines, verdicts))), x
    total = form.one(unit=T.TOTAL)
    assert total["staff_ft"] == sum(e["staff"][0] for e in truth.values())
    assert total["m_computers"] == sum(e["computers_measured"] or 0 for e in truth.values())

    # -- the operators' sheet: every line, Viettel's slow line among them
    ops = Sheet(wb[T.SHEETS["operator"]])
    assert len([r for r in ops.rows if r[ops.col("unit_code")]]) == 10
    assert [r[ops.col("operator")] for r in ops.rows] == sorted(r[ops.col("operator")] for r in ops.rows)
    for x in LETTERS:
        for ln in truth[x]["lines"].values():
            w = f"{x} {ln['line']}"
            r = ops.one(unit_code=ln["site"], line=line_name(ln))
            assert (r["operator"], r["line_kind"]) == (ln["isp"], "Internet" if ln["kind"] == "internet" else "TSLCD")
            assert (r["c_down"], r["c_up"], r["min_ratio"]) == (ln["down"]["contracted_mbps"],
                                                                ln["up"]["contracted_mbps"], P.min_speed_ratio), w
            assert (r["tests_down"], r["tests_up"]) == (ln["down"]["tests"], ln["up"]["tests"]), w
            for d in ("down", "up"):
                s = ln[d]
                close(r[f"mean_{d}"], s["mean_mbps"], f"{w} mean_{d}")
                close(r[f"ratio_{d}"], None if s["mean_mbps"] is None else s["mean_mbps"] / s["contracted_mbps"],
                      f"{w} ratio_{d}")
                close(r[f"ok_{d}"], s["tests_ok"] / s["tests"] if s["tests"] else None, f"{w} ok_{d}")
            close(r["lat_mean"], ln["latency_mean_ms"], f"{w} lat_mean")
            close(r["lat_p95"], ln["latency_p95_ms"], f"{w} lat_p95", P95_REL)
            close(r["loss"], 100 * ln["pings_lost"] / ln["pings_sent"] if ln["pings_sent"] else None, f"{w} loss")
            close(r["avail"], ln["availability_pct"], f"{w} avail")
            close(r["down_h"], ln["down_s"] / 3600 if ln["observed_s"] else None, f"{w} down_h")
            assert r["n_incidents"] == 0
            assert (r["v_speed"], r["v_latency"], r["v_avail"]) == tuple(
                verdict_word(ln, what) for what in ("speed", "latency", "availability")), w
    b = ops.one(unit_code="21584", line="Viettel Internet (viettel-fiber)")
    assert (b["operator"], b["v_speed"], b["v_avail"]) == ("Viettel", "Không đạt", "Không đạt")
    close(b["down_h"], 6.0, "B down_h")

    # -- the units that fall short, each reason with its numbers
    short = Sheet(wb[T.SHEETS["short"]])
    n = 0
    for x in LETTERS:
        e = truth[x]
        rows = short.where(unit_code=e["code"])
        assert len(rows) == len(e["shortfalls"]), (x, rows)
        if not rows:
            continue
        n += 1
        assert rows[0][short.col("stt")] == n and all(r[short.col("stt")] is None for r in rows[1:])
        assert {r[short.col("province")] for r in rows} == {"Gia Lai"}
        assert {r[short.col("unit")] for r in rows} == {e["name"]}
        reasons = [r[short.col("reason")] for r in rows]
        for code, line in e["shortfalls"]:
            frags = reason_fragments(e, code, line)
            hit = next((s for s in reasons if all(f in s for f in frags)), None)
            assert hit is not None, (x, code, frags, reasons)
            reasons.remove(hit)
    b_reasons = " ".join(r[short.col("reason")] for r in short.where(unit_code="21584"))
    bl = truth["B"]["lines"]["viettel-fiber"]
    assert f"tải xuống {vn_num(bl['down']['mean_mbps'])} Mbit/s" in b_reasons and "tải lên" not in b_reasons
    d_reasons = [r[short.col("reason")] for r in short.where(unit_code="21586")]
    assert sum("tải xuống" in s for s in d_reasons) == 1 and sum("tải lên" in s for s in d_reasons) == 1

    # -- completeness: per unit (messages, sequence gaps, offline) and per line and probe kind
    comp = Sheet(wb[T.SHEETS["completeness"]])
    for x in LETTERS:
        e = truth[x]
        r = comp.one(unit_code=e["code"], line=T.WHOLE_SITE)
        assert (r["messages"], r["seq_missing"]) == (e["messages"], e["seq_missing"]), x
        close(r["offline_h"], e["offline_s"] / 3600, f"{x} offline_h")
        for ln in e["lines"].values():
            for kind, c in ln["completeness"].items():
                r = comp.one(unit_code=e["code"], line=line_name(ln), probe=T.KIND_WORDS[kind])
                assert (r["scheduled"], r["received"], r["failed"]) == (c["scheduled"], c["received"], c["failed"]), \
                    (x, kind)
                close(r["share"], min(1.0, c["received"] / c["scheduled"]) if c["scheduled"] else None,
                      f"{x} {kind} share")
    assert comp.one(unit_code="21587", line=T.WHOLE_SITE)["seq_missing"] == monthlab.DROPPED_E

    # -- incidents: none were opened (no incident engine ran over this month)
    inc = Sheet(wb[T.SHEETS["incidents"]])
    assert all(v is None for r in inc.rows for v in r)

    # -- the basis of B's download mean: the tests it rests on
    basis = Sheet(wb[T.SHEETS["basis"]])
    r = basis.one(unit_code="21584", figure=T.figure_name("download_mean_mbps"))
    assert (r["value"], r["count"], r["source"]) == (f"{bl['down']['mean_mbps']:.3f}", bl["down"]["tests"],
                                                     "bandwidth_tests")

    # -- Viettel's own workbook: its lines only
    vwb = openpyxl.load_workbook(next(p for p in written.by_operator["Viettel"] if p.suffix == ".xlsx"))
    vops = Sheet(vwb[T.SHEETS["operator"]])
    assert sorted((r[vops.col("unit_code")], r[vops.col("line")]) for r in vops.rows) == [
        ("21584", "Viettel Internet (viettel-fiber)"), ("21588", "Viettel Internet (viettel-fiber)")]

    # -- the cover: every unit that falls short named with its reasons, the others not named
    doc = docx.Document(str(cover))
    paras = [p.text for p in doc.paragraphs]
    for x in LETTERS:
        e = truth[x]
        named = [p for p in paras if f"{e['name']} (mã {e['code']}):" in p]
        assert len(named) == (1 if e["shortfalls"] else 0), (x, named)
        for code, line in e["shortfalls"]:
            assert all(f in named[0] for f in reason_fragments(e, code, line)), (x, code, named[0])
    assert any(month.truth.units["B"].proposals in p for p in paras)

    # -- Viettel's cover: its lines that fall short only (B's), not other operators' nor the units' own
    vdoc = [p.text for p in docx.Document(str(next(p for p in written.by_operator["Viettel"]
                                                   if p.suffix == ".docx"))).paragraphs]
    for x in LETTERS:
        e = truth[x]
        named = [p for p in vdoc if f"{e['name']} (mã {e['code']}):" in p]
        mine = [(c, ln) for c, ln in e["shortfalls"] if ln and e["lines"][ln]["isp"] == "Viettel"]
        assert len(named) == (1 if mine else 0), (x, named)
        for code, line in mine:
            assert all(f in named[0] for f in reason_fragments(e, code, line)), (x, code, named[0])

    # -- the cover's totals: G's line (nothing measured) is "no data", H's (from the 27th) "too little data"
    lines = [ln for e in truth.values() for ln in e["lines"].values()]
    v = Counter(ln["speed_verdict"] for ln in lines)
    expected_totals = "- " + T.totals_lines(len(lines), v["pass"], v["fail"], v["insufficient"], v["none"])
    assert expected_totals in paras, ([p for p in paras if p.startswith("- Số đường truyền")], expected_totals)


# ----------------------------------------------------------------------------- after pruning
def test_same_figures_from_rollups_alone_after_the_raw_rows_are_pruned(loaded, month):
    rec = loaded.record
    before = report_of(loaded)
    assert rec.events(EventFilter(messages=True, limit=1)), "raw rows are there before pruning"
    res = rec.prune(20, 400, now=END + 30 * 86400)
    assert res.pruned_events >= len(month.sent)
    assert rec.events(EventFilter(limit=1)) == [], "every raw row of the month is gone"
    assert rec.rollups(start=START, end=END) and rec.bandwidth_tests(start=START, end=END)
    after = report_of(loaded)
    check_report(after, month)
    assert after.sites == before.sites and after.totals == before.totals

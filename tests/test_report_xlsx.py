"""The monthly report's XLSX renderer: the official form with the measured figures beside it, the
operator's own workbook, shortfalls, and text that can never become a formula."""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from linewatch.collector.report import text as T
from linewatch.collector.report.model import Report, SiteFigures
from linewatch.collector.report.xlsx import FORM, ILLEGAL, OPERATOR, write_workbook
from reportsample import sample

FORM_COL = {c.key: j for j, c in enumerate(FORM, 1)}
OP_COL = {c.key: j for j, c in enumerate(OPERATOR, 1)}
VN_TIME = re.compile(r"^\d\d:\d\d \d\d/\d\d/\d{4}$")
#: Seed 000's form, "BÁO CÁO SỐ LIỆU HẠ TẦNG CÔNG NGHỆ THÔNG TIN": column groups and their columns, in order.
SEED_FORM = [
    ("Số lượng CBCCV", ["Chuyên trách", "Không chuyên trách", "Hợp đồng"]),
    ("Số lượng máy tính, máy quét", ["Laptop", "Máy tính để bàn", "Máy quét"]),
    ("Tên phần mềm đang triển khai sử dụng, kinh phí chi trả", ["Tên phần mềm", "Kinh phí"]),
    ("Đang sử dụng đường truyền internet",
     ["Tên nhà cung cấp dịch vụ Internet", "Số lượng đường truyền", "Kinh phí chi trả hàng tháng"]),
    ("Có hệ thống mạng nội bộ (LAN)", []),
]


def _site(report: Report, code: str) -> SiteFigures:
    return next(s for s in report.sites if s.code == code)


def _header_row(ws) -> int:
    return next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value in ("STT", "Nhà mạng", "Mã sự cố", "Đơn vị", "Mục"))


def _rows(ws, header_rows: int = 2) -> list[tuple]:
    return list(ws.iter_rows(min_row=_header_row(ws) + header_rows, values_only=True))


def _form_row(ws, code: str) -> dict[str, object]:
    r = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, FORM_COL["unit_code"]).value == code)
    return {k: ws.cell(r, j).value for k, j in FORM_COL.items()}


@pytest.fixture(scope="module")
def report() -> Report:
    return sample()


@pytest.fixture(scope="module")
def whole(report, tmp_path_factory) -> openpyxl.Workbook:
    return openpyxl.load_workbook(write_workbook(report, tmp_path_factory.mktemp("x") / "all.xlsx"))


@pytest.fixture(scope="module")
def vnpt(report, tmp_path_factory) -> openpyxl.Workbook:
    return openpyxl.load_workbook(write_workbook(report, tmp_path_factory.mktemp("x") / "vnpt.xlsx", "VNPT"))


def test_form_header_follows_the_seed_columns_in_order(whole):
    """The form sheet's two header rows are the seed's column groups and columns, in order, then the measured group in its own colour."""
    ws = whole[T.SHEETS["form"]]
    assert ws.title == whole.sheetnames[0]
    top = _header_row(ws)
    assert "SỐ LIỆU HẠ TẦNG CÔNG NGHỆ THÔNG TIN" in ws.cell(1, 1).value
    assert [ws.cell(top, 1).value, ws.cell(top, 2).value] == ["STT", "Đơn vị"]
    col = 4
    for group, subs in SEED_FORM:
        assert group in ws.cell(top, col).value
        if not subs:
            col += 1
            continue
        assert [ws.cell(top + 1, col + i).value for i in range(len(subs))] == subs
        assert all(ws.cell(top, col + i).value is None for i in range(1, len(subs)))  # merged under the group
        col += len(subs)
    assert ws.cell(top, col).value.startswith("Đề xuất/kiến nghị")
    measured = ws.cell(top, col + 1)
    assert measured.value == T.MEASURED_GROUP
    assert measured.fill.fgColor.rgb != ws.cell(top, 4).fill.fgColor.rgb
    assert ws.cell(top + 2, 1).value == 1  # data right under the header


def test_form_rows_of_the_good_and_slow_units(whole, report):
    """The good and the slow unit's rows hold their staff, declared computers, software, ISPs, lines, cost, LAN and measured figures, as numbers where numeric."""
    ws = whole[T.SHEETS["form"]]
    for code in ("21583", "21584"):
        s, row = _site(report, code), _form_row(ws, code)
        assert row["unit"] == s.name
        assert (row["staff_ft"], row["staff_pt"], row["staff_ct"]) == (s.staff_full_time, s.staff_part_time,
                                                                       s.staff_contract)
        assert (row["laptops"], row["desktops"], row["scanners"]) == (s.laptops, s.desktops, s.scanners)
        assert row["software"] == "\n".join(name for name, _ in s.software)
        assert row["software_cost"] == sum(c for _, c in s.software if c is not None)
        assert row["isp"] == "\n".join(s.isps)
        assert row["n_lines"] == s.n_lines and row["line_cost"] == s.monthly_cost_vnd
        assert row["lan"] == T.yes_no(s.lan)
        assert row["m_computers"] == s.computers_measured and row["m_printers"] == s.printers_measured
        for ln in s.lines:
            assert T.speed_measured(ln) in row["m_speed"]
        assert row["m_avail"] == pytest.approx(min(ln.availability_pct for ln in s.lines))
        assert row["m_incidents"] == len(s.incidents) + sum(len(ln.incidents) for ln in s.lines)
        assert row["m_short"] == T.yes_no(s.falls_short)
        for k in ("staff_ft", "n_lines", "line_cost", "software_cost", "m_avail", "m_computers"):
            assert isinstance(row[k], (int, float)), k
    good, slow = _form_row(ws, "21583"), _form_row(ws, "21584")
    assert good["proposals"] is None and slow["proposals"] == _site(report, "21584").proposals
    assert good["lan"] == "Có" and slow["lan"] == "Không" and slow["m_short"] == "Có"
    # not declared: the declared cells stay empty, the measured figure is in its own column
    assert (slow["laptops"], slow["desktops"], slow["scanners"]) == (None, None, None) and slow["m_computers"] == 1
    assert slow["m_speed"] == "100/100 → 65/92,5 Mbit/s (65 %)"
    r = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, FORM_COL["unit_code"]).value == "21583")
    assert ws.cell(r, FORM_COL["line_cost"]).number_format == "#,##0"


def test_insufficient_figures_never_show_a_verdict_and_the_dark_unit_shows_no_data(tmp_path):
    """A figure resting on too little data reads "Chưa đủ dữ liệu" (even if a verdict was computed), and the unit with no measurements reads "Không có số liệu đo" with empty cells, not 0."""
    r = sample()
    thin = _site(r, "21586")
    forced = replace(thin, lines=(replace(thin.lines[0], speed_verdict="fail"),))
    r = replace(r, sites=tuple(forced if s.code == "21586" else s for s in r.sites))
    wb = openpyxl.load_workbook(write_workbook(r, tmp_path / "a.xlsx"))
    form = _form_row(wb[T.SHEETS["form"]], "21586")
    assert form["m_avail"] == T.NOT_ENOUGH
    assert form["m_verdict"] == f"Tốc độ: {T.NOT_ENOUGH}; Độ trễ: Đạt; Độ khả dụng: {T.NOT_ENOUGH}"
    assert form["m_speed"].endswith(T.NOT_ENOUGH)
    ops = {row[OP_COL["unit_code"] - 1]: row for row in _rows(wb[T.SHEETS["operator"]])}
    thin_row = ops["21586"]
    assert thin_row[OP_COL["v_speed"] - 1] == T.NOT_ENOUGH and thin_row[OP_COL["v_avail"] - 1] == T.NOT_ENOUGH
    dark = _form_row(wb[T.SHEETS["form"]], "21585")
    assert dark["m_avail"] == T.NO_DATA and dark["m_verdict"] == T.NO_DATA and dark["m_speed"].endswith(T.NO_DATA)
    assert dark["lan"] is None and dark["m_computers"] is None
    dark_op = ops["21585"]
    assert [dark_op[OP_COL[k] - 1] for k in ("v_speed", "v_latency", "v_avail")] == [T.NO_DATA] * 3
    assert [dark_op[OP_COL[k] - 1] for k in ("mean_down", "lat_mean", "loss", "avail", "down_h")] == [None] * 5
    marked = [row for row in _rows(wb[T.SHEETS["completeness"]]) if row[-1]]
    assert {row[1] for row in marked} == {"21585", "21586"}
    assert T.insufficient("speed") in {row[-1] for row in marked}


def test_operator_workbook_holds_only_its_lines_and_incidents(vnpt, report):
    """The VNPT workbook has the operator sheets only and nothing of another operator's lines or units."""
    assert vnpt.sheetnames == [T.SHEETS[k] for k in ("operator", "incidents", "completeness", "basis", "notes")]
    mine = report.lines("VNPT")
    ops = _rows(vnpt[T.SHEETS["operator"]])
    assert {row[0] for row in ops} == {"VNPT"}
    assert sorted(row[OP_COL["line"] - 1] for row in ops) == sorted(T.line_name(ln) for ln in mine)
    incidents = _rows(vnpt[T.SHEETS["incidents"]])
    assert [row[0] for row in incidents] == [i.id for i in report.incidents("VNPT")] and incidents
    names = {T.line_name(ln) for ln in mine}
    assert {row[2] for row in _rows(vnpt[T.SHEETS["completeness"]])} == names
    assert {row[2] for row in _rows(vnpt[T.SHEETS["basis"]])} == names
    others = [s.name for s in report.sites if all(ln.operator != "VNPT" for ln in s.lines)] + ["viettel", "fpt"]
    for ws in vnpt:
        for row in ws.iter_rows(values_only=True):
            for v in row:
                assert not (isinstance(v, str) and any(o.lower() in v.lower() for o in others)), (ws.title, v)


def test_shortfalls_sheet_lists_each_reason_of_each_short_unit(whole, report, tmp_path):
    """Every reason of every unit that falls short is a row of its own; with none, one row says so."""
    rows = [(row[1], row[4]) for row in _rows(whole[T.SHEETS["short"]])]
    expected = [(s.name, T.shortfall(sh, s)) for s in report.sites for sh in s.shortfalls]
    assert rows == expected and len(expected) >= 5
    clean = replace(report, sites=tuple(replace(s, shortfalls=()) for s in report.sites))
    wb = openpyxl.load_workbook(write_workbook(clean, tmp_path / "c.xlsx"))
    assert [row[0] for row in _rows(wb[T.SHEETS["short"]])] == [T.NONE_SHORT_ROW]


def test_times_are_vietnam_time_text_and_incidents_are_complete(whole, report):
    """Incident times are text "HH:MM dd/mm/yyyy" in Vietnam time, durations worded, every incident of the month listed."""
    rows = _rows(whole[T.SHEETS["incidents"]])
    assert [row[0] for row in rows] == [i.id for i in report.incidents()]
    first, inc = rows[0], report.incidents()[0]
    assert first[7] == T.time_(inc.opened_at) and VN_TIME.match(first[7])
    assert first[9] == inc.acked_by and first[13] == T.duration(inc.time_to_repair_s)
    open_row = next(row for row in rows if row[0] == 2)
    assert open_row[8] is None and open_row[10] is None and open_row[14] == T.state_name("open")
    basis = _rows(whole[T.SHEETS["basis"]])
    assert [row[-1] for row in basis] == [b.query for b in report.basis]


def test_provinces_are_grouped_when_there_are_several(tmp_path):
    """With two provinces, the form shows each province's name as a band above its own units."""
    r = sample()
    r = replace(r, provinces={"52": "Gia Lai", "51": "Quảng Ngãi"},
                sites=tuple(replace(s, province="51") if s.code == "21585" else s for s in r.sites))
    ws = openpyxl.load_workbook(write_workbook(r, tmp_path / "p.xlsx"))[T.SHEETS["form"]]
    rows = _rows(ws)
    assert [rows[0][0], rows[1][1], rows[2][0]] == ["Quảng Ngãi", "UBND xã Hoài Sơn", "Gia Lai"]
    assert [row[0] for row in _rows(ws) if isinstance(row[0], int)] == [1, 2, 3, 4]


def test_workbooks_open_with_short_sheet_names_and_the_page_setup(whole, vnpt):
    """Both workbooks open, sheet names fit Excel's 31 characters, pages are A4 landscape fit to width with repeated, frozen headers in Times New Roman."""
    assert whole.sheetnames == [T.SHEETS[k] for k in ("form", "operator", "short", "completeness", "incidents",
                                                      "basis", "notes")]
    for wb in (whole, vnpt):
        for ws in wb:
            assert len(ws.title) <= 31
            assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 9
            # the form prints two pages wide (its own columns, then the measured ones); the rest one
            wide = 2 if ws.title == T.SHEETS["form"] else 1
            assert ws.sheet_properties.pageSetUpPr.fitToPage and int(ws.page_setup.fitToWidth) == wide
            assert ws.print_title_rows and ws.freeze_panes
            top = _header_row(ws)
            head, data = ws.cell(top, 1), ws.cell(top + 2, 2)
            assert head.font.b and head.alignment.wrap_text and head.border.left.style == "thin"
            assert {head.font.name, data.font.name, ws.cell(1, 1).font.name} == {"Times New Roman"}
            assert ws.column_dimensions["A"].width > 0


names = st.tuples(st.sampled_from(["", "=", "+", "-", "@", " =", "\t=", "=HYPERLINK(\"http://x\")"]),
                  st.text(max_size=30)).map("".join)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(unit=names, software=names, proposal=names, note=names)
def test_hostile_text_never_crashes_nor_becomes_a_formula(tmp_path, unit, software, proposal, note):
    """Unit names, software names, proposals and notes of any text (leading "=", control characters) are written as plain text, never a formula."""
    r = sample()
    sites = tuple(replace(s, name=unit, software=((software, 1.0),) + s.software[1:], proposals=proposal)
                  for s in r.sites)
    r = replace(r, sites=sites, notes=(note,))
    wb = openpyxl.load_workbook(write_workbook(r, tmp_path / "h.xlsx"))
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
    expected = ILLEGAL.sub("", ILLEGAL_CHARACTERS_RE.sub("", unit)) or None
    row = _form_row(wb[T.SHEETS["form"]], "21583")
    assert row["unit"] == expected
    if expected and expected.lstrip()[:1] in ("=", "+", "-", "@"):
        r0 = next(i for i in range(1, 40) if wb[T.SHEETS["form"]].cell(i, FORM_COL["unit_code"]).value == "21583")
        assert wb[T.SHEETS["form"]].cell(r0, FORM_COL["unit"]).quotePrefix
    assert row["proposals"] == (ILLEGAL.sub("", proposal) or None)


def test_write_workbook_returns_the_path(tmp_path, report):
    """write_workbook writes the file where asked and returns its path."""
    p = tmp_path / "r.xlsx"
    assert write_workbook(report, p) == p and p.stat().st_size > 0
    assert isinstance(p, Path)


@pytest.mark.may_skip
@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed: apt-get "
                                                          "install libreoffice-calc-nogui poppler-utils")
def test_libreoffice_prints_the_workbook_on_a4_landscape_pages(tmp_path):
    """LibreOffice turns the whole workbook into a PDF whose pages are A4 landscape and carry the form's title."""
    path = write_workbook(sample(), tmp_path / "book.xlsx")
    subprocess.run([shutil.which("soffice"), f"-env:UserInstallation=file://{tmp_path}/lo-profile", "--headless",
                    "--convert-to", "pdf", "--outdir", str(tmp_path), str(path)],
                   check=True, timeout=180, capture_output=True)
    pdf = tmp_path / "book.pdf"
    assert pdf.exists()
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        assert int(next(ln.split()[-1] for ln in info.splitlines() if ln.startswith("Pages:"))) >= 7
        size = next(ln for ln in info.splitlines() if ln.startswith("Page size:"))
        w, h = (float(x) for x in size.split(":")[1].split("pts")[0].split(" x "))
        assert w > h  # landscape
    if shutil.which("pdftotext"):
        words = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert "BÁO CÁO SỐ LIỆU HẠ TẦNG" in words.upper()

"""The monthly report as an XLSX workbook (openpyxl): the official form "BÁO CÁO SỐ LIỆU HẠ TẦNG
CÔNG NGHỆ THÔNG TIN" (seed 000's columns, in order) with the measured figures beside it, then the
operators' lines, the units that fall short, completeness, incidents, the basis of every figure
and notes. ``operator="VNPT"`` writes the operator's own workbook (its lines only).

Longer than 400 lines on purpose: one renderer per output format, and the form's sheets share
its named styles and column helpers; their wording is in text.py.

Numbers are real numbers (computable) with a number format; a missing figure is an empty cell,
never 0. Times are text in Vietnam time (``14:05 23/11/2026``), everywhere. Every word comes from
text.py. Text is never a formula: unit names come from a registry file an office edits.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.pagebreak import Break
from openpyxl.worksheet.worksheet import Worksheet

from . import text as T
from .model import IncidentRow, LineFigures, Report, SiteFigures

FONT = "Times New Roman"
#: Characters XML 1.0 cannot hold (openpyxl refuses the controls; lone surrogates, U+FFFE/FFFF break the file).
ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
FORMULA_START = ("=", "+", "-", "@")
MAX_CELL_CHARS = 32767  # Excel's limit for one cell
LINE_PT = 15.0          # height of one line of 11 pt text, in points

INT, DEC, MONEY, SHARE, PCT2 = "#,##0", "#,##0.0", "#,##0", "0.0%", "0.00"
_THIN = Side(style="thin", color="000000")
BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
HEAD_FILL = PatternFill("solid", fgColor="DDEBF7")      # the official form / ordinary headers
MEASURED_FILL = PatternFill("solid", fgColor="FCE4D6")  # what linewatch measured (the form never had it)
BAND_FILL = PatternFill("solid", fgColor="EDEDED")      # a province's band
MARK_FILL = PatternFill("solid", fgColor="FFF2CC")      # too little data
#: Completeness kind -> the figure it feeds (LineFigures.insufficient names figures).
KIND_FIGURE = {"bandwidth": "speed", "latency": "latency", "reach": "availability"}


@dataclass(frozen=True)
class Col:
    key: str                 # header from text.XLSX_COLUMNS
    width: float
    fmt: str | None = None   # number format of the column's numbers


class Band(str):
    """A row naming a group (a province) across the whole table."""


class Mark(list):
    """A data row to be noticed (it rests on too little data)."""


class Total(list):
    """A totals row (bold)."""


# -- cells and tables

def _put(ws: Worksheet, row: int, col: int, value: Any, fmt: str | None = None, *, bold: bool = False,
         border: bool = True) -> Any:
    cell = ws.cell(row, col)
    if isinstance(value, bool):
        value = T.yes_no(value)
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    if isinstance(value, str):
        value = ILLEGAL.sub("", value)[:MAX_CELL_CHARS] or None
    cell.value = value
    cell.style = _style(ws, bold, border)  # first: a named style resets the number format
    if isinstance(value, str):
        cell.data_type = "s"   # never a formula (nor an error code), whatever it starts with
        if value.lstrip().startswith(FORMULA_START):
            cell.quotePrefix = True   # and Excel keeps it text when someone edits the cell
    elif value is not None and fmt:
        cell.number_format = fmt
    return cell


def _style(ws: Worksheet, bold: bool, border: bool) -> str:
    """One named style per look, registered once per workbook: setting a cell's font,
    alignment and border one by one costs openpyxl a style lookup each (most of the time)."""
    name = f"lw{'-b' if bold else ''}{'' if border else '-nb'}"
    wb = ws.parent
    if name not in wb.style_names:
        wb.add_named_style(NamedStyle(name=name, font=Font(name=FONT, size=11, bold=bold),
                                      alignment=Alignment(wrap_text=True, vertical="top"),
                                      border=BORDER if border else Border()))
    return name


def _lines(v: Any, width: float) -> int:
    """Lines a wrapped text takes in a column ``width`` wide (an estimate on the safe side: row
    heights are written, since not every reader fits them on opening)."""
    if not isinstance(v, str):
        return 1
    per = max(1, int(width * 1.2) - 1)
    return sum(max(1, -(-len(part) // per)) for part in v.split("\n"))


def _table(ws: Worksheet, top: int, cols: list[Col], rows: Iterable[Any], freeze: int = 1) -> int:
    """Header rows (two when any column has a group, groups merged across their columns),
    then the rows: lists of values, ``Band`` (a label across the table), ``Mark`` (highlighted),
    ``Total`` (bold). Freezes below the header and right of the first ``freeze`` columns.
    Returns the next free row."""
    heads = [T.XLSX_COLUMNS[c.key] for c in cols]
    bottom = top + 1 if any(g for g, _ in heads) else top
    group_lines, sub_lines, tall = 1, 1, 1
    for j, (c, (group, label)) in enumerate(zip(cols, heads), 1):
        ws.column_dimensions[get_column_letter(j)].width = c.width
        fill = MEASURED_FILL if group == T.MEASURED_GROUP else HEAD_FILL
        for r in range(top, bottom + 1):
            cell = _put(ws, r, j, (group if r == top else label) if group else (label if r == top else None), bold=True)
            cell.fill = fill
            cell.alignment = Alignment(wrap_text=True, horizontal="center", vertical="center")
        if group:
            sub_lines = max(sub_lines, _lines(label, c.width))
        else:
            tall = max(tall, _lines(label, c.width))
            if bottom > top:
                ws.merge_cells(start_row=top, start_column=j, end_row=bottom, end_column=j)
    j = 0
    while j < len(cols):
        k = j
        while k + 1 < len(cols) and heads[k + 1][0] == heads[j][0]:
            k += 1
        if heads[j][0]:
            group_lines = max(group_lines, _lines(heads[j][0], sum(c.width for c in cols[j:k + 1])))
            if k > j:
                ws.merge_cells(start_row=top, start_column=j + 1, end_row=top, end_column=k + 1)
        j = k + 1
    if bottom > top:
        ws.row_dimensions[top].height = LINE_PT * group_lines
        ws.row_dimensions[bottom].height = LINE_PT * max(sub_lines, tall - group_lines)
    else:
        ws.row_dimensions[top].height = LINE_PT * tall
    r = bottom + 1
    for row in rows:
        if isinstance(row, Band):
            for j in range(1, len(cols) + 1):
                _put(ws, r, j, str(row) if j == 1 else None, bold=True).fill = BAND_FILL
            ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=len(cols))
        else:
            for j, (c, v) in enumerate(zip(cols, row), 1):
                cell = _put(ws, r, j, v, c.fmt, bold=isinstance(row, Total))
                if isinstance(row, Mark):
                    cell.fill = MARK_FILL
            ws.row_dimensions[r].height = LINE_PT * max(_lines(v, c.width) for c, v in zip(cols, row))
        r += 1
    ws.freeze_panes = ws.cell(bottom + 1, freeze + 1).coordinate
    ws.print_title_rows = f"{top}:{bottom}"
    return r


def _sheet(wb: Workbook, key: str, titles: list[str], cols: list[Col], rows: Iterable[Any], freeze: int = 1,
           title_span: int | None = None) -> Worksheet:
    """A sheet: title rows across the table, a blank row, the table; A4 landscape, fit to width."""
    ws = wb.create_sheet(T.SHEETS[key])
    for i, t in enumerate(titles, 1):
        cell = _put(ws, i, 1, t, bold=i == 1, border=False)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        if i == 1:
            cell.font = Font(name=FONT, size=13, bold=True)
        ws.merge_cells(start_row=i, start_column=1, end_row=i, end_column=max(2, title_span or len(cols)))
    _table(ws, len(titles) + 2, cols, rows, freeze)
    ps = ws.page_setup
    ps.orientation, ps.paperSize, ps.fitToWidth, ps.fitToHeight = "landscape", ws.PAPERSIZE_A4, 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins = PageMargins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    ws.print_options.horizontalCentered = True
    return ws


def _titles(report: Report, key: str, operator: str | None) -> list[str]:
    month = T.month_label(report.period).capitalize()
    return [T.SHEET_TITLES[key], month + (f" – {T.NOTE_ITEMS['operator']}: {operator}" if operator else ""),
            f"{T.NOTE_ITEMS['scope']}: {T.scope_label(report.scope, report.provinces)}"]


# -- the sheets

FORM = [Col("stt", 5, INT), Col("unit", 26), Col("unit_code", 8),
        Col("staff_ft", 10, INT), Col("staff_pt", 10, INT), Col("staff_ct", 9, INT),
        Col("laptops", 8, INT), Col("desktops", 9, INT), Col("scanners", 8, INT),
        Col("software", 28), Col("software_cost", 13, MONEY),
        Col("isp", 14), Col("n_lines", 10, INT), Col("line_cost", 13, MONEY),
        Col("lan", 11), Col("proposals", 28),
        Col("m_computers", 10, INT), Col("m_printers", 10, INT), Col("m_unsure", 9, INT), Col("m_lan", 10),
        Col("m_speed", 34), Col("m_avail", 11, PCT2), Col("m_incidents", 8, INT), Col("m_verdict", 36),
        Col("m_short", 12)]


def _per_line(s: SiteFigures, fn) -> str | None:
    if len(s.lines) == 1:
        return fn(s.lines[0])
    return "\n".join(f"{ln.line}: {fn(ln)}" for ln in s.lines) or None


def _thin(ln: LineFigures, what: str, v: str) -> bool:
    return what in ln.insufficient or v == "insufficient"


def site_availability(s: SiteFigures) -> float | str | None:
    """The lowest availability of the unit's lines that rest on enough data, else why not."""
    ok = [ln.availability_pct for ln in s.lines
          if ln.availability_pct is not None and not _thin(ln, "availability", ln.availability_verdict)]
    if ok:
        return min(ok)
    if any(_thin(ln, "availability", ln.availability_verdict) for ln in s.lines):
        return T.NOT_ENOUGH
    return T.NO_DATA if s.lines else None


def form_row(n: int | str, s: SiteFigures) -> list[Any]:
    costs = [c for _, c in s.software if c is not None]
    return [n, s.name, s.code, s.staff_full_time, s.staff_part_time, s.staff_contract,
            s.laptops, s.desktops, s.scanners, "\n".join(name for name, _ in s.software), sum(costs) if costs else None,
            "\n".join(s.isps), s.n_lines, s.monthly_cost_vnd, T.yes_no(s.lan), s.proposals,
            s.computers_measured, s.printers_measured, s.unsure_measured, T.LAN_SOURCES.get(s.lan_source, s.lan_source),
            _per_line(s, T.speed_measured), site_availability(s),
            len(s.incidents) + sum(len(ln.incidents) for ln in s.lines), _per_line(s, T.line_verdicts),
            T.yes_no(s.falls_short)]


def _form(wb: Workbook, report: Report) -> None:
    provinces = sorted({s.province for s in report.sites})
    banded = len(provinces) > 1 or len(report.provinces) > 1
    rows: list[Any] = []
    n = 0
    for p in provinces:
        if banded:
            rows.append(Band(report.provinces.get(p, p)))
        for s in report.province_sites(p):
            n += 1
            rows.append(form_row(n, s))
    summed = {"staff_ft", "staff_pt", "staff_ct", "laptops", "desktops", "scanners", "software_cost", "n_lines",
              "line_cost", "m_computers", "m_printers", "m_unsure", "m_incidents"}
    data = [r for r in rows if not isinstance(r, Band)]
    total = Total([None] * len(FORM))
    total[1] = T.TOTAL
    for j, c in enumerate(FORM):
        vals = [r[j] for r in data if isinstance(r[j], (int, float))]
        if c.key in summed and vals:
            total[j] = sum(vals)
    # printed two pages wide: the official form's columns (the title over them), then the measured
    # ones, the unit repeated
    split = next(i for i, c in enumerate(FORM) if c.key.startswith("m_"))
    ws = _sheet(wb, "form", _titles(report, "form", None), FORM, rows + ([total] if data else []), freeze=3,
                title_span=split)
    ws.page_setup.fitToWidth = 2
    ws.print_title_cols = "A:C"
    ws.col_breaks.append(Break(id=split))


OPERATOR = [Col("operator", 10), Col("unit", 24), Col("unit_code", 8), Col("line", 24), Col("line_kind", 9),
            Col("c_down", 9, DEC), Col("c_up", 9, DEC), Col("mean_down", 9, DEC), Col("mean_up", 9, DEC),
            Col("ratio_down", 9, SHARE), Col("ratio_up", 9, SHARE), Col("min_ratio", 9, "0%"),
            Col("ok_down", 9, SHARE), Col("ok_up", 9, SHARE), Col("tests_down", 8, INT), Col("tests_up", 8, INT),
            Col("lat_mean", 9, DEC), Col("lat_p95", 9, DEC), Col("loss", 8, PCT2), Col("avail", 9, PCT2),
            Col("down_h", 10, DEC), Col("n_incidents", 8, INT),
            Col("v_speed", 14), Col("v_latency", 14), Col("v_avail", 14)]


def operator_row(s: SiteFigures, ln: LineFigures) -> list[Any]:
    return [ln.operator, s.name, s.code, T.line_name(ln), T.LINE_KINDS.get(ln.kind, ln.kind),
            ln.down.contracted_mbps, ln.up.contracted_mbps, ln.down.mean_mbps, ln.up.mean_mbps,
            ln.down.ratio, ln.up.ratio, ln.down.min_ratio, ln.down.share_ok, ln.up.share_ok,
            ln.down.tests, ln.up.tests, ln.latency_mean_ms, ln.latency_p95_ms, ln.loss_pct, ln.availability_pct,
            None if ln.observed_s <= 0 else ln.down_s / 3600, len(ln.incidents),
            T.figure_verdict(ln, "speed", ln.speed_verdict), T.figure_verdict(ln, "latency", ln.latency_verdict),
            T.figure_verdict(ln, "availability", ln.availability_verdict)]


def _site_lines(report: Report, operator: str | None) -> list[tuple[SiteFigures, LineFigures]]:
    return [(s, ln) for s in report.sites for ln in s.lines if operator is None or ln.operator == operator]


def _operator(wb: Workbook, report: Report, operator: str | None) -> None:
    pairs = sorted(_site_lines(report, operator), key=lambda p: (p[1].operator, p[0].code, p[1].line))
    _sheet(wb, "operator", _titles(report, "operator", operator), OPERATOR,
           [operator_row(s, ln) for s, ln in pairs], freeze=4)


SHORT = [Col("stt", 5, INT), Col("unit", 30), Col("unit_code", 8), Col("province", 16), Col("reason", 90)]


def _short(wb: Workbook, report: Report) -> None:
    rows: list[Any] = []
    for n, s in enumerate((s for s in report.sites if s.shortfalls), 1):
        rows += [[n if i == 0 else None, s.name, s.code, report.provinces.get(s.province, s.province),
                  T.shortfall(sh, s)] for i, sh in enumerate(s.shortfalls)]
    _sheet(wb, "short", _titles(report, "short", None), SHORT, rows or [Band(T.NONE_SHORT_ROW)], freeze=3)


COMPLETENESS = [Col("unit", 26), Col("unit_code", 8), Col("line", 26), Col("probe", 16),
                Col("scheduled", 10, INT), Col("received", 10, INT), Col("failed", 8, INT), Col("share", 10, SHARE),
                Col("messages", 10, INT), Col("seq_missing", 12, INT), Col("offline_h", 12, DEC), Col("remark", 26)]


def completeness_rows(s: SiteFigures, lines: Iterable[LineFigures], site_row: bool = True) -> list[Any]:
    rows: list[Any] = []
    if site_row:
        rows.append([s.name, s.code, T.WHOLE_SITE, None, None, None, None, None,
                     s.messages, s.seq_missing, s.offline_s / 3600, None])
    for ln in lines:
        for k in ln.completeness:
            figure = KIND_FIGURE.get(k.kind)
            remark = T.NO_DATA if not k.received else (T.insufficient(figure) if figure in ln.insufficient else None)
            row = [s.name, s.code, T.line_name(ln), T.KIND_WORDS.get(k.kind, k.kind), k.scheduled, k.received,
                   k.failed, k.share, None, None, None, remark]
            rows.append(Mark(row) if remark else row)
    return rows


def _completeness(wb: Workbook, report: Report, operator: str | None) -> None:
    rows: list[Any] = []
    for s in report.sites:
        lines = [ln for ln in s.lines if operator is None or ln.operator == operator]
        if operator is None or lines:
            rows += completeness_rows(s, lines, site_row=operator is None)
    _sheet(wb, "completeness", _titles(report, "completeness", operator), COMPLETENESS, rows, freeze=3)


INCIDENTS = [Col("inc_id", 8, "0"), Col("unit", 24), Col("unit_code", 8), Col("line", 24), Col("inc_kind", 20),
             Col("cause", 14), Col("route", 12), Col("opened", 16), Col("acked", 16), Col("acked_by", 20),
             Col("resolved", 16), Col("closed", 16), Col("tta", 14), Col("ttr", 14), Col("state", 12),
             Col("maint", 10), Col("suppressed", 10), Col("flaps", 9, INT)]


def _names(report: Report) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    return ({s.code: s.name for s in report.sites},
            {(ln.site, ln.line): T.line_name(ln) for ln in report.lines()})


def incident_row(i: IncidentRow, sites: dict[str, str], lines: dict[tuple[str, str], str]) -> list[Any]:
    return [i.id, sites.get(i.site, i.site), i.site, lines.get((i.site, i.line), i.line) if i.line else None,
            T.kind_name(i.kind), T.CAUSES.get(i.cause, i.cause), T.ROUTES.get(i.route, i.route),
            T.time_(i.opened_at), T.time_(i.acked_at), i.acked_by, T.time_(i.resolved_at), T.time_(i.closed_at),
            T.duration(i.time_to_ack_s), T.duration(i.time_to_repair_s), T.state_name(i.state),
            T.yes_no(i.in_maintenance), T.yes_no(i.suppressed), i.flaps]


def _incidents(wb: Workbook, report: Report, operator: str | None) -> None:
    sites, lines = _names(report)
    _sheet(wb, "incidents", _titles(report, "incidents", operator), INCIDENTS,
           [incident_row(i, sites, lines) for i in report.incidents(operator)], freeze=3)


BASIS = [Col("unit", 22), Col("unit_code", 8), Col("line", 22), Col("figure", 24), Col("value", 12),
         Col("source", 14), Col("first", 16), Col("last", 16), Col("count", 9, INT), Col("query", 70)]


def _basis(wb: Workbook, report: Report, operator: str | None) -> None:
    sites, lines = _names(report)
    mine = {(s.code, ln.line) for s, ln in _site_lines(report, operator)}
    rows = [[sites.get(b.site, b.site), b.site, lines.get((b.site, b.line), b.line) if b.line else T.WHOLE_SITE,
             T.figure_name(b.figure), b.value, b.source, T.time_(b.first_at), T.time_(b.last_at), b.count, b.query]
            for b in report.basis if operator is None or (b.site, b.line) in mine]
    _sheet(wb, "basis", _titles(report, "basis", operator), BASIS, rows, freeze=3)


NOTES = [Col("item", 26), Col("text", 110)]


def _notes(wb: Workbook, report: Report, operator: str | None) -> None:
    w = T.NOTE_ITEMS
    rows: list[Any] = [[w["report"], T.report_title(report.period)], [w["month"], T.month_label(report.period).capitalize()],
                       [w["scope"], T.scope_label(report.scope, report.provinces)]]
    if operator:
        rows.append([w["operator"], operator])
    rows.append([w["generated"], T.time_(report.generated_at)])
    rows += [[w["note"], n] for n in report.notes]
    rows += [list(d) for d in T.DEFINITIONS]
    rows += [list(t) for t in T.thresholds(report.lines(operator))]
    _sheet(wb, "notes", _titles(report, "notes", operator), NOTES, rows)


def write_workbook(report: Report, path: Path, operator: str | None = None) -> Path:
    """Write the monthly workbook: the whole report (``operator=None``, for the IT office) or
    one operator's own (its lines, their incidents, completeness and basis). Returns ``path``."""
    wb = Workbook()
    wb.remove(wb.active)
    wb.properties.creator = "linewatch"
    wb.properties.title = ILLEGAL.sub("", f"{T.FORM_TITLE} {T.month_label(report.period)}")
    if operator is None:
        _form(wb, report)
        _operator(wb, report, None)
        _short(wb, report)
        _completeness(wb, report, None)
        _incidents(wb, report, None)
        _basis(wb, report, None)
    else:
        _operator(wb, report, operator)
        _incidents(wb, report, operator)
        _completeness(wb, report, operator)
        _basis(wb, report, operator)
    _notes(wb, report, operator)
    path = Path(path)
    wb.save(path)
    return path

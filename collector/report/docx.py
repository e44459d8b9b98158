"""The cover report (DOCX) in the layout of Nghị định 30/2020/NĐ-CP, Phụ lục I: A4 portrait,
margins 20/20/30/15 mm, Times New Roman, the issuing body and the Quốc hiệu side by side, "BÁO
CÁO" and its subject, the body (basis, key figures, a chart per province, the units that fall
short and why, incidents, proposals), then "Nơi nhận" and the signature block side by side;
page numbers from page 2, centred at the top.

``operator=`` gives the same cover for one operator's lines and incidents, addressed to it.
Every word comes from :mod:`.text`; every string goes through :func:`text.doc_text` on its way
in (lxml refuses control characters). No clock is read: the document's dates are the report's
``generated_at``, and the zip is written with fixed timestamps, so the same report gives the
same bytes.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from statistics import median

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH as ALIGN
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Mm, Pt, RGBColor

from . import text
from .chart import chart_lines, speed_chart
from .model import IncidentRow, LineFigures, Report, SiteFigures

FONT = "Times New Roman"
BODY_CM = 16.5                  # 210 - 30 - 15 mm
LEFT_CM, RIGHT_CM = 7.2, 9.3    # the two columns of the header and signature tables (9,3: the Quốc hiệu
                                # in 12 pt bold is 8,8 cm)
CELL_PAD_CM = 0.19              # Word's default left/right cell margin
CHART_CM = 16.0
MAX_OPEN = 15                   # open incidents listed by name; the rest are in the XLSX
_PPR_AFTER_PBDR = ("w:shd", "w:tabs", "w:suppressAutoHyphens", "w:kinsoku", "w:wordWrap", "w:overflowPunct",
                   "w:topLinePunct", "w:autoSpaceDE", "w:autoSpaceDN", "w:bidi", "w:adjustRightInd",
                   "w:snapToGrid", "w:spacing", "w:ind", "w:contextualSpacing", "w:mirrorIndents",
                   "w:suppressOverlap", "w:jc", "w:textDirection", "w:textAlignment", "w:textboxTightWrap",
                   "w:outlineLvl", "w:divId", "w:cnfStyle", "w:rPr", "w:sectPr", "w:pPrChange")


@dataclass(frozen=True)
class _Scope:
    operator: str | None
    lines: tuple[tuple[SiteFigures, LineFigures], ...]
    sites: tuple[SiteFigures, ...]
    incidents: tuple[IncidentRow, ...]


def _scope(report: Report, operator: str | None) -> _Scope:
    lines = tuple((s, ln) for s in report.sites for ln in s.lines if operator is None or ln.operator == operator)
    sites = report.sites if operator is None else tuple(s for s in report.sites if any(ln.site == s.code
                                                                                        for _, ln in lines))
    return _Scope(operator, lines, sites, tuple(report.incidents(operator)))


def _is_open(i: IncidentRow) -> bool:
    return i.resolved_at is None and i.closed_at is None


def _thin(ln: LineFigures) -> bool:
    return ln.speed_verdict == "insufficient" or bool(ln.insufficient)


# -- low-level layout ------------------------------------------------------------------------

def _para(parent, txt: str = "", *, size: float = 14, bold: bool = False, italic: bool = False,
          align=ALIGN.JUSTIFY, indent: bool = True, before: float = 6, after: float = 0, keep: bool = False):
    """A paragraph (the first, empty one of a table cell is reused) with one run of ``txt``."""
    ps = getattr(parent, "paragraphs", None)
    p = ps[0] if ps is not None and hasattr(parent, "_tc") and len(ps) == 1 and not ps[0].text else \
        parent.add_paragraph()
    pf = p.paragraph_format
    pf.alignment, pf.space_before, pf.space_after, pf.line_spacing = align, Pt(before), Pt(after), 1.0
    pf.first_line_indent = Cm(1.27) if indent else None
    pf.keep_with_next = keep or None
    if txt:
        r = p.add_run(text.doc_text(txt))
        r.font.size, r.font.bold, r.font.italic = Pt(size), bold or None, italic or None
    return p


def _rule(parent, length_cm: float, width_cm: float) -> None:
    """A short horizontal line, centred: the bottom border of a tiny empty paragraph whose
    indents leave ``length_cm`` between them."""
    p = _para(parent, align=ALIGN.CENTER, indent=False, before=1.5)
    pf = p.paragraph_format
    pf.line_spacing = Pt(2)
    side = max(0.0, (width_cm - length_cm) / 2)
    pf.left_indent = pf.right_indent = Cm(side)
    pbdr = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for k, v in (("w:val", "single"), ("w:sz", "6"), ("w:space", "1"), ("w:color", "000000")):
        bottom.set(qn(k), v)
    pbdr.append(bottom)
    p._p.get_or_add_pPr().insert_element_before(pbdr, *_PPR_AFTER_PBDR)


def _table(doc, rows: int):
    """A borderless two-column table of the body width (header block, signature block)."""
    t = doc.add_table(rows=rows, cols=2)
    t.alignment, t.autofit = WD_TABLE_ALIGNMENT.CENTER, False
    tblPr = t._tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        e = OxmlElement(f"w:{edge}")
        e.set(qn("w:val"), "nil")
        borders.append(e)
    tblPr.append(borders)
    layout = OxmlElement("w:tblLayout")
    layout.set(qn("w:type"), "fixed")
    tblPr.append(layout)
    for col, w in zip(t.columns, (LEFT_CM, RIGHT_CM)):
        col.width = Cm(w)
        for cell in col.cells:
            cell.width = Cm(w)
    return t


def _page_number(section) -> None:
    """PAGE field centred in the header; the first page has its own, empty header."""
    section.different_first_page_header_footer = True
    section.first_page_header.is_linked_to_previous = False
    p = section.header.paragraphs[0]
    p.alignment = ALIGN.CENTER

    def run(tag: str, **attrs: str):
        r = p.add_run()
        r.font.size = Pt(14)
        el = OxmlElement(tag)
        for k, v in attrs.items():
            el.set(qn(k), v)
        r._r.append(el)
        return el

    run("w:fldChar", **{"w:fldCharType": "begin"})
    run("w:instrText", **{"xml:space": "preserve"}).text = " PAGE "
    run("w:fldChar", **{"w:fldCharType": "separate"})
    p.add_run("2").font.size = Pt(14)
    run("w:fldChar", **{"w:fldCharType": "end"})


def _setup(doc, report: Report, title: str) -> None:
    s = doc.sections[0]
    s.orientation, s.page_width, s.page_height = WD_ORIENT.PORTRAIT, Mm(210), Mm(297)
    s.top_margin, s.bottom_margin, s.left_margin, s.right_margin = Mm(20), Mm(20), Mm(30), Mm(15)
    s.header_distance, s.footer_distance = Mm(10), Mm(10)
    st = doc.styles["Normal"]
    st.font.name, st.font.size, st.font.color.rgb = FONT, Pt(14), RGBColor(0, 0, 0)
    rpr = st.element.get_or_add_rPr()
    lang = OxmlElement("w:lang")
    lang.set(qn("w:val"), "vi-VN")
    rpr.append(lang)
    # the style's rFonts and the document defaults' (which name theme fonts that win over a
    # plain name): Times New Roman for every script, East Asian included
    for rfonts in (rpr.rFonts, doc.styles.element.find(qn("w:docDefaults") + "/" + qn("w:rPrDefault") + "/"
                                                       + qn("w:rPr") + "/" + qn("w:rFonts"))):
        if rfonts is None:
            continue
        for k in list(rfonts.attrib):
            if k.endswith("Theme") or k.endswith("theme"):
                del rfonts.attrib[k]
        for k in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
            rfonts.set(qn(k), FONT)
    _page_number(s)
    cp = doc.core_properties
    at = datetime.fromtimestamp(report.generated_at, timezone.utc).replace(tzinfo=None)
    cp.title, cp.subject = text.doc_text(title), report.period.month
    cp.author = cp.last_modified_by = text.doc_text(report.issuer.body)
    cp.created = cp.modified = cp.last_printed = at
    cp.revision, cp.comments, cp.keywords, cp.category = 1, "linewatch", "", ""


def _stable_zip(data: bytes, at: float) -> bytes:
    """The package again with every member dated ``at`` (zip keeps local time, 2 s steps)."""
    d = text.vn(max(at, 315532800 + 86400))
    stamp = (d.year, d.month, d.day, d.hour, d.minute, d.second // 2 * 2)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, stamp)
            zi.compress_type, zi.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            dst.writestr(zi, src.read(info.filename))
    return out.getvalue()


# -- the parts of the cover ------------------------------------------------------------------

def _head(doc, report: Report, sc: _Scope) -> None:
    iss = report.issuer
    t = _table(doc, 2)
    left, right = t.cell(0, 0), t.cell(0, 1)
    c = dict(align=ALIGN.CENTER, indent=False, before=0)
    if iss.parent_body:
        _para(left, iss.parent_body.upper(), size=12, **c)
    # 13 pt when it fits on a line of the column, else 12 (both allowed): "SỞ KHOA HỌC VÀ CÔNG NGHỆ" would
    # break before its last word in 13
    _para(left, iss.body.upper(), size=13 if len(iss.body) <= 21 else 12, bold=True, **c)
    _rule(left, 2.5, LEFT_CM - 2 * CELL_PAD_CM)
    _para(right, text.NATIONAL_TITLE, size=12, bold=True, **c)
    _para(right, text.MOTTO, size=13, bold=True, **c)
    _rule(right, 5.6, RIGHT_CM - 2 * CELL_PAD_CM)
    _para(t.cell(1, 0), text.doc_number(iss.doc_code), size=13, **{**c, "before": 6})
    _para(t.cell(1, 1), text.place_date(iss.place, report.generated_at), size=14, italic=True, **{**c, "before": 6})
    _para(doc, text.DOC_KIND, bold=True, align=ALIGN.CENTER, indent=False, before=18)
    _para(doc, text.report_title(report.period), bold=True, align=ALIGN.CENTER, indent=False, before=0)
    if sc.operator:
        _para(doc, text.operator_subject(sc.operator), bold=True, align=ALIGN.CENTER, indent=False, before=0)
    _rule(doc, 4.0, BODY_CM)
    if sc.operator:
        _para(doc, text.addressed_to(sc.operator), align=ALIGN.CENTER, indent=False, before=12)


def _basis(doc, report: Report, sc: _Scope) -> None:
    for s in text.LEGAL_BASIS:
        _para(doc, s, italic=True)
    ratios = sorted(ln.down.min_ratio for _, ln in sc.lines) or [0.8]
    _para(doc, text.intro(report.period, sc.operator))
    _para(doc, text.measured_by(report.period, median(ratios)))


def _counts(lines) -> tuple[int, int, int, int]:
    vs = [ln.speed_verdict for ln in lines]
    return vs.count("pass"), vs.count("fail"), vs.count("insufficient"), vs.count("none")


def _totals(doc, report: Report, sc: _Scope) -> None:
    _para(doc, text.HEAD_TOTALS, bold=True, keep=True)
    if sc.operator is None:
        t = report.totals
        none = t.lines_no_data
        rows = (text.totals_units(t.sites, t.sites_measured, t.sites_short),
                text.totals_lines(t.lines, t.lines_speed_pass, t.lines_speed_fail, t.lines_insufficient, none),
                text.totals_incidents(t.incidents, t.incidents_open))
    else:
        lines = [ln for _, ln in sc.lines]
        measured = sum(1 for s in sc.sites if any(ln.measured for ln in lines if ln.site == s.code))
        rows = (text.totals_units(len(sc.sites), measured, None), text.totals_lines(len(lines), *_counts(lines)),
                text.totals_incidents(len(sc.incidents), sum(map(_is_open, sc.incidents))))
    for r in rows:
        _para(doc, f"- {r}")


def _provinces(report: Report, sc: _Scope) -> list[str]:
    codes = {s.province for s in sc.sites}
    return [c for c in report.provinces if c in codes] + sorted(codes - set(report.provinces))


def _by_province(doc, report: Report, sc: _Scope) -> None:
    _para(doc, text.HEAD_PROVINCES, bold=True, keep=True)
    if not sc.sites:
        _para(doc, text.NONE_SITES)
    for n, code in enumerate(_provinces(report, sc), 1):
        name = report.provinces.get(code) or code
        lines = [ln for s, ln in sc.lines if s.province == code]
        ratios = [ln.down.ratio for ln in lines if ln.down.ratio is not None]
        sites = sum(1 for s in sc.sites if s.province == code)
        ok, fail, thin, _ = _counts(lines)
        _para(doc, f"{n}. " + text.province_summary(name, sites, len(lines), ok, fail, thin,
                                                   median(ratios) if ratios else None))
        pic = _para(doc, align=ALIGN.CENTER, indent=False, keep=True)
        pic.add_run().add_picture(io.BytesIO(speed_chart(report, code, sc.operator)), width=Cm(CHART_CM))
        sel = chart_lines(report, code, sc.operator)
        _para(doc, text.chart_caption(n, name, len(sel.shown), sel.measured, sel.unmeasured), size=12,
              italic=True, align=ALIGN.CENTER, indent=False, before=0, after=6)


def _short(doc, report: Report, sc: _Scope) -> None:
    _para(doc, text.HEAD_SHORT_OPERATOR if sc.operator else text.HEAD_SHORT, bold=True, keep=True)
    ours = {(s.code, ln.line) for s, ln in sc.lines}
    n = 0
    for s in sc.sites:
        falls = [f for f in s.shortfalls if sc.operator is None or (f.line is not None and (s.code, f.line) in ours)]
        if falls:
            n += 1
            _para(doc, f"{n}. " + text.unit_short(s.name, s.code, [text.shortfall(f, s) for f in falls]))
    if not n:
        _para(doc, text.NONE_SHORT_OPERATOR if sc.operator else text.NONE_SHORT)
    _para(doc, text.not_verdicts(sum(1 for _, ln in sc.lines if _thin(ln))), italic=True)


def _incidents(doc, report: Report, sc: _Scope) -> None:
    _para(doc, text.HEAD_INCIDENTS, bold=True, keep=True)
    if not sc.incidents:
        _para(doc, text.NONE_INCIDENTS)
        return
    op_of = {(s.code, ln.line): ln.operator for s, ln in sc.lines}
    groups: dict[str, list[IncidentRow]] = {}
    for i in sc.incidents:
        who = op_of.get((i.site, i.line)) if i.line is not None else None
        groups.setdefault(who or text.SITE_INCIDENTS, []).append(i)
    order = [o for o in report.operators if o in groups] + sorted(g for g in groups if g not in report.operators
                                                                  and g != text.SITE_INCIDENTS)
    order += [text.SITE_INCIDENTS] if text.SITE_INCIDENTS in groups else []
    for who in order:
        rows = groups[who]
        ttr = [i.time_to_repair_s for i in rows if i.time_to_repair_s is not None]
        _para(doc, "- " + text.incidents_of(who, len(rows), sum(map(_is_open, rows)), median(ttr) if ttr else None))
    names = {s.code: s.name for s in report.sites}
    still = [i for i in sc.incidents if _is_open(i)]
    for i in still[:MAX_OPEN]:
        _para(doc, "- " + text.open_incident(i.kind, names.get(i.site, i.site), i.line, i.opened_at))
    if len(still) > MAX_OPEN:
        _para(doc, text.more_open(len(still) - MAX_OPEN))


def _proposals(doc, report: Report, sc: _Scope) -> None:
    _para(doc, text.HEAD_PROPOSALS, bold=True, keep=True)
    fails = any(ln.speed_verdict == "fail" for _, ln in sc.lines)
    rows: list[str] = []
    if sc.operator:
        if fails or any(map(_is_open, sc.incidents)):
            rows.append(text.propose_operator(sc.operator))
    else:
        rows += [text.PROPOSE_OPERATORS] if fails else []
        rows += [text.PROPOSE_UNITS] if any(s.falls_short for s in sc.sites) else []
        rows += [text.unit_proposal(s.name, s.proposals) for s in sc.sites if (s.proposals or "").strip()]
    for r in rows or [text.NONE_PROPOSALS]:
        _para(doc, f"- {r}")


def _closing(doc, report: Report, sc: _Scope) -> None:
    for note in report.notes:
        _para(doc, text.note(note), italic=True)
    _para(doc, text.attachment(), keep=True)   # the last lines of the body go with the signature
    iss = report.issuer
    t = _table(doc, 1)
    for row in t.rows:   # the block stays in one piece at the bottom of the last page
        trpr = row._tr.get_or_add_trPr()
        trpr.append(OxmlElement("w:cantSplit"))
    left, right = t.cell(0, 0), t.cell(0, 1)
    _para(left, text.RECIPIENTS_HEAD, size=12, bold=True, italic=True, align=ALIGN.LEFT, indent=False, before=12)
    who = ([text.AS_ABOVE] if sc.operator else []) + list(iss.recipients)
    for r in who:
        _para(left, text.recipient(r), size=11, align=ALIGN.LEFT, indent=False, before=0)
    _para(left, text.recipient(iss.archive, last=True), size=11, align=ALIGN.LEFT, indent=False, before=0)
    c = dict(align=ALIGN.CENTER, indent=False, before=0)
    for i, ln in enumerate(iss.signer_title.splitlines() or [""]):
        _para(right, ln.upper(), size=13, bold=True, **{**c, "before": 12 if i == 0 else 0})
    for _ in range(4):   # room for the signature and the seal
        _para(right, "", **c)
    _para(right, iss.signer_name, size=14, bold=True, **c)


def build_cover(report: Report, operator: str | None = None):
    """The cover as a python-docx Document (see :func:`write_cover`)."""
    sc = _scope(report, operator)
    doc = Document()
    title = text.report_title(report.period) + (f" – {operator}" if operator else "")
    _setup(doc, report, title)
    _head(doc, report, sc)
    _basis(doc, report, sc)
    _totals(doc, report, sc)
    _by_province(doc, report, sc)
    _short(doc, report, sc)
    _incidents(doc, report, sc)
    _proposals(doc, report, sc)
    _closing(doc, report, sc)
    return doc


def write_cover(report: Report, path: Path, operator: str | None = None) -> Path:
    """Write the cover report (DOCX) to ``path``; with ``operator``, only that operator's lines
    and incidents, addressed to it. The same report gives the same bytes."""
    buf = io.BytesIO()
    build_cover(report, operator).save(buf)
    path = Path(path)
    path.write_bytes(_stable_zip(buf.getvalue(), report.generated_at))
    return path

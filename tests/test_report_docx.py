"""The cover report (DOCX, Nghị định 30/2020/NĐ-CP layout) and its per-province chart, read back
with python-docx, and once through LibreOffice to a PDF and a page image."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from docx import Document
from docx.oxml.ns import qn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linewatch.collector.report import text
from linewatch.collector.report.chart import MAX_BARS, chart_lines, speed_chart
from linewatch.collector.report.docx import write_cover
from reportsample import line, period, sample, site

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def paragraphs(doc) -> list:
    """Every paragraph of the body, table cells included, in order."""
    out = list(doc.paragraphs)
    for t in doc.tables:
        for row in t.rows:
            for cell in row.cells:
                out += cell.paragraphs
    return out


def all_text(doc) -> str:
    return "\n".join(p.text for p in paragraphs(doc))


def find(doc, needle: str):
    hits = [p for p in paragraphs(doc) if needle in p.text]
    assert hits, f"{needle!r} not in the document"
    return hits[0]


@pytest.fixture(scope="module")
def report():
    return sample()


@pytest.fixture(scope="module")
def cover(report, tmp_path_factory):
    path = write_cover(report, tmp_path_factory.mktemp("cover") / "cover.docx")
    return path, Document(str(path))


def two_provinces(report):
    """The sample with one unit moved to a second province."""
    sites = tuple(dataclasses.replace(s, province="51") if s.code == "21585" else s for s in report.sites)
    return dataclasses.replace(report, sites=sites, provinces={"52": "Gia Lai", "51": "Quảng Ngãi"})


def test_header_block_has_the_national_title_motto_number_and_date(report, cover):
    """The Quốc hiệu and Tiêu ngữ are bold, the number is left blank before /BC-SKHCN, and the place
    and date are the report's, in italics."""
    _, doc = cover
    for words in (text.NATIONAL_TITLE, text.MOTTO):
        p = find(doc, words)
        assert p.text == words and all(r.bold for r in p.runs)
    number = find(doc, "Số:")
    assert number.text.endswith("/BC-SKHCN") and number.text.startswith("Số: ")
    when = find(doc, text.place_date(report.issuer.place, report.generated_at))
    assert when.text == text.place_date("Quy Nhơn", report.generated_at) and all(r.italic for r in when.runs)
    assert find(doc, "UBND TỈNH GIA LAI").text == "UBND TỈNH GIA LAI"
    assert all(r.bold for r in find(doc, "SỞ KHOA HỌC VÀ CÔNG NGHỆ").runs)


def test_title_and_subject_are_bold_and_centred(report, cover):
    """"BÁO CÁO" and the subject are bold, centred paragraphs of their own."""
    _, doc = cover
    for words in (text.DOC_KIND, text.report_title(report.period)):
        p = next(p for p in doc.paragraphs if p.text == words)
        assert all(r.bold for r in p.runs) and p.alignment == 1   # CENTER


def test_every_short_unit_is_named_with_each_reason(report, cover):
    """Each unit that falls short is named, with every one of its reasons worded by text.shortfall."""
    _, doc = cover
    body = all_text(doc)
    short = [s for s in report.sites if s.shortfalls]
    assert len(short) == 2
    for s in short:
        assert s.name in body
        for f in s.shortfalls:
            assert text.shortfall(f, s) in body
    assert text.not_verdicts(1) in body      # the thin line is counted, not judged
    assert "UBND xã Hoài Châu & \"Bắc\" <Tam Quan>: Đề nghị nâng cấp đường truyền TSLCD." in body


def test_key_figures_incidents_and_attachment_are_stated(report, cover):
    """The totals, the incidents per operator with their median repair time and the pointer to
    the XLSX are in the body."""
    _, doc = cover
    body = all_text(doc)
    t = report.totals
    assert text.totals_units(t.sites, t.sites_measured, t.sites_short) in body
    assert text.totals_incidents(4, 1) in body
    assert text.incidents_of("Viettel", 2, 1, 3 * 3600) in body
    assert text.incidents_of("VNPT", 1, 0, 2 * 3600) in body
    assert text.attachment() in body


def test_recipients_and_signature_block(report, cover):
    """"Nơi nhận:" lists the recipients and ends with the archive; the signer's title and name
    are bold."""
    _, doc = cover
    head = find(doc, text.RECIPIENTS_HEAD)
    assert all(r.bold and r.italic for r in head.runs)
    body = all_text(doc)
    for r in report.issuer.recipients:
        assert f"- {r};" in body
    assert "- Lưu: VT." in body
    for words in ("KT. GIÁM ĐỐC", "PHÓ GIÁM ĐỐC", "Nguyễn Văn A"):
        assert all(r.bold for r in find(doc, words).runs)


def test_page_is_a4_with_the_decree_margins_and_times_new_roman(cover):
    """A4 portrait, margins 20/20/30/15 mm, Times New Roman for every script, page numbers from page 2."""
    _, doc = cover
    s = doc.sections[0]
    def mm(*lengths):   # Word keeps twentieths of a point: 210 mm is 11906 twips
        return [round(x.mm, 1) for x in lengths]

    assert mm(s.page_width, s.page_height) == [210, 297] and s.orientation == 0   # PORTRAIT
    assert mm(s.top_margin, s.bottom_margin, s.left_margin, s.right_margin) == [20, 20, 30, 15]
    normal = doc.styles["Normal"]
    assert normal.font.name == "Times New Roman"
    rfonts = normal.element.rPr.rFonts
    assert rfonts.get(qn("w:eastAsia")) == "Times New Roman" and rfonts.get(qn("w:cs")) == "Times New Roman"
    assert s.different_first_page_header_footer
    assert "PAGE" in s.header._element.xml and "PAGE" not in s.first_page_header._element.xml


def test_a_chart_is_embedded_per_province(report, tmp_path):
    """Each province of the report gets one picture, its chart."""
    doc = Document(str(write_cover(report, tmp_path / "one.docx")))
    assert len(doc.inline_shapes) == 1
    two = two_provinces(report)
    doc = Document(str(write_cover(two, tmp_path / "two.docx")))
    assert len(doc.inline_shapes) == 2
    assert "Hình 2. Tốc độ trung bình so với tốc độ cam kết, Quảng Ngãi" in all_text(doc)


def test_operator_cover_names_only_that_operators_lines(report, tmp_path):
    """The Viettel cover is addressed to Viettel and names its line only: no other operator's
    line or unit."""
    doc = Document(str(write_cover(report, tmp_path / "viettel.docx", operator="Viettel")))
    body = all_text(doc)
    assert "viettel-fiber" in body and text.addressed_to("Viettel") in body
    for other in ("vnpt-fiber", "vnpt-tslcd", "fpt-fiber", "Hoài Nhơn Bắc", "UBND xã Hoài Sơn", "UBND xã Tam Quan",
                  "VNPT:", "FPT"):
        assert other not in body, other
    assert text.totals_incidents(2, 1) in body
    assert len(doc.inline_shapes) == 1


def test_cover_bytes_and_properties_are_deterministic(report, cover, tmp_path):
    """The same report gives the same DOCX bytes, dated and authored from the report, not the clock."""
    path, doc = cover
    again = write_cover(report, tmp_path / "again.docx")
    assert again.read_bytes() == path.read_bytes()
    cp = doc.core_properties
    assert cp.author == report.issuer.body and cp.created.timestamp() == report.generated_at
    assert cp.title == text.report_title(report.period)


def test_chart_is_a_png_and_the_same_bytes_for_the_same_report(report):
    """The chart is a PNG, and rendering it twice gives identical bytes."""
    a, b = speed_chart(report, "52"), speed_chart(report, "52")
    assert a.startswith(PNG_MAGIC) and a == b
    assert speed_chart(report, "52", "Viettel") != a
    assert speed_chart(report, "99").startswith(PNG_MAGIC)   # a province with nothing measured


def test_chart_shows_only_the_worst_lines_of_a_large_province():
    """A province of 300 lines shows its MAX_BARS lowest ratios, and the caption says how many of how many."""
    p = period()
    sites = tuple(site(f"3{i:04d}", f"UBND xã {i}", (
        line(p, f"3{i:04d}", "a", "VNPT", "internet", [50 + i % 100] * 30, [150] * 30, 150),
        line(p, f"3{i:04d}", "b", "Viettel", "internet", [150] * 30, [20 + i % 120] * 30, 150)))
        for i in range(150))
    big = dataclasses.replace(sample(), sites=sites)
    sel = chart_lines(big, "52")
    assert (len(sel.shown), sel.measured, sel.unmeasured) == (MAX_BARS, 300, 0)
    worst = min(min(ln.down.ratio, ln.up.ratio) for s in sites for ln in s.lines)
    assert min(min(ln.down.ratio, ln.up.ratio) for _, ln in sel.shown) == worst
    downs = [ln.down.ratio for _, ln in sel.shown]
    assert downs == sorted(downs)
    assert f"({MAX_BARS} đường truyền có tỷ lệ thấp nhất trong 300" in text.chart_caption(1, "Gia Lai", MAX_BARS, 300, 0)
    assert speed_chart(big, "52").startswith(PNG_MAGIC)


def test_doc_text_keeps_letters_and_drops_what_xml_refuses():
    """doc_text drops controls, lone surrogates and bidi overrides, and keeps Vietnamese letters."""
    assert text.doc_text("Phường\x00 Thử\x1b\ud800\u202e Nghiệm\nA\tB\ufffe") == "Phường Thử Nghiệm A B"
    assert text.doc_text(None) == ""


hostile = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(list("\x00\x01\x08\x0b\x0c\x1b\x7f\x85\ufffe\uffff\ud800\udfff\u202e\u2066\u2028\n\r\t")
                             + list("$\\{}<>&\"'%ẠỗĐ ") + ["$x^2$", "\\frac", "_{", "👍🏽"]), max_size=20).map("".join),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=hostile, proposal=hostile, line_id=hostile, signer=hostile)
def test_hostile_names_never_break_the_cover(name, proposal, line_id, signer):
    """Unit names, proposals, line ids and the signer's name with any characters (controls, TeX
    markup, surrogates) give a cover that opens, with the name shown cleaned."""
    r = sample()
    sites = tuple(dataclasses.replace(s, name=name, proposals=proposal,
                                      lines=tuple(dataclasses.replace(ln, line=line_id) for ln in s.lines))
                  for s in r.sites)
    r = dataclasses.replace(r, sites=sites, issuer=dataclasses.replace(r.issuer, signer_name=signer))
    with tempfile.TemporaryDirectory() as d:
        doc = Document(str(write_cover(r, Path(d) / "x.docx")))
        doc_op = Document(str(write_cover(r, Path(d) / "op.docx", operator="Viettel")))
    body = all_text(doc)
    assert text.doc_text(name) in body and text.doc_text(signer) in body
    assert len(doc.inline_shapes) == 1 and len(doc_op.inline_shapes) == 1


SOFFICE = shutil.which("soffice")


@pytest.mark.may_skip
@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed: apt-get install "
                                            "libreoffice-writer-nogui poppler-utils")
def test_libreoffice_renders_the_cover(report, cover, tmp_path):
    """LibreOffice converts the cover to a PDF of several pages, with the Vietnamese words extractable
    and a first page that is not blank."""
    path, _ = cover
    out = tmp_path / "pdf"
    subprocess.run([SOFFICE, f"-env:UserInstallation=file://{tmp_path}/lo-profile", "--headless",
                    "--convert-to", "pdf", "--outdir", str(out), str(path)],
                   check=True, timeout=120, capture_output=True)
    pdf = out / "cover.pdf"
    assert pdf.exists()
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        pages = int(next(ln.split()[-1] for ln in info.splitlines() if ln.startswith("Pages:")))
    else:
        pages = pdf.read_bytes().count(b"/Type /Page") - pdf.read_bytes().count(b"/Type /Pages")
    assert pages >= 1
    if shutil.which("pdftotext"):
        words = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        for w in (text.NATIONAL_TITLE, text.MOTTO, text.DOC_KIND, "Nguyễn Văn A"):
            assert w in words
    if shutil.which("pdftoppm"):
        from PIL import Image
        subprocess.run(["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "1", str(pdf), str(out / "page")],
                       check=True, timeout=60)
        png = next(out.glob("page*.png"))
        assert png.stat().st_size > 5000
        with Image.open(png) as im:
            darkest, _ = im.convert("L").getextrema()
        assert darkest < 100    # black text on the page, not a blank one

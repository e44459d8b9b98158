"""The cover report's chart: for the lines of one province, the average speed measured against
the contracted speed, as a ratio, with the QCVN 34:2022 minimum (80 %) drawn as a line.

A province can have a few hundred lines; a bar per line would not read on a page, so the chart
shows the lines with the lowest ratio in either direction (at most :data:`MAX_BARS`) and the
caption says so (:func:`chart_lines` gives the counts). Bars are the download ratio, sorted,
coloured by the line's speed verdict; a diamond marks the upload ratio (the verdict needs both).

Rendered with matplotlib's Agg canvas directly (no pyplot, no global backend switch), DejaVu
Sans (ships with matplotlib, has the Vietnamese glyphs), a fixed size and dpi and no
"Software" metadata: the same report gives the same PNG bytes.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from statistics import mode

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import text
from .model import LineFigures, Report, SiteFigures

MAX_BARS = 25
WIDTH_IN = 16 / 2.54   # 16 cm: the text width of an A4 page with 30/15 mm margins is 16,5 cm
DPI = 150
LABEL_CHARS = 46
X_CAP = 150.0          # ratios above 150 % (a contract set too low) are drawn to the edge, value written
COLORS = {"pass": "#5b7fa6", "fail": "#c0392b", "thin": "#c8c8c8"}
RC = {"font.family": "DejaVu Sans", "font.size": 8, "axes.linewidth": 0.6, "svg.hashsalt": "linewatch",
      "hatch.linewidth": 0.6}


@dataclass(frozen=True)
class ChartLines:
    shown: tuple[tuple[SiteFigures, LineFigures], ...]   # lowest download ratio first
    measured: int        # lines of the province with a measured mean download
    unmeasured: int      # lines without


def _ratio_key(ln: LineFigures) -> float:
    rs = [r for r in (ln.down.ratio, ln.up.ratio) if r is not None]
    return min(rs) if rs else 0.0


def chart_lines(report: Report, province: str, operator: str | None = None) -> ChartLines:
    """The lines the chart of ``province`` shows (of ``operator`` only, when given)."""
    pairs = [(s, ln) for s in report.province_sites(province) for ln in s.lines
             if operator is None or ln.operator == operator]
    measured = [(s, ln) for s, ln in pairs if ln.down.mean_mbps is not None and ln.down.contracted_mbps > 0]
    measured.sort(key=lambda p: (_ratio_key(p[1]), p[0].code, p[1].line))
    shown = sorted(measured[:MAX_BARS], key=lambda p: (p[1].down.ratio or 0.0, p[0].code, p[1].line))
    return ChartLines(tuple(shown), len(measured), len(pairs) - len(measured))


def _label(s: SiteFigures, ln: LineFigures) -> str:
    name = text.doc_text(s.name).strip() or s.code
    tail = f" · {text.doc_text(ln.line)}"
    room = max(8, LABEL_CHARS - len(tail))
    if len(name) > room:
        name = name[: room - 1].rstrip() + "…"
    return _no_math(name + tail)


def _no_math(s: str) -> str:
    """matplotlib reads text between two ``$`` as TeX math; an escaped ``\\$`` is shown as is."""
    return s.replace("$", r"\$")


def _thin(ln: LineFigures) -> bool:
    return ln.speed_verdict == "insufficient" or "speed" in ln.insufficient


def speed_chart(report: Report, province: str, operator: str | None = None) -> bytes:
    """PNG: the average download (bar) and upload (diamond) of the province's worst lines, as a
    percentage of the contracted speed, with the minimum ratio as a dashed line."""
    sel = chart_lines(report, province, operator)
    n = len(sel.shown)
    height = 1.5 + 0.24 * max(n, 1)
    with matplotlib.rc_context(RC), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph .* missing")
        warnings.filterwarnings("ignore", message=r".*[Ff]ont.*")
        fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        if not n:
            ax.set_axis_off()
            ax.text(0.5, 0.5, text.CHART_EMPTY, ha="center", va="center", fontsize=10, transform=ax.transAxes)
        else:
            _draw(fig, ax, sel)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _draw(fig: Figure, ax, sel: ChartLines) -> None:
    lines = [ln for _, ln in sel.shown]
    ys = list(range(len(lines)))
    down = [100 * (ln.down.ratio or 0.0) for ln in lines]
    min_ratio = mode(sorted(ln.down.min_ratio for ln in lines))
    top = max([*down, *(100 * (ln.up.ratio or 0) for ln in lines), 100.0])
    xmax = min(X_CAP, 10 * (int(top) // 10 + 2))
    colors = [COLORS["thin"] if _thin(ln) else COLORS["fail" if ln.speed_verdict == "fail" else "pass"]
              for ln in lines]
    bars = ax.barh(ys, [min(v, xmax) for v in down], height=0.62, color=colors, edgecolor="#333333",
                   linewidth=0.3, zorder=2)
    for bar, ln in zip(bars, lines):
        if _thin(ln):
            bar.set_hatch("////")
    ups = [(100 * ln.up.ratio, y) for ln, y in zip(lines, ys) if ln.up.ratio is not None]
    if ups:
        ax.scatter([min(u, xmax) for u, _ in ups], [y for _, y in ups], marker="D", s=11, color="black",
                   zorder=3, linewidths=0)
    ax.axvline(100 * min_ratio, color="black", linestyle="--", linewidth=0.9, zorder=4)
    ax.set_yticks(ys, [_label(s, ln) for s, ln in sel.shown])
    ax.set_ylim(len(lines) - 0.5, -0.5)   # worst at the top
    ax.set_xlim(0, xmax)
    ax.set_xlabel(text.CHART_AXIS)
    ax.grid(axis="x", color="#dddddd", linewidth=0.5, zorder=0)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    # measured/contracted download, in a column right of the plot
    trans = ax.get_yaxis_transform()
    ax.text(1.01, -0.6, text.CHART_VALUES, transform=trans, ha="left", va="bottom", fontsize=6.5, linespacing=1.15)
    for y, ln in zip(ys, lines):
        ax.text(1.01, y, f"{text.num(ln.down.mean_mbps, 0)}/{text.num(ln.down.contracted_mbps, 0)}",
                transform=trans, ha="left", va="center", fontsize=7)
    handles = [Patch(facecolor=COLORS["pass"], edgecolor="#333333", linewidth=0.3, label=text.CHART_DOWN_PASS),
               Patch(facecolor=COLORS["fail"], edgecolor="#333333", linewidth=0.3, label=text.CHART_DOWN_FAIL),
               Patch(facecolor=COLORS["thin"], edgecolor="#333333", linewidth=0.3, hatch="////",
                     label=text.CHART_DOWN_THIN),
               Line2D([], [], marker="D", color="black", linestyle="", markersize=3.5, label=text.CHART_UP),
               Line2D([], [], color="black", linestyle="--", linewidth=0.9,
                      label=text.chart_minimum(min_ratio))]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False, fontsize=7)

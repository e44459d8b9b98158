"""The one plain-text table renderer: columns padded to their widest cell, two spaces apart,
an optional rule of dashes under the head, no trailing blanks. Used by every command that
prints a table (agent, collector status, inventory, incidents) and the e-mails' text part."""
from __future__ import annotations

import unicodedata
from typing import Iterable, Sequence


def _width(cell: str) -> int:
    # Vietnamese typed with combining marks is as wide as its precomposed (NFC) form
    return len(unicodedata.normalize("NFC", cell))


def lines(head: Sequence[str], rows: Iterable[Sequence[object]], rule: bool = True) -> list[str]:
    """The table as lines; cells are ``str()``-ed, None shows as "-"."""
    cells = [[("-" if c is None else str(c)) for c in r] for r in rows]
    widths = [max([_width(h)] + [_width(r[i]) for r in cells if i < len(r)]) for i, h in enumerate(head)]

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths)).rstrip()

    out = [fmt(list(head))]
    if rule:
        out.append(fmt(["-" * w for w in widths]))
    return out + [fmt(r) for r in cells]


def render(head: Sequence[str], rows: Iterable[Sequence[object]], rule: bool = True) -> str:
    return "\n".join(lines(head, rows, rule))

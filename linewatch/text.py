"""Agent-supplied text on its way to a terminal, a log line or a report.

The wire contract (:mod:`linewatch.wire`) keeps only text a database can hold (no NUL, no lone
surrogates). Everything else an agent sends -- host names, vendor strings, error sentences --
may still carry terminal escape sequences (``\\x1b[2J``), line breaks that split a table row, or
Unicode bidi overrides that make ``evil.exe\\u202etxt.pdf`` read differently than it is. Such
text is shown through :func:`printable` first.
"""
from __future__ import annotations

import unicodedata

#: Categories shown as escapes: controls (C0, DEL, C1), format characters (bidi overrides and
#: isolates U+202A-U+202E, U+2066-U+2069, marks, zero-width characters, BOM, tags), lone
#: surrogates, and the line/paragraph separators (a table cell is one line).
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
ELLIPSIS = "…"


def _escape(c: str) -> str:
    n = ord(c)
    if n < 0x100:
        return f"\\x{n:02x}"
    if n < 0x10000:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


def _piece(c: str) -> str:
    # fast path: printable ASCII is by far the most common
    if " " <= c <= "~" or unicodedata.category(c) not in _ESCAPED_CATEGORIES:
        return c
    return _escape(c)


def printable(s: str, max_len: int | None = None) -> str:
    """``s`` with every control, format and separator character replaced by a visible escape
    (``\\x1b``, ``\\u202e``), on one line. Letters of any script (``Phường Thử Nghiệm``),
    emoji and combining marks pass unchanged.

    With ``max_len``, the result is at most that many characters: a longer text is cut and
    ends in ``…``; an escape is never cut in half.
    """
    if max_len is not None and max_len < 0:
        raise ValueError("max_len must be >= 0")
    pieces = [_piece(c) for c in s]
    if max_len is None or sum(map(len, pieces)) <= max_len:
        return "".join(pieces)
    if max_len == 0:
        return ""
    out: list[str] = []
    room = max_len - len(ELLIPSIS)
    for p in pieces:
        if len(p) > room:
            break
        out.append(p)
        room -= len(p)
    return "".join(out) + ELLIPSIS


def json_for_terminal(text: str) -> str:
    """JSON text (``json.dumps(..., ensure_ascii=False)``) with every control, format and
    separator character written as a ``\\uXXXX`` escape: the same JSON value, but safe to print
    (json.dumps escapes only C0 controls; a C1 CSI or a bidi override would reach the terminal).
    Such characters can only stand inside JSON strings, where the escape means the same."""
    # below DEL: json.dumps already escaped every control inside strings, so what is left
    # (newlines and spaces of the indentation) is the JSON's own structure
    return "".join(c if c < "\x7f" or unicodedata.category(c) not in _ESCAPED_CATEGORIES
                   else "".join(f"\\u{u:04x}" for u in _utf16(c)) for c in text)


def _utf16(c: str) -> list[int]:
    b = c.encode("utf-16-be", "surrogatepass")
    return [int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2)]

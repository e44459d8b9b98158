"""The one text table renderer every command and e-mail uses."""
from __future__ import annotations

import unicodedata

from hypothesis import given, strategies as st

from linewatch import table


def test_columns_line_up_even_when_vietnamese_is_typed_with_combining_marks():
    decomposed = unicodedata.normalize("NFD", "Xã Hòa Bình")
    out = table.lines(["đơn vị", "máy"], [[decomposed, 3], ["Phường 1", None]])
    assert out[1] == "-----------  ---"
    assert [unicodedata.normalize("NFC", ln) for ln in out[2:]] == ["Xã Hòa Bình  3", "Phường 1     -"]


@given(st.lists(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Mn", "Zl", "Zp")),
                                 max_size=12), min_size=3, max_size=3), max_size=8))
def test_every_row_puts_each_column_at_the_same_place(rows):
    out = table.lines(["a", "b", "c"], rows)
    w = [max([1] + [len(r[i]) for r in rows]) for i in range(3)]
    for line, row in zip(out[2:], rows):
        assert not line.endswith(" ")
        padded = line.ljust(w[0] + w[1] + w[2] + 4)
        assert padded[:w[0]] == row[0].ljust(w[0])
        assert padded[w[0] + 2:w[0] + 2 + w[1]] == row[1].ljust(w[1])
        assert padded[w[0] + w[1] + 4:].rstrip() == row[2].rstrip()

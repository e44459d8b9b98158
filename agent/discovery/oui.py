"""Vendor of a MAC address from the offline IEEE table shipped in the package (oui.tsv.gz,
built by tools/make_oui.py from Debian's ieee-data). Nothing is fetched at run time."""
from __future__ import annotations

import gzip
import re
from functools import lru_cache
from pathlib import Path

TABLE = Path(__file__).with_name("oui.tsv.gz")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def normalize_mac(mac: str) -> str:
    """'AA-BB-CC-DD-EE-FF' / 'aabb.ccdd.eeff' -> 'aa:bb:cc:dd:ee:ff'. Raises ValueError."""
    hexdigits = re.sub(r"[^0-9a-fA-F]", "", mac).lower()
    if len(hexdigits) != 12:
        raise ValueError(f"{mac!r} is not a MAC address")
    return ":".join(hexdigits[i:i + 2] for i in range(0, 12, 2))


def is_locally_administered(mac: str) -> bool:
    """Set by software, not the maker: phones' per-network random MACs, VMs, containers."""
    return bool(int(normalize_mac(mac)[:2], 16) & 0x02)


@lru_cache(maxsize=1)
def _table() -> dict[str, str]:
    with gzip.open(TABLE, "rt", encoding="utf-8") as f:
        return dict(line.rstrip("\n").split("\t", 1) for line in f if "\t" in line)


def vendor(mac: str) -> str | None:
    """Longest registered prefix wins (MA-S 36 bit, MA-M 28 bit, then MA-L 24 bit)."""
    h = normalize_mac(mac).replace(":", "").upper()
    t = _table()
    for n in (9, 7, 6):
        if (v := t.get(h[:n])) is not None:
            return v
    return None

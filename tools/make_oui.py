"""Build agent/discovery/oui.tsv.gz, the offline vendor table, from Debian's ieee-data.

    apt-get download ieee-data && dpkg-deb -x ieee-data_*.deb /tmp/ieee
    python tools/make_oui.py /tmp/ieee/usr/share/ieee-data

The agent never fetches anything at run time: this file ships in the package. Lines are
``HEXPREFIX<TAB>Vendor`` with 6 (MA-L), 7 (MA-M) or 9 (MA-S / IAB) hex digits, so a
lookup tries the longest prefix first. Vendor names lose their legal suffixes to stay small.
"""
from __future__ import annotations

import csv
import gzip
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "agent" / "discovery" / "oui.tsv.gz"
# "Co., Ltd.", "Inc", "Corporation"... carry no information for a clerk reading the table.
SUFFIX = re.compile(r"[ ,.]+(co\.?,? ?ltd|ltd|limited|inc|incorporated|corp|corporation|co|gmbh|ag|s\.?a|b\.?v|"
                    r"llc|l\.l\.c|plc|pte|pty|s\.?r\.?l|oy|ab|a/s|k\.?k|kg|spa|s\.p\.a|sas|company|jsc)\.?$",
                    re.IGNORECASE)


def short_name(name: str) -> str:
    name = " ".join(name.replace("\t", " ").split())
    for _ in range(3):
        new = SUFFIX.sub("", name).rstrip(" ,.")
        if new == name or not new:
            break
        name = new
    return name[:64]


def main(src: str) -> None:
    rows: dict[str, str] = {}
    for fname in ("oui.csv", "mam.csv", "oui36.csv", "iab.csv"):
        with open(Path(src) / fname, newline="", encoding="utf-8") as f:
            for rec in csv.DictReader(f):
                prefix = rec["Assignment"].strip().upper()
                vendor = short_name(rec["Organization Name"])
                if re.fullmatch(r"[0-9A-F]{6,9}", prefix) and vendor and vendor.lower() != "private":
                    rows[prefix] = vendor
    body = "".join(f"{p}\t{v}\n" for p, v in sorted(rows.items()))
    OUT.write_bytes(gzip.compress(body.encode(), compresslevel=9, mtime=0))
    print(f"{OUT}: {len(rows)} prefixes, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/ieee-data")

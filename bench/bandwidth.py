"""Benchmark (not a test): the linewatch bandwidth method against iperf3 on tbf-shaped lines.

    ./dev bench bandwidth [--rates 5 10 20 50 100] [--lines 20/5 100/20] [--repeat 3]

Builds its own network namespaces (needs root) and shapes the link with tc tbf: each rate in
both directions, then each asymmetric line (download/upload), then one line whose shaper has
an operator-like bucket (a fresh transfer runs faster until the bucket is spent). On each, on
the same link one after the other: iperf3 for 10 s per direction (-P 4, --omit 2: the
reference, measured at the receiver), then the linewatch method (stops once stable).

Per line and direction it prints both figures, linewatch / iperf3, each figure / the shaped
rate (the physical limit; TCP payload can use at most 1448/1514 = 0.956 of a tbf rate), the
bytes one linewatch test moved (both directions: what a line's data budget pays) against the
bytes of the 10 s iperf3 run, the seconds and why each direction stopped. With --repeat N
every line is measured N times and a summary gives the spread of each tool run to run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from linklab import TBF_PAYLOAD_SHARE, Lab, agent_config  # noqa: E402

#: an operator's bucket on the "bucket" line: 600 kB beyond the rate, passing at 1.5 x the rate
BUCKET_BYTES, BUCKET_PEAK = 600_000, 1.5


@dataclass(frozen=True)
class Line:
    down: float
    up: float
    bucket: bool = False

    @property
    def name(self) -> str:
        s = f"{self.down:g}" if self.down == self.up else f"{self.down:g}/{self.up:g}"
        return s + (f" + {BUCKET_BYTES // 1000} kB bucket" if self.bucket else "")


def parse_line(text: str) -> Line:
    down, _, up = text.partition("/")
    return Line(float(down), float(up or down))


def probe(lab: Lab, office: str, src: str, method: str, target: str, streams: int) -> dict:
    cfg = agent_config(lab.tmp / "state", f"""
[[line]]
id = "bench"
source_address = "{src}"
  [line.bandwidth]
  method = "{method}"
  target = "{target}"
  streams = {streams}
  max_duration_s = 10
  warmup_s = 2
  max_test_mb = 100000
  monthly_budget_mb = 10000000
""")
    [r] = lab.probe(office, cfg, "bench", "bandwidth", timeout=300)
    if not r["ok"]:
        print(f"{method}: FAILED {r['error_code']}: {r['error']}", file=sys.stderr)
    return r["data"]


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.3f}" if a and b else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", type=float, nargs="*", default=[5, 10, 20, 50, 100],
                    help="symmetric lines, Mbit/s (default: 5 10 20 50 100)")
    ap.add_argument("--lines", nargs="*", default=["20/5", "100/20"],
                    help="asymmetric lines DOWN/UP Mbit/s (default: 20/5 100/20)")
    ap.add_argument("--bucket", type=float, nargs="*", default=[20],
                    help="lines whose shaper has an operator-like bucket, Mbit/s (default: 20)")
    ap.add_argument("--repeat", type=int, default=1, help="measure every line this many times (default: 1)")
    ap.add_argument("--streams", type=int, default=4)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/bandwidth.py needs root to build network namespaces", file=sys.stderr)
        return 2
    lines = ([Line(r, r) for r in args.rates] + [parse_line(t) for t in args.lines]
             + [Line(r, r, bucket=True) for r in args.bucket])
    lab = Lab(Path(tempfile.mkdtemp(prefix="lw3bench")))
    rows: list[tuple[str, ...]] = []
    spread: dict[tuple[str, str, str], list[float]] = {}
    try:
        office, server = lab.ns("o"), lab.ns("s")
        if_o, if_s = lab.link(office, server, 1)
        lab.speedserver(server)
        lab.iperf3_server(server)
        src, srv = lab.addr(1, 2), lab.addr(1, 1)
        for line in lines:
            if line.bucket:  # symmetric: one bucket for both directions
                lab.shape_line(office, if_o, server, if_s, line.down, line.up, burst_bytes=BUCKET_BYTES,
                               peak_mbit=line.down * BUCKET_PEAK)
            else:
                lab.shape_line(office, if_o, server, if_s, line.down, line.up)
            for _ in range(args.repeat):
                ref = probe(lab, office, src, "iperf3", f"{srv}:5201", args.streams)
                ours = probe(lab, office, src, "linewatch", f"http://{srv}:8090", args.streams)
                for direction, shaped in (("download", line.down), ("upload", line.up)):
                    r, v = ref.get(f"{direction}_mbps"), ours.get(f"{direction}_mbps")
                    for method, x in (("iperf3", r), ("linewatch", v)):
                        if x:
                            spread.setdefault((line.name, direction, method), []).append(x / shaped)
                    mb, ref_mb = ours.get("bytes", 0) / 1e6, ref.get("bytes", 0) / 1e6
                    rows.append((line.name, direction, f"{shaped:g}", f"{r:.2f}" if r else "-",
                                 f"{v:.2f}" if v else "-", ratio(v, r), ratio(v, shaped), ratio(r, shaped),
                                 f"{mb:.1f}", f"{ref_mb:.1f}", ratio(mb, ref_mb),
                                 f"{ours.get('duration_s', 0):.1f}", ours.get("stopped_by", "-") or "-"))
            print(f"... {line.name} Mbit/s done", file=sys.stderr, flush=True)
    finally:
        lab.close()
    head = ("line Mbit/s", "direction", "shaped Mbit/s", "iperf3 Mbit/s", "linewatch Mbit/s", "linewatch ÷ iperf3",
            "linewatch ÷ shaped", "iperf3 ÷ shaped", "MB linewatch test", "MB iperf3 10 s", "MB ratio",
            "linewatch s", "stopped by")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nTCP payload can use at most {TBF_PAYLOAD_SHARE:.3f} of a tbf rate (1448 of 1514 bytes per frame).")
    if args.repeat > 1:
        print("\n| line Mbit/s | direction | method | runs | ÷ shaped: min | median | max | spread |")
        print("|---|---|---|---|---|---|---|---|")
        for (name, direction, method), xs in spread.items():
            print(f"| {name} | {direction} | {method} | {len(xs)} | {min(xs):.3f} | {statistics.median(xs):.3f} | "
                  f"{max(xs):.3f} | {100 * (max(xs) - min(xs)) / statistics.median(xs):.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

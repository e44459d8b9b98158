"""Benchmark (not a test): bandwidth methods against iperf3 on tbf-shaped links.

    ./dev bench bandwidth [--rates 5 20 100] [--max-duration 10]

Builds its own network namespaces (needs root), shapes the link with tc tbf at each
rate in both directions, and runs, on the same link one after the other: iperf3, the
linewatch method, and speedtest-cli against the Speedtest-Mini-compatible endpoint.
Prints per rate and direction the measured rate, its ratio to iperf3 and the bytes one
test moved (both directions together: that is what a line's data budget pays).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from linklab import Lab, agent_config  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", type=float, nargs="+", default=[5, 20, 100], help="Mbit/s (default: 5 20 100)")
    ap.add_argument("--max-duration", type=float, default=10, help="seconds per direction (default: 10)")
    ap.add_argument("--streams", type=int, default=4)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/bandwidth.py needs root to build network namespaces", file=sys.stderr)
        return 2
    lab = Lab(Path(tempfile.mkdtemp(prefix="lw3bench")))
    rows = []
    try:
        office, server = lab.ns("o"), lab.ns("s")
        if_o, if_s = lab.link(office, server, 1)
        lab.speedserver(server)
        lab.iperf3_server(server)
        src, srv = lab.addr(1, 2), lab.addr(1, 1)
        methods = [("iperf3", f"{srv}:5201"), ("linewatch", f"http://{srv}:8090"),
                   ("speedtest-mini", f"http://{srv}:8090")]
        for mbit in args.rates:
            lab.shape(office, if_o, mbit)
            lab.shape(server, if_s, mbit)
            got = {}
            for method, target in methods:
                cfg = agent_config(lab.tmp / "state", f"""
[[line]]
id = "bench"
source_address = "{src}"
  [line.bandwidth]
  method = "{method}"
  target = "{target}"
  streams = {args.streams}
  max_duration_s = {args.max_duration}
  warmup_s = 2
  max_test_mb = 100000
  monthly_budget_mb = 10000000
""")
                [r] = lab.probe(office, cfg, "bench", "bandwidth", timeout=300)
                if not r["ok"]:
                    print(f"{mbit:g} Mbit/s {method}: FAILED {r['error_code']}: {r['error']}", file=sys.stderr)
                got[method] = r["data"]
            for direction in ("download", "upload"):
                ref = got["iperf3"].get(f"{direction}_mbps")
                for method, _ in methods:
                    d = got[method]
                    v = d.get(f"{direction}_mbps")
                    ratio = f"{v / ref:.3f}" if v and ref else "-"
                    rows.append((f"{mbit:g}", direction, method, f"{v:.2f}" if v else "-", ratio,
                                 f"{d.get('bytes', 0) / 1e6:.1f}", f"{d.get('duration_s', 0):.1f}",
                                 d.get("stopped_by", "-") or "-"))
            print(f"... {mbit:g} Mbit/s done", file=sys.stderr, flush=True)
    finally:
        lab.close()
    head = ("tbf Mbit/s", "direction", "method", "measured Mbit/s", "ratio to iperf3",
            "MB per test (down+up)", "test s (down+up)", "stopped by")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

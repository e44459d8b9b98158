"""Benchmark (not a test): LAN sweep time for a /24 and the agent's memory, idle vs during
discovery. Builds its own LAN in network namespaces (tests/netlab.py): a bridge with
--hosts hosts, the rest of the /24 empty. Needs root.

    ./dev bench lan [--hosts 20] [--rates 50,200,1000]
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from netlab import IP, Lab, netns_unavailable  # noqa: E402

MB = 2**20


def sweep(lab: Lab, rate: float, user: str | None = None) -> tuple[float, dict, float]:
    """Wall time, sweep output and the sweep process's peak RSS (MB)."""
    spec = {"targets": [{"cidr": str(lab.network), "interface": "lan0", "source": lab.agent_ip}],
            "rate_pps": rate, "timeout_s": 2, "names": True}
    t = time.monotonic()
    p = subprocess.Popen(lab.exec_args(sys.executable, "-m", "linewatch.agent.discovery.sweep", json.dumps(spec),
                                       user=user), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
    peak = 0.0
    while p.poll() is None:
        peak = max(peak, _tree_rss(p.pid, exclude_root=False))
        time.sleep(0.02)
    out, err = p.communicate()
    if p.returncode != 0:
        raise SystemExit(f"sweep failed: {err}")
    return time.monotonic() - t, json.loads(out), peak


def _tree_rss(pid: int, exclude_root: bool = True) -> float:
    """RSS of a process's descendants (and itself unless exclude_root), MB. `ip netns exec`
    and setpriv exec() in place, so the python sweep is this pid or a child of it."""
    total = 0
    try:
        root = psutil.Process(pid)
        procs = ([] if exclude_root else [root]) + root.children(recursive=True)
    except psutil.Error:
        return 0.0
    for pr in procs:
        try:
            total += pr.memory_info().rss
        except psutil.Error:
            pass
    return total / MB


def python_import_rss(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code + "\nimport psutil; print(psutil.Process().memory_info().rss)"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1]) / MB


def agent_memory(lab: Lab, seconds: float) -> dict[str, float]:
    """Run the real agent in the lab; sample its RSS and its children's (the sweep)."""
    with tempfile.TemporaryDirectory(prefix="lw4bench") as tmp:
        cfg = Path(tmp) / "agent.toml"
        cfg.write_text(textwrap.dedent(f"""\
            [agent]
            id = "ag-bench"
            province = "52"
            site = "21583"
            state_dir = "{tmp}/state"
            [mqtt]
            host = "127.0.0.1"
            port = 1
            [lan]
            interval_s = 10
            rate_pps = 200
            [[line]]
            id = "fiber"
            [line.latency]
            targets = ["127.0.0.1"]
            interval_s = 60
            count = 3
            """))
        p = subprocess.Popen(lab.exec_args(sys.executable, "-m", "linewatch.agent.cli", "-c", str(cfg), "run"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        idle: list[float] = []
        during_agent: list[float] = []
        during_total: list[float] = []
        try:
            time.sleep(1.0)
            agent = psutil.Process(p.pid)  # `ip netns exec` exec()s the agent in place
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                a = agent.memory_info().rss / MB
                kids = _tree_rss(agent.pid)
                if kids:
                    during_agent.append(a)
                    during_total.append(a + kids)
                else:
                    idle.append(a)
                time.sleep(0.02)
        finally:
            p.terminate()
            p.wait(20)
    nan = float("nan")
    return {"idle_agent_mb": statistics.median(idle) if idle else nan, "idle_agent_max_mb": max(idle, default=nan),
            "during_agent_mb": max(during_agent, default=nan), "during_total_mb": max(during_total, default=nan),
            "samples_during": len(during_total), "samples_idle": len(idle)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--rates", default="50,200,1000", help="packets per second to try (default: %(default)s)")
    ap.add_argument("--agent-seconds", type=float, default=30)
    args = ap.parse_args()
    if why := netns_unavailable():
        print(f"bench/lan.py: {why}", file=sys.stderr)
        return 2
    lab = Lab(ipaddress.IPv4Network("10.99.44.0/24"))
    try:
        lab.start()
        vendors = ["f8:bc:12", "00:80:77", "3c:52:82", "00:00:48", "b8:27:eb"]
        for i in range(args.hosts):
            lab.add_host(f"h{i}", 10 + i, f"{vendors[i % len(vendors)]}:44:00:{i:02x}")
        print(f"LAN: {lab.network} on a namespace bridge, {args.hosts} hosts, {254 - 1 - args.hosts} empty addresses")
        print(f"{'method':<12} {'rate pps':>8} {'sweep s':>8} {'found':>6} {'sweep RSS MB':>13}")
        for rate in [float(r) for r in args.rates.split(",")]:
            secs, out, peak = sweep(lab, rate)
            print(f"{out['method']:<12} {rate:>8g} {secs:>8.2f} {len(out['hosts']):>6} {peak:>13.1f}")
        subprocess.run([IP, "-n", lab.agent_ns, "neigh", "flush", "dev", "lan0"], check=True)
        secs, out, peak = sweep(lab, 200, user="65534")
        print(f"{out['method']:<12} {200:>8g} {secs:>8.2f} {len(out['hosts']):>6} {peak:>13.1f}"
              f"   (as nobody: no raw socket)")
        print()
        print("python process RSS after imports (MB):")
        print(f"  interpreter + psutil               {python_import_rss('import os'):6.1f}")
        print(f"  + import scapy.all                 {python_import_rss('import scapy.all'):6.1f}")
        print(f"  + the scapy parts the sweep uses   "
              f"{python_import_rss('from scapy.layers.l2 import ARP, Ether; from scapy.sendrecv import srp'):6.1f}")
        m = agent_memory(lab, args.agent_seconds)
        print()
        print(f"agent RSS idle (no sweep running):  median {m['idle_agent_mb']:.1f} MB, max {m['idle_agent_max_mb']:.1f} MB"
              f" ({m['samples_idle']} samples)")
        print(f"agent RSS while a sweep runs:       max {m['during_agent_mb']:.1f} MB; agent + sweep process "
              f"max {m['during_total_mb']:.1f} MB ({m['samples_during']} samples)")
    finally:
        lab.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

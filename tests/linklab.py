"""A throw-away network lab: namespaces joined by veth pairs, shaped with tc tbf, faults
injected with nftables. Every name starts with a random ``lw3xxxx`` prefix so parallel
runs do not collide, and everything is deleted at the end.

All traffic stays inside the namespaces created here, on addresses assigned here.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT

IP = shutil.which("ip") or "/usr/sbin/ip"
TC = shutil.which("tc") or "/usr/sbin/tc"
NFT = shutil.which("nft") or "/usr/sbin/nft"

#: The share of a tbf rate that TCP payload can use: tbf counts whole Ethernet frames (1514
#: bytes for a full one) and TCP carries 1448 bytes in each (IPv4 20, TCP 20, timestamps 12).
#: No bandwidth figure over a link shaped at R Mbit/s can honestly exceed R x this.
TBF_PAYLOAD_SHARE = 1448 / 1514


def payload_ceiling(mbit: float) -> float:
    """Mbit/s of TCP payload a tbf shaped at ``mbit`` can carry, at most (full-size packets)."""
    return mbit * TBF_PAYLOAD_SHARE


def require_netns() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces (run ./dev test as root)")
    for tool in (IP, TC):
        if not Path(tool).exists():
            pytest.skip(f"{tool} is not installed (apt-get install iproute2)")
    probe = f"lw3chk{os.getpid() % 100000}"
    r = subprocess.run([IP, "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"'ip netns add' does not work here: {r.stderr.strip()}")
    subprocess.run([IP, "netns", "del", probe], capture_output=True)


class Lab:
    def __init__(self, tmp: Path):
        self.prefix = "lw3" + os.urandom(2).hex()
        self.tmp = tmp
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []
        # 10.233.x.0/24 inside our own namespaces only; x from the prefix so parallel labs differ
        self.net = 16 + int(self.prefix[3:], 16) % 200

    def ns(self, name: str) -> str:
        full = f"{self.prefix}{name}"
        self.sh(IP, "netns", "add", full)
        self.namespaces.append(full)
        self.run(full, IP, "link", "set", "lo", "up")
        return full

    def addr(self, subnet: int, host: int) -> str:
        return f"10.{self.net}.{subnet}.{host}"

    @staticmethod
    def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(list(cmd), capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
        return r

    def run(self, ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.sh(IP, "netns", "exec", ns, *cmd, check=check)

    def link(self, ns_a: str, ns_b: str, subnet: int, tag: str = "") -> tuple[str, str]:
        """A veth pair a<->b on 10.N.subnet.0/24: a gets .2 (the office), b gets .1 (the server)."""
        if_a, if_b = f"{self.prefix}{tag}a", f"{self.prefix}{tag}b"
        self.sh(IP, "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
        for ns, ifname, host in ((ns_a, if_a, 2), (ns_b, if_b, 1)):
            self.run(ns, IP, "addr", "add", f"{self.addr(subnet, host)}/24", "dev", ifname)
            self.run(ns, IP, "link", "set", ifname, "up")
        return if_a, if_b

    def shape(self, ns: str, ifname: str, mbit: float, burst_bytes: int | None = None,
              peak_mbit: float | None = None) -> None:
        """tc tbf on egress: the rate a contract promises. Burst ~5 ms of traffic, queue 50 ms.
        ``burst_bytes`` with ``peak_mbit``: an operator's bucket instead, which lets a fresh
        transfer run at up to ``peak_mbit`` until ``burst_bytes`` beyond the rate are spent
        (a tbf burst without a peak rate passes at the veth's speed, in the first milliseconds)."""
        burst = burst_bytes or max(16_000, int(mbit * 1e6 / 8 * 0.005))
        peak = ["peakrate", f"{peak_mbit}mbit", "mtu", "1600"] if peak_mbit else []
        # delete + add: 'replace' from a faster tbf to a slower one stalled connections here
        self.run(ns, TC, "qdisc", "del", "dev", ifname, "root", check=False)
        self.run(ns, TC, "qdisc", "add", "dev", ifname, "root", "tbf", "rate", f"{mbit}mbit",
                 "burst", str(burst), *peak, "latency", "50ms")

    def shape_line(self, office: str, if_office: str, server: str, if_server: str, down_mbit: float,
                   up_mbit: float | None = None, **bucket: Any) -> None:
        """A line as its contract states it: the download shaped where it enters the link (the
        server's end), the upload at the office's end; ``up_mbit`` None: the same as down.
        ``bucket``: :meth:`shape`'s burst_bytes / peak_mbit, for both directions."""
        self.shape(server, if_server, down_mbit, **bucket)
        self.shape(office, if_office, down_mbit if up_mbit is None else up_mbit, **bucket)

    def nft(self, ns: str, script: str) -> None:
        if not Path(NFT).exists():
            pytest.skip("nftables is not installed (apt-get install nftables)")
        path = self.tmp / f"{ns}-{len(self.procs)}-{time.monotonic_ns()}.nft"
        path.write_text(textwrap.dedent(script))
        self.run(ns, NFT, "-f", str(path))

    def spawn(self, ns: str, *cmd: str, log: str) -> subprocess.Popen:
        p = subprocess.Popen([IP, "netns", "exec", ns, *cmd], stdout=(self.tmp / log).open("wb"),
                             stderr=subprocess.STDOUT, cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.procs.append(p)
        return p

    def wait_port(self, ns: str, host: str, port: int, timeout: float = 10) -> None:
        code = f"import socket;socket.create_connection(({host!r},{port}),timeout=0.5).close()"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.run(ns, sys.executable, "-c", code, check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(f"nothing listening on {host}:{port} in {ns}")

    def speedserver(self, ns: str, port: int = 8090, *extra: str) -> subprocess.Popen:
        p = self.spawn(ns, sys.executable, "-m", "linewatch.speed.server", "--host", "0.0.0.0",
                       "--port", str(port), *extra, log=f"speedserver-{ns}-{port}.log")
        self.wait_port(ns, "127.0.0.1", port)
        return p

    def iperf3_server(self, ns: str, port: int = 5201) -> subprocess.Popen:
        p = self.spawn(ns, "iperf3", "-s", "-p", str(port), log=f"iperf3-{ns}-{port}.log")
        self.wait_port(ns, "127.0.0.1", port)
        return p

    def probe(self, ns: str, config: str, line: str, probe: str, timeout: float = 120) -> list[dict]:
        """Run ``linewatch-agent probe --json`` inside the office namespace: the real CLI,
        the real config parser and the real line binding."""
        cfg = self.tmp / f"agent-{line}-{probe}-{time.monotonic_ns()}.toml"
        cfg.write_text(config)
        r = subprocess.run([IP, "netns", "exec", ns, sys.executable, "-m", "linewatch.agent.cli", "-c", str(cfg),
                            "probe", "--line", line, "--probe", probe, "--json"],
                           capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        try:
            return json.loads(r.stdout)
        except ValueError:
            raise AssertionError(f"agent probe printed no JSON (rc={r.returncode}): {r.stdout}\n{r.stderr}")

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for ns in self.namespaces:  # deleting a namespace deletes its veth ends, qdiscs and nft tables
            self.sh(IP, "netns", "del", ns, check=False)


def agent_config(state_dir: Path, lines: str) -> str:
    return textwrap.dedent(f"""\
        [agent]
        id = "ag-lab"
        province = "52"
        site = "21583"
        state_dir = "{state_dir}"
        [mqtt]
        host = "127.0.0.1"
        """) + textwrap.dedent(lines)


@pytest.fixture
def lab(tmp_path):
    """A fresh lab for one test, always torn down (skips with the reason where namespaces cannot be made)."""
    require_netns()
    made = Lab(tmp_path)
    yield made
    made.close()

"""A throw-away office LAN in network namespaces: a bridge ("switch") with N host
namespaces of known MAC and address, plus the agent's namespace. Nothing is created in
the machine's own namespace, so no packet can reach a real network. Always ``close()``."""
from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

IP = shutil.which("ip") or "/usr/sbin/ip"


def netns_unavailable() -> str | None:
    """Why this machine cannot build the lab, or None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces (run the tests as root)"
    if not Path(IP).exists():
        return "iproute2 (ip) is not installed"
    probe = f"lw4probe{secrets.token_hex(3)}"
    r = subprocess.run([IP, "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"network namespaces unavailable here: {r.stderr.strip()}"
    subprocess.run([IP, "netns", "del", probe], capture_output=True)
    return None


def sh(*args: str) -> None:
    r = subprocess.run(list(args), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")


@dataclass
class LabHost:
    ns: str
    ip: str
    mac: str


@dataclass
class Lab:
    network: ipaddress.IPv4Network
    prefix: str = field(default_factory=lambda: f"lw4{secrets.token_hex(3)}")
    hosts: dict[str, LabHost] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)
    _ports: int = 0

    @property
    def switch(self) -> str:
        return f"{self.prefix}sw"

    @property
    def agent_ns(self) -> str:
        return f"{self.prefix}ag"

    @property
    def agent_ip(self) -> str:
        return str(self.network.network_address + 1)

    def _ns(self, name: str) -> str:
        sh(IP, "netns", "add", name)
        self.namespaces.append(name)
        sh(IP, "-n", name, "link", "set", "lo", "up")
        # No IPv6 chatter (DAD, router solicitations) on the test LAN.
        subprocess.run([IP, "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
                       capture_output=True)
        return name

    def _plug(self, ns: str, ip: str, mac: str | None, ifname: str = "lan0") -> None:
        self._ports += 1
        port = f"p{self._ports}"
        sh(IP, "-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns)
        sh(IP, "-n", self.switch, "link", "set", port, "master", "br0", "up")
        if mac:
            sh(IP, "-n", ns, "link", "set", ifname, "address", mac)
        sh(IP, "-n", ns, "addr", "add", f"{ip}/{self.network.prefixlen}", "dev", ifname)
        sh(IP, "-n", ns, "link", "set", ifname, "up")

    def start(self) -> "Lab":
        self._ns(self.switch)
        sh(IP, "-n", self.switch, "link", "add", "br0", "type", "bridge")
        sh(IP, "-n", self.switch, "link", "set", "br0", "up")
        self._ns(self.agent_ns)
        self._plug(self.agent_ns, self.agent_ip, None)
        # The agent's own /etc/hosts and an empty resolv.conf: names resolve locally, no DNS leaves.
        etc = Path("/etc/netns") / self.agent_ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("# linewatch test lab: no DNS server\n")
        (etc / "hosts").write_text("127.0.0.1 localhost\n")
        return self

    def add_host(self, key: str, index: int, mac: str, name: str | None = None, ttl: int | None = None) -> LabHost:
        """A device: ``ttl`` is the initial TTL of what it sends (128 answers pings like Windows)."""
        ns = self._ns(f"{self.prefix}h{len(self.hosts)}")
        ip = str(self.network.network_address + index)
        self._plug(ns, ip, mac)
        if ttl is not None:
            sh(IP, "netns", "exec", ns, "sysctl", "-qw", f"net.ipv4.ip_default_ttl={ttl}")
        self.hosts[key] = LabHost(ns, ip, mac)
        if name:
            with (Path("/etc/netns") / self.agent_ns / "hosts").open("a") as f:
                f.write(f"{ip} {name}\n")
        return self.hosts[key]

    def remove_host(self, key: str) -> None:
        h = self.hosts.pop(key)
        subprocess.run([IP, "netns", "del", h.ns], capture_output=True)
        self.namespaces.remove(h.ns)

    def add_agent_card(self, index: int, mac: str) -> str:
        """A second network card of the agent's computer on the same LAN (Wi-Fi beside
        Ethernet): interface lan1. Returns its address."""
        ip = str(self.network.network_address + index)
        self._plug(self.agent_ns, ip, mac, "lan1")
        return ip

    def listen(self, key: str, port: int) -> subprocess.Popen:
        """A TCP listener on ``port`` in a host's namespace (stop it with terminate())."""
        code = ("import socket,time\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                f"s.bind(('0.0.0.0',{port}));s.listen(16);print('ready',flush=True)\n"
                "while True:\n c,_=s.accept();c.close()\n")
        p = subprocess.Popen([IP, "netns", "exec", self.hosts[key].ns, sys.executable, "-c", code],
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        return p

    def exec_args(self, *args: str, user: str | None = None, no_caps: bool = False) -> list[str]:
        """Command line running ``args`` in the agent's namespace: as ``user`` if given, or with
        ``no_caps`` as root without any capability (no CAP_NET_RAW: no raw socket, no ARP
        sweep), which still reads a checkout in a private (0700) folder, as CI's clone is."""
        cmd = [IP, "netns", "exec", self.agent_ns]
        if user:
            cmd += ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--inh-caps=-all",
                    "--bounding-set=-all"]
        elif no_caps:
            cmd += ["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs",
                    "--securebits=+noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked,+keep_caps_locked"]
        return cmd + list(args)

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            subprocess.run([IP, "netns", "del", ns], capture_output=True)
        self.namespaces.clear()
        shutil.rmtree(Path("/etc/netns") / self.agent_ns, ignore_errors=True)

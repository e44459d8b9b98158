"""One discovery sweep, run as a short-lived child process of the agent:

    python -m linewatch.agent.discovery.sweep '{"targets": [{"cidr": "192.168.1.0/24",
        "interface": "eth0", "source": "192.168.1.10"}], "rate_pps": 100, "timeout_s": 2}'

prints one JSON object (method, hosts, notes) on stdout. A child process because scapy
costs ~80 MB of RSS once imported and Python never gives that back: the idle agent stays
small, and the memory is returned to the Pi when the sweep ends.

Methods: ``arp-scapy`` -- broadcast ARP who-has for every address (root / CAP_NET_RAW);
without those rights ``ping+neigh`` (unprivileged ICMP echo, when net.ipv4.ping_group_range
allows) or ``udp+neigh`` (an empty UDP datagram, which needs no right at all) make the
kernel resolve every address, and the kernel's neighbour table is read afterwards.

Then, about the hosts found only: names (reverse DNS, NetBIOS), the TTL of one echo reply
each (``"ttl": false`` turns it off), and -- only with ``"ports": true`` and only for hosts
still unsure -- one TCP connect per well-known port (:mod:`.probe`). This computer's own
addresses (``"own": {"macs": [...], "ips": [...]}``) are never reported as a host: it is
counted once, as itself, by the agent.
"""
from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import NoRawSocket
from . import classify, names, neigh, oui, probe

METHODS = ("arp-scapy", "ping+neigh", "udp+neigh")
RANDOM_MAC = "(random MAC)"


@dataclass
class Host:
    ip: str
    mac: str
    interface: str
    vendor: str | None = None
    name: str | None = None
    device_class: str = "unsure"
    evidence: str | None = None
    netbios: str | None = None  # the name it gave to a NetBIOS node-status query
    ttl: int | None = None      # of its echo reply
    ports: list[int] | None = None  # open ones, when probed
    gateway: bool = False       # the subnet's default router

    def as_evidence(self) -> classify.Evidence:
        return classify.Evidence(self.vendor if self.vendor != RANDOM_MAC else None,
                                 tuple(n for n in (self.name, self.netbios) if n),
                                 oui.is_locally_administered(self.mac), self.gateway, self.ttl,
                                 self.netbios is not None, frozenset(self.ports or ()))


def arp_sweep(cidr: str, interface: str, rate_pps: float, timeout_s: float) -> list[tuple[str, str]]:
    """(ip, mac) of every address answering a broadcast ARP who-has."""
    try:  # cheap rights check first: importing scapy alone costs ~30 MB
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()
    except PermissionError as e:
        raise NoRawSocket(f"no raw-socket rights ({e.strerror or e})") from None
    except (AttributeError, OSError):
        pass  # not Linux: let scapy decide
    try:
        from scapy.config import conf
        from scapy.layers.l2 import ARP, Ether
        from scapy.sendrecv import srp
    except ImportError as e:
        raise NoRawSocket(f"scapy is not installed ({e}); pip install 'linewatch[lan]'") from None
    conf.verb = 0
    net = ipaddress.IPv4Network(cidr)
    packets = Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=[str(h) for h in net.hosts()])
    try:
        answered, _ = srp(packets, iface=interface, timeout=timeout_s, inter=1.0 / rate_pps, verbose=0)
    except PermissionError as e:
        raise NoRawSocket(f"no raw-socket rights ({e.strerror or e})") from None
    out = {}
    for _sent, reply in answered:
        arp = reply[ARP]
        if arp.op == 2 and ipaddress.IPv4Address(arp.psrc) in net:
            out[arp.psrc] = arp.hwsrc.lower()
    return sorted(out.items(), key=lambda kv: ipaddress.IPv4Address(kv[0]))


def poke_sweep(cidr: str, source: str, rate_pps: float) -> str:
    """Send one small packet to every address so the kernel ARPs for it; returns the method."""
    from linewatch.agent.probes import icmp

    net = ipaddress.IPv4Network(cidr)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        method, payload, port = "ping+neigh", None, 0
    except PermissionError:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        method, payload, port = "udp+neigh", b"", 9  # discard port: nothing listens, nothing breaks
    with sock:
        try:
            sock.bind((source, 0))
        except OSError:
            pass
        gap = 1.0 / rate_pps
        for i, h in enumerate(net.hosts()):
            if str(h) == source:
                continue
            data = payload if payload is not None else icmp.echo_request(0, i)
            try:
                sock.sendto(data, (str(h), port))
            except OSError:  # EHOSTUNREACH from an earlier failed resolution: expected
                pass
            time.sleep(gap)
    return method


def settle(networks: list[ipaddress.IPv4Network], wait_max_s: float) -> tuple[list[neigh.Neighbour], str]:
    """Wait until the kernel has finished resolving (no INCOMPLETE/DELAY/PROBE entry in our
    networks), then return the table. /proc/net/arp shows no states: wait for its 3 probes."""
    deadline = time.monotonic() + wait_max_s
    time.sleep(0.5)
    while True:
        table, source = neigh.read_table()
        mine = [n for n in table if any(ipaddress.IPv4Address(n.ip) in net for net in networks)]
        if source == "proc-net-arp":
            time.sleep(max(0.0, min(3.5, deadline - time.monotonic())))
            table, source = neigh.read_table()
            return table, source
        if not any(n.state in neigh.UNSETTLED_STATES for n in mine) or time.monotonic() >= deadline:
            return table, source
        time.sleep(0.25)


def default_gateways(route_text: str) -> set[str]:
    """Gateways of default routes from /proc/net/route (little-endian hex)."""
    gws = set()
    for line in route_text.splitlines()[1:]:
        f = line.split()
        if len(f) >= 3 and f[1] == "00000000" and f[2] != "00000000":
            gws.add(str(ipaddress.IPv4Address(bytes.fromhex(f[2])[::-1])))
    return gws


def run(spec: dict) -> dict:
    started = time.monotonic()
    targets = spec["targets"]
    rate = float(spec.get("rate_pps", 100))
    timeout_s = float(spec.get("timeout_s", 2))
    wanted = spec.get("method", "auto")
    notes: list[str] = []
    found: dict[str, tuple[str, str]] = {}  # mac -> (ip, interface)
    method = None
    if wanted in ("auto", "arp"):
        try:
            for t in targets:
                for ip, mac in arp_sweep(t["cidr"], t["interface"], rate, timeout_s):
                    if ip != t["source"]:
                        found[mac] = (ip, t["interface"])
            method = "arp-scapy"
        except NoRawSocket as e:
            if wanted == "arp":
                raise
            notes.append(f"ARP sweep impossible: {e}; used ping sweep + neighbour table")
    if method is None:
        nets = [ipaddress.IPv4Network(t["cidr"]) for t in targets]
        for t in targets:
            method = poke_sweep(t["cidr"], t["source"], rate)
        table, source = settle(nets, timeout_s + 8)
        method = method or "udp+neigh"
        notes.append(f"neighbour table from {source}")
        by_if = {t["interface"]: ipaddress.IPv4Network(t["cidr"]) for t in targets}
        for n in table:
            net = by_if.get(n.dev)
            if n.valid and net is not None and ipaddress.IPv4Address(n.ip) in net:
                found[n.mac] = (n.ip, n.dev)
    notes += drop_own(found, spec.get("own") or {}, {t["source"] for t in targets})
    try:
        gateways = default_gateways(Path("/proc/net/route").read_text())
    except OSError:
        gateways = set()
    hosts = [Host(ip, mac, dev, oui.vendor(mac) or (RANDOM_MAC if oui.is_locally_administered(mac) else None),
                  gateway=ip in gateways)
             for mac, (ip, dev) in sorted(found.items(), key=lambda kv: ipaddress.IPv4Address(kv[1][0]))]
    learn(hosts, spec, rate, timeout_s, notes)
    return {"method": method, "hosts": [asdict(h) for h in hosts], "notes": notes,
            "sweep_s": round(time.monotonic() - started, 3)}


def drop_own(found: dict[str, tuple[str, str]], own: dict, sources: set[str]) -> list[str]:
    """Leave this computer's own MACs and addresses out of ``found`` (mac -> (ip, interface));
    returns a note for each. Linux does not answer an ARP request sent from one of its own
    addresses, so this is a guard (a bridged VM, another stack), not the usual case."""
    macs = {m.lower() for m in own.get("macs", [])}
    ips = set(own.get("ips", [])) | sources
    notes = []
    for mac, (ip, _dev) in list(found.items()):
        if mac in macs or ip in ips:
            del found[mac]
            notes.append(f"{ip} ({mac}) is this computer's own address: counted once, as this computer")
    return notes


def learn(hosts: list[Host], spec: dict, rate: float, timeout_s: float, notes: list[str]) -> None:
    """Names, TTLs and (if asked) open ports of the hosts found, then their class. The
    NetBIOS queries and the echo requests go out while reverse DNS is still waiting."""
    ips = [h.ip for h in hosts]
    by_ip = {h.ip: h for h in hosts}
    if not ips:
        return
    got: dict[str, Any] = {}

    def job(key: str, fn: Any, *args: Any) -> threading.Thread:
        def work() -> None:
            try:
                got[key] = fn(*args)
            except OSError as e:  # a socket refused: that evidence is missing, the sweep goes on
                notes.append(f"{key} lookups failed: {e}")
        return threading.Thread(target=work, daemon=True)

    jobs = []
    if spec.get("names", True):
        jobs.append(job("NetBIOS", names.netbios_names, ips, 1.5, rate))
    if spec.get("ttl", True):
        jobs.append(job("TTL", probe.echo_ttls, ips, rate, min(timeout_s, 2.0)))
    for t in jobs:
        t.start()
    dns = names.reverse_dns(ips, timeout_s=float(spec.get("names_timeout_s", 3))) if spec.get("names", True) else {}
    for t in jobs:
        t.join(60)
    for ip, name in dns.items():
        by_ip[ip].name = name
    for ip, name in (got.get("NetBIOS") or {}).items():
        by_ip[ip].netbios = name
        by_ip[ip].name = by_ip[ip].name or name
    if "TTL" in got and got["TTL"] is None:
        notes.append("no TTLs: no ICMP socket (neither ping_group_range nor CAP_NET_RAW allows one)")
    for ip, ttl in (got.get("TTL") or {}).items():
        by_ip[ip].ttl = ttl
    for h in hosts:
        h.device_class, h.evidence = classify.classify(h.as_evidence())
    if spec.get("ports", False):
        unsure = [h for h in hosts if h.device_class == "unsure"][:probe.MAX_CONNECTS // len(classify.PORT_RULES)]
        ports = tuple(classify.PORT_RULES)
        opened = probe.open_ports({h.ip: ports for h in unsure}, rate, min(timeout_s, 1.0))
        for h in unsure:
            h.ports = sorted(opened.get(h.ip, ()))
            h.device_class, h.evidence = classify.classify(h.as_evidence())


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    try:
        out = run(spec)
    except NoRawSocket as e:
        out = {"error": str(e)}
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.flush()
    return 0 if "error" not in out else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

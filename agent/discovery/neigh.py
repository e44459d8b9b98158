"""The kernel's neighbour (ARP) table, read without any privilege: ``ip -j neigh`` when
iproute2 is there, else /proc/net/arp. Parsing is pure and tested on recorded output."""
from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# States in which the kernel holds a MAC it actually heard from the host.
VALID_STATES = frozenset({"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT"})
# Still being resolved: wait for these to settle before reading the table.
UNSETTLED_STATES = frozenset({"INCOMPLETE", "DELAY", "PROBE"})
ATF_COM = 0x02  # /proc/net/arp flag: entry complete (MAC known)


@dataclass(frozen=True)
class Neighbour:
    ip: str
    mac: str | None
    dev: str
    state: str  # REACHABLE, STALE, FAILED, ... or COMPLETE / INCOMPLETE from /proc/net/arp

    @property
    def valid(self) -> bool:
        return self.mac is not None and self.mac != "00:00:00:00:00:00" and \
            (self.state in VALID_STATES or self.state == "COMPLETE")


def parse_ip_neigh_json(text: str) -> list[Neighbour]:
    """Output of ``ip -j neigh show``; IPv4 entries only."""
    out = []
    for e in json.loads(text or "[]"):
        dst = e.get("dst", "")
        try:
            if ipaddress.ip_address(dst).version != 4:
                continue
        except ValueError:
            continue
        states = e.get("state") or ["NONE"]
        mac = e.get("lladdr")
        out.append(Neighbour(dst, mac.lower() if mac else None, e.get("dev", ""), states[0]))
    return out


def parse_proc_net_arp(text: str) -> list[Neighbour]:
    """/proc/net/arp: 'IP address  HW type  Flags  HW address  Mask  Device' (header line first)."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 6:
            continue
        flags = int(f[2], 16)
        state = "COMPLETE" if flags & ATF_COM else "INCOMPLETE"
        out.append(Neighbour(f[0], f[3].lower(), f[5], state))
    return out


def read_table() -> tuple[list[Neighbour], str]:
    """The current table and where it came from."""
    ip = shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip") if Path(p).exists()), None)
    if ip:
        try:
            r = subprocess.run([ip, "-j", "-4", "neigh", "show"], capture_output=True, text=True, timeout=10)
            if r.returncode == 0:
                return parse_ip_neigh_json(r.stdout), "ip-neigh"
        except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
            pass
    return parse_proc_net_arp(Path("/proc/net/arp").read_text()), "proc-net-arp"

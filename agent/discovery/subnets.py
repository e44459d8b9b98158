"""Which subnets to sweep: the IPv4 networks of the interfaces this computer sits on,
or the ones configured. Pure: the interface list is passed in."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class IfAddr:
    """One IPv4 address of one interface (from psutil.net_if_addrs / net_if_stats)."""

    interface: str
    address: str
    netmask: str
    is_up: bool = True
    is_loopback: bool = False


@dataclass(frozen=True)
class SweepTarget:
    network: ipaddress.IPv4Network
    interface: str
    source: str  # our own address there (never reported as a host)

    @property
    def cidr(self) -> str:
        return str(self.network)


@dataclass(frozen=True)
class Skipped:
    what: str
    reason: str


# Interfaces that are never an office LAN: point-to-point uplinks, tunnels, containers.
NOT_LAN_PREFIXES = ("lo", "ppp", "wwan", "tun", "tap", "wg", "docker", "veth", "virbr", "br-", "tailscale", "zt")


def plan(addrs: list[IfAddr], configured: list[str], *, max_prefix: int = 22, allow_wide: bool = False,
         interfaces: list[str] | None = None) -> tuple[list[SweepTarget], list[Skipped]]:
    """``configured`` is ["auto"] or CIDRs. A CIDR must lie on one of our interfaces (ARP
    only reaches the local link). Networks wider than /max_prefix are refused unless
    ``allow_wide``: a /16 is 65 534 addresses of broadcast noise on a commune LAN."""
    targets: list[SweepTarget] = []
    skipped: list[Skipped] = []
    ours = []
    for a in addrs:
        try:
            iface = ipaddress.IPv4Interface(f"{a.address}/{a.netmask}")
        except ValueError:
            continue
        ours.append((a, iface))
    auto = "auto" in configured
    if auto:
        for a, iface in ours:
            if interfaces and a.interface not in interfaces:
                continue
            if a.is_loopback or iface.ip.is_loopback or iface.ip.is_link_local:
                continue
            if not interfaces and a.interface.startswith(NOT_LAN_PREFIXES):
                skipped.append(Skipped(f"{iface.network}@{a.interface}", "not a LAN interface"))
                continue
            if not a.is_up:
                skipped.append(Skipped(f"{iface.network}@{a.interface}", "interface is down"))
                continue
            _add(targets, skipped, iface.network, a.interface, str(iface.ip), max_prefix, allow_wide)
    for text in configured:
        if text == "auto":
            continue
        net = ipaddress.IPv4Network(text, strict=False)
        match = next(((a, i) for a, i in ours if i.ip in net and not a.is_loopback), None)
        if match is None:
            skipped.append(Skipped(str(net), "no interface of this computer is on that network"))
            continue
        a, iface = match
        _add(targets, skipped, net, a.interface, str(iface.ip), max_prefix, allow_wide)
    return targets, skipped


def _add(targets: list[SweepTarget], skipped: list[Skipped], net: ipaddress.IPv4Network, ifname: str,
         source: str, max_prefix: int, allow_wide: bool) -> None:
    if net.prefixlen >= 31:
        skipped.append(Skipped(f"{net}@{ifname}", "point-to-point link, no LAN behind it"))
    elif net.prefixlen < max_prefix and not allow_wide:
        skipped.append(Skipped(f"{net}@{ifname}", f"wider than /{max_prefix} ({net.num_addresses - 2} addresses); "
                                                  f"set allow_wide = true to sweep it"))
    elif any(t.network == net for t in targets):
        pass
    else:
        targets.append(SweepTarget(net, ifname, source))

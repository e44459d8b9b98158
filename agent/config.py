"""The agent's typed config, validated at start-up (see agent/example-agent.toml)."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from linewatch import wire
from linewatch.config import ConfigError, MqttConnection, Section, load_toml, mqtt_fields

from .probes import REGISTRY, LineBinding

EXAMPLE = Path(__file__).with_name("example-agent.toml")


@dataclass(frozen=True)
class MqttConfig(MqttConnection):
    pass


@dataclass(frozen=True)
class OutboxConfig:
    max_messages: int = 500_000      # ~1 year of one site's messages
    max_age_days: float = 60
    drain_rate_per_s: float = 50     # backlog after a reconnect; 0 = unlimited


@dataclass(frozen=True)
class LineConfig:
    binding: LineBinding
    probes: dict[str, Any]  # probe name -> that probe's typed config

    @property
    def id(self) -> str:
        return self.binding.id


#: Widest subnet swept without ``allow_wide`` (1022 addresses); never wider than /16.
LAN_MAX_PREFIX = 22
LAN_WIDEST_PREFIX = 16


@dataclass(frozen=True)
class LanConfig:
    """[lan]: LAN discovery. Off unless the table is present (a sweep is traffic on the office LAN)."""

    subnets: tuple[str, ...] = ("auto",)  # "auto" = the networks of this computer's LAN interfaces
    interfaces: tuple[str, ...] = ()       # limit "auto" to these interfaces
    interval_s: float = 900.0
    rate_pps: float = 50.0                 # ARP/ping packets per second: a /24 in ~5 s
    timeout_s: float = 2.0                 # wait for late replies after the last packet
    allow_wide: bool = False               # sweep networks wider than /22 (up to /16)
    missed_sweeps_before_gone: int = 3
    method: str = "auto"                   # auto | arp (scapy, root) | neigh (ping + kernel table)
    names: bool = True                     # reverse DNS and NetBIOS names of found hosts
    probe_ports: bool = False              # one TCP connect per well-known port to hosts still unsure

    @property
    def max_prefix(self) -> int:
        return LAN_WIDEST_PREFIX if self.allow_wide else LAN_MAX_PREFIX


@dataclass(frozen=True)
class InventoryConfig:
    """[inventory]: this computer's CPU, RAM, disk, OS and network cards (local reads only)."""

    interval_s: float = 21600.0


@dataclass(frozen=True)
class AgentConfig:
    agent_id: str
    province: str
    site: str
    state_dir: Path
    mqtt: MqttConfig
    lines: tuple[LineConfig, ...]
    heartbeat_s: float = 60.0
    jitter_pct: float = 10.0
    source: Path | None = field(default=None, compare=False)
    lan: LanConfig | None = None
    inventory: InventoryConfig | None = InventoryConfig()
    outbox: OutboxConfig = OutboxConfig()

    def line(self, line_id: str) -> LineConfig:
        for ln in self.lines:
            if ln.id == line_id:
                return ln
        raise ConfigError(f"no line {line_id!r} in {self.source or 'the config'} "
                          f"(lines: {', '.join(l.id for l in self.lines)})")
    #: [agent] counted_as_computer: None = the agent judges its own computer (inventory.judge_computer)
    counted_as_computer: bool | None = None


def load(path: str | Path) -> AgentConfig:
    return parse(load_toml(path, "agent config"), Path(path))


def parse(doc: dict[str, Any], source: Path | None = None) -> AgentConfig:
    name = source.name if source else "agent config"
    root = Section(doc, name)
    a = root.table("agent", f"{name} [agent]")
    agent_id = a.str("id", required=True)
    if not wire.ID_RE.match(agent_id):
        raise ConfigError(f"{a.where}: id {agent_id!r} must be lower-case letters, digits, '-', '_' or '.'")
    province = a.str("province", required=True)
    if not wire.PROVINCE_RE.match(province):
        raise ConfigError(f"{a.where}: province {province!r} must be the 2-digit province code, e.g. \"52\"")
    site = a.str("site", required=True)
    if not wire.valid_site_code(site):
        raise ConfigError(f"{a.where}: site {site!r} must be a 5-digit commune code (e.g. \"21583\") "
                          f"or PROVINCE-name for other offices (e.g. \"52-so-khcn\")")
    if not site.startswith(province) and not wire.COMMUNE_RE.match(site):
        raise ConfigError(f"{a.where}: site {site!r} does not belong to province {province}")
    state_dir = Path(a.str("state_dir", "/var/lib/linewatch-agent"))
    if source and not state_dir.is_absolute():
        state_dir = (source.parent / state_dir).resolve()
    counted = a.str("counted_as_computer", "auto", choices=("auto", "yes", "no"))
    a.done()

    m = root.table("mqtt", f"{name} [mqtt]")
    mqtt = MqttConfig(**mqtt_fields(m, source.parent if source else Path.cwd()))
    m.done()

    s = root.table("schedule", f"{name} [schedule]")
    heartbeat_s = s.num("heartbeat_s", 60.0, ge=1)
    jitter_pct = s.num("jitter_pct", 10.0, ge=0, le=50)
    s.done()

    o = root.table("outbox", f"{name} [outbox]")
    outbox = OutboxConfig(max_messages=o.num("max_messages", 500_000, ge=100, integer=True),
                          max_age_days=o.num("max_age_days", 60, gt=0, le=120),
                          drain_rate_per_s=o.num("drain_rate_per_s", 50, ge=0))
    o.done()

    lan = _parse_lan(root.table("lan", f"{name} [lan]")) if "lan" in doc else None
    inventory = _parse_inventory(root.table("inventory", f"{name} [inventory]"))
    lines = tuple(_parse_line(raw, i, name, state_dir) for i, raw in enumerate(root.tables("line")))
    root.done()
    if not lines:
        raise ConfigError(f"{name}: no [[line]] configured: add one block per internet/TSLCD line")
    ids = [ln.id for ln in lines]
    if dup := {i for i in ids if ids.count(i) > 1}:
        raise ConfigError(f"{name}: line id(s) {', '.join(sorted(dup))} appear more than once")
    unbound = [ln.id for ln in lines if not (ln.binding.source_address or ln.binding.interface)]
    if len(lines) > 1 and unbound:
        raise ConfigError(f"{name}: this site has {len(lines)} lines, so each must set source_address or "
                          f"interface to be measured over the right line; missing for: {', '.join(unbound)}")
    return AgentConfig(agent_id, province, site, state_dir, mqtt, lines, heartbeat_s, jitter_pct, source,
                       lan=lan, inventory=inventory, outbox=outbox,
                       counted_as_computer=None if counted == "auto" else counted == "yes")


def _parse_lan(sec: Section) -> LanConfig | None:
    enabled = sec.bool("enabled", True)
    subnets = sec.str_list("subnets", ["auto"])
    if not subnets:
        raise ConfigError(f"{sec.where}: subnets must list at least one network, or \"auto\"")
    allow_wide = sec.bool("allow_wide", False)
    widest = LAN_WIDEST_PREFIX if allow_wide else LAN_MAX_PREFIX
    for text in subnets:
        if text == "auto":
            continue
        try:
            net = ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            raise ConfigError(f"{sec.where}: subnets entry {text!r} is not an IPv4 network like "
                              f"\"192.168.1.0/24\" (or \"auto\")") from None
        if net.prefixlen < widest:
            hint = "" if allow_wide else " (set allow_wide = true to sweep up to /16)"
            raise ConfigError(f"{sec.where}: subnet {text} is wider than /{widest}{hint}")
    cfg = LanConfig(
        subnets=tuple(subnets),
        interfaces=tuple(sec.str_list("interfaces")),
        interval_s=sec.num("interval_s", 900.0, ge=2),
        rate_pps=sec.num("rate_pps", 50.0, ge=1, le=2000),
        timeout_s=sec.num("timeout_s", 2.0, gt=0, le=30),
        allow_wide=allow_wide,
        missed_sweeps_before_gone=sec.num("missed_sweeps_before_gone", 3, ge=1, le=100, integer=True),
        method=sec.str("method", "auto", choices=("auto", "arp", "neigh")),
        names=sec.bool("names", True),
        probe_ports=sec.bool("probe_ports", False),
    )
    sec.done()
    return cfg if enabled else None


def _parse_inventory(sec: Section) -> InventoryConfig | None:
    enabled = sec.bool("enabled", True)
    cfg = InventoryConfig(interval_s=sec.num("interval_s", 21600.0, ge=10))
    sec.done()
    return cfg if enabled else None


def _parse_line(raw: Any, index: int, name: str, state_dir: Path) -> LineConfig:
    sec = Section(raw, f"{name} [[line]] #{index + 1}")
    line_id = sec.str("id", required=True)
    sec.where = f"{name} line {line_id!r}"
    if not wire.ID_RE.match(line_id):
        raise ConfigError(f"{sec.where}: id must be lower-case letters, digits, '-', '_' or '.'")
    src = sec.str("source_address")
    if src:
        try:
            ipaddress.ip_address(src)
        except ValueError:
            raise ConfigError(f"{sec.where}: source_address {src!r} is not an IP address") from None
    iface = sec.str("interface")
    probes: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("id", "source_address", "interface"):
            continue
        probe = REGISTRY.get(key)
        if probe is None:
            raise ConfigError(f"{sec.where}: unknown setting or probe {key!r} "
                              f"(probes: {', '.join(sorted(REGISTRY))})")
        sec.seen.add(key)
        pcfg = probe.parse_config(Section(value, f"{sec.where} [{key}]"))
        if getattr(pcfg, "state_dir", False) is None:  # probes that keep state (data budget) use [agent] state_dir
            pcfg = replace(pcfg, state_dir=state_dir)
        probes[key] = pcfg
    sec.done()
    if not probes:
        raise ConfigError(f"{sec.where}: no probe configured (add e.g. [line.latency] with targets)")
    probes = {key: REGISTRY[key].complete(pcfg, probes, sec.where) for key, pcfg in probes.items()}
    return LineConfig(LineBinding(line_id, src, iface), probes)

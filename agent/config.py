"""The agent's typed config, validated at start-up (see agent/example-agent.toml)."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from linewatch import wire
from linewatch.config import ConfigError, Section, load_toml

from .probes import REGISTRY, LineBinding

EXAMPLE = Path(__file__).with_name("example-agent.toml")


@dataclass(frozen=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    keepalive_s: int = 30


@dataclass(frozen=True)
class LineConfig:
    binding: LineBinding
    probes: dict[str, Any]  # probe name -> that probe's typed config

    @property
    def id(self) -> str:
        return self.binding.id


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

    def line(self, line_id: str) -> LineConfig:
        for ln in self.lines:
            if ln.id == line_id:
                return ln
        raise ConfigError(f"no line {line_id!r} in {self.source or 'the config'} "
                          f"(lines: {', '.join(l.id for l in self.lines)})")


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
    a.done()

    m = root.table("mqtt", f"{name} [mqtt]")
    password = m.str("password")
    password_file = m.str("password_file")
    if password_file:
        try:
            password = Path(password_file).read_text().strip()
        except OSError as e:
            raise ConfigError(f"{m.where}: password_file {password_file} cannot be read: {e.strerror}") from None
    mqtt = MqttConfig(
        host=m.str("host", "127.0.0.1"),
        port=m.num("port", 1883, ge=1, le=65535, integer=True),
        username=m.str("username"),
        password=password,
        tls=m.bool("tls", False),
        ca_file=m.str("ca_file"),
        keepalive_s=m.num("keepalive_s", 30, ge=5, le=3600, integer=True),
    )
    m.done()

    s = root.table("schedule", f"{name} [schedule]")
    heartbeat_s = s.num("heartbeat_s", 60.0, ge=1)
    jitter_pct = s.num("jitter_pct", 10.0, ge=0, le=50)
    s.done()

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
    return AgentConfig(agent_id, province, site, state_dir, mqtt, lines, heartbeat_s, jitter_pct, source)


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
    return LineConfig(LineBinding(line_id, src, iface), probes)

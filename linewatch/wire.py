"""The wire contract between agents and the collector: topics and message schemas.

This module is the single owner of the contract. The agent builds messages with
:func:`build_message` and the collector checks them with :func:`parse_message`; both
import the same schema tables below, so they cannot drift apart.

Topic layout (version 1)::

    lw/v1/{province}/{site}/line/{line}/{kind}      per-line measurements (latency, ...)
    lw/v1/{province}/{site}/agent/{agent}/{kind}    per-agent messages (heartbeat, status, ...)
    lw/v1/{province}/{site}/agent/{agent}/cmd       commands to one agent (collector -> agent)

Every message is a JSON object with an envelope (schema, kind, agent_id, province, site,
line, seq, measured_at, ok, error_code, error) and a ``data`` object whose field names
carry their units (``rtt_median_ms``, ``loss_pct``, ``download_mbps``). ``docs/wire.md``
shows an example of every kind.

Two kinds of bad news are kept apart, as RIPE Atlas' sagan does:
  * :class:`MalformedMessage` -- the *input* is broken (bad JSON, wrong schema, a field of the
    wrong type). The collector counts it, logs the reason and drops it.
  * ``ok = false`` in a well-formed message -- the *measurement* failed (line down, target
    unreachable). That is data, stored and reported like any other measurement.
"""
from __future__ import annotations

import ipaddress
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

SCHEMA_VERSION = 1
TOPIC_ROOT = "lw/v1"
#: Largest payload the collector accepts (LAN inventories of a few hundred hosts fit easily).
MAX_PAYLOAD_BYTES = 256 * 1024
#: Agent clocks may run ahead a little; beyond this a timestamp is refused as nonsense.
MAX_CLOCK_AHEAD = timedelta(minutes=10)
#: Buffered measurements may arrive late, but not older than this.
MAX_AGE = timedelta(days=120)

PROVINCE_RE = re.compile(r"^\d{2}$")
COMMUNE_RE = re.compile(r"^\d{5}$")
#: Non-commune sites (provincial departments, data centres): province prefix + a slug.
OTHER_SITE_RE = re.compile(r"^\d{2}-[a-z0-9][a-z0-9-]{0,30}$")
#: Line and agent ids: safe in MQTT topics (no '/', '+', '#') and in file names.
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,47}$")
#: An agent's sequence stream: random, made when its outbox is created. A reinstalled agent
#: (state folder lost) starts a new stream at seq 1 instead of colliding with its old numbers.
STREAM_RE = re.compile(r"^[0-9a-f]{8,32}$")


def valid_site_code(code: str) -> bool:
    return bool(COMMUNE_RE.match(code) or OTHER_SITE_RE.match(code))


class MalformedMessage(ValueError):
    """The input is not a valid message. ``reason`` is a short stable code for counting."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# --------------------------------------------------------------------------- field specs
@dataclass(frozen=True)
class Num:
    lo: float = 0.0
    hi: float = math.inf
    optional: bool = False
    integer: bool = False


@dataclass(frozen=True)
class Str:
    max_len: int = 256
    choices: tuple[str, ...] | None = None
    optional: bool = False


@dataclass(frozen=True)
class Obj:
    """A JSON object or list whose inner shape is checked by the kind's own validator."""

    optional: bool = False


@dataclass(frozen=True)
class Bool:
    optional: bool = False


Spec = Num | Str | Obj | Bool

LINE_KINDS = ("latency", "bandwidth", "dns", "http")
AGENT_KINDS = ("heartbeat", "status", "inventory", "lan")

# Fields of ``data`` per kind. Units are in the names. A failed measurement still carries
# the required fields (e.g. latency: sent, received, loss_pct=100) -- failure is data.
SCHEMAS: dict[str, dict[str, Spec]] = {
    "latency": {
        "method": Str(choices=("icmp-raw", "icmp-dgram", "tcp-connect")),
        "target": Str(),
        "sent": Num(0, 10_000, integer=True),
        "received": Num(0, 10_000, integer=True),
        # absent only when nothing could be sent (line unbound, name unresolvable)
        "loss_pct": Num(0, 100, optional=True),
        "rtt_min_ms": Num(0, 60_000, optional=True),
        "rtt_median_ms": Num(0, 60_000, optional=True),
        "rtt_avg_ms": Num(0, 60_000, optional=True),
        "rtt_p95_ms": Num(0, 60_000, optional=True),
        "rtt_max_ms": Num(0, 60_000, optional=True),
        "jitter_ms": Num(0, 60_000, optional=True),
        "source": Str(optional=True),
    },
    "bandwidth": {
        "method": Str(choices=("linewatch", "speedtest", "speedtest-mini", "iperf3")),
        "target": Str(),
        "streams": Num(1, 64, integer=True),
        "duration_s": Num(0, 3600),
        "bytes": Num(0, 10**12, integer=True),  # everything moved, warm-up included (budget)
        # a failed test may still carry the direction that worked
        "download_mbps": Num(0, 100_000, optional=True),
        "upload_mbps": Num(0, 100_000, optional=True),
        "warmup_s": Num(0, 60, optional=True),
        "stopped_by": Str(max_len=40, optional=True),  # stable | time | bytes | server, per direction
        "budget_left_mb": Num(0, 10**9, optional=True),
        "source": Str(optional=True),
    },
    "dns": {
        "resolver": Str(max_len=64),
        "name": Str(max_len=253),
        "qtype": Str(choices=("A", "AAAA")),
        "resolve_ms": Num(0, 60_000, optional=True),  # absent when no answer came
        "rcode": Str(max_len=16, optional=True),  # NOERROR, NXDOMAIN, SERVFAIL, ...
        "answers": Num(0, 1000, integer=True, optional=True),
        "addresses": Obj(optional=True),
        "attempts": Num(0, 100, integer=True),
        "source": Str(optional=True),
    },
    "http": {
        "url": Str(max_len=512),
        "status_code": Num(100, 599, integer=True, optional=True),
        "dns_ms": Num(0, 60_000, optional=True),
        "connect_ms": Num(0, 60_000, optional=True),
        "tls_ms": Num(0, 60_000, optional=True),
        "ttfb_ms": Num(0, 600_000, optional=True),  # request sent -> first byte of the answer
        "total_ms": Num(0, 600_000, optional=True),
        "bytes": Num(0, 10**10, integer=True, optional=True),
        "source": Str(optional=True),
    },
    "heartbeat": {
        "version": Str(max_len=32),
        "uptime_s": Num(0, 10 * 365 * 86400),
        "queue_depth": Num(0, 10**9, integer=True),
        "queue_dropped": Num(0, 10**12, integer=True),
        "probe_errors": Num(0, 10**12, integer=True),
        "clock_utc": Str(max_len=40),
        "hostname": Str(max_len=128, optional=True),
        "last_probe_error": Str(max_len=500, optional=True),
    },
    "status": {
        "state": Str(choices=("online", "offline")),
        "version": Str(max_len=32, optional=True),
    },
    # This computer: what it is and how its network cards are doing.
    "inventory": {
        "hostname": Str(max_len=128),
        "os_name": Str(max_len=128),
        "os_version": Str(max_len=256),
        "machine": Str(max_len=32, optional=True),
        "cpu_model": Str(max_len=256, optional=True),
        "cpu_cores": Num(1, 4096, optional=True, integer=True),
        "cpu_threads": Num(1, 4096, optional=True, integer=True),
        "ram_total_mb": Num(0, 10**9),
        "disk_mount": Str(max_len=256, optional=True),
        "disk_total_gb": Num(0, 10**6),
        "disk_free_gb": Num(0, 10**6),
        "boot_time": Str(max_len=40),
        "interfaces": Obj(),  # list of interface entries, see check_inventory
    },
    # One LAN discovery sweep: a summary and the changes since the last sweep (host appeared;
    # host gone after missed_sweeps_before_gone sweeps without it), never the whole table.
    # ok=false (no subnet to sweep, sweep failed) carries only method "none", subnets, skipped.
    "lan": {
        "method": Str(choices=("arp-scapy", "ping+neigh", "udp+neigh", "none")),
        "subnets": Obj(),  # [{cidr, interface}]
        "skipped": Obj(optional=True),  # [{what, reason}]: networks not swept and why
        "missed_sweeps_before_gone": Num(1, 100, integer=True),
        "sweep_no": Num(1, 10**12, optional=True, integer=True),
        "sweep_s": Num(0, 86400, optional=True),
        "hosts_seen": Num(0, 70_000, optional=True, integer=True),   # answered this sweep
        "hosts_known": Num(0, 70_000, optional=True, integer=True),  # seen and not yet gone
        "computers": Num(0, 70_000, optional=True, integer=True),    # hosts_known guessed "computer"
        "by_class": Obj(optional=True),  # {device_class: count} over hosts_known
        "appeared": Obj(optional=True),  # [host]
        "gone": Obj(optional=True),  # [host]
        "missing": Obj(optional=True),  # [mac]: known hosts not seen this sweep (not yet gone)
        "notes": Obj(optional=True),  # [text]: e.g. why the fallback method was used
    },
}

#: Device class guesses of LAN hosts.
DEVICE_CLASSES = ("computer", "printer", "phone", "network", "unknown")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
MAX_HOSTS_PER_MESSAGE = 4096


def kind_scope(kind: str) -> str:
    if kind in LINE_KINDS:
        return "line"
    if kind in AGENT_KINDS:
        return "agent"
    raise MalformedMessage("unknown_kind", f"unknown message kind {kind!r}")


# --------------------------------------------------------------------------- topics
@dataclass(frozen=True)
class Topic:
    province: str
    site: str
    scope: str  # "line" | "agent"
    name: str  # line id or agent id
    kind: str

    def __str__(self) -> str:
        return f"{TOPIC_ROOT}/{self.province}/{self.site}/{self.scope}/{self.name}/{self.kind}"


def line_topic(province: str, site: str, line: str, kind: str) -> str:
    return str(Topic(province, site, "line", line, kind))


def agent_topic(province: str, site: str, agent_id: str, kind: str) -> str:
    return str(Topic(province, site, "agent", agent_id, kind))


def command_topic(province: str, site: str, agent_id: str) -> str:
    return agent_topic(province, site, agent_id, "cmd")


def subscription(province: str = "+") -> str:
    """Topic filter for a collector: one province or (default) all of them."""
    return f"{TOPIC_ROOT}/{province}/#"


def parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) != 7 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise MalformedMessage("bad_topic", f"topic {topic!r} is not {TOPIC_ROOT}/<province>/<site>/<line|agent>/<id>/<kind>")
    _, _, province, site, scope, name, kind = parts
    if not PROVINCE_RE.match(province):
        raise MalformedMessage("bad_topic", f"province {province!r} in topic is not 2 digits")
    if not valid_site_code(site):
        raise MalformedMessage("bad_topic", f"site {site!r} in topic is not a site code")
    if scope not in ("line", "agent") or not ID_RE.match(name):
        raise MalformedMessage("bad_topic", f"topic {topic!r} has a bad line/agent part")
    if kind != "cmd" and kind_scope(kind) != scope:
        raise MalformedMessage("bad_topic", f"kind {kind!r} does not belong under /{scope}/")
    return Topic(province, site, scope, name, kind)


# --------------------------------------------------------------------------- messages
def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_time(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(s: str) -> datetime:
    t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError("timestamp has no time zone")
    return t.astimezone(timezone.utc)


@dataclass
class Message:
    kind: str
    agent_id: str
    province: str
    site: str
    seq: int
    measured_at: datetime
    data: dict[str, Any]
    line: str | None = None
    ok: bool = True
    error_code: str | None = None
    error: str | None = None
    stream: str | None = None
    schema: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def topic(self) -> str:
        if kind_scope(self.kind) == "line":
            assert self.line is not None
            return line_topic(self.province, self.site, self.line, self.kind)
        return agent_topic(self.province, self.site, self.agent_id, self.kind)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "schema": self.schema,
            "kind": self.kind,
            "agent_id": self.agent_id,
            "province": self.province,
            "site": self.site,
            "line": self.line,
            "seq": self.seq,
            "stream": self.stream,
            "measured_at": format_time(self.measured_at),
            "ok": self.ok,
            "error_code": self.error_code,
            "error": self.error,
            "data": self.data,
        }
        return d

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def build_message(**kw: Any) -> Message:
    """Build a message and check it against the contract, so an agent bug fails loudly at
    the source instead of being dropped silently by the collector."""
    msg = Message(**kw)
    check_data(msg.kind, msg.data, msg.ok)
    return msg


def _reject_constant(name: str) -> float:
    raise MalformedMessage("bad_json", f"non-finite number {name} is not allowed")


def check_data(kind: str, data: Any, ok: bool) -> None:
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise MalformedMessage("unknown_kind", f"no schema for kind {kind!r}")
    _check_entry(f"{kind}.data", data, schema)
    if (inner := INNER_CHECKS.get(kind)) is not None:
        inner(data, ok)


def _check_value(path: str, value: Any, spec: Spec) -> None:
    if isinstance(spec, Num):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MalformedMessage("bad_type", f"{path} must be a number, got {type(value).__name__}")
        if spec.integer and not isinstance(value, int):
            raise MalformedMessage("bad_type", f"{path} must be a whole number")
        if not math.isfinite(value) or not spec.lo <= value <= spec.hi:
            raise MalformedMessage("out_of_range", f"{path}={value} is outside [{spec.lo}, {spec.hi}]")
    elif isinstance(spec, Str):
        if not isinstance(value, str):
            raise MalformedMessage("bad_type", f"{path} must be a string, got {type(value).__name__}")
        if len(value) > spec.max_len:
            raise MalformedMessage("out_of_range", f"{path} is longer than {spec.max_len} characters")
        if spec.choices and value not in spec.choices:
            raise MalformedMessage("out_of_range", f"{path}={value!r} is not one of {', '.join(spec.choices)}")
    elif isinstance(spec, Bool):
        if not isinstance(value, bool):
            raise MalformedMessage("bad_type", f"{path} must be true or false")
    elif isinstance(spec, Obj):
        if not isinstance(value, (dict, list)):
            raise MalformedMessage("bad_type", f"{path} must be an object or list")


# --------------------------------------------------------------------------- nested shapes
def _entries(path: str, value: Any, max_items: int) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedMessage("bad_type", f"{path} must be a list")
    if len(value) > max_items:
        raise MalformedMessage("out_of_range", f"{path} has {len(value)} entries (at most {max_items})")
    return value


def _check_entry(path: str, entry: Any, fields: dict[str, Spec]) -> None:
    if not isinstance(entry, dict):
        raise MalformedMessage("bad_field", f"{path} must be an object")
    for name in entry:
        if name not in fields:
            raise MalformedMessage("unknown_field", f"{path} has unknown field {name!r}")
    for name, spec in fields.items():
        value = entry.get(name)
        if value is None:
            if spec.optional:
                continue
            raise MalformedMessage("missing_field", f"{path}.{name} is required")
        _check_value(f"{path}.{name}", value, spec)


LAN_HOST_FIELDS: dict[str, Spec] = {
    "ip": Str(max_len=15), "mac": Str(max_len=17), "device_class": Str(choices=DEVICE_CLASSES),
    "vendor": Str(max_len=128, optional=True), "name": Str(max_len=255, optional=True),
    "first_seen": Str(max_len=40, optional=True), "last_seen": Str(max_len=40, optional=True),
}
INTERFACE_FIELDS: dict[str, Spec] = {
    "name": Str(max_len=64), "is_up": Bool(optional=True), "mac": Str(max_len=17, optional=True),
    "ipv4": Obj(optional=True), "link_speed_mbps": Num(0, 10**6, optional=True), "mtu": Num(0, 10**6, optional=True),
    **{k: Num(0, 2**64, optional=True, integer=True)
       for k in ("rx_bytes", "tx_bytes", "rx_errors", "tx_errors", "rx_drops", "tx_drops")},
}


def check_lan_host(path: str, host: Any) -> None:
    """One host entry of a lan message: the collector keys its inventory on these."""
    _check_entry(path, host, LAN_HOST_FIELDS)
    try:
        if ipaddress.ip_address(host["ip"]).version != 4:
            raise ValueError
    except ValueError:
        raise MalformedMessage("bad_field", f"{path}.ip {host['ip']!r} is not an IPv4 address") from None
    if not MAC_RE.match(host["mac"]):
        raise MalformedMessage("bad_field", f"{path}.mac {host['mac']!r} is not a MAC like aa:bb:cc:dd:ee:ff")
    for t in ("first_seen", "last_seen"):
        if t in host:
            try:
                parse_time(host[t])
            except ValueError:
                raise MalformedMessage("bad_time", f"{path}.{t} is not an ISO-8601 UTC time") from None


def check_lan(data: dict[str, Any], ok: bool) -> None:
    if ok:
        for name in ("sweep_no", "hosts_seen", "hosts_known", "computers", "by_class", "appeared", "gone"):
            if data.get(name) is None:
                raise MalformedMessage("missing_field", f"lan.data.{name} is required in a successful sweep")
        if data["method"] == "none":
            raise MalformedMessage("bad_field", "a successful sweep must name its method")
    for i, s in enumerate(_entries("lan.data.subnets", data["subnets"], 64)):
        _check_entry(f"lan.data.subnets[{i}]", s, {"cidr": Str(max_len=18), "interface": Str(max_len=32)})
        try:
            ipaddress.IPv4Network(s["cidr"])
        except ValueError:
            raise MalformedMessage("bad_field", f"lan.data.subnets[{i}].cidr {s['cidr']!r} is not a network") from None
    for i, s in enumerate(_entries("lan.data.skipped", data.get("skipped"), 64)):
        _check_entry(f"lan.data.skipped[{i}]", s, {"what": Str(max_len=64), "reason": Str(max_len=200)})
    for i, n in enumerate(_entries("lan.data.notes", data.get("notes"), 20)):
        _check_value(f"lan.data.notes[{i}]", n, Str(max_len=300))
    by_class = data.get("by_class")
    if by_class is not None:
        if not isinstance(by_class, dict):
            raise MalformedMessage("bad_type", "lan.data.by_class must be an object")
        for cls, n in by_class.items():
            if cls not in DEVICE_CLASSES:
                raise MalformedMessage("out_of_range", f"lan.data.by_class has unknown class {cls!r}")
            _check_value(f"lan.data.by_class.{cls}", n, Num(0, 70_000, integer=True))
    for i, mac in enumerate(_entries("lan.data.missing", data.get("missing"), MAX_HOSTS_PER_MESSAGE)):
        if not isinstance(mac, str) or not MAC_RE.match(mac):
            raise MalformedMessage("bad_field", f"lan.data.missing[{i}] is not a MAC like aa:bb:cc:dd:ee:ff")
    for key in ("appeared", "gone"):
        for i, h in enumerate(_entries(f"lan.data.{key}", data.get(key), MAX_HOSTS_PER_MESSAGE)):
            check_lan_host(f"lan.data.{key}[{i}]", h)


def check_inventory(data: dict[str, Any], ok: bool) -> None:
    try:
        parse_time(data["boot_time"])
    except ValueError:
        raise MalformedMessage("bad_time", "inventory.data.boot_time is not an ISO-8601 UTC time") from None
    for i, e in enumerate(_entries("inventory.data.interfaces", data["interfaces"], 64)):
        path = f"inventory.data.interfaces[{i}]"
        _check_entry(path, e, INTERFACE_FIELDS)
        for j, a in enumerate(_entries(f"{path}.ipv4", e.get("ipv4"), 16)):
            _check_value(f"{path}.ipv4[{j}]", a, Str(max_len=15))


#: Kinds whose nested objects/lists (Obj fields) need their own check.
INNER_CHECKS = {"lan": check_lan, "inventory": check_inventory}


def parse_message(topic: str, payload: bytes, now: datetime | None = None) -> Message:
    """Validate one MQTT message against the contract. Raises :class:`MalformedMessage`."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MalformedMessage("too_large", f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    t = parse_topic(topic)
    if t.kind == "cmd":
        raise MalformedMessage("bad_topic", "command topics carry no measurements")
    try:
        obj = json.loads(payload, parse_constant=_reject_constant)
    except MalformedMessage:
        raise
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedMessage("bad_json", f"payload is not JSON ({e})") from None
    if not isinstance(obj, dict):
        raise MalformedMessage("bad_json", "payload must be a JSON object")
    schema = obj.get("schema")
    if schema != SCHEMA_VERSION:
        raise MalformedMessage("bad_schema", f"schema version {schema!r} is not supported (expected {SCHEMA_VERSION})")

    def field_(name: str, typ: type | tuple[type, ...], optional: bool = False) -> Any:
        v = obj.get(name)
        if v is None and optional:
            return None
        if isinstance(v, bool) and typ is int or not isinstance(v, typ):
            raise MalformedMessage("bad_field", f"envelope field {name!r} is missing or not {getattr(typ, '__name__', typ)}")
        return v

    kind = field_("kind", str)
    agent_id = field_("agent_id", str)
    province = field_("province", str)
    site = field_("site", str)
    line = field_("line", str, optional=True)
    seq = field_("seq", int)
    ok = field_("ok", bool)
    error_code = field_("error_code", str, optional=True)
    error = field_("error", str, optional=True)
    stream = field_("stream", str, optional=True)
    if stream is not None and not STREAM_RE.match(stream):
        raise MalformedMessage("bad_field", f"stream {stream!r} is not 8-32 lower-case hex digits")
    if not ID_RE.match(agent_id):
        raise MalformedMessage("bad_field", f"agent_id {agent_id!r} is not a valid id")
    if not 0 <= seq < 2**63:
        raise MalformedMessage("bad_field", f"seq {seq} out of range")
    if error and len(error) > 1000 or error_code and len(error_code) > 64:
        raise MalformedMessage("bad_field", "error text too long")
    if kind != t.kind or province != t.province or site != t.site:
        raise MalformedMessage("topic_mismatch", f"payload ({province}/{site}/{kind}) does not match topic {topic!r}")
    if t.scope == "line" and line != t.name:
        raise MalformedMessage("topic_mismatch", f"payload line {line!r} does not match topic line {t.name!r}")
    if t.scope == "agent" and agent_id != t.name:
        raise MalformedMessage("topic_mismatch", f"payload agent {agent_id!r} does not match topic agent {t.name!r}")
    try:
        measured_at = parse_time(field_("measured_at", str))
    except ValueError as e:
        raise MalformedMessage("bad_time", f"measured_at is not an ISO-8601 UTC time ({e})") from None
    now = now or utc_now()
    if measured_at > now + MAX_CLOCK_AHEAD:
        raise MalformedMessage("bad_time", f"measured_at {format_time(measured_at)} is in the future (agent clock wrong?)")
    if measured_at < now - MAX_AGE:
        raise MalformedMessage("bad_time", f"measured_at {format_time(measured_at)} is older than {MAX_AGE.days} days")
    data = obj.get("data")
    check_data(kind, data, ok)
    return Message(kind=kind, agent_id=agent_id, province=province, site=site, line=line, seq=seq, stream=stream,
                   measured_at=measured_at, data=data, ok=ok, error_code=error_code, error=error)

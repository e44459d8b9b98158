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

Longer than 400 lines on purpose: the schema table of every kind is the contract, and one
table read top to bottom is what keeps agent and collector from drifting (the checks, the
error codes and the commands live beside it in wire_checks, wire_codes, wire_commands).

Two kinds of bad news are kept apart, as RIPE Atlas' sagan does:
  * :class:`MalformedMessage` -- the *input* is broken (bad JSON, wrong schema, a field of the
    wrong type). The collector counts it, logs the reason and drops it.
  * ``ok = false`` in a well-formed message -- the *measurement* failed (line down, target
    unreachable). That is data, stored and reported like any other measurement.

A message that passes :func:`parse_message` can be stored as it is: besides its schema, every
document obeys rules checked once over all of it (unknown envelope keys too): containers at
most MAX_DEPTH deep, text without NUL or lone surrogates (keys too), integers within int64,
finite numbers, every time (also nested ones) in MIN_YEAR..MAX_YEAR, seq in 0..MAX_SEQ, and
no nested object or list without its kind's own check (INNER_CHECKS). Anything else raises
:class:`MalformedMessage` with a reason from REASONS -- never another exception.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

# The checking machinery lives in wire_checks (to keep this file readable); it is part of
# this contract and re-exported here: import it from linewatch.wire.
from .wire_codes import CAUSES, ERROR_CODES, Code, ErrorCode, cause_of, describe  # noqa: F401
from .wire_checks import (BY_CLASS_COUNT, DEVICE_CLASSES, DNS_ADDRESS, ERROR_CODE_RE, FORMATS, INT_MAX,  # noqa: F401
                          INT_MIN, INTERFACE_FIELDS, INTERFACE_IPV4, LAN_HOST_FIELDS, LAN_NOTE, MAC_RE,
                          MAX_DEPTH, MAX_DNS_ADDRESSES, MAX_HOSTS_PER_MESSAGE, MAX_YEAR, MIN_YEAR, REASONS,
                          SKIPPED_FIELDS, SUBNET_FIELDS, THIS_COMPUTER_FIELDS, Bool, MalformedMessage, Num, Obj,
                          Spec, Str,
                          check_document, check_dns, check_entry, check_inventory, check_lan, check_lan_host,
                          check_time, check_value, parse_time)

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
#: Sequence numbers: seq + 1 and a float conversion stay exact, and a bigint column holds them.
MAX_SEQ = 2**53 - 1
#: The only kind the contract publishes retained: an agent's online/offline status, also its
#: MQTT last will, so that a collector starting later learns every agent's state. The collector
#: refuses any other retained message (parse_message(..., retained=True) -> "retained").
RETAIN_KINDS = ("status",)


def valid_site_code(code: str) -> bool:
    return bool(COMMUNE_RE.match(code) or OTHER_SITE_RE.match(code))


LINE_KINDS = ("latency", "bandwidth", "dns", "http", "reach")
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
        # the line's state file was damaged (set aside, budget count restarted) or could not be saved
        "state_note": Str(max_len=300, optional=True),
        "source": Str(optional=True),
        # what asked for the test: a calendar (office hours, the night window, every interval_s)
        # or a person (an on-demand command, `linewatch-agent probe`); absent from older agents
        "schedule": Str(choices=("office", "night", "interval", "manual"), optional=True),
        # scheduled slots since the previous scheduled test that did not run: given up (computer
        # off, agent stopped) / skipped so the month's data budget lasts
        "slots_missed": Num(0, 100_000, integer=True, optional=True),
        "slots_skipped_budget": Num(0, 100_000, integer=True, optional=True),
        # this computer's network card during the test: its name, the other traffic on it (not the
        # test's), and whether that was more than the agent's nic_busy_pct of the test's bytes
        "nic": Str(max_len=64, optional=True),
        "nic_other_mbps": Num(0, 1_000_000, optional=True),
        "nic_busy": Bool(optional=True),
    },
    "dns": {
        "resolver": Str(max_len=64),
        "name": Str(max_len=253),
        "qtype": Str(choices=("A", "AAAA")),
        "resolve_ms": Num(0, 60_000, optional=True),  # absent when no answer came
        "rcode": Str(max_len=16, optional=True),  # NOERROR, NXDOMAIN, SERVFAIL, ...
        "answers": Num(0, 1000, integer=True, optional=True),
        "addresses": Obj(optional=True),  # [IP address], see check_dns
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
    # Fast outage detection: a few bytes to one target every interval_s, bound to the line.
    # Sent at once when the line changes state (change = true: up -> down after down_after
    # failures in a row, down -> up after up_after answers in a row), and as a summary every
    # report_s (change = false). ok is state == "up"; a down line carries error_code
    # line_down, or gateway_unreachable when the office's own gateway did not answer either.
    "reach": {
        "method": Str(choices=("icmp-raw", "icmp-dgram", "tcp-connect")),
        "target": Str(),
        "state": Str(choices=("up", "down")),
        "change": Bool(),
        "since": Str(max_len=40, fmt="time"),  # when the current state began (first failure / answer)
        "interval_s": Num(0.1, 3600),
        "sent": Num(0, 10**9, integer=True),   # since the previous reach message of this line
        "lost": Num(0, 10**9, integer=True),
        "down_s": Num(0, 10**9, optional=True),  # on the way back up: how long the line was down
        "rtt_ms": Num(0, 60_000, optional=True),  # the last answer's round trip
        "gateway": Str(max_len=64, optional=True),
        "gateway_ok": Bool(optional=True),     # the gateway answered during the last failure
        "source": Str(optional=True),
    },
    "heartbeat": {
        "version": Str(max_len=32),
        "uptime_s": Num(0, 10 * 365 * 86400),
        "queue_depth": Num(0, 10**9, integer=True),
        "queue_dropped": Num(0, 10**12, integer=True),
        "probe_errors": Num(0, 10**12, integer=True),
        "clock_utc": Str(max_len=40, fmt="time"),  # may be wrong: any time in MIN_YEAR..MAX_YEAR
        "hostname": Str(max_len=128, optional=True),
        "last_probe_error": Str(max_len=500, optional=True),
        # MQTT 5: publishes the broker refused since start (kept in the outbox), and what the
        # last refusal means; present only once there was one
        "publish_refused": Num(0, 10**12, integer=True, optional=True),
        "last_refusal": Str(max_len=500, optional=True),
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
        "boot_time": Str(max_len=40, fmt="time"),
        "interfaces": Obj(),  # list of interface entries, see check_inventory
        # counted_as_computer, computer_kind, computer_why: absent from older agents (then the
        # collector counts the computer unless its machine is ARM)
        **THIS_COMPUTER_FIELDS,
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
        # hosts_known classed "computer", plus this computer when counted_as_computer
        "computers": Num(0, 70_000, optional=True, integer=True),
        **THIS_COMPUTER_FIELDS,  # this computer (never in appeared/gone): counted or not, and why
        "by_class": Obj(optional=True),  # {device_class: count} over hosts_known
        "appeared": Obj(optional=True),  # [host]
        "gone": Obj(optional=True),  # [host]
        "missing": Obj(optional=True),  # [mac]: known hosts not seen this sweep (not yet gone)
        "notes": Obj(optional=True),  # [text]: e.g. why the fallback method was used
    },
}

#: Every line measurement may echo the id of the on-demand command that asked for it.
for _kind in LINE_KINDS:
    SCHEMAS[_kind]["command_id"] = Str(max_len=32, optional=True)

#: Kinds whose Obj fields (nested objects/lists) have their own check (wire_checks). Every kind
#: with an Obj field must be here (tests/test_wire.py checks): nothing is stored unchecked.
INNER_CHECKS: dict[str, Callable[[dict[str, Any], bool], None]] = {
    "lan": check_lan, "inventory": check_inventory, "dns": check_dns,
}


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
    if not isinstance(topic, str):
        raise MalformedMessage("bad_topic", f"topic is {type(topic).__name__}, not text")
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
    scope = kind_scope(msg.kind)
    check_document({"line": msg.line, "error_code": msg.error_code, "error": msg.error, "data": msg.data})
    check_envelope(scope, msg.agent_id, msg.line, msg.seq, msg.stream, msg.error_code, msg.error)
    _check_shape(msg.kind, msg.data, msg.ok)
    if (size := len(msg.to_json())) > MAX_PAYLOAD_BYTES:  # the broker would disconnect the agent for it
        raise MalformedMessage("too_large", f"{msg.kind} message of {size} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return msg


def _reject_constant(name: str) -> float:
    raise MalformedMessage("bad_json", f"non-finite number {name} is not allowed")


def check_data(kind: str, data: Any, ok: bool) -> None:
    """The ``data`` of one message: document rules (text, depth, numbers), then its schema."""
    check_document(data, f"{kind}.data", depth=2)
    _check_shape(kind, data, ok)


def _check_shape(kind: str, data: Any, ok: bool) -> None:
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise MalformedMessage("unknown_kind", f"no schema for kind {kind!r}")
    check_entry(f"{kind}.data", data, schema)
    if (inner := INNER_CHECKS.get(kind)) is not None:
        inner(data, ok)


def check_envelope(scope: str, agent_id: str, line: str | None, seq: int, stream: str | None,
                   error_code: str | None, error: str | None) -> None:
    """Envelope values, shared by build_message (agent) and parse_message (collector)."""
    if not ID_RE.match(agent_id):
        raise MalformedMessage("bad_field", f"agent_id {agent_id!r} is not a valid id")
    if stream is not None and not STREAM_RE.match(stream):
        raise MalformedMessage("bad_field", f"stream {stream!r} is not 8-32 lower-case hex digits")
    if not 0 <= seq <= MAX_SEQ:
        raise MalformedMessage("bad_field", f"seq {seq} is outside 0..2**53-1")
    if error is not None and len(error) > 1000:
        raise MalformedMessage("bad_field", "error text is longer than 1000 characters")
    if error_code is not None and not ERROR_CODE_RE.match(error_code):
        raise MalformedMessage("bad_field", f"error_code {error_code!r} is not a code like dns_failed "
                                            f"(1-64 of a-z 0-9 _ . -)")
    if scope == "agent" and line is not None:
        raise MalformedMessage("topic_mismatch", f"a per-agent message carries line {line!r} (must be null)")
    if scope == "line" and (line is None or not ID_RE.match(line)):
        raise MalformedMessage("topic_mismatch", f"a per-line message needs a valid line id, not {line!r}")


def parse_message(topic: str, payload: bytes, now: datetime | None = None, *, retained: bool = False) -> Message:
    """Validate one MQTT message against the contract. Raises :class:`MalformedMessage` with
    one of :data:`REASONS`, and nothing else, for any payload on any topic. ``retained``: the
    message came with the MQTT retain flag (only :data:`RETAIN_KINDS` may)."""
    if not isinstance(payload, (bytes, bytearray)):
        raise MalformedMessage("bad_json", f"payload is {type(payload).__name__}, not bytes")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MalformedMessage("too_large", f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    t = parse_topic(topic)
    if t.kind == "cmd":
        raise MalformedMessage("bad_topic", "command topics carry no measurements")
    if retained and t.kind not in RETAIN_KINDS:
        raise MalformedMessage("retained", f"{t.kind} messages are never retained (only {', '.join(RETAIN_KINDS)})")
    try:
        obj = json.loads(bytes(payload).decode("utf-8"), parse_constant=_reject_constant)
    except MalformedMessage:
        raise
    except RecursionError:
        raise MalformedMessage("bad_json", "payload is nested too deeply to parse") from None
    except ValueError as e:  # incl. UnicodeDecodeError: JSON on the wire is UTF-8 (RFC 8259)
        raise MalformedMessage("bad_json", f"payload is not UTF-8 JSON ({e})") from None
    if not isinstance(obj, dict):
        raise MalformedMessage("bad_json", "payload must be a JSON object")
    schema = obj.get("schema")
    if schema != SCHEMA_VERSION or type(schema) is not int:
        raise MalformedMessage("bad_schema", f"schema version {schema!r} is not supported (expected {SCHEMA_VERSION})")

    def field_(name: str, typ: type, optional: bool = False) -> Any:
        v = obj.get(name)
        if v is None and optional:
            return None
        if isinstance(v, bool) and typ is int or not isinstance(v, typ):
            raise MalformedMessage("bad_field", f"envelope field {name!r} is missing or not {typ.__name__}")
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
    check_envelope(t.scope, agent_id, line, seq, stream, error_code, error)
    # Once, over everything (unknown envelope keys too): depth, storable text, int64, finite.
    check_document(obj, text=b"\\u" in payload)
    if kind != t.kind or province != t.province or site != t.site:
        raise MalformedMessage("topic_mismatch", f"payload ({province!r}/{site!r}/{kind!r}) does not match topic {topic!r}")
    if t.scope == "line" and line != t.name:
        raise MalformedMessage("topic_mismatch", f"payload line {line!r} does not match topic line {t.name!r}")
    if t.scope == "agent" and agent_id != t.name:
        raise MalformedMessage("topic_mismatch", f"payload agent {agent_id!r} does not match topic agent {t.name!r}")
    measured_at = check_time("measured_at", field_("measured_at", str))
    now = now or utc_now()
    if measured_at > now + MAX_CLOCK_AHEAD:
        raise MalformedMessage("bad_time", f"measured_at {format_time(measured_at)} is in the future (agent clock wrong?)")
    if measured_at < now - MAX_AGE:
        raise MalformedMessage("bad_time", f"measured_at {format_time(measured_at)} is older than {MAX_AGE.days} days")
    data = obj.get("data")
    _check_shape(kind, data, ok)
    return Message(kind=kind, agent_id=agent_id, province=province, site=site, line=line, seq=seq, stream=stream,
                   measured_at=measured_at, data=data, ok=ok, error_code=error_code, error=error)


# Commands (collector -> agent) live in wire_commands; part of this contract.
from .wire_commands import (COMMAND_ACTIONS, MAX_COMMAND_TTL, Command, build_command, new_command_id,  # noqa: E402,F401
                            parse_command)

"""The checks behind the wire contract: field specs, the rules every document obeys (depth,
text, numbers, times) and the nested shapes inside lan, inventory and dns data.

Import these from :mod:`linewatch.wire`, which re-exports what is public and stays the one
owner of the contract; this module only keeps wire.py readable. It does not import wire.
"""
from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from .errors import MalformedMessage  # noqa: F401  (re-exported by linewatch.wire)

#: Every reason :func:`linewatch.wire.parse_message` can give. Stable: the collector counts
#: rejects under these names (it adds unknown_site, unknown_agent, unknown_line itself).
REASONS = frozenset({
    "too_large", "bad_topic", "retained", "bad_json", "too_deep", "bad_text", "bad_schema", "bad_field",
    "topic_mismatch", "bad_time", "unknown_kind", "bad_type", "out_of_range", "missing_field", "unknown_field",
})
#: Containers nested deeper than this are refused (the top-level object is depth 1). The
#: deepest valid value is inventory data.interfaces[i].ipv4 (a list at depth 5).
MAX_DEPTH = 6
#: Integers anywhere in a message fit a signed 64-bit column (PostgreSQL bigint).
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
#: Every time in a message lies in these years (UTC): converts and stores on any platform.
MIN_YEAR, MAX_YEAR = 2000, 2100
#: An envelope ``error_code``: short, stable, machine-readable.
ERROR_CODE_RE = re.compile(r"^[a-z0-9_.-]{1,64}$")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
#: Device classes of LAN hosts. "unsure": the evidence does not settle it (never counted as a
#: computer). "unknown" is the older agents' word for the same; still accepted, counted as unsure.
DEVICE_CLASSES = ("computer", "printer", "phone", "network", "camera", "unsure", "unknown")
#: What the agent's own computer is (inventory and lan ``computer_kind``).
COMPUTER_KINDS = ("desktop", "laptop", "single_board", "virtual_machine", "server")
MAX_HOSTS_PER_MESSAGE = 4096
STR_FORMATS = ("time", "ipv4", "ip", "mac", "cidr4")


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
    #: a text with a shape: "time" (see check_time) or one of FORMATS ("ipv4", "ip", "mac", "cidr4")
    fmt: str | None = None

    def __post_init__(self) -> None:  # a typo in a schema fails at import, not on a message
        if self.fmt is not None and self.fmt not in STR_FORMATS:
            raise ValueError(f"unknown Str format {self.fmt!r} (one of {', '.join(STR_FORMATS)})")


@dataclass(frozen=True)
class Obj:
    """A JSON object or list whose inner shape is checked by the kind's own check
    (``linewatch.wire.INNER_CHECKS``): never stored unchecked."""

    optional: bool = False


@dataclass(frozen=True)
class Bool:
    optional: bool = False


Spec = Num | Str | Obj | Bool


# --------------------------------------------------------------------------- times
def parse_time(s: str) -> datetime:
    """An ISO-8601 time with a zone, as an aware UTC datetime. Raises ValueError, also for a
    time outside the years MIN_YEAR..MAX_YEAR or one that cannot be converted to UTC."""
    t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError("timestamp has no time zone")
    try:
        t = t.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("timestamp is out of range") from None
    if not MIN_YEAR <= t.year <= MAX_YEAR:
        raise ValueError(f"year {t.year} is outside {MIN_YEAR}..{MAX_YEAR}")
    return t


def check_time(path: str, s: Any) -> datetime:
    try:
        return parse_time(s)
    except (ValueError, OverflowError, TypeError, AttributeError) as e:
        raise MalformedMessage("bad_time", f"{path} is not an ISO-8601 time with a zone in "
                                           f"{MIN_YEAR}..{MAX_YEAR} ({e})") from None


def _is_ipv4(s: str) -> bool:
    try:
        return ipaddress.ip_address(s).version == 4
    except ValueError:
        return False


def _is_ip(s: str) -> bool:
    try:
        return "%" not in s and bool(ipaddress.ip_address(s))  # a scope id is not an answer
    except ValueError:
        return False


def _is_cidr4(s: str) -> bool:
    try:
        return bool(ipaddress.IPv4Network(s))
    except ValueError:
        return False


#: Str(fmt=...) shapes: (test, what it must look like). "time" is checked by check_time.
FORMATS: dict[str, tuple[Callable[[str], bool], str]] = {
    "ipv4": (_is_ipv4, "an IPv4 address"),
    "ip": (_is_ip, "an IP address"),
    "mac": (lambda s: bool(MAC_RE.match(s)), "a MAC like aa:bb:cc:dd:ee:ff"),
    "cidr4": (_is_cidr4, "an IPv4 network like 192.168.1.0/24"),
}
assert set(FORMATS) | {"time"} == set(STR_FORMATS)


# --------------------------------------------------------------------------- the whole document
def _check_text(e: tuple, s: str) -> None:
    if "\x00" in s:
        raise MalformedMessage("bad_text", f"{_path(e)} contains a NUL character")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedMessage("bad_text", f"{_path(e)} contains a lone surrogate (not Unicode text)") from None


def check_document(doc: Any, path: str = "message", depth: int = 1, *, text: bool = True) -> None:
    """Rules for every value of a parsed document, whatever its schema says: containers at
    most MAX_DEPTH deep, text a database can hold (no NUL, no lone surrogate; keys too),
    integers within int64, finite numbers. Iterative: one pass, no recursion.

    ``text=False`` skips the text rule, for a document parsed from a payload without any
    ``\\u`` escape: strict UTF-8 decoding and JSON's ban on raw control characters already
    rule out NUL and lone surrogates there (the hot path: most messages have no escape).
    Paths are built only for the error message."""
    # entries: (value, depth, parent entry, key); the path is rebuilt from the chain on error
    stack: list[tuple] = [(doc, depth, None, path)]
    while stack:
        e = stack.pop()
        v, d = e[0], e[1]
        if isinstance(v, str):
            if text:
                _check_text(e, v)
        elif isinstance(v, bool) or v is None:
            pass
        elif isinstance(v, int):
            if not INT_MIN <= v <= INT_MAX:
                raise MalformedMessage("out_of_range", f"{_path(e)} is outside the 64-bit integer range")
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise MalformedMessage("bad_json", f"{_path(e)} is not a finite number")
        elif isinstance(v, dict):
            if d > MAX_DEPTH:
                raise MalformedMessage("too_deep", f"{_path(e)} is nested deeper than {MAX_DEPTH} levels")
            for k, x in v.items():
                if not isinstance(k, str):
                    raise MalformedMessage("bad_type", f"{_path(e)} has a key that is not text")
                if text:
                    _check_text((k, d, e, " key"), k)
                stack.append((x, d + 1, e, "." + k))
        elif isinstance(v, list):
            if d > MAX_DEPTH:
                raise MalformedMessage("too_deep", f"{_path(e)} is nested deeper than {MAX_DEPTH} levels")
            stack.extend((x, d + 1, e, f"[{i}]") for i, x in enumerate(v))
        else:
            raise MalformedMessage("bad_type", f"{_path(e)} is a {type(v).__name__}, not a JSON value")


def _path(e: tuple) -> str:
    parts = []
    while e is not None:
        parts.append(e[3])
        e = e[2]
    return "".join(reversed(parts))


# --------------------------------------------------------------------------- one field
def check_value(path: str, value: Any, spec: Spec) -> None:
    if isinstance(spec, Num):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MalformedMessage("bad_type", f"{path} must be a number, got {type(value).__name__}")
        if spec.integer and not isinstance(value, int):
            raise MalformedMessage("bad_type", f"{path} must be a whole number")
        if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:  # math.isfinite(10**400) overflows
            raise MalformedMessage("out_of_range", f"{path} is outside the 64-bit integer range")
        if not math.isfinite(value) or not spec.lo <= value <= spec.hi:
            raise MalformedMessage("out_of_range", f"{path}={value} is outside [{spec.lo}, {spec.hi}]")
    elif isinstance(spec, Str):
        if not isinstance(value, str):
            raise MalformedMessage("bad_type", f"{path} must be a string, got {type(value).__name__}")
        if len(value) > spec.max_len:
            raise MalformedMessage("out_of_range", f"{path} is longer than {spec.max_len} characters")
        if spec.choices and value not in spec.choices:
            raise MalformedMessage("out_of_range", f"{path}={value!r} is not one of {', '.join(spec.choices)}")
        if spec.fmt == "time":
            check_time(path, value)
        elif spec.fmt is not None:
            test, what = FORMATS[spec.fmt]
            if not test(value):
                raise MalformedMessage("bad_field", f"{path} {value!r} is not {what}")
    elif isinstance(spec, Bool):
        if not isinstance(value, bool):
            raise MalformedMessage("bad_type", f"{path} must be true or false")
    elif isinstance(spec, Obj):
        if not isinstance(value, (dict, list)):
            raise MalformedMessage("bad_type", f"{path} must be an object or list")


def check_entry(path: str, entry: Any, fields: dict[str, Spec]) -> None:
    """An object with exactly these fields (optional ones may be absent or null)."""
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
        check_value(f"{path}.{name}", value, spec)


def entries(path: str, value: Any, max_items: int) -> list[Any]:
    """A list (or null: empty) of at most ``max_items`` entries."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedMessage("bad_type", f"{path} must be a list")
    if len(value) > max_items:
        raise MalformedMessage("out_of_range", f"{path} has {len(value)} entries (at most {max_items})")
    return value


# --------------------------------------------------------------------------- nested shapes
LAN_HOST_FIELDS: dict[str, Spec] = {
    "ip": Str(max_len=15, fmt="ipv4"), "mac": Str(max_len=17, fmt="mac"), "device_class": Str(choices=DEVICE_CLASSES),
    "vendor": Str(max_len=128, optional=True), "name": Str(max_len=255, optional=True),
    "first_seen": Str(max_len=40, optional=True, fmt="time"), "last_seen": Str(max_len=40, optional=True, fmt="time"),
    # what the class rests on ("vendor Hewlett Packard: PCs and printers alike; TTL 128: Windows")
    "evidence": Str(max_len=200, optional=True),
    # in appeared: a known host whose class or name changed, not a new device
    "update": Bool(optional=True),
}
INTERFACE_FIELDS: dict[str, Spec] = {
    "name": Str(max_len=64), "is_up": Bool(optional=True), "mac": Str(max_len=17, optional=True),
    "ipv4": Obj(optional=True), "link_speed_mbps": Num(0, 10**6, optional=True), "mtu": Num(0, 10**6, optional=True),
    # byte and packet counters: a bigint column holds them
    **{k: Num(0, INT_MAX, optional=True, integer=True)
       for k in ("rx_bytes", "tx_bytes", "rx_errors", "tx_errors", "rx_drops", "tx_drops")},
}
INTERFACE_IPV4 = Str(max_len=15)
#: The agent's word on its own computer, in inventory and lan data alike: it counts as one of the
#: office's computers or not (a Raspberry Pi probe box, a virtual machine, a server), and why.
THIS_COMPUTER_FIELDS: dict[str, Spec] = {
    "counted_as_computer": Bool(optional=True),
    "computer_kind": Str(choices=COMPUTER_KINDS, optional=True),
    "computer_why": Str(max_len=200, optional=True),
}
SUBNET_FIELDS: dict[str, Spec] = {"cidr": Str(max_len=18, fmt="cidr4"), "interface": Str(max_len=32)}
SKIPPED_FIELDS: dict[str, Spec] = {"what": Str(max_len=64), "reason": Str(max_len=200)}
LAN_NOTE = Str(max_len=300)
BY_CLASS_COUNT = Num(0, 70_000, integer=True)
DNS_ADDRESS = Str(max_len=45, fmt="ip")
MAX_DNS_ADDRESSES = 64


def check_lan_host(path: str, host: Any) -> None:
    """One host entry of a lan message: the collector keys its inventory on these."""
    check_entry(path, host, LAN_HOST_FIELDS)


def check_lan(data: dict[str, Any], ok: bool) -> None:
    if ok:
        for name in ("sweep_no", "hosts_seen", "hosts_known", "computers", "by_class", "appeared", "gone"):
            if data.get(name) is None:
                raise MalformedMessage("missing_field", f"lan.data.{name} is required in a successful sweep")
        if data["method"] == "none":
            raise MalformedMessage("bad_field", "a successful sweep must name its method")
    for i, s in enumerate(entries("lan.data.subnets", data["subnets"], 64)):
        check_entry(f"lan.data.subnets[{i}]", s, SUBNET_FIELDS)
    for i, s in enumerate(entries("lan.data.skipped", data.get("skipped"), 64)):
        check_entry(f"lan.data.skipped[{i}]", s, SKIPPED_FIELDS)
    for i, n in enumerate(entries("lan.data.notes", data.get("notes"), 20)):
        check_value(f"lan.data.notes[{i}]", n, LAN_NOTE)
    by_class = data.get("by_class")
    if by_class is not None:
        if not isinstance(by_class, dict):
            raise MalformedMessage("bad_type", "lan.data.by_class must be an object")
        for cls, n in by_class.items():
            if cls not in DEVICE_CLASSES:
                raise MalformedMessage("out_of_range", f"lan.data.by_class has unknown class {cls!r}")
            check_value(f"lan.data.by_class.{cls}", n, BY_CLASS_COUNT)
    for i, mac in enumerate(entries("lan.data.missing", data.get("missing"), MAX_HOSTS_PER_MESSAGE)):
        if not isinstance(mac, str) or not MAC_RE.match(mac):
            raise MalformedMessage("bad_field", f"lan.data.missing[{i}] is not a MAC like aa:bb:cc:dd:ee:ff")
    for key in ("appeared", "gone"):
        for i, h in enumerate(entries(f"lan.data.{key}", data.get(key), MAX_HOSTS_PER_MESSAGE)):
            check_lan_host(f"lan.data.{key}[{i}]", h)


def check_inventory(data: dict[str, Any], ok: bool) -> None:
    for i, e in enumerate(entries("inventory.data.interfaces", data["interfaces"], 64)):
        path = f"inventory.data.interfaces[{i}]"
        check_entry(path, e, INTERFACE_FIELDS)
        for j, a in enumerate(entries(f"{path}.ipv4", e.get("ipv4"), 16)):
            check_value(f"{path}.ipv4[{j}]", a, INTERFACE_IPV4)


def check_dns(data: dict[str, Any], ok: bool) -> None:
    for i, a in enumerate(entries("dns.data.addresses", data.get("addresses"), MAX_DNS_ADDRESSES)):
        if not isinstance(a, str):
            raise MalformedMessage("bad_field", f"dns.data.addresses[{i}] must be an IP address string")
        check_value(f"dns.data.addresses[{i}]", a, DNS_ADDRESS)

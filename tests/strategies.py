"""Hypothesis strategies for the wire contract (linewatch.wire).

    valid_messages(kinds=None, ...)  -> (topic, payload) that PASS wire.parse_message, with
                                        extreme and odd values in every field
    hostile_payloads()               -> (topic, payload) that are garbage, or valid messages
                                        mutated at the JSON or the byte level

Values are built from the contract's own tables (wire.SCHEMAS, wire.LAN_HOST_FIELDS, ...): a
new Num/Str/Bool field is covered without touching this file. A new Obj field (nested object
or list) needs a strategy in OBJ_VALUES below; without one, building the strategy fails.

A valid message is checked with wire.parse_message when it is drawn, so a strategy bug (or a
contract change it does not know yet) fails loudly instead of feeding invalid input to a test
that expects valid input. Its measured_at is relative to the clock at that moment; it stays
valid for at least VALID_FOR after it was drawn.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from linewatch import wire

#: A drawn message stays valid this long (it may be fed to the collector a little later).
VALID_FOR = timedelta(minutes=10)

# --------------------------------------------------------------------------- text
#: Text that breaks naive code: Vietnamese (precomposed and decomposed), controls (never NUL:
#: the contract refuses it), bidi overrides and marks, zero-width and format characters,
#: separators, emoji (incl. ZWJ sequences and flags), astral and private-use characters,
#: quotes, backslashes and markup.
ODD_PIECES = (
    "Phường Thử Nghiệm", "Ủy ban nhân dân xã", "Đắk Lắk", "ư", "ệ", "ẫ", "Ỹ", "đ", "e\u0302\u0301", "o\u031b\u0323",
    "\x01", "\x07", "\x08", "\t", "\n", "\r", "\x1b[2J", "\x1b]0;title\x07", "\x7f", "\x85", "\x9b",
    "\u061c", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
    "\u2069", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\U000e0001", "\u2028", "\u2029",
    "😀", "👨\u200d👩\u200d👧", "🇻🇳", "\U0010fffd", "\ue000", "\ufffd", "\uffff",
    '"', "\\", "/", "'", "<script>", "%s", "{}", "${x}", "' OR 1=1 --", " ", "\u3000",
)
_ANY_CHAR = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_PIECE = st.one_of(st.sampled_from(ODD_PIECES), _ANY_CHAR)


def text(max_len: int, min_len: int = 0) -> st.SearchStrategy[str]:
    """Text of min_len..max_len characters: short, or exactly max_len (a repeated piece: cheap)."""
    short = st.lists(_PIECE, min_size=min_len, max_size=12).map("".join)
    full = st.lists(_PIECE, min_size=1, max_size=6).map("".join).map(lambda s: s * (max_len // len(s) + 1))
    return st.one_of(short, full).map(lambda s: s[:max_len]).filter(lambda s: len(s) >= min_len)


# --------------------------------------------------------------------------- shaped text
_UTC_MIN = datetime(wire.MIN_YEAR, 1, 1, tzinfo=timezone.utc)
_UTC_MAX = datetime(wire.MAX_YEAR, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
_OFFSETS = st.one_of(st.sampled_from([0, 14 * 60, -14 * 60, 7 * 60, 5 * 60 + 30, -(3 * 60 + 30), 5 * 60 + 45]),
                     st.integers(-14 * 60, 14 * 60))


@st.composite
def render_time(draw, t: datetime) -> str:
    """One instant written the many ways the contract accepts (zone Z or any offset, with or
    without fractions, 'T' or ' ')."""
    if draw(st.booleans()):
        return wire.format_time(t)  # what agents send
    local = t.astimezone(timezone(timedelta(minutes=draw(_OFFSETS))))
    s = local.isoformat(sep=draw(st.sampled_from("T ")),
                        timespec=draw(st.sampled_from(["seconds", "milliseconds", "microseconds", "auto"])))
    return s.replace("+00:00", "Z") if draw(st.booleans()) else s


def any_time() -> st.SearchStrategy[str]:
    """Any time the contract accepts in a nested field (the agent's clock may be wrong)."""
    instants = st.one_of(st.sampled_from([_UTC_MIN, _UTC_MAX]),
                         st.datetimes(_UTC_MIN.replace(tzinfo=None), _UTC_MAX.replace(tzinfo=None),
                                      timezones=st.just(timezone.utc)))
    return instants.flatmap(render_time)


def ipv4() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["0.0.0.0", "255.255.255.255", "127.0.0.1", "192.168.1.1"]),
                     st.ip_addresses(v=4).map(str))


def ip() -> st.SearchStrategy[str]:
    return st.one_of(ipv4(), st.sampled_from(["::", "::1", "::ffff:10.0.0.1", "fe80::1", "2001:db8::1",
                                              "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]),
                     st.ip_addresses(v=6).map(str))


def mac() -> st.SearchStrategy[str]:
    return st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))


def cidr4() -> st.SearchStrategy[str]:
    return st.tuples(st.ip_addresses(v=4), st.integers(0, 32)).map(
        lambda t: str(ipaddress.IPv4Network(f"{t[0]}/{t[1]}", strict=False)))


FORMATS = {"time": any_time, "ipv4": ipv4, "ip": ip, "mac": mac, "cidr4": cidr4}


# --------------------------------------------------------------------------- values from specs
def _int_edges(lo: int, hi: int) -> list[int]:
    return sorted({x for x in (lo, lo + 1, hi - 1, hi, 0, 1) if lo <= x <= hi})


def num(spec: wire.Num) -> st.SearchStrategy[int | float]:
    lo_i = math.ceil(spec.lo)
    hi_i = math.floor(min(spec.hi, wire.INT_MAX))
    ints = st.one_of(st.sampled_from(_int_edges(lo_i, hi_i)), st.integers(lo_i, hi_i))
    if spec.integer:
        return ints
    hi = min(spec.hi, 1e300)
    edges = [float(spec.lo), float(hi), math.nextafter(float(hi), -math.inf), math.nextafter(float(spec.lo), math.inf)]
    if spec.lo <= 0 <= hi:
        edges += [-0.0, 5e-324, 0.1]
    floats = st.floats(spec.lo, hi, allow_nan=False, allow_infinity=False)
    return st.one_of(st.sampled_from([e for e in edges if spec.lo <= e <= hi]), floats, ints)


def value(spec: wire.Spec, path: str) -> st.SearchStrategy[Any]:
    """Any valid value of one field."""
    if isinstance(spec, wire.Num):
        return num(spec)
    if isinstance(spec, wire.Bool):
        return st.booleans()
    if isinstance(spec, wire.Str):
        if spec.choices:
            return st.sampled_from(spec.choices)
        if spec.fmt:
            return FORMATS[spec.fmt]().filter(lambda s: len(s) <= spec.max_len)
        return text(spec.max_len)
    if isinstance(spec, wire.Obj):
        if path not in OBJ_VALUES:
            raise LookupError(f"no strategy for the Obj field {path}: add one to OBJ_VALUES in tests/strategies.py")
        return OBJ_VALUES[path]()
    raise TypeError(f"unknown spec {spec!r} at {path}")


def entry(fields: dict[str, wire.Spec], path: str) -> st.SearchStrategy[dict[str, Any]]:
    """An object with exactly these fields: optional ones absent, null, or set."""
    required = {n: value(s, f"{path}.{n}") for n, s in fields.items() if not s.optional}
    optional = {n: st.one_of(st.none(), value(s, f"{path}.{n}")) for n, s in fields.items() if s.optional}
    return st.fixed_dictionaries(required, optional=optional)


def some(elements: st.SearchStrategy[Any], max_items: int, many: int | None = None) -> st.SearchStrategy[list]:
    """A short list, or ``many`` (default: max_items) copies of one element (cheap to draw)."""
    n = max_items if many is None else min(many, max_items)
    return st.one_of(st.lists(elements, max_size=min(3, max_items)), elements.map(lambda e: [e] * n))


#: Nested shapes (wire's Obj fields), by "kind.field" or "kind.field.inner".
OBJ_VALUES = {
    "dns.addresses": lambda: some(ip(), wire.MAX_DNS_ADDRESSES),
    "inventory.interfaces": lambda: some(entry(wire.INTERFACE_FIELDS, "inventory.interfaces"), 64),
    "inventory.interfaces.ipv4": lambda: some(st.one_of(ipv4(), text(wire.INTERFACE_IPV4.max_len)), 16),
    "lan.subnets": lambda: some(entry(wire.SUBNET_FIELDS, "lan.subnets"), 64),
    "lan.skipped": lambda: some(entry(wire.SKIPPED_FIELDS, "lan.skipped"), 64, many=16),
    "lan.notes": lambda: some(value(wire.LAN_NOTE, "lan.notes"), 20),
    "lan.by_class": lambda: st.dictionaries(st.sampled_from(wire.DEVICE_CLASSES), num(wire.BY_CLASS_COUNT)),
    "lan.appeared": lambda: some(entry(wire.LAN_HOST_FIELDS, "lan.host"), wire.MAX_HOSTS_PER_MESSAGE, many=20),
    "lan.gone": lambda: some(entry(wire.LAN_HOST_FIELDS, "lan.host"), wire.MAX_HOSTS_PER_MESSAGE, many=20),
    "lan.missing": lambda: some(mac(), wire.MAX_HOSTS_PER_MESSAGE, many=500),
}


def schema_for(kind: str, ok: bool) -> dict[str, wire.Spec]:
    """wire.SCHEMAS[kind], plus the rules that depend on ``ok`` (wire_checks.check_lan: a
    successful sweep names its method and carries its summary)."""
    fields = dict(wire.SCHEMAS[kind])
    if kind == "lan" and ok:
        for name in ("sweep_no", "hosts_seen", "hosts_known", "computers", "by_class", "appeared", "gone"):
            fields[name] = dataclasses.replace(fields[name], optional=False)
        fields["method"] = wire.Str(choices=tuple(c for c in fields["method"].choices if c != "none"))
    return fields


_DATA: dict[tuple[str, bool], st.SearchStrategy[dict[str, Any]]] = {}


def data_for(kind: str, ok: bool) -> st.SearchStrategy[dict[str, Any]]:
    if (kind, ok) not in _DATA:
        _DATA[kind, ok] = entry(schema_for(kind, ok), kind)
    return _DATA[kind, ok]


# --------------------------------------------------------------------------- messages
AGENT_ERROR_CODES = ("unreachable", "line_unbound", "dns_failed", "method_unavailable", "transfer_failed",
                     "budget_exhausted", "no_subnet", "sweep_failed", "tls_failed", "http_error", "timeout")
_ERROR_CODE = st.one_of(st.sampled_from(AGENT_ERROR_CODES), st.sampled_from(["a", "x" * 64, "0", "a.b-c_d"]),
                        st.from_regex(wire.ERROR_CODE_RE, fullmatch=True))
_STREAM = st.text("0123456789abcdef", min_size=8, max_size=32)
_SEQ = st.one_of(st.sampled_from([0, 1, wire.MAX_SEQ, wire.MAX_SEQ - 1]), st.integers(0, wire.MAX_SEQ))


def _when(now: datetime) -> st.SearchStrategy[datetime]:
    oldest = -(wire.MAX_AGE - VALID_FOR)
    ahead = wire.MAX_CLOCK_AHEAD
    offsets = st.one_of(st.sampled_from([timedelta(0), ahead, oldest, timedelta(seconds=-1)]),
                        st.timedeltas(oldest, ahead))
    return offsets.map(lambda d: now + d)


def _encode(draw, obj: dict[str, Any]) -> bytes:
    how = draw(st.sampled_from(["agent", "ascii", "indent"]))
    if how == "agent":  # what Message.to_json sends
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    if how == "ascii":  # every non-ASCII character as \\uXXXX (astral ones as surrogate pairs)
        return json.dumps(obj, allow_nan=False).encode()
    return json.dumps(obj, ensure_ascii=False, indent=2, allow_nan=False).encode()


@st.composite
def valid_messages(draw, kinds=None, province: str = "52", site: str = "21583", agent_id: str = "ag-21583",
                   lines=("fiber", "tslcd")) -> tuple[str, bytes]:
    """(topic, payload) of a message that passes wire.parse_message, for one of ``kinds``
    (default: every kind in wire.SCHEMAS), with extreme and odd values in every field."""
    kind = draw(st.sampled_from(tuple(kinds or wire.SCHEMAS)))
    scope = wire.kind_scope(kind)
    line = draw(st.sampled_from(tuple(lines))) if scope == "line" else None
    ok = draw(st.booleans())
    obj: dict[str, Any] = {"schema": wire.SCHEMA_VERSION, "kind": kind, "agent_id": agent_id, "province": province,
                           "site": site, "line": line, "seq": draw(_SEQ), "ok": ok}
    optional = {"stream": _STREAM, "error_code": _ERROR_CODE, "error": text(1000)}
    for name, strategy in optional.items():
        how = draw(st.sampled_from(["absent", "null", "set"]))
        if how != "absent":
            obj[name] = draw(strategy) if how == "set" else None
    if line is None and draw(st.booleans()):
        del obj["line"]  # absent is null
    obj["measured_at"] = draw(render_time(draw(_when(wire.utc_now()))))
    obj["data"] = draw(data_for(kind, ok))
    if draw(st.integers(0, 9)) == 0:  # unknown envelope keys are ignored (not stored)
        obj[draw(text(20, min_len=1))] = draw(st.one_of(st.none(), text(50), st.integers(0, 10)))
    payload = _encode(draw, obj)
    assume(len(payload) <= wire.MAX_PAYLOAD_BYTES)  # rare: many maximal lists at once
    topic = (wire.line_topic(province, site, line, kind) if line is not None
             else wire.agent_topic(province, site, agent_id, kind))
    try:
        wire.parse_message(topic, payload)
    except wire.MalformedMessage as e:
        raise AssertionError(f"tests/strategies.py drew an invalid {kind} message ({e}): "
                             f"fix the strategy or the contract") from None
    return topic, payload


# --------------------------------------------------------------------------- hostile input
#: Values that have broken (or could break) a parser or a writer downstream.
HOSTILE_VALUES = (
    None, True, False, 0, -1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, 1e308, -1e308,
    -0.0, 5e-324, math.inf, -math.inf, math.nan, "", "\x00", "a\x00b", "\ud800", "\udfff", "\ud83d", "x" * 5000,
    [], {}, [[[[[[[1]]]]]]], {"a": {"b": {"c": {"d": {"e": {}}}}}}, [None], [{"x": 1}], {"x": [1]},
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1970-01-01T00:00:00Z", "2026-13-45T99:99:99Z",
    "2026-01-01T00:00:00", "NaN", "::1%eth0", "10.0.0.1/33", "aa:bb:cc:dd:ee:ff:00", "\u202e", "status", "cmd",
)
HOSTILE_KEYS = ("", "\x00", "\ud800", "schema", "data", "seq", "x" * 1000, "\u202e", "__proto__", "line")
RAW = (
    b"", b"{}", b"[]", b"null", b"1", b'"x"', b"{" * 1000, b"[" * 100_000, b'{"a":' * 40_000, b"\xef\xbb\xbf{}",
    b"\xff\xfe{\x00}\x00", b"\xed\xa0\x80", b"\xc0\x80", b'{"schema":1e999}', b'{"schema":NaN}',
    b'{"schema":' + b"1" * 5000 + b"}", b'{"schema":1,"schema":2}', b'{"seq":-0}', b"\x00" * 100,
)


def _paths(obj: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, path + (i,))
    return out


def _get(obj: Any, path: tuple) -> Any:
    for p in path:
        obj = obj[p]
    return obj


@st.composite
def _mutated_json(draw, topic: str, payload: bytes) -> bytes:
    obj = json.loads(payload)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(obj) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _get(obj, path[:-1]), path[-1]
        action = draw(st.sampled_from(["set", "delete", "add_key", "wrap"]))
        if action == "set":
            parent[key] = draw(st.sampled_from(HOSTILE_VALUES))
        elif action == "delete":
            del parent[key]
        elif action == "add_key" and isinstance(parent, dict):
            parent[draw(st.sampled_from(HOSTILE_KEYS))] = draw(st.sampled_from(HOSTILE_VALUES))
        else:
            parent[key] = [parent[key]]
    if draw(st.booleans()):  # lone surrogates survive only as \\u escapes (or as CESU-8 bytes)
        return json.dumps(obj).encode()
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def _mutated_bytes(draw, payload: bytes) -> bytes:
    b = bytearray(payload)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(b)))
        action = draw(st.sampled_from(["truncate", "flip", "insert", "splice"]))
        if action == "truncate":
            del b[i:]
        elif action == "flip" and i < len(b):
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif action == "insert":
            b[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            b[i:i] = draw(st.sampled_from([b'\\ud800', b'\\u0000', b'"', b"\\", b"[", b"{", b"1e999", b",", b":",
                                           b"99999999999999999999999"]))
    return bytes(b)


@st.composite
def hostile_payloads(draw, kinds=None) -> tuple[str, bytes]:
    """(topic, payload): garbage bytes, arbitrary JSON, or a valid message mutated at the
    JSON or byte level, mostly on the valid topic (so it gets past the topic check), sometimes
    on another one."""
    topic, payload = draw(valid_messages(kinds))
    how = draw(st.sampled_from(["json", "json", "json", "bytes", "bytes", "raw", "garbage", "any_json"]))
    if how == "json":
        payload = draw(_mutated_json(topic, payload))
    elif how == "bytes":
        payload = draw(_mutated_bytes(payload))
    elif how == "raw":
        payload = draw(st.sampled_from(RAW))
    elif how == "garbage":
        payload = draw(st.binary(max_size=200))
    else:
        payload = json.dumps(draw(json_values()), allow_nan=True).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        other = wire.agent_topic("52", "21583", "ag-21583", draw(st.sampled_from(wire.AGENT_KINDS + ("cmd",))))
        topic = draw(st.sampled_from([other, topic.replace("52", "53", 1), topic + "/x", "", "lw/v1/#"]))
    return topic, payload


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Arbitrary JSON-ish values (lone surrogates, huge numbers and non-finite floats included)."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(),
                        st.sampled_from(HOSTILE_VALUES))
    return st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                        st.dictionaries(st.text(max_size=8), kids, max_size=4)),
                        max_leaves=max_leaves)

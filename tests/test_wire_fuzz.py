"""Property tests of the wire contract: whatever arrives, parse_message either raises
MalformedMessage with a known reason or returns a Message the record can store as it is."""
from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linewatch import wire
from linewatch.text import printable

from strategies import hostile_payloads, json_values, valid_messages

# database=None: no .hypothesis/ folder in the work tree; the whole file runs in ~15 s
FUZZ = settings(max_examples=400, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
QUICK = settings(FUZZ, max_examples=150)
TOPICS = [wire.line_topic("52", "21583", "fiber", k) for k in wire.LINE_KINDS] + \
         [wire.agent_topic("52", "21583", "ag-21583", k) for k in wire.AGENT_KINDS]


def parse_or_reason(topic: str, payload: bytes) -> wire.Message | None:
    """The parsed message, or None after checking the refusal is a MalformedMessage with a
    known reason and a printable one-line detail. Any other exception fails the test."""
    try:
        return wire.parse_message(topic, payload)
    except wire.MalformedMessage as e:
        assert e.reason in wire.REASONS, e.reason
        assert e.detail == printable(e.detail) and len(e.detail) <= 500
        return None


def walk(v: Any, depth: int = 1):
    yield v, depth
    if isinstance(v, dict):
        for k, x in v.items():
            yield k, depth + 1
            yield from walk(x, depth + 1)
    elif isinstance(v, list):
        for x in v:
            yield from walk(x, depth + 1)


def nested_times(m: wire.Message) -> list[str]:
    d = m.data
    if m.kind == "heartbeat":
        return [d["clock_utc"]]
    if m.kind == "inventory":
        return [d["boot_time"]]
    if m.kind == "lan":
        return [h[t] for key in ("appeared", "gone") for h in d.get(key) or () for t in ("first_seen", "last_seen")
                if h.get(t) is not None]
    return []


def assert_storable(m: wire.Message) -> None:
    """What the record's writer does with a message never fails."""
    envelope = [m.kind, m.agent_id, m.province, m.site, m.line, m.stream, m.error_code, m.error]
    for v, depth in walk([envelope, m.data]):
        assert depth <= wire.MAX_DEPTH + 1  # data sits one level below the message object
        if isinstance(v, str):
            v.encode("utf-8")  # no lone surrogates (PostgreSQL text, SQLite, json)
            assert "\x00" not in v  # PostgreSQL text and jsonb cannot hold U+0000
        elif isinstance(v, bool):
            pass
        elif isinstance(v, int):
            assert wire.INT_MIN <= v <= wire.INT_MAX, v  # bigint
        elif isinstance(v, float):
            assert v == v and abs(v) != float("inf")
    json.dumps(m.data, allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert 0 <= m.seq <= wire.MAX_SEQ and float(m.seq) + 1 == m.seq + 1
    assert wire.MIN_YEAR <= m.measured_at.year <= wire.MAX_YEAR
    m.measured_at.timestamp()
    for t in nested_times(m):
        wire.parse_time(t).timestamp()
    if wire.kind_scope(m.kind) == "agent":
        assert m.line is None
    if m.error_code is not None:
        assert wire.ERROR_CODE_RE.match(m.error_code)


# --------------------------------------------------------------------------- (a) only MalformedMessage
@FUZZ
@given(st.one_of(st.sampled_from(TOPICS), st.text()), st.binary(max_size=400))
def test_arbitrary_bytes_on_any_topic_are_malformed_never_a_crash(topic, payload):
    if (m := parse_or_reason(topic, payload)) is not None:
        assert_storable(m)


@FUZZ
@given(st.sampled_from(TOPICS), json_values())
def test_arbitrary_json_is_malformed_or_storable(topic, value):
    payload = json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")
    if (m := parse_or_reason(topic, payload)) is not None:
        assert_storable(m)


@FUZZ
@given(hostile_payloads())
def test_mutated_valid_messages_are_malformed_or_storable(tp):
    if (m := parse_or_reason(*tp)) is not None:
        assert_storable(m)


# --------------------------------------------------------------------------- (b) valid -> storable
@FUZZ
@given(valid_messages())
def test_every_valid_message_parses_and_is_storable_as_it_is(tp):
    topic, payload = tp
    m = wire.parse_message(topic, payload)
    assert m.topic == topic
    assert_storable(m)
    # what the collector reads back is what the agent sent
    assert m.data == json.loads(payload)["data"]


#: Invalid for every Obj field of the contract, whatever it holds (entries, texts, addresses, MACs, counts).
JUNK = [{"junk": {"deep": [1]}}, [{"junk": 1}], ["x" * 301], [[]], [None, 1], "text", 5, True]


@QUICK
@given(valid_messages(), st.sampled_from(JUNK))
def test_every_object_field_of_every_kind_has_a_check_that_refuses_junk(tp, junk):
    """No nested object or list reaches the record unchecked (the dns.addresses hole): a new
    Obj field without its check in wire.INNER_CHECKS fails here."""
    topic, payload = tp
    kind = json.loads(payload)["kind"]
    for name in [n for n, s in wire.SCHEMAS[kind].items() if isinstance(s, wire.Obj)]:
        bad = json.loads(payload)
        bad["data"][name] = junk
        assert parse_or_reason(topic, json.dumps(bad).encode()) is None, f"{kind}.data.{name} = {junk!r} accepted"
    if kind == "inventory":  # the one Obj inside a nested entry
        assert [n for n, s in wire.INTERFACE_FIELDS.items() if isinstance(s, wire.Obj)] == ["ipv4"]
        bad = json.loads(payload)
        bad["data"]["interfaces"] = [{"name": "eth0", "ipv4": junk}]
        assert parse_or_reason(topic, json.dumps(bad).encode()) is None, f"interfaces[0].ipv4 = {junk!r} accepted"


def test_no_other_nested_table_has_an_unchecked_object_field():
    for fields in (wire.LAN_HOST_FIELDS, wire.SUBNET_FIELDS, wire.SKIPPED_FIELDS):
        assert not [n for n, s in fields.items() if isinstance(s, wire.Obj)]


# --------------------------------------------------------------------------- linewatch.text
ESCAPED = {"Cc", "Cf", "Cs", "Zl", "Zp"}


@QUICK
@given(st.text(st.characters()), st.one_of(st.none(), st.integers(0, 50)))
def test_printable_output_never_carries_a_control_or_format_character(s, max_len):
    out = printable(s, max_len)
    assert not any(unicodedata.category(c) in ESCAPED for c in out)
    if max_len is not None:
        assert len(out) <= max_len
    clean = not any(unicodedata.category(c) in ESCAPED for c in s)
    if max_len is None or len(s) <= max_len:
        assert (out == s) is clean, "printable text comes through unchanged, other text does not"


@QUICK
@given(st.text(st.characters(exclude_categories=tuple(ESCAPED))))
def test_printable_text_is_unchanged(s):
    assert printable(s) == s


@pytest.mark.parametrize("s", ["Phường Thử Nghiệm", "UBND xã Đắk Lắk", "e\u0302\u0301 o\u031b\u0323", "🇻🇳 😀"])
def test_vietnamese_and_emoji_pass_unchanged(s):
    assert printable(s) == s

"""The wire contract: what a valid message is, and a named reason for every invalid one."""
import json
import math
from datetime import timedelta

import pytest

from linewatch import wire
from linewatch.text import printable


def latency(**over):
    kw = dict(kind="latency", agent_id="ag-21583", province="52", site="21583", line="fiber", seq=3,
              measured_at=wire.utc_now(), data={"method": "icmp-raw", "target": "10.0.0.1", "sent": 20,
                                                "received": 19, "loss_pct": 5.0, "rtt_median_ms": 12.0})
    kw.update(over)
    return wire.build_message(**kw)


def reason(topic, payload) -> str:
    with pytest.raises(wire.MalformedMessage) as e:
        wire.parse_message(topic, payload if isinstance(payload, bytes) else json.dumps(payload).encode())
    return e.value.reason


def test_a_message_survives_the_round_trip_with_units_in_its_field_names():
    m = latency()
    assert m.topic == "lw/v1/52/21583/line/fiber/latency"
    back = wire.parse_message(m.topic, m.to_json())
    assert back.data == m.data and back.seq == 3 and back.line == "fiber"
    assert back.measured_at == m.measured_at.replace(microsecond=m.measured_at.microsecond // 1000 * 1000)


def test_a_failed_measurement_is_a_valid_message_not_a_malformed_one():
    m = latency(ok=False, error_code="unreachable", error="no reply",
                data={"method": "icmp-raw", "target": "10.0.0.1", "sent": 20, "received": 0, "loss_pct": 100})
    assert wire.parse_message(m.topic, m.to_json()).ok is False


def test_agent_messages_live_under_the_agent_and_line_messages_under_the_line():
    assert wire.parse_topic("lw/v1/52/21583/agent/ag-1/heartbeat").scope == "agent"
    assert reason("lw/v1/52/21583/line/fiber/heartbeat", {}) == "bad_topic"
    assert reason("lw/v1/52/2158/line/fiber/latency", {}) == "bad_topic"
    assert reason("other/topic", {}) == "bad_topic"


def test_non_commune_sites_are_allowed_with_a_province_prefix():
    assert wire.valid_site_code("52-so-khcn") and wire.valid_site_code("21583")
    assert not wire.valid_site_code("so-khcn") and not wire.valid_site_code("2158")


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d.update(schema=2), "bad_schema"),
    (lambda d: d.pop("seq"), "bad_field"),
    (lambda d: d.update(seq="3"), "bad_field"),
    (lambda d: d.update(seq=True), "bad_field"),
    (lambda d: d.update(site="21584"), "topic_mismatch"),
    (lambda d: d.update(line="other"), "topic_mismatch"),
    (lambda d: d.update(measured_at="yesterday"), "bad_time"),
    (lambda d: d.update(measured_at=wire.format_time(wire.utc_now() + timedelta(hours=2))), "bad_time"),
    (lambda d: d.update(measured_at="2026-01-01T00:00:00"), "bad_time"),  # no time zone
    (lambda d: d["data"].update(loss_pct=-1), "out_of_range"),
    (lambda d: d["data"].update(loss_pct=101), "out_of_range"),
    (lambda d: d["data"].update(rtt_median_ms="12"), "bad_type"),
    (lambda d: d["data"].update(sent=2.5), "bad_type"),
    (lambda d: d["data"].update(method="carrier-pigeon"), "out_of_range"),
    (lambda d: d["data"].update(colour="blue"), "unknown_field"),
    (lambda d: d["data"].pop("target"), "missing_field"),
    (lambda d: d.update(data=[1, 2]), "bad_field"),
])
def test_each_kind_of_malformed_message_is_rejected_with_its_own_reason(mutate, expected):
    m = latency()
    d = m.to_dict()
    mutate(d)
    assert reason(m.topic, d) == expected


def test_nan_infinity_invalid_utf8_and_oversized_payloads_are_rejected():
    topic = latency().topic
    text = latency().to_json().decode()
    assert reason(topic, text.replace('"loss_pct":5.0', '"loss_pct":NaN').encode()) == "bad_json"
    assert reason(topic, text.replace('"loss_pct":5.0', '"loss_pct":Infinity').encode()) == "bad_json"
    assert reason(topic, b"\xff\xfe{}") == "bad_json"
    assert reason(topic, b"[]") == "bad_json"
    assert reason(topic, b" " * (wire.MAX_PAYLOAD_BYTES + 1)) == "too_large"


def test_the_agent_cannot_build_a_message_that_breaks_the_contract():
    with pytest.raises(wire.MalformedMessage):
        latency(data={"method": "icmp-raw", "target": "x", "sent": 1, "received": 0, "loss_pct": math.nan})


# --------------------------------------------------------------------------- holes found by an attack
# Each of these passed the contract and crashed the collector's writer later (or stored junk).
AGENT = "lw/v1/52/21583/agent/ag-21583"


def envelope(kind: str, data: dict, **over) -> dict:
    d = {"schema": 1, "kind": kind, "agent_id": "ag-21583", "province": "52", "site": "21583",
         "line": "fiber" if kind in wire.LINE_KINDS else None, "seq": 7,
         "measured_at": wire.format_time(wire.utc_now()), "ok": True, "error_code": None, "error": None,
         "data": data}
    d.update(over)
    return d


def heartbeat(**data) -> dict:
    return envelope("heartbeat", {"version": "0.1.0", "uptime_s": 5.0, "queue_depth": 0, "queue_dropped": 0,
                                  "probe_errors": 0, "clock_utc": wire.format_time(wire.utc_now()), **data})


def inventory(**data) -> dict:
    return envelope("inventory", {"hostname": "pc01", "os_name": "Linux", "os_version": "12", "ram_total_mb": 8000,
                                  "disk_total_gb": 200.0, "disk_free_gb": 100.0,
                                  "boot_time": "2026-01-01T00:00:00.000Z",
                                  "interfaces": [{"name": "eth0", "rx_bytes": 1}], **data})


def lan_host(**over) -> dict:
    return {"ip": "192.168.1.5", "mac": "aa:bb:cc:dd:ee:ff", "device_class": "computer", **over}


def lan(**data) -> dict:
    return envelope("lan", {"method": "arp-scapy", "subnets": [{"cidr": "192.168.1.0/24", "interface": "eth0"}],
                            "missed_sweeps_before_gone": 3, "sweep_no": 1, "hosts_seen": 1, "hosts_known": 1,
                            "computers": 1, "by_class": {"computer": 1}, "appeared": [lan_host()], "gone": [],
                            **data})


def dns(**data) -> dict:
    return envelope("dns", {"resolver": "1.1.1.1", "name": "example.vn", "qtype": "A", "attempts": 1, **data})


def topic_of(d: dict) -> str:
    if d["kind"] in wire.LINE_KINDS:
        return wire.line_topic("52", "21583", "fiber", d["kind"])
    return wire.agent_topic("52", "21583", "ag-21583", d["kind"])


def test_the_helpers_build_valid_messages_of_every_nested_kind():
    for d in (heartbeat(), inventory(), lan(), dns(addresses=["10.0.0.1", "2001:db8::1"])):
        assert wire.parse_message(topic_of(d), json.dumps(d).encode()).kind == d["kind"]


@pytest.mark.parametrize("when", [
    "0001-01-01T00:00:00+14:00",   # astimezone(utc) overflows: OverflowError
    "9999-12-31T23:59:59-14:00",   # the same, upwards
    "1999-12-31T23:59:59Z",        # parses, but outside the contract's years
    "2101-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",        # .timestamp() would still work; the year is nonsense
])
def test_times_that_parse_but_cannot_be_converted_or_stored_are_bad_time_everywhere(when):
    assert reason(topic_of(heartbeat()), heartbeat() | {"measured_at": when}) == "bad_time"
    assert reason(topic_of(heartbeat()), heartbeat(clock_utc=when)) == "bad_time"
    assert reason(topic_of(inventory()), inventory(boot_time=when)) == "bad_time"
    assert reason(topic_of(lan()), lan(appeared=[lan_host(first_seen=when)])) == "bad_time"
    assert reason(topic_of(lan()), lan(gone=[lan_host(last_seen=when)])) == "bad_time"


def test_heartbeat_clock_is_checked_as_a_time_by_the_contract_not_later_by_the_writer():
    assert reason(topic_of(heartbeat()), heartbeat(clock_utc="yesterday")) == "bad_time"
    assert reason(topic_of(heartbeat()), heartbeat(clock_utc="2026-01-01T00:00:00")) == "bad_time"  # no zone
    # the agent's clock may be wrong (that is what clock_offset_s measures): any sane year passes
    assert wire.parse_message(topic_of(heartbeat()), json.dumps(heartbeat(clock_utc="2031-05-05T00:00:00+07:00")).encode())


@pytest.mark.parametrize("payload", [b"[" * 100_000, b'{"a":' * 40_000, b"[" * 2000 + b"]" * 2000])
def test_json_nested_beyond_the_parsers_stack_is_bad_json_not_recursion_error(payload):
    assert reason(topic_of(heartbeat()), payload) == "bad_json"


def test_a_document_nested_deeper_than_the_contract_allows_is_refused_before_any_field_check():
    deep: object = 1
    for _ in range(wire.MAX_DEPTH):
        deep = [deep]
    assert reason(topic_of(heartbeat()), heartbeat() | {"x": deep}) == "too_deep"  # an ignored envelope key too
    assert reason(topic_of(dns()), dns(addresses=deep)) == "too_deep"
    ok = inventory(interfaces=[{"name": "eth0", "ipv4": ["10.0.0.1"]}])  # the deepest valid shape
    assert wire.parse_message(topic_of(ok), json.dumps(ok).encode())


@pytest.mark.parametrize("where", ["error", "data.version", "data.hostname", "data.last_probe_error", "key"])
@pytest.mark.parametrize("bad", ["\ud800", "a\udfffb", "\x00", "ab\x00"])
def test_text_the_database_cannot_hold_is_bad_text_anywhere_in_the_document(where, bad):
    d = heartbeat()
    if where == "key":
        d["data"][bad] = 1  # would be unknown_field, but text is checked first
    elif where.startswith("data."):
        d["data"][where[5:]] = bad
    else:
        d.update(ok=False, error_code="x", error=bad)
    assert reason(topic_of(d), json.dumps(d).encode()) == "bad_text"  # ensure_ascii: "\ud800" on the wire


def test_bad_text_in_nested_lists_and_ignored_envelope_keys_is_refused_too():
    assert reason(topic_of(lan()), lan(appeared=[lan_host(vendor="Brother\x00")])) == "bad_text"
    assert reason(topic_of(lan()), lan(notes=["\udc80"])) == "bad_text"
    assert reason(topic_of(lan()), heartbeat() | {"extra\x00": 1}) == "bad_text"
    # other control characters are text (shown escaped by linewatch.text.printable), not an error
    d = heartbeat(hostname="pc\x1b[31m\u202eRTL\t")
    assert wire.parse_message(topic_of(d), json.dumps(d).encode()).data["hostname"] == "pc\x1b[31m\u202eRTL\t"


@pytest.mark.parametrize("seq, expected", [(0, None), (2**53 - 1, None), (2**53, "bad_field"),
                                           (2**63 - 1, "bad_field"), (-1, "bad_field"), (2**64, "bad_field"),
                                           (2**70, "bad_field")])
def test_seq_stays_where_seq_plus_one_and_float_conversion_are_exact(seq, expected):
    d = heartbeat() | {"seq": seq}
    if expected is None:
        assert wire.parse_message(topic_of(d), json.dumps(d).encode()).seq == seq
    else:
        assert reason(topic_of(d), d) == expected


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64, 10**30])
def test_integers_beyond_int64_are_refused_anywhere(value):
    iface = {"name": "eth0", "rx_bytes": value}
    assert reason(topic_of(inventory()), inventory(interfaces=[iface])) == "out_of_range"
    assert reason(topic_of(heartbeat()), heartbeat() | {"extra": value}) == "out_of_range"
    assert reason(topic_of(lan()), lan(notes=[value])) == "out_of_range"


def test_interface_counters_may_reach_int64_max():
    d = inventory(interfaces=[{"name": "eth0", "rx_bytes": 2**63 - 1, "tx_bytes": 0}])
    assert wire.parse_message(topic_of(d), json.dumps(d).encode()).data["interfaces"][0]["rx_bytes"] == 2**63 - 1


def test_huge_float_literals_are_not_smuggled_in_as_infinity():
    d = json.dumps(heartbeat() | {"extra": 1.0}).replace('"extra": 1.0', '"extra": 1e999').encode()
    assert reason(topic_of(heartbeat()), d) == "bad_json"


@pytest.mark.parametrize("addresses, expected", [
    ({"a": {"b": {"c": "x" * 100}}}, "bad_type"),   # an object: stored unchecked before
    ([{"a": 1}], "bad_field"),
    (["10.0.0.1"] * 65, "out_of_range"),
    (["not an address"], "bad_field"),
    (["10.0.0.1%eth0"], "bad_field"),
    (["fe80::1%eth0"], "bad_field"),               # scope ids are not answers
    ([1], "bad_field"),
])
def test_dns_addresses_are_a_short_list_of_ip_addresses(addresses, expected):
    assert reason(topic_of(dns()), dns(addresses=addresses)) == expected


def test_dns_addresses_accept_v4_and_v6_answers_and_null():
    for a in (["10.0.0.1"] * 64, ["2001:db8::1", "::ffff:10.0.0.1"], [], None):
        d = dns(addresses=a)
        assert wire.parse_message(topic_of(d), json.dumps(d).encode()).data["addresses"] == a


def _obj_fields(fields: dict) -> list[str]:
    return [name for name, spec in fields.items() if isinstance(spec, wire.Obj)]


def test_every_kind_with_an_object_field_has_an_inner_check():
    for kind, fields in wire.SCHEMAS.items():
        if _obj_fields(fields):
            assert kind in wire.INNER_CHECKS, f"{kind}.data.{_obj_fields(fields)} would be stored unchecked"


@pytest.mark.parametrize("kind", list(wire.AGENT_KINDS))
def test_agent_scope_messages_carry_no_line(kind):
    d = {"heartbeat": heartbeat, "inventory": inventory, "lan": lan}.get(kind, lambda: envelope(
        "status", {"state": "online"}, seq=0))()
    assert wire.parse_message(topic_of(d), json.dumps(d).encode()).line is None
    assert reason(topic_of(d), d | {"line": "fiber"}) == "topic_mismatch"


@pytest.mark.parametrize("code, ok", [("unreachable", True), ("dns_failed", True), ("rcode5.x-y", True),
                                      ("x" * 64, True), ("x" * 65, False), ("", False), ("Unreachable", False),
                                      ("line unbound", False), ("a\x1b[2J", False), ("\u202e", False)])
def test_error_code_is_a_short_stable_code(code, ok):
    d = heartbeat() | {"ok": False, "error_code": code, "error": "why"}
    if ok:
        assert wire.parse_message(topic_of(d), json.dumps(d).encode()).error_code == code
    else:
        assert reason(topic_of(d), d) == "bad_field"


def test_the_agent_writes_error_codes_only_as_members_of_the_enumeration():
    import re
    from pathlib import Path

    agent = Path(__file__).resolve().parent.parent / "agent"
    text = "\n".join(p.read_text() for p in agent.rglob("*.py"))
    literals = re.findall(r'(?:error_code=|fail\(|TestFailed\()"([a-z_]+)"', text)
    assert literals == [], f"error codes written as free text: {literals}"
    used = set(re.findall(r"Code\.([A-Z_]+)", text))
    assert {"UNREACHABLE", "LINE_UNBOUND", "DNS_FAILED", "BUDGET_EXHAUSTED", "SERVER_BUSY"} <= used
    assert used <= {c.name for c in wire.Code}, used - {c.name for c in wire.Code}
    assert all(wire.ERROR_CODE_RE.match(c.value) and c.value in wire.ERROR_CODES for c in wire.Code)


def test_only_status_is_published_retained():
    assert wire.RETAIN_KINDS == ("status",)
    status = envelope("status", {"state": "offline"}, seq=0)
    assert wire.parse_message(topic_of(status), json.dumps(status).encode(), retained=True).data["state"] == "offline"
    with pytest.raises(wire.MalformedMessage) as e:
        wire.parse_message(topic_of(heartbeat()), json.dumps(heartbeat()).encode(), retained=True)
    assert e.value.reason == "retained"


@pytest.mark.parametrize("topic, payload", [
    ("", b""), ("lw/v1/52/21583/agent/ag-21583/heartbeat", b"\xef\xbb\xbf{}"),  # UTF-8 BOM
    ("lw/v1/52/21583/agent/ag-21583/heartbeat", '{"schema": 1}'.encode("utf-16")),  # JSON, but not UTF-8
    ("lw/v1/52/21583/agent/ag-21583/heartbeat", b'"\\ud800"'),
    ("lw/v1/52/21583/agent/\udcff/heartbeat", b"{}"), ("lw/v1/52/21583/agent/a\x00/heartbeat", b"{}"),
    ("lw/v1/52/21583/agent/ag-21583/heartbeat", b"1" * 5000),  # beyond int() digit limit
])
def test_odd_bytes_and_topics_are_malformed_with_a_known_reason(topic, payload):
    with pytest.raises(wire.MalformedMessage) as e:
        wire.parse_message(topic, payload)
    assert e.value.reason in wire.REASONS


def test_details_of_a_rejection_are_printable_and_bounded_for_logs():
    t = "lw/v1/52/21583/agent/\x1b[2J" + "x" * 10_000 + "/heartbeat"
    with pytest.raises(wire.MalformedMessage) as e:
        wire.parse_message(t, b"{}")
    assert "\x1b" not in e.value.detail and len(e.value.detail) <= 500 and "\x1b" not in str(e.value)
    d = heartbeat() | {"province": "\u202e25"}
    with pytest.raises(wire.MalformedMessage) as e:
        wire.parse_message(topic_of(d), json.dumps(d).encode())
    assert e.value.reason == "topic_mismatch" and "\u202e" not in e.value.detail


def test_the_agent_cannot_build_a_message_with_text_or_an_envelope_the_collector_refuses():
    with pytest.raises(wire.MalformedMessage, match="bad_text"):
        latency(data={"method": "icmp-raw", "target": "a\x00", "sent": 1, "received": 0})
    with pytest.raises(wire.MalformedMessage, match="bad_field"):
        latency(seq=2**53)
    with pytest.raises(wire.MalformedMessage, match="topic_mismatch"):
        wire.build_message(kind="status", agent_id="ag-1", province="52", site="21583", line="fiber", seq=0,
                           measured_at=wire.utc_now(), data={"state": "online"})


def test_the_agent_cannot_build_a_message_larger_than_the_broker_and_collector_accept():
    hosts = [{"ip": "192.168.1.5", "mac": "aa:bb:cc:dd:ee:ff", "device_class": "computer", "name": "x" * 255}] * 1500
    with pytest.raises(wire.MalformedMessage, match="too_large"):
        wire.build_message(kind="lan", agent_id="ag-1", province="52", site="21583", seq=1, measured_at=wire.utc_now(),
                           data=lan(appeared=hosts)["data"])


def test_docs_name_every_reason_and_rule_of_the_contract():
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs/wire.md").read_text()
    assert all(f"`{r}`" in doc for r in wire.REASONS), [r for r in wire.REASONS if f"`{r}`" not in doc]
    assert "2^53" in doc and "RETAIN_KINDS" in doc and "MAX_DEPTH" in doc


# --------------------------------------------------------------------------- linewatch.text

@pytest.mark.parametrize("raw, shown", [
    ("Phường Thử Nghiệm", "Phường Thử Nghiệm"),
    ("Ủy ban nhân dân xã Hoài Nhơn Bắc 😀", "Ủy ban nhân dân xã Hoài Nhơn Bắc 😀"),
    ("a\x1b[31mred", "a\\x1b[31mred"),
    ("line1\nline2\ttab\r", "line1\\x0aline2\\x09tab\\x0d"),
    ("\x00\x7f\x85\x9b", "\\x00\\x7f\\x85\\x9b"),
    ("abc\u202edef\u2066x\u2069", "abc\\u202edef\\u2066x\\u2069"),
    ("\u200e\u200f\ufeff\u00ad", "\\u200e\\u200f\\ufeff\\xad"),
    ("\U000e0001tag", "\\U000e0001tag"),
    ("x\u2028y\u2029", "x\\u2028y\\u2029"),
    ("lone \ud800", "lone \\ud800"),
    ("back\\slash", "back\\slash"),
])
def test_printable_shows_control_and_format_characters_as_visible_escapes(raw, shown):
    assert printable(raw) == shown


def test_printable_truncates_with_an_ellipsis_and_never_cuts_an_escape():
    assert printable("Phường Thử Nghiệm", 6) == "Phườn…"
    assert printable("abc", 3) == "abc" and printable("abcd", 3) == "ab…"
    assert printable("ab\x1bcd", 6) == "ab…"  # "\x1b" is 4 characters: not cut in half
    assert printable("abc", 1) == "…" and printable("abc", 0) == ""
    assert len(printable("\u202e" * 100, 20)) <= 20


"""The wire contract: what a valid message is, and a named reason for every invalid one."""
import json
import math
from datetime import timedelta

import pytest

from linewatch import wire


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

"""Hostile input through a real broker: thousands of bad payloads are rejected with counted
reasons, the collector does not crash, and valid traffic in between is still recorded."""
import json
import random
from datetime import timedelta

import paho.mqtt.client as mqtt

from linewatch import wire
from linewatch.collector.record import EventFilter

from conftest import wait_for


def valid(seq: int) -> wire.Message:
    return wire.build_message(kind="latency", agent_id="ag-21583", province="52", site="21583", line="fiber",
                              seq=seq, stream="feedc0de", measured_at=wire.utc_now() - timedelta(seconds=5),
                              data={"method": "icmp-raw", "target": "10.0.0.1", "sent": 20, "received": 20,
                                    "loss_pct": 0.0, "rtt_median_ms": 12.0})


def hostile(i: int, rnd: random.Random) -> tuple[str, bytes, str]:
    """One bad message and the reason the collector must give for it."""
    m = valid(10_000 + i)
    d = m.to_dict()
    far_future = wire.format_time(wire.utc_now() + timedelta(days=3650))
    cases = [
        (lambda: rnd.randbytes(rnd.randint(0, 300)), "bad_json"),
        (lambda: b"{" * 200, "bad_json"),
        (lambda: b"\xff" * 50, "bad_json"),
        (lambda: json.dumps([d]).encode(), "bad_json"),
        (lambda: m.to_json().replace(b'"loss_pct":0.0', b'"loss_pct":NaN'), "bad_json"),
        (lambda: m.to_json().replace(b'"rtt_median_ms":12.0', b'"rtt_median_ms":-Infinity'), "bad_json"),
        (lambda: b" " * (wire.MAX_PAYLOAD_BYTES + 1), "too_large"),
        (lambda: json.dumps({**d, "data": {**d["data"], "loss_pct": -5}}).encode(), "out_of_range"),
        (lambda: json.dumps({**d, "data": {**d["data"], "rtt_median_ms": 1e300}}).encode(), "out_of_range"),
        (lambda: json.dumps({**d, "data": {**d["data"], "sent": "20"}}).encode(), "bad_type"),
        (lambda: json.dumps({**d, "seq": -1}).encode(), "bad_field"),
        (lambda: json.dumps({**d, "seq": 2**70}).encode(), "bad_field"),
        (lambda: json.dumps({**d, "measured_at": far_future}).encode(), "bad_time"),
        (lambda: json.dumps({**d, "schema": "1"}).encode(), "bad_schema"),
        (lambda: json.dumps({**d, "site": "21584"}).encode(), "topic_mismatch"),
        (lambda: json.dumps({**d, "data": {**d["data"], "x" * 1000: 1}}).encode(), "unknown_field"),
    ]
    make, reason = cases[i % len(cases)]
    return m.topic, make(), reason


def test_thousands_of_hostile_payloads_are_counted_by_reason_and_valid_traffic_still_lands(mosquitto, collector):
    rnd = random.Random(1234)
    expected: dict[str, int] = {}
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hostile")
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", mosquitto.port)
    c.loop_start()
    infos = []
    n_bad, n_good = 3200, 100
    for i in range(n_bad):
        topic, payload, reason = hostile(i, rnd)
        expected[reason] = expected.get(reason, 0) + 1
        infos.append(c.publish(topic, payload, qos=1))
        if i % 32 == 0:
            g = valid(i // 32 + 1)
            infos.append(c.publish(g.topic, g.to_json(), qos=1))
    for info in infos:
        info.wait_for_publish(30)
    c.disconnect()
    c.loop_stop()
    store = collector.ingestor.record
    wait_for(lambda: collector.stats["rejected"] + collector.stats["stored"] >= n_bad + n_good, 60,
             "every message to be judged")
    counters = store.counters()
    got = {k.removeprefix("rejected."): v for k, v in counters.items() if k.startswith("rejected.")}
    assert got == expected
    assert sum(got.values()) == n_bad
    assert sorted(r.seq for r in store.events(EventFilter(messages=True))) == list(range(1, n_good + 1))
    assert collector._writer.is_alive() and not collector.died.is_set()

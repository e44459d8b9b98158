"""Hostile and random input at the incident boundaries: commands as an agent receives them,
and any sequence of measurements (out of order, flapping, silent agents) fed to the rules."""
from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from linewatch import wire
from linewatch.wire_commands import COMMAND_ID_RE
from linewatch.collector.incidents.rules import Policy

from incidentlab import Province

N = int(os.environ.get("LW_FUZZ_EXAMPLES", "60"))
TOPIC = wire.command_topic("52", "21583", "ag-21583")
GOOD = wire.build_command(agent_id="ag-21583", province="52", site="21583", line="fiber", probe="latency",
                          ttl_s=60).to_dict()

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                           max_leaves=8)


@st.composite
def hostile_commands(draw) -> bytes:
    how = draw(st.sampled_from(["field", "field", "drop", "extra", "bytes", "any"]))
    d = dict(GOOD)
    if how == "field":
        d[draw(st.sampled_from(sorted(d)))] = draw(json_values)
    elif how == "drop":
        d.pop(draw(st.sampled_from(sorted(d))))
    elif how == "extra":
        d[draw(st.text(max_size=10))] = draw(json_values)
    elif how == "bytes":
        raw = bytearray(json.dumps(d).encode())
        for _ in range(draw(st.integers(1, 4))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        return bytes(raw)
    else:
        return draw(st.binary(max_size=300))
    return json.dumps(d, ensure_ascii=draw(st.booleans())).encode()


@settings(max_examples=N * 5, deadline=None)
@given(hostile_commands(), st.sampled_from([TOPIC, wire.command_topic("52", "21583", "ag-other"),
                                            wire.line_topic("52", "21583", "fiber", "latency")]))
def test_a_command_is_either_refused_as_malformed_or_a_well_formed_command_for_this_topic(payload, topic):
    try:
        cmd = wire.parse_command(topic, payload)
    except wire.MalformedMessage as e:
        assert e.reason in wire.REASONS
        return
    assert cmd.topic == topic and COMMAND_ID_RE.match(cmd.id)
    assert cmd.issued_at < cmd.expires_at <= cmd.issued_at + wire.MAX_COMMAND_TTL
    assert wire.ID_RE.match(cmd.line) and (cmd.probe is None or wire.ID_RE.match(cmd.probe))


step = st.one_of(
    st.tuples(st.just("reach"), st.sampled_from(["up", "down", "gw"]), st.floats(-120, 5)),
    st.tuples(st.just("latency"), st.floats(0, 500), st.floats(0, 100)),
    st.tuples(st.just("speed"), st.floats(0, 200), st.floats(0, 100)),
    st.tuples(st.just("http"), st.booleans(), st.sampled_from(["http_error", "unreachable", "line_unbound"])),
    st.tuples(st.just("silent"), st.just(0), st.just(0)),
    st.tuples(st.just("wait"), st.floats(0, 900), st.just(0)),
    st.tuples(st.just("late"), st.floats(30, 3000), st.just(0)),
)


@settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(step, min_size=1, max_size=40), st.sampled_from(["21583", "21584"]))
def test_any_sequence_of_measurements_keeps_one_live_incident_per_problem_and_consistent_times(steps, site):
    with tempfile.TemporaryDirectory() as d:
        prov = Province(Path(d), policy=Policy(resolve_hold_s=60, refine_wait_s=30, group_wait_s=0))
        try:
            for what, a, b in steps:
                kw = {"site": site}
                if what == "reach":
                    prov.reach("up" if a == "up" else "down", since=prov.t + b, gateway_ok=a != "gw", **kw)
                elif what == "latency":
                    prov.latency(rtt=a, loss=round(b, 1), **kw)
                elif what == "speed":
                    prov.speed(a, b, **kw)
                elif what == "http":
                    prov.send("http", {"url": "https://dichvucong.gov.vn/"}, ok=a, error_code=None if a else b, **kw)
                elif what == "silent":
                    prov.advance(200)
                    prov.record.mark_silent(120, now=prov.t)
                elif what == "wait":
                    prov.advance(a)
                else:  # a measurement from the backlog, taken a while ago
                    prov.reach("down", at=prov.t - a, since=prov.t - a - 3, **kw)
                prov.advance(1)
                prov.run()
            prov.advance(10_000)
            prov.run()
            incs = prov.incidents()
            for k in sorted({i.kind for i in incs}) or ["none"]:
                event(f"incident kind: {k}")  # --hypothesis-show-statistics: what the runs reached
            live = Counter(i.key for i in incs if i.state != "closed")
            assert all(n == 1 for n in live.values()), live
            for i in incs:
                assert i.kind in ("line_down", "lan_fault", "slow_line", "high_latency", "packet_loss",
                                  "service_unreachable", "site_unreachable", "availability")
                if i.state == "closed":
                    assert i.closed_at >= i.detected_at and i.resolved_at is not None
                    assert i.resolved_at >= i.opened_at
            notices = prov.notices()
            assert len({n.key for n in notices}) == len(notices)
            assert all(n.incident_id in {i.id for i in incs} for n in notices if n.incident_id)
        finally:
            prov.record.close()

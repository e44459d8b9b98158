"""Each probe's result builder, driven by hypothesis with what hostile or broken servers,
resolvers and clocks can produce: what comes out always passes the wire contract (the
agent's own check, wire.build_message), or is an exception the runner counts as a crash."""
from __future__ import annotations

import json
import math
import struct
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings, strategies as st

from linewatch import wire
from linewatch.agent.errors import IperfError
from linewatch.agent.probes import REGISTRY, LineBinding, Result
from linewatch.agent.probes import dns, http as httpprobe, latency
from linewatch.agent.probes.bandwidth import iperf3, rate
from linewatch.agent.probes.reach import Check, ReachConfig
from linewatch.agent.reach import ReachMonitor

LINE = LineBinding("fiber", source_address="192.0.2.10")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
text = st.text(max_size=300)
times_ms = st.floats(allow_nan=True, allow_infinity=True) | st.floats(-1e3, 1e7)


def on_the_wire(r: Result) -> wire.Message:
    """What Agent.record does with a result (seq and stream aside)."""
    return wire.build_message(kind=r.kind, agent_id="ag-21583", province="52", site="21583", line=r.line, seq=1,
                              stream="0123456789abcdef", measured_at=r.measured_at, data=r.data, ok=r.ok,
                              error_code=r.error_code, error=r.error)


# ----------------------------------------------------------------------------- latency
@FUZZ
@given(sent=st.integers(0, 1000), rtts=st.lists(times_ms.filter(lambda x: not math.isnan(x)), max_size=60),
       timeout_s=st.floats(0.1, 30), err=text, method=st.sampled_from(["icmp-raw", "icmp-dgram", "tcp-connect"]))
def test_a_latency_burst_with_any_round_trips_is_a_valid_result(sent, rtts, timeout_s, err, method):
    base = {"target": "dichvucong.gov.vn:443", "source": LINE.describe()}
    r = latency.burst_result(LINE.id, base, method, sent, rtts, timeout_s, err, "203.0.113.5")
    msg = on_the_wire(r)
    assert msg.data["received"] <= msg.data["sent"]
    assert all(0 <= msg.data.get(k, 0) <= timeout_s * 1000 for k in ("rtt_min_ms", "rtt_max_ms", "rtt_p95_ms"))
    assert r.ok == bool(msg.data["received"])


# ----------------------------------------------------------------------------- DNS
@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_from_a_resolver_decode_to_a_reply_or_a_clear_error(raw):
    try:
        reply = dns.decode_reply(raw)
    except ValueError as e:
        assert str(e)
        return
    base = {"resolver": "10.52.0.53", "name": "dichvucong.gov.vn", "qtype": "A", "source": LINE.describe()}
    on_the_wire(dns.answer_result(LINE.id, base, reply, 12.5, 1))


@st.composite
def replies(draw) -> bytes:
    """Well-formed headers with odd contents: any rcode, counts, records of any type and size."""
    rcode = draw(st.integers(0, 15))
    flags = 0x8000 | rcode | draw(st.sampled_from([0, 0x0200, 0x0400]))
    question = b"\x0adichvucong\x03gov\x02vn\x00" + struct.pack("!HH", 1, 1)
    records = draw(st.lists(st.tuples(st.sampled_from([1, 5, 28, 16, 255]), st.binary(max_size=40)), max_size=60))
    body = b"".join(b"\xc0\x0c" + struct.pack("!HHIH", t, 1, 60, len(d)) + d for t, d in records)
    return struct.pack("!HHHHHH", 7, flags, 1, len(records), 0, 0) + question + body


@FUZZ
@given(replies(), st.floats(-1e6, 1e9), st.integers(1, 10))
def test_a_resolver_answering_any_rcode_and_records_gives_a_valid_result(raw, elapsed_ms, attempt):
    reply = dns.decode_reply(raw)
    base = {"resolver": "10.52.0.53", "name": "dichvucong.gov.vn", "qtype": "A", "source": LINE.describe()}
    r = dns.answer_result(LINE.id, base, reply, elapsed_ms, attempt)
    on_the_wire(r)
    assert r.ok == (reply.rcode == "NOERROR")


# ----------------------------------------------------------------------------- HTTP
@FUZZ
@given(status=st.integers(-10, 10**6), reason=text,
       timings=st.dictionaries(st.sampled_from(["dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "total_ms"]),
                               st.floats(-1e3, 1e9), max_size=5),
       nbytes=st.integers(0, 10**6))
def test_an_http_server_answering_any_status_reason_and_timing_gives_a_valid_result(status, reason, timings, nbytes):
    data = {"url": "https://dichvucong.gov.vn/", "source": LINE.describe(), **timings, "bytes": nbytes,
            "status_code": status}
    r = httpprobe.judge(LINE.id, data["url"], data, status, reason)
    on_the_wire(r)
    assert r.ok == (100 <= status < 400 and all(0 <= v <= wire.SCHEMAS["http"][k].hi for k, v in timings.items()))
    if not 100 <= status <= 599:
        assert r.error_code == "bad_answer" and "status_code" not in r.data


# ----------------------------------------------------------------------------- reach
class ScriptedProber:
    """Answers as the hypothesis script says: (answered, rtt ms, error text)."""

    method = "tcp-connect"
    shown_target = "dichvucong.gov.vn:443"

    def __init__(self, script):
        self.script = list(script)

    def check(self) -> Check:
        answered, rtt, err = self.script.pop(0) if self.script else (True, 5.0, "")
        return Check(answered, self.method, rtt if answered else None, "" if answered else err)

    def check_gateway(self, gw: str) -> bool:
        return False

    def forget_address(self) -> None:
        pass


@FUZZ
@given(script=st.lists(st.tuples(st.booleans(), st.floats(0, 60_000), text), min_size=1, max_size=40),
       wall_jumps=st.lists(st.integers(-3 * 86400, 3 * 86400), min_size=40, max_size=40),
       mono_steps=st.lists(st.floats(0, 4000), min_size=40, max_size=40))
def test_reach_messages_stay_valid_when_the_wall_clock_jumps_back_and_forth(script, wall_jumps, mono_steps):
    cfg = ReachConfig(target="dichvucong.gov.vn:443", report_s=60.0, gateway="none", method="tcp")
    got: list[Result] = []
    state = {"mono": 1000.0, "wall": datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc), "i": 0}
    mon = ReachMonitor(LINE, cfg, got.append, prober=ScriptedProber(script), gateway=lambda: "192.168.1.1",
                       clock=lambda: state["mono"], wall=lambda: state["wall"])
    for i in range(len(script)):
        for r in mon.step():
            got.append(r)
        state["mono"] += mono_steps[i]
        state["wall"] += timedelta(seconds=mono_steps[i] + wall_jumps[i])
    for r in got:
        msg = on_the_wire(r)
        assert msg.data.get("down_s", 0) >= 0


# ----------------------------------------------------------------------------- bandwidth
@FUZZ
@given(st.lists(st.tuples(st.floats(-5, 50, allow_nan=False), st.integers(-10**6, 10**12)), max_size=120),
       st.floats(0, 10))
def test_the_rate_of_any_sample_series_is_none_or_a_finite_non_negative_figure(samples, warmup_s):
    samples = [(0.0, 0)] + samples
    r = rate.steady_rate(samples, warmup_s)
    assert r is None or (math.isfinite(r[0]) and r[0] >= 0 and r[1] > 0)
    rate.is_stable(samples, warmup_s)  # never raises


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids,
                                                                                      max_size=4), max_leaves=20)


@FUZZ
@given(st.one_of(
    json_values.map(json.dumps),
    st.fixed_dictionaries({"start": json_values, "end": st.fixed_dictionaries(
        {"sum_received": st.fixed_dictionaries({"bits_per_second": json_values | st.floats(), "seconds": json_values}),
         "sum_sent": json_values}), "intervals": json_values}).map(lambda d: json.dumps(d, allow_nan=True)),
    st.text(max_size=200)))
def test_any_output_of_iperf3_is_summarised_into_valid_figures_or_refused_with_a_reason(out):
    try:
        run = iperf3.parse_iperf3(out)
    except IperfError as e:
        assert str(e)
        return
    assert math.isfinite(run.mbps) and run.mbps >= 0 and run.bytes >= 0


def test_every_probe_can_say_it_failed_in_a_valid_message():
    """The fall-back the runner uses when a result breaks the contract."""
    from linewatch.config import Section

    tables = {"latency": {"targets": ["1.1.1.1"]}, "dns": {"resolvers": ["10.52.0.53"], "names": ["a.vn"]},
              "http": {"urls": ["https://dichvucong.gov.vn/"]}, "reach": {"target": "1.1.1.1"},
              "bandwidth": {"method": "linewatch", "target": "http://10.52.0.5:8090"}}
    assert set(tables) == set(REGISTRY)
    for name, table in tables.items():
        cfg = REGISTRY[name].parse_config(Section(table, name))
        on_the_wire(REGISTRY[name].failed(LINE, cfg, wire.Code.PROBE_CRASHED, "x" * 5000))

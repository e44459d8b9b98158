"""Reach (fast outage detection): the up/down state machine, the messages it makes, its config."""
import tomllib
from datetime import datetime, timedelta, timezone

import pytest

from linewatch import wire
from linewatch.agent import config as agent_config
from linewatch.agent.probes import REGISTRY, LineBinding
from linewatch.agent.probes.reach import Check, ReachConfig
from linewatch.agent.reach import ReachMonitor, ReachState
from linewatch.config import ConfigError

T0 = datetime(2026, 11, 23, 2, 0, 0, tzinfo=timezone.utc)


def feed(st: ReachState, outcomes: str, start: int = 0) -> list[tuple[int, str]]:
    """'1' answered, '0' lost, one per second; returns (second, new state) of each change."""
    changes = []
    for i, c in enumerate(outcomes, start):
        if st.observe(c == "1", float(i), T0 + timedelta(seconds=i), rtt_ms=5.0 if c == "1" else None):
            changes.append((i, st.state))
    return changes


def test_the_first_state_is_established_after_up_after_answers():
    st = ReachState(down_after=3, up_after=2)
    assert feed(st, "1") == [] and st.state is None
    assert feed(st, "1", 1) == [(1, "up")]
    assert st.since_wall == T0 and st.down_s is None


def test_a_line_that_starts_down_is_reported_down_after_down_after_failures():
    st = ReachState(3, 2)
    assert feed(st, "000") == [(2, "down")]
    assert st.since_wall == T0  # the first failure


def test_down_after_consecutive_failures_and_up_after_consecutive_answers():
    st = ReachState(3, 2)
    #          0123456789012
    out = feed(st, "11" "00100" "0" "1011")
    # up at 1; 2,3 lost then 4 answered: no change; 5,6,7 lost: down at 7 (since 5);
    # 8 answered, 9 lost, 10,11 answered: up at 11 (since 10)
    assert out == [(1, "up"), (7, "down"), (11, "up")]
    assert st.since_wall == T0 + timedelta(seconds=10)
    assert st.down_s == 5.0  # first failure (5) -> first answer of the recovery (10)


def test_sent_and_lost_count_since_the_last_message():
    st = ReachState(3, 2)
    feed(st, "1101000")
    assert st.take_counts() == (7, 4)
    assert st.take_counts() == (0, 0)
    feed(st, "01", 7)
    assert (st.sent, st.lost) == (2, 1)


def test_one_and_one_never_settles_a_flapping_line_into_a_state():
    st = ReachState(3, 3)
    assert feed(st, "1010101010") == [] and st.state is None


class FakeProber:
    """Scripted answers; records gateway probes."""

    method = "icmp-raw"
    shown_target = "198.51.100.7"

    def __init__(self, outcomes: str, gateway_outcomes: str = ""):
        self.outcomes = list(outcomes)
        self.gw = list(gateway_outcomes)
        self.gateway_probes = 0

    def check(self):
        ok = self.outcomes.pop(0) == "1"
        return Check(ok, self.method, rtt_ms=7.5 if ok else None, error="" if ok else "no reply within 1 s")

    def check_gateway(self, gw):
        self.gateway_probes += 1
        return self.gw.pop(0) == "1" if self.gw else True

    def forget_address(self):
        pass


def monitor(outcomes: str, gateway: str | None = "192.168.1.1", gateway_outcomes: str = "", report_s=300.0):
    clock = {"t": 0.0}
    cfg = ReachConfig(target="198.51.100.7", interval_s=2.0, down_after=3, up_after=2, report_s=report_s)
    line = LineBinding("fiber", source_address="192.168.1.10")
    prober = FakeProber(outcomes, gateway_outcomes)
    m = ReachMonitor(line, cfg, record=lambda r: None, prober=prober, gateway=lambda: gateway,
                     clock=lambda: clock["t"], wall=lambda: T0 + timedelta(seconds=clock["t"]))
    msgs = []

    def run(n):
        for _ in range(n):
            for r in m.step():
                msgs.append((clock["t"], r))
            clock["t"] += 2.0
    return m, prober, msgs, run, clock


def as_message(r, seq=1):
    """Every result must pass the wire contract, as Agent.record() checks it."""
    return wire.build_message(kind=r.kind, agent_id="ag-1", province="52", site="21583", line=r.line, seq=seq,
                              measured_at=r.measured_at, data=r.data, ok=r.ok, error_code=r.error_code,
                              error=r.error)


def test_monitor_reports_up_then_line_down_then_up_with_down_s():
    m, prober, msgs, run, _ = monitor("11" "000" "11", gateway_outcomes="111")
    run(7)
    assert [(t, r.data["state"], r.data["change"]) for t, r in msgs] == [(2.0, "up", True), (8.0, "down", True),
                                                                         (12.0, "up", True)]
    up, down, back = (r for _, r in msgs)
    for r in (up, down, back):
        as_message(r)
    assert up.ok and up.data["since"] == wire.format_time(T0) and up.data["sent"] == 2 and up.data["lost"] == 0
    assert not down.ok and down.error_code == "line_down"
    assert "198.51.100.7" in down.error and "fiber" in down.error and "3 times in a row" in down.error
    assert down.data["since"] == wire.format_time(T0 + timedelta(seconds=4))
    assert down.data["gateway"] == "192.168.1.1" and down.data["gateway_ok"] is True
    assert (down.data["sent"], down.data["lost"]) == (3, 3)
    assert down.data["rtt_ms"] == 7.5 and down.data["source"] == "source 192.168.1.10"
    assert back.ok and back.data["down_s"] == 6.0 and (back.data["sent"], back.data["lost"]) == (2, 0)
    assert prober.gateway_probes == 3  # one per failing round, none while the target answers


def test_a_silent_gateway_makes_it_gateway_unreachable():
    _, _, msgs, run, _ = monitor("11" "000", gateway_outcomes="000")
    run(5)
    down = msgs[-1][1]
    as_message(down)
    assert down.error_code == "gateway_unreachable" and down.data["gateway_ok"] is False
    assert "gateway 192.168.1.1" in down.error


def test_without_a_gateway_it_is_line_down_and_no_gateway_field():
    _, prober, msgs, run, _ = monitor("000", gateway=None)
    run(3)
    down = msgs[-1][1]
    as_message(down)
    assert down.error_code == "line_down" and "gateway" not in down.data and "gateway_ok" not in down.data
    assert prober.gateway_probes == 0


def test_a_summary_every_report_s_counts_since_the_previous_message():
    _, _, msgs, run, _ = monitor("1" * 20 + "0" + "1" * 9, report_s=20.0)
    run(30)
    assert [(t, r.data["change"]) for t, r in msgs] == [(2.0, True), (22.0, False), (42.0, False)]
    s1, s2 = msgs[1][1], msgs[2][1]
    assert (s1.data["sent"], s1.data["lost"]) == (10, 0)
    assert (s2.data["sent"], s2.data["lost"]) == (10, 1)  # the lone loss at 40 s is counted, no change
    assert s1.ok and s1.data["since"] == wire.format_time(T0)
    as_message(s2)


def test_a_crash_inside_the_monitor_is_counted_and_the_thread_goes_on():
    import threading
    crashes = []
    recorded = []
    cfg = ReachConfig(target="198.51.100.7", interval_s=0.5, report_s=10)

    class Flaky(FakeProber):
        n = 0

        def check(self):
            Flaky.n += 1
            if Flaky.n == 1:
                raise RuntimeError("boom")
            return Check(True, "icmp-raw", rtt_ms=1.0)

    m = ReachMonitor(LineBinding("fiber"), cfg, recorded.append, lambda name, e: crashes.append((name, str(e))),
                     prober=Flaky(""), gateway=lambda: None)
    stop = threading.Event()
    m.retry_after_crash_s = 0.2
    t = threading.Thread(target=m.run, args=(stop,), daemon=True)
    t.start()
    try:
        deadline = __import__("time").monotonic() + 15
        while not recorded and __import__("time").monotonic() < deadline:
            __import__("time").sleep(0.05)
    finally:
        stop.set()
        t.join(5)
    assert crashes == [("fiber/reach", "boom")]
    assert recorded and recorded[0].data["state"] == "up"


# ------------------------------------------------------------------ config
AGENT = """
[agent]
id = "ag-21583"
province = "52"
site = "21583"
[[line]]
id = "fiber"
[line.latency]
targets = ["10.0.0.1", "10.0.0.2"]
[line.reach]
"""


def parse(text: str):
    return agent_config.parse(tomllib.loads(text))


def test_reach_defaults_and_the_first_latency_target():
    r = parse(AGENT).lines[0].probes["reach"]
    assert r == ReachConfig(target="10.0.0.1", interval_s=2.0, timeout_s=1.0, down_after=3, up_after=2,
                            report_s=300.0, gateway="auto", method="auto", port=443)
    assert REGISTRY["reach"].continuous and not REGISTRY["latency"].continuous


@pytest.mark.parametrize("extra, message", [
    ("interval_s = 0.2\n", "line 'fiber' [reach]: interval_s must be >= 0.5, got 0.2"),
    ("down_after = 0\n", "line 'fiber' [reach]: down_after must be >= 1, got 0"),
    ("up_after = 1.5\n", "line 'fiber' [reach]: up_after must be a whole number, got 1.5"),
    ("timeout_s = 0\n", "line 'fiber' [reach]: timeout_s must be > 0, got 0"),
    ("report_s = 1\n", "line 'fiber' [reach]: report_s must be >= 10, got 1"),
    ('gateway = "router"\n', "line 'fiber' [reach]: gateway 'router' must be \"auto\", \"none\" or an IPv4 address"),
    ('method = "udp"\n', "line 'fiber' [reach]: method = 'udp' must be one of: auto, icmp, tcp"),
    ("port = 70000\n", "line 'fiber' [reach]: port must be <= 65535, got 70000"),
    ('target = "tcp:host"\n', "line 'fiber' [reach]: target 'tcp:host' must look like tcp:HOST:PORT"),
    ("intervl_s = 2\n", "line 'fiber' [reach]: unknown setting(s) intervl_s (misspelt?)"),
])
def test_reach_config_mistakes_are_named_exactly(extra, message):
    with pytest.raises(ConfigError) as e:
        parse(AGENT + extra)
    assert message in str(e.value)


def test_reach_without_target_nor_latency_says_what_to_add():
    text = AGENT.replace('[line.latency]\ntargets = ["10.0.0.1", "10.0.0.2"]\n', "")
    with pytest.raises(ConfigError) as e:
        parse(text)
    assert "line 'fiber' [reach]: target is required (or add [line.latency] targets: the first one is used)" \
        in str(e.value)
    r = parse(text + 'target = "tcp:portal.example.gov.vn:443"\ngateway = "192.168.1.1"\n').lines[0].probes["reach"]
    assert r.target == "tcp:portal.example.gov.vn:443" and r.gateway == "192.168.1.1"


def test_failed_results_of_every_probe_pass_the_contract():
    """What an expired command records, per kind, must still be a valid message."""
    from linewatch.agent.config import load
    cfg = load(agent_config.EXAMPLE)
    seen = set()
    for ln in cfg.lines:
        for name, pcfg in ln.probes.items():
            r = REGISTRY[name].failed(ln.binding, pcfg, "command_expired", "expired")
            r.data["command_id"] = "0123456789abcdef"
            as_message(r)
            seen.add(name)
    assert seen == set(REGISTRY)

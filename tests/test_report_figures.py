"""The report's figures as pure functions: availability from reach coverage and state changes,
offline time, sequence gaps, the LAN counts, the speed/latency/availability verdicts."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from linewatch.collector import registry as reg
from linewatch.collector.record.types import (BandwidthTest, HostInventory, LanHost, LanState, LanSweep, SeqHour,
                                              StateChange)
from linewatch.collector.report import figures as fg
from linewatch.collector.report.config import ReportConfig, Schedule
from reportsample import period

P = period("2026-10")
H0 = int(P.start)  # 2026-09-30 17:00 UTC: an hour boundary (UTC+7)


def change(at: float, state: str, subject: str = "line", agent: str = "ag-1", pos: int = 0) -> StateChange:
    return StateChange(pos or int(at), subject, "21583", "fiber" if subject == "line" else "", agent, at, state, None)


def coverage(pairs) -> dict[int, float]:
    out: dict[int, float] = {}
    for h, c in pairs:
        out[h] = out.get(h, 0.0) + c
    return out


def test_availability_counts_the_down_time_inside_observed_hours_only():
    """A 2-hour outage inside a fully observed month costs 2 hours; an unobserved hour counts in neither."""
    hours = range(H0, int(P.end), 3600)
    reach = coverage((h, 3600) for h in hours if h != H0 + 5 * 3600)
    changes = [change(H0 + 10 * 3600, "down"), change(H0 + 12 * 3600, "up"),
               change(H0 + 4 * 3600 + 1800, "down"), change(H0 + 6 * 3600, "up")]  # spans the unobserved hour
    observed, down, lan = fg.availability(reach, changes, P)
    assert observed == P.seconds - 3600
    assert down == 2 * 3600 + 1800  # 10-12h and 4:30-5:00; 5-6h was not observed, 6h on the line is up
    assert lan == 0


def test_a_gateway_outage_is_the_offices_not_the_operators():
    """Reach down because the office's own gateway died counts as LAN time, not line downtime."""
    reach = coverage((h, 3600) for h in range(H0, H0 + 24 * 3600, 3600))
    observed, down, lan = fg.availability(reach, [change(H0 + 3600, "lan_down"), change(H0 + 7200, "up")], P)
    assert (observed, down, lan) == (24 * 3600, 0, 3600)


def test_a_line_down_before_the_month_began_is_down_from_its_first_second():
    """The last change before the month says the state the month began in."""
    reach = coverage((h, 3600) for h in range(H0, H0 + 3 * 3600, 3600))
    _obs, down, _lan = fg.availability(reach, [change(H0 - 86400, "down"), change(H0 + 5400, "up")], P)
    assert down == 5400


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-86400, 32 * 86400), st.sampled_from(["up", "down", "lan_down"])),
                max_size=40),
       st.lists(st.tuples(st.integers(0, 743), st.floats(0, 10_000)), max_size=100))
def test_availability_is_always_a_share_of_what_was_observed(chs, cov):
    """Whatever the changes and coverage, down time never exceeds observed time."""
    reach = coverage((H0 + h * 3600, c) for h, c in cov)
    observed, down, lan = fg.availability(reach, [change(H0 + t, s, pos=i + 1) for i, (t, s) in enumerate(chs)], P)
    assert 0 <= down <= observed <= P.seconds and 0 <= lan <= observed


def test_offline_time_is_when_every_agent_of_the_site_was_unheard():
    """Two agents: only the overlap of their offline spells is the site's offline time."""
    cs = [change(H0 + 3600, "offline", "agent", "a"), change(H0 + 4 * 3600, "online", "agent", "a"),
          change(H0 + 2 * 3600, "silent", "agent", "b"), change(H0 + 6 * 3600, "online", "agent", "b")]
    assert fg.offline_seconds(cs, P) == 2 * 3600
    assert fg.offline_seconds(cs[:2], P) == 3 * 3600
    assert fg.offline_seconds([], P) == 0


def test_sequence_gaps_in_the_month_are_counted_and_resets_are_not():
    """Missing numbers inside a stream's span are lost messages; a huge jump is a reset."""
    seq = [SeqHour("a", "s1", H0, "21583", 10, 1, 12), SeqHour("a", "s1", H0 + 3600, "21583", 5, 13, 17),
           SeqHour("a", "s2", H0, "21583", 2, 1, 5_000_000), SeqHour("a", "s1", H0 - 3600, "21583", 99, 0, 0)]
    assert fg.seq_figures(seq, P) == (17, 2)


def host(mac: str, cls: str, seen: float) -> LanHost:
    return LanHost(mac, "192.168.1.2", None, None, cls, "ag-1", seen, seen + 3600, None)


def test_the_agents_own_pc_is_counted_and_a_raspberry_pi_is_not():
    """Computers = those seen on the LAN in the month + the agent's own PC (not a Pi)."""
    sweep = [LanSweep("ag-1", "21583", H0 + 100, "arp-scapy", 1, 3, [], None, None, None)]
    hosts = [host("a", "computer", H0 + 10), host("b", "computer", H0 - 40 * 86400), host("c", "printer", H0),
             host("d", "unknown", H0), host("e", "network", H0)]
    pc = HostInventory("ag-1", "21583", H0, {"machine": "AMD64"})
    pi = HostInventory("ag-2", "21583", H0, {"machine": "aarch64"})
    assert fg.lan_counts(LanState(hosts, 0, sweep, [pc, pi]), P) == (2, 1, 1, True)
    only_gateway = LanState([host("e", "network", H0)], 0, sweep, [pi])
    assert fg.lan_counts(only_gateway, P) == (0, 0, 0, False)
    assert fg.lan_counts(LanState([], 0, [], []), P) == (None, None, None, None)


def site(**kw) -> reg.Site:
    th = reg.Thresholds()
    line = reg.Line("fiber", "VNPT", "internet", 100, 50, 330000, reg.Contact(name="NOC"), th)
    return reg.Site("21583", "52", "UBND xã A", "commune", None, reg.Staff(10, 2, 1), (line,), ("ag-1",), **kw)


def test(at: float, down: float | None, up: float | None, ok: bool = True) -> BandwidthTest:
    return BandwidthTest(int(at), "21583", "fiber", "ag-1", at, "linewatch", "s", ok, None if ok else "busy",
                         down, up)


test.__test__ = False  # a helper, not a test


def figures(tests, **kw):
    s = site(**kw)
    cfg = ReportConfig(schedule=Schedule(bandwidth_per_day=1), min_completeness_pct=50, min_tests=5)
    return fg.site_figures(fg.SiteInputs(s, [fg.LineInputs(s, s.lines[0], tests)]), P, cfg)[0]


def test_speed_is_the_average_of_the_tests_against_contracted():
    """QCVN 34:2022: the mean of the month's tests against 0.8 x contracted, per direction."""
    tests = [test(H0 + d * 86400 + 3600, 70 + d % 3, 45) for d in range(31)] + [test(H0 + 7200, None, None, False)]
    f = figures(tests)
    ln = f.lines[0]
    assert ln.down.tests == 31 and abs(ln.down.mean_mbps - sum(70 + d % 3 for d in range(31)) / 31) < 1e-9
    assert ln.down.tests_ok == 0 and ln.up.tests_ok == 31
    assert ln.speed_verdict == "fail"
    assert [s.code for s in f.shortfalls] == ["line_below_minimum"]
    assert f.shortfalls[0].detail["direction"] == "tải xuống"
    bw = next(c for c in ln.completeness if c.kind == "bandwidth")
    assert (bw.scheduled, bw.received, bw.failed) == (31, 32, 1)


def test_too_few_tests_give_no_speed_verdict():
    """Under half the scheduled tests: 'insufficient', not pass or fail, and no shortfall."""
    f = figures([test(H0 + d * 86400, 10, 5) for d in range(10)])
    assert f.lines[0].speed_verdict == "insufficient" and "speed" in f.lines[0].insufficient
    assert not any(s.code == "line_below_minimum" for s in f.shortfalls)


def test_a_silent_site_falls_short_for_having_no_measurements():
    """Nothing measured all month: 'no_measurements', every verdict 'none'."""
    f = figures([])
    assert [s.code for s in f.shortfalls] == ["no_measurements"]
    ln = f.lines[0]
    assert (ln.speed_verdict, ln.latency_verdict, ln.availability_verdict) == ("none", "none", "none")


def test_declared_devices_win_over_measured_and_decide_the_shortfall():
    """Declared laptops + desktops are the form's computers; fewer than staff is a shortfall."""
    f = figures([], devices=reg.Devices(laptops=2, desktops=8, scanners=1), lan=True)
    assert f.computers == 10 and f.staff_total == 13
    codes = [s.code for s in f.shortfalls]
    assert "computers_fewer_than_staff" in codes and "no_lan" not in codes
    assert f.lan is True and f.lan_source == "declared"

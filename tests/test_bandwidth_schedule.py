"""When a line's bandwidth is tested (office hours on working days, the night window, every
interval), how the month's data budget is spread, what a result says about its schedule, and
that the line's state file is kept honestly. Calendar logic on generated dates; no test waits
for a clock (the probe's due() is given the time)."""
from __future__ import annotations

import json
import logging
import os
import threading
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linewatch import statefile, wire
from linewatch.agent import config as agent_config
from linewatch.agent.probes import REGISTRY, LineBinding, Result
from linewatch.agent.probes import bandwidth as bw
from linewatch.agent.probes.bandwidth import budget, calendar
from linewatch.agent.probes.bandwidth.config import MB, VIETNAM, BandwidthConfig, night_plan, office_plan
from linewatch.collector.report.config import Schedule
from linewatch.config import ConfigError, Section

from conftest import free_port

LINE = LineBinding("fiber", source_address="127.0.0.9")  # 127/8 is all local: a "line" on loopback
W = calendar.Window.parse
OFFICE = office_plan()
SAT_MORNING = calendar.Plan("office", 4, calendar.parse_days(["mon-fri", "sat 07:30-11:30"],
                                                             (W("07:30-11:30"), W("13:30-17:00"))))

days = st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 12, 31))
seeds = st.text("0123456789abcdef", min_size=4, max_size=16)


@st.composite
def plans(draw) -> calendar.Plan:
    """Office plans with 1..12 tests on some working days, or night windows (maybe past midnight)."""
    per_day = draw(st.integers(1, 12))
    week = draw(st.lists(st.booleans(), min_size=7, max_size=7).filter(any))
    if draw(st.booleans()):
        hours = (W("07:30-11:30"), W("13:30-17:00")) if draw(st.booleans()) else (W("07:00-11:30"),)
        return calendar.Plan("office", per_day, tuple(hours if on else () for on in week))
    start = draw(st.integers(0, 23 * 60))
    length = draw(st.integers(per_day * 10, 12 * 60))
    text = f"{start // 60:02d}:{start % 60:02d}-{(start + length) // 60 % 24:02d}:{(start + length) % 60:02d}"
    return calendar.Plan("night", per_day, tuple((W(text),) if on else () for on in week))


def valid(r: Result) -> Result:
    wire.build_message(kind=r.kind, agent_id="ag-t", province="52", site="21583", line=r.line, seq=1,
                       measured_at=r.measured_at, data=r.data, ok=r.ok, error_code=r.error_code, error=r.error)
    return r


# ----------------------------------------------------------------------------- the calendar
@settings(max_examples=300, deadline=None)
@given(plan=plans(), day=days, seed=seeds)
def test_a_day_has_its_tests_per_day_inside_its_hours_spread_apart_and_the_same_on_every_call(plan, day, seed):
    slots = plan.slots(day, seed)
    periods = plan.periods(day)
    assert len(slots) == (plan.per_day if periods else 0), "tests_per_day on test days, none on other days"
    for s, end in slots:
        assert any(a <= s < b and end == b for a, b in periods), "inside the day's hours, with its period's end"
    span = sum((b - a for a, b in periods), timedelta(0))
    gaps = [b[0] - a[0] for a, b in zip(slots, slots[1:])]
    assert all(g >= 2 * calendar.MARGIN * span / plan.per_day - timedelta(seconds=1) for g in gaps), \
        "never two tests in the same few minutes"
    assert plan.slots(day, seed) == slots, "a restart finds the same slots"


@settings(max_examples=200, deadline=None)
@given(day=days, seed=seeds)
def test_the_default_office_plan_tests_4_times_between_07_30_and_17_00_on_working_days_only(day, seed):
    slots = [s for s, _ in OFFICE.slots(day, seed)]
    if day.weekday() >= 5:
        assert slots == []
        return
    assert len(slots) == 4
    for s in slots:
        t = s.time()
        assert (datetime.min.replace(hour=7, minute=30).time() <= t < datetime.min.replace(hour=11, minute=30).time()
                or datetime.min.replace(hour=13, minute=30).time() <= t < datetime.min.replace(hour=17).time()), \
            f"{s} is in office hours, not the lunch break"
    assert slots[0].time() < datetime.min.replace(hour=11, minute=30).time() < slots[-1].time(), \
        "the morning and the afternoon both tested"


def test_150_communes_spread_over_office_hours_instead_of_meeting_at_the_speed_server():
    day = date(2026, 3, 10)
    starts = [s for i in range(150) for s, _ in OFFICE.slots(day, f"{i:016x}")]
    per_minute: dict[datetime, int] = {}
    for s in starts:
        per_minute[s.replace(second=0, microsecond=0)] = per_minute.get(s.replace(second=0, microsecond=0), 0) + 1
    assert max(per_minute.values()) <= 6, "600 tests over 450 minutes: never a crowd in one minute"
    assert min(starts) >= datetime(2026, 3, 10, 7, 41), "nobody tests in the first minutes after the PCs boot"
    assert len({s.hour for s in starts}) == 9, "every office hour carries tests (07..10, 11, 13..16)"


def test_a_saturday_morning_one_stop_shop_desk_is_tested_on_saturday_mornings():
    sat, sun = date(2026, 3, 14), date(2026, 3, 15)
    assert [s.hour < 12 for s, _ in SAT_MORNING.slots(sat, "x")] == [True] * 4
    assert SAT_MORNING.slots(sun, "x") == []
    assert SAT_MORNING.week[0] == (W("07:30-11:30"), W("13:30-17:00")), "weekdays keep office_hours"


@settings(max_examples=150, deadline=None)
@given(plan=plans(), seed=seeds, start=days,
       outages=st.lists(st.tuples(st.integers(0, 3 * 24 * 60), st.integers(1, 30 * 60)), max_size=4),
       poll_s=st.integers(30, 900))
def test_every_slot_runs_once_or_is_counted_missed_and_a_boot_never_runs_a_burst(plan, seed, start, outages, poll_s):
    """The agent looks every poll_s; the PC is off during the outages. Each slot then runs at
    most once, within its hours; a slot passed while the PC was off is given up and counted
    (at most one catch-up per look); nothing is run twice and nothing vanishes uncounted."""
    t0 = datetime.combine(start, datetime.min.time())
    end = t0 + timedelta(days=3)
    off = [(t0 + timedelta(minutes=a), t0 + timedelta(minutes=a + n)) for a, n in outages]
    handled = t0 - timedelta(seconds=1)
    ran: list[datetime] = []
    missed = 0
    now = t0
    while now < end:
        if not any(a <= now < b for a, b in off):
            d = calendar.decide(plan, seed, now, handled)
            if d.run is not None:
                ran.append(d.run)
                end = next(e for s, e in plan.slots_between(seed, d.run, now + timedelta(seconds=1)) if s == d.run)
                assert d.run <= now < max(end, d.run + calendar.GRACE), "run late only while its hours last"
            missed += d.missed
            handled = d.handled or handled
        now += timedelta(seconds=poll_s)
    slots = [s for s, _ in plan.slots_between(seed, t0, handled + timedelta(microseconds=1))]
    assert len(ran) == len(set(ran)), "no slot runs twice"
    assert len(ran) + missed == len(slots), "every slot up to the last look ran or was counted as missed"
    if not off and timedelta(seconds=poll_s) <= plan.min_gap():
        assert missed == 0, "with the PC on, no slot is missed, not even one in the last minute before lunch"


def test_after_a_morning_with_the_computer_off_one_catch_up_runs_and_the_rest_are_counted():
    seed = "c0ffee"
    slots = [s for s, _ in OFFICE.slots(date(2026, 3, 10), seed)]
    yesterday = OFFICE.slots(date(2026, 3, 9), seed)[-1][0]
    morning = [s for s in slots if s.hour < 12]
    boot = datetime(2026, 3, 10, 11, 29)  # switched on a minute before the lunch break
    d = calendar.decide(OFFICE, seed, boot, yesterday)
    assert d.run == morning[-1] and d.missed == len(morning) - 1 and d.handled == morning[-1]
    after_lunch = calendar.decide(OFFICE, seed, datetime(2026, 3, 10, 13, 0), yesterday)
    assert after_lunch.run is None and after_lunch.missed == len(morning), \
        "a morning slot is not run after the morning is over"
    first = calendar.decide(OFFICE, seed, boot, None)
    assert first.run == morning[-1] and first.missed == 0, "a first start counts nothing as missed"
    back = calendar.decide(OFFICE, seed, boot, boot + timedelta(days=2))
    assert back.missed == 0 and back.run == morning[-1], "a clock that jumped back is a fresh start, not a mess"


# ----------------------------------------------------------------------------- the budget
@settings(max_examples=300, deadline=None)
@given(slots=st.integers(1, 130), cost=st.integers(1, 200), budget_tests=st.floats(0, 200))
def test_the_budget_is_spread_so_that_it_lasts_the_month(slots, cost, budget_tests):
    """A month of ``slots`` scheduled tests of ``cost`` MB each, with a budget of
    ``budget_tests`` such tests: every slot runs when it affords them all; otherwise the tests
    run spread over the month (never a long silent stretch), the budget is never overrun by
    more than one capped test, and most of it is used by the month's end."""
    cost_b = cost * MB
    remaining = int(budget_tests * cost_b)
    skipped, runs, longest_gap = 0, 0, 0
    for i in range(slots):
        if budget.spread(remaining, cost_b, slots - i, skipped):
            runs += remaining > 0  # else the result says budget_exhausted, moving nothing
            remaining -= min(cost_b, remaining)
            skipped = 0
        else:
            skipped += 1
            longest_gap = max(longest_gap, skipped)
    affordable = int(budget_tests)
    if affordable >= slots:
        assert runs == slots and longest_gap == 0
    else:
        assert affordable <= runs, "the budget it has is used"
        assert runs <= affordable + 1, "at most one last test capped at what is left"
        if affordable:
            assert longest_gap <= -(-slots // affordable), "skips are spread, not bunched"


def test_the_first_test_runs_to_learn_what_a_test_costs():
    assert budget.spread(10 * MB, None, 80, 0)
    assert budget.learn_cost(None, 100) == 100 and budget.learn_cost(100, 200) == 130


# ----------------------------------------------------------------------------- the config
def parse(**table) -> BandwidthConfig:
    return REGISTRY["bandwidth"].parse_config(Section({"method": "linewatch", "target": "http://10.52.0.5:8090",
                                                       **table}, "agent.toml line 'fiber' [bandwidth]"))


def test_by_default_a_line_is_tested_4_times_a_working_day_in_office_hours_vietnam_time():
    cfg = parse()
    assert cfg.schedule == "office" and cfg.plan == OFFICE and cfg.clock == VIETNAM
    assert cfg.plan.week[:5] == ((W("07:30-11:30"), W("13:30-17:00")),) * 5 and cfg.plan.week[5:] == ((), ())
    assert cfg.interval_s == 60 and cfg.monthly_budget_mb == 20000 and cfg.nic_busy_pct == 5


def test_a_config_written_for_the_night_window_keeps_meaning_once_a_night():
    old = parse(window="01:00-05:00")
    assert old.schedule == "night" and old.plan == night_plan("01:00-05:00") and old.plan.per_day == 1
    assert old.monthly_budget_mb == 5000, "and keeps the budget it had"
    assert parse(window="").schedule == "interval" and parse(window="").interval_s == 600
    assert parse(schedule="night").plan == night_plan(), "the night window's default is 01:00-05:00"
    assert parse(schedule="night", window="22:00-02:00", tests_per_day=2, days="mon-fri").plan == \
        calendar.Plan("night", 2, ((W("22:00-02:00"),),) * 5 + ((), ()))


def test_office_days_and_hours_are_configured_per_site_in_english_or_vietnamese_day_names():
    assert parse(days=["mon-fri", "sat 07:30-11:30"]).plan == SAT_MORNING
    assert parse(days="t2-t7").plan.week == parse(days="mon-sat").plan.week
    assert parse(days="mon,wed,fri").plan.week[1] == ()
    cfg = parse(office_hours=["07:00-11:30", "13:00-16:30"], tests_per_day=6, utc_offset="local")
    assert cfg.plan.week[0] == (W("07:00-11:30"), W("13:00-16:30")) and cfg.plan.per_day == 6 and cfg.clock is None
    assert parse(office_hours="7:30-11:30, 13:30-17:00").plan == OFFICE


@pytest.mark.parametrize("table, message", [
    ({"schedule": "daily"}, "schedule = 'daily' must be one of: office, night, interval"),
    ({"schedule": "office", "window": "01:00-05:00"},
     "window is the night schedule's time; with schedule = 'office' leave it out and set office_hours"),
    ({"window": "01:00-05:00", "office_hours": ["07:30-11:30"]}, "office_hours is for schedule = \"office\", not 'night'"),
    ({"schedule": "interval", "tests_per_day": 2},
     "tests_per_day is for schedule = \"office\" or \"night\", not 'interval'"),
    ({"days": "mon-fry"}, "days 'mon-fry': 'mon-fry' is not a day or a range of days (mon, tue, wed, thu, fri, sat, "
                          "sun or t2..t7, cn; e.g. \"mon-fri\")"),
    ({"days": "fri-mon"}, "days 'fri-mon': 'fri-mon' runs backwards; write the days Monday first, e.g. \"mon-fri\""),
    ({"days": "07:30-11:30"}, "days '07:30-11:30': hours '07:30-11:30' must follow a day, e.g. \"sat 07:30-11:30\""),
    ({"days": 5}, "days must be text or a list of texts, e.g. \"mon-fri\" or [\"mon-fri\", \"sat 07:30-11:30\"]"),
    ({"office_hours": ["13:30-17:00", "07:30-11:30"]},
     "office_hours periods must be in order and not overlap: '07:30-11:30' starts before 13:30-17:00 ends"),
    ({"office_hours": ["17:00-07:30"]}, "office_hours period '17:00-07:30' must end after it starts, the same day"),
    ({"office_hours": ["7h30-11h30"]}, "window '7h30-11h30' must look like \"01:00-05:00\" (local time, 24 h)"),
    ({"office_hours": []}, "office_hours must list at least one period, e.g. [\"07:30-11:30\", \"13:30-17:00\"]"),
    ({"tests_per_day": 50}, "tests_per_day = 50 does not fit in the 7 h 30 min of mon: at most 45 "
                            "(one per 10 minutes)"),
    ({"tests_per_day": 0}, "tests_per_day must be >= 1, got 0"),
    ({"interval_s": 900}, "interval_s = 900 is too long to catch every test of schedule 'office': at most 450 s"),
    ({"utc_offset": "ICT"}, "utc_offset 'ICT' must look like \"+07:00\" (Vietnam) or be \"local\" "
                            "(the computer's own time zone)"),
    ({"nic_busy_pct": 0}, "nic_busy_pct must be > 0, got 0"),
])
def test_schedule_mistakes_are_refused_at_start_up_with_exact_messages(table, message):
    with pytest.raises(ConfigError) as e:
        parse(**table)
    assert str(e.value) == f"agent.toml line 'fiber' [bandwidth]: {message}"


def test_the_collectors_expected_count_matches_the_agents_default_schedule():
    """The report's "scheduled" tests per calendar day: 4 on each of 5 working days a week."""
    assert Schedule().bandwidth_per_day == pytest.approx(OFFICE.per_day * sum(1 for d in OFFICE.week if d) / 7)
    assert round(Schedule().bandwidth_per_day * 31) in range(4 * 21, 4 * 23 + 1), "a month has 21-23 working days"


# ----------------------------------------------------------------------------- the probe: due(), run()
def office_cfg(tmp_path: Path, **kw) -> BandwidthConfig:
    # nothing listens on this port: a test fails at once with 'unreachable', moving nothing
    return BandwidthConfig(method="linewatch", target=f"http://127.0.0.1:{free_port()}", state_dir=tmp_path, **kw)


def state(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "bandwidth-fiber.json").read_text())


def vn(local: datetime) -> datetime:
    return local.replace(tzinfo=VIETNAM)


def test_a_scheduled_test_says_its_schedule_and_an_on_demand_test_says_manual_and_takes_no_slot(tmp_path):
    probe, cfg = REGISTRY["bandwidth"], office_cfg(tmp_path)
    assert not probe.due(LINE, cfg, now=vn(datetime(2026, 3, 10, 7, 0)))
    seed = state(tmp_path)["seed"]
    first, second = (s for s, _ in OFFICE.slots(date(2026, 3, 10), seed)[:2])
    [manual] = probe.run(LINE, cfg)  # a clerk's `linewatch-agent probe`, just before the slot
    assert valid(manual).data["schedule"] == "manual"
    assert probe.due(LINE, cfg, now=vn(first + timedelta(seconds=30))), "the manual test did not use up the slot"
    [scheduled] = probe.run(LINE, cfg)
    assert valid(scheduled).data["schedule"] == "office" and scheduled.error_code == "unreachable"
    assert not probe.due(LINE, cfg, now=vn(first + timedelta(seconds=90))), "once per slot"
    assert not probe.due(LINE, cfg, now=vn(second - timedelta(seconds=1)))
    assert probe.due(LINE, cfg, now=vn(second))
    elsewhere: list[Result] = []
    t = threading.Thread(target=lambda: elsewhere.extend(probe.run(LINE, cfg)))  # a command's worker thread
    t.start()
    t.join()
    assert elsewhere[0].data["schedule"] == "manual", "a grant belongs to the scheduler's thread that asked"
    assert probe.run(LINE, cfg)[0].data["schedule"] == "office"
    assert probe.run(LINE, cfg)[0].data["schedule"] == "manual", "one grant, one test"


def test_a_scheduled_test_that_crashed_is_reported_as_its_schedules(tmp_path, monkeypatch):
    probe, cfg = REGISTRY["bandwidth"], office_cfg(tmp_path, plan=None)  # schedule "interval"
    assert probe.due(LINE, cfg)

    def bug(*a):
        raise KeyError("x")
    monkeypatch.setitem(bw.METHODS, "linewatch", bug)
    with pytest.raises(KeyError):
        probe.run(LINE, cfg)
    # what the agent's scheduler records instead (agent/runner.py)
    crashed = probe.failed(LINE, cfg, wire.Code.PROBE_CRASHED, "bandwidth on line fiber crashed: KeyError: 'x'")
    assert valid(crashed).data["schedule"] == "interval"
    assert probe.failed(LINE, cfg, wire.Code.PROBE_CRASHED, "again").data["schedule"] == "manual"


def test_an_on_demand_command_is_reported_as_manual(tmp_path):
    from linewatch.agent.commands import CommandHandler

    agent = agent_config.parse({"agent": {"id": "ag-1", "province": "52", "site": "21583", "state_dir": str(tmp_path)},
                                "line": [{"id": "fiber", "source_address": "127.0.0.9", "bandwidth": {
                                    "method": "linewatch", "target": f"http://127.0.0.1:{free_port()}"}}]})
    recorded: list[Result] = []
    cmd = wire.build_command(agent_id="ag-1", province="52", site="21583", line="fiber", probe="bandwidth", ttl_s=60)
    CommandHandler(agent, recorded.append).execute(cmd)
    assert [r.data["schedule"] for r in recorded] == ["manual"] and recorded[0].data["command_id"] == cmd.id


def test_slots_missed_while_the_computer_was_off_are_said_in_the_next_scheduled_result(tmp_path, caplog):
    probe, cfg = REGISTRY["bandwidth"], office_cfg(tmp_path)
    probe.due(LINE, cfg, now=vn(datetime(2026, 3, 9, 6, 0)))
    seed = state(tmp_path)["seed"]
    monday = [s for s, _ in OFFICE.slots(date(2026, 3, 9), seed)]
    assert probe.due(LINE, cfg, now=vn(monday[0] + timedelta(seconds=5)))
    probe.run(LINE, cfg)
    # switched off after the first test; on again Tuesday at 11:29
    with caplog.at_level(logging.WARNING, "linewatch.agent.bandwidth"):
        assert probe.due(LINE, cfg, now=vn(datetime(2026, 3, 10, 11, 29)))
    tuesday_morning = [s for s, _ in OFFICE.slots(date(2026, 3, 10), seed) if s.hour < 12]
    missed = len(monday) - 1 + len(tuesday_morning) - 1
    assert f"{missed} scheduled bandwidth test(s) did not run at their time" in caplog.text
    [r] = probe.run(LINE, cfg)
    assert valid(r).data["slots_missed"] == missed and r.data["schedule"] == "office"
    assert "slots_missed" not in state(tmp_path), "said once"
    assert not probe.due(LINE, cfg, now=vn(datetime(2026, 3, 10, 11, 30))), "one catch-up, not a burst"


def test_when_the_budget_affords_fewer_tests_than_slots_they_are_spread_and_the_skips_are_said(tmp_path, caplog):
    probe, cfg = REGISTRY["bandwidth"], office_cfg(tmp_path, monthly_budget_mb=1000)
    probe.due(LINE, cfg, now=vn(datetime(2026, 3, 1, 12, 0)))  # a Sunday: makes the seed
    doc = state(tmp_path)
    doc.update(test_bytes=100 * MB, month="2026-03", used_bytes=0)  # 10 tests for 22 days x 4 slots
    statefile.write_json(tmp_path / "bandwidth-fiber.json", doc)
    slots = [s for s, _ in OFFICE.slots_between(doc["seed"], datetime(2026, 3, 2), datetime(2026, 4, 1))]
    assert len(slots) == 88
    with caplog.at_level(logging.INFO, "linewatch.agent.bandwidth"):
        granted = [probe.due(LINE, cfg, now=vn(s + timedelta(seconds=20))) for s in slots[:9]]
    assert granted == [False] * 8 + [True], "one slot in ceil(88 / 10) runs"
    assert "skipped so that the data budget lasts the month: 1000 MB left for 88 scheduled tests" in caplog.text
    [r] = probe.run(LINE, cfg)
    assert valid(r).data["slots_skipped_budget"] == 8 and r.error_code == "unreachable", \
        "a skipped slot is no failed test: the next result counts it"


def test_a_used_up_budget_is_a_failed_result_that_says_so(tmp_path):
    cfg = office_cfg(tmp_path, monthly_budget_mb=100)
    statefile.write_json(tmp_path / "bandwidth-fiber.json", {"month": "2026-03", "used_bytes": 99 * MB})
    r = valid(bw.run_test(LINE, cfg, today=date(2026, 3, 10), schedule="office"))
    assert r.error_code == "budget_exhausted" and r.data["budget_left_mb"] == 1.0 and r.data["schedule"] == "office"


# ----------------------------------------------------------------------------- the state file
def test_a_damaged_state_file_is_set_aside_logged_and_said_in_the_next_result(tmp_path, caplog):
    probe, cfg = REGISTRY["bandwidth"], office_cfg(tmp_path)
    path = tmp_path / "bandwidth-fiber.json"
    path.write_text('{"month": "2026-03", "used_by')  # a power cut in the middle of a write by something else
    with caplog.at_level(logging.ERROR, "linewatch.agent.bandwidth"):
        probe.due(LINE, cfg, now=vn(datetime(2026, 3, 10, 6, 0)))  # the scheduler's look finds it first
    [aside] = tmp_path.glob("bandwidth-fiber.json.damaged-*")
    assert aside.read_text() == '{"month": "2026-03", "used_by' and aside.name in caplog.text
    first = next(s for s, _ in OFFICE.slots(date(2026, 3, 10), state(tmp_path)["seed"]))
    assert probe.due(LINE, cfg, now=vn(first + timedelta(seconds=10)))
    [r] = probe.run(LINE, cfg)
    assert "not valid JSON" in r.data["state_note"] and aside.name in valid(r).data["state_note"]
    [again] = probe.run(LINE, cfg)
    assert "state_note" not in again.data, "said once, in the next result"
    path.write_text('{"used_bytes": -5}')
    assert "used_bytes is negative" in bw.run_test(LINE, cfg).data["state_note"], "a manual test says it too"


def test_state_files_are_written_atomically_and_durably(tmp_path, monkeypatch):
    synced: list[int] = []
    replaced: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(statefile.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    monkeypatch.setattr(statefile.os, "replace", lambda a, b: (replaced.append((str(a), str(b))), real_replace(a, b))[1])
    bw.run_test(LINE, office_cfg(tmp_path))
    path = str(tmp_path / "bandwidth-fiber.json")
    assert [b for _a, b in replaced] == [path] and Path(replaced[0][0]).parent == tmp_path, \
        "a temporary file in the same folder replaces the old one"
    assert len(synced) >= 2, "the file and its folder are synced before and after the rename"
    assert not list(tmp_path.glob(".bandwidth-fiber.json.*")), "no temporary file left behind"

"""``[line.bandwidth]``: the typed config of the bandwidth probe, its defaults and validation."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from linewatch.config import ConfigError, Section

from .calendar import Plan, Window, parse_days, parse_hours

METHODS = ("linewatch", "speedtest", "speedtest-mini", "iperf3")
SCHEDULES = ("office", "night", "interval")
MB = 1_000_000

#: Government offices' working hours (Decision 188/1999/QĐ-TTg: 8 hours a day, Monday to
#: Friday; the hours themselves are set by each province, 07:30-11:30 and 13:30-17:00 common)
OFFICE_HOURS = ("07:30-11:30", "13:30-17:00")
OFFICE_DAYS = "mon-fri"
OFFICE_TESTS_PER_DAY = 4
NIGHT_WINDOW = "01:00-05:00"
#: Vietnam: UTC+7 all year, whatever time zone the PC (or a Raspberry Pi left on UTC) is set to
VIETNAM = timezone(timedelta(hours=7), "ICT")


def office_plan(per_day: int = OFFICE_TESTS_PER_DAY, days: str | list[str] = OFFICE_DAYS,
                hours: tuple[str, ...] = OFFICE_HOURS) -> Plan:
    return Plan("office", per_day, parse_days(days, parse_hours(hours)))


def night_plan(window: str = NIGHT_WINDOW, per_day: int = 1, days: str | list[str] = "daily") -> Plan:
    return Plan("night", per_day, parse_days(days, (Window.parse(window),)))


@dataclass(frozen=True)
class BandwidthConfig:
    method: str
    target: str | None  # base URL (linewatch, speedtest-mini), HOST:PORT (iperf3), server id (speedtest)
    streams: int = 4
    max_duration_s: float = 10.0  # per direction
    warmup_s: float = 2.0
    max_test_mb: float = 200.0
    monthly_budget_mb: float = 20000.0
    #: when scheduled tests run (office hours or the night window); None: every interval_s
    plan: Plan | None = field(default_factory=office_plan)
    #: schedule "interval": seconds between tests; office/night: how often the calendar is looked at
    interval_s: float = 60.0
    #: the schedule's clock; None: the PC's own time zone
    clock: tzinfo | None = VIETNAM
    timeout_s: float = 5.0
    stop_when_stable: bool = True
    #: other traffic on the network card above this share of the test's own bytes: nic_busy
    nic_busy_pct: float = 5.0
    state_dir: Path | None = None  # filled in from [agent] state_dir

    @property
    def schedule(self) -> str:
        return self.plan.name if self.plan else "interval"


def parse(sec: Section) -> BandwidthConfig:
    method = sec.str("method", "linewatch", choices=METHODS)
    target = sec.str("target", required=method != "speedtest")
    if method in ("linewatch", "speedtest-mini"):
        u = urlsplit(target)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ConfigError(f"{sec.where}: target {target!r} must be the speed server's address, "
                              f"e.g. \"http://10.52.0.5:8090\"")
    elif method == "iperf3":
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{sec.where}: target {target!r} must be HOST:PORT of an iperf3 server, "
                              f"e.g. \"10.52.0.5:5201\"")
    plan = _parse_plan(sec)
    cfg = BandwidthConfig(
        method=method, target=target,
        streams=sec.num("streams", 4, ge=1, le=16, integer=True),
        max_duration_s=sec.num("max_duration_s", 10.0, ge=2, le=60),
        warmup_s=sec.num("warmup_s", 2.0, ge=0, le=10),
        max_test_mb=sec.num("max_test_mb", 200.0, gt=0),
        # office: 4 tests x ~22 working days of up to max_test_mb; night keeps its old 5000
        monthly_budget_mb=sec.num("monthly_budget_mb", 20000.0 if plan and plan.name == "office" else 5000.0, gt=0),
        plan=plan,
        # office/night: the calendar is looked at every minute (a small file, cached), so a
        # slot starts within about a minute of its time
        interval_s=sec.num("interval_s", 600.0 if plan is None else 60.0, ge=5),
        clock=_parse_clock(sec),
        timeout_s=sec.num("timeout_s", 5.0, gt=0, le=60),
        stop_when_stable=sec.bool("stop_when_stable", True),
        nic_busy_pct=sec.num("nic_busy_pct", 5.0, gt=0, le=100),
    )
    # the scheduler waits interval_s +/- up to 50 % ([schedule] jitter_pct) between looks
    if plan is not None and cfg.interval_s * 1.5 > plan.min_gap().total_seconds():
        raise ConfigError(f"{sec.where}: interval_s = {cfg.interval_s:g} is too long to catch every test of "
                          f"schedule {plan.name!r}: at most {plan.min_gap().total_seconds() / 1.5:.0f} s")
    if cfg.warmup_s >= cfg.max_duration_s - 1:
        raise ConfigError(f"{sec.where}: warmup_s must be at least 1 s shorter than max_duration_s")
    sec.done()
    return cfg


def _raw(sec: Section, key: str) -> Any:
    sec.seen.add(key)
    return sec.data.get(key)


def _parse_plan(sec: Section) -> Plan | None:
    """schedule = "office" (default) | "night" | "interval". A config written before there
    was a schedule key keeps its meaning: window = "01:00-05:00" is the night schedule, and
    window = "" was "every interval_s"."""
    window = sec.str("window")
    schedule = sec.str("schedule", None, choices=SCHEDULES)
    if schedule is None:
        schedule = "office" if window is None else "night" if window else "interval"
    elif window is not None and schedule != "night":
        raise ConfigError(f"{sec.where}: window is the night schedule's time; with schedule = {schedule!r} "
                          f"leave it out" + (" and set office_hours" if schedule == "office" else ""))
    for key, only in (("office_hours", "office"), ("tests_per_day", "office or night"), ("days", "office or night")):
        if key in sec.data and schedule not in only.split(" or "):
            raise ConfigError(f"{sec.where}: {key} is for schedule = \"office\"" +
                              (" or \"night\"" if " or " in only else "") + f", not {schedule!r}")
    if schedule == "interval":
        return None
    hours_raw = _raw(sec, "office_hours")
    days_raw = _raw(sec, "days")
    per_day = sec.num("tests_per_day", OFFICE_TESTS_PER_DAY if schedule == "office" else 1, ge=1, le=288,
                      integer=True)
    for key, value in (("office_hours", hours_raw), ("days", days_raw)):
        if value is not None and not (isinstance(value, str) or
                                      (isinstance(value, list) and all(isinstance(x, str) for x in value))):
            raise ConfigError(f"{sec.where}: {key} must be text or a list of texts, e.g. "
                              + ('["07:30-11:30", "13:30-17:00"]' if key == "office_hours"
                                 else '"mon-fri" or ["mon-fri", "sat 07:30-11:30"]'))
    try:
        if schedule == "office":
            if isinstance(hours_raw, str):
                hours_raw = [h for h in hours_raw.split(",") if h.strip()]
            hours = parse_hours(hours_raw if hours_raw is not None else OFFICE_HOURS)
            plan = Plan("office", per_day, parse_days(days_raw if days_raw is not None else OFFICE_DAYS, hours))
        else:
            w = Window.parse(window or NIGHT_WINDOW)
            plan = Plan("night", per_day, parse_days(days_raw if days_raw is not None else "daily", (w,)))
        plan.check()
    except ValueError as e:
        raise ConfigError(f"{sec.where}: {e}") from None
    return plan


def _parse_clock(sec: Section) -> tzinfo | None:
    text = sec.str("utc_offset", "+07:00")
    if text == "local":
        return None
    m = re.fullmatch(r"([+-])(\d{2}):(\d{2})", text)
    if not m or int(m[2]) > 14 or int(m[3]) >= 60:
        raise ConfigError(f"{sec.where}: utc_offset {text!r} must look like \"+07:00\" (Vietnam) or be \"local\" "
                          f"(the computer's own time zone)")
    delta = timedelta(hours=int(m[2]), minutes=int(m[3]))
    return timezone(-delta if m[1] == "-" else delta)

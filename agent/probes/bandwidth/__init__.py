"""Bandwidth: download and upload throughput of one line, over that line.

One job per module:
  * config.py        -- ``[line.bandwidth]``, typed, with defaults and validation;
  * budget.py        -- the monthly data budget and the line's state file;
  * calendar.py      -- when a line tests (office hours, the night window);
  * nicload.py       -- was this computer's network card busy with other traffic meanwhile?
  * rate.py          -- the throughput arithmetic (steady rate, stable yet?);
  * transfer.py      -- the ``linewatch`` method's client (linewatch.speed.protocol);
  * speedtest_cli.py -- the ``speedtest`` / ``speedtest-mini`` adapter;
  * iperf3.py        -- the ``iperf3`` adapter.
A method is one function ``(line, cfg, cap_bytes) -> data`` in :data:`METHODS`.

Every result says which schedule produced it (``data.schedule``): ``office``, ``night`` or
``interval`` when the agent's scheduler ran it after :meth:`BandwidthProbe.due` said yes (in
the same thread), ``manual`` otherwise (an on-demand command, ``linewatch-agent probe``).
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

from linewatch.config import Section
from linewatch.wire import Code

from ...errors import LineUnbound, TestFailed
from ..base import LineBinding, Probe, Result
from . import calendar
from .budget import BudgetState, LineState, learn_cost, spread
from .config import MB, BandwidthConfig, parse
from .iperf3 import run_iperf3
from .nicload import NicWatch
from .speedtest_cli import run_speedtest, run_speedtest_mini
from .transfer import run_linewatch, transfer  # noqa: F401  (transfer: used by tests)

log = logging.getLogger("linewatch.agent.bandwidth")

METHODS: dict[str, Callable[[LineBinding, BandwidthConfig, int], dict[str, Any]]] = {
    "linewatch": run_linewatch, "speedtest": run_speedtest,
    "speedtest-mini": run_speedtest_mini, "iperf3": run_iperf3,
}


def _state_path(cfg: BandwidthConfig, line: LineBinding) -> Path | None:
    return cfg.state_dir / f"bandwidth-{line.id}.json" if cfg.state_dir else None


def local_now(cfg: BandwidthConfig, now: datetime | None = None) -> datetime:
    """``now`` (aware; naive = the PC's local time) on the schedule's clock, as a naive time."""
    now = now or datetime.now(timezone.utc)
    return (now if now.tzinfo else now.astimezone()).astimezone(cfg.clock).replace(tzinfo=None)


def _stored(doc: dict[str, Any], key: str, cfg: BandwidthConfig) -> datetime | None:
    """A time kept in the state file (aware; ``last_run`` of older agents: naive PC time)."""
    return local_now(cfg, datetime.fromisoformat(doc[key])) if doc.get(key) else None


def _aware(local: datetime, cfg: BandwidthConfig) -> datetime:
    return local.replace(tzinfo=cfg.clock) if cfg.clock else local.astimezone()


def _min_test_bytes(cfg: BandwidthConfig) -> int:
    return min(int(cfg.max_test_mb * MB), 5 * MB)


class BandwidthProbe(Probe):
    name = "bandwidth"
    kind = "bandwidth"

    def __init__(self) -> None:
        # the schedule whose slot due() granted, per line, for the run() that follows in the same thread
        self._granted = threading.local()
        # (state file) -> (schedule-clock time of the next slot, when that was worked out):
        # due() answers "not yet" without reading the file until then
        self._wake: dict[Path | None, tuple[datetime, datetime]] = {}

    def parse_config(self, sec: Section) -> BandwidthConfig:
        return parse(sec)

    def due(self, line: LineBinding, cfg: BandwidthConfig, now: datetime | None = None) -> bool:
        """Whether the scheduler's round runs a test now: every round with schedule "interval",
        else at this line's slots (calendar.decide), and only as often as the month's budget
        allows (budget.spread). Missed and skipped slots are counted for the next result."""
        granted = self._grants()
        granted[line.id] = cfg.schedule  # until it says no: a crash in here is still this schedule's
        path = _state_path(cfg, line)
        local = local_now(cfg, now)
        wake = self._wake.get(path)
        if cfg.plan is not None and wake and wake[1] <= local < wake[0]:
            del granted[line.id]
            return False  # before the next slot: nothing to read
        st = LineState.load(path)
        before = dict(st.doc)
        if st.damaged:  # said by the next result, although the file starts afresh
            st.doc["damage_note"] = st.damaged[:300]
        if "seed" not in st.doc:  # per installation, so identical line ids at 150 sites differ
            st.doc["seed"] = os.urandom(8).hex()
        seed = st.doc["seed"]
        slot: datetime | None
        if cfg.plan is None:
            slot = local
            slots_left = max(1, math.ceil((calendar.month_end(local) - local).total_seconds() / cfg.interval_s))
        else:
            # an agent from before last_slot: its last test marks what is done, nothing counts as missed
            upgraded = "last_slot" not in st.doc and "last_run" in st.doc
            handled = _stored(st.doc, "last_slot", cfg) or _stored(st.doc, "last_run", cfg)
            d = calendar.decide(cfg.plan, seed, local, handled)
            if d.missed and not upgraded:
                st.doc["missed"] = st.doc.get("missed", 0) + d.missed
                log.warning("line %s: %d scheduled bandwidth test(s) did not run at their time (computer off or "
                            "agent stopped); only the latest is caught up, and only within its hours",
                            line.id, d.missed)
            if d.handled:
                st.doc["last_slot"] = _aware(d.handled, cfg).isoformat()
            slot = d.run
            nxt = calendar.next_slot(cfg.plan, seed, local)
            self._wake[path] = (nxt or local, local)
            slots_left = len(cfg.plan.slots_between(seed, slot, calendar.month_end(local))) if slot else 0
        if slot is not None:
            left = BudgetState.of(st.doc).remaining(int(cfg.monthly_budget_mb * MB), local.date())
            if not spread(left, st.doc.get("test_bytes"), slots_left, st.doc.get("skipped_budget", 0)):
                st.doc["skipped_budget"] = st.doc.get("skipped_budget", 0) + 1
                log.info("line %s: the bandwidth test of %s is skipped so that the data budget lasts the month: "
                         "%.0f MB left for %d scheduled tests, one costs about %.0f MB", line.id,
                         f"{slot:%d/%m %H:%M}", left / MB, slots_left, st.doc["test_bytes"] / MB)
                slot = None
        if st.doc != before or st.damaged:
            st.save()
        if slot is None:
            del granted[line.id]
            return False
        return True

    def _grants(self) -> dict[str, str]:
        """This thread's grants: line id -> the schedule whose slot due() granted, taken by the
        run() (or, after a crash, the failed()) that follows. The scheduler asks due() and then
        calls run() in the same thread; commands and the CLI call run() without asking, so their
        tests are "manual"."""
        granted = getattr(self._granted, "lines", None)
        if granted is None:
            granted = self._granted.lines = {}
        return granted

    def run(self, line: LineBinding, cfg: BandwidthConfig) -> list[Result]:
        schedule = self._grants().pop(line.id, "manual")
        try:
            return [run_test(line, cfg, schedule=schedule)]
        except BaseException:  # a bug: the failed() the scheduler makes of it is still this schedule's
            if schedule != "manual":
                self._grants()[line.id] = schedule
            raise

    def summary(self, data: dict[str, Any]) -> str | None:
        if "download_mbps" not in data and "upload_mbps" not in data:
            return None
        fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        return (f"down {fmt(data.get('download_mbps'))} / up {fmt(data.get('upload_mbps'))} Mbit/s, "
                f"{data.get('bytes', 0) / 1e6:.1f} MB")

    def failed(self, line: LineBinding, cfg: BandwidthConfig, error_code: Code, error: str) -> Result:
        data = {"method": cfg.method, "target": cfg.target or "speedtest.net", "streams": cfg.streams,
                "duration_s": 0.0, "bytes": 0, "source": line.describe(),
                "schedule": self._grants().pop(line.id, "manual")}
        return Result("bandwidth", line.id, data, ok=False, error_code=error_code, error=error)


def run_test(line: LineBinding, cfg: BandwidthConfig, today: date | None = None, schedule: str = "manual") -> Result:
    """One test: budget check, the method, budget bookkeeping. Never raises for network trouble.
    ``schedule``: what asked for it (office, night, interval; manual when run on demand)."""
    today = today or local_now(cfg).date()
    st = LineState.load(_state_path(cfg, line))
    budget = BudgetState.of(st.doc)
    budget_bytes = int(cfg.monthly_budget_mb * MB)
    remaining = budget.remaining(budget_bytes, today)
    base: dict[str, Any] = {"method": cfg.method, "target": cfg.target or "speedtest.net",
                            "streams": cfg.streams, "duration_s": 0.0, "bytes": 0, "source": line.describe(),
                            "schedule": schedule}
    note = st.damaged or st.doc.pop("damage_note", None)
    if note:
        base["state_note"] = note[:300]
    if schedule != "manual":  # what the calendar could not run since the last scheduled test
        for key, field in (("missed", "slots_missed"), ("skipped_budget", "slots_skipped_budget")):
            if st.doc.get(key):
                base[field] = st.doc.pop(key)
    cap = min(int(cfg.max_test_mb * MB), remaining)
    if cap < _min_test_bytes(cfg):
        result = Result("bandwidth", line.id, {**base, "budget_left_mb": round(remaining / MB, 1)}, ok=False,
                        error_code=Code.BUDGET_EXHAUSTED,
                        error=f"monthly data budget of {cfg.monthly_budget_mb:g} MB for line {line.id!r} is used up "
                              f"({budget.used_bytes / MB:.0f} MB this month); tests resume next month "
                              f"or raise monthly_budget_mb")
        _save(st, result)
        return result
    started = time.monotonic()
    watch = NicWatch.start(line, cfg)
    try:
        data = METHODS[cfg.method](line, cfg, cap)
        result = Result("bandwidth", line.id, {**base, **data})
    except LineUnbound as e:
        result = Result("bandwidth", line.id, base, ok=False, error_code=Code.LINE_UNBOUND, error=str(e))
    except TestFailed as e:
        d = {**base, **e.partial}
        if "duration_s" not in e.partial:
            d["duration_s"] = round(time.monotonic() - started, 2)
        result = Result("bandwidth", line.id, d, ok=False, error_code=e.code, error=str(e))
    used = int(result.data.get("bytes", 0))
    if watch and (used > 0 or "download_mbps" in result.data):
        result.data.update(watch.fields(used, cfg.nic_busy_pct))
    budget = budget.add(used, today)
    st.doc.update(month=budget.month, used_bytes=budget.used_bytes,
                  last_run=datetime.now(timezone.utc).astimezone().isoformat())
    if used >= _min_test_bytes(cfg):
        st.doc["test_bytes"] = learn_cost(st.doc.get("test_bytes"), used)
    result.data["budget_left_mb"] = round(max(0, budget_bytes - budget.used_bytes) / MB, 1)
    _save(st, result)
    return result


def _save(st: LineState, result: Result) -> None:
    try:
        st.save()
    except OSError as e:  # the measurement stands; the clerk must fix the folder
        note = f"could not record the data this test used in {st.path}: {e.strerror or e}"
        result.data["state_note"] = (result.data.get("state_note", "") + "; " + note).lstrip("; ")[:300]

"""Bandwidth: download and upload throughput of one line, over that line.

One job per module:
  * config.py        -- ``[line.bandwidth]``, typed, with defaults and validation;
  * budget.py        -- the monthly data budget and the line's state file;
  * calendar.py      -- when a line tests;
  * rate.py          -- the throughput arithmetic (steady rate, stable yet?);
  * transfer.py      -- the ``linewatch`` method's client (linewatch.speed.protocol);
  * speedtest_cli.py -- the ``speedtest`` / ``speedtest-mini`` adapter;
  * iperf3.py        -- the ``iperf3`` adapter.
A method is one function ``(line, cfg, cap_bytes) -> data`` in :data:`METHODS`.
"""
from __future__ import annotations

import os
import time
from datetime import date, datetime
from typing import Any, Callable

from linewatch.config import Section
from linewatch.wire import Code

from ...errors import LineUnbound, TestFailed
from ..base import LineBinding, Probe, Result
from . import calendar
from .budget import BudgetState, LineState
from .config import MB, BandwidthConfig, parse
from .iperf3 import run_iperf3
from .speedtest_cli import run_speedtest, run_speedtest_mini
from .transfer import run_linewatch, transfer  # noqa: F401  (transfer: used by tests)

METHODS: dict[str, Callable[[LineBinding, BandwidthConfig, int], dict[str, Any]]] = {
    "linewatch": run_linewatch, "speedtest": run_speedtest,
    "speedtest-mini": run_speedtest_mini, "iperf3": run_iperf3,
}


def _state_path(cfg: BandwidthConfig, line: LineBinding):
    return cfg.state_dir / f"bandwidth-{line.id}.json" if cfg.state_dir else None


class BandwidthProbe(Probe):
    name = "bandwidth"
    kind = "bandwidth"

    def parse_config(self, sec: Section) -> BandwidthConfig:
        return parse(sec)

    def due(self, line: LineBinding, cfg: BandwidthConfig, now: datetime | None = None) -> bool:
        """Scheduled runs only: with a window, once a day at this line's random slot."""
        if cfg.window is None:
            return True
        st = LineState.load(_state_path(cfg, line))
        if "seed" not in st.doc:  # per installation, so identical line ids at 150 sites differ
            st.doc["seed"] = os.urandom(8).hex()
            st.save()
        last = datetime.fromisoformat(st.doc["last_run"]) if st.doc.get("last_run") else None
        return calendar.due_slot(now or datetime.now(), cfg.window, st.doc["seed"], last) is not None

    def run(self, line: LineBinding, cfg: BandwidthConfig) -> list[Result]:
        return [run_test(line, cfg)]

    def failed(self, line: LineBinding, cfg: BandwidthConfig, error_code: Code, error: str) -> Result:
        data = {"method": cfg.method, "target": cfg.target or "speedtest.net", "streams": cfg.streams,
                "duration_s": 0.0, "bytes": 0, "source": line.describe()}
        return Result("bandwidth", line.id, data, ok=False, error_code=error_code, error=error)


def run_test(line: LineBinding, cfg: BandwidthConfig, today: date | None = None) -> Result:
    """One test: budget check, the method, budget bookkeeping. Never raises for network trouble."""
    today = today or date.today()
    st = LineState.load(_state_path(cfg, line))
    budget = BudgetState.of(st.doc)
    budget_bytes = int(cfg.monthly_budget_mb * MB)
    remaining = budget.remaining(budget_bytes, today)
    base: dict[str, Any] = {"method": cfg.method, "target": cfg.target or "speedtest.net",
                            "streams": cfg.streams, "duration_s": 0.0, "bytes": 0, "source": line.describe()}
    if st.damaged:
        base["state_note"] = st.damaged[:300]
    cap = min(int(cfg.max_test_mb * MB), remaining)
    if cap < min(int(cfg.max_test_mb * MB), 5 * MB):
        return Result("bandwidth", line.id, {**base, "budget_left_mb": round(remaining / MB, 1)}, ok=False,
                      error_code=Code.BUDGET_EXHAUSTED,
                      error=f"monthly data budget of {cfg.monthly_budget_mb:g} MB for line {line.id!r} is used up "
                            f"({budget.used_bytes / MB:.0f} MB this month); tests resume next month "
                            f"or raise monthly_budget_mb")
    started = time.monotonic()
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
    budget = budget.add(used, today)
    st.doc.update(month=budget.month, used_bytes=budget.used_bytes, last_run=datetime.now().isoformat())
    result.data["budget_left_mb"] = round(max(0, budget_bytes - budget.used_bytes) / MB, 1)
    try:
        st.save()
    except OSError as e:  # the measurement stands; the clerk must fix the folder
        note = f"could not record the data this test used in {st.path}: {e.strerror or e}"
        result.data["state_note"] = (result.data.get("state_note", "") + "; " + note).lstrip("; ")[:300]
    return result

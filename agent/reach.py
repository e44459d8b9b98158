"""Fast outage detection: one monitor thread per line with a ``[line.reach]`` table.

Every ``interval_s`` one tiny probe goes to the target over the line (agent/probes/reach.py).
After ``down_after`` failures in a row the line is down, after ``up_after`` answers in a row
it is up; every change is recorded at once (the outbox, then the publisher is woken), the
first state after start-up too, and a summary (``change: false``) every ``report_s``.
When the target does not answer, the office's gateway gets one probe that round: if it is
silent too the fault is the modem/LAN (``gateway_unreachable``), not the line (``line_down``).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from linewatch.wire import format_time, utc_now

from .probes.base import LineBinding, Result
from .probes.reach import Check, Prober, ReachConfig, down_reason, gateway_for

log = logging.getLogger("linewatch.agent.reach")


class ReachState:
    """The pure up/down state machine of one line: fed one probe outcome at a time."""

    def __init__(self, down_after: int, up_after: int):
        self.down_after = down_after
        self.up_after = up_after
        self.state: str | None = None  # None until the first state is established
        self.since_mono = 0.0          # when the current state began (its first probe)
        self.since_wall: datetime | None = None
        self.down_s: float | None = None  # set by a down -> up change: how long it was down
        self.streak = 0                # probes in a row with the same outcome
        self._streak_answered: bool | None = None
        self._streak_mono = 0.0
        self._streak_wall: datetime | None = None
        self.sent = 0                  # since take_counts()
        self.lost = 0
        self.last_rtt_ms: float | None = None

    def observe(self, answered: bool, mono: float, wall: datetime, rtt_ms: float | None = None) -> bool:
        """One probe's outcome. True when the state changed (or was established)."""
        self.sent += 1
        if answered:
            self.last_rtt_ms = rtt_ms
        else:
            self.lost += 1
        if answered is self._streak_answered:
            self.streak += 1
        else:
            self._streak_answered, self.streak = answered, 1
            self._streak_mono, self._streak_wall = mono, wall
        new = "up" if answered else "down"
        if self.state == new or self.streak < (self.up_after if answered else self.down_after):
            return False
        self.down_s = (max(0.0, self._streak_mono - self.since_mono)
                       if self.state == "down" and new == "up" else None)
        self.state, self.since_mono, self.since_wall = new, self._streak_mono, self._streak_wall
        return True

    @property
    def failing(self) -> bool:
        """The last probe went unanswered."""
        return self._streak_answered is False

    def take_counts(self) -> tuple[int, int]:
        sent, lost = self.sent, self.lost
        self.sent = self.lost = 0
        return sent, lost


@dataclass
class _Failure:
    check: Check
    gateway: str | None = None
    gateway_ok: bool | None = None


class ReachMonitor:
    """Runs the state machine of one line against its prober, and records what it says."""

    def __init__(self, line: LineBinding, cfg: ReachConfig, record: Callable[[Result], Any],
                 on_crash: Callable[[str, Exception], None] | None = None, *, prober: Any = None,
                 gateway: Callable[[], str | None] | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], datetime] = utc_now):
        self.line = line
        self.cfg = cfg
        self.record = record
        self.on_crash = on_crash
        self.prober = prober or Prober(line, cfg)
        self.find_gateway = gateway or (lambda: gateway_for(line, cfg))
        self.clock = clock
        self.wall = wall
        self.state = ReachState(cfg.down_after, cfg.up_after)
        self.name = f"{line.id}/reach"
        self.gateway: str | None = None
        self._gateway_looked = False
        self._failure: _Failure | None = None  # the current (or last) failure streak
        self._next_report: float | None = None
        #: after a crash (a bug, a missing permission) wait this long, not interval_s, before trying again
        self.retry_after_crash_s = min(cfg.report_s, 60.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ one round
    def _gateway(self) -> str | None:
        if self.cfg.gateway == "auto" or not self._gateway_looked:  # "auto": the route may have changed
            self._gateway_looked = True
            self.gateway = self.find_gateway() or self.gateway  # keep the last known while the interface is down
        return self.gateway

    def step(self) -> list[Result]:
        """One probe (and one to the gateway if the target did not answer); the messages due."""
        check = self.prober.check()
        if not check.answered:
            if not self.state.failing or self._failure is None:
                self._failure = _Failure(check)
            self._failure.check = check
            gw = self._gateway() if not check.unbound else self.gateway
            self._failure.gateway = gw
            if gw and not check.unbound:
                self._failure.gateway_ok = bool(self.prober.check_gateway(gw))
        changed = self.state.observe(check.answered, self.clock(), self.wall(), check.rtt_ms)
        out: list[Result] = []
        now = self.clock()
        if changed:
            out.append(self.message(change=True))
        elif self.state.state is not None and self._next_report is not None and now >= self._next_report:
            out.append(self.message(change=False))
            self.prober.forget_address()
        if out:
            self._next_report = now + self.cfg.report_s
        return out

    def message(self, change: bool) -> Result:
        st = self.state
        assert st.state is not None and st.since_wall is not None
        sent, lost = st.take_counts()
        data: dict[str, Any] = {
            "method": self.prober.method, "target": self.prober.shown_target, "state": st.state, "change": change,
            "since": format_time(st.since_wall), "interval_s": self.cfg.interval_s, "sent": sent, "lost": lost}
        if change and st.state == "up" and st.down_s is not None:
            data["down_s"] = round(st.down_s, 3)
        if st.last_rtt_ms is not None:
            data["rtt_ms"] = st.last_rtt_ms
        f = self._failure
        if not self._gateway_looked:
            self._gateway()
        gateway = (f.gateway if f else None) or self.gateway
        if gateway:
            data["gateway"] = gateway
        if st.state == "down" and f is not None and f.gateway_ok is not None:
            data["gateway_ok"] = f.gateway_ok
        data["source"] = self.line.describe()
        if st.state == "up":
            return Result("reach", self.line.id, data, measured_at=self.wall())
        assert f is not None
        code, error = down_reason(self.line, self.prober.shown_target, f.check, st.streak, f.gateway,
                                  f.gateway_ok)
        if not change:
            error = f"down since {format_time(st.since_wall)}: {error}"
        return Result("reach", self.line.id, data, ok=False, error_code=code, error=error[:1000],
                      measured_at=self.wall())

    def current(self) -> tuple[str, datetime] | None:
        """The state and when it began, once established."""
        st = self.state
        return (st.state, st.since_wall) if st.state and st.since_wall else None

    # ------------------------------------------------------------------ thread
    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or self._stop
        next_at = self.clock()
        while not stop.is_set():
            try:
                for r in self.step():
                    self.record(r)
            except Exception as e:  # a bug or a missing permission: logged, counted, then go on
                if self.on_crash:
                    self.on_crash(self.name, e)
                else:
                    log.exception("%s crashed", self.name)
                next_at = self.clock() + self.retry_after_crash_s
            else:
                next_at += self.cfg.interval_s
                if next_at < self.clock():  # a slow round (timeouts): start the next one now
                    next_at = self.clock()
            stop.wait(max(0.0, next_at - self.clock()))

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"reach-{self.line.id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

"""The agent process: a jittered scheduler runs each line's probes, every result goes to
the on-disk outbox, and the publisher moves the outbox to the broker."""
from __future__ import annotations

import heapq
import logging
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from linewatch import __version__, wire

from .commands import CommandHandler
from .config import AgentConfig, LineConfig
from .lan import agent_jobs
from .outbox import Outbox
from .probes import REGISTRY, Result
from .publisher import Publisher
from .reach import ReachMonitor

log = logging.getLogger("linewatch.agent")


@dataclass(order=True)
class _Job:
    due: float
    name: str = field(compare=False)
    interval_s: float = field(compare=False)
    run: Callable[[], None] = field(compare=False)


class Scheduler:
    """Runs jobs every ``interval_s`` +/- ``jitter_pct`` % so that 150 agents started by
    the same power cut do not probe in lock-step. A job never overlaps itself."""

    def __init__(self, jitter_pct: float, workers: int = 4, first_delay_s: float = 3.0):
        self.jitter = jitter_pct / 100
        self.first_delay_s = first_delay_s
        self._heap: list[_Job] = []
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")
        self._stop = threading.Event()
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def add(self, name: str, interval_s: float, run: Callable[[], None]) -> None:
        first = time.monotonic() + random.uniform(0, min(self.first_delay_s, interval_s))
        heapq.heappush(self._heap, _Job(first, name, interval_s, run))

    def _next_due(self, job: _Job) -> float:
        return time.monotonic() + job.interval_s * (1 + random.uniform(-self.jitter, self.jitter))

    def run_forever(self) -> None:
        while not self._stop.is_set():
            if not self._heap:
                self._stop.wait(1)
                continue
            job = self._heap[0]
            wait = job.due - time.monotonic()
            if wait > 0:
                self._stop.wait(min(wait, 1.0))
                continue
            heapq.heappop(self._heap)
            job.due = self._next_due(job)
            heapq.heappush(self._heap, job)
            if not self.claim(job.name):
                log.warning("%s is still running (from last time, or on demand); skipping this round", job.name)
                continue
            self._pool.submit(self._guarded, job)

    def claim(self, name: str) -> bool:
        """Mark a job as running; False if it already is. On-demand commands use this too,
        so that a probe (a bandwidth test) never overlaps itself on one line."""
        with self._lock:
            if name in self._running:
                return False
            self._running.add(name)
            return True

    def release(self, name: str) -> None:
        with self._lock:
            self._running.discard(name)

    def _guarded(self, job: _Job) -> None:
        try:
            job.run()
        finally:
            self.release(job.name)

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


class Agent:
    def __init__(self, cfg: AgentConfig, on_fatal: Callable[[str], None] | None = None):
        self.cfg = cfg
        self.started = time.monotonic()
        self.outbox = Outbox(cfg.state_dir / "outbox.sqlite3", max_messages=cfg.outbox.max_messages,
                             max_age_s=cfg.outbox.max_age_days * 86400)
        self.publisher = Publisher(cfg, self.outbox, on_fatal=on_fatal)
        self.scheduler = Scheduler(cfg.jitter_pct)
        self.probe_errors = 0
        self.last_probe_error: str | None = None
        self.monitors: dict[str, ReachMonitor] = {}
        for line in cfg.lines:
            for name, pcfg in line.probes.items():
                if REGISTRY[name].continuous:  # reach: its own thread, started by run()
                    self.monitors[line.id] = ReachMonitor(line.binding, pcfg, self.record, self._crashed)
                    continue
                interval = getattr(pcfg, "interval_s", 300.0)
                self.scheduler.add(f"{line.id}/{name}", interval, self._probe_job(line, name, pcfg))
        for name, interval, job in agent_jobs(cfg):  # per-agent jobs: LAN discovery, inventory
            self.scheduler.add(name, interval, self._agent_job(name, job))
        self.scheduler.add("heartbeat", cfg.heartbeat_s, self.heartbeat)
        self.commands = CommandHandler(cfg, self.record, claim=self.scheduler.claim, release=self.scheduler.release,
                                       on_crash=self._crashed, reach_state=self._reach_state)
        self.publisher.on_command = self.commands.handle

    def _reach_state(self, line_id: str):
        m = self.monitors.get(line_id)
        return m.current() if m else None

    # -- measurements ---------------------------------------------------------------
    def _probe_job(self, line: LineConfig, name: str, pcfg: object) -> Callable[[], None]:
        def job() -> None:
            try:
                if not REGISTRY[name].due(line.binding, pcfg):
                    return
                results = REGISTRY[name].run(line.binding, pcfg)
            except Exception as e:  # a broken probe is logged and counted; the others go on
                self._crashed(f"{line.id}/{name}", e)
                return
            for r in results:
                self.record(r)
        return job

    def _agent_job(self, name: str, job: Callable[[Callable[[Result], object]], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                job(self.record)
            except Exception as e:  # counted and reported like a crashed probe
                self._crashed(name, e)
        return run

    def _crashed(self, job: str, e: Exception) -> None:
        """A bug, not a line problem: counted and named in the next heartbeat."""
        self.probe_errors += 1
        self.last_probe_error = f"{job}: {type(e).__name__}: {e}"
        log.exception("%s crashed", job)

    def record(self, r: Result) -> wire.Message:
        """Give a result its sequence number and store it durably, then wake the sender."""
        msg = self.outbox.put(lambda seq: wire.build_message(
            kind=r.kind, agent_id=self.cfg.agent_id, province=self.cfg.province, site=self.cfg.site,
            line=r.line, seq=seq, stream=self.outbox.stream, measured_at=r.measured_at, data=r.data, ok=r.ok,
            error_code=r.error_code, error=r.error))
        self.publisher.wake()
        return msg

    def heartbeat(self) -> None:
        now = wire.utc_now()
        data = {"version": __version__, "uptime_s": round(time.monotonic() - self.started, 1),
                "queue_depth": self.outbox.depth(), "queue_dropped": self.outbox.dropped(),
                "probe_errors": self.probe_errors, "clock_utc": wire.format_time(now),
                "hostname": socket.gethostname()[:128]}
        if self.last_probe_error:
            data["last_probe_error"] = self.last_probe_error[:500]
        self.record(Result("heartbeat", None, data, measured_at=now))

    # -- lifecycle ----------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self.publisher.start()
        t = threading.Thread(target=self.scheduler.run_forever, name="scheduler", daemon=True)
        t.start()
        for m in self.monitors.values():
            m.start()
        try:
            while not stop.wait(0.5):
                if self.publisher.fatal:
                    break
        finally:
            for m in self.monitors.values():
                m.stop()
            self.commands.stop()
            self.scheduler.stop()
            self.publisher.stop()
            self.outbox.close()

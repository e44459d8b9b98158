"""The agent process: a jittered scheduler runs each line's probes, every result goes to
the on-disk outbox, and the publisher moves the outbox to the broker.

Nothing is lost in silence: a probe that crashes, or whose result breaks the wire contract
(``wire.build_message`` refuses it: an HTTP server answering status 999 is enough), leaves a
failed measurement of its kind with the reason (``probe_crashed`` / ``invalid_result``), and the
crash is logged and counted in the heartbeat (``probe_errors``, ``last_probe_error``). Every
scheduled job -- probes, LAN discovery, inventory, the heartbeat itself -- runs behind such a
handler, and the scheduler logs whatever still escapes.

Every thread sleeps until it has work: the scheduler until the next job is due, the publisher
until a result, a PUBACK or a timer it needs, the main thread until it is told to stop.
"""
from __future__ import annotations

import heapq
import logging
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from linewatch import __version__, wire
from linewatch.errors import MalformedMessage
from linewatch.text import printable
from linewatch.wire_checks import Str, check_value

from .commands import CommandHandler
from .config import AgentConfig, LineConfig
from .lan import agent_jobs
from .outbox import Outbox
from .probes import REGISTRY, Probe, Result
from .publisher import Publisher
from .reach import ReachMonitor

log = logging.getLogger("linewatch.agent")
MAX_ERROR_CHARS = 1000  # envelope ``error``
MAX_LAST_ERROR_CHARS = 500  # heartbeat ``last_probe_error`` / ``last_refusal``


@dataclass(order=True)
class _Job:
    due: float
    name: str = field(compare=False)
    interval_s: float = field(compare=False)
    run: Callable[[], None] = field(compare=False)


class Scheduler:
    """Runs jobs every ``interval_s`` +/- ``jitter_pct`` % so that 150 agents started by
    the same power cut do not probe in lock-step. A job never overlaps itself. Between jobs
    the scheduler sleeps until the next one is due (or a job is added, or it is stopped)."""

    def __init__(self, jitter_pct: float, workers: int = 4, first_delay_s: float = 3.0,
                 on_crash: Callable[[str, BaseException], None] | None = None):
        self.jitter = jitter_pct / 100
        self.first_delay_s = first_delay_s
        self.on_crash = on_crash
        self.wakeups = 0  # rounds of run_forever (tests, bench)
        self._heap: list[_Job] = []
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")
        self._stop = threading.Event()
        self._changed = threading.Event()
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def add(self, name: str, interval_s: float, run: Callable[[], None]) -> None:
        first = time.monotonic() + random.uniform(0, min(self.first_delay_s, interval_s))
        with self._lock:
            heapq.heappush(self._heap, _Job(first, name, interval_s, run))
        self._changed.set()

    def _next_due(self, job: _Job) -> float:
        return time.monotonic() + job.interval_s * (1 + random.uniform(-self.jitter, self.jitter))

    def run_forever(self) -> None:
        while not self._stop.is_set():
            self.wakeups += 1
            with self._lock:
                job = self._heap[0] if self._heap else None
                wait = None if job is None else job.due - time.monotonic()
                if job is not None and wait <= 0:
                    heapq.heappop(self._heap)
                    job.due = self._next_due(job)
                    heapq.heappush(self._heap, job)
            if wait is not None and wait <= 0:
                assert job is not None
                if not self.claim(job.name):
                    log.warning("%s is still running (from last time, or on demand); skipping this round", job.name)
                    continue
                self._pool.submit(self._guarded, job)
                continue
            self._changed.wait(wait)  # the next job's due time, an added job, or stop()
            self._changed.clear()

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
        except BaseException as e:  # nothing escapes into a future nobody reads
            if self.on_crash:
                self.on_crash(job.name, e)
            else:
                log.exception("%s crashed", job.name)
        finally:
            self.release(job.name)

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


class Agent:
    def __init__(self, cfg: AgentConfig, on_fatal: Callable[[str], None] | None = None, *,
                 mqtt5: bool | None = None):
        """``mqtt5``: see :class:`Publisher` (None: MQTT 5, or MQTT 3.1.1 if the broker lacks it)."""
        self.cfg = cfg
        self.started = time.monotonic()
        self.outbox = Outbox(cfg.state_dir / "outbox.sqlite3", max_messages=cfg.outbox.max_messages,
                             max_age_s=cfg.outbox.max_age_days * 86400)
        self._on_fatal = on_fatal
        self._stopping: threading.Event | None = None  # run()'s stop event
        self.publisher = Publisher(cfg, self.outbox, on_fatal=self._fatal, mqtt5=mqtt5)
        self.scheduler = Scheduler(cfg.jitter_pct, on_crash=self._crashed)
        self.probe_errors = 0
        self.last_probe_error: str | None = None
        self.monitors: dict[str, ReachMonitor] = {}
        #: (line id, kind) -> the probe that makes it and its config, to stand in for a broken result
        self._makers: dict[tuple[str, str], tuple[Probe, LineConfig, Any]] = {}
        for line in cfg.lines:
            for name, pcfg in line.probes.items():
                self._makers[(line.id, REGISTRY[name].kind)] = (REGISTRY[name], line, pcfg)
                if REGISTRY[name].continuous:  # reach: its own thread, started by run()
                    self.monitors[line.id] = ReachMonitor(line.binding, pcfg, self.record, self._crashed)
                    continue
                interval = getattr(pcfg, "interval_s", 300.0)
                self.scheduler.add(f"{line.id}/{name}", interval, self._probe_job(line, name, pcfg))
        for name, interval, job in agent_jobs(cfg):  # per-agent jobs: LAN discovery, inventory
            self.scheduler.add(name, interval, self._agent_job(name, job))
        self.scheduler.add("heartbeat", cfg.heartbeat_s, self._agent_job("heartbeat", lambda _: self.heartbeat()))
        self.commands = CommandHandler(cfg, self.record, claim=self.scheduler.claim, release=self.scheduler.release,
                                       on_crash=self._crashed, reach_state=self._reach_state)
        self.publisher.on_command = self.commands.handle

    def _reach_state(self, line_id: str):
        m = self.monitors.get(line_id)
        return m.current() if m else None

    # -- measurements ---------------------------------------------------------------
    def _probe_job(self, line: LineConfig, name: str, pcfg: object) -> Callable[[], None]:
        probe = REGISTRY[name]

        def job() -> None:
            try:
                if not probe.due(line.binding, pcfg):
                    return
                results = probe.run(line.binding, pcfg)
            except Exception as e:  # a broken probe is logged, counted, and still answers
                self._crashed(f"{line.id}/{name}", e)
                results = [probe.failed(line.binding, pcfg, wire.Code.PROBE_CRASHED,
                                        _error(f"{name} on line {line.id} crashed: {type(e).__name__}: {e}"))]
            for r in results:
                self.record(r)
        return job

    def _agent_job(self, name: str, job: Callable[[Callable[[Result], object]], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                job(self.record)
            except Exception as e:  # counted and reported like a crashed probe
                self._crashed(name, e)
                if name == "lan" and self.cfg.lan is not None:  # the collector hears of the failed sweep too
                    self.record(Result("lan", None, {"method": "none", "subnets": [],
                                                     "missed_sweeps_before_gone": self.cfg.lan.missed_sweeps_before_gone},
                                       ok=False, error_code=_code(e),
                                       error=_error(f"the LAN discovery failed: {type(e).__name__}: {e}")))
        return run

    def _crashed(self, job: str, e: BaseException) -> None:
        """A bug, not a line problem: counted and named in the next heartbeat."""
        self.probe_errors += 1
        self.last_probe_error = printable(f"{job}: {type(e).__name__}: {e}", MAX_LAST_ERROR_CHARS)
        log.error("%s crashed: %s: %s", job, type(e).__name__, e, exc_info=e)

    def _fatal(self, why: str) -> None:
        if self._on_fatal:
            self._on_fatal(why)
        if self._stopping is not None:
            self._stopping.set()

    def record(self, r: Result) -> wire.Message:
        """Give a result its sequence number and store it durably, then wake the sender.

        A line measurement that breaks the wire contract is not lost: its probe's failed
        result (``invalid_result``, with the reason) is stored instead, and the fault counted.
        Any other kind that breaks it raises :class:`MalformedMessage` to its job's handler."""
        try:
            msg = self._store(r)
        except MalformedMessage as e:
            maker = self._makers.get((r.line or "", r.kind))
            if maker is None:
                raise
            self._crashed(f"{r.line}/{r.kind}", e)
            msg = self._store(_stand_in(r, e, *maker))
        self.publisher.wake()
        return msg

    def _store(self, r: Result) -> wire.Message:
        return self.outbox.put(lambda seq: wire.build_message(
            kind=r.kind, agent_id=self.cfg.agent_id, province=self.cfg.province, site=self.cfg.site,
            line=r.line, seq=seq, stream=self.outbox.stream, measured_at=r.measured_at, data=r.data, ok=r.ok,
            error_code=r.error_code, error=r.error))

    def heartbeat(self) -> None:
        now = wire.utc_now()
        pub = self.publisher
        data: dict[str, Any] = {
            "version": __version__, "uptime_s": round(time.monotonic() - self.started, 1),
            "queue_depth": self.outbox.depth(), "queue_dropped": self.outbox.dropped(),
            "probe_errors": self.probe_errors, "clock_utc": wire.format_time(now),
            "hostname": printable(socket.gethostname(), 128)}
        if self.last_probe_error:
            data["last_probe_error"] = printable(self.last_probe_error, MAX_LAST_ERROR_CHARS)
        if pub.holds.refused:  # only then: a collector older than these fields still takes the rest
            data["publish_refused"] = pub.holds.refused
            data["last_refusal"] = printable(pub.holds.last or "", MAX_LAST_ERROR_CHARS)
        self.record(Result("heartbeat", None, data, measured_at=now))

    # -- lifecycle ----------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set (a fatal broker answer sets it too)."""
        self._stopping = stop
        self.publisher.start()
        t = threading.Thread(target=self.scheduler.run_forever, name="scheduler", daemon=True)
        t.start()
        for m in self.monitors.values():
            m.start()
        try:
            while not self.publisher.fatal and not stop.wait(3600):
                pass
        finally:
            for m in self.monitors.values():
                m.stop()
            self.commands.stop()
            self.scheduler.stop()
            self.publisher.stop()
            self.outbox.close()


def _error(text: str) -> str:
    return printable(text, MAX_ERROR_CHARS)


def _code(e: BaseException) -> wire.Code:
    return wire.Code.INVALID_RESULT if isinstance(e, MalformedMessage) else wire.Code.PROBE_CRASHED


def _stand_in(r: Result, e: MalformedMessage, probe: Probe, line: LineConfig, pcfg: Any) -> Result:
    """The probe's own failed result for ``r``, with the reason ``r`` was refused; it keeps
    what names the measurement (url, target, method, command id) when that is not the fault."""
    why = _error(f"{r.kind} on line {line.id}: the measurement broke the wire contract ({e}) and is kept as "
                 f"this failure; the probe had found: {r.error_code or 'ok'}{': ' + r.error if r.error else ''}")
    failed = probe.failed(line.binding, pcfg, wire.Code.INVALID_RESULT, why)
    named = {**failed.data, **{k: r.data[k] for k in (*failed.data, "command_id") if k in r.data}}
    for data in (named, failed.data, _fit(r.kind, named)):
        try:
            wire.check_data(r.kind, data, False)
        except MalformedMessage:
            continue
        failed.data = data
        break
    failed.measured_at = r.measured_at
    return failed


def _fit(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` cut to what the contract takes (for a stand-in only): text too long for its
    field is shortened (ending in …), an optional field that still does not fit is left out."""
    schema, out = wire.SCHEMAS[kind], {}
    for k, v in data.items():
        if (spec := schema.get(k)) is None:
            continue
        if isinstance(spec, Str) and isinstance(v, str) and spec.choices is None and spec.fmt is None:
            v = printable(v, spec.max_len)
        try:
            check_value(f"{kind}.data.{k}", v, spec)
        except MalformedMessage:
            if spec.optional:
                continue
        out[k] = v
    return out

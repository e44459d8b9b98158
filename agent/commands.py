"""On-demand commands from the collector ("run this line's probe now", đo đột xuất).

The publisher subscribes to the agent's command topic and hands every message to
:meth:`CommandHandler.handle` on paho's network thread; that only checks it and queues it.
A worker thread runs the line's probe(s) now, ignoring their calendar (``due()``), and every
result echoes the command's id in ``data.command_id``, through the normal path (outbox ->
MQTT -> record). A command whose ``expires_at`` has passed is not run: each probe asked for
reports one failed result with ``error_code`` ``command_expired``. QoS 1 may deliver the
same command twice: an id already seen is not run again. A probe that is already running
(a scheduled bandwidth test of the same line) is waited for, never overlapped.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Callable

from linewatch import wire
from linewatch.wire import Code, MalformedMessage

from .config import AgentConfig
from .probes import REGISTRY, Result

log = logging.getLogger("linewatch.agent.commands")

#: how many command ids are remembered against duplicate deliveries
REMEMBER_IDS = 1000


class CommandHandler:
    def __init__(self, cfg: AgentConfig, record: Callable[[Result], Any], *,
                 claim: Callable[[str], bool] | None = None, release: Callable[[str], None] | None = None,
                 on_crash: Callable[[str, Exception], None] | None = None,
                 reach_state: Callable[[str], tuple[str, datetime] | None] | None = None, workers: int = 2):
        self.cfg = cfg
        self.record = record
        self.claim = claim or (lambda name: True)
        self.release = release or (lambda name: None)
        self.on_crash = on_crash
        self.reach_state = reach_state
        self.malformed = 0
        self.duplicates = 0
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="command")

    # ------------------------------------------------------------------ paho's thread
    def handle(self, topic: str, payload: bytes) -> None:
        """Check one command message and queue it. Never blocks, never raises."""
        try:
            cmd = wire.parse_command(topic, payload)
        except MalformedMessage as e:
            self.malformed += 1
            log.warning("ignored a malformed command on %s: %s", topic, e)
            return
        if (cmd.agent_id, cmd.province, cmd.site) != (self.cfg.agent_id, self.cfg.province, self.cfg.site):
            self.malformed += 1
            log.warning("ignored command %s addressed to agent %s of site %s/%s, not to this agent", cmd.id,
                        cmd.agent_id, cmd.province, cmd.site)
            return
        with self._lock:
            if cmd.id in self._seen:
                self.duplicates += 1
                log.info("command %s delivered again; it runs only once", cmd.id)
                return
            self._seen[cmd.id] = None
            while len(self._seen) > REMEMBER_IDS:
                self._seen.popitem(last=False)
        log.info("command %s from %s: run %s on line %s (expires %s)", cmd.id, cmd.by or "?",
                 cmd.probe or "every probe", cmd.line, wire.format_time(cmd.expires_at))
        try:
            self._pool.submit(self._guarded, cmd)
        except RuntimeError:  # shutting down
            pass

    def _guarded(self, cmd: wire.Command) -> None:
        try:
            self.execute(cmd)
        except Exception as e:  # a bug: counted like a crashed probe
            if self.on_crash:
                self.on_crash(f"command {cmd.id}", e)
            else:
                log.exception("command %s crashed", cmd.id)

    # ------------------------------------------------------------------ worker
    def execute(self, cmd: wire.Command) -> list[Result]:
        """Run (or report expired) every probe the command asks for; returns what was recorded."""
        line = next((ln for ln in self.cfg.lines if ln.id == cmd.line), None)
        if line is None:
            log.warning("command %s asks for line %r, which this agent does not measure (lines: %s)", cmd.id,
                        cmd.line, ", ".join(ln.id for ln in self.cfg.lines))
            return []
        if cmd.probe is not None and cmd.probe not in line.probes:
            log.warning("command %s asks for probe %r on line %s, which is not configured there (probes: %s)",
                        cmd.id, cmd.probe, line.id, ", ".join(line.probes))
            return []
        names = [cmd.probe] if cmd.probe else list(line.probes)
        out: list[Result] = []
        for name in names:
            for r in self._run_probe(cmd, line, name):
                r.data["command_id"] = cmd.id
                self.record(r)
                out.append(r)
        return out

    def _run_probe(self, cmd: wire.Command, line: Any, name: str) -> list[Result]:
        probe, pcfg = REGISTRY[name], line.probes[name]
        key = f"{line.id}/{name}"
        while not self.claim(key):  # the same probe is running on this line (a scheduled bandwidth test)
            if cmd.expired(wire.utc_now()) or self._stop.is_set():
                return [self._expired(cmd, line, name, waited=True)]
            self._stop.wait(0.5)
        try:
            if cmd.expired(wire.utc_now()):
                return [self._expired(cmd, line, name)]
            try:
                return probe.run(line.binding, pcfg)
            except Exception as e:  # a broken probe: counted, and the collector still gets an answer
                if self.on_crash:
                    self.on_crash(key, e)
                else:
                    log.exception("%s crashed", key)
                return [probe.failed(line.binding, pcfg, Code.PROBE_CRASHED,
                                     f"{name} on line {line.id} crashed: {type(e).__name__}: {e}"[:1000])]
        finally:
            self.release(key)

    def _expired(self, cmd: wire.Command, line: Any, name: str, waited: bool = False) -> Result:
        why = " while it waited for the same probe to finish" if waited else " before it could run (agent offline?)"
        error = (f"the on-demand {name} test of line {line.id} (command {cmd.id}, asked at "
                 f"{wire.format_time(cmd.issued_at)} by {cmd.by or 'the collector'}) expired at "
                 f"{wire.format_time(cmd.expires_at)}{why}; it was not run")
        log.warning("%s", error)
        r = REGISTRY[name].failed(line.binding, line.probes[name], "command_expired", error)
        if r.kind == "reach":  # say the state the line is really in, not a made-up "down"
            known = self.reach_state(line.id) if self.reach_state else None
            if known:
                r.data["state"], r.data["since"] = known[0], wire.format_time(known[1])
        return r

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

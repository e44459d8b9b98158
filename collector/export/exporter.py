"""The time-series export as a feed consumer ("export.tsdb"): read the record's feed after my
position, turn events into points (points.py), write them synchronously, and move my
position only after the server accepted them. A server that is down stops nothing else: the
feed keeps growing, the position stays, and everything is sent in order when it answers.

One write request per step (at most ``batch_points`` points), so a step is accepted or not as
a whole; a crash between the write and the position sends the same points again, which the
server stores once (same series and time: InfluxDB overwrites, VictoriaMetrics with
``-dedup.minScrapeInterval=1ms`` keeps one).

Every ``contract_every_s`` (not in the feed): the contract of every registry line, every
site's staff and computers, the open incidents per site/line/kind, and the incidents closed
since last time (remembered in the record as position "export.incidents", in ms of closed_at).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Callable

from ..consumer import drain
from ..inventory import count as lan_count
from ..record import Record, RecordUnavailable
from ..registry import Registry
from .config import ExportConfig
from .points import (Point, contract_point, incident_closed_point, incidents_open_points, points_for,
                     site_point)
from .sink import ExportError, ExportRefused, Sink

log = logging.getLogger("linewatch.collector.export")
CONSUMER = "export.tsdb"
INCIDENTS_POSITION = "export.incidents"
BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 60.0

#: progress(position, head, events_done, points_done) after every accepted step
Progress = Callable[[int, int, int, int], None]


def computers(record: Record, site: str) -> int | None:
    """Computers of a site, counted as `status` counts them (collector/inventory.count): the
    LAN's computers plus the agents' own; before the first successful sweep the agents' own
    only (None when there is none)."""
    st = record.lan_state(site)
    n = lan_count(st.hosts, st.inventories)
    if not any(w.ok_at is not None for w in st.sweeps):
        return n.own or None
    return n.computers


def periodic_points(record: Record, registry: Registry, at: float) -> list[Point]:
    """The contract of every line and every site's staff / lines / computers at ``at``."""
    out: list[Point] = []
    for code in sorted(registry.sites):
        site = registry.sites[code]
        for line in site.lines:
            out.append(contract_point(site, line, at))
        try:
            n = computers(record, code)
        except Exception:  # noqa: BLE001 - the LAN count is a nicety; the staff numbers still go out
            log.exception("LAN state of site %s could not be read", code)
            n = None
        out.append(site_point(site, at, n))
    return out


class Exporter:
    def __init__(self, record: Record, registry: Registry, cfg: ExportConfig, clock: Callable[[], float] = time.time,
                 sink: Sink | None = None, progress: Progress | None = None):
        self.record = record
        self.registry = registry
        self.cfg = cfg
        self.clock = clock
        self.sink = sink or Sink(cfg)
        self.progress = progress
        self.stats = {"events": 0, "points": 0, "requests": 0, "failures": 0, "refused_points": 0,
                      "skipped_events": 0}
        self.last_error: str | None = None
        self.last_ok_at: float | None = None
        self._last_periodic: float | None = None
        self._open_keys: set[tuple[str, str | None, str]] = set()

    def close(self) -> None:
        self.sink.close()

    # ------------------------------------------------------------------ the consumer
    def lag(self) -> int:
        """Feed events not yet accepted by the server."""
        return max(0, self.record.feed_head() - self.record.position(CONSUMER))

    def step(self, limit: int = 5000) -> int:
        """Export up to ``limit`` feed events (at most batch_points points, one request).
        Returns how many events were read (0: caught up). Raises ExportError when the server
        did not accept them (the position did not move)."""
        pos = self.record.position(CONSUMER)
        events = self.record.read_feed(pos, limit)
        if not events:
            return 0
        points: list[Point] = []
        last = pos
        taken = 0
        for e in events:
            try:
                pts = points_for(e, self.registry)
            except Exception:  # noqa: BLE001 - one odd event must not stop the export
                log.exception("feed event %s (%s) could not be turned into points; skipped", e.pos, e.kind)
                pts = []
            if points and len(points) + len(pts) > self.cfg.batch_points:
                break  # the rest in the next request: one request per step
            if not pts:
                self.stats["skipped_events"] += 1
            points.extend(pts)
            last = e.pos
            taken += 1
        self._write(points)
        self.record.set_position(CONSUMER, last)
        self.stats["events"] += taken
        self.last_error = None
        self.last_ok_at = self.clock()
        if self.progress:
            self.progress(last, self.record.feed_head(), self.stats["events"], self.stats["points"])
        return taken

    def _write(self, points: list[Point]) -> None:
        try:
            self.sink.write(points)
        except ExportRefused as e:
            if not e.bad_data:
                raise
            self._write_isolating(points)
        self.stats["points"] += len(points)
        self.stats["requests"] = self.sink.requests

    def _write_isolating(self, points: list[Point]) -> None:
        """The server refused some of these points as data (400/422): find them by halving,
        log and drop only those (retrying them would stop the export for good)."""
        if len(points) == 1:
            try:
                self.sink.write(points)
            except ExportRefused as e:
                if not e.bad_data:
                    raise
                self.stats["refused_points"] += 1
                log.error("time-series server refused a point, dropped: %s (%s)", points[0].line_protocol()[:300],
                          e)
            return
        half = len(points) // 2
        for part in (points[:half], points[half:]):
            try:
                self.sink.write(part)
            except ExportRefused as e:
                if not e.bad_data:
                    raise
                self._write_isolating(part)

    # ------------------------------------------------------------------ not in the feed
    def periodic(self, force: bool = False) -> int:
        """Every contract_every_s: contracts, sites, open and newly closed incidents. Returns
        the number of points written (0: not due). Raises ExportError (retried next round)."""
        now = self.clock()
        if not force and self._last_periodic is not None and now - self._last_periodic < self.cfg.contract_every_s:
            return 0
        points = periodic_points(self.record, self.registry, now)
        live = self.record.incidents(live_only=True)
        counts: Counter = Counter((i.site, i.line, i.kind) for i in live)
        keys = set(counts)
        for k in self._open_keys - keys:
            counts[k] = 0  # had some, has none now
        since_ms = self.record.position(INCIDENTS_POSITION)
        closed = [i for i in self.record.incidents(since=since_ms / 1000.0)
                  if i.state == "closed" and i.closed_at is not None and i.closed_at * 1000 >= since_ms]
        for i in closed:
            counts.setdefault((i.site, i.line, i.kind), 0)
        points += incidents_open_points(dict(counts), self.registry, now)
        points += [p for p in (incident_closed_point(i, self.registry) for i in closed) if p is not None]
        self.sink.write(points)  # several requests if large: all idempotent (series, time)
        self._open_keys = keys
        if closed:
            newest = max(int(i.closed_at * 1000) for i in closed)  # type: ignore[operator]
            if newest > since_ms:
                self.record.set_position(INCIDENTS_POSITION, newest)
        self._last_periodic = now
        self.stats["points"] += len(points)
        return len(points)

    # ------------------------------------------------------------------ running
    def catch_up(self, budget_s: float = 5.0) -> int:
        return drain(self.step, budget_s)

    def run_forever(self, stop: threading.Event, wake: threading.Event | None = None, every_s: float = 1.0) -> None:
        """Until ``stop``: export, and on failure wait 1 s, 2 s, 4 s ... 60 s between tries."""
        wake = wake or threading.Event()
        backoff = BACKOFF_START_S
        caught_up_logged = True
        while not stop.is_set():
            try:
                n = self.catch_up()
                self.periodic()
                if backoff > BACKOFF_START_S:
                    log.info("time-series export works again: %s", self.cfg.target)
                backoff = BACKOFF_START_S
                self.last_error = None
                lag = self.lag()
                if lag > 10 * self.cfg.batch_points:
                    log.info("time-series export catching up: %d events behind", lag)
                    caught_up_logged = False
                    continue  # no pause while far behind
                if not caught_up_logged and lag == 0:
                    log.info("time-series export caught up")
                    caught_up_logged = True
                if n:
                    continue
            except (ExportError, RecordUnavailable) as e:
                self.stats["failures"] += 1
                if str(e) != self.last_error:
                    log.error("time-series export failed: %s; retrying in %.0f s (up to %.0f s apart)", e, backoff,
                              BACKOFF_MAX_S)
                self.last_error = str(e)
                stop.wait(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                continue
            except Exception as e:  # noqa: BLE001 - logged; the next round tries again
                self.stats["failures"] += 1
                self.last_error = str(e)
                log.exception("time-series export failed; retrying in %.0f s", backoff)
                stop.wait(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                continue
            wake.wait(every_s)
            wake.clear()

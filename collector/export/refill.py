"""Refill a new or wiped time-series server from the record: ``linewatch-collector export
--since DATE [--until DATE]``.

Reads the feed in position order (``read_feed`` pages, never the consumer's position: the
running collector's export is not disturbed), keeps the events measured in [since, until),
writes their points in requests of ``batch_points``, plus the contract of every line and
every site's staff every ``contract_every_s`` across the range and the incidents closed in it.
Writing a point twice is harmless (same series and time), so a refill can be repeated or
overlap what the running exporter sends.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, TextIO

from ..record import Record
from ..registry import Registry
from .config import ExportConfig
from .points import Point, contract_point, incident_closed_point, points_for, site_point
from .sink import ExportError, Sink

VN = timezone(timedelta(hours=7))
PAGE = 5000
#: tries of one write request before the command gives up (1 s doubling to 60 s between them)
RETRIES = 8


@dataclass
class RefillProgress:
    scanned: int        # feed events read
    total: int          # feed events to read (the whole feed: measured times are not in feed order)
    exported: int       # events in [since, until) written
    points: int         # points written
    elapsed_s: float
    done: bool = False

    @property
    def points_per_s(self) -> float:
        return self.points / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.scanned <= 0 or self.elapsed_s <= 0:
            return None
        return max(0.0, (self.total - self.scanned) * self.elapsed_s / self.scanned)

    def line(self) -> str:
        pct = 100.0 * self.scanned / self.total if self.total else 100.0
        eta = self.eta_s
        eta_txt = "done" if self.done else ("?" if eta is None else _dur(eta))
        return (f"export: {self.scanned}/{self.total} feed events read ({pct:.1f} %), {self.exported} in range "
                f"written, {self.points} points, {self.points_per_s:,.0f} points/s, "
                f"{self.elapsed_s:.0f} s elapsed, ETA {eta_txt}")


def _dur(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def printer(stream: TextIO | None = None, every_s: float = 2.0) -> Callable[[RefillProgress], None]:
    """A progress callback that prints a line to stderr at most every ``every_s`` (and the last)."""
    last = [0.0]

    def show(p: RefillProgress) -> None:
        now = time.monotonic()
        if p.done or now - last[0] >= every_s:
            last[0] = now
            print(p.line(), file=stream or sys.stderr, flush=True)
    return show


def parse_date(text: str, what: str = "--since") -> float:
    """YYYY-MM-DD (midnight, Vietnam time), YYYY-MM-DD HH:MM (Vietnam time) or ISO 8601 with a
    zone, to UTC seconds. ValueError with a message for the person who typed it."""
    t = text.strip()
    try:
        d = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a date: write 2026-11-01, \"2026-11-01 08:00\" (Vietnam time) or "
                         f"2026-11-01T01:00:00Z") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=VN)
    return d.timestamp()


def refill(record: Record, registry: Registry, cfg: ExportConfig, since: float, until: float | None = None,
           progress: Callable[[RefillProgress], None] | None = None, sink: Sink | None = None,
           retries: int | None = None) -> RefillProgress:
    """Write every point of [since, until) again. Returns the final progress; raises
    ExportError when the server keeps refusing (after ``retries`` tries with backoff)."""
    until = until if until is not None else time.time()
    retries = retries or RETRIES
    own = sink is None
    sink = sink or Sink(cfg)
    t0 = time.monotonic()
    first = record.read_feed(0, 1)
    head = record.feed_head()
    total = head - first[0].pos + 1 if first else 0
    origin = first[0].pos - 1 if first else 0
    st = RefillProgress(0, total, 0, 0, 0.0)
    buf: list[Point] = []

    def flush(final: bool = False) -> None:
        while len(buf) >= cfg.batch_points or (final and buf):
            chunk = buf[:cfg.batch_points]
            _write(sink, chunk, retries)
            del buf[:len(chunk)]
            st.points += len(chunk)

    try:
        # not in the feed: the contract and staff across the range, incidents closed in it
        t = since
        while t < until:
            for code in sorted(registry.sites):
                site = registry.sites[code]
                buf.extend(contract_point(site, line, t) for line in site.lines)
                buf.append(site_point(site, t))
            flush()
            t += cfg.contract_every_s
        for inc in record.incidents(since=since, until=until):
            if inc.state == "closed" and inc.closed_at is not None and since <= inc.closed_at < until:
                p = incident_closed_point(inc, registry)
                if p is not None:
                    buf.append(p)
        pos = 0
        while True:
            events = record.read_feed(pos, PAGE)
            if not events:
                break
            for e in events:
                if since <= e.at < until:
                    pts = points_for(e, registry)
                    if pts:
                        buf.extend(pts)
                        st.exported += 1
            pos = events[-1].pos
            st.scanned = min(total, pos - origin)
            flush()
            st.elapsed_s = time.monotonic() - t0
            if progress:
                progress(st)
        flush(final=True)
        st.scanned = st.total
        st.elapsed_s = time.monotonic() - t0
        st.done = True
        if progress:
            progress(st)
        return st
    finally:
        if own:
            sink.close()


def _write(sink: Sink, points: list[Point], retries: int) -> None:
    delay = 1.0
    for attempt in range(retries):
        try:
            sink.write(points)
            return
        except ExportError as e:
            if attempt == retries - 1 or not e.retry:
                raise
            print(f"export: {e}; retrying in {delay:.0f} s", file=sys.stderr, flush=True)
            time.sleep(delay)
            delay = min(60.0, delay * 2)

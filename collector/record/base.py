"""The record: the typed interface every other part of the collector uses. All SQL of the
record lives in this package; what crosses the boundary are the values of types.py."""
from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from linewatch.wire import LINE_KINDS

from . import lan as lan_sql
from . import rollup as rollup_math
from .backend import Backend
from .batch import Batch, dumps
from ..errors import RecordUnavailable
from .incidents import IncidentRecord
from .reports import ReportRecord
from .types import (Agent, BandwidthTest, Event, EventFilter, Gap, LanState, MaintenanceResult, Reject, Rollup,
                    RollupKey, SeqSummary, AGENT_STATE)

#: A hole between two received sequence numbers larger than any agent outbox can hold
#: (500,000 messages) is a jump -- a counter reset or a hostile number -- not lost messages.
MAX_GAP = 1_000_000
ROLLUP_CONSUMER = "record.rollup"
#: Raw rows deleted per transaction when pruning.
PRUNE_CHUNK = 50_000
_EVENT_COLS = "pos, kind, agent_id, site, line, at, received_at, ok, data, stream, seq, error_code, error"


def _event(r) -> Event:
    return Event(pos=int(r[0]), kind=r[1], agent_id=r[2], site=r[3], line=r[4], at=r[5], received_at=r[6],
                 ok=bool(r[7]), data=json.loads(r[8]), stream=r[9], seq=r[10], error_code=r[11], error=r[12])


class Record(IncidentRecord, ReportRecord):
    def __init__(self, backend: Backend):
        self._b = backend
        self._lock = threading.RLock()
        self.migrated = backend.migrate()
        if 4 in self.migrated:
            self._backfill_v4()

    def _backfill_v4(self) -> None:
        """Upgrading to schema step 4: fold what the rollup consumer already read (and not yet
        pruned) into the new tables, so the months before the upgrade get their availability
        and sequence figures too. Reach was not rolled up before, so it is folded now."""
        done, after = self.position(ROLLUP_CONSUMER), 0
        while after < done:
            with self.batch():
                rows = self._b.execute(f"SELECT {_EVENT_COLS} FROM feed WHERE pos > ? AND pos <= ? ORDER BY pos "
                                       "LIMIT 20000", (after, done)).fetchall()
                if not rows:
                    break
                self._fold(rows, ("reach",), with_tests=False)
            after = int(rows[-1][0])

    @property
    def where(self) -> str:
        return f"{self._b.name} {self._b.where}"

    @property
    def backend(self) -> str:
        return self._b.name

    def close(self) -> None:
        with self._lock:
            self._b.close()

    # -- writing ---------------------------------------------------------------------
    @contextmanager
    def batch(self, careful: bool = False) -> Iterator[Batch]:
        """One write transaction. Raises RecordUnavailable when the database cannot be
        written (nothing of the batch is kept); any other exception came from the data."""
        with self._lock:
            try:
                self._b.reconnect()
                self._b.begin_write()
            except RecordUnavailable:
                raise
            except Exception as e:
                if self._b.unavailable(e):
                    raise RecordUnavailable(f"{self.where}: {e}") from e
                raise
            b = Batch(self, careful)
            try:
                yield b
                b.finish()
                self._b.execute("COMMIT")
            except BaseException as e:
                try:
                    self._b.execute("ROLLBACK")
                except Exception:
                    pass  # the connection is gone; so is the transaction
                if isinstance(e, Exception) and self._b.unavailable(e):
                    raise RecordUnavailable(f"{self.where}: {e}") from e
                raise

    # -- reading ---------------------------------------------------------------------
    def _q(self, sql: str, params=()) -> list:
        with self._lock:
            return self._b.execute(sql, params).fetchall()

    def counters(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._q("SELECT name, value FROM counters ORDER BY name")}

    def agents(self) -> list[Agent]:
        cols = ("agent_id, province, site, state, state_at, last_seen_at, feed_state, version, hostname, uptime_s, "
                "queue_depth, queue_dropped, probe_errors, last_probe_error, heartbeat_at, clock_offset_s")
        return [Agent(*r) for r in self._q(f"SELECT {cols} FROM agents ORDER BY site, agent_id")]

    def rejects(self, limit: int = 100) -> list[Reject]:
        return [Reject(*r) for r in self._q("SELECT received_at, topic, reason, detail FROM rejects "
                                            "ORDER BY id DESC LIMIT ?", (limit,))]

    def events(self, f: EventFilter = EventFilter()) -> list[Event]:
        """Feed entries matching ``f``, in feed order."""
        where, params = [], []
        if f.kind is not None:
            kinds = (f.kind,) if isinstance(f.kind, str) else tuple(f.kind)
            where.append(f"kind IN ({','.join('?' * len(kinds))})")
            params += kinds
        for col, val in (("agent_id", f.agent_id), ("site", f.site), ("line", f.line)):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        for cond, val in (("seq >= ?", f.seq_min), ("seq <= ?", f.seq_max), ("at >= ?", f.at_from),
                          ("at < ?", f.at_to)):
            if val is not None:
                where.append(cond)
                params.append(val)
        if f.messages is not None:
            where.append("seq IS NOT NULL" if f.messages else "seq IS NULL")
        if f.ok is not None:
            where.append("ok = ?")
            params.append(int(f.ok))
        sql = f"SELECT {_EVENT_COLS} FROM feed" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY pos"
        if f.limit is not None:
            sql += " LIMIT ?"
            params.append(f.limit)
        return [_event(r) for r in self._q(sql, params)]

    def latest_by_kind(self, site: str, line: str) -> dict[str, Event]:
        """The newest measurement of each probe kind on one line."""
        out = {}
        for kind in LINE_KINDS:
            rows = self._q(f"SELECT {_EVENT_COLS} FROM feed WHERE site = ? AND line = ? AND kind = ? "
                           "ORDER BY at DESC LIMIT 1", (site, line, kind))
            if rows:
                out[kind] = _event(rows[0])
        return out

    def gaps(self, agent_id: str | None = None) -> list[Gap]:
        """Holes between received sequence numbers, per agent stream (jumps > MAX_GAP excluded).
        Numbers before the first that ever arrived are not counted (the collector may have
        started after the agent)."""
        return [g for g in self._holes(agent_id) if g.count <= MAX_GAP]

    def seq_summary(self) -> dict[str, SeqSummary]:
        out: dict[str, list[int]] = {}
        for g in self._holes(None):
            s = out.setdefault(g.agent_id, [0, 0])
            s[0 if g.count <= MAX_GAP else 1] += g.count if g.count <= MAX_GAP else 1
        streams = dict(self._q("SELECT agent_id, count(*) FROM streams GROUP BY agent_id"))
        return {a: SeqSummary(a, out.get(a, [0, 0])[0], out.get(a, [0, 0])[1], int(n)) for a, n in streams.items()}

    def _holes(self, agent_id: str | None) -> list[Gap]:
        q = "SELECT agent_id, stream, lo, hi FROM seq_ranges"
        rows = self._q(q + (" WHERE agent_id = ?" if agent_id else "") + " ORDER BY agent_id, stream, lo",
                       (agent_id,) if agent_id else ())
        return [Gap(a1, s1, hi1 + 1, lo2 - 1, lo2 - hi1 - 1)
                for (a1, s1, _l, hi1), (a2, s2, lo2, _h) in zip(rows, rows[1:]) if (a1, s1) == (a2, s2)]

    def lan_state(self, site: str) -> LanState:
        with self._lock:
            return lan_sql.lan_state(self._b, site)

    def size_bytes(self) -> int:
        with self._lock:
            return self._b.size_bytes()

    # -- the feed --------------------------------------------------------------------
    def read_feed(self, after: int, limit: int = 1000) -> list[Event]:
        """Up to ``limit`` events after position ``after``, in order."""
        return [_event(r) for r in self._q(f"SELECT {_EVENT_COLS} FROM feed WHERE pos > ? ORDER BY pos LIMIT ?",
                                           (after, limit))]

    def feed_head(self) -> int:
        return int(self._q("SELECT coalesce(max(pos), 0) FROM feed")[0][0])

    def position(self, consumer: str) -> int:
        rows = self._q("SELECT pos FROM consumers WHERE name = ?", (consumer,))
        return int(rows[0][0]) if rows else 0

    def positions(self) -> dict[str, int]:
        return {n: int(p) for n, p in self._q("SELECT name, pos FROM consumers ORDER BY name")}

    def set_position(self, consumer: str, pos: int) -> None:
        """Store a consumer's position (after its effect was acknowledged)."""
        with self.batch() as b:
            b.set_position(consumer, pos, time.time())

    # -- rollups and retention -------------------------------------------------------
    def rollup(self, max_events: int = 20_000) -> int:
        """The rollup consumer: fold feed events after its position into hourly rollups and
        per-test bandwidth results, and move the position, in one transaction. Returns the
        number of events read (0: caught up)."""
        with self.batch() as b:
            start = self.position(ROLLUP_CONSUMER)
            rows = self._b.execute(f"SELECT {_EVENT_COLS} FROM feed WHERE pos > ? ORDER BY pos LIMIT ?",
                                   (start, max_events)).fetchall()
            if not rows:
                return 0
            self._fold(rows, rollup_math.ROLLED_KINDS, with_tests=True)
            b.set_position(ROLLUP_CONSUMER, int(rows[-1][0]), time.time())
            return len(rows)

    def _fold(self, rows: list, kinds: tuple[str, ...], with_tests: bool) -> None:
        """Fold feed rows (inside the caller's transaction) into rollups of ``kinds``, bandwidth
        tests, state changes and per-hour sequence spans. Adding is idempotent per event only
        for tests and state changes (keyed by pos): rollups and seq_hours add, so every event
        must be folded once (the rollup consumer's position guarantees it)."""
        acc: dict[RollupKey, Rollup] = {}
        tests, changes = [], []
        seqs: dict[tuple[str, str, int], list] = {}
        for e in map(_event, rows):
            if e.seq is not None and e.stream is not None:
                h = seqs.setdefault((e.agent_id, e.stream, rollup_math.hour_of(e.at)), [e.site, 0, e.seq, e.seq])
                h[1] += 1
                h[2] = min(h[2], e.seq)
                h[3] = max(h[3], e.seq)
            if (change := rollup_math.state_change(e.kind, e.ok, e.error_code, e.at, e.data)) is not None:
                changes.append((e.pos, change[0], e.site, e.line or "", e.agent_id, change[1], change[2],
                                change[3]))
            if e.kind not in kinds or e.line is None:
                continue
            key = rollup_math.key_of(e.site, e.line, e.kind, e.agent_id, e.data, e.at)
            rollup_math.add(acc.setdefault(key, Rollup(key)), e.ok, e.data)
            if with_tests and e.kind == "bandwidth":
                tests.append((e.pos, e.site, e.line, e.agent_id, e.at, key.method, key.target, int(e.ok),
                              e.error_code, e.data.get("download_mbps"), e.data.get("upload_mbps")))
        for key, r in acc.items():
            k = (key.site, key.line, key.kind, key.hour, key.agent_id, key.target, key.method)
            old = self._b.execute("SELECT n, n_ok, stats FROM rollups WHERE site=? AND line=? AND kind=? AND "
                                  "hour=? AND agent_id=? AND target=? AND method=?", k).fetchone()
            if old is not None:
                r.n += old[0]
                r.n_ok += old[1]
                r.stats = rollup_math.merge_stats(json.loads(old[2]), r.stats)
            self._b.execute("INSERT INTO rollups VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT "
                            "(site, line, kind, hour, agent_id, target, method) DO UPDATE SET n = excluded.n, "
                            "n_ok = excluded.n_ok, stats = excluded.stats",
                            (key.site, key.line, key.kind, key.agent_id, key.target, key.method, key.hour,
                             r.n, r.n_ok, dumps(r.stats)))
        if tests:
            self._b.executemany("INSERT INTO bandwidth_tests VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                                "ON CONFLICT (pos) DO NOTHING", tests)
        if changes:
            self._b.executemany("INSERT INTO state_changes VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (pos) DO NOTHING",
                                changes)
        if seqs:
            self._b.executemany(
                "INSERT INTO seq_hours VALUES (?,?,?,?,?,?,?) ON CONFLICT (agent_id, stream, hour) DO UPDATE SET "
                "n = seq_hours.n + excluded.n, seq_min = LEAST(seq_hours.seq_min, excluded.seq_min), "
                "seq_max = GREATEST(seq_hours.seq_max, excluded.seq_max)",
                [(a, st, h, v[0], v[1], v[2], v[3]) for (a, st, h), v in seqs.items()])

    def mark_silent(self, offline_after_s: float, now: float | None = None) -> int:
        """Agents that said nothing for ``offline_after_s`` become 'silent' in the feed
        (once). Their next message makes them 'online' again."""
        now = now or time.time()
        n = 0
        with self.batch() as b:
            for agent_id, site, province in self._b.execute(
                    "SELECT agent_id, site, province FROM agents WHERE coalesce(feed_state, 'online') = 'online' "
                    "AND state <> 'offline' AND last_seen_at < ?", (now - offline_after_s,)).fetchall():
                row = self._b.execute("UPDATE agents SET feed_state = 'silent' WHERE agent_id = ? AND "
                                      "coalesce(feed_state, 'online') = 'online' RETURNING agent_id",
                                      (agent_id,)).fetchone()
                if row:
                    b.add_event(AGENT_STATE, agent_id, site, None, now, {"state": "silent", "province": province,
                                                                         "previous": "online"})
                    n += 1
        return n

    def prune(self, raw_days: float, rollup_days: float, now: float | None = None) -> MaintenanceResult:
        """Drop raw events older than ``raw_days`` that the rollup consumer has read, and
        rollups / bandwidth tests older than ``rollup_days``."""
        now = now or time.time()
        pruned = 0
        while True:  # in chunks: a month at once would grow SQLite's WAL by the whole month
            with self.batch():
                rolled = self.position(ROLLUP_CONSUMER)
                n = self._b.execute("DELETE FROM feed WHERE pos IN (SELECT pos FROM feed WHERE at < ? AND pos <= ? "
                                    "LIMIT ?)", (now - raw_days * 86400, rolled, PRUNE_CHUNK)).rowcount
            pruned += n
            if n < PRUNE_CHUNK:
                break
        with self.batch():
            cut = now - rollup_days * 86400
            pr = self._b.execute("DELETE FROM rollups WHERE hour < ?", (int(cut),)).rowcount
            self._b.execute("DELETE FROM bandwidth_tests WHERE at < ?", (cut,))
            self._b.execute("DELETE FROM state_changes WHERE at < ?", (cut,))
            self._b.execute("DELETE FROM seq_hours WHERE hour < ?", (int(cut),))
        return MaintenanceResult(pruned_events=pruned, pruned_rollups=pr)

    def rollups(self, site: str | None = None, line: str | None = None, kind: str | None = None,
                start: float | None = None, end: float | None = None) -> list[Rollup]:
        """Hourly rollups, [start, end) by hour start."""
        where, params = [], []
        for col, val in (("site", site), ("line", line), ("kind", kind)):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        if start is not None:
            where.append("hour >= ?")
            params.append(int(start))
        if end is not None:
            where.append("hour < ?")
            params.append(int(end))
        sql = ("SELECT site, line, kind, agent_id, target, method, hour, n, n_ok, stats FROM rollups" +
               (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY site, line, kind, hour")
        return [Rollup(RollupKey(s, ln, k, a, t, m, int(h)), int(n), int(nok), json.loads(st))
                for s, ln, k, a, t, m, h, n, nok, st in self._q(sql, params)]

    def bandwidth_tests(self, site: str | None = None, line: str | None = None, start: float | None = None,
                        end: float | None = None) -> list[BandwidthTest]:
        where, params = [], []
        for cond, val in (("site = ?", site), ("line = ?", line), ("at >= ?", start), ("at < ?", end)):
            if val is not None:
                where.append(cond)
                params.append(val)
        sql = ("SELECT pos, site, line, agent_id, at, method, target, ok, error_code, download_mbps, upload_mbps "
               "FROM bandwidth_tests" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY at, pos")
        return [BandwidthTest(int(p), s, ln, a, at, m, t, bool(ok), ec, d, u)
                for p, s, ln, a, at, m, t, ok, ec, d, u in self._q(sql, params)]

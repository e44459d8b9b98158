"""The collector's embedded record: SQLite, one file.

Sizing for a province (~150 communes x ~2 lines, latency every 5 min, heartbeat every
minute): ~300k rows/day. Raw rows are kept ``raw_days`` (default 45: the month being
reported plus margin) and rolled up per hour into ``rollup_hourly`` (kept ``rollup_days``,
default 400: a year of monthly reports), so the file stays at a few GB.

Durability: WAL with synchronous=FULL, and the collector acknowledges an MQTT message
only after the transaction holding it has committed.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from linewatch import wire

from . import inventory

SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY,
    province TEXT NOT NULL, site TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'unknown',       -- online | offline (from the retained status / LWT)
    state_at REAL,
    last_seen_at REAL,                            -- last message of any kind
    version TEXT, hostname TEXT,
    uptime_s REAL, queue_depth INTEGER, queue_dropped INTEGER, probe_errors INTEGER,
    last_probe_error TEXT, heartbeat_at REAL,
    clock_offset_s REAL                           -- agent clock minus collector clock at last heartbeat
);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL, stream TEXT NOT NULL DEFAULT '', seq INTEGER NOT NULL,
    site TEXT NOT NULL, line TEXT, kind TEXT NOT NULL,
    measured_at REAL NOT NULL, received_at REAL NOT NULL,
    ok INTEGER NOT NULL, error_code TEXT, error TEXT,
    data TEXT NOT NULL,
    UNIQUE (agent_id, stream, seq)
);
-- Which sequence numbers arrived, as contiguous ranges per agent stream. The holes between
-- ranges are messages not (yet) received: data loss unless a late delivery fills them.
-- Kept apart from measurements so that pruning raw rows does not forget what arrived.
CREATE TABLE IF NOT EXISTS seq_ranges (
    agent_id TEXT NOT NULL, stream TEXT NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
    PRIMARY KEY (agent_id, stream, lo)
);
CREATE INDEX IF NOT EXISTS seq_ranges_hi ON seq_ranges (agent_id, stream, hi);
CREATE INDEX IF NOT EXISTS measurements_line_time ON measurements (site, line, kind, measured_at);
CREATE INDEX IF NOT EXISTS measurements_time ON measurements (measured_at);
CREATE TABLE IF NOT EXISTS rejects (
    id INTEGER PRIMARY KEY, received_at REAL NOT NULL, topic TEXT NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, payload_head BLOB
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rollup_hourly (
    site TEXT NOT NULL, line TEXT NOT NULL, kind TEXT NOT NULL, hour REAL NOT NULL,
    n INTEGER NOT NULL, n_ok INTEGER NOT NULL,
    stats TEXT NOT NULL,                          -- {field: [min, avg, max]} over the hour
    PRIMARY KEY (site, line, kind, hour)
);
"""

MAX_REJECTS_KEPT = 10_000


@dataclass(frozen=True)
class Stored:
    id: int | None  # None: duplicate of an already stored (agent_id, seq)


class Store:
    def __init__(self, path: Path | str):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.executescript(SCHEMA)
        self.db.executescript(inventory.SCHEMA)  # LAN inventory tables (collector/inventory.py)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # -- writes (always inside transaction()) ------------------------------------------
    def transaction(self) -> "_Tx":
        return _Tx(self)

    def insert_measurement(self, m: wire.Message, received_at: float) -> Stored:
        stream = m.stream or ""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO measurements (agent_id, stream, seq, site, line, kind, measured_at, received_at,"
            " ok, error_code, error, data) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (m.agent_id, stream, m.seq, m.site, m.line, m.kind, m.measured_at.timestamp(), received_at, int(m.ok),
             m.error_code, m.error, json.dumps(m.data, ensure_ascii=False)))
        if cur.rowcount == 0:
            self.bump("duplicates")
            return Stored(None)
        self._note_seq(m.agent_id, stream, m.seq)
        return Stored(cur.lastrowid)

    def _note_seq(self, agent_id: str, stream: str, seq: int) -> None:
        """Add seq to the agent's received ranges, merging with its neighbours."""
        left = self.db.execute("SELECT lo FROM seq_ranges WHERE agent_id=? AND stream=? AND hi=?",
                               (agent_id, stream, seq - 1)).fetchone()
        right = self.db.execute("SELECT hi FROM seq_ranges WHERE agent_id=? AND stream=? AND lo=?",
                                (agent_id, stream, seq + 1)).fetchone()
        if right:
            self.db.execute("DELETE FROM seq_ranges WHERE agent_id=? AND stream=? AND lo=?",
                            (agent_id, stream, seq + 1))
        hi = right[0] if right else seq
        if left:
            self.db.execute("UPDATE seq_ranges SET hi=? WHERE agent_id=? AND stream=? AND lo=?",
                            (hi, agent_id, stream, left[0]))
        else:
            self.db.execute("INSERT INTO seq_ranges VALUES (?,?,?,?)", (agent_id, stream, seq, hi))

    def gaps(self, agent_id: str | None = None) -> list[dict[str, Any]]:
        """Missing sequence numbers between what arrived, per agent stream: [{agent_id,
        stream, first_missing, last_missing, count}]. Numbers before the first one that ever
        arrived are not counted (the collector may have started later than the agent)."""
        with self._lock:
            q = "SELECT agent_id, stream, lo, hi FROM seq_ranges"
            rows = self.db.execute(q + (" WHERE agent_id = ?" if agent_id else "") +
                                   " ORDER BY agent_id, stream, lo", (agent_id,) if agent_id else ()).fetchall()
        out = []
        for (a1, s1, _lo1, hi1), (a2, s2, lo2, _hi2) in zip(rows, rows[1:]):
            if (a1, s1) == (a2, s2):
                out.append({"agent_id": a1, "stream": s1, "first_missing": hi1 + 1, "last_missing": lo2 - 1,
                            "count": lo2 - hi1 - 1})
        return out

    def touch_agent(self, m: wire.Message, received_at: float, **fields: Any) -> None:
        self.db.execute("INSERT INTO agents (agent_id, province, site, last_seen_at) VALUES (?,?,?,?) "
                        "ON CONFLICT(agent_id) DO UPDATE SET province=excluded.province, site=excluded.site, "
                        "last_seen_at=max(coalesce(last_seen_at, 0), excluded.last_seen_at)",
                        (m.agent_id, m.province, m.site, received_at))
        if fields:
            cols = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(f"UPDATE agents SET {cols} WHERE agent_id = ?", (*fields.values(), m.agent_id))

    def newer_heartbeat(self, m: wire.Message) -> bool:
        row = self.db.execute("SELECT heartbeat_at FROM agents WHERE agent_id = ?", (m.agent_id,)).fetchone()
        return row is None or row[0] is None or row[0] < m.measured_at.timestamp()

    def insert_reject(self, topic: str, reason: str, detail: str, payload: bytes, received_at: float) -> None:
        self.db.execute("INSERT INTO rejects (received_at, topic, reason, detail, payload_head) VALUES (?,?,?,?,?)",
                        (received_at, topic[:300], reason, detail[:500], payload[:200]))
        self.bump(f"rejected.{reason}")
        # keep the table bounded under a flood of garbage; the counters keep the totals
        self.db.execute("DELETE FROM rejects WHERE id <= (SELECT max(id) FROM rejects) - ?", (MAX_REJECTS_KEPT,))

    def bump(self, name: str, by: int = 1) -> None:
        self.db.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
                        (name, by, by))

    # -- reads ---------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self.db.execute("SELECT name, value FROM counters ORDER BY name"))

    def agents(self) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.db.execute("SELECT * FROM agents ORDER BY site, agent_id")
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, row)) for row in cur]

    def latest(self, site: str, line: str) -> dict[str, Any] | None:
        with self._lock:
            cur = self.db.execute(
                "SELECT agent_id, seq, kind, measured_at, received_at, ok, error_code, error, data "
                "FROM measurements WHERE site = ? AND line = ? ORDER BY measured_at DESC LIMIT 1", (site, line))
            row = cur.fetchone()
            if row is None:
                return None
            cols = [c[0] for c in cur.description]
            d = dict(zip(cols, row))
            d["data"] = json.loads(d["data"])
            return d

    def measurements(self, where: str = "1=1", params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.db.execute(f"SELECT * FROM measurements WHERE {where} ORDER BY measured_at, id", tuple(params))
            cols = [c[0] for c in cur.description]
            out = []
            for row in cur:
                d = dict(zip(cols, row))
                d["data"] = json.loads(d["data"])
                out.append(d)
            return out

    def rejects(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.db.execute("SELECT received_at, topic, reason, detail FROM rejects ORDER BY id DESC LIMIT ?",
                                  (limit,))
            return [dict(zip(("received_at", "topic", "reason", "detail"), r)) for r in cur]

    # -- retention -----------------------------------------------------------------------
    def rollup_and_prune(self, raw_days: float = 45, rollup_days: float = 400, now: float | None = None) -> dict[str, int]:
        """Roll finished hours up, then drop raw rows older than ``raw_days`` whose hour
        has been rolled up, and rollups older than ``rollup_days``."""
        now = now or time.time()
        done_before = (now // 3600) * 3600
        with self.transaction():
            start = self.db.execute("SELECT value FROM counters WHERE name='rollup.done_until'").fetchone()
            start_hour = start[0] if start else None
            if start_hour is None:
                first = self.db.execute("SELECT min(measured_at) FROM measurements").fetchone()[0]
                start_hour = (first // 3600) * 3600 if first else done_before
            n_rolled = self._rollup(start_hour, done_before) if start_hour < done_before else 0
            self.db.execute("INSERT INTO counters VALUES ('rollup.done_until', ?) "
                            "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (int(done_before),))
            raw_cut = min(now - raw_days * 86400, done_before)
            pruned = self.db.execute("DELETE FROM measurements WHERE measured_at < ?", (raw_cut,)).rowcount
            self.db.execute("DELETE FROM rollup_hourly WHERE hour < ?", (now - rollup_days * 86400,))
        return {"rolled_hours": n_rolled, "pruned_raw": pruned}

    def _rollup(self, start: float, end: float) -> int:
        # Late (buffered) data for an already rolled-up hour re-rolls that hour: recompute
        # every hour that received rows since the last run, not just the new ones.
        hours = self.db.execute(
            "SELECT DISTINCT site, coalesce(line, ''), kind, CAST(measured_at / 3600 AS INTEGER) * 3600 "
            "FROM measurements WHERE measured_at < ? AND (measured_at >= ? OR received_at >= ?)",
            (end, start, start)).fetchall()
        for site, line, kind, hour in hours:
            rows = self.db.execute(
                "SELECT ok, data FROM measurements WHERE site=? AND coalesce(line,'')=? AND kind=? "
                "AND measured_at >= ? AND measured_at < ?", (site, line, kind, hour, hour + 3600)).fetchall()
            stats: dict[str, list[float]] = {}
            for _ok, data in rows:
                for k, v in json.loads(data).items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        stats.setdefault(k, []).append(float(v))
            summary = {k: [min(v), sum(v) / len(v), max(v)] for k, v in stats.items()}
            self.db.execute("INSERT OR REPLACE INTO rollup_hourly VALUES (?,?,?,?,?,?,?)",
                            (site, line, kind, hour, len(rows), sum(r[0] for r in rows), json.dumps(summary)))
        return len(hours)


class _Tx:
    def __init__(self, store: Store):
        self.store = store

    def __enter__(self) -> Store:
        self.store._lock.acquire()
        self.store.db.execute("BEGIN IMMEDIATE")
        return self.store

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.store.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            self.store._lock.release()

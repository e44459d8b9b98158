"""The agent's on-disk outbox: every message is written here (and its sequence number
allocated) before it is published, and deleted only after the broker's PUBACK.

SQLite in WAL mode with synchronous=FULL: a committed row survives kill -9 and power
loss. The sequence counter lives in the same database and is advanced in the same
transaction as the row, so numbers are never reused across restarts -- the collector relies
on (agent_id, seq) being unique.

Bounds: at most ``max_messages`` rows and nothing older than ``max_age_s`` (the collector
refuses measurements older than 120 days anyway); what a bound removes is counted in
``dropped`` and reported in every heartbeat, so the loss is visible, never silent.

A full disk: the message is held in memory (at most ``spill_max``) with its sequence
number, published from there like any other, and written to disk as soon as space is
free again. Only a crash while the disk is full can lose those.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from linewatch.wire import Message

log = logging.getLogger("linewatch.agent.outbox")


@dataclass(frozen=True)
class Pending:
    seq: int
    topic: str
    payload: bytes
    created: float


class Outbox:
    def __init__(self, path: Path, max_messages: int = 500_000, max_age_s: float = 60 * 86400,
                 spill_max: int = 20_000):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_messages = max_messages
        self.max_age_s = max_age_s
        self.spill_max = spill_max
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS outbox (
                seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL,
                created REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT OR IGNORE INTO counters VALUES ('seq', 0), ('dropped', 0);
            """
        )
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('stream', ?)", (os.urandom(8).hex(),))
        #: this outbox's sequence stream (see wire.STREAM_RE): new folder, new stream
        self.stream: str = self._db.execute("SELECT value FROM meta WHERE name='stream'").fetchone()[0]
        counters = dict(self._db.execute("SELECT name, value FROM counters"))
        self._last_seq: int = counters["seq"]
        self._dropped: int = counters["dropped"]
        self._dropped_unsaved = 0  # drops that happened while the disk was full
        self._depth: int = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        self._spill: dict[int, Pending] = {}
        self._acked_unsaved: set[int] = set()
        self.disk_full: str | None = None  # the reason, while the disk refuses writes

    # ------------------------------------------------------------------ writing
    def put(self, make: Callable[[int], Message], now: float | None = None) -> Message:
        """Allocate the next sequence number, build the message with it, store it durably."""
        now = now or time.time()
        with self._lock:
            seq = self._last_seq + 1
            msg = make(seq)
            p = Pending(seq, msg.topic, msg.to_json(), now)
            self._last_seq = seq
            if self._spill:
                self._flush_spill_locked()
            if self._spill or not self._write_locked([p]):
                self._hold_in_memory_locked(p)
            return msg

    def _write_locked(self, rows: list[Pending]) -> bool:
        """One transaction: the rows, the counter, the bounds. False if the disk refused."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT INTO outbox(seq, topic, payload, created) VALUES (?,?,?,?)",
                                 [(r.seq, r.topic, r.payload, r.created) for r in rows])
            self._db.execute("UPDATE counters SET value = max(value, ?) WHERE name='seq'", (rows[-1].seq,))
            over = self._depth + len(rows) - self.max_messages
            dropped = self._dropped_unsaved
            if over > 0:  # oldest go first; the loss is counted and reported
                dropped += self._db.execute("DELETE FROM outbox WHERE seq IN "
                                            "(SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (over,)).rowcount
            if dropped:
                self._db.execute("UPDATE counters SET value = value + ? WHERE name='dropped'", (dropped,))
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as e:
            self._rollback()
            if not self.disk_full:
                log.error("cannot write measurements to %s (%s): the disk is probably full. Measurements are "
                          "kept in memory (up to %d) and sent as usual, but a restart now would lose them: "
                          "free some disk space on this computer.", self.path, e, self.spill_max)
            self.disk_full = str(e)
            return False
        self._depth += len(rows) - max(over, 0)
        self._dropped += dropped - self._dropped_unsaved
        self._dropped_unsaved = 0
        if self.disk_full:
            log.warning("disk space is back: %d measurements held in memory are safely on disk again", len(rows))
            self.disk_full = None
        return True

    def _rollback(self) -> None:
        if self._db.in_transaction:  # SQLite may already have rolled back by itself (disk full)
            self._db.execute("ROLLBACK")

    def _hold_in_memory_locked(self, p: Pending) -> None:
        self._spill[p.seq] = p
        if len(self._spill) > self.spill_max:
            del self._spill[min(self._spill)]
            self._dropped += 1
            self._dropped_unsaved += 1

    def _flush_spill_locked(self) -> None:
        rows = [self._spill[s] for s in sorted(self._spill)]
        if self._write_locked(rows):
            self._spill.clear()

    def needs_retry(self) -> bool:
        """Whether :meth:`retry_disk` has work: messages held in memory, or acknowledgements
        not yet written (the disk was full)."""
        return bool(self._spill or self._acked_unsaved)

    def retry_disk(self) -> None:
        """Called periodically: move messages held in memory back to disk if space is free."""
        with self._lock:
            if self._spill:
                self._flush_spill_locked()
            if self._acked_unsaved:
                self._ack_locked(set(self._acked_unsaved))

    def expire(self, now: float | None = None) -> int:
        """Drop messages older than max_age_s (counted as dropped)."""
        cutoff = (now or time.time()) - self.max_age_s
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                n = self._db.execute("DELETE FROM outbox WHERE created < ?", (cutoff,)).rowcount
                if n:
                    self._db.execute("UPDATE counters SET value = value + ? WHERE name='dropped'", (n,))
                self._db.execute("COMMIT")
            except sqlite3.OperationalError:
                self._rollback()
                return 0
            self._depth -= n
            self._dropped += n
            if n:
                log.warning("dropped %d measurements older than %d days that could never be sent",
                            n, self.max_age_s // 86400)
            return n

    # ------------------------------------------------------------------ reading / acking
    def pending(self, limit: int, exclude: set[int] | frozenset[int] = frozenset(),
                min_seq: int = 0, max_seq: int | None = None,
                exclude_topics: frozenset[str] = frozenset()) -> list[Pending]:
        """Oldest first, seq in (min_seq, max_seq], not in ``exclude`` (already in flight, or
        held back) and not on a topic of ``exclude_topics`` (the broker refuses it for now)."""
        if limit <= 0:
            return []
        hi = max_seq if max_seq is not None else 2**63 - 1
        topics = sorted(exclude_topics)
        not_on = f" AND topic NOT IN ({','.join('?' * len(topics))})" if topics else ""
        with self._lock:
            skip = exclude | self._acked_unsaved
            rows = self._db.execute(f"SELECT seq, topic, payload, created FROM outbox WHERE seq > ? AND seq <= ?"
                                    f"{not_on} ORDER BY seq LIMIT ?",
                                    (min_seq, hi, *topics, limit + len(skip))).fetchall()
            out = [Pending(*r) for r in rows if r[0] not in skip]
            out += [p for s, p in sorted(self._spill.items())
                    if min_seq < s <= hi and s not in exclude and p.topic not in exclude_topics]
        out.sort(key=lambda p: p.seq)
        return out[:limit]

    def ack_many(self, seqs: list[int]) -> None:
        with self._lock:
            self._ack_locked(seqs)

    def _ack_locked(self, seqs: list[int] | set[int]) -> None:
        seqs = [s for s in seqs if self._spill.pop(s, None) is None]  # the rest were only in memory
        if not seqs:
            return
        try:
            self._db.execute("BEGIN")
            n = 0
            for s in seqs:
                n += self._db.execute("DELETE FROM outbox WHERE seq = ?", (s,)).rowcount
            self._db.execute("COMMIT")
        except sqlite3.OperationalError:
            # Even a delete can fail on a full disk: remember the acknowledgement and do not
            # send those again; retry_disk() deletes them when space is back.
            self._rollback()
            self._acked_unsaved.update(seqs)
            return
        self._acked_unsaved.difference_update(seqs)
        self._depth -= n

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._last_seq

    def depth(self) -> int:
        with self._lock:
            return self._depth - len(self._acked_unsaved) + len(self._spill)

    def dropped(self) -> int:
        with self._lock:
            return self._dropped

    def close(self) -> None:
        with self._lock:
            self._db.close()

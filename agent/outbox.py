"""The agent's on-disk outbox: every message is written here (and its sequence number
allocated) before it is published, and deleted only after the broker's PUBACK.

SQLite in WAL mode with synchronous=FULL: a committed row survives kill -9 and power
loss. The sequence counter lives in the same database, so numbers are never reused
across restarts -- the collector relies on (agent_id, seq) being unique.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from linewatch.wire import Message


@dataclass(frozen=True)
class Pending:
    seq: int
    topic: str
    payload: bytes


class OutboxFull(Exception):
    pass


class Outbox:
    def __init__(self, path: Path, max_messages: int = 200_000):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_messages = max_messages
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
            INSERT OR IGNORE INTO counters VALUES ('seq', 0), ('dropped', 0);
            """
        )

    def put(self, make: Callable[[int], Message]) -> Message:
        """Allocate the next sequence number, build the message with it, store it durably."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._db.execute("UPDATE counters SET value = value + 1 WHERE name='seq' "
                                       "RETURNING value").fetchone()[0]
                msg = make(seq)
                self._db.execute("INSERT INTO outbox(seq, topic, payload, created) VALUES (?,?,?,?)",
                                 (seq, msg.topic, msg.to_json(), time.time()))
                n = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
                if n > self.max_messages:  # oldest go first; the loss is counted and reported
                    over = n - self.max_messages
                    self._db.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)",
                                     (over,))
                    self._db.execute("UPDATE counters SET value = value + ? WHERE name='dropped'", (over,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return msg

    def pending(self, limit: int, exclude: set[int] | frozenset[int] = frozenset()) -> list[Pending]:
        with self._lock:
            rows = self._db.execute("SELECT seq, topic, payload FROM outbox ORDER BY seq LIMIT ?",
                                    (limit + len(exclude),)).fetchall()
        return [Pending(s, t, p) for s, t, p in rows if s not in exclude][:limit]

    def ack_many(self, seqs: list[int]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            self._db.execute("COMMIT")

    def depth(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def dropped(self) -> int:
        with self._lock:
            return self._db.execute("SELECT value FROM counters WHERE name='dropped'").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

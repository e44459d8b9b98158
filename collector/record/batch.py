"""The write side of the record: one batch of agent messages in one transaction.

Per-message work that can be deferred (counters, "agent seen", sequence ranges) is kept in
memory and written once per batch, so a batch of 500 messages costs about 500 feed inserts
and a handful of other statements. In ``careful`` mode (used to find the one message that
broke a batch) every message runs in its own savepoint and writes everything at once, so a
failure undoes exactly that message.
"""
from __future__ import annotations

import json
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from linewatch.wire import LINE_KINDS

from . import lan as lan_sql
from .types import AGENT_STATE, Heartbeat

if TYPE_CHECKING:
    from linewatch.wire import Message

    from .base import Record

#: Streams remembered per agent; a new stream id per message (hostile) forgets the oldest.
MAX_STREAMS_PER_AGENT = 8
MAX_REJECTS_KEPT = 10_000
_FEED_COLS = "kind, agent_id, stream, seq, site, line, at, received_at, ok, error_code, error, data"
_ROW_SLOTS = "(?,?,?,?,?,?,?,?,?,?,?,?)"
#: rows per multi-row INSERT (12 parameters each: well under SQLite's 32,766 and PostgreSQL's 65,535)
_ROWS_PER_INSERT = 500
_MULTI_INSERT: dict[int, str] = {}


def dumps(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@dataclass
class _Pending:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seen: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # agent -> (province, site, at)
    seqs: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    stream_at: dict[tuple[str, str], float] = field(default_factory=dict)
    heartbeats: dict[str, tuple[str, str, float, Heartbeat]] = field(default_factory=dict)  # newest per agent

    def fold(self, other: "_Pending") -> None:
        for k, v in other.counts.items():
            self.counts[k] += v
        for a, (p, s, t) in other.seen.items():
            old = self.seen.get(a)
            self.seen[a] = (p, s, max(t, old[2]) if old else t)
        for k, v in other.seqs.items():
            self.seqs[k].extend(v)
        for k, t in other.stream_at.items():
            self.stream_at[k] = max(t, self.stream_at.get(k, t))
        for a, hb in other.heartbeats.items():
            if a not in self.heartbeats or self.heartbeats[a][3].heartbeat_at < hb[3].heartbeat_at:
                self.heartbeats[a] = hb


class Batch:
    def __init__(self, record: "Record", careful: bool):
        self.rec = record
        self.db = record._b
        self.careful = careful
        self._all = _Pending()
        self._cur = self._all

    # -- message scope ---------------------------------------------------------------
    @contextmanager
    def message(self) -> Iterator[None]:
        """One message's writes. Careful mode: a savepoint, undone on any exception."""
        if not self.careful:
            yield
            return
        self.db.execute("SAVEPOINT msg")
        self._cur = _Pending()
        try:
            yield
            self._flush(self._cur)
        except BaseException:
            self.db.execute("ROLLBACK TO SAVEPOINT msg")
            self.db.execute("RELEASE SAVEPOINT msg")
            raise
        finally:
            self._cur = self._all
        self.db.execute("RELEASE SAVEPOINT msg")

    def finish(self) -> None:
        self._flush(self._all)

    # -- agent messages --------------------------------------------------------------
    def add_messages(self, msgs: list[tuple["Message", float]]) -> list[int | None]:
        """Append many agent messages to the feed in one statement (one round trip to
        PostgreSQL); positions in the order given, None for a redelivery."""
        out: list[int | None] = [None] * len(msgs)
        first: dict[tuple[str, str, int], int] = {}
        rows = []
        for i, (m, received_at) in enumerate(msgs):
            key = (m.agent_id, m.stream or "", m.seq)
            self.seen(m.agent_id, m.province, m.site, received_at)
            if key in first:
                continue  # the same message twice in one batch
            first[key] = i
            rows.append(self._row(m, received_at))
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start:start + _ROWS_PER_INSERT]
            sql = _MULTI_INSERT.get(len(chunk)) or _MULTI_INSERT.setdefault(
                len(chunk), f"INSERT INTO feed ({_FEED_COLS}) VALUES " + ",".join([_ROW_SLOTS] * len(chunk)) +
                " ON CONFLICT (agent_id, stream, seq) DO NOTHING RETURNING pos, agent_id, stream, seq")
            for pos, agent_id, stream, seq in self.db.execute(sql, [v for r in chunk for v in r]).fetchall():
                out[first[(agent_id, stream, int(seq))]] = int(pos)
        for i, (m, received_at) in enumerate(msgs):
            if out[i] is None:
                self.count("duplicates")
            else:
                stream = m.stream or ""
                self._cur.seqs[(m.agent_id, stream)].append(m.seq)
                self._cur.stream_at[(m.agent_id, stream)] = received_at
        return out

    @staticmethod
    def _row(m: "Message", received_at: float) -> tuple:
        # only line probes belong to a line, whatever an agent message claims
        line = m.line if m.kind in LINE_KINDS else None
        return (m.kind, m.agent_id, m.stream or "", m.seq, m.site, line, m.measured_at.timestamp(), received_at,
                int(m.ok), m.error_code, m.error, dumps(m.data))

    def add_message(self, m: "Message", received_at: float) -> int | None:
        """Append one agent message to the feed. Returns its position, or None when the
        same (agent, stream, seq) is already there (a redelivery)."""
        stream = m.stream or ""
        row = self.db.execute(f"INSERT INTO feed ({_FEED_COLS}) VALUES {_ROW_SLOTS} "
                              "ON CONFLICT (agent_id, stream, seq) DO NOTHING RETURNING pos",
                              self._row(m, received_at)).fetchone()
        self.seen(m.agent_id, m.province, m.site, received_at)
        if row is None:
            self.count("duplicates")
            return None
        self._cur.seqs[(m.agent_id, stream)].append(m.seq)
        self._cur.stream_at[(m.agent_id, stream)] = received_at
        return int(row[0])

    def seen(self, agent_id: str, province: str, site: str, at: float) -> None:
        old = self._cur.seen.get(agent_id)
        self._cur.seen[agent_id] = (province, site, max(at, old[2]) if old else at)

    def count(self, name: str, by: int = 1) -> None:
        self._cur.counts[name] += by

    def agent_status(self, m: "Message", received_at: float, state: str, version: str | None) -> None:
        """The agent's retained online/offline (or its last will): its current state."""
        self._touch_now(m.agent_id, m.province, m.site, received_at)
        self.db.execute("UPDATE agents SET state = ?, state_at = ?, version = coalesce(?, version) "
                        "WHERE agent_id = ?", (state, received_at, version, m.agent_id))
        self.set_feed_state(m.agent_id, m.site, m.province, state, received_at)

    def set_feed_state(self, agent_id: str, site: str, province: str, state: str, at: float,
                       only_from: str | None = None) -> bool:
        """Write an agent_state event when the agent's state changes (once, even with two
        collectors: the update is conditional)."""
        cond, params = ("feed_state = ?", (only_from,)) if only_from else \
            ("(feed_state IS NULL OR feed_state <> ?)", (state,))
        row = self.db.execute(f"UPDATE agents SET feed_state = ? WHERE agent_id = ? AND {cond} "
                              "RETURNING agent_id", (state, agent_id, *params)).fetchone()
        if row is None:
            return False
        self.add_event(AGENT_STATE, agent_id, site, None, at, {"state": state, "province": province,
                                                                "previous": only_from})
        return True

    def heartbeat(self, m: "Message", received_at: float, hb: Heartbeat) -> None:
        """The newest heartbeat describes the agent (a replayed old one does not). Written
        once per agent and batch, with the newest of the batch."""
        old = self._cur.heartbeats.get(m.agent_id)
        if old is None or old[3].heartbeat_at < hb.heartbeat_at:
            self._cur.heartbeats[m.agent_id] = (m.province, m.site, received_at, hb)

    def _write_heartbeat(self, agent_id: str, province: str, site: str, received_at: float, hb: Heartbeat) -> None:
        self._touch_now(agent_id, province, site, received_at)
        self.db.execute(
            "UPDATE agents SET version=?, hostname=?, uptime_s=?, queue_depth=?, queue_dropped=?, probe_errors=?, "
            "last_probe_error=?, clock_offset_s=?, heartbeat_at=? WHERE agent_id=? AND coalesce(heartbeat_at, 0) < ?",
            (hb.version, hb.hostname, hb.uptime_s, hb.queue_depth, hb.queue_dropped, hb.probe_errors,
             hb.last_probe_error, hb.clock_offset_s, hb.heartbeat_at, agent_id, hb.heartbeat_at))

    def apply_lan(self, m: "Message", pos: int) -> None:
        for change in lan_sql.apply_lan(self.db, m):
            self.add_event("lan_host", m.agent_id, m.site, None, m.measured_at.timestamp(), change)

    def apply_inventory(self, m: "Message") -> None:
        lan_sql.apply_inventory(self.db, m)

    def add_event(self, kind: str, agent_id: str, site: str, line: str | None, at: float,
                  data: dict[str, Any]) -> int:
        import time

        row = self.db.execute(
            "INSERT INTO feed (kind, agent_id, site, line, at, received_at, ok, data) VALUES (?,?,?,?,?,?,?,?) "
            "RETURNING pos", (kind, agent_id, site, line, at, time.time(), 1, dumps(data))).fetchone()
        return int(row[0])

    def reject(self, topic: str, reason: str, detail: str, payload: bytes, received_at: float) -> None:
        """Keep a refused or quarantined message (bounded), with its reason."""
        self.db.execute("INSERT INTO rejects (received_at, topic, reason, detail, payload_head) VALUES (?,?,?,?,?)",
                        (received_at, _storable(topic[:300]), reason, _storable(detail[:500]), bytes(payload[:200])))
        self.count(f"rejected.{reason}")
        self.db.execute("DELETE FROM rejects WHERE id <= (SELECT max(id) FROM rejects) - ?", (MAX_REJECTS_KEPT,))

    def set_position(self, consumer: str, pos: int, now: float) -> None:
        self.db.execute("INSERT INTO consumers VALUES (?,?,?) ON CONFLICT (name) DO UPDATE SET pos = excluded.pos, "
                        "updated_at = excluded.updated_at", (consumer, pos, now))

    # -- deferred writes -------------------------------------------------------------
    def _touch_now(self, agent_id: str, province: str, site: str, at: float) -> None:
        self.db.execute("INSERT INTO agents (agent_id, province, site, last_seen_at) VALUES (?,?,?,?) "
                        "ON CONFLICT (agent_id) DO UPDATE SET province = excluded.province, site = excluded.site, "
                        "last_seen_at = GREATEST(coalesce(agents.last_seen_at, 0), excluded.last_seen_at)",
                        (agent_id, province, site, at))

    def _flush(self, p: _Pending) -> None:
        for agent_id, (province, site, received_at, hb) in sorted(p.heartbeats.items()):
            self._write_heartbeat(agent_id, province, site, received_at, hb)
        for agent_id, (province, site, at) in sorted(p.seen.items()):
            self._touch_now(agent_id, province, site, at)
            # a message from an agent the feed last called silent: it is back
            row = self.db.execute("SELECT state FROM agents WHERE agent_id = ? AND feed_state = 'silent'",
                                  (agent_id,)).fetchone()
            if row is not None and row[0] != "offline":
                self.set_feed_state(agent_id, site, province, "online", at, only_from="silent")
        for (agent_id, stream), seqs in sorted(p.seqs.items()):
            self._note_stream(p, agent_id, stream, p.stream_at[(agent_id, stream)])
            for lo, hi in _runs(sorted(seqs)):
                self._note_run(agent_id, stream, lo, hi)
        if p.counts:
            self.db.executemany("INSERT INTO counters VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
                                "value = counters.value + excluded.value", sorted(p.counts.items()))
        p.counts.clear()
        p.seen.clear()
        p.seqs.clear()
        p.stream_at.clear()
        p.heartbeats.clear()

    def _note_stream(self, p: _Pending, agent_id: str, stream: str, at: float) -> None:
        row = self.db.execute("INSERT INTO streams VALUES (?,?,?,?) ON CONFLICT (agent_id, stream) DO UPDATE SET "
                              "last_at = GREATEST(streams.last_at, excluded.last_at) RETURNING first_at",
                              (agent_id, stream, at, at)).fetchone()
        if row[0] != at:
            return  # a stream we knew
        n = self.db.execute("SELECT count(*) FROM streams WHERE agent_id = ?", (agent_id,)).fetchone()[0]
        if n <= MAX_STREAMS_PER_AGENT:
            return
        for (old,) in self.db.execute("SELECT stream FROM streams WHERE agent_id = ? AND stream <> ? "
                                      "ORDER BY last_at, stream LIMIT ?",
                                      (agent_id, stream, n - MAX_STREAMS_PER_AGENT)).fetchall():
            self.db.execute("DELETE FROM seq_ranges WHERE agent_id = ? AND stream = ?", (agent_id, old))
            self.db.execute("DELETE FROM streams WHERE agent_id = ? AND stream = ?", (agent_id, old))
            p.counts["seq.streams_forgotten"] += 1

    def _note_run(self, agent_id: str, stream: str, lo: int, hi: int) -> None:
        """Add seqs lo..hi (all new) to the stream's ranges, merging with the neighbours."""
        left = self.db.execute("SELECT lo FROM seq_ranges WHERE agent_id=? AND stream=? AND hi=?",
                               (agent_id, stream, lo - 1)).fetchone()
        right = self.db.execute("SELECT hi FROM seq_ranges WHERE agent_id=? AND stream=? AND lo=?",
                                (agent_id, stream, hi + 1)).fetchone()
        if right:
            self.db.execute("DELETE FROM seq_ranges WHERE agent_id=? AND stream=? AND lo=?", (agent_id, stream, hi + 1))
            hi = right[0]
        if left:
            self.db.execute("UPDATE seq_ranges SET hi=? WHERE agent_id=? AND stream=? AND lo=?",
                            (hi, agent_id, stream, left[0]))
        else:
            self.db.execute("INSERT INTO seq_ranges VALUES (?,?,?,?)", (agent_id, stream, lo, hi))


def _runs(seqs: list[int]) -> Iterator[tuple[int, int]]:
    lo = prev = None
    for s in seqs:
        if prev is not None and s == prev + 1:
            prev = s
            continue
        if lo is not None:
            yield lo, prev
        lo = prev = s
    if lo is not None:
        yield lo, prev


def _storable(s: str) -> str:
    """Text for the rejects table even when the input could not be decoded or held NULs."""
    return s.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")

"""The SQL of incidents, notices, maintenance windows, commands and the rules' state.

``IncidentTx`` works inside one write transaction (``Record.incident_tx()``): the rules
engine reads the feed, changes incidents, queues notices and commands and moves its
position all at once, so a crash leaves either all of it or none. ``IncidentRecord`` is the
read side and the small writes of the CLI, the HTTP endpoint and the notifier (mixed into
``Record``)."""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Iterator

from .batch import dumps
from ..errors import NoSuchIncident, RecordError
from .types import CommandRow, Event, Incident, IncidentLogEntry, MaintenanceWindow, Notice

if TYPE_CHECKING:
    from .backend import Backend

_INC_FIELDS = [f.name for f in fields(Incident)]
_INC_COLS = ", ".join(_INC_FIELDS)
_JSON_FIELDS = ("summary", "evidence")
_NOTICE_COLS = ("id, key, incident_id, event, channel, recipient, route, created_at, not_before, expires_at, state, "
                "attempts, last_error, sent_at, sent_as, body")
_MW_COLS = "id, site, line, starts_at, ends_at, reason, created_by, created_at, removed_at"
_CMD_COLS = "id, agent_id, province, site, line, probe, by_whom, issued_at, expires_at, sent_at, body"
#: Evidence kept with an incident (the first measurements and the latest ones).
MAX_EVIDENCE = 40


def _incident(r) -> Incident:
    d = dict(zip(_INC_FIELDS, r))
    for k in _JSON_FIELDS:
        d[k] = json.loads(d[k])
    d["late"] = bool(d["late"])
    return Incident(**d)


def _notice(r) -> Notice:
    return Notice(*r[:15], body=json.loads(r[15]))


def trim_evidence(ev: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the first half and the latest of a long evidence list: how it began and how it is."""
    if len(ev) <= MAX_EVIDENCE:
        return ev
    half = MAX_EVIDENCE // 2
    return ev[:half] + ev[-half:]


class IncidentTx:
    """Incident writes inside one open write transaction."""

    def __init__(self, db: "Backend", now: float):
        self.db = db
        self.now = now

    # -- the feed and the consumer position -------------------------------------------
    def read_feed(self, after: int, limit: int) -> list[Event]:
        from .base import _EVENT_COLS, _event
        return [_event(r) for r in self.db.execute(
            f"SELECT {_EVENT_COLS} FROM feed WHERE pos > ? ORDER BY pos LIMIT ?", (after, limit)).fetchall()]

    def events(self, site: str, at_from: float, at_to: float, kinds: tuple[str, ...] | None = None) -> list[Event]:
        from .base import _EVENT_COLS, _event
        sql = f"SELECT {_EVENT_COLS} FROM feed WHERE site = ? AND at >= ? AND at < ?"
        params: list[Any] = [site, at_from, at_to]
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            params += list(kinds)
        return [_event(r) for r in self.db.execute(sql + " ORDER BY at, pos", params).fetchall()]

    def position(self, consumer: str) -> int:
        row = self.db.execute("SELECT pos FROM consumers WHERE name = ?", (consumer,)).fetchone()
        return int(row[0]) if row else 0

    def set_position(self, consumer: str, pos: int) -> None:
        self.db.execute("INSERT INTO consumers VALUES (?,?,?) ON CONFLICT (name) DO UPDATE SET pos = excluded.pos, "
                        "updated_at = excluded.updated_at", (consumer, pos, self.now))

    # -- the rules' own state ----------------------------------------------------------
    def load_state(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT state FROM rule_state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def load_states(self, prefix: str) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.db.execute(
            "SELECT key, state FROM rule_state WHERE key LIKE ?", (prefix + "%",)).fetchall()}

    def save_state(self, key: str, state: dict[str, Any]) -> None:
        self.db.execute("INSERT INTO rule_state VALUES (?,?,?) ON CONFLICT (key) DO UPDATE SET state = excluded.state, "
                        "updated_at = excluded.updated_at", (key, dumps(state), self.now))

    # -- incidents ---------------------------------------------------------------------
    def live(self, key: str) -> Incident | None:
        row = self.db.execute(f"SELECT {_INC_COLS} FROM incidents WHERE key = ? AND state <> 'closed'",
                              (key,)).fetchone()
        return _incident(row) if row else None

    def live_all(self, site: str | None = None) -> list[Incident]:
        sql = f"SELECT {_INC_COLS} FROM incidents WHERE state <> 'closed'"
        rows = self.db.execute(sql + (" AND site = ?" if site else "") + " ORDER BY id",
                               (site,) if site else ()).fetchall()
        return [_incident(r) for r in rows]

    def get(self, incident_id: int) -> Incident | None:
        row = self.db.execute(f"SELECT {_INC_COLS} FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        return _incident(row) if row else None

    def open(self, inc: Incident, detail: dict[str, Any] | None = None) -> Incident:
        vals = {f: getattr(inc, f) for f in _INC_FIELDS if f != "id"}
        vals["evidence"] = trim_evidence(vals["evidence"])
        vals["updated_at"] = self.now
        cols = list(vals)
        row = self.db.execute(
            f"INSERT INTO incidents ({', '.join(cols)}) VALUES ({','.join('?' * len(cols))}) RETURNING id",
            [dumps(vals[c]) if c in _JSON_FIELDS else (int(vals[c]) if c == "late" else vals[c]) for c in cols]
        ).fetchone()
        inc.id = int(row[0])
        self.log(inc.id, "opened", None, detail or {"kind": inc.kind, "cause": inc.cause})
        return inc

    def update(self, inc: Incident, **changes: Any) -> Incident:
        for k, v in changes.items():
            setattr(inc, k, v)
        inc.updated_at = self.now
        inc.evidence = trim_evidence(inc.evidence)
        sets = [f for f in _INC_FIELDS if f not in ("id", "key")]
        self.db.execute(f"UPDATE incidents SET {', '.join(f'{f} = ?' for f in sets)} WHERE id = ?",
                        [dumps(getattr(inc, f)) if f in _JSON_FIELDS else
                         (int(inc.late) if f == "late" else getattr(inc, f)) for f in sets] + [inc.id])
        return inc

    def log(self, incident_id: int, what: str, by: str | None, detail: dict[str, Any]) -> None:
        self.db.execute("INSERT INTO incident_log (incident_id, at, what, by_whom, detail) VALUES (?,?,?,?,?)",
                        (incident_id, self.now, what, by, dumps(detail)))

    def incidents_between(self, site: str, line: str | None, kind: str, t0: float, t1: float) -> list[Incident]:
        """Incidents of one kind on one line that overlap [t0, t1)."""
        rows = self.db.execute(f"SELECT {_INC_COLS} FROM incidents WHERE site = ? AND coalesce(line, '') = ? AND "
                               "kind = ? AND opened_at < ? AND coalesce(resolved_at, 1e18) >= ?",
                               (site, line or "", kind, t1, t0)).fetchall()
        return [_incident(r) for r in rows]

    def suppressed_by(self, incident_id: int) -> list[Incident]:
        rows = self.db.execute(f"SELECT {_INC_COLS} FROM incidents WHERE suppressed_by = ? ORDER BY id",
                               (incident_id,)).fetchall()
        return [_incident(r) for r in rows]

    def touched_since(self, t0: float) -> list[Incident]:
        """Incidents detected or closed since ``t0``, and every live one (the daily digest)."""
        rows = self.db.execute(f"SELECT {_INC_COLS} FROM incidents WHERE detected_at >= ? OR "
                               "coalesce(closed_at, 0) >= ? OR state <> 'closed' ORDER BY id", (t0, t0)).fetchall()
        return [_incident(r) for r in rows]

    # -- notices and commands ----------------------------------------------------------
    def enqueue(self, key: str, incident_id: int | None, event: str, channel: str, recipient: str, route: str,
                body: dict[str, Any], not_before: float, expires_at: float, state: str = "pending") -> bool:
        """Queue a notice once: the same key again does nothing (False)."""
        row = self.db.execute(
            "INSERT INTO notices (key, incident_id, event, channel, recipient, route, created_at, not_before, "
            "expires_at, state, body) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (key) DO NOTHING RETURNING id",
            (key, incident_id, event, channel, recipient, route, self.now, not_before, expires_at, state,
             dumps(body))).fetchone()
        return row is not None

    def add_command(self, cmd_id: str, agent_id: str, province: str, site: str, line: str, probe: str | None,
                    by: str, issued_at: float, expires_at: float, body: str) -> None:
        self.db.execute(f"INSERT INTO commands ({_CMD_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                        "ON CONFLICT (id) DO NOTHING",
                        (cmd_id, agent_id, province, site, line, probe, by, issued_at, expires_at, None, body))

    def maintenance_at(self, site: str, line: str | None, at: float) -> MaintenanceWindow | None:
        rows = self.db.execute(f"SELECT {_MW_COLS} FROM maintenance WHERE site = ? AND removed_at IS NULL AND "
                               "starts_at <= ? AND ends_at > ? ORDER BY id", (site, at, at)).fetchall()
        for r in rows:
            w = MaintenanceWindow(*r)
            if w.covers(site, line, at):
                return w
        return None


class IncidentRecord:
    """Read side and small writes; mixed into Record (uses its _q, _lock, batch)."""

    @contextmanager
    def incident_tx(self, now: float | None = None) -> Iterator[IncidentTx]:
        with self.batch() as b:  # type: ignore[attr-defined]
            yield IncidentTx(b.db, now or time.time())

    # -- incidents ---------------------------------------------------------------------
    def incidents(self, live_only: bool = False, site: str | None = None, since: float | None = None,
                  until: float | None = None, limit: int | None = None) -> list[Incident]:
        sql, params = f"SELECT {_INC_COLS} FROM incidents WHERE 1=1", []
        if live_only:
            sql += " AND state <> 'closed'"
        if site:
            sql += " AND site = ?"
            params.append(site)
        if since is not None:  # overlapping [since, until)
            sql += " AND coalesce(closed_at, 1e18) >= ?"
            params.append(since)
        if until is not None:
            sql += " AND opened_at < ?"
            params.append(until)
        sql += " ORDER BY id DESC"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        return [_incident(r) for r in self._q(sql, params)]  # type: ignore[attr-defined]

    def incident(self, incident_id: int) -> Incident:
        rows = self._q(f"SELECT {_INC_COLS} FROM incidents WHERE id = ?", (incident_id,))  # type: ignore
        if not rows:
            raise NoSuchIncident(f"no incident #{incident_id} (see: linewatch-collector incidents)")
        return _incident(rows[0])

    def incident_log(self, incident_id: int) -> list[IncidentLogEntry]:
        return [IncidentLogEntry(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in self._q(  # type: ignore
            "SELECT incident_id, at, what, by_whom, detail FROM incident_log WHERE incident_id = ? ORDER BY id",
            (incident_id,))]

    def acknowledge(self, incident_id: int, by: str, note: str = "", via: str = "cli",
                    now: float | None = None) -> tuple[Incident, bool]:
        """Acknowledge once; (incident, False) when it already was (the first ack stands)."""
        now = now or time.time()
        with self.incident_tx(now) as tx:
            inc = tx.get(incident_id)
            if inc is None:
                raise NoSuchIncident(f"no incident #{incident_id} (see: linewatch-collector incidents)")
            if inc.acked_at is not None or inc.state == "closed":
                return inc, False
            tx.update(inc, acked_at=now, acked_by=by[:120], ack_note=note[:1000], ack_via=via,
                      state="acknowledged" if inc.state == "open" else inc.state)
            tx.log(inc.id, "acknowledged", by[:120], {"note": note[:1000], "via": via})
            return inc, True

    def close_incident(self, incident_id: int, by: str, note: str, now: float | None = None) -> Incident:
        """Close by hand (the CLI's `incidents resolve`)."""
        now = now or time.time()
        with self.incident_tx(now) as tx:
            inc = tx.get(incident_id)
            if inc is None:
                raise NoSuchIncident(f"no incident #{incident_id} (see: linewatch-collector incidents)")
            if inc.state == "closed":
                return inc
            tx.update(inc, state="closed", closed_at=now, closed_by=by[:120], close_note=note[:1000],
                      resolved_at=inc.resolved_at or now)
            tx.log(inc.id, "closed", by[:120], {"note": note[:1000], "manual": True})
            return inc

    def line_verdicts(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The rules' current verdict per (site, line): speed_down/speed_up ok|low, latency and
        loss ok|high, reach up|down -- for status and the time-series export."""
        out = {}
        for key, state in self._q("SELECT key, state FROM rule_state WHERE key LIKE 'line/%'"):  # type: ignore
            _, site, line = key.split("/", 2)
            out[(site, line)] = json.loads(state).get("verdict", {})
        return out

    # -- maintenance windows ----------------------------------------------------------
    def add_maintenance(self, site: str, line: str | None, starts_at: float, ends_at: float, reason: str,
                        by: str, now: float | None = None) -> MaintenanceWindow:
        now = now or time.time()
        with self.batch() as b:  # type: ignore[attr-defined]
            row = b.db.execute(f"INSERT INTO maintenance (site, line, starts_at, ends_at, reason, created_by, "
                               f"created_at) VALUES (?,?,?,?,?,?,?) RETURNING {_MW_COLS}",
                               (site, line, starts_at, ends_at, reason[:500], by[:120], now)).fetchone()
        return MaintenanceWindow(*row)

    def maintenance(self, include_past: bool = False, now: float | None = None) -> list[MaintenanceWindow]:
        now = now or time.time()
        sql = f"SELECT {_MW_COLS} FROM maintenance WHERE removed_at IS NULL"
        params: tuple = ()
        if not include_past:
            sql += " AND ends_at > ?"
            params = (now,)
        return [MaintenanceWindow(*r) for r in self._q(sql + " ORDER BY starts_at", params)]  # type: ignore

    def remove_maintenance(self, window_id: int, now: float | None = None) -> bool:
        with self.batch() as b:  # type: ignore[attr-defined]
            return b.db.execute("UPDATE maintenance SET removed_at = ? WHERE id = ? AND removed_at IS NULL "
                                "RETURNING id", (now or time.time(), window_id)).fetchone() is not None

    # -- notices (the notifier's side) ------------------------------------------------
    def notices(self, state: str | None = None, incident_id: int | None = None, limit: int = 1000) -> list[Notice]:
        sql, params = f"SELECT {_NOTICE_COLS} FROM notices WHERE 1=1", []
        if state:
            sql += " AND state = ?"
            params.append(state)
        if incident_id is not None:
            sql += " AND incident_id = ?"
            params.append(incident_id)
        return [_notice(r) for r in self._q(sql + " ORDER BY id LIMIT ?", params + [limit])]  # type: ignore

    def claim_notices(self, now: float, lease_s: float = 120, limit: int = 500) -> list[Notice]:
        """Pending notices of every recipient that has one due, leased to this sender for
        ``lease_s`` (a second collector does not take them meanwhile). Not-yet-due notices
        of the same recipient come along: they go out in the same grouped message."""
        due = self._q("SELECT 1 FROM notices WHERE state = 'pending' AND not_before <= ? AND "  # type: ignore
                      "coalesce(claimed_until, 0) <= ? LIMIT 1", (now, now))
        if not due:
            return []  # polled every second: no write transaction (and no fsync) when idle
        with self.batch() as b:  # type: ignore[attr-defined]
            b.db.execute("UPDATE notices SET state = 'expired' WHERE state = 'pending' AND expires_at <= ?", (now,))
            rows = b.db.execute(
                f"SELECT {_NOTICE_COLS} FROM notices WHERE state = 'pending' AND coalesce(claimed_until, 0) <= ? "
                "AND (channel, recipient) IN (SELECT channel, recipient FROM notices WHERE state = 'pending' "
                "AND not_before <= ? AND coalesce(claimed_until, 0) <= ?) ORDER BY id LIMIT ?",
                (now, now, now, limit)).fetchall()
            if rows:
                ids = [r[0] for r in rows]
                b.db.execute(f"UPDATE notices SET claimed_until = ? WHERE id IN ({','.join('?' * len(ids))})",
                             [now + lease_s, *ids])
        return [_notice(r) for r in rows]

    def notices_sent(self, ids: list[int], sent_as: str, now: float | None = None) -> None:
        now = now or time.time()
        with self.batch() as b:  # type: ignore[attr-defined]
            b.db.execute(f"UPDATE notices SET state = 'sent', sent_at = ?, sent_as = ?, attempts = attempts + 1, "
                         f"claimed_until = NULL WHERE id IN ({','.join('?' * len(ids))})", [now, sent_as, *ids])
            for (iid,) in b.db.execute(f"SELECT DISTINCT incident_id FROM notices WHERE id IN "
                                       f"({','.join('?' * len(ids))}) AND incident_id IS NOT NULL", ids).fetchall():
                b.db.execute("UPDATE incidents SET notified_at = coalesce(notified_at, ?) WHERE id = ?", (now, iid))

    def notices_failed(self, ids: list[int], error: str, retry_at: float) -> None:
        with self.batch() as b:  # type: ignore[attr-defined]
            b.db.execute(f"UPDATE notices SET attempts = attempts + 1, last_error = ?, not_before = ?, "
                         f"claimed_until = NULL WHERE id IN ({','.join('?' * len(ids))})",
                         [error[:500], retry_at, *ids])

    def notices_deferred(self, ids: list[int], until: float) -> None:
        """Held back (rate limit): released, due again at ``until``."""
        with self.batch() as b:  # type: ignore[attr-defined]
            b.db.execute(f"UPDATE notices SET not_before = ?, claimed_until = NULL WHERE id IN "
                         f"({','.join('?' * len(ids))})", [until, *ids])

    def sent_since(self, channel: str, recipient: str, since: float) -> int:
        """Messages (grouped ones count once) sent to a recipient since ``since``."""
        return int(self._q("SELECT count(DISTINCT sent_as) FROM notices WHERE channel = ? AND recipient = ? "  # type: ignore
                           "AND state = 'sent' AND sent_at >= ?", (channel, recipient, since))[0][0])

    def notice_backlog(self) -> int:
        return int(self._q("SELECT count(*) FROM notices WHERE state = 'pending'")[0][0])  # type: ignore

    # -- commands ---------------------------------------------------------------------
    def add_command(self, cmd_id: str, agent_id: str, province: str, site: str, line: str, probe: str | None,
                    by: str, issued_at: float, expires_at: float, body: str) -> None:
        with self.batch() as b:  # type: ignore[attr-defined]
            IncidentTx(b.db, time.time()).add_command(cmd_id, agent_id, province, site, line, probe, by, issued_at,
                                                      expires_at, body)

    def unsent_commands(self, now: float, by: str | None = None) -> list[CommandRow]:
        """Commands not yet acknowledged by the broker and not expired (of one sender: ``by``)."""
        sql, params = f"SELECT {_CMD_COLS} FROM commands WHERE sent_at IS NULL AND expires_at > ?", [now]
        if by is not None:
            sql += " AND by_whom = ?"
            params.append(by)
        return [CommandRow(*r) for r in self._q(sql + " ORDER BY issued_at", params)]  # type: ignore

    def command_sent(self, cmd_id: str, now: float | None = None) -> None:
        with self.batch() as b:  # type: ignore[attr-defined]
            b.db.execute("UPDATE commands SET sent_at = ? WHERE id = ?", (now or time.time(), cmd_id))

    def command(self, cmd_id: str) -> CommandRow | None:
        rows = self._q(f"SELECT {_CMD_COLS} FROM commands WHERE id = ?", (cmd_id,))  # type: ignore
        return CommandRow(*rows[0]) if rows else None

    def command_results(self, cmd: CommandRow) -> list[Event]:
        """The measurements that echo a command's id (its line, since it was issued)."""
        from .base import _EVENT_COLS, _event
        rows = self._q(f"SELECT {_EVENT_COLS} FROM feed WHERE site = ? AND line = ? AND at >= ? ORDER BY pos",  # type: ignore
                       (cmd.site, cmd.line, cmd.issued_at - 5))
        return [e for e in map(_event, rows) if e.data.get("command_id") == cmd.id]


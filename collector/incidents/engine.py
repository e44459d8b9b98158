"""The incident rules as a feed consumer: read the record from my position, judge, change
incidents, queue notices and commands, move my position -- all in one transaction, so a
crash repeats nothing and loses nothing. Time-driven work (closing held recoveries,
escalating, refining a site that came back, the daily digest) runs in ``tick``."""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from linewatch import wire

from ..consumer import drain
from ..record import Record, RecordUnavailable
from ..record.incidents import IncidentTx
from ..record.types import AGENT_STATE, Event, Incident
from ..registry import Line, Registry, Site
from . import lifecycle as lc
from . import rules

log = logging.getLogger("linewatch.collector.incidents")
CONSUMER = "incidents.rules"
VN = timezone(timedelta(hours=7))
#: A measurement received this long after it was taken came with a backlog (live ones take a second or two).
LATE_AFTER_S = 15
MEASURED = set(wire.LINE_KINDS)


class Engine:
    def __init__(self, record: Record, registry: Registry, policy: rules.Policy = rules.Policy(),
                 publish: Callable[[str, bytes], bool] | None = None, clock: Callable[[], float] = time.time,
                 on_change: Callable[[], None] | None = None):
        self.record = record
        self.registry = registry
        self.p = policy
        self.publish = publish  # sends a command (topic, payload) over MQTT; True when handed to the broker
        self.clock = clock
        self.on_change = on_change  # wakes the notifier
        self.stats = {"events": 0, "opened": 0, "closed": 0, "notices": 0, "commands": 0}
        self._digest_checked: str | None = None

    # ------------------------------------------------------------------ the consumer
    def step(self, limit: int = 500) -> int:
        """Judge up to ``limit`` new feed events. Returns how many were read (0: caught up)."""
        if self.record.feed_head() <= self.record.position(CONSUMER):
            return 0  # nothing new: no write transaction (an idle collector does not fsync every second)
        now = self.clock()
        with self.record.incident_tx(now) as tx:
            events = tx.read_feed(tx.position(CONSUMER), limit)
            if not events:
                return 0
            run = _Run(self, tx, now)
            for e in events:
                run.event(e)
            run.save()
            tx.set_position(CONSUMER, events[-1].pos)
        self.stats["events"] += len(events)
        if run.changed and self.on_change:
            self.on_change()
        return len(events)

    def tick(self) -> None:
        now = self.clock()
        day = datetime.fromtimestamp(now, VN)
        digest_due = self.p.it_office_copy == "digest" and day.hour >= self.p.digest_hour and \
            self._digest_checked != day.strftime("%Y-%m-%d")
        if not digest_due and not self.record.incidents(live_only=True, limit=1):
            return  # nothing live, nothing due: no write transaction
        self._digest_checked = day.strftime("%Y-%m-%d") if digest_due else self._digest_checked
        with self.record.incident_tx(now) as tx:
            run = _Run(self, tx, now)
            run.tick()
            run.save()
        if run.changed and self.on_change:
            self.on_change()

    def send_commands(self) -> int:
        """Publish the rules' queued retests that have not expired; mark each sent once the
        broker acknowledged it (a crash before that sends it again; the agent runs an id once).
        The CLI's `test` sends its own commands."""
        if self.publish is None:
            return 0
        n = 0
        for c in self.record.unsent_commands(self.clock(), by="rules"):
            topic = wire.command_topic(c.province, c.site, c.agent_id)
            if not self.publish(topic, c.body.encode()):
                break  # not connected: try again next round
            self.record.command_sent(c.id)
            n += 1
        self.stats["commands"] += n
        return n

    def catch_up(self, budget_s: float = 5.0) -> int:
        return drain(self.step, budget_s)

    def run_forever(self, stop: threading.Event, wake: threading.Event | None = None, every_s: float = 1.0) -> None:
        wake = wake or threading.Event()
        while not stop.is_set():
            try:
                self.catch_up()
                self.tick()
                self.send_commands()
            except RecordUnavailable as e:
                log.error("incident rules cannot reach the record (%s); retrying", e)
                stop.wait(5)
            except Exception:  # noqa: BLE001 - logged; the next round tries again
                log.exception("incident rules failed; retrying in 5 s")
                stop.wait(5)
            wake.wait(every_s)
            wake.clear()


class _Run:
    """One transaction's worth of judging, with the rules' state cached until save()."""

    def __init__(self, eng: Engine, tx: IncidentTx, now: float):
        self.e, self.tx, self.now, self.p, self.reg = eng, tx, now, eng.p, eng.registry
        self.states: dict[str, dict[str, Any]] = {}
        self.dirty: set[str] = set()
        self.live = {i.key: i for i in tx.live_all()}
        self.changed = False

    # -- state cache ---------------------------------------------------------------------
    def state(self, key: str, new: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        if key not in self.states:
            self.states[key] = self.tx.load_state(key) or new()
        self.dirty.add(key)
        return self.states[key]

    def save(self) -> None:
        for k in self.dirty:
            self.tx.save_state(k, self.states[k])

    # -- events ---------------------------------------------------------------------------
    def event(self, e: Event) -> None:
        site = self.reg.site(e.site)
        if site is None:
            return
        if e.is_message:
            st = self.state(f"site/{e.site}", lambda: {"agents": {}})
            a = st["agents"].setdefault(e.agent_id, {"state": "online", "last_at": 0})
            a["last_at"] = max(a["last_at"], e.received_at)
        if e.kind == AGENT_STATE:
            self.agent_state(site, e)
            return
        if e.kind not in MEASURED or e.line is None:
            return
        line = site.line(e.line)
        if line is None:
            return
        st = self.state(f"line/{e.site}/{e.line}", rules.new_state)
        for sig in rules.judge(st, e, line, self.p, self.now):
            self.apply(sig, site, line, e, st)

    def agent_state(self, site: Site, e: Event) -> None:
        st = self.state(f"site/{site.code}", lambda: {"agents": {}})
        a = st["agents"].setdefault(e.agent_id, {"state": "online", "last_at": 0})
        a["state"] = e.data.get("state", "online")
        key = lc.key_for("site_unreachable", site.code, None)
        inc = self.live.get(key)
        if a["state"] in ("silent", "offline"):
            if any(x["state"] == "online" for x in st["agents"].values()):
                return  # another agent of the site still reports
            began = max((x["last_at"] for x in st["agents"].values()), default=0) or e.at
            if inc is None:
                self.open(rules.Signal("raise", "site_unreachable", began,
                                       summary={"agents": sorted(st["agents"]), "agent_state": a["state"]},
                                       evidence=[rules.row(e)]), site, None, e)
            elif inc.state == "recovering":
                self.relapse(inc, e)
        elif inc is not None and inc.state != "recovering":
            self.tx.update(inc, state="recovering", recovering_since=e.at, resolved_at=e.at,
                           summary={**inc.summary, "refine_at": self.now + self.p.refine_wait_s,
                                    "gap": [inc.opened_at, e.at]})
            self.tx.log(inc.id, "recovering", None, {"agent": e.agent_id})
            self.changed = True

    # -- signals ----------------------------------------------------------------------------
    def apply(self, sig: rules.Signal, site: Site, line: Line, e: Event, st: dict[str, Any]) -> None:
        if sig.action == "retest":
            if sig.kind == "slow_line_recovery" and lc.key_for("slow_line", site.code, line.id) not in self.live:
                return
            self.retest(site, line, e, st, sig.probe or "bandwidth")
            return
        key = lc.key_for(sig.kind, site.code, line.id, sig.target)
        inc = self.live.get(key)
        if sig.action == "raise":
            if inc is None:
                self.open(sig, site, line, e)
            else:
                if inc.state == "recovering":
                    self.relapse(inc, e)
                ev = inc.evidence + sig.evidence if len(inc.evidence) < 200 else inc.evidence
                self.tx.update(inc, summary={**inc.summary, **sig.summary}, evidence=ev)
        elif sig.action == "clear" and inc is not None and inc.state != "recovering":
            self.tx.update(inc, state="recovering", recovering_since=max(sig.at, inc.opened_at),
                           resolved_at=max(sig.at, inc.opened_at), summary={**inc.summary, **sig.summary},
                           evidence=inc.evidence + sig.evidence)
            self.tx.log(inc.id, "recovering", None, {"at": sig.at})
            self.changed = True

    def open(self, sig: rules.Signal, site: Site, line: Line | None, e: Event) -> Incident:
        kind = sig.kind
        inc = Incident(id=0, key=lc.key_for(kind, site.code, line.id if line else None, sig.target), kind=kind,
                       cause=rules.CAUSE[kind], route=rules.ROUTE[kind], site=site.code,
                       line=line.id if line else None, target=sig.target, state="open", opened_at=sig.at,
                       detected_at=self.now, late=e.is_message and e.received_at - e.at > LATE_AFTER_S, summary=dict(sig.summary),
                       evidence=list(sig.evidence))
        if line is not None:
            inc.summary.setdefault("contracted_down_mbps", line.contracted_down_mbps)
            inc.summary.setdefault("contracted_up_mbps", line.contracted_up_mbps)
            site_inc = self.live.get(lc.key_for("site_unreachable", site.code, None))
            if site_inc is not None and kind in rules.LINE_KINDS:
                inc.suppressed_by = site_inc.id  # storm control: the site's incident speaks for its lines
        w = self.tx.maintenance_at(site.code, inc.line, sig.at) or self.tx.maintenance_at(site.code, inc.line, self.now)
        if w is not None:
            inc.maintenance_id = w.id
        self.tx.open(inc, {"kind": kind, "cause": inc.cause, "suppressed_by": inc.suppressed_by,
                           "maintenance": inc.maintenance_id, "late": inc.late})
        self.live[inc.key] = inc
        self.e.stats["opened"] += 1
        self.changed = True
        if inc.suppressed_by is None:
            self.notify(inc, "opened", site, line)
        return inc

    def relapse(self, inc: Incident, e: Event) -> None:
        self.tx.update(inc, state=lc.relapse_state(inc), recovering_since=None, resolved_at=None,
                       summary={**inc.summary, "flaps": inc.summary.get("flaps", 0) + 1})
        self.tx.log(inc.id, "relapsed", None, {"pos": e.pos})

    def retest(self, site: Site, line: Line, e: Event, st: dict[str, Any], probe: str) -> None:
        cmd = wire.build_command(agent_id=e.agent_id, province=site.province, site=site.code, line=line.id,
                                 probe=probe, ttl_s=self.p.retest_ttl_s, by="rules",
                                 now=datetime.fromtimestamp(self.now, timezone.utc))
        self.tx.add_command(cmd.id, cmd.agent_id, cmd.province, cmd.site, cmd.line, cmd.probe, "rules",
                            cmd.issued_at.timestamp(), cmd.expires_at.timestamp(), cmd.to_json().decode())
        st["retest"] = {"id": cmd.id, "until": cmd.expires_at.timestamp()}
        self.changed = True

    # -- notices -----------------------------------------------------------------------------
    def notify(self, inc: Incident, event: str, site: Site | None = None, line: Line | None = None,
               level: int = 0) -> int:
        site = site or self.reg.site(inc.site)
        line = line or (site.line(inc.line) if site and inc.line else None)
        contact = lc.contact_for(inc.route, line, self.reg, level)
        targets = [(c, r, contact) for c, r in lc.channels(contact)]
        if self.p.it_office_copy == "each" and inc.route == "operator" and level == 0:
            targets += [(c, r, self.reg.it_office) for c, r in lc.channels(self.reg.it_office)]
        if not targets:
            self.tx.log(inc.id, "no_recipient", None, {"event": event, "route": inc.route, "level": level})
            return 0
        state = "suppressed" if inc.maintenance_id is not None else "pending"
        wait = self.p.group_wait_s  # every notice: a mass heal is one "resolved" message per recipient too
        n = 0
        for channel, recipient, who in targets:
            body = lc.notice_body(inc, site, line, who)
            body["event"] = event
            n += self.tx.enqueue(f"{inc.id}/{event}/{channel}/{recipient}", inc.id, event, channel, recipient,
                                 inc.route, body, self.now + wait, self.now + self.p.notice_ttl_s, state)
        self.e.stats["notices"] += n
        return n

    # -- time-driven -----------------------------------------------------------------------
    def tick(self) -> None:
        for inc in list(self.live.values()):
            if inc.kind == "site_unreachable" and inc.state == "recovering" and not inc.summary.get("refined") \
                    and self.now >= inc.summary.get("refine_at", 0):
                self.refine(inc)
            if inc.state == "recovering" and inc.recovering_since is not None and \
                    self.now >= inc.recovering_since + self.p.resolve_hold_s and \
                    (inc.kind != "site_unreachable" or inc.summary.get("refined")):
                self.close(inc)
            elif inc.kind == "availability" and self.now >= inc.summary.get("month_end", 1e18):
                self.close(inc)
            elif (level := lc.escalation_due(inc, self.now, self.p.escalate_after_s)) is not None:
                if level == 1 and inc.route == "operator":
                    site = self.reg.site(inc.site)
                    line = site.line(inc.line) if site and inc.line else None
                    if not (line and line.operator.escalation_email):
                        level = 2
                self.tx.update(inc, escalation=level, escalated_at=self.now)
                self.tx.log(inc.id, "escalated", None, {"level": level})
                self.notify(inc, f"escalated{level}" if level > 1 else "escalated", level=level)
                self.changed = True
        if self.p.it_office_copy == "digest":
            self.digest()

    def close(self, inc: Incident) -> None:
        self.tx.update(inc, state="closed", closed_at=self.now, closed_by="auto")
        self.tx.log(inc.id, "closed", None, {"time_to_repair_s": inc.time_to_repair_s})
        del self.live[inc.key]
        self.e.stats["closed"] += 1
        self.changed = True
        if inc.suppressed_by is None or inc.summary.get("notify_resolved"):
            self.notify(inc, "resolved")
        if inc.kind == "line_down":
            self.availability(inc)

    def refine(self, inc: Incident) -> None:
        """A site that could not be reached is back: what happened, from its backlog."""
        g0, g1 = inc.summary.get("gap", [inc.opened_at, inc.resolved_at or self.now])
        lines = self.tx.suppressed_by(inc.id)
        down = [i for i in lines if i.kind in ("line_down", "lan_fault")]
        evs = self.tx.events(inc.site, g0 + 1, g1)  # measured after the last message, before it was back
        measured = [e for e in evs if e.kind in MEASURED]
        if not down:  # reach or latency failures during the gap without an incident of their own
            failed = sorted({e.line for e in measured if not e.ok and wire.cause_of(e.error_code) == "line" and e.line})
        else:
            failed = sorted({i.line for i in down if i.line})
        heartbeats = self.tx.events(inc.site, g0 + 1, self.now + 1, ("heartbeat",))
        restarted = any(float(h.data.get("uptime_s", 1e12)) < (h.at - g0) + 60 for h in heartbeats)
        if failed:
            cause, detail = "line", {"lines": failed, "incidents": [i.id for i in down]}
        elif not measured and restarted:
            cause, detail = "power_or_pc", {"restarted": True}
        else:
            cause, detail = "unknown", {"measurements_in_gap": len(measured), "restarted": restarted}
        self.tx.update(inc, cause=cause, summary={**inc.summary, "refined": True, "refined_to": detail})
        self.tx.log(inc.id, "refined", None, {"cause": cause, **detail})
        self.changed = True
        for i in down:  # the line's operator now hears of the outage, with the agent's own evidence
            if i.state != "closed":
                self.tx.update(i, summary={**i.summary, "notify_resolved": True})
            self.notify(i, "refined")
        if cause == "power_or_pc":
            self.notify(inc, "refined")

    def availability(self, inc: Incident) -> None:
        """Downtime so far this month already beyond what min_availability_pct allows: the
        month's verdict is certain, say so now rather than on the report."""
        site = self.reg.site(inc.site)
        line = site.line(inc.line) if site and inc.line else None
        if line is None:
            return
        t = datetime.fromtimestamp(inc.opened_at, VN)
        m0 = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        m1 = (m0 + timedelta(days=32)).replace(day=1)
        a, b = m0.timestamp(), m1.timestamp()
        down = sum(max(0.0, min(i.resolved_at or self.now, b) - max(i.opened_at, a))
                   for i in self.tx.incidents_between(inc.site, inc.line, "line_down", a, b))
        allowed = (1 - line.thresholds.min_availability_pct / 100) * (b - a)
        key = lc.key_for("availability", inc.site, inc.line, m0.strftime("%Y-%m"))
        if down > allowed and key not in self.live:
            sig = rules.Signal("raise", "availability", inc.opened_at, target=m0.strftime("%Y-%m"),
                               summary={"month": m0.strftime("%Y-%m"), "down_s": round(down),
                                        "allowed_down_s": round(allowed), "month_end": b,
                                        "min_availability_pct": line.thresholds.min_availability_pct,
                                        "availability_pct_at_best": round(100 * (1 - down / (b - a)), 3)})
            fake = Event(pos=0, kind="availability", agent_id="", site=inc.site, line=inc.line, at=inc.opened_at,
                         received_at=inc.opened_at, ok=False, data={})
            self.open(sig, site, line, fake)

    def digest(self) -> None:
        day = datetime.fromtimestamp(self.now, VN)
        if day.hour < self.p.digest_hour:
            return
        st = self.state("digest", dict)
        today = day.strftime("%Y-%m-%d")
        if st.get("last") == today:
            return
        st["last"] = today
        incs = self.tx.touched_since(self.now - 86400)
        if not incs:
            return
        body = {"event": "digest", "incident": None, "evidence": [], "contact": {},
                "incidents": [lc.notice_body(i, self.reg.site(i.site), None, None)["incident"] for i in incs],
                "summary": {"day": today, "from": self.now - 86400, "to": self.now,
                            "open": sum(1 for i in incs if i.live), "total": len(incs)}}
        for channel, recipient in lc.channels(self.reg.it_office):
            self.tx.enqueue(f"digest/{today}/{channel}/{recipient}", None, "digest", channel, recipient, "it_office",
                            body, self.now, self.now + self.p.notice_ttl_s)
        self.changed = True

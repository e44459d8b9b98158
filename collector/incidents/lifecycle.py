"""What an incident goes through and who hears of it: pure functions, no I/O.

    open ──ack──▶ acknowledged
      │               │
      └──measured gone┴─▶ recovering ──held resolve_hold_s──▶ closed
                              │
                              └──bad again (a flap)──▶ back to open/acknowledged (same incident)

Notices: "opened" to whoever the kind is routed to (the line's operator, or the IT office),
"resolved" to the same recipients once it closes, "escalated" to the operator's second
contact and then to the IT office when nobody acknowledged in time, "refined" when a site
that could not be reached turns out to have lost a line (then its operator hears of it).
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..record.types import Incident
from ..registry import Contact, Line, Registry, Site


def key_for(kind: str, site: str, line: str | None, target: str | None = None) -> str:
    return f"{kind}/{site}/{line or '-'}/{target or '-'}"


def contact_for(route: str, line: Line | None, registry: Registry, level: int = 0) -> Contact | None:
    """Who hears of it at escalation ``level`` (0: first notice)."""
    if route == "operator" and line is not None:
        if level == 0:
            return line.operator
        if level == 1 and line.operator.escalation_email:
            return Contact(name=line.operator.name, email=line.operator.escalation_email)
        return registry.it_office
    return registry.it_office


def channels(c: Contact | None) -> list[tuple[str, str]]:
    """(channel, recipient) pairs a contact can be reached on."""
    if c is None:
        return []
    out = []
    if c.email:
        out.append(("email", c.email))
    if c.webhook_url:
        out.append(("webhook", c.webhook_url))
    if c.chat_url:
        out.append(("chat", c.chat_url))
    return out


def notice_body(inc: Incident, site: Site | None, line: Line | None, contact: Contact | None) -> dict[str, Any]:
    """The snapshot a notice carries: what the notifier renders, as it was when queued."""
    return {
        "incident": {"id": inc.id, "kind": inc.kind, "cause": inc.cause, "route": inc.route, "site": inc.site,
                     "site_name": site.name if site else inc.site, "province": site.province if site else None,
                     "line": inc.line, "isp": line.isp if line else None, "line_kind": line.kind if line else None,
                     "target": inc.target, "state": inc.state, "opened_at": inc.opened_at,
                     "detected_at": inc.detected_at, "resolved_at": inc.resolved_at, "closed_at": inc.closed_at,
                     "acked_at": inc.acked_at, "acked_by": inc.acked_by, "escalation": inc.escalation,
                     "late": inc.late, "maintenance_id": inc.maintenance_id},
        "summary": dict(inc.summary),
        "evidence": list(inc.evidence),
        "contact": {"name": contact.name, "email": contact.email} if contact else {},
    }


def relapse_state(inc: Incident) -> str:
    return "acknowledged" if inc.acked_at is not None else "open"


def escalation_due(inc: Incident, now: float, after_s: float) -> int | None:
    """The next escalation level if it is due now, else None (at most 2: the IT office)."""
    if inc.state not in ("open",) or inc.acked_at is not None or inc.notified_at is None:
        return None
    if inc.suppressed_by is not None or inc.maintenance_id is not None or inc.escalation >= 2:
        return None
    if inc.route != "operator" and inc.escalation >= 1:
        return None
    if now - inc.notified_at >= after_s * (inc.escalation + 1):
        return inc.escalation + 1
    return None


def as_dict(inc: Incident) -> dict[str, Any]:
    d = asdict(inc)
    d["time_to_ack_s"] = inc.time_to_ack_s
    d["time_to_repair_s"] = inc.time_to_repair_s
    return d

"""One message to one recipient: the notices it carries, merged per incident.

Shared by the e-mail, webhook and chat renderers. Several notices of one incident in one
message become one item: "opened" and a later "resolved" are one "opened_resolved" (the
problem happened and is over: "đã xảy ra và đã khắc phục"); otherwise the latest notice's
event and snapshot stand (a "refined" after an unsent "opened" is still news of an opening).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

from ..record.types import Notice
from .text import clean


@dataclass
class Item:
    incident_id: int | None
    event: str
    notices: list[Notice]
    body: dict[str, Any]
    ack_url: str | None = None

    @property
    def inc(self) -> dict[str, Any]:
        v = self.body.get("incident")
        return v if isinstance(v, dict) else {}

    @property
    def summary(self) -> dict[str, Any]:
        v = self.body.get("summary")
        return v if isinstance(v, dict) else {}

    @property
    def evidence(self) -> list[dict[str, Any]]:
        v = self.body.get("evidence")
        return [r for r in v if isinstance(r, dict)] if isinstance(v, list) else []


@dataclass
class Message:
    channel: str
    recipient: str
    notices: list[Notice]
    items: list[Item]
    lang: str = "vi"
    contact: dict[str, Any] = field(default_factory=dict)

    @property
    def ids(self) -> list[int]:
        return sorted(n.id for n in self.notices)

    @property
    def key(self) -> str:
        """Deterministic name of this message: the same notices make the same key, so a resend
        (after a crash between sending and recording it) can be recognised."""
        ids = self.ids
        if len(ids) <= 8:
            return "notice-" + "-".join(map(str, ids))
        h = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:12]
        return f"notice-{ids[0]}-{ids[-1]}-n{len(ids)}-{h}"

    @property
    def event(self) -> str:
        """The common event of all items, or "group" when they differ."""
        evs = {i.event for i in self.items}
        return evs.pop() if len(evs) == 1 else "group"

    def sites(self) -> list[str]:
        return sorted({clean(i.inc.get("site"), 40) for i in self.items if i.inc.get("site")})


def merge_event(events: list[str]) -> str:
    """The event of one incident's notices (in id order) as one item."""
    if "opened" in events:
        return "opened_resolved" if "resolved" in events[events.index("opened"):] else "opened"
    return events[-1]


def build(channel: str, recipient: str, notices: list[Notice], lang: str = "vi",
          ack_url: Callable[[Item], str | None] | None = None) -> Message:
    """Merge ``notices`` (one recipient, one channel) into a message; ``ack_url(item)`` gives
    the acknowledgement link of an item, or None."""
    notices = sorted(notices, key=lambda n: n.id)
    by_incident: dict[Any, list[Notice]] = {}
    for n in notices:
        k = n.incident_id if n.incident_id is not None else ("notice", n.id)
        by_incident.setdefault(k, []).append(n)
    items = []
    for k, ns in by_incident.items():
        body = ns[-1].body if isinstance(ns[-1].body, dict) else {}
        item = Item(ns[0].incident_id, merge_event([n.event for n in ns]), ns, body)
        if ack_url is not None:
            item.ack_url = ack_url(item)
        items.append(item)
    contact = next((n.body.get("contact") for n in reversed(notices)
                    if isinstance(n.body, dict) and isinstance(n.body.get("contact"), dict)
                    and n.body.get("contact")), {}) or {}
    return Message(channel, recipient, notices, items, lang, contact)

"""Commands from the collector to one agent: "run this line's probe now" (đo đột xuất).

Part of the wire contract (re-exported by :mod:`linewatch.wire`). Topic::

    lw/v1/{province}/{site}/agent/{agent}/cmd      QoS 1, never retained

Only the collector may publish there (the broker's ACL gives an agent read access to its
own command topic and nothing else to anyone but the collector). A command carries an
``id`` that every result it causes echoes in ``data.command_id``, and ``expires_at``: an
agent that receives it later (it was offline) does not run it but reports
``command_expired``, so a test asked for at 9:00 does not run at 17:00 as if it were
asked for then. docs/wire.md has an example.
"""
from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .wire_checks import MalformedMessage, check_document, check_time

COMMAND_ACTIONS = ("run",)
COMMAND_ID_RE = re.compile(r"^[0-9a-f]{8,32}$")
#: A command lives at most this long; the collector's default is much shorter (see `test --help`).
MAX_COMMAND_TTL = timedelta(hours=24)
MAX_COMMAND_BYTES = 4096


@dataclass(frozen=True)
class Command:
    id: str
    agent_id: str
    province: str
    site: str
    line: str
    probe: str | None  # None: every probe of the line
    issued_at: datetime
    expires_at: datetime
    by: str = "collector"
    action: str = "run"
    schema: int = 1

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        from .wire import format_time
        return {"schema": self.schema, "kind": "command", "action": self.action, "id": self.id,
                "agent_id": self.agent_id, "province": self.province, "site": self.site, "line": self.line,
                "probe": self.probe, "issued_at": format_time(self.issued_at),
                "expires_at": format_time(self.expires_at), "by": self.by}

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()

    @property
    def topic(self) -> str:
        from .wire import command_topic
        return command_topic(self.province, self.site, self.agent_id)


def new_command_id() -> str:
    return secrets.token_hex(8)


def build_command(*, agent_id: str, province: str, site: str, line: str, probe: str | None, ttl_s: float,
                  by: str = "collector", now: datetime | None = None, command_id: str | None = None) -> Command:
    from .wire import ID_RE, utc_now
    now = now or utc_now()
    ttl = timedelta(seconds=ttl_s)
    if not timedelta(0) < ttl <= MAX_COMMAND_TTL:
        raise ValueError(f"a command lives between 0 and {MAX_COMMAND_TTL}, not {ttl_s} s")
    for what, v in (("agent_id", agent_id), ("line", line)) + ((("probe", probe),) if probe else ()):
        if not ID_RE.match(v):
            raise ValueError(f"{what} {v!r} is not a valid id")
    cmd = Command(command_id or new_command_id(), agent_id, province, site, line, probe, now, now + ttl, by[:64])
    parse_command(cmd.topic, cmd.to_json(), now)  # what we send must pass what the agent checks
    return cmd


def parse_command(topic: str, payload: bytes, now: datetime | None = None) -> Command:
    """Check a command as the agent receives it. Raises MalformedMessage (and nothing else)."""
    from .wire import ID_RE, parse_topic
    if not isinstance(payload, (bytes, bytearray)) or len(payload) > MAX_COMMAND_BYTES:
        raise MalformedMessage("too_large", f"a command is at most {MAX_COMMAND_BYTES} bytes")
    t = parse_topic(topic)
    if t.kind != "cmd":
        raise MalformedMessage("bad_topic", f"{topic!r} is not a command topic")
    try:
        obj = json.loads(bytes(payload).decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise MalformedMessage("bad_json", f"command is not UTF-8 JSON ({e})") from None
    if not isinstance(obj, dict):
        raise MalformedMessage("bad_json", "a command must be a JSON object")
    check_document(obj, "command")
    if obj.get("schema") != 1 or obj.get("kind") != "command":
        raise MalformedMessage("bad_schema", "not a schema 1 command")
    if set(obj) - {"schema", "kind", "action", "id", "agent_id", "province", "site", "line", "probe", "issued_at",
                   "expires_at", "by"}:
        raise MalformedMessage("bad_field", "unknown fields in command")

    def text(name: str, optional: bool = False) -> str | None:
        v = obj.get(name)
        if v is None and optional:
            return None
        if not isinstance(v, str) or len(v) > 64:
            raise MalformedMessage("bad_field", f"command field {name!r} is missing or not a short text")
        return v

    action = text("action")
    if action not in COMMAND_ACTIONS:
        raise MalformedMessage("bad_field", f"unknown command action {action!r}")
    cid = text("id")
    if not COMMAND_ID_RE.match(cid or ""):
        raise MalformedMessage("bad_field", "command id must be 8-32 lower-case hex digits")
    agent_id, province, site, line = text("agent_id"), text("province"), text("site"), text("line")
    probe = text("probe", optional=True)
    for what, v in (("line", line),) + ((("probe", probe),) if probe is not None else ()):
        if not ID_RE.match(v or ""):
            raise MalformedMessage("bad_field", f"command {what} {v!r} is not a valid id")
    if (province, site, agent_id) != (t.province, t.site, t.name):
        raise MalformedMessage("topic_mismatch", "command is addressed to another agent than its topic")
    issued = check_time("issued_at", text("issued_at"))
    expires = check_time("expires_at", text("expires_at"))
    if not issued < expires <= issued + MAX_COMMAND_TTL:
        raise MalformedMessage("bad_time", "command expires before it was issued or lives over 24 h")
    return Command(cid, agent_id, province, site, line, probe, issued, expires, text("by", optional=True) or "",
                   action)

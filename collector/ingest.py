"""From MQTT message to record: validate against the wire contract and the registry, then
store -- and make sure no single message can stop that.

A batch is first written in one go. If anything in it raises (a bug, a value the database
cannot hold), the batch is rolled back and written again message by message, each in its own
savepoint: the message that fails is quarantined (kept in ``rejects`` with its reason,
counted) and acknowledged like the others, so the broker never hands it back. Only
:class:`RecordUnavailable` (database down, disk full) leaves the whole batch unacknowledged.
No MQTT here, so it is tested with plain bytes.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Sequence

from linewatch import wire
from linewatch.text import printable

from .record import Batch, Record, RecordUnavailable
from .record.types import Heartbeat
from .registry import Registry

log = logging.getLogger("linewatch.collector.ingest")

#: A message that makes the database itself fail this many times in a row is quarantined,
#: so "unavailable" cannot become a loop when the cause is the message after all.
MAX_STRIKES = 3


@dataclass(frozen=True)
class Incoming:
    topic: str
    payload: bytes
    received_at: float
    retained: bool = False


@dataclass(frozen=True)
class Outcome:
    status: str  # stored | duplicate | rejected | quarantined | status | ignored
    reason: str | None = None
    detail: str | None = None
    pos: int | None = None


class Ingestor:
    def __init__(self, record: Record, registry: Registry):
        self.record = record
        self.registry = registry
        self._last_log: dict[str, float] = {}
        self._strikes: dict[bytes, int] = {}

    def check_registry(self, m: wire.Message) -> None:
        site = self.registry.site(m.site)
        if site is None:
            raise wire.MalformedMessage("unknown_site", f"site {m.site} is not in the registry")
        if site.province != m.province:
            raise wire.MalformedMessage("unknown_site", f"site {m.site} belongs to province {site.province}, "
                                                        f"not {m.province}")
        if site.agents and m.agent_id not in site.agents:
            raise wire.MalformedMessage("unknown_agent", f"agent {m.agent_id} is not listed for site {m.site}")
        if m.line is not None and site.line(m.line) is None:
            raise wire.MalformedMessage("unknown_line", f"site {m.site} has no line {m.line!r} in the registry")

    # -- batches ---------------------------------------------------------------------
    def store(self, items: Sequence[Incoming]) -> list[Outcome]:
        """Store a batch; one outcome per message, every one of them safe to acknowledge.
        Raises RecordUnavailable when nothing could be written (acknowledge nothing)."""
        try:
            with self.record.batch() as b:
                return self._fast(b, items)
        except RecordUnavailable:
            raise
        except Exception as e:  # noqa: BLE001 - one message must not stop the collector
            self._log("batch", "a message broke a batch of %d (%s: %s); storing them one by one",
                      len(items), type(e).__name__, printable(str(e), 300))
        with self.record.batch(careful=True) as b:
            return [self._isolated(b, it) for it in items]

    def _fast(self, b: Batch, items: Sequence[Incoming]) -> list[Outcome]:
        """The whole batch at once: check every message, append the sequenced ones to the feed
        in one statement, then the per-message effects in arrival order."""
        checked = [self._check(b, it) for it in items]
        new = [(m, it.received_at) for m, it in zip(checked, items)
               if isinstance(m, wire.Message) and m.kind != "status"]
        positions = iter(b.add_messages(new))
        return [m if isinstance(m, Outcome) else
                self._apply(b, it, m, None if m.kind == "status" else next(positions))
                for m, it in zip(checked, items)]
    def _isolated(self, b: Batch, it: Incoming) -> Outcome:
        try:
            with b.message():
                return self._one(b, it)
        except Exception as e:  # noqa: BLE001
            if b.rec._b.unavailable(e):
                key = hashlib.sha256(it.topic.encode("utf-8", "replace") + b"\0" + it.payload).digest()
                if len(self._strikes) > 1000:
                    self._strikes.clear()
                self._strikes[key] = self._strikes.get(key, 0) + 1
                if self._strikes[key] < MAX_STRIKES:
                    raise RecordUnavailable(str(e)) from e
            detail = f"{type(e).__name__}: {e}"
            self._log("quarantined", "quarantined a message on %s that could not be stored (%s); it is kept in the "
                                     "rejects table and the rest of its batch is stored", printable(it.topic, 200),
                      printable(detail, 300))
            with b.message():
                b.reject(it.topic, "quarantined", detail, it.payload, it.received_at)
            return Outcome("quarantined", "quarantined", detail)

    # -- one message -----------------------------------------------------------------
    def _one(self, b: Batch, it: Incoming) -> Outcome:
        m = self._check(b, it)
        if isinstance(m, Outcome):
            return m
        return self._apply(b, it, m, None if m.kind == "status" else b.add_message(m, it.received_at))

    def _check(self, b: Batch, it: Incoming) -> "wire.Message | Outcome":
        """The message, or the outcome of refusing it (kept in rejects, counted)."""
        if not it.payload:
            # an empty payload clears a retained message (the collector's own clean-up)
            b.count("ignored.empty")
            return Outcome("ignored", "empty")
        try:
            m = wire.parse_message(it.topic, it.payload, retained=it.retained)
            self.check_registry(m)
            return m
        except wire.MalformedMessage as e:
            b.reject(it.topic, e.reason, e.detail, it.payload, it.received_at)
            self._log(e.reason, "rejected message on %s: %s (further '%s' rejects this minute are only counted)",
                      printable(it.topic, 200), printable(str(e), 300), e.reason)
            return Outcome("rejected", e.reason, e.detail)

    def _apply(self, b: Batch, it: Incoming, m: wire.Message, pos: int | None) -> Outcome:
        """What a checked message does besides its feed entry (``pos``: None = a redelivery)."""
        if m.kind == "status":
            # Retained status and last will: not sequenced; one topic per agent, so the broker
            # delivers them in order and the last one received is the current state. (The
            # LWT's own timestamp is when it was *set*, at connect, so it cannot be used.)
            b.agent_status(m, it.received_at, m.data["state"], m.data.get("version"))
            b.count("stored.status")
            return Outcome("status")
        if m.kind == "heartbeat":
            d = m.data
            offset = wire.parse_time(d["clock_utc"]).timestamp() - it.received_at
            b.heartbeat(m, it.received_at, Heartbeat(
                version=d["version"], hostname=d.get("hostname"), uptime_s=d["uptime_s"],
                queue_depth=d["queue_depth"], queue_dropped=d["queue_dropped"], probe_errors=d["probe_errors"],
                last_probe_error=d.get("last_probe_error"), clock_offset_s=round(offset, 3),
                heartbeat_at=m.measured_at.timestamp()))
        if pos is None:
            return Outcome("duplicate")
        if m.kind == "lan":
            b.apply_lan(m, pos)
        elif m.kind == "inventory":
            b.apply_inventory(m)
        b.count(f"stored.{m.kind}")
        return Outcome("stored", pos=pos)

    def handle(self, topic: str, payload: bytes, received_at: float | None = None,
               retained: bool = False) -> Outcome:
        """One message in a batch of its own (tests, tools)."""
        return self.store([Incoming(topic, payload, received_at or time.time(), retained)])[0]

    def _log(self, key: str, fmt: str, *args) -> None:
        # One line per reason per minute: a flood of garbage must not flood the log.
        now = time.monotonic()
        if now - self._last_log.get(key, -1e9) > 60:
            self._last_log[key] = now
            log.warning(fmt, *args)

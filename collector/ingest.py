"""From MQTT message to record: validate against the wire contract and the registry,
then store. No MQTT here, so it is tested with plain bytes."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from linewatch import wire

from . import inventory
from .registry import Registry
from .store import Store

log = logging.getLogger("linewatch.collector.ingest")


@dataclass(frozen=True)
class Outcome:
    status: str  # "stored" | "duplicate" | "rejected" | "status"
    reason: str | None = None
    detail: str | None = None


class Ingestor:
    def __init__(self, store: Store, registry: Registry):
        self.store = store
        self.registry = registry
        self._last_reject_log: dict[str, float] = {}

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

    def handle(self, topic: str, payload: bytes, received_at: float | None = None) -> Outcome:
        """Validate and store one message. Must be called inside ``store.transaction()``."""
        received_at = received_at or time.time()
        try:
            m = wire.parse_message(topic, payload)
            self.check_registry(m)
        except wire.MalformedMessage as e:
            self.store.insert_reject(topic, e.reason, e.detail, payload, received_at)
            self._log_reject(topic, e)
            return Outcome("rejected", e.reason, e.detail)
        if m.kind == "status":
            # Retained status and LWT: not sequenced. They share one topic per agent, so the
            # broker delivers them in order and the last one received is the current state.
            # (The LWT's own timestamp is when it was *set*, at connect, so it cannot be used.)
            self.store.touch_agent(m, received_at)
            self.store.db.execute(
                "UPDATE agents SET state = ?, state_at = ?, version = coalesce(?, version) WHERE agent_id = ?",
                (m.data["state"], received_at, m.data.get("version"), m.agent_id))
            return Outcome("status")
        stored = self.store.insert_measurement(m, received_at)
        if m.kind == "heartbeat" and self.store.newer_heartbeat(m):
            # A heartbeat replayed from the outbox after an outage gives a stale clock offset;
            # the next live one corrects it, because only the newest heartbeat counts.
            d = m.data
            offset = wire.parse_time(d["clock_utc"]).timestamp() - received_at
            self.store.touch_agent(m, received_at, version=d["version"], hostname=d.get("hostname"),
                                   uptime_s=d["uptime_s"], queue_depth=d["queue_depth"],
                                   queue_dropped=d["queue_dropped"], probe_errors=d["probe_errors"],
                                   clock_offset_s=round(offset, 3), heartbeat_at=m.measured_at.timestamp(),
                                   last_probe_error=d.get("last_probe_error"))
        else:
            self.store.touch_agent(m, received_at)
        if stored.id is None:
            return Outcome("duplicate")
        if m.kind in ("lan", "inventory"):
            inventory.apply(self.store, m)
        self.store.bump(f"stored.{m.kind}")
        return Outcome("stored")

    def _log_reject(self, topic: str, e: wire.MalformedMessage) -> None:
        # One line per reason per minute: a flood of garbage must not flood the log.
        now = time.monotonic()
        if now - self._last_reject_log.get(e.reason, -1e9) > 60:
            self._last_reject_log[e.reason] = now
            log.warning("rejected message on %s: %s (further '%s' rejects this minute are only counted)",
                        topic, e, e.reason)

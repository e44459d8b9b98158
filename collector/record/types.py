"""Typed values that cross the record's boundary. No SQL crosses it, only these."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Kinds of feed events that are not agent messages but facts the collector derived.
AGENT_STATE = "agent_state"  # body: {state: online|offline|silent, previous, province}
LAN_HOST = "lan_host"        # body: {change: appeared|gone, mac, ip, device_class, vendor, name}
DERIVED_KINDS = (AGENT_STATE, LAN_HOST)


@dataclass(frozen=True)
class Event:
    """One entry of the record's feed, in order of ``pos``.

    Agent messages (latency, bandwidth, dns, http, heartbeat, lan, inventory) carry their
    ``agent_id``/``stream``/``seq``; derived events (agent_state, lan_host) have ``seq`` None
    and their facts in ``data``. ``at`` is when it happened (``measured_at`` for a
    measurement), UTC seconds since the epoch."""

    pos: int
    kind: str
    agent_id: str
    site: str
    line: str | None
    at: float
    received_at: float
    ok: bool
    data: dict[str, Any]
    stream: str | None = None
    seq: int | None = None
    error_code: str | None = None
    error: str | None = None

    @property
    def is_message(self) -> bool:
        return self.seq is not None


@dataclass(frozen=True)
class EventFilter:
    """Which events to read. Every field narrows; None means any."""

    kind: str | tuple[str, ...] | None = None
    agent_id: str | None = None
    site: str | None = None
    line: str | None = None
    seq_min: int | None = None
    seq_max: int | None = None
    ok: bool | None = None
    messages: bool | None = None  # True: agent messages only; False: derived events only
    at_from: float | None = None
    at_to: float | None = None  # exclusive
    limit: int | None = None


@dataclass(frozen=True)
class Agent:
    agent_id: str
    province: str
    site: str
    state: str  # online | offline | unknown (what the agent/broker last said)
    state_at: float | None
    last_seen_at: float | None
    feed_state: str | None  # the last state written to the feed: online | offline | silent
    version: str | None = None
    hostname: str | None = None
    uptime_s: float | None = None
    queue_depth: int | None = None
    queue_dropped: int | None = None
    probe_errors: int | None = None
    last_probe_error: str | None = None
    heartbeat_at: float | None = None
    clock_offset_s: float | None = None


@dataclass(frozen=True)
class Heartbeat:
    version: str
    hostname: str | None
    uptime_s: float
    queue_depth: int
    queue_dropped: int
    probe_errors: int
    last_probe_error: str | None
    clock_offset_s: float
    heartbeat_at: float


@dataclass(frozen=True)
class Gap:
    """Sequence numbers of one agent stream that never arrived (between two that did)."""

    agent_id: str
    stream: str
    first_missing: int
    last_missing: int
    count: int


@dataclass(frozen=True)
class SeqSummary:
    """Per agent: messages missing between what arrived, and jumps too large to be loss
    (a counter reset or a hostile number), counted apart so they never inflate 'missing'."""

    agent_id: str
    missing: int
    jumps: int
    streams: int


@dataclass(frozen=True)
class Reject:
    received_at: float
    topic: str
    reason: str
    detail: str


@dataclass(frozen=True)
class RollupKey:
    site: str
    line: str
    kind: str
    agent_id: str
    target: str   # latency/bandwidth: target; dns: resolver; http: url
    method: str   # latency/bandwidth method, dns qtype, http: ""
    hour: int     # UTC epoch seconds of the hour's start


@dataclass
class Rollup:
    """One hour of one line, probe kind, target and agent (see rollup.py for ``stats``)."""

    key: RollupKey
    n: int = 0
    n_ok: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BandwidthTest:
    """One bandwidth test, kept for the whole rollup retention (there are few)."""

    pos: int
    site: str
    line: str
    agent_id: str
    at: float
    method: str
    target: str
    ok: bool
    error_code: str | None
    download_mbps: float | None
    upload_mbps: float | None


@dataclass(frozen=True)
class LanHost:
    mac: str
    ip: str
    vendor: str | None
    name: str | None
    device_class: str
    agent_id: str
    first_seen: float
    last_seen: float
    gone_at: float | None


@dataclass(frozen=True)
class LanSweep:
    agent_id: str
    site: str
    ok_at: float | None
    method: str | None
    sweep_no: int | None
    hosts_known: int | None
    subnets: list[dict[str, Any]]
    error_at: float | None
    error_code: str | None
    error: str | None


@dataclass(frozen=True)
class HostInventory:
    agent_id: str
    site: str
    measured_at: float
    data: dict[str, Any]


@dataclass(frozen=True)
class LanState:
    hosts: list[LanHost]   # present (not gone)
    n_gone: int
    sweeps: list[LanSweep]
    inventories: list[HostInventory]
    gone: list[LanHost] = field(default_factory=list)  # hosts that left the network


@dataclass(frozen=True)
class MaintenanceResult:
    rolled_events: int = 0
    pruned_events: int = 0
    pruned_rollups: int = 0
    silent_agents: int = 0


# -- incidents, notices, maintenance windows, commands (the incident rules' record) ----------
INCIDENT_STATES = ("open", "acknowledged", "recovering", "closed")
LIVE_STATES = ("open", "acknowledged", "recovering")


@dataclass
class Incident:
    """One problem, from the measurement that raised it to its close. Times are UTC seconds.

    ``opened_at`` is when the problem began (as measured), ``detected_at`` when linewatch knew
    of it; ``resolved_at`` when it was measured gone (time to repair = resolved_at - opened_at)
    and ``closed_at`` when the recovery had held long enough to close it."""

    id: int
    key: str
    kind: str
    cause: str
    route: str  # operator | it_office
    site: str
    line: str | None
    target: str | None
    state: str
    opened_at: float
    detected_at: float
    notified_at: float | None = None
    acked_at: float | None = None
    acked_by: str | None = None
    ack_note: str | None = None
    ack_via: str | None = None
    escalation: int = 0
    escalated_at: float | None = None
    recovering_since: float | None = None
    resolved_at: float | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    close_note: str | None = None
    maintenance_id: int | None = None
    suppressed_by: int | None = None
    late: bool = False
    summary: dict[str, Any] = field(default_factory=dict)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    updated_at: float = 0.0

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def time_to_ack_s(self) -> float | None:
        return None if self.acked_at is None else max(0.0, self.acked_at - self.detected_at)

    @property
    def time_to_repair_s(self) -> float | None:
        return None if self.resolved_at is None else max(0.0, self.resolved_at - self.opened_at)


@dataclass(frozen=True)
class IncidentLogEntry:
    incident_id: int
    at: float
    what: str  # opened | notified | acknowledged | escalated | recovering | relapsed | closed | refined | ...
    by: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class Notice:
    """One notification to one recipient over one channel, queued durably by the rules and
    sent by the notifier. ``key`` makes enqueueing idempotent."""

    id: int
    key: str
    incident_id: int | None
    event: str  # opened | resolved | escalated | refined | digest
    channel: str  # email | webhook | chat
    recipient: str
    route: str
    created_at: float
    not_before: float
    expires_at: float
    state: str  # pending | sent | expired | suppressed
    attempts: int
    last_error: str | None
    sent_at: float | None
    sent_as: str | None
    body: dict[str, Any]


@dataclass(frozen=True)
class MaintenanceWindow:
    id: int
    site: str
    line: str | None  # None: the whole site
    starts_at: float
    ends_at: float
    reason: str
    created_by: str
    created_at: float
    removed_at: float | None = None

    def covers(self, site: str, line: str | None, at: float) -> bool:
        return (self.removed_at is None and self.site == site and (self.line is None or self.line == line)
                and self.starts_at <= at < self.ends_at)


@dataclass(frozen=True)
class CommandRow:
    id: str
    agent_id: str
    province: str
    site: str
    line: str
    probe: str | None
    by: str
    issued_at: float
    expires_at: float
    sent_at: float | None
    body: str  # the command's JSON as sent


# -- what the monthly reports read besides rollups (schema step 4) ------------------------------
@dataclass(frozen=True)
class StateChange:
    """A line's reach state change (subject "line": up | down | lan_down, ``at`` = when it began,
    as measured) or an agent's (subject "agent": online | offline | silent, as the collector saw it)."""

    pos: int
    subject: str
    site: str
    line: str  # "" for an agent
    agent_id: str
    at: float
    state: str
    code: str | None


@dataclass(frozen=True)
class SeqHour:
    """Messages of one agent stream measured in one UTC hour, with their sequence-number span."""

    agent_id: str
    stream: str
    hour: int
    site: str
    n: int
    seq_min: int
    seq_max: int


@dataclass(frozen=True)
class LatencyMonth:
    """A line's latency rounds over a period, summed from its hourly rollups in the database."""

    n: int                  # rounds (failed ones included)
    n_ok: int
    targets: int            # distinct agent/target/method
    avg_n: int              # rounds with an average RTT
    avg_sum: float
    sent: float             # pings
    received: float
    median: list[Any] | None  # merged stats of rtt_median_ms: [n, sum, min, max, {bucket: count}]

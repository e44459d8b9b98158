"""Versioned schema of the record, per backend. A province's record lives for years:
every upgrade is a migration that keeps what is there, applied in order at start-up and
recorded in ``schema_version``. Never edit a released step; add the next one.

SQLite: step 1 is the schema linewatch 0.1 created (no version table then: a file with a
``measurements`` table and no ``schema_version`` is at step 1). PostgreSQL support began at
step 2, so its first step creates step 2's tables directly.
"""
from __future__ import annotations

LATEST = 4

SQLITE_V1 = """
CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY,
    province TEXT NOT NULL, site TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'unknown',
    state_at REAL,
    last_seen_at REAL,
    version TEXT, hostname TEXT,
    uptime_s REAL, queue_depth INTEGER, queue_dropped INTEGER, probe_errors INTEGER,
    last_probe_error TEXT, heartbeat_at REAL,
    clock_offset_s REAL
);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL, stream TEXT NOT NULL DEFAULT '', seq INTEGER NOT NULL,
    site TEXT NOT NULL, line TEXT, kind TEXT NOT NULL,
    measured_at REAL NOT NULL, received_at REAL NOT NULL,
    ok INTEGER NOT NULL, error_code TEXT, error TEXT,
    data TEXT NOT NULL,
    UNIQUE (agent_id, stream, seq)
);
CREATE TABLE IF NOT EXISTS seq_ranges (
    agent_id TEXT NOT NULL, stream TEXT NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
    PRIMARY KEY (agent_id, stream, lo)
);
CREATE INDEX IF NOT EXISTS seq_ranges_hi ON seq_ranges (agent_id, stream, hi);
CREATE INDEX IF NOT EXISTS measurements_line_time ON measurements (site, line, kind, measured_at);
CREATE INDEX IF NOT EXISTS measurements_time ON measurements (measured_at);
CREATE TABLE IF NOT EXISTS rejects (
    id INTEGER PRIMARY KEY, received_at REAL NOT NULL, topic TEXT NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, payload_head BLOB
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rollup_hourly (
    site TEXT NOT NULL, line TEXT NOT NULL, kind TEXT NOT NULL, hour REAL NOT NULL,
    n INTEGER NOT NULL, n_ok INTEGER NOT NULL,
    stats TEXT NOT NULL,
    PRIMARY KEY (site, line, kind, hour)
);
CREATE TABLE IF NOT EXISTS lan_hosts (
    site TEXT NOT NULL, mac TEXT NOT NULL,
    ip TEXT NOT NULL, vendor TEXT, name TEXT, device_class TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    gone_at REAL,
    PRIMARY KEY (site, mac)
);
CREATE TABLE IF NOT EXISTS lan_sweeps (
    agent_id TEXT PRIMARY KEY, site TEXT NOT NULL,
    ok_at REAL, method TEXT, sweep_no INTEGER, hosts_known INTEGER, subnets TEXT,
    error_at REAL, error_code TEXT, error TEXT
);
CREATE TABLE IF NOT EXISTS host_inventory (
    agent_id TEXT PRIMARY KEY, site TEXT NOT NULL, measured_at REAL NOT NULL, data TEXT NOT NULL
);
"""

# Step 2: the feed (measurements and derived events in one ordered table, pos never
# reused: AUTOINCREMENT), per-target rollups with histograms, per-test bandwidth results,
# consumer positions, stream bookkeeping. Old hourly rollups are kept as rollup_hourly_v1
# (they cannot be split by target after the fact); the new rollups are rebuilt from the
# raw rows still present, because the rollup consumer starts at position 0.
SQLITE_V2 = """
CREATE TABLE feed (
    pos INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    agent_id TEXT NOT NULL, stream TEXT, seq INTEGER,
    site TEXT NOT NULL, line TEXT,
    at REAL NOT NULL, received_at REAL NOT NULL,
    ok INTEGER NOT NULL, error_code TEXT, error TEXT,
    data TEXT NOT NULL
);
INSERT INTO feed (pos, kind, agent_id, stream, seq, site, line, at, received_at, ok, error_code, error, data)
    SELECT id, kind, agent_id, stream, seq, site, line, measured_at, received_at, ok, error_code, error, data
    FROM measurements ORDER BY id;
DROP TABLE measurements;
CREATE UNIQUE INDEX feed_message ON feed (agent_id, stream, seq);
CREATE INDEX feed_line_kind_time ON feed (site, line, kind, at);
CREATE INDEX feed_time ON feed (at);
ALTER TABLE rollup_hourly RENAME TO rollup_hourly_v1;
CREATE TABLE rollups (
    site TEXT NOT NULL, line TEXT NOT NULL, kind TEXT NOT NULL, agent_id TEXT NOT NULL,
    target TEXT NOT NULL, method TEXT NOT NULL, hour INTEGER NOT NULL,
    n INTEGER NOT NULL, n_ok INTEGER NOT NULL, stats TEXT NOT NULL,
    PRIMARY KEY (site, line, kind, hour, agent_id, target, method)
);
CREATE INDEX rollups_hour ON rollups (hour);
CREATE TABLE bandwidth_tests (
    pos INTEGER PRIMARY KEY, site TEXT NOT NULL, line TEXT NOT NULL, agent_id TEXT NOT NULL,
    at REAL NOT NULL, method TEXT NOT NULL, target TEXT NOT NULL, ok INTEGER NOT NULL, error_code TEXT,
    download_mbps REAL, upload_mbps REAL
);
CREATE INDEX bandwidth_tests_line ON bandwidth_tests (site, line, at);
CREATE TABLE consumers (name TEXT PRIMARY KEY, pos INTEGER NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE streams (
    agent_id TEXT NOT NULL, stream TEXT NOT NULL, first_at REAL NOT NULL, last_at REAL NOT NULL,
    PRIMARY KEY (agent_id, stream)
);
INSERT INTO streams SELECT agent_id, stream, 0, 0 FROM seq_ranges GROUP BY agent_id, stream;
ALTER TABLE agents ADD COLUMN feed_state TEXT;
DELETE FROM counters WHERE name = 'rollup.done_until';
"""

SQLITE_STEPS = {1: SQLITE_V1, 2: SQLITE_V2}

POSTGRES_V2 = """
CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY,
    province TEXT NOT NULL, site TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'unknown',
    state_at DOUBLE PRECISION,
    last_seen_at DOUBLE PRECISION,
    version TEXT, hostname TEXT,
    uptime_s DOUBLE PRECISION, queue_depth BIGINT, queue_dropped BIGINT, probe_errors BIGINT,
    last_probe_error TEXT, heartbeat_at DOUBLE PRECISION,
    clock_offset_s DOUBLE PRECISION,
    feed_state TEXT
);
CREATE TABLE feed (
    pos BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    agent_id TEXT NOT NULL, stream TEXT, seq BIGINT,
    site TEXT NOT NULL, line TEXT,
    at DOUBLE PRECISION NOT NULL, received_at DOUBLE PRECISION NOT NULL,
    ok INTEGER NOT NULL, error_code TEXT, error TEXT,
    data TEXT NOT NULL
);
CREATE UNIQUE INDEX feed_message ON feed (agent_id, stream, seq);
CREATE INDEX feed_line_kind_time ON feed (site, line, kind, at);
CREATE INDEX feed_time ON feed (at);
CREATE TABLE seq_ranges (
    agent_id TEXT NOT NULL, stream TEXT NOT NULL, lo BIGINT NOT NULL, hi BIGINT NOT NULL,
    PRIMARY KEY (agent_id, stream, lo)
);
CREATE INDEX seq_ranges_hi ON seq_ranges (agent_id, stream, hi);
CREATE TABLE streams (
    agent_id TEXT NOT NULL, stream TEXT NOT NULL, first_at DOUBLE PRECISION NOT NULL,
    last_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (agent_id, stream)
);
CREATE TABLE rejects (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, received_at DOUBLE PRECISION NOT NULL,
    topic TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL, payload_head BYTEA
);
CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE rollups (
    site TEXT NOT NULL, line TEXT NOT NULL, kind TEXT NOT NULL, agent_id TEXT NOT NULL,
    target TEXT NOT NULL, method TEXT NOT NULL, hour BIGINT NOT NULL,
    n BIGINT NOT NULL, n_ok BIGINT NOT NULL, stats TEXT NOT NULL,
    PRIMARY KEY (site, line, kind, hour, agent_id, target, method)
);
CREATE INDEX rollups_hour ON rollups (hour);
CREATE TABLE bandwidth_tests (
    pos BIGINT PRIMARY KEY, site TEXT NOT NULL, line TEXT NOT NULL, agent_id TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL, method TEXT NOT NULL, target TEXT NOT NULL, ok INTEGER NOT NULL,
    error_code TEXT, download_mbps DOUBLE PRECISION, upload_mbps DOUBLE PRECISION
);
CREATE INDEX bandwidth_tests_line ON bandwidth_tests (site, line, at);
CREATE TABLE consumers (name TEXT PRIMARY KEY, pos BIGINT NOT NULL, updated_at DOUBLE PRECISION NOT NULL);
CREATE TABLE lan_hosts (
    site TEXT NOT NULL, mac TEXT NOT NULL,
    ip TEXT NOT NULL, vendor TEXT, name TEXT, device_class TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION NOT NULL,
    gone_at DOUBLE PRECISION,
    PRIMARY KEY (site, mac)
);
CREATE TABLE lan_sweeps (
    agent_id TEXT PRIMARY KEY, site TEXT NOT NULL,
    ok_at DOUBLE PRECISION, method TEXT, sweep_no BIGINT, hosts_known BIGINT, subnets TEXT,
    error_at DOUBLE PRECISION, error_code TEXT, error TEXT
);
CREATE TABLE host_inventory (
    agent_id TEXT PRIMARY KEY, site TEXT NOT NULL, measured_at DOUBLE PRECISION NOT NULL, data TEXT NOT NULL
);
"""

POSTGRES_STEPS = {2: POSTGRES_V2}


# Step 3: what the incident rules and the notifier keep (both backends; {ID} and {REAL}
# are filled in per backend). One live incident per key (kind/site/line/target): the
# partial unique index makes "open it once" hold even with two collectors.
_V3 = """
CREATE TABLE incidents (
    id {ID},
    key TEXT NOT NULL, kind TEXT NOT NULL, cause TEXT NOT NULL, route TEXT NOT NULL,
    site TEXT NOT NULL, line TEXT, target TEXT,
    state TEXT NOT NULL,
    opened_at {REAL} NOT NULL, detected_at {REAL} NOT NULL,
    notified_at {REAL}, acked_at {REAL}, acked_by TEXT, ack_note TEXT, ack_via TEXT,
    escalation INTEGER NOT NULL DEFAULT 0, escalated_at {REAL},
    recovering_since {REAL}, resolved_at {REAL}, closed_at {REAL}, closed_by TEXT, close_note TEXT,
    maintenance_id BIGINT, suppressed_by BIGINT, late INTEGER NOT NULL DEFAULT 0,
    summary TEXT NOT NULL, evidence TEXT NOT NULL, updated_at {REAL} NOT NULL
);
CREATE UNIQUE INDEX incidents_live ON incidents (key) WHERE state <> 'closed';
CREATE INDEX incidents_site ON incidents (site, opened_at);
CREATE INDEX incidents_state ON incidents (state);
CREATE TABLE incident_log (
    id {ID}, incident_id BIGINT NOT NULL, at {REAL} NOT NULL, what TEXT NOT NULL, by_whom TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX incident_log_incident ON incident_log (incident_id, id);
CREATE TABLE notices (
    id {ID}, key TEXT NOT NULL UNIQUE, incident_id BIGINT, event TEXT NOT NULL,
    channel TEXT NOT NULL, recipient TEXT NOT NULL, route TEXT NOT NULL,
    created_at {REAL} NOT NULL, not_before {REAL} NOT NULL, expires_at {REAL} NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    sent_at {REAL}, sent_as TEXT, claimed_until {REAL}, body TEXT NOT NULL
);
CREATE INDEX notices_state ON notices (state, not_before);
CREATE INDEX notices_recipient ON notices (channel, recipient, sent_at);
CREATE TABLE maintenance (
    id {ID}, site TEXT NOT NULL, line TEXT, starts_at {REAL} NOT NULL, ends_at {REAL} NOT NULL,
    reason TEXT NOT NULL, created_by TEXT NOT NULL, created_at {REAL} NOT NULL, removed_at {REAL}
);
CREATE TABLE commands (
    id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, province TEXT NOT NULL, site TEXT NOT NULL,
    line TEXT NOT NULL, probe TEXT, by_whom TEXT NOT NULL, issued_at {REAL} NOT NULL,
    expires_at {REAL} NOT NULL, sent_at {REAL}, body TEXT NOT NULL
);
CREATE TABLE rule_state (key TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at {REAL} NOT NULL);
"""
SQLITE_STEPS[3] = _V3.replace("{ID}", "INTEGER PRIMARY KEY AUTOINCREMENT").replace("{REAL}", "REAL")
POSTGRES_STEPS[3] = _V3.replace("{ID}", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY").replace(
    "{REAL}", "DOUBLE PRECISION")


# Step 4: what the monthly reports need after the raw rows are pruned (kept as long as the
# rollups). The rollup consumer fills them from the feed:
# * state_changes: every reach state change of a line (down/up, from its measured `since`) and
#   every agent_state change (online/offline/silent) -- availability and offline hours;
# * seq_hours: per agent stream and UTC hour, messages received and their lowest/highest
#   sequence number -- messages lost in transit in any month.
_V4 = """
CREATE TABLE state_changes (
    pos BIGINT PRIMARY KEY, subject TEXT NOT NULL, site TEXT NOT NULL, line TEXT NOT NULL,
    agent_id TEXT NOT NULL, at {REAL} NOT NULL, state TEXT NOT NULL, code TEXT
);
CREATE INDEX state_changes_site ON state_changes (site, at);
CREATE TABLE seq_hours (
    agent_id TEXT NOT NULL, stream TEXT NOT NULL, hour BIGINT NOT NULL, site TEXT NOT NULL,
    n BIGINT NOT NULL, seq_min BIGINT NOT NULL, seq_max BIGINT NOT NULL,
    PRIMARY KEY (agent_id, stream, hour)
);
CREATE INDEX seq_hours_site ON seq_hours (site, hour);
"""
SQLITE_STEPS[4] = _V4.replace("{REAL}", "REAL")
POSTGRES_STEPS[4] = _V4.replace("{REAL}", "DOUBLE PRECISION")

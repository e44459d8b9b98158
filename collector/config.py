"""The collector's typed config (see collector/example-collector.toml)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linewatch import wire
from linewatch.config import ConfigError, MqttConnection, Section, load_toml, mqtt_fields

EXAMPLE = Path(__file__).with_name("example-collector.toml")


@dataclass(frozen=True)
class BrokerConfig(MqttConnection):
    client_id: str = "linewatch-collector"
    province: str = "+"  # subscribe to one province's topics, or all
    shared_group: str | None = None  # several collectors share the traffic: $share/<group>/...
    mqtt_version: int = 5  # 5: sees the retain flag of live messages; 3 for brokers without MQTT 5


@dataclass(frozen=True)
class SecurityConfig:
    """[security]: where `init-ca`, `enrol` and `acl` keep the broker's security files."""

    ca_dir: Path = Path("/etc/linewatch/ca")                # ca.key (secret, root only) + ca.crt
    broker_dir: Path = Path("/etc/mosquitto/linewatch")     # what Mosquitto reads: certs, passwd, acl
    broker_host: str | None = None                          # the name agents use to reach the broker
    broker_port: int = 8883                                 # the broker's TLS listener for agents


def _parse_incidents(sec: Section):
    """[incidents]: when a problem becomes an incident, when it closes, when it escalates."""
    from .incidents.rules import Policy

    d = Policy()
    p = Policy(
        slow_m=sec.num("slow_m", d.slow_m, ge=1, le=20, integer=True),
        slow_n=sec.num("slow_n", d.slow_n, ge=1, le=20, integer=True),
        retest=sec.bool("retest", d.retest),
        max_retests=sec.num("max_retests", d.max_retests, ge=0, le=10, integer=True),
        retest_ttl_s=sec.num("retest_ttl_s", d.retest_ttl_s, ge=10, le=86400),
        latency_m=sec.num("latency_m", d.latency_m, ge=1, le=50, integer=True),
        latency_n=sec.num("latency_n", d.latency_n, ge=1, le=50, integer=True),
        service_m=sec.num("service_m", d.service_m, ge=1, le=50, integer=True),
        service_n=sec.num("service_n", d.service_n, ge=1, le=50, integer=True),
        down_m=sec.num("down_m", d.down_m, ge=1, le=50, integer=True),
        down_n=sec.num("down_n", d.down_n, ge=1, le=50, integer=True),
        resolve_hold_s=sec.num("resolve_hold_s", d.resolve_hold_s, ge=0, le=86400),
        escalate_after_s=60 * sec.num("escalate_after_min", d.escalate_after_s / 60, gt=0, le=7 * 1440),
        refine_wait_s=sec.num("refine_wait_s", d.refine_wait_s, ge=0, le=86400),
        group_wait_s=sec.num("group_wait_s", d.group_wait_s, ge=0, le=3600),
        notice_ttl_s=3600 * sec.num("notice_ttl_h", d.notice_ttl_s / 3600, gt=0, le=24 * 30),
        it_office_copy=sec.str("it_office_copy", d.it_office_copy, choices=("each", "digest", "none")),
        digest_hour=sec.num("digest_hour", d.digest_hour, ge=0, le=23, integer=True),
    )
    for m, n, what in ((p.slow_m, p.slow_n, "slow"), (p.latency_m, p.latency_n, "latency"),
                       (p.service_m, p.service_n, "service"), (p.down_m, p.down_n, "down")):
        if m > n:
            raise ConfigError(f"{sec.where}: {what}_m = {m} is more than {what}_n = {n} "
                              f"(M of the last N tests: M cannot exceed N)")
    sec.done()
    return p


@dataclass(frozen=True)
class CollectorConfig:
    registry_path: Path
    record: str  # a file path (SQLite), sqlite:///path or postgresql://user:password@host:port/db
    mqtt: BrokerConfig
    raw_days: float = 62
    rollup_days: float = 400
    offline_after_s: float = 300
    source: Path | None = None
    security: SecurityConfig = SecurityConfig()
    incidents: Any = None  # incidents.rules.Policy
    notify: Any = None     # notify.config.NotifyConfig
    http: Any = None       # notify.config.HttpConfig
    export: Any = None     # export.config.ExportConfig
    report: Any = None     # report.config.ReportConfig


def load(path: str | Path) -> CollectorConfig:
    return parse(load_toml(path, "collector config"), Path(path))


def parse(doc: dict[str, Any], source: Path | None = None) -> CollectorConfig:
    name = source.name if source else "collector config"
    base = source.parent if source else Path.cwd()
    root = Section(doc, name)
    registry_path = base / root.str("registry", "registry.toml")
    record = root.str("record", "/var/lib/linewatch/record.sqlite3")
    if "://" not in record:
        record = str(base / record)
    elif not record.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigError(f"{name}: record = {record.split('://')[0]}://... is not supported: use a file path, "
                          f"sqlite:///path or postgresql://user:password@host:port/database")
    m = root.table("mqtt", f"{name} [mqtt]")
    province = m.str("province", "+")
    if province != "+" and not wire.PROVINCE_RE.match(province):
        raise ConfigError(f"{m.where}: province must be a 2-digit code or \"+\" for all")
    shared_group = m.str("shared_group")
    if shared_group is not None and not wire.ID_RE.match(shared_group):
        raise ConfigError(f"{m.where}: shared_group must be a short name of a-z, 0-9, '-', '_' or '.', "
                          f"got {shared_group!r}")
    mqtt_version = m.num("mqtt_version", 5, integer=True)
    if mqtt_version not in (3, 5):
        raise ConfigError(f"{m.where}: mqtt_version must be 5 (MQTT 5, the default) or 3 (MQTT 3.1.1, for a broker "
                          f"without MQTT 5), got {mqtt_version}")
    mqtt = BrokerConfig(**mqtt_fields(m, base), client_id=m.str("client_id", "linewatch-collector"),
                        province=province, shared_group=shared_group, mqtt_version=int(mqtt_version))
    m.done()
    r = root.table("retention", f"{name} [retention]")
    # at least the agent outbox's maximum age (60 days): a backlog delivered late is still kept raw
    raw_days = r.num("raw_days", 62, ge=1)
    rollup_days = r.num("rollup_days", 400, ge=raw_days)
    r.done()
    s = root.table("status", f"{name} [status]")
    offline_after_s = s.num("offline_after_s", 300, ge=10)
    s.done()
    sec = root.table("security", f"{name} [security]")
    security = SecurityConfig(ca_dir=base / sec.str("ca_dir", str(SecurityConfig.ca_dir)),
                              broker_dir=base / sec.str("broker_dir", str(SecurityConfig.broker_dir)),
                              broker_host=sec.str("broker_host"),
                              broker_port=sec.num("broker_port", 8883, ge=1, le=65535, integer=True))
    sec.done()
    incidents = _parse_incidents(root.table("incidents", f"{name} [incidents]"))
    from .notify.config import parse_http, parse_notify

    notify = parse_notify(root.table("notify", f"{name} [notify]"), base)
    http = parse_http(root.table("http", f"{name} [http]"))
    from .export.config import parse_export

    export = parse_export(root.table("export", f"{name} [export]"), base)
    from .report.config import parse_report

    report = parse_report(root.table("report", f"{name} [report]"), base)
    root.done()
    return CollectorConfig(registry_path, record, mqtt, raw_days, rollup_days, offline_after_s, source,
                           security, incidents, notify, http, export, report)

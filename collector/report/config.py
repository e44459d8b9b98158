"""The ``[report]`` table of collector.toml: when the monthly report runs, who signs it, what
counts as "too little data", and the agents' schedule the completeness figures compare with."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from linewatch.config import ConfigError, Section

from .model import Issuer


@dataclass(frozen=True)
class Schedule:
    """What the agents are configured to send (agent/example-agent.toml defaults): the
    "scheduled" of "tests scheduled against tests received"."""

    latency_interval_s: float = 300     # one round per target every 5 min
    # the agent's default office schedule: 4 tests on each working day (Mon-Fri), 20 a week,
    # as an average per calendar day (the report counts calendar days): 4 * 5 / 7 = 2.857;
    # 1 for agents on the night schedule (window = "01:00-05:00")
    bandwidth_per_day: float = 4 * 5 / 7
    dns_interval_s: float = 300
    http_interval_s: float = 300
    reach_report_s: float = 300         # one reach summary every 5 min

    def per_day(self, kind: str) -> float:
        return {"latency": 86400 / self.latency_interval_s, "bandwidth": self.bandwidth_per_day,
                "dns": 86400 / self.dns_interval_s, "http": 86400 / self.http_interval_s,
                "reach": 86400 / self.reach_report_s}[kind]


@dataclass(frozen=True)
class ReportConfig:
    out_dir: Path = Path("/var/lib/linewatch/reports")
    auto: bool = True              # write last month's report after the month closes
    day: int = 1                   # ... on this day of the month (1-4: operators report before the 5th)
    hour: int = 7                  # ... at this hour, Vietnam time
    email: bool = True             # mail each operator its part, the IT office the whole
    min_completeness_pct: float = 50   # a figure on less than this share of its schedule: "too little data"
    min_tests: int = 5             # a speed verdict needs at least this many tests
    issuer: Issuer = field(default_factory=Issuer)
    schedule: Schedule = field(default_factory=Schedule)


def parse_report(sec: Section, base: Path) -> ReportConfig:
    d = ReportConfig()
    day = sec.num("day", d.day, ge=1, le=28, integer=True)
    if day > 4:
        raise ConfigError(f"{sec.where}: day = {day}: the operators' figures are due before the 5th "
                          f"(Circular 06/2026 Art. 9); use a day from 1 to 4")
    di = Issuer()
    recipients = sec.str_list("recipients", list(di.recipients))
    issuer = Issuer(parent_body=sec.str("parent_body", di.parent_body), body=sec.str("body", di.body),
                    doc_code=sec.str("doc_code", di.doc_code), place=sec.str("place", di.place),
                    signer_title=sec.str("signer_title", di.signer_title),
                    signer_name=sec.str("signer_name", di.signer_name),
                    recipients=tuple(recipients), archive=sec.str("archive", di.archive))
    if not issuer.doc_code or any(c in issuer.doc_code for c in " /"):
        raise ConfigError(f"{sec.where}: doc_code = {issuer.doc_code!r} is the short name in \"Số: …/BC-SKHCN\": "
                          f"letters without spaces or '/'")
    s = sec.table("schedule", f"{sec.where.rstrip(']')}.schedule]")
    ds = Schedule()
    schedule = Schedule(latency_interval_s=s.num("latency_interval_s", ds.latency_interval_s, ge=1),
                        bandwidth_per_day=s.num("bandwidth_per_day", ds.bandwidth_per_day, gt=0, le=1440),
                        dns_interval_s=s.num("dns_interval_s", ds.dns_interval_s, ge=1),
                        http_interval_s=s.num("http_interval_s", ds.http_interval_s, ge=1),
                        reach_report_s=s.num("reach_report_s", ds.reach_report_s, ge=1))
    s.done()
    cfg = ReportConfig(
        out_dir=base / sec.str("out_dir", str(d.out_dir)), auto=sec.bool("auto", d.auto), day=int(day),
        hour=sec.num("hour", d.hour, ge=0, le=23, integer=True), email=sec.bool("email", d.email),
        min_completeness_pct=sec.num("min_completeness_pct", d.min_completeness_pct, ge=0, le=100),
        min_tests=sec.num("min_tests", d.min_tests, ge=1, le=10_000, integer=True),
        issuer=issuer, schedule=schedule)
    sec.done()
    return cfg

"""What a monthly report says, as typed values: the contract between the figures (figures.py,
pure), the renderers (xlsx.py, docx.py) and the tests. No I/O, no wording (text.py).

Times are UTC seconds since the epoch; renderers show them in Vietnam time. Speeds in Mbit/s,
durations in seconds, shares and ratios as fractions (0..1), availability in percent.
A figure that rests on too little data has ``enough = False`` and is never a verdict.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["pass", "fail", "insufficient", "none"]  # none: nothing measured at all

#: Why a unit falls short of basic IT infrastructure (stable codes; wording in text.py).
SHORTFALL_CODES = (
    "computers_fewer_than_staff",  # computers in use < staff (full-time + part-time + contract)
    "no_lan",                       # no office LAN (measured or declared)
    "line_below_minimum",           # a line's average speed below min_speed_ratio x contracted
    "availability_below_minimum",   # a line's availability below min_availability_pct
    "no_measurements",              # nothing measured at all this month
)


@dataclass(frozen=True)
class Period:
    month: str          # "2026-10"
    year: int
    mon: int
    start: float        # 00:00 of the 1st, Vietnam time, as UTC seconds
    end: float          # 00:00 of the next month's 1st, Vietnam time, as UTC seconds (exclusive)

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def days(self) -> int:
        return round(self.seconds / 86400)


@dataclass(frozen=True)
class Basis:
    """What one figure rests on, for the traceability sheet: a disputed number is followed to
    the measurements behind it."""

    site: str
    line: str | None     # None: the site / agent
    figure: str          # stable name, e.g. "download_mean_mbps", "availability_pct", "computers"
    value: str           # the figure as shown
    source: str          # table it was read from: bandwidth_tests | rollups | reach_changes | seq_hours | ...
    first_at: float | None
    last_at: float | None
    count: int           # rows / samples it rests on
    query: str           # how to read them again (SQL over the record, or the CLI command)


@dataclass(frozen=True)
class SpeedFigure:
    """One direction of one line, per QCVN 34:2022: average of the tests against contracted,
    and the share of tests at or above ``min_ratio`` x contracted."""

    contracted_mbps: float
    min_ratio: float
    tests: int                 # tests with a value for this direction
    mean_mbps: float | None
    min_mbps: float | None
    max_mbps: float | None
    tests_ok: int              # tests >= min_ratio x contracted

    @property
    def ratio(self) -> float | None:
        return None if self.mean_mbps is None else self.mean_mbps / self.contracted_mbps

    @property
    def share_ok(self) -> float | None:
        return None if not self.tests else self.tests_ok / self.tests


@dataclass(frozen=True)
class KindCompleteness:
    kind: str            # latency | bandwidth | dns | http | reach
    scheduled: int       # by the configured schedule ([report.schedule]) over the month
    received: int        # measurements of this kind in the month (failed ones included)
    failed: int          # of them, measurements that failed (ok = false)

    @property
    def share(self) -> float | None:
        return None if not self.scheduled else min(1.0, self.received / self.scheduled)


@dataclass(frozen=True)
class IncidentRow:
    id: int
    kind: str
    cause: str
    route: str               # operator | it_office
    site: str
    line: str | None
    target: str | None
    state: str
    opened_at: float
    detected_at: float
    acked_at: float | None
    acked_by: str | None
    resolved_at: float | None
    closed_at: float | None
    time_to_ack_s: float | None
    time_to_repair_s: float | None
    in_maintenance: bool
    suppressed: bool          # kept under a site-wide incident (not sent on its own)
    flaps: int


@dataclass(frozen=True)
class LineFigures:
    site: str
    line: str
    isp: str
    kind: str                  # internet | tslcd
    operator: str              # the telecom operator that answers for it: the line's ISP (VNPT, Viettel, ...)
    monthly_cost_vnd: float | None
    down: SpeedFigure
    up: SpeedFigure
    speed_verdict: Verdict     # pass: both means >= min_ratio x contracted
    latency_rounds: int
    latency_mean_ms: float | None   # mean of the rounds' average RTT (all targets)
    latency_p95_ms: float | None    # p95 of the rounds' median RTT (from the rollups' histograms)
    max_latency_ms: float
    latency_verdict: Verdict
    pings_sent: int
    pings_lost: int
    observed_s: float          # seconds the line's state was measured (reach coverage)
    down_s: float              # of them, seconds the line was down (the operator's side)
    lan_down_s: float          # seconds the office's own gateway was down (not the operator's)
    min_availability_pct: float
    availability_verdict: Verdict
    completeness: tuple[KindCompleteness, ...]
    incidents: tuple[IncidentRow, ...]
    insufficient: tuple[str, ...]   # figures marked "too little data": speed | latency | availability

    @property
    def loss_pct(self) -> float | None:
        return None if not self.pings_sent else 100.0 * self.pings_lost / self.pings_sent

    @property
    def availability_pct(self) -> float | None:
        return None if self.observed_s <= 0 else 100.0 * (1 - self.down_s / self.observed_s)

    @property
    def measured(self) -> bool:
        return any(c.received for c in self.completeness)


@dataclass(frozen=True)
class Shortfall:
    code: str                 # one of SHORTFALL_CODES
    line: str | None          # the line concerned, for line reasons
    detail: dict[str, float | int | str]   # the numbers behind it (text.py words them)


@dataclass(frozen=True)
class SiteFigures:
    code: str
    name: str
    province: str
    group: str | None
    kind: str                         # commune | other
    staff_full_time: int
    staff_part_time: int
    staff_contract: int
    laptops: int | None               # declared in the registry ([site.devices]); None: not declared
    desktops: int | None
    scanners: int | None
    computers_measured: int | None    # computers seen on the LAN this month (+ the agent's own); None: no sweep
    printers_measured: int | None     # printers / scanners seen on the LAN
    unsure_measured: int | None       # devices whose class the sweep could not tell
    software: tuple[tuple[str, float | None], ...]   # (name, yearly/monthly cost as declared)
    isps: tuple[str, ...]
    monthly_cost_vnd: float | None    # all lines together; None when no line declares a cost
    lan: bool | None                  # has an office LAN; None: neither measured nor declared
    lan_source: str                   # measured | declared | unknown
    proposals: str | None             # "Đề xuất/kiến nghị" from the registry
    lines: tuple[LineFigures, ...]
    agents: tuple[str, ...]
    messages: int                     # agent messages received for the month
    seq_missing: int                  # messages lost in transit (sequence gaps), this month
    offline_s: float                  # seconds the collector could not hear any of the site's agents
    shortfalls: tuple[Shortfall, ...]
    incidents: tuple[IncidentRow, ...] = ()   # the site's own (no line): site unreachable, LAN fault

    @property
    def staff_total(self) -> int:
        return self.staff_full_time + self.staff_part_time + self.staff_contract

    @property
    def computers(self) -> int | None:
        """Computers in use: declared (laptops + desktops) when declared, else measured."""
        if self.laptops is not None or self.desktops is not None:
            return (self.laptops or 0) + (self.desktops or 0)
        return self.computers_measured

    @property
    def n_lines(self) -> int:
        return len(self.lines)

    @property
    def falls_short(self) -> bool:
        return bool(self.shortfalls)


@dataclass(frozen=True)
class Issuer:
    """Who signs the cover report ([report] in collector.toml)."""

    parent_body: str = "UBND TỈNH"           # line above the issuing body, e.g. "UBND TỈNH GIA LAI"
    body: str = "SỞ KHOA HỌC VÀ CÔNG NGHỆ"   # the issuing body, upper case
    doc_code: str = "SKHCN"                  # "Số: …/BC-SKHCN"
    place: str = ""                          # "Quy Nhơn, ngày … tháng … năm …"
    signer_title: str = "GIÁM ĐỐC"           # e.g. "KT. GIÁM ĐỐC\nPHÓ GIÁM ĐỐC"
    signer_name: str = ""
    recipients: tuple[str, ...] = ("UBND tỉnh (để b/c)", "Các doanh nghiệp viễn thông", "UBND các xã, phường")
    archive: str = "Lưu: VT"


@dataclass(frozen=True)
class Totals:
    sites: int
    sites_measured: int
    sites_short: int
    lines: int
    lines_speed_pass: int
    lines_speed_fail: int
    lines_insufficient: int     # speed verdict "insufficient" (too little data)
    incidents: int
    incidents_open: int

    @property
    def lines_no_data(self) -> int:
        """Lines with no speed test at all this month (verdict "none")."""
        return max(0, self.lines - self.lines_speed_pass - self.lines_speed_fail - self.lines_insufficient)


@dataclass(frozen=True)
class Report:
    period: Period
    generated_at: float
    scope: dict[str, str]                 # filters used: province / site / operator
    provinces: dict[str, str]             # code -> name ("52" -> "Gia Lai"), names from config
    issuer: Issuer
    sites: tuple[SiteFigures, ...]
    operators: tuple[str, ...]            # operators with lines in scope, sorted
    basis: tuple[Basis, ...]
    totals: Totals
    notes: tuple[str, ...] = field(default_factory=tuple)   # e.g. "raw rows pruned: computed from rollups"

    def lines(self, operator: str | None = None) -> list[LineFigures]:
        return [ln for s in self.sites for ln in s.lines if operator is None or ln.operator == operator]

    def incidents(self, operator: str | None = None) -> list[IncidentRow]:
        """Every incident of the month: the lines' (of ``operator``), then the sites' own when
        no operator is asked for."""
        rows = [i for ln in self.lines(operator) for i in ln.incidents]
        if operator is None:
            rows += [i for s in self.sites for i in s.incidents]
        return sorted(rows, key=lambda i: (i.opened_at, i.id))

    def province_sites(self, province: str) -> list[SiteFigures]:
        return [s for s in self.sites if s.province == province]

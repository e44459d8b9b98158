"""The site registry: the sites a provincial IT office watches, their staff and lines.

A TOML file the office edits (see collector/example-registry.toml). Defaults follow the
field facts: QCVN 34:2022 speed verdict 0.8 x contracted; latency <= 50 ms and
availability >= 99.5 % (QCVN 34:2019 values). Every default can be overridden per site
and per line, because provinces add their own rules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linewatch import wire
from linewatch.config import ConfigError, Section, load_toml

EXAMPLE = Path(__file__).with_name("example-registry.toml")


@dataclass(frozen=True)
class Thresholds:
    min_speed_ratio: float = 0.8        # QCVN 34:2022 s2.1
    max_latency_ms: float = 50.0        # QCVN 34:2019
    min_availability_pct: float = 99.5  # QCVN 34:2019
    # Not in QCVN 34:2022 as we have it: loss over one latency round (20 pings) above this
    # counts as a lossy round; 5 % needs 2 of 20 lost, so 1 % random loss rarely trips it.
    max_loss_pct: float = 5.0


@dataclass(frozen=True)
class Contact:
    """Who hears of a problem: a line's operator (its NOC) or the IT office."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    escalation_email: str | None = None  # second contact, when the first does not acknowledge in time
    webhook_url: str | None = None       # signed JSON POST (the operator's ticket system)
    chat_url: str | None = None          # Apprise URL, e.g. tgram://BOT_TOKEN/CHAT_ID (Telegram)


@dataclass(frozen=True)
class Line:
    id: str
    isp: str
    kind: str  # "internet" | "tslcd"
    contracted_down_mbps: float
    contracted_up_mbps: float
    monthly_cost_vnd: float | None
    operator: Contact
    thresholds: Thresholds


@dataclass(frozen=True)
class Staff:
    full_time: int = 0
    part_time: int = 0
    contract: int = 0

    @property
    def total(self) -> int:
        return self.full_time + self.part_time + self.contract


@dataclass(frozen=True)
class Devices:
    """[site.devices]: what the unit declares it uses (the monthly form's columns); None = not
    declared, and the report shows the measured LAN inventory instead of inventing a number."""

    laptops: int | None = None
    desktops: int | None = None
    scanners: int | None = None


@dataclass(frozen=True)
class Software:
    name: str
    cost_vnd: float | None = None


@dataclass(frozen=True)
class Site:
    code: str
    province: str
    name: str
    kind: str  # "commune" | "other"
    group: str | None
    staff: Staff
    lines: tuple[Line, ...]
    agents: tuple[str, ...] = ()  # empty: any agent may report for this site
    devices: Devices = field(default_factory=Devices)
    software: tuple[Software, ...] = ()
    lan: bool | None = None           # declared: has an office LAN (the measured sweep wins when there is one)
    proposals: str | None = None      # "Đề xuất/kiến nghị liên quan đến hạ tầng CNTT" for the monthly form

    def line(self, line_id: str) -> Line | None:
        return next((ln for ln in self.lines if ln.id == line_id), None)


@dataclass(frozen=True)
class Registry:
    sites: dict[str, Site]
    defaults: Thresholds = field(default_factory=Thresholds)
    source: Path | None = None
    it_office: Contact = field(default_factory=Contact)  # [it_office]: LAN/PC faults, escalations, digests
    provinces: dict[str, str] = field(default_factory=dict)  # [provinces]: "52" = "Gia Lai" (report headings)

    def site(self, code: str) -> Site | None:
        return self.sites.get(code)


def load(path: str | Path) -> Registry:
    return parse(load_toml(path, "site registry"), Path(path))


def _thresholds(sec: Section, base: Thresholds) -> Thresholds:
    return Thresholds(
        min_speed_ratio=sec.num("min_speed_ratio", base.min_speed_ratio, gt=0, le=1),
        max_latency_ms=sec.num("max_latency_ms", base.max_latency_ms, gt=0),
        min_availability_pct=sec.num("min_availability_pct", base.min_availability_pct, gt=0, le=100),
        max_loss_pct=sec.num("max_loss_pct", base.max_loss_pct, ge=0, le=100),
    )


def _contact(sec: Section) -> Contact:
    c = Contact(name=sec.str("name"), email=sec.str("email"), phone=sec.str("phone"),
                escalation_email=sec.str("escalation_email"), webhook_url=sec.str("webhook_url"),
                chat_url=sec.str("chat_url"))
    sec.done()
    for what in ("email", "escalation_email"):
        v = getattr(c, what)
        if v and ("@" not in v or " " in v.strip()):
            raise ConfigError(f"{sec.where}: {what} {v!r} is not an e-mail address")
    if c.webhook_url and not c.webhook_url.startswith(("http://", "https://")):
        raise ConfigError(f"{sec.where}: webhook_url {c.webhook_url!r} must start with http:// or https://")
    if c.chat_url and "://" not in c.chat_url:
        raise ConfigError(f"{sec.where}: chat_url {c.chat_url!r} is not an Apprise URL like "
                          f"tgram://BOT_TOKEN/CHAT_ID")
    return c


def parse(doc: dict[str, Any], source: Path | None = None) -> Registry:
    name = source.name if source else "registry"
    root = Section(doc, name)
    d = root.table("defaults", f"{name} [defaults]")
    defaults = _thresholds(d, Thresholds())
    d.done()
    it_office = _contact(root.table("it_office", f"{name} [it_office]"))
    pv = root.table("provinces", f"{name} [provinces]")
    provinces: dict[str, str] = {}
    for code in list(pv.data):
        if not wire.PROVINCE_RE.match(code):
            raise ConfigError(f"{name} [provinces]: {code!r} is not a 2-digit province code, e.g. \"52\" = \"Gia Lai\"")
        provinces[code] = pv.str(code, required=True)
    pv.done()
    sites: dict[str, Site] = {}
    agent_owner: dict[str, str] = {}
    for i, raw in enumerate(root.tables("site")):
        site = _parse_site(raw, i, name, defaults)
        if site.code in sites:
            raise ConfigError(f"{name}: site {site.code} is listed twice")
        for a in site.agents:
            if a in agent_owner:
                raise ConfigError(f"{name}: agent {a!r} is listed under sites {agent_owner[a]} and {site.code}")
            agent_owner[a] = site.code
        sites[site.code] = site
    root.done()
    if not sites:
        raise ConfigError(f"{name}: no [[site]] listed")
    return Registry(sites, defaults, source, it_office, provinces)


def _parse_site(raw: Any, index: int, name: str, defaults: Thresholds) -> Site:
    sec = Section(raw, f"{name} [[site]] #{index + 1}")
    code = sec.str("code", required=True)
    sec.where = f"{name} site {code}"
    kind = sec.str("kind", "commune", choices=("commune", "other"))
    province = sec.str("province", required=True)
    if not wire.PROVINCE_RE.match(province):
        raise ConfigError(f"{sec.where}: province {province!r} must be 2 digits, e.g. \"52\"")
    if kind == "commune" and not wire.COMMUNE_RE.match(code):
        raise ConfigError(f"{sec.where}: a commune code must be 5 digits (Decision 19/2025/QD-TTg), "
                          f"or set kind = \"other\" for a non-commune office")
    if kind == "other" and not (wire.OTHER_SITE_RE.match(code) and code.startswith(province + "-")):
        raise ConfigError(f"{sec.where}: a non-commune site code must look like \"{province}-so-khcn\" "
                          f"(province, dash, lower-case name)")
    site_name = sec.str("name", required=True)
    group = sec.str("group")
    st = sec.table("staff", f"{sec.where} [staff]")
    staff = Staff(full_time=st.num("full_time", 0, ge=0, integer=True),
                  part_time=st.num("part_time", 0, ge=0, integer=True),
                  contract=st.num("contract", 0, ge=0, integer=True))
    st.done()
    dv = sec.table("devices", f"{sec.where} [devices]")
    devices = Devices(*(dv.num(k, None, ge=0, le=100_000, integer=True) for k in ("laptops", "desktops", "scanners")))
    dv.done()
    software = []
    for j, raw_sw in enumerate(sec.tables("software")):
        sw = Section(raw_sw, f"{sec.where} [[site.software]] #{j + 1}")
        software.append(Software(sw.str("name", required=True), sw.num("cost_vnd", None, ge=0)))
        sw.done()
    lan = sec.bool("lan") if "lan" in sec.data else None
    proposals = sec.str("proposals")
    agents = tuple(sec.str_list("agents"))
    for a in agents:
        if not wire.ID_RE.match(a):
            raise ConfigError(f"{sec.where}: agent id {a!r} must be lower-case letters, digits, '-', '_' or '.'")
    th = sec.table("thresholds", f"{sec.where} [thresholds]")
    site_thresholds = _thresholds(th, defaults)
    th.done()
    lines = tuple(_parse_line(r, j, sec.where, site_thresholds) for j, r in enumerate(sec.tables("line")))
    sec.done()
    ids = [ln.id for ln in lines]
    if dup := sorted({i for i in ids if ids.count(i) > 1}):
        raise ConfigError(f"{sec.where}: line id(s) {', '.join(dup)} appear more than once")
    return Site(code, province, site_name, kind, group, staff, lines, agents, devices, tuple(software), lan, proposals)


def _parse_line(raw: Any, index: int, where: str, base: Thresholds) -> Line:
    sec = Section(raw, f"{where} [[site.line]] #{index + 1}")
    line_id = sec.str("id", required=True)
    sec.where = f"{where}, line {line_id!r}"
    if not wire.ID_RE.match(line_id):
        raise ConfigError(f"{sec.where}: id must be lower-case letters, digits, '-', '_' or '.'")
    isp = sec.str("isp", required=True)
    kind = sec.str("kind", required=True, choices=("internet", "tslcd"))
    down = sec.num("contracted_down_mbps", required=True, gt=0)
    up = sec.num("contracted_up_mbps", required=True, gt=0)
    cost = sec.num("monthly_cost_vnd", None, ge=0)
    contact = _contact(sec.table("operator", f"{sec.where} [operator]"))
    th = sec.table("thresholds", f"{sec.where} [thresholds]")
    thresholds = _thresholds(th, base)
    th.done()
    sec.done()
    return Line(line_id, isp, kind, down, up, cost, contact, thresholds)

"""The report's figures, pure: typed inputs from the record (rollups, bandwidth tests, state
changes, sequence spans, LAN hosts, incidents) and the registry in, model values out. No SQL,
no clock, no wording. Every definition here is the one the README and the notes sheet state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable

from .. import registry as reg
from ..inventory import count as lan_count
from ..record import rollup as rm
from ..record.types import BandwidthTest, Incident, LanState, LatencyMonth, SeqHour, StateChange
from . import text
from .config import ReportConfig
from .model import (Basis, IncidentRow, KindCompleteness, LineFigures, Period, Shortfall, SiteFigures, SpeedFigure,
                    Verdict)

#: Sequence spans larger than this are a counter reset or a hostile number, not lost messages
#: (the record's MAX_GAP).
MAX_GAP = 1_000_000
LINE_KINDS_DONE = ("latency", "bandwidth", "reach", "dns", "http")


@dataclass
class LineInputs:
    site: reg.Site
    line: reg.Line
    tests: list[BandwidthTest] = field(default_factory=list)
    latency: LatencyMonth | None = None                       # the period's rounds, summed
    reach: dict[int, float] = field(default_factory=dict)     # UTC hour -> seconds observed (reach coverage)
    counts: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # kind -> (n, n_ok, targets)
    changes: list[StateChange] = field(default_factory=list)  # this line's, oldest first (lookback included)
    incidents: list[Incident] = field(default_factory=list)


@dataclass
class SiteInputs:
    site: reg.Site
    lines: list[LineInputs]
    seq: list[SeqHour] = field(default_factory=list)
    agent_changes: list[StateChange] = field(default_factory=list)
    lan: LanState | None = None
    incidents: list[Incident] = field(default_factory=list)   # the site's own (no line)


# -- intervals ---------------------------------------------------------------------------
def state_intervals(changes: Iterable[StateChange], start: float, end: float) -> list[tuple[float, float, str]]:
    """[(from, to, state)] covering [start, end) from a subject's changes (oldest first): the
    state before the first known change is "unknown"."""
    out: list[tuple[float, float, str]] = []
    t, state = start, "unknown"
    for c in sorted(changes, key=lambda c: (c.at, c.pos)):
        if c.at <= start:
            state = c.state
            continue
        if c.at >= end:
            break
        if c.at > t:
            out.append((t, c.at, state))
        t, state = c.at, c.state
    if t < end:
        out.append((t, end, state))
    return out


def seconds_per_hour(intervals: Iterable[tuple[float, float]]) -> dict[int, float]:
    """Seconds of the intervals falling in each UTC hour."""
    out: dict[int, float] = {}
    for a, b in intervals:
        h = rm.hour_of(a)
        while h < b:
            lo, hi = max(a, h), min(b, h + 3600)
            if hi > lo:
                out[h] = out.get(h, 0.0) + (hi - lo)
            h += 3600
    return out


def availability(reach: dict[int, float], changes: list[StateChange], p: Period) -> tuple[float, float, float]:
    """(observed_s, down_s, lan_down_s): per UTC hour, observed = min(3600, the reach messages'
    covered seconds); down seconds in the hour (line down, as measured) capped at observed."""
    observed = {h: min(3600.0, v) for h, v in reach.items() if p.start <= h < p.end and v > 0}
    iv = state_intervals(changes, p.start, p.end)
    down = seconds_per_hour((a, b) for a, b, st in iv if st == "down")
    lan = seconds_per_hour((a, b) for a, b, st in iv if st == "lan_down")
    down_s = sum(min(v, observed.get(h, 0.0)) for h, v in down.items())
    lan_s = sum(min(v, observed.get(h, 0.0)) for h, v in lan.items())
    total = sum(observed.values())
    return total, min(down_s, total), min(lan_s, total)  # min: float sums in another order


def offline_seconds(changes: list[StateChange], p: Period) -> float:
    """Seconds in the period during which every agent of the site was offline or silent (as
    the collector saw them); an agent with no change known is not counted as offline."""
    by_agent: dict[str, list[StateChange]] = {}
    for c in changes:
        by_agent.setdefault(c.agent_id, []).append(c)
    if not by_agent:
        return 0.0
    points: list[tuple[float, int]] = []
    for cs in by_agent.values():
        for a, b, st in state_intervals(cs, p.start, p.end):
            if st in ("offline", "silent"):
                points += [(a, 1), (b, -1)]
    n, total, last, need = 0, 0.0, p.start, len(by_agent)
    for t, d in sorted(points):
        if n == need:
            total += t - last
        n += d
        last = t
    return total


# -- one line ----------------------------------------------------------------------------
def speed(tests: list[BandwidthTest], attr: str, contracted: float, min_ratio: float) -> SpeedFigure:
    vals = [v for t in tests if t.ok and (v := getattr(t, attr)) is not None and math.isfinite(v)]
    return SpeedFigure(contracted, min_ratio, len(vals), sum(vals) / len(vals) if vals else None,
                       min(vals) if vals else None, max(vals) if vals else None,
                       sum(1 for v in vals if v >= min_ratio * contracted))


def line_figures(li: LineInputs, p: Period, cfg: ReportConfig) -> tuple[LineFigures, list[Basis]]:
    ln, th, sch = li.line, li.line.thresholds, cfg.schedule
    need = cfg.min_completeness_pct / 100
    tests = [t for t in li.tests if p.start <= t.at < p.end]
    down = speed(tests, "download_mbps", ln.contracted_down_mbps, th.min_speed_ratio)
    up = speed(tests, "upload_mbps", ln.contracted_up_mbps, th.min_speed_ratio)

    def scheduled(kind: str) -> int:
        if kind == "bandwidth":
            return round(sch.per_day(kind) * p.days)
        targets = li.counts.get(kind, (0, 0, 0))[2]
        if kind in ("latency", "reach"):
            targets = max(1, targets)
        return round(targets * sch.per_day(kind) * p.days)

    comp = []
    for kind in LINE_KINDS_DONE:
        if kind == "bandwidth":
            received, failed = len(tests), sum(1 for t in tests if not t.ok)
        else:
            n, n_ok, _t = li.counts.get(kind, (0, 0, 0))
            received, failed = n, n - n_ok
            if kind in ("dns", "http") and not n:
                continue
        comp.append(KindCompleteness(kind, scheduled(kind), received, failed))

    bw_need = max(cfg.min_tests, need * sch.bandwidth_per_day * p.days)
    sv: Verdict
    if not down.tests and not up.tests:
        sv = "none"
    elif min(down.tests, up.tests) < bw_need:
        sv = "insufficient"
    else:
        sv = "pass" if all(s.mean_mbps is not None and s.mean_mbps >= s.min_ratio * s.contracted_mbps
                           for s in (down, up)) else "fail"

    lat = li.latency
    rounds = lat.n if lat else 0
    lat_mean = lat.avg_sum / lat.avg_n if lat and lat.avg_n else None
    p95 = rm.quantile(lat.median, 0.95) if lat and lat.median else None
    pings_sent = int(lat.sent) if lat else 0
    pings_lost = max(0, pings_sent - int(lat.received)) if lat else 0
    lv: Verdict
    if not rounds or lat_mean is None:
        lv = "none"
    elif rounds < need * scheduled("latency"):
        lv = "insufficient"
    else:
        lv = "pass" if lat_mean <= th.max_latency_ms else "fail"

    observed, down_s, lan_s = availability(li.reach, li.changes, p)
    av: Verdict
    if observed <= 0:
        av = "none"
    elif observed < need * p.seconds:
        av = "insufficient"
    else:
        av = "pass" if 100 * (1 - down_s / observed) >= th.min_availability_pct else "fail"

    rows = [_incident_row(i) for i in sorted(li.incidents, key=lambda i: i.opened_at)]
    fig = LineFigures(
        li.site.code, ln.id, ln.isp, ln.kind, ln.isp, ln.monthly_cost_vnd, down, up, sv, rounds, lat_mean, p95,
        th.max_latency_ms, lv, pings_sent, pings_lost, observed, down_s, lan_s, th.min_availability_pct, av,
        tuple(comp), tuple(rows), tuple(w for w, v in (("speed", sv), ("latency", lv), ("availability", av))
                                       if v == "insufficient"))
    return fig, line_basis(fig, li, p, tests)


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def line_basis(fig: LineFigures, li: LineInputs, p: Period, tests: list[BandwidthTest]) -> list[Basis]:
    site, line = _q(fig.site), _q(fig.line)
    rng = f"site = {site} AND line = {line}"
    out = []
    t_at = [t.at for t in tests]
    bw_sql = (f"SELECT at, ok, download_mbps, upload_mbps, method, target FROM bandwidth_tests WHERE {rng} "
              f"AND at >= {p.start:.0f} AND at < {p.end:.0f} ORDER BY at")
    for name, s in (("download_mean_mbps", fig.down), ("upload_mean_mbps", fig.up)):
        out.append(Basis(fig.site, fig.line, name, "" if s.mean_mbps is None else f"{s.mean_mbps:.3f}",
                         "bandwidth_tests", min(t_at, default=None), max(t_at, default=None), s.tests, bw_sql))
    rollup_sql = (f"SELECT hour, agent_id, target, method, n, n_ok, stats FROM rollups WHERE {rng} AND kind = '{{}}' "
                  f"AND hour >= {p.start:.0f} AND hour < {p.end:.0f} ORDER BY hour")
    out.append(Basis(fig.site, fig.line, "latency_mean_ms", "" if fig.latency_mean_ms is None else
                     f"{fig.latency_mean_ms:.3f}", "rollups", p.start, p.end, fig.latency_rounds,
                     rollup_sql.format("latency") + " -- stats.rtt_avg_ms = [n, sum, min, max, histogram]"))
    hours = sorted(h for h, v in li.reach.items() if p.start <= h < p.end and v > 0)
    out.append(Basis(fig.site, fig.line, "availability_pct", "" if fig.availability_pct is None else
                     f"{fig.availability_pct:.3f}", "rollups + state_changes", hours[0] if hours else None,
                     hours[-1] + 3600 if hours else None, len(hours),
                     rollup_sql.format("reach") + " -- stats.covered_s: seconds observed; "
                     f"SELECT at, state, code FROM state_changes WHERE subject = 'line' AND {rng} "
                     f"AND at < {p.end:.0f} ORDER BY at -- down from each 'down' to the next 'up'"))
    return out


# -- one site ----------------------------------------------------------------------------
def lan_counts(lan: LanState | None, p: Period) -> tuple[int | None, int | None, int | None, bool | None]:
    """(computers, printers, unsure, has LAN) measured in the period; None where no sweep or
    inventory tells. The rule is collector/inventory.count's: the hosts seen in the period
    classed computer, plus each agent's own computer when it says it counts (older agents:
    unless ARM), its own MACs never counted twice; unsure (and older "unknown") apart."""
    if lan is None:
        return None, None, None, None
    hosts = [h for h in lan.hosts + lan.gone if h.first_seen < p.end and h.last_seen >= p.start]
    swept = bool(hosts) or any(s.ok_at is not None and s.ok_at >= p.start for s in lan.sweeps)
    n = lan_count(hosts, lan.inventories)
    if not swept:
        return (n.own or None), None, None, None
    return n.computers, n.printers, n.unsure, n.has_lan


def seq_figures(seq: list[SeqHour], p: Period) -> tuple[int, int]:
    """(messages, missing) of the site's agent streams measured in the period."""
    streams: dict[tuple[str, str], list[int]] = {}
    for h in seq:
        if not p.start <= h.hour < p.end:
            continue
        s = streams.setdefault((h.agent_id, h.stream), [0, h.seq_min, h.seq_max])
        s[0] += h.n
        s[1], s[2] = min(s[1], h.seq_min), max(s[2], h.seq_max)
    messages = sum(s[0] for s in streams.values())
    missing = 0
    for n, lo, hi in streams.values():
        gap = (hi - lo + 1) - n
        if 0 < gap <= MAX_GAP:
            missing += gap
    return messages, missing


def site_figures(si: SiteInputs, p: Period, cfg: ReportConfig) -> tuple[SiteFigures, list[Basis]]:
    s = si.site
    lines, basis = [], []
    for li in si.lines:
        f, b = line_figures(li, p, cfg)
        lines.append(f)
        basis += b
    messages, missing = seq_figures(si.seq, p)
    comp, printers, unsure, lan_measured = lan_counts(si.lan, p)
    lan, lan_source = (lan_measured, "measured") if lan_measured is not None else \
        ((s.lan, "declared") if s.lan is not None else (None, "unknown"))
    costs = [ln.monthly_cost_vnd for ln in s.lines if ln.monthly_cost_vnd is not None]
    agents = tuple(sorted(set(s.agents) | {h.agent_id for h in si.seq}))
    shell = SiteFigures(
        s.code, s.name, s.province, s.group, s.kind, s.staff.full_time, s.staff.part_time, s.staff.contract,
        s.devices.laptops, s.devices.desktops, s.devices.scanners, comp, printers, unsure,
        tuple((sw.name, sw.cost_vnd) for sw in s.software), tuple(dict.fromkeys(ln.isp for ln in s.lines)),
        sum(costs) if costs else None, lan, lan_source, s.proposals, tuple(lines), agents, messages, missing,
        offline_seconds(si.agent_changes, p), (),
        tuple(_incident_row(i) for i in sorted(si.incidents, key=lambda i: i.opened_at)))
    fig = _with_shortfalls(shell)
    sq = _q(s.code)
    basis += [
        Basis(s.code, None, "messages", str(messages), "seq_hours", p.start, p.end, messages,
              f"SELECT agent_id, stream, hour, n, seq_min, seq_max FROM seq_hours WHERE site = {sq} "
              f"AND hour >= {p.start:.0f} AND hour < {p.end:.0f} ORDER BY agent_id, stream, hour"),
        Basis(s.code, None, "offline_s", f"{fig.offline_s:.0f}", "state_changes", p.start, p.end,
              len(si.agent_changes), f"SELECT at, agent_id, state FROM state_changes WHERE subject = 'agent' "
                                     f"AND site = {sq} AND at < {p.end:.0f} ORDER BY at"),
        Basis(s.code, None, "computers_measured", "" if comp is None else str(comp), "lan_hosts", p.start, p.end,
              len(si.lan.hosts) + len(si.lan.gone) if si.lan else 0,
              f"SELECT mac, ip, vendor, name, device_class, first_seen, last_seen FROM lan_hosts WHERE site = {sq} "
              f"AND first_seen < {p.end:.0f} AND last_seen >= {p.start:.0f}; "
              f"SELECT agent_id, data FROM host_inventory WHERE site = {sq}"),
        Basis(s.code, None, "staff", str(fig.staff_total), "registry", None, None, 1,
              f"registry.toml [[site]] code = {sq}: [site.staff], [site.devices], lan"),
    ]
    return fig, basis


def _incident_row(i: Incident) -> IncidentRow:
    return IncidentRow(i.id, i.kind, i.cause, i.route, i.site, i.line, i.target, i.state, i.opened_at,
                       i.detected_at, i.acked_at, i.acked_by, i.resolved_at, i.closed_at, i.time_to_ack_s,
                       i.time_to_repair_s, i.maintenance_id is not None, i.suppressed_by is not None,
                       int(i.summary.get("flaps", 0) or 0))


def _with_shortfalls(f: SiteFigures) -> SiteFigures:
    out: list[Shortfall] = []
    if f.messages == 0 and not any(ln.measured for ln in f.lines):
        out.append(Shortfall("no_measurements", None, {}))
    if f.computers is not None and f.staff_total and f.computers < f.staff_total:
        out.append(Shortfall("computers_fewer_than_staff", None, {"computers": f.computers, "staff": f.staff_total}))
    if f.lan is False:
        out.append(Shortfall("no_lan", None, {"source": f.lan_source}))
    for ln in f.lines:
        if ln.speed_verdict == "fail":
            for d, s in (("down", ln.down), ("up", ln.up)):
                if s.mean_mbps is not None and s.mean_mbps < s.min_ratio * s.contracted_mbps:
                    out.append(Shortfall("line_below_minimum", ln.line, {
                        "line_name": text.line_name(ln), "direction": text.direction(d), "mean_mbps": s.mean_mbps,
                        "ratio": s.ratio or 0.0, "contracted_mbps": s.contracted_mbps, "min_ratio": s.min_ratio}))
        if ln.availability_verdict == "fail":
            out.append(Shortfall("availability_below_minimum", ln.line, {
                "line_name": text.line_name(ln), "availability_pct": ln.availability_pct or 0.0,
                "min_pct": ln.min_availability_pct, "down_s": ln.down_s}))
    return replace(f, shortfalls=tuple(out))

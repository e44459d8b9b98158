"""What the time-series server receives: the one owner of metric names, tags and fields.

Pure functions from record events (and the registry) to InfluxDB line-protocol points.
VictoriaMetrics names a series ``<measurement>_<field>`` and turns tags into labels, so
``lw_latency`` with field ``rtt_avg_ms`` is queried as ``lw_latency_rtt_avg_ms{site="21583"}``.

* numeric fields only (VictoriaMetrics stores a text field as 0): text goes into tags, and
  only text with few values (province, site, line, isp, line kind, target, method);
* booleans as 0/1 (``ok``, ``up``, ``compliant_down``);
* every point carries the measured time (``at``), in milliseconds;
* a line's contract (contracted speeds, 0.8 x line, thresholds) is exported with every speed
  test and every ``contract_every_s`` for all lines, so a panel can draw measured against
  contracted and the 0.8 x line over any range.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..incidents.rules import speed_verdict
from ..record.types import AGENT_STATE, Event
from ..registry import Line, Registry, Site

PREFIX = "lw_"
#: measurement per record event kind
MEASUREMENT = {"latency": "lw_latency", "bandwidth": "lw_bandwidth", "dns": "lw_dns", "http": "lw_http",
               "reach": "lw_reach", "heartbeat": "lw_agent", "lan": "lw_lan", "inventory": "lw_host",
               AGENT_STATE: "lw_agent_state"}
LINE_TAGS = ("province", "site", "line", "isp", "line_kind")
#: data fields never exported (ids, counters of a message's own bookkeeping)
SKIP_FIELDS = {"command_id", "sweep_no", "missed_sweeps_before_gone"}


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, float], ...]
    time_ms: int

    def line_protocol(self) -> str:
        tags = "".join(f",{_esc_key(k)}={_esc_key(v)}" for k, v in self.tags if v != "")
        flds = ",".join(f"{_esc_key(k)}={_num(v)}" for k, v in self.fields)
        return f"{_esc_key(self.measurement)}{tags} {flds} {self.time_ms}"

    @property
    def series(self) -> tuple:
        return (self.measurement, self.tags)


#: what line protocol escapes in measurement names, tag keys/values and field keys; a raw CR or
#: LF would end the line (found by the property test), so they are written as backslash-r and backslash-n
_SPECIAL = re.compile(r"[\\, =\n\r]")


@lru_cache(maxsize=8192)  # the same few names and tag values again and again: the export's hot spot
def _esc_key(s: str) -> str:
    s = str(s)
    if _SPECIAL.search(s) is None:
        return s
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ") \
        .replace("\n", "\\n").replace("\r", "\\r")


def _num(v: float) -> str:
    """Every field a float: one type per field across all points (InfluxDB refuses a field
    that is an integer in one point and a float in the next)."""
    return repr(float(v))


def numeric_fields(data: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in data.items():
        if k in SKIP_FIELDS:
            continue
        if isinstance(v, bool):
            out[k] = 1.0 if v else 0.0
        elif isinstance(v, (int, float)) and abs(v) < 1e15:
            out[k] = float(v)
    return out


def line_tags(site: Site, line: Line | None, line_id: str | None) -> dict[str, str]:
    return {"province": site.province, "site": site.code, "line": line_id or "",
            "isp": line.isp if line else "", "line_kind": line.kind if line else ""}


def _pt(measurement: str, tags: dict[str, str], fields: dict[str, float], at: float) -> Point | None:
    if not fields:
        return None
    return Point(measurement, tuple(sorted((k, str(v)) for k, v in tags.items() if v not in (None, ""))),
                 tuple(sorted(fields.items())), int(round(at * 1000)))


def contract_point(site: Site, line: Line, at: float) -> Point:
    th = line.thresholds
    return _pt("lw_line", line_tags(site, line, line.id), {
        "contracted_down_mbps": line.contracted_down_mbps, "contracted_up_mbps": line.contracted_up_mbps,
        "min_speed_ratio": th.min_speed_ratio,
        "threshold_down_mbps": th.min_speed_ratio * line.contracted_down_mbps,
        "threshold_up_mbps": th.min_speed_ratio * line.contracted_up_mbps,
        "max_latency_ms": th.max_latency_ms, "max_loss_pct": th.max_loss_pct,
        "min_availability_pct": th.min_availability_pct}, at)  # type: ignore[return-value]


def site_point(site: Site, at: float, computers: int | None = None) -> Point:
    f = {"staff_total": float(site.staff.total), "staff_full_time": float(site.staff.full_time),
         "staff_part_time": float(site.staff.part_time), "staff_contract": float(site.staff.contract),
         "lines": float(len(site.lines))}
    if computers is not None:
        f["computers"] = float(computers)
    return _pt("lw_site", {"province": site.province, "site": site.code}, f, at)  # type: ignore[return-value]


def points_for(e: Event, registry: Registry) -> list[Point]:
    """The points of one record event (none for a site the registry does not know)."""
    site = registry.site(e.site)
    m = MEASUREMENT.get(e.kind)
    if site is None or m is None:
        return []
    if e.kind == AGENT_STATE:
        state = e.data.get("state")
        p = _pt(m, {"province": site.province, "site": site.code, "agent": e.agent_id},
                {"online": 1.0 if state == "online" else 0.0, "silent": 1.0 if state == "silent" else 0.0}, e.at)
        return [p] if p else []
    if e.kind in ("heartbeat", "lan", "inventory"):
        tags = {"province": site.province, "site": site.code, "agent": e.agent_id}
        fields = numeric_fields(e.data)
        if e.kind == "lan":
            fields = {k: v for k, v in fields.items() if k in ("hosts_seen", "hosts_known", "computers", "sweep_s")}
        p = _pt(m, tags, {**fields, "ok": float(e.ok)}, e.at)
        return [p] if p else []
    line = site.line(e.line) if e.line else None
    tags = line_tags(site, line, e.line)
    d = e.data
    if e.kind == "latency":
        tags.update(target=str(d.get("target", "")), method=str(d.get("method", "")))
    elif e.kind == "bandwidth":
        tags.update(target=str(d.get("target", "")), method=str(d.get("method", "")))
    elif e.kind == "dns":
        tags.update(target=f"{d.get('name')}@{d.get('resolver')}", method=str(d.get("qtype", "")))
    elif e.kind == "http":
        tags.update(target=str(d.get("url", "")))
    elif e.kind == "reach":
        tags.update(target=str(d.get("target", "")), method=str(d.get("method", "")))
    fields = numeric_fields(d)
    fields["ok"] = float(e.ok)
    if e.kind == "reach":
        fields["up"] = 1.0 if d.get("state") == "up" else 0.0
    out = [_pt(m, tags, fields, e.at)]
    if e.kind == "bandwidth" and e.ok and line is not None:
        v = speed_verdict(e, line)
        vf = {}
        for d_ in ("down", "up"):
            if f"ratio_{d_}" in v:
                vf[f"ratio_{d_}"] = float(v[f"ratio_{d_}"])
                vf[f"compliant_{d_}"] = 1.0 if v[f"speed_{d_}"] == "ok" else 0.0
        out.append(_pt("lw_verdict", line_tags(site, line, line.id), vf, e.at))
        out.append(contract_point(site, line, e.at))
    return [p for p in out if p is not None]


# -- incidents (added with the exporter): open ones as a gauge, closed ones with their times ------------------
def incident_tags(inc_site: str, inc_line: str | None, kind: str, registry: Registry) -> dict[str, str] | None:
    site = registry.site(inc_site)
    if site is None:
        return None
    line = site.line(inc_line) if inc_line else None
    return {**line_tags(site, line, inc_line), "kind": kind}


def incidents_open_points(counts: dict[tuple[str, str | None, str], int], registry: Registry,
                          at: float) -> list[Point]:
    """``lw_incidents`` field ``open``: live incidents per (site, line, kind) -- 0 for a key
    that had some and has none now, so a panel's last value drops back."""
    out = []
    for (site, line, kind), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])):
        tags = incident_tags(site, line, kind, registry)
        if tags is not None:
            out.append(_pt("lw_incidents", tags, {"open": float(n)}, at))
    return [p for p in out if p is not None]


def incident_closed_point(inc, registry: Registry) -> Point | None:
    """``lw_incident_closed`` at closed_at: time_to_ack_s (detected -> acknowledged) and
    time_to_repair_s (began -> measured gone), those that are known."""
    tags = incident_tags(inc.site, inc.line, inc.kind, registry)
    if tags is None or inc.closed_at is None:
        return None
    f = {"closed": 1.0}
    if inc.acked_at is not None:
        f["time_to_ack_s"] = max(0.0, inc.acked_at - inc.detected_at)
    if inc.resolved_at is not None:
        f["time_to_repair_s"] = max(0.0, inc.resolved_at - inc.opened_at)
    return _pt("lw_incident_closed", tags, f, inc.closed_at)

"""`status`: every site and line, the latest result of each probe kind with its age, and
each agent online / offline / silent with the messages it lost."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from linewatch import table as text_table
from linewatch.text import printable
from linewatch.wire import LINE_KINDS, format_time

from . import inventory
from .record import Record
from .record.types import Agent, Event
from .registry import Registry

# Officials read this table: Vietnamese by default, English on request.
LABELS = {
    "vi": {"site": "Đơn vị", "agent": "Agent", "line": "Đường truyền", "probe": "Phép đo", "age": "Cách đây",
           "result": "Kết quả", "online": "trực tuyến", "offline": "MẤT KẾT NỐI", "silent": "IM LẶNG",
           "never": "chưa từng kết nối", "no_data": "chưa có số liệu", "ok": "tốt", "fail": "LỖI",
           "loss": "mất gói", "rtt": "trễ", "missing": "thiếu bản tin", "jumps": "số thứ tự nhảy",
           "down": "tải xuống", "up": "tải lên", "resolve": "phân giải", "http": "tải trang",
           "latency": "độ trễ", "bandwidth": "tốc độ", "dns": "DNS", "reach": "kết nối",
           "was_down": "vừa mất"},
    "en": {"site": "Site", "agent": "Agent", "line": "Line", "probe": "Probe", "age": "Age",
           "result": "Result", "online": "online", "offline": "OFFLINE", "silent": "SILENT",
           "never": "never seen", "no_data": "no data yet", "ok": "ok", "fail": "FAIL",
           "loss": "loss", "rtt": "rtt", "missing": "messages missing", "jumps": "sequence jumps",
           "down": "down", "up": "up", "resolve": "resolve", "http": "page",
           "latency": "latency", "bandwidth": "bandwidth", "dns": "DNS", "reach": "reach",
           "was_down": "was down"},
}


def agent_state(agent: Agent, now: float, offline_after_s: float) -> str:
    """online | offline (the broker published its last will, or it said goodbye) |
    silent (says online but sent nothing for offline_after_s: hung agent or half-open link)."""
    if agent.state == "offline":
        return "offline"
    if agent.last_seen_at is None or now - agent.last_seen_at > offline_after_s:
        return "silent"
    return "online"


def _probe_row(kind: str, e: Event | None, now: float) -> dict[str, Any]:
    if e is None:
        return {"kind": kind, "measured_at": None, "age_s": None, "ok": None, "error_code": None, "error": None,
                "figures": {}}
    return {"kind": kind, "measured_at": format_time(datetime.fromtimestamp(e.at, timezone.utc)),
            "age_s": round(now - e.at, 1), "ok": e.ok, "error_code": e.error_code, "error": e.error,
            "figures": {k: v for k, v in e.data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}}


def build(registry: Registry, record: Record, offline_after_s: float, now: float | None = None) -> list[dict[str, Any]]:
    now = now or time.time()
    seq = record.seq_summary()
    live: dict[str, list[dict[str, Any]]] = {}
    for i in record.incidents(live_only=True):
        live.setdefault(i.site, []).append({"id": i.id, "kind": i.kind, "line": i.line, "target": i.target,
                                            "state": i.state, "cause": i.cause, "opened_at": i.opened_at,
                                            "acked_by": i.acked_by})
    verdicts = record.line_verdicts()
    agents_by_site: dict[str, list[Agent]] = {}
    for a in record.agents():
        agents_by_site.setdefault(a.site, []).append(a)
    out = []
    for site in sorted(registry.sites.values(), key=lambda s: (s.province, s.group or "", s.code)):
        agents = []
        for a in agents_by_site.get(site.code, []):
            s = seq.get(a.agent_id)
            agents.append({"agent_id": a.agent_id, "state": agent_state(a, now, offline_after_s),
                           "last_seen_age_s": None if a.last_seen_at is None else round(now - a.last_seen_at, 1),
                           "queue_depth": a.queue_depth, "version": a.version,
                           # data loss: numbers that never arrived, and what the agent itself had to drop
                           "missing_msgs": s.missing if s else 0, "seq_jumps": s.jumps if s else 0,
                           "dropped_by_agent": a.queue_dropped or 0})
        lines = []
        for ln in site.lines:
            latest = record.latest_by_kind(site.code, ln.id)
            probes = [_probe_row(k, latest.get(k), now) for k in LINE_KINDS if k in latest]
            lines.append({"line": ln.id, "isp": ln.isp, "kind": ln.kind, "probes": probes,
                          "verdict": verdicts.get((site.code, ln.id), {})})
        out.append({"site": site.code, "province": site.province, "name": site.name, "group": site.group,
                    "agents": agents, "lines": lines, "lan": inventory.site_lan(record, site, now),
                    "incidents": live.get(site.code, [])})
    return out


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def _loss(agent: dict[str, Any], L: dict[str, str]) -> str:
    lost = agent["missing_msgs"] + agent["dropped_by_agent"]
    out = f" ({L['missing']} {lost})" if lost else ""
    return out + (f" ({L['jumps']} {agent['seq_jumps']})" if agent["seq_jumps"] else "")


def _figures(p: dict[str, Any], L: dict[str, str]) -> str:
    f = p["figures"]
    parts = []
    if p["kind"] == "latency":
        if f.get("loss_pct") is not None:
            parts.append(f"{L['loss']} {f['loss_pct']:g}%")
        if f.get("rtt_median_ms") is not None:
            parts.append(f"{L['rtt']} {f['rtt_median_ms']:.1f} ms")
    elif p["kind"] == "bandwidth":
        for key, label in (("download_mbps", "down"), ("upload_mbps", "up")):
            if f.get(key) is not None:
                parts.append(f"{L[label]} {f[key]:.1f} Mbit/s")
    elif p["kind"] == "dns" and f.get("resolve_ms") is not None:
        parts.append(f"{L['resolve']} {f['resolve_ms']:.0f} ms")
    elif p["kind"] == "http" and f.get("total_ms") is not None:
        parts.append(f"{L['http']} {f['total_ms']:.0f} ms")
    elif p["kind"] == "reach":
        if f.get("rtt_ms") is not None:
            parts.append(f"{L['rtt']} {f['rtt_ms']:.1f} ms")
        if f.get("down_s") is not None:
            parts.append(f"{L['was_down']} {age(f['down_s'])}")
    return ", ".join(parts)


def render(rows: list[dict[str, Any]], lang: str = "vi") -> str:
    """The status table. Everything an agent sent is passed through printable(): an agent
    cannot move the cursor or recolour an admin's terminal."""
    L = LABELS[lang]
    table = [[L["site"], L["agent"], L["line"], L["probe"], L["age"], L["result"]]]
    for s in rows:
        agents = ", ".join(f"{a['agent_id']} {L[a['state']]}" + _loss(a, L) for a in s["agents"]) or L["never"]
        cells = []
        for ln in s["lines"]:
            label = f"{ln['line']} ({printable(ln['isp'])}, {ln['kind']})"
            if not ln["probes"]:
                cells.append([label, "-", "-", L["no_data"]])
            for i, p in enumerate(ln["probes"]):
                if p["ok"]:
                    result = ", ".join(x for x in (L["ok"], _figures(p, L)) if x)
                else:
                    result = f"{L['fail']} {printable(p['error_code'] or '')}: {printable(p['error'] or '', 80)}"
                cells.append([label if i == 0 else "", L[p["kind"]], age(p["age_s"]), result])
        for i, c in enumerate(cells or [["-", "-", "-", "-"]]):
            table.append([f"{s['site']} {printable(s['name'])}" if i == 0 else "", agents if i == 0 else "", *c])
    return text_table.render(table[0], table[1:]) + "\n\n" + inventory.render(rows, lang, age)

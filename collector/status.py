"""`status`: every site and line, its last measurement and age, agent online/offline."""
from __future__ import annotations

import time
from typing import Any

from linewatch.wire import format_time
from datetime import datetime, timezone

from . import inventory
from .registry import Registry
from .store import Store

# Officials read this table: Vietnamese by default, English on request.
LABELS = {
    "vi": {"site": "Đơn vị", "agent": "Agent", "line": "Đường truyền", "last": "Đo gần nhất", "age": "Cách đây",
           "result": "Kết quả", "online": "trực tuyến", "offline": "MẤT KẾT NỐI", "silent": "IM LẶNG",
           "never": "chưa từng kết nối", "no_data": "chưa có số liệu", "ok": "tốt", "fail": "LỖI",
           "loss": "mất gói", "rtt": "trễ", "missing": "thiếu bản tin"},
    "en": {"site": "Site", "agent": "Agent", "line": "Line", "last": "Last measured", "age": "Age",
           "result": "Result", "online": "online", "offline": "OFFLINE", "silent": "SILENT",
           "never": "never seen", "no_data": "no data yet", "ok": "ok", "fail": "FAIL",
           "loss": "loss", "rtt": "rtt", "missing": "messages missing"},
}


def agent_state(agent: dict[str, Any], now: float, offline_after_s: float) -> str:
    """online | offline (the broker published its last will, or it said goodbye) |
    silent (says online but sent nothing for offline_after_s: hung agent or half-open link)."""
    if agent["state"] == "offline":
        return "offline"
    if agent["last_seen_at"] is None or now - agent["last_seen_at"] > offline_after_s:
        return "silent"
    return "online"


def build(registry: Registry, store: Store, offline_after_s: float, now: float | None = None) -> list[dict[str, Any]]:
    now = now or time.time()
    missing: dict[str, int] = {}
    for g in store.gaps():
        missing[g["agent_id"]] = missing.get(g["agent_id"], 0) + g["count"]
    agents_by_site: dict[str, list[dict[str, Any]]] = {}
    for a in store.agents():
        agents_by_site.setdefault(a["site"], []).append(a)
    out = []
    for site in sorted(registry.sites.values(), key=lambda s: (s.province, s.group or "", s.code)):
        agents = [{"agent_id": a["agent_id"], "state": agent_state(a, now, offline_after_s),
                   "last_seen_age_s": None if a["last_seen_at"] is None else round(now - a["last_seen_at"], 1),
                   "queue_depth": a["queue_depth"], "version": a["version"],
                   # data loss: numbers that never arrived, and what the agent itself had to drop
                   "missing_msgs": missing.get(a["agent_id"], 0), "dropped_by_agent": a["queue_dropped"] or 0}
                  for a in agents_by_site.get(site.code, [])]
        lines = []
        for ln in site.lines:
            last = store.latest(site.code, ln.id)
            row: dict[str, Any] = {"line": ln.id, "isp": ln.isp, "kind": ln.kind, "last_kind": None,
                                   "measured_at": None, "age_s": None, "ok": None, "error_code": None,
                                   "error": None, "loss_pct": None, "rtt_median_ms": None}
            if last:
                row.update(last_kind=last["kind"],
                           measured_at=format_time(datetime.fromtimestamp(last["measured_at"], timezone.utc)),
                           age_s=round(now - last["measured_at"], 1), ok=bool(last["ok"]),
                           error_code=last["error_code"], error=last["error"],
                           loss_pct=last["data"].get("loss_pct"), rtt_median_ms=last["data"].get("rtt_median_ms"))
            lines.append(row)
        out.append({"site": site.code, "province": site.province, "name": site.name, "group": site.group,
                    "agents": agents, "lines": lines, "lan": inventory.site_lan(store, site, now)})
    return out


def _age(seconds: float | None) -> str:
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
    return f" ({L['missing']} {lost})" if lost else ""


def render(rows: list[dict[str, Any]], lang: str = "vi") -> str:
    L = LABELS[lang]
    table = [[L["site"], L["agent"], L["line"], L["last"], L["age"], L["result"]]]
    for s in rows:
        agents = ", ".join(f"{a['agent_id']} {L[a['state']]}" + _loss(a, L) for a in s["agents"]) or L["never"]
        site_label = f"{s['site']} {s['name']}"
        for i, ln in enumerate(s["lines"] or [{}]):
            if not ln:
                table.append([site_label, agents, "-", "-", "-", "-"])
                continue
            if ln["last_kind"] is None:
                result = L["no_data"]
            elif ln["ok"]:
                parts = [L["ok"]]
                if ln["loss_pct"] is not None:
                    parts.append(f"{L['loss']} {ln['loss_pct']:g}%")
                if ln["rtt_median_ms"] is not None:
                    parts.append(f"{L['rtt']} {ln['rtt_median_ms']:.1f} ms")
                result = ", ".join(parts)
            else:
                result = f"{L['fail']} {ln['error_code']}: {ln['error'] or ''}"[:90]
            table.append([site_label if i == 0 else "", agents if i == 0 else "",
                          f"{ln['line']} ({ln['isp']}, {ln['kind']})", ln["last_kind"] or "-",
                          _age(ln["age_s"]), result])
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n\n" + inventory.render(rows, lang, _age)

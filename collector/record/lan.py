"""SQL of the LAN inventory: hosts with first/last seen and gone, the latest sweep per
agent, the agent's own computer. Messages carry changes only, so every update is an
idempotent upsert guarded by time: a replayed or late message never undoes a newer one."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from linewatch import wire

from .types import HostInventory, LanHost, LanSweep, LanState

if TYPE_CHECKING:
    from .backend import Backend


def apply_inventory(db: "Backend", m: wire.Message) -> None:
    db.execute("INSERT INTO host_inventory VALUES (?,?,?,?) ON CONFLICT (agent_id) DO UPDATE SET "
               "site=excluded.site, measured_at=excluded.measured_at, data=excluded.data "
               "WHERE excluded.measured_at >= host_inventory.measured_at",
               (m.agent_id, m.site, m.measured_at.timestamp(),
                json.dumps(m.data, ensure_ascii=False, allow_nan=False)))


def apply_lan(db: "Backend", m: wire.Message) -> list[dict[str, Any]]:
    """Fold one stored lan message in; returns the host changes for the feed."""
    d, t = m.data, m.measured_at.timestamp()
    db.execute("INSERT INTO lan_sweeps (agent_id, site) VALUES (?, ?) ON CONFLICT (agent_id) DO NOTHING",
               (m.agent_id, m.site))
    if not m.ok:
        db.execute("UPDATE lan_sweeps SET site=?, error_at=?, error_code=?, error=? "
                   "WHERE agent_id=? AND coalesce(error_at, 0) <= ?",
                   (m.site, t, m.error_code, m.error, m.agent_id, t))
        return []
    db.execute("UPDATE lan_sweeps SET site=?, ok_at=?, method=?, sweep_no=?, hosts_known=?, subnets=? "
               "WHERE agent_id=? AND coalesce(ok_at, 0) <= ?",
               (m.site, t, d["method"], d["sweep_no"], d["hosts_known"], json.dumps(d["subnets"]), m.agent_id, t))
    changes: list[dict[str, Any]] = []
    for h in d["appeared"]:
        first = wire.parse_time(h["first_seen"]).timestamp() if h.get("first_seen") else t
        db.execute(
            "INSERT INTO lan_hosts VALUES (?,?,?,?,?,?,?,?,?,NULL) ON CONFLICT (site, mac) DO UPDATE SET "
            "ip=excluded.ip, vendor=coalesce(excluded.vendor, lan_hosts.vendor), "
            "name=coalesce(excluded.name, lan_hosts.name), device_class=excluded.device_class, "
            "agent_id=excluded.agent_id, first_seen=LEAST(lan_hosts.first_seen, excluded.first_seen), "
            "last_seen=GREATEST(lan_hosts.last_seen, excluded.last_seen), "
            "gone_at=CASE WHEN lan_hosts.gone_at IS NOT NULL AND lan_hosts.gone_at < excluded.last_seen THEN NULL "
            "ELSE lan_hosts.gone_at END",
            (m.site, h["mac"], h["ip"], h.get("vendor"), h.get("name"), h["device_class"], m.agent_id, first, t))
        changes.append(_change("updated" if h.get("update") else "appeared", h))  # update: class/name changed
    missing = set(d.get("missing") or ())
    gone = {h["mac"] for h in d["gone"]}
    present = [mac for (mac,) in db.execute(
        "SELECT mac FROM lan_hosts WHERE site=? AND agent_id=? AND gone_at IS NULL", (m.site, m.agent_id)).fetchall()]
    seen = [(t, m.site, mac) for mac in present if mac not in missing and mac not in gone]
    if seen:
        db.executemany("UPDATE lan_hosts SET last_seen=GREATEST(last_seen, ?) WHERE site=? AND mac=?", seen)
    for h in d["gone"]:
        last = wire.parse_time(h["last_seen"]).timestamp() if h.get("last_seen") else t
        db.execute(
            "INSERT INTO lan_hosts VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (site, mac) DO UPDATE SET "
            "gone_at=CASE WHEN lan_hosts.last_seen <= excluded.last_seen THEN excluded.gone_at "
            "ELSE lan_hosts.gone_at END",
            (m.site, h["mac"], h["ip"], h.get("vendor"), h.get("name"), h["device_class"], m.agent_id,
             last, last, t))
        changes.append(_change("gone", h))
    return changes


def _change(what: str, h: dict[str, Any]) -> dict[str, Any]:
    return {"change": what, **{k: h.get(k) for k in ("mac", "ip", "device_class", "vendor", "name")}}


def lan_state(db: "Backend", site: str) -> LanState:
    every = [LanHost(*r) for r in db.execute(
        "SELECT mac, ip, vendor, name, device_class, agent_id, first_seen, last_seen, gone_at FROM lan_hosts "
        "WHERE site=? ORDER BY device_class, ip", (site,)).fetchall()]
    hosts = [h for h in every if h.gone_at is None]
    gone = [h for h in every if h.gone_at is not None]
    sweeps = [LanSweep(a, s, ok_at, method, no, known, json.loads(subnets) if subnets else [], e_at, e_code, e)
              for a, s, ok_at, method, no, known, subnets, e_at, e_code, e in db.execute(
                  "SELECT agent_id, site, ok_at, method, sweep_no, hosts_known, subnets, error_at, error_code, error "
                  "FROM lan_sweeps WHERE site=? ORDER BY agent_id", (site,)).fetchall()]
    inv = [HostInventory(a, s, t, json.loads(d)) for a, s, t, d in db.execute(
        "SELECT agent_id, site, measured_at, data FROM host_inventory WHERE site=? ORDER BY agent_id",
        (site,)).fetchall()]
    return LanState(hosts, len(gone), sweeps, inv, gone)

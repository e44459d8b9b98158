"""Each site's LAN inventory, built from the agents' ``lan`` and ``inventory`` messages:
hosts with first/last seen and gone, computers found against the registry's staff count
(one computer per staff member is the target), and whether the site has a LAN at all.

Messages carry changes only (appeared / gone / missing), so every update here is an
idempotent upsert guarded by time: a replayed or late message never undoes a newer one."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from linewatch import wire

if TYPE_CHECKING:
    from .registry import Site
    from .store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS lan_hosts (
    site TEXT NOT NULL, mac TEXT NOT NULL,
    ip TEXT NOT NULL, vendor TEXT, name TEXT, device_class TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    gone_at REAL,                                   -- NULL while present
    PRIMARY KEY (site, mac)
);
CREATE TABLE IF NOT EXISTS lan_sweeps (             -- latest sweep per agent
    agent_id TEXT PRIMARY KEY, site TEXT NOT NULL,
    ok_at REAL, method TEXT, sweep_no INTEGER, hosts_known INTEGER, subnets TEXT,
    error_at REAL, error_code TEXT, error TEXT
);
CREATE TABLE IF NOT EXISTS host_inventory (         -- the agent's own computer
    agent_id TEXT PRIMARY KEY, site TEXT NOT NULL, measured_at REAL NOT NULL, data TEXT NOT NULL
);
"""


def apply(store: "Store", m: wire.Message) -> None:
    """Fold one stored (not duplicate) lan / inventory message into the inventory tables."""
    if m.kind == "lan":
        _apply_lan(store, m)
    elif m.kind == "inventory":
        store.db.execute("INSERT INTO host_inventory VALUES (?,?,?,?) ON CONFLICT(agent_id) DO UPDATE SET "
                         "site=excluded.site, measured_at=excluded.measured_at, data=excluded.data "
                         "WHERE excluded.measured_at >= host_inventory.measured_at",
                         (m.agent_id, m.site, m.measured_at.timestamp(), json.dumps(m.data, ensure_ascii=False)))


def _apply_lan(store: "Store", m: wire.Message) -> None:
    db, d, t = store.db, m.data, m.measured_at.timestamp()
    db.execute("INSERT OR IGNORE INTO lan_sweeps (agent_id, site) VALUES (?, ?)", (m.agent_id, m.site))
    if not m.ok:
        db.execute("UPDATE lan_sweeps SET site=?, error_at=?, error_code=?, error=? "
                   "WHERE agent_id=? AND coalesce(error_at, 0) <= ?",
                   (m.site, t, m.error_code, m.error, m.agent_id, t))
        return
    db.execute("UPDATE lan_sweeps SET site=?, ok_at=?, method=?, sweep_no=?, hosts_known=?, subnets=? "
               "WHERE agent_id=? AND coalesce(ok_at, 0) <= ?",
               (m.site, t, d["method"], d["sweep_no"], d["hosts_known"], json.dumps(d["subnets"]), m.agent_id, t))
    for h in d["appeared"]:
        first = wire.parse_time(h["first_seen"]).timestamp() if "first_seen" in h else t
        db.execute(
            "INSERT INTO lan_hosts VALUES (?,?,?,?,?,?,?,?,?,NULL) ON CONFLICT(site, mac) DO UPDATE SET "
            "ip=excluded.ip, vendor=coalesce(excluded.vendor, vendor), name=coalesce(excluded.name, name), "
            "device_class=excluded.device_class, agent_id=excluded.agent_id, "
            "first_seen=min(first_seen, excluded.first_seen), last_seen=max(last_seen, excluded.last_seen), "
            "gone_at=CASE WHEN gone_at IS NOT NULL AND gone_at < excluded.last_seen THEN NULL ELSE gone_at END",
            (m.site, h["mac"], h["ip"], h.get("vendor"), h.get("name"), h["device_class"], m.agent_id, first, t))
    # Every host this agent knows and did not miss was seen in this sweep.
    missing = set(d.get("missing") or ())
    gone = {h["mac"] for h in d["gone"]}
    present = [mac for (mac,) in db.execute("SELECT mac FROM lan_hosts WHERE site=? AND agent_id=? AND gone_at IS NULL",
                                            (m.site, m.agent_id))]
    db.executemany("UPDATE lan_hosts SET last_seen=max(last_seen, ?) WHERE site=? AND mac=?",
                   [(t, m.site, mac) for mac in present if mac not in missing and mac not in gone])
    for h in d["gone"]:
        last = wire.parse_time(h["last_seen"]).timestamp() if "last_seen" in h else t
        db.execute(
            "INSERT INTO lan_hosts VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(site, mac) DO UPDATE SET "
            "gone_at=CASE WHEN last_seen <= excluded.last_seen THEN excluded.gone_at ELSE gone_at END",
            (m.site, h["mac"], h["ip"], h.get("vendor"), h.get("name"), h["device_class"], m.agent_id,
             last, last, t))


def site_lan(store: "Store", site: "Site", now: float) -> dict[str, Any]:
    """The LAN part of one site's status row."""
    with store._lock:
        db = store.db
        hosts = [dict(zip(("mac", "ip", "vendor", "name", "device_class", "first_seen", "last_seen"), r))
                 for r in db.execute("SELECT mac, ip, vendor, name, device_class, first_seen, last_seen FROM lan_hosts "
                                     "WHERE site=? AND gone_at IS NULL ORDER BY device_class, ip", (site.code,))]
        n_gone = db.execute("SELECT count(*) FROM lan_hosts WHERE site=? AND gone_at IS NOT NULL",
                            (site.code,)).fetchone()[0]
        sweeps = db.execute("SELECT agent_id, ok_at, method, subnets, error_at, error_code, error FROM lan_sweeps "
                            "WHERE site=? ORDER BY agent_id", (site.code,)).fetchall()
        inv = db.execute("SELECT agent_id, measured_at, data FROM host_inventory WHERE site=? ORDER BY agent_id",
                         (site.code,)).fetchall()
    by_class: dict[str, int] = {}
    for h in hosts:
        by_class[h["device_class"]] = by_class.get(h["device_class"], 0) + 1
    last_ok = max((s[1] for s in sweeps if s[1] is not None), default=None)
    swept = last_ok is not None
    computers = by_class.get("computer", 0)
    staff = site.staff.total
    last_error = max(((s[4], s[5], s[6]) for s in sweeps if s[4] is not None), default=None)
    for h in hosts:
        h["first_seen"] = wire.format_time(_dt(h["first_seen"]))
        h["last_seen"] = wire.format_time(_dt(h["last_seen"]))
    return {
        "swept": swept,
        # A LAN = something besides the router/modem answers on the office network.
        "has_lan": (any(h["device_class"] != "network" for h in hosts)) if swept else None,
        "computers": computers if swept else None,
        "staff": staff,
        "staff_full_time": site.staff.full_time, "staff_part_time": site.staff.part_time,
        "staff_contract": site.staff.contract,
        "shortfall": max(0, staff - computers) if swept and staff else None,
        "hosts": len(hosts), "by_class": by_class, "gone": n_gone,
        "last_sweep_age_s": round(now - last_ok, 1) if swept else None,
        "method": next((s[2] for s in sweeps if s[1] == last_ok), None),
        "subnets": sorted({n["cidr"] for s in sweeps if s[3] for n in json.loads(s[3])}),
        "last_error": None if last_error is None or (swept and last_error[0] < last_ok)
        else f"{last_error[1]}: {last_error[2] or ''}",
        "host_list": hosts,
        "agent_computers": [{"agent_id": a, **json.loads(d)} for a, _t, d in inv],
    }


def _dt(ts: float):
    from datetime import datetime, timezone
    return datetime.fromtimestamp(ts, timezone.utc)


LABELS = {
    "vi": {"title": "Mạng LAN và máy tính", "site": "Đơn vị", "lan": "Có LAN", "computers": "Máy tính",
           "staff": "Biên chế (CT/KCT/HĐ)", "shortfall": "Thiếu máy", "others": "Thiết bị khác",
           "swept": "Quét gần nhất", "yes": "có", "no": "KHÔNG", "unknown": "chưa quét", "none": "đủ",
           "printer": "máy in", "phone": "điện thoại", "network": "thiết bị mạng", "computer": "máy tính",
           "unknown_dev": "chưa rõ", "gone": "đã rời mạng", "error": "LỖI QUÉT"},
    "en": {"title": "LAN and computers", "site": "Site", "lan": "LAN", "computers": "Computers",
           "staff": "Staff (FT/PT/contract)", "shortfall": "Shortfall", "others": "Other devices",
           "swept": "Last sweep", "yes": "yes", "no": "NO", "unknown": "not swept", "none": "none",
           "printer": "printer", "phone": "phone", "network": "network", "computer": "computer",
           "unknown_dev": "unknown", "gone": "gone", "error": "SWEEP FAILED"},
}


def render(rows: list[dict[str, Any]], lang: str, age) -> str:
    """The LAN section of `status` (``age`` formats seconds like the main table)."""
    L = LABELS[lang]
    table = [[L["site"], L["lan"], L["computers"], L["staff"], L["shortfall"], L["others"], L["swept"]]]
    for s in rows:
        lan = s["lan"]
        has = L["unknown"] if lan["has_lan"] is None else (L["yes"] if lan["has_lan"] else L["no"])
        staff = f"{lan['staff']} ({lan['staff_full_time']}/{lan['staff_part_time']}/{lan['staff_contract']})"
        short = "-" if lan["shortfall"] is None else (L["none"] if lan["shortfall"] == 0 else str(lan["shortfall"]))
        others = ", ".join(f"{n} {L['unknown_dev' if c == 'unknown' else c]}" for c, n in sorted(lan["by_class"].items())
                           if c != "computer")
        if lan["gone"]:
            others = ", ".join(x for x in (others, f"{lan['gone']} {L['gone']}") if x)
        swept = age(lan["last_sweep_age_s"]) + (f" ({lan['method']})" if lan["method"] else "")
        if lan["last_error"]:
            swept = f"{swept} {L['error']} {lan['last_error']}"[:90]
        table.append([f"{s['site']} {s['name']}", has, "-" if lan["computers"] is None else str(lan["computers"]),
                      staff, short, others or "-", swept])
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return f"{L['title']}\n" + "\n".join(lines)

"""Each site's LAN inventory as officials read it: hosts found, computers against the
registry's staff count (one computer per staff member is the target), and whether the site
has a LAN at all. The record keeps the hosts (collector/record/lan.py); this is the pure
part that turns them into counts, a status row and a table.

How computers are counted (status, report, export alike -- :func:`count`):
  - each agent's own computer counts when the agent says so (its inventory's
    ``counted_as_computer``: a PC yes, a Raspberry Pi probe box or a virtual machine no); an
    older agent that does not say is counted unless its machine is ARM (the former rule);
  - plus the LAN hosts classed ``computer``, less any host whose MAC is one of an agent's own
    network cards (that computer is already counted, once, as the agent's);
  - ``unsure`` hosts (and ``unknown``, the older agents' word for it) are counted apart,
    never as computers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

from linewatch import table as text_table
from linewatch import wire
from linewatch.text import printable

if TYPE_CHECKING:
    from .record import Record
    from .record.types import HostInventory, LanHost
    from .registry import Site

#: Older agents (no counted_as_computer): their computer counted unless its machine is one of these.
ARM_MACHINES = ("aarch64", "arm64", "armv7l", "armv6l", "armhf")
#: The older agents' class for "could not tell", counted as unsure.
LEGACY_CLASSES = {"unknown": "unsure"}


@dataclass(frozen=True)
class LanCount:
    computers: int          # LAN hosts classed computer + agents' own computers that count
    own: int                # of which: agents' own computers
    by_class: dict[str, int] = field(default_factory=dict)  # LAN hosts (not the agents' own) per class
    has_lan: bool = False   # something besides network gear (and the agents' own computers) answers

    @property
    def unsure(self) -> int:
        return self.by_class.get("unsure", 0)

    @property
    def printers(self) -> int:
        return self.by_class.get("printer", 0)


def own_counts(inv: "HostInventory") -> bool:
    """Whether an agent's own computer is counted: its word, else the former ARM rule."""
    said = inv.data.get("counted_as_computer")
    if isinstance(said, bool):
        return said
    return str(inv.data.get("machine") or "").lower() not in ARM_MACHINES


def own_macs(inventories: Iterable["HostInventory"]) -> set[str]:
    return {str(i.get("mac")).lower() for inv in inventories for i in inv.data.get("interfaces") or ()
            if isinstance(i, dict) and i.get("mac")}


def device_class(h: "LanHost") -> str:
    return LEGACY_CLASSES.get(h.device_class, h.device_class)


def count(hosts: Iterable["LanHost"], inventories: list["HostInventory"]) -> LanCount:
    mine = own_macs(inventories)
    by_class: dict[str, int] = {}
    for h in hosts:
        if h.mac.lower() not in mine:
            c = device_class(h)
            by_class[c] = by_class.get(c, 0) + 1
    own = sum(1 for inv in inventories if own_counts(inv))
    return LanCount(by_class.get("computer", 0) + own, own, by_class,
                    any(c != "network" for c in by_class))


def site_lan(record: "Record", site: "Site", now: float) -> dict[str, Any]:
    """The LAN part of one site's status row."""
    st = record.lan_state(site.code)
    mine = own_macs(st.inventories)
    hosts = [{"mac": h.mac, "ip": h.ip, "vendor": h.vendor, "name": h.name, "device_class": device_class(h),
              "first_seen": h.first_seen, "last_seen": h.last_seen, "agent_computer": h.mac.lower() in mine}
             for h in st.hosts]
    n_gone = st.n_gone
    sweeps = [(w.agent_id, w.ok_at, w.method, w.subnets, w.error_at, w.error_code, w.error) for w in st.sweeps]
    counted = count(st.hosts, st.inventories)
    by_class = counted.by_class
    last_ok = max((s[1] for s in sweeps if s[1] is not None), default=None)
    swept = last_ok is not None
    # without a sweep, the agents' own computers are still known (as the report counts them)
    computers = counted.computers if swept else (counted.own or None)
    staff = site.staff.total
    last_error = max(((s[4], s[5], s[6]) for s in sweeps if s[4] is not None), default=None)
    for h in hosts:
        h["first_seen"] = wire.format_time(_dt(h["first_seen"]))
        h["last_seen"] = wire.format_time(_dt(h["last_seen"]))
    return {
        "swept": swept,
        # A LAN = something besides the router/modem answers on the office network.
        "has_lan": counted.has_lan if swept else None,
        "computers": computers,
        "own_computers": counted.own,  # the agents' own computers among them
        "unsure": counted.unsure if swept else None,
        "staff": staff,
        "staff_full_time": site.staff.full_time, "staff_part_time": site.staff.part_time,
        "staff_contract": site.staff.contract,
        "shortfall": max(0, staff - computers) if computers is not None and staff else None,
        "hosts": len(hosts), "by_class": by_class, "gone": n_gone,
        "last_sweep_age_s": round(now - last_ok, 1) if swept else None,
        "method": next((s[2] for s in sweeps if s[1] == last_ok), None),
        "subnets": sorted({str(n.get("cidr")) for s in sweeps for n in s[3] if isinstance(n, dict)}),
        "last_error": None if last_error is None or (swept and last_error[0] < last_ok)
        else f"{last_error[1]}: {last_error[2] or ''}",
        "host_list": hosts,
        "agent_computers": [{"agent_id": i.agent_id, **i.data} for i in st.inventories],
    }


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


LABELS = {
    "vi": {"title": "Mạng LAN và máy tính", "site": "Đơn vị", "lan": "Có LAN", "computers": "Máy tính",
           "staff": "Biên chế (CT/KCT/HĐ)", "shortfall": "Thiếu máy", "others": "Thiết bị khác",
           "swept": "Quét gần nhất", "yes": "có", "no": "KHÔNG", "unknown": "chưa quét", "none": "đủ",
           "printer": "máy in", "phone": "điện thoại", "network": "thiết bị mạng", "computer": "máy tính",
           "camera": "camera", "unsure": "chưa rõ loại", "gone": "đã rời mạng", "error": "LỖI QUÉT"},
    "en": {"title": "LAN and computers", "site": "Site", "lan": "LAN", "computers": "Computers",
           "staff": "Staff (FT/PT/contract)", "shortfall": "Shortfall", "others": "Other devices",
           "swept": "Last sweep", "yes": "yes", "no": "NO", "unknown": "not swept", "none": "none",
           "printer": "printer", "phone": "phone", "network": "network", "computer": "computer",
           "camera": "camera", "unsure": "unsure", "gone": "gone", "error": "SWEEP FAILED"},
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
        others = ", ".join(f"{n} {L.get(c, c)}" for c, n in sorted(lan["by_class"].items()) if c != "computer")
        if lan["gone"]:
            others = ", ".join(x for x in (others, f"{lan['gone']} {L['gone']}") if x)
        swept = age(lan["last_sweep_age_s"]) + (f" ({lan['method']})" if lan["method"] else "")
        if lan["last_error"]:
            swept = f"{swept} {L['error']} {printable(lan['last_error'], 70)}"
        table.append([f"{s['site']} {printable(s['name'])}", has, "-" if lan["computers"] is None else str(lan["computers"]),
                      staff, short, others or "-", swept])
    return f"{L['title']}\n" + text_table.render(table[0], table[1:])

"""The pure parts of LAN discovery and inventory: vendor table, device class, neighbour
table parsing, subnet planning, sweep-state diff, wire validation, the collector's fold."""
from __future__ import annotations

import json
import struct
from datetime import timedelta
from pathlib import Path

import pytest

from linewatch import wire
from linewatch.agent import config as agent_config
from linewatch.agent.discovery import classify, names, neigh, oui, state
from linewatch.agent.discovery.subnets import IfAddr, plan
from linewatch.agent.discovery.sweep import default_gateways
from linewatch.agent.inventory import collect, parse_cpu_model, parse_os_release
from linewatch.collector import registry as registry_mod
from linewatch.collector.ingest import Ingestor
from linewatch.collector.inventory import site_lan
from linewatch.collector.record import open_record
from linewatch.config import ConfigError

from conftest import REGISTRY_TOML

# Recorded in a test namespace (tests/netlab.py) after a sweep of 10.44.7.0/24, trimmed.
IP_NEIGH_JSON = ('[{"dst":"10.44.7.41","dev":"lan0","state":["FAILED"]},'
                 '{"dst":"10.44.7.20","dev":"lan0","lladdr":"00:80:77:00:00:20","state":["REACHABLE"]},'
                 '{"dst":"10.44.7.79","dev":"lan0","state":["FAILED"]},'
                 '{"dst":"10.44.7.10","dev":"lan0","lladdr":"f8:bc:12:00:00:10","state":["REACHABLE"]},'
                 '{"dst":"10.44.7.30","dev":"lan0","lladdr":"3c:52:82:00:00:30","state":["STALE"]},'
                 '{"dst":"fe80::1","dev":"lan0","lladdr":"3c:52:82:00:00:30","state":["STALE"]}]')
PROC_NET_ARP = """\
IP address       HW type     Flags       HW address            Mask     Device
10.44.7.41       0x1         0x0         00:00:00:00:00:00     *        lan0
10.44.7.20       0x1         0x2         00:80:77:00:00:20     *        lan0
10.44.7.79       0x1         0x0         00:00:00:00:00:00     *        lan0
10.44.7.10       0x1         0x2         F8:BC:12:00:00:10     *        lan0
10.44.7.1        0x1         0x6         00:0c:29:aa:bb:cc     *        lan0
"""


# ------------------------------------------------------------------ vendor and class
def test_vendor_comes_from_the_shipped_table_in_any_mac_notation():
    assert oui.vendor("00:80:77:12:34:56") == "Brother industries"
    assert oui.vendor("00-00-48-AA-BB-CC") == "Seiko Epson"
    assert oui.vendor("f8bc.1200.0010") == "Dell"
    assert oui.vendor("02:00:00:00:00:01") is None
    with pytest.raises(ValueError):
        oui.normalize_mac("00:11:22")


def test_a_longer_registered_prefix_wins_over_the_24_bit_block():
    import gzip
    with gzip.open(oui.TABLE, "rt") as f:
        long = next(line.split("\t") for line in f if len(line.split("\t")[0]) == 9)
    prefix, vendor = long[0], long[1].strip()
    mac = ":".join((prefix + "000")[i:i + 2] for i in range(0, 12, 2))
    assert oui.vendor(mac) == vendor


def test_locally_administered_macs_are_recognised():
    assert oui.is_locally_administered("da:a1:19:00:00:01")
    assert not oui.is_locally_administered("00:80:77:00:00:01")


@pytest.mark.parametrize("vendor,name,kw,expected", [
    ("Brother industries", None, {}, "printer"),
    ("Seiko Epson", None, {}, "printer"),
    ("Hewlett Packard", None, {}, "unknown"),          # HP makes both: the name decides
    ("Hewlett Packard", "NPI8F2A1C", {}, "printer"),
    ("Hewlett Packard", "DESKTOP-7QK2M1.lan", {}, "computer"),
    ("Dell", None, {}, "computer"),
    ("Intel Corporate", "iphone-cua-lan", {}, "phone"),  # a name beats the vendor
    ("TP-LINK TECHNOLOGIES", None, {}, "network"),
    ("Dell", None, {"is_gateway": True}, "network"),
    (None, None, {"locally_administered": True}, "phone"),
    (None, None, {}, "unknown"),
    (None, "may-in-tang2", {}, "printer"),
    (None, "PC-KETOAN", {}, "computer"),
])
def test_device_class_is_guessed_from_name_then_gateway_then_vendor(vendor, name, kw, expected):
    assert classify.device_class(vendor, name, **kw) == expected


# ------------------------------------------------------------------ neighbour table
def test_ip_neigh_json_keeps_ipv4_entries_with_a_mac():
    entries = neigh.parse_ip_neigh_json(IP_NEIGH_JSON)
    assert len(entries) == 5
    valid = {n.ip: n.mac for n in entries if n.valid}
    assert valid == {"10.44.7.20": "00:80:77:00:00:20", "10.44.7.10": "f8:bc:12:00:00:10",
                     "10.44.7.30": "3c:52:82:00:00:30"}


def test_proc_net_arp_keeps_complete_entries_only():
    entries = neigh.parse_proc_net_arp(PROC_NET_ARP)
    valid = {n.ip: (n.mac, n.dev) for n in entries if n.valid}
    assert valid == {"10.44.7.20": ("00:80:77:00:00:20", "lan0"), "10.44.7.10": ("f8:bc:12:00:00:10", "lan0"),
                     "10.44.7.1": ("00:0c:29:aa:bb:cc", "lan0")}


def test_default_gateway_is_read_from_proc_net_route():
    route = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
             "eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
             "eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
    assert default_gateways(route) == {"192.168.1.1"}


# ------------------------------------------------------------------ which subnets
ADDRS = [IfAddr("lo", "127.0.0.1", "255.0.0.0", is_loopback=True),
         IfAddr("eth0", "192.168.1.10", "255.255.255.0"),
         IfAddr("eth1", "10.52.0.7", "255.255.0.0"),          # the TSLCD /16: too wide
         IfAddr("docker0", "172.17.0.1", "255.255.0.0"),
         IfAddr("ppp0", "100.64.3.2", "255.255.255.255"),
         IfAddr("wlan0", "192.168.5.3", "255.255.252.0", is_up=False)]


def test_auto_sweeps_only_the_lan_interfaces_and_refuses_networks_wider_than_22():
    targets, skipped = plan(ADDRS, ["auto"])
    assert [(t.cidr, t.interface, t.source) for t in targets] == [("192.168.1.0/24", "eth0", "192.168.1.10")]
    reasons = {s.what: s.reason for s in skipped}
    assert "wider than /22" in reasons["10.52.0.0/16@eth1"] and "allow_wide" in reasons["10.52.0.0/16@eth1"]
    assert reasons["172.17.0.0/16@docker0"] == "not a LAN interface"
    assert reasons["192.168.4.0/22@wlan0"] == "interface is down"
    assert not any(s.what.startswith("127.") for s in skipped)


def test_allow_wide_lifts_the_limit_and_a_configured_network_must_be_on_an_interface():
    targets, skipped = plan(ADDRS, ["10.52.0.0/16", "192.168.9.0/24"], max_prefix=16, allow_wide=True)
    assert [t.cidr for t in targets] == ["10.52.0.0/16"]
    assert skipped[0].what == "192.168.9.0/24" and "no interface" in skipped[0].reason


# ------------------------------------------------------------------ sweep state
def _h(mac: str, ip: str, name: str | None = None, cls: str = "computer") -> dict:
    return {"mac": mac, "ip": ip, "vendor": "Dell", "name": name, "device_class": cls}


def test_a_host_appears_once_and_is_gone_only_after_n_missed_sweeps():
    a, b = _h("f8:bc:12:00:00:01", "10.0.0.2", "pc-a"), _h("00:80:77:00:00:02", "10.0.0.3", cls="printer")
    s, ch = state.apply_sweep(state.SweepState(), [a, b], "2026-01-01T00:00:00.000Z", 3)
    assert [k.mac for k in ch.appeared] == [a["mac"], b["mac"]] and not ch.gone
    s, ch = state.apply_sweep(s, [a, b], "2026-01-01T00:15:00.000Z", 3)
    assert not ch.appeared and not ch.gone
    for i in (1, 2):  # printer switched off: missed, not yet gone
        s, ch = state.apply_sweep(s, [dict(a, name=None)], f"2026-01-01T0{i}:00:00.000Z", 3)
        assert not ch.gone and s.hosts[b["mac"]].missed == i
    assert s.hosts[a["mac"]].name == "pc-a", "a name learnt once survives a lookup that timed out"
    s, ch = state.apply_sweep(s, [a], "2026-01-01T03:00:00.000Z", 3)
    assert [k.mac for k in ch.gone] == [b["mac"]] and b["mac"] not in s.hosts
    assert ch.gone[0].last_seen == "2026-01-01T00:15:00.000Z"
    s, ch = state.apply_sweep(s, [a, dict(b, ip="10.0.0.9")], "2026-01-01T04:00:00.000Z", 3)
    assert [k.ip for k in ch.appeared] == ["10.0.0.9"], "a gone host that comes back appears again"
    assert s.sweeps == 6


def test_sweep_state_survives_a_restart_and_a_damaged_file_costs_only_a_reannounce(tmp_path):
    p = tmp_path / "lan-state.json"
    s, _ = state.apply_sweep(state.SweepState(), [_h("f8:bc:12:00:00:01", "10.0.0.2")], "2026-01-01T00:00:00.000Z", 3)
    state.save(p, s)
    assert state.load(p) == s
    p.write_text("{not json")
    assert state.load(p) == state.SweepState() and (tmp_path / "lan-state.damaged").exists()


# ------------------------------------------------------------------ names
def test_netbios_node_status_answer_gives_the_workstation_name():
    q = names.nbstat_query(0x1234)
    assert q[:2] == b"\x12\x34" and q[-4:] == b"\x00\x21\x00\x01" and len(q) == 50
    def entry(name: str, suffix: int, flags: int) -> bytes:
        return name.encode().ljust(15) + bytes([suffix]) + struct.pack("!H", flags)
    rdata = bytes([3]) + entry("VANPHONG", 0x00, 0x8400) + entry("KETOAN-PC", 0x00, 0x0400) + entry("KETOAN-PC", 0x20, 0x0400)
    # RFC 1002 4.2.18: header, the query's name, TYPE NBSTAT, CLASS IN, TTL, RDLENGTH, then the names.
    answer = struct.pack("!HHHHHH", 0x1234, 0x8400, 0, 1, 0, 0) + q[12:46] + struct.pack("!HHIH", 0x21, 1, 0,
                                                                                         len(rdata)) + rdata
    assert names.parse_nbstat_response(answer) == "KETOAN-PC"
    assert names.parse_nbstat_response(b"\x12\x34short") is None


# ------------------------------------------------------------------ inventory
def test_os_release_and_cpu_model_are_parsed_for_pc_and_raspberry_pi():
    assert parse_os_release('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n')["PRETTY_NAME"] == \
        "Debian GNU/Linux 12 (bookworm)"
    assert parse_cpu_model("processor\t: 0\nmodel name\t: Intel(R) Core(TM) i3-10100 CPU @ 3.60GHz\n") == \
        "Intel(R) Core(TM) i3-10100 CPU @ 3.60GHz"
    pi = "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
    assert parse_cpu_model(pi) == "Raspberry Pi 4 Model B Rev 1.4"


def test_this_computers_inventory_fits_the_wire_contract():
    r = collect()
    wire.check_data("inventory", r.data, True)
    d = r.data
    assert d["ram_total_mb"] > 0 and d["disk_total_gb"] >= d["disk_free_gb"] > 0 and d["cpu_threads"] >= 1
    assert any(i["name"] == "lo" and i["is_up"] for i in d["interfaces"])
    assert wire.parse_time(d["boot_time"]) < wire.utc_now()


# ------------------------------------------------------------------ config
def _cfg(extra: str) -> agent_config.AgentConfig:
    import tomllib
    doc = tomllib.loads('[agent]\nid = "ag-1"\nprovince = "52"\nsite = "21583"\nstate_dir = "/tmp/x"\n'
                       '[[line]]\nid = "fiber"\n[line.latency]\ntargets = ["127.0.0.1"]\n' + extra)
    return agent_config.parse(doc, Path("agent.toml"))


def test_lan_discovery_is_off_unless_configured_and_wide_subnets_need_allow_wide():
    assert _cfg("").lan is None and _cfg("").inventory.interval_s == 21600
    assert _cfg('[lan]\n').lan.subnets == ("auto",)
    with pytest.raises(ConfigError, match=r"agent.toml \[lan\]: subnet 10.52.0.0/16 is wider than /22 "
                                          r"\(set allow_wide = true to sweep up to /16\)"):
        _cfg('[lan]\nsubnets = ["10.52.0.0/16"]\n')
    assert _cfg('[lan]\nsubnets = ["10.52.0.0/16"]\nallow_wide = true\n').lan.max_prefix == 16
    with pytest.raises(ConfigError, match="not an IPv4 network"):
        _cfg('[lan]\nsubnets = ["office"]\n')
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) rate"):
        _cfg('[lan]\nrate = 5\n')
    assert _cfg('[inventory]\nenabled = false\n').inventory is None


# ------------------------------------------------------------------ wire + collector
T0 = wire.utc_now() - timedelta(hours=2)


def _host(mac: str, ip: str, cls: str, **kw) -> dict:
    return {"ip": ip, "mac": mac, "device_class": cls, **kw}


def lan_msg(seq: int, minutes: int, sweep_no: int, appeared=(), gone=(), missing=(), known=0, ok=True) -> wire.Message:
    data = {"method": "arp-scapy", "subnets": [{"cidr": "192.168.1.0/24", "interface": "eth0"}],
            "missed_sweeps_before_gone": 3, "sweep_no": sweep_no, "sweep_s": 4.2, "hosts_seen": known,
            "hosts_known": known, "computers": 0, "by_class": {}, "appeared": list(appeared), "gone": list(gone)}
    if missing:
        data["missing"] = list(missing)
    if not ok:
        data = {"method": "none", "subnets": [], "missed_sweeps_before_gone": 3}
    return wire.build_message(kind="lan", agent_id="ag-21583", province="52", site="21583", seq=seq,
                              measured_at=T0 + timedelta(minutes=minutes), data=data, ok=ok,
                              error_code=None if ok else "sweep_failed", error=None if ok else "boom")


@pytest.fixture
def ingest(tmp_path):
    reg = registry_mod.parse(__import__("tomllib").loads(REGISTRY_TOML))
    store = open_record(tmp_path / "record.sqlite3")
    ing = Ingestor(store, reg)

    def feed(m_or_topic, payload: bytes | None = None):
        if payload is None:
            return ing.handle(m_or_topic.topic, m_or_topic.to_json())
        return ing.handle(m_or_topic, payload)
    feed.store, feed.site = store, reg.site("21583")
    yield feed
    store.close()


PC1, PC2, PRN = "f8:bc:12:00:00:01", "f8:bc:12:00:00:02", "00:80:77:00:00:03"


def test_the_collector_keeps_first_and_last_seen_flags_the_staff_shortfall_and_marks_gone_hosts(ingest):
    first = lan_msg(1, 0, 1, appeared=[_host(PC1, "192.168.1.21", "computer", vendor="Dell", name="pc-ketoan"),
                                       _host(PC2, "192.168.1.22", "computer"),
                                       _host(PRN, "192.168.1.30", "printer", vendor="Brother industries")], known=3)
    assert ingest(first).status == "stored"
    assert ingest(first).status == "duplicate"  # replayed: no double count
    lan = site_lan(ingest.store, ingest.site, now=(T0 + timedelta(minutes=1)).timestamp())
    assert (lan["has_lan"], lan["computers"], lan["staff"], lan["shortfall"]) == (True, 2, 16, 14)
    assert lan["by_class"] == {"computer": 2, "printer": 1}
    ingest(lan_msg(2, 15, 2, missing=[PRN], known=3))
    hosts = {h["mac"]: h for h in site_lan(ingest.store, ingest.site, 0)["host_list"]}
    assert hosts[PC1]["last_seen"] == wire.format_time(T0 + timedelta(minutes=15))
    assert hosts[PRN]["last_seen"] == wire.format_time(T0), "a missed host keeps its last sighting"
    ingest(lan_msg(3, 30, 3, gone=[_host(PRN, "192.168.1.30", "printer", last_seen=wire.format_time(T0))], known=2))
    lan = site_lan(ingest.store, ingest.site, 0)
    assert lan["by_class"] == {"computer": 2} and lan["gone"] == 1 and lan["has_lan"] is True


def test_a_late_gone_message_does_not_undo_a_newer_sighting(ingest):
    ingest(lan_msg(1, 0, 1, appeared=[_host(PRN, "192.168.1.30", "printer")]))
    ingest(lan_msg(5, 60, 5, appeared=[_host(PRN, "192.168.1.31", "printer", first_seen=wire.format_time(T0 + timedelta(minutes=60)))]))
    ingest(lan_msg(3, 30, 3, gone=[_host(PRN, "192.168.1.30", "printer", last_seen=wire.format_time(T0))]))
    lan = site_lan(ingest.store, ingest.site, 0)
    assert lan["by_class"] == {"printer": 1} and lan["host_list"][0]["ip"] == "192.168.1.31"


def test_a_site_with_only_its_router_has_no_lan_and_a_failed_sweep_is_shown(ingest):
    assert site_lan(ingest.store, ingest.site, 0)["has_lan"] is None
    ingest(lan_msg(1, 0, 1, appeared=[_host("00:1d:aa:00:00:01", "192.168.1.1", "network")], known=1))
    lan = site_lan(ingest.store, ingest.site, 0)
    assert lan["has_lan"] is False and lan["computers"] == 0 and lan["shortfall"] == 16
    ingest(lan_msg(2, 10, 0, ok=False))
    assert site_lan(ingest.store, ingest.site, 0)["last_error"] == "sweep_failed: boom"


@pytest.mark.parametrize("bad,reason,where", [
    ({"mac": "00:80:77:00:00"}, "bad_field", "appeared[0].mac"),
    ({"ip": "192.168.1.300"}, "bad_field", "appeared[0].ip"),
    ({"device_class": "toaster"}, "out_of_range", "appeared[0].device_class"),
    ({"owner": "x"}, "unknown_field", "appeared[0] has unknown field 'owner'"),
])
def test_the_collector_rejects_a_malformed_host_entry_with_a_reason(ingest, bad, reason, where):
    good = lan_msg(9, 0, 1, appeared=[_host(PC1, "192.168.1.21", "computer")])
    obj = json.loads(good.to_json())
    obj["data"]["appeared"][0].update(bad)
    out = ingest(good.topic, json.dumps(obj).encode())
    assert (out.status, out.reason) == ("rejected", reason) and where in out.detail
    assert ingest.store.rejects()[0].reason == reason


def test_a_successful_sweep_must_carry_its_summary():
    with pytest.raises(wire.MalformedMessage, match="lan.data.sweep_no is required"):
        wire.check_data("lan", {"method": "arp-scapy", "subnets": [], "missed_sweeps_before_gone": 3}, True)

"""The pure parts of LAN discovery and inventory: vendor table, device class, neighbour
table parsing, subnet planning, sweep-state diff, wire validation, the collector's fold."""
from __future__ import annotations

import dataclasses
import json
import socket
import struct
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linewatch import wire, wire_checks
from linewatch.agent import config as agent_config
from linewatch.agent.discovery import classify, names, neigh, oui, state
from linewatch.agent.discovery.subnets import IfAddr, plan
from linewatch.agent.discovery import probe
from linewatch.agent.discovery.sweep import default_gateways, drop_own
from linewatch.agent import inventory, lan as agent_lan
from linewatch.agent.inventory import collect, parse_cpu_model, parse_os_release
from linewatch.collector import registry as registry_mod
from linewatch.collector.ingest import Ingestor
from linewatch.collector.inventory import render, site_lan
from linewatch.collector.record.types import HostInventory, LanHost, LanState, LanSweep
from linewatch.collector.report import figures as fg
from reportsample import period
from linewatch.collector.record import EventFilter, open_record
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


# Real 24-bit prefixes of the shipped table: what the maker alone says. A maker of one kind of
# device settles it; a maker of several (HP, Samsung, Apple) or an unknown one does not.
MAKERS = [
    ("00:06:5b", "computer"), ("10:c5:95", "computer"), ("00:2b:67", "computer"),  # Dell, Lenovo, LCFC (Lenovo)
    ("00:0c:6e", "computer"), ("00:01:24", "computer"), ("00:d8:61", "computer"),  # Asus, Acer, MSI
    ("00:12:f0", "computer"), ("00:e0:4c", "computer"), ("00:16:e6", "computer"),  # Intel, Realtek, Gigabyte
    ("00:25:22", "computer"), ("00:03:ff", "computer"),                            # ASRock, Microsoft
    ("00:01:e6", "unsure"), ("00:68:eb", "unsure"),                                # Hewlett Packard, HP
    ("00:00:f0", "unsure"), ("00:03:93", "unsure"),                                # Samsung, Apple
    ("00:00:85", "printer"), ("00:1b:a9", "printer"), ("00:00:48", "printer"),     # Canon, Brother, Epson
    ("d4:f0:c9", "printer"), ("00:00:74", "printer"), ("08:00:37", "printer"),     # Kyocera, Ricoh, Fujifilm BI
    ("00:17:5c", "printer"), ("00:20:6b", "printer"), ("c8:3a:1b", "printer"),     # Sharp, Konica Minolta, Toshiba TEC
    ("00:9e:c8", "phone"), ("08:4a:cf", "phone"), ("08:23:b2", "phone"),           # Xiaomi, Oppo, Vivo
    ("0c:90:43", "phone"), ("00:3d:e1", "phone"), ("00:5e:0c", "phone"),           # Realme, Huawei Device, HMD
    ("00:d2:79", "phone"), ("d4:d2:e5", "phone"), ("00:15:2a", "phone"),           # Vingroup (Vsmart), Bkav, Nokia
    ("00:0a:eb", "network"), ("c8:3a:35", "network"), ("00:eb:d8", "network"),     # TP-Link, Tenda, Mercusys
    ("84:68:c8", "network"), ("00:0e:e8", "network"), ("00:00:0c", "network"),     # Totolink, Zioncom, Cisco
    ("00:18:82", "network"), ("00:15:eb", "network"), ("a0:65:18", "network"),     # Huawei (ONTs), ZTE, VNPT
    ("24:0b:2a", "network"), ("00:1d:aa", "network"), ("00:15:6d", "network"),     # Viettel, DrayTek, Ubiquiti
    ("00:0c:42", "network"), ("24:43:e2", "network"), ("08:47:d0", "network"),     # MikroTik, Dasan, Nokia Sh. Bell
    ("04:03:12", "camera"), ("08:ed:ed", "camera"), ("58:8f:cf", "camera"),        # Hikvision, Dahua, Ezviz
    ("48:ea:63", "camera"), ("00:02:d1", "camera"),                                # Uniview, Vivotek
    ("28:cd:c1", "unsure"), ("00:05:69", "unsure"),                                # Raspberry Pi, VMware
    ("00:26:75", "unsure"), ("dc:66:3a", "unsure"), ("00:1a:3f", "unsure"),        # Aztech, Apacer, Intelbras:
]                                                                                  # not ZTE, Acer, Intel


@pytest.mark.parametrize("prefix,expected", MAKERS)
def test_a_maker_alone_settles_the_class_only_when_it_makes_one_kind_of_device(prefix, expected):
    v = oui.vendor(prefix + ":4a:00:01")
    assert v is not None, f"{prefix} is not in the shipped table"
    assert classify.device_class(v) == expected, classify.classify(classify.Evidence(vendor=v))


def _ev(mac: str, *names: str, ttl: int | None = None, netbios: bool = False, ports=(), gateway=False):
    return classify.Evidence(oui.vendor(mac), names, oui.is_locally_administered(mac), gateway, ttl, netbios,
                             frozenset(ports))


HP, SAMSUNG, APPLE, RANDOM, REALTEK = "3c:52:82:00:00:01", "00:00:f0:00:00:01", "00:03:93:00:00:01", \
    "da:a1:19:00:00:01", "00:e0:4c:00:00:01"
NOBODY = "08:3a:8d:00:00:01"  # Espressif: Wi-Fi chips in anything (smart plugs, ...), says nothing
# A commune office as the sweep sees it: (evidence, class). The cases the brief names first.
OFFICE = [
    (_ev(HP), "unsure"),                                               # HP alone: PC or printer
    (_ev(HP, ttl=64), "unsure"),                                       # ... not Windows: still either
    (_ev(HP, ttl=128), "computer"),                                    # answers pings like Windows
    (_ev(HP, ttl=255), "unsure"),                                      # a switch or printer firmware
    (_ev(HP, "NPI8F2A1C"), "printer"),                                 # HP printer default name
    (_ev(HP, "NPI8F2A1C", netbios=True), "printer"),                   # printers answer NetBIOS too
    (_ev(HP, "DESKTOP-7QK2M1.lan"), "computer"),                       # Windows default name
    (_ev(HP, "KETOAN-PC", netbios=True, ttl=128), "computer"),
    (_ev(HP, ttl=64, ports={9100}), "printer"),                        # raw printing port open
    (_ev(HP, ttl=64, ports={445, 3389}), "computer"),
    (_ev(SAMSUNG), "unsure"), (_ev(SAMSUNG, "Galaxy-A52"), "phone"), (_ev(SAMSUNG, ports={9100}), "printer"),
    (_ev(APPLE, ttl=64), "unsure"), (_ev(APPLE, ports={62078}), "phone"), (_ev(APPLE, "MacBook-Air-cua-Lan"),
                                                                          "computer"),
    (_ev(RANDOM), "unsure"), (_ev(RANDOM, ttl=64), "unsure"),          # a phone's private address? or a VM
    (_ev(RANDOM, "iPhone"), "phone"), (_ev(RANDOM, "android-3f2a9c1b7d6e5f40"), "phone"),
    (_ev(RANDOM, ttl=128), "computer"),                                # Windows' random hardware address
    (_ev(NOBODY), "unsure"), (_ev(NOBODY, "PC-KETOAN"), "computer"), (_ev(NOBODY, "MAY-03"), "computer"),
    (_ev(NOBODY, "may-in-tang2"), "printer"), (_ev(NOBODY, "MAY-IN-KETOAN"), "printer"),
    (_ev(NOBODY, "MOTCUA-01"), "computer"), (_ev(NOBODY, "BRN008077123456"), "printer"),
    (_ev(NOBODY, "EPSON3A1B2C"), "printer"), (_ev(NOBODY, "Canon-MF3010"), "printer"),
    (_ev(NOBODY, "Redmi-Note-9"), "phone"), (_ev(NOBODY, "IPC-hanh-lang"), "camera"),
    (_ev(REALTEK), "computer"), (_ev(REALTEK, ttl=128), "computer"),
    (_ev(REALTEK, ttl=64), "unsure"),                                  # a TV box or camera on a Realtek chip?
    (_ev("00:06:5b:00:00:01", gateway=True), "network"),               # Dell as the router: the gateway wins
    (_ev("00:18:82:00:00:01", gateway=True), "network"),               # a Huawei ONT
    (_ev("00:12:f0:00:00:01", "iphone-cua-lan"), "phone"),             # a person's name beats the NIC maker
    (_ev("00:12:f0:00:00:01", ttl=64), "computer"),                    # an Intel NIC running Linux
    (_ev("04:03:12:00:00:01", ttl=64), "camera"),
    (_ev(NOBODY, ttl=255), "unsure"),                                  # only "not a PC"
]


@pytest.mark.parametrize("evidence,expected", OFFICE, ids=[f"{i}-{c}" for i, (_, c) in enumerate(OFFICE)])
def test_the_office_devices_are_classed_as_far_as_the_evidence_goes_and_unsure_beyond(evidence, expected):
    cls, said = classify.classify(evidence)
    assert cls == expected, said
    assert said and len(said) <= classify.MAX_EVIDENCE


def test_the_evidence_text_says_what_the_class_rests_on():
    cls, said = classify.classify(_ev(HP, "KETOAN-PC", netbios=True, ttl=128))
    assert cls == "computer"
    assert said == ("name KETOAN-PC: computer name; vendor Hewlett Packard: PCs and printers alike; "
                    "TTL 128: Windows; answered NetBIOS (Windows)")
    assert classify.classify(classify.Evidence()) == ("unsure", "no vendor, name or answer to go on")


def test_no_rule_speaks_for_a_class_the_wire_does_not_know():
    said = {c for table in (classify.NAME_RULES, classify.VENDOR_RULES) for _p, w, _s in table for c in w}
    said |= {c for w, _s in (*classify.TTL_RULES.values(), *classify.PORT_RULES.values()) for c in w}
    assert said <= set(classify.CLASSES) - {"unsure"} and set(classify.CLASSES) <= set(wire.DEVICE_CLASSES)


@settings(max_examples=300, deadline=None)
@given(vendor=st.one_of(st.none(), st.text(max_size=300)), names_=st.lists(st.text(max_size=300), max_size=3),
       random_mac=st.booleans(), gateway=st.booleans(), ttl=st.one_of(st.none(), st.integers(-2**40, 2**40)),
       netbios=st.booleans(), ports=st.frozensets(st.integers(-1, 70000), max_size=8))
def test_any_vendor_name_or_answer_however_hostile_gives_a_class_the_wire_accepts(vendor, names_, random_mac,
                                                                                   gateway, ttl, netbios, ports):
    e = classify.Evidence(vendor, tuple(names_), random_mac, gateway, ttl, netbios, ports)
    cls, said = classify.classify(e)
    assert cls in classify.CLASSES and classify.classify(e) == (cls, said)
    wire.check_lan_host("host", {"ip": "192.168.1.5", "mac": "aa:bb:cc:dd:ee:ff", "device_class": cls,
                                 "evidence": said})
    if not (vendor or any(n.strip() for n in names_) or gateway or ttl is not None or netbios or ports):
        assert cls == "unsure", "no evidence at all is never a guess"
    if gateway and not names_:
        assert cls != "computer"


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


def test_what_was_learnt_about_a_host_is_kept_and_a_changed_class_is_announced_as_an_update():
    hp = {"mac": "3c:52:82:00:00:05", "ip": "10.0.0.5", "vendor": "Hewlett Packard", "name": None}
    s, ch = state.apply_sweep(state.SweepState(), [hp], "2026-01-01T00:00:00.000Z", 3)
    assert ch.appeared[0].device_class == "unsure" and not ch.updated
    # the next sweep hears its NetBIOS name and a Windows TTL: now surely a computer
    s, ch = state.apply_sweep(s, [dict(hp, netbios="KETOAN-PC", name="KETOAN-PC", ttl=128)], "2026-01-01T00:15:00.000Z", 3)
    assert not ch.appeared and [k.device_class for k in ch.updated] == ["computer"]
    entry = ch.updated[0].wire(update=True)
    assert entry["update"] is True and entry["first_seen"] == "2026-01-01T00:00:00.000Z"
    assert "TTL 128: Windows" in entry["evidence"]
    wire.check_lan_host("host", entry)
    # a later sweep where the ping was lost and NetBIOS timed out changes nothing
    s, ch = state.apply_sweep(s, [dict(hp, ttl=None)], "2026-01-01T00:30:00.000Z", 3)
    assert not ch.updated and s.hosts[hp["mac"]].device_class == "computer" and s.hosts[hp["mac"]].ttl == 128


def test_a_state_file_of_an_older_agent_loads_and_its_unknown_hosts_are_reclassified(tmp_path):
    p = tmp_path / "lan-state.json"
    p.write_text(json.dumps({"sweeps": 4, "hosts": {"00:80:77:00:00:03": {
        "mac": "00:80:77:00:00:03", "ip": "10.0.0.3", "vendor": "Brother industries", "name": None,
        "device_class": "unknown", "first_seen": "2026-01-01T00:00:00.000Z", "last_seen": "2026-01-01T00:00:00.000Z",
        "missed": 0}}}))
    s = state.load(p)
    s, ch = state.apply_sweep(s, [{"mac": "00:80:77:00:00:03", "ip": "10.0.0.3", "vendor": "Brother industries"}],
                              "2026-01-02T00:00:00.000Z", 3)
    assert [k.device_class for k in ch.updated] == ["printer"]


def test_the_sweep_never_reports_this_computers_own_cards():
    found = {"f8:bc:12:00:00:02": ("10.0.0.2", "lan0"), "00:80:77:00:00:03": ("10.0.0.3", "lan0"),
             "aa:bb:cc:00:00:04": ("10.0.0.1", "lan0")}
    notes = drop_own(found, {"macs": ["F8:BC:12:00:00:02"], "ips": []}, {"10.0.0.1"})
    assert list(found) == ["00:80:77:00:00:03"] and len(notes) == 2
    assert notes[0] == "10.0.0.2 (f8:bc:12:00:00:02) is this computer's own address: counted once, as this computer"


def test_the_ttl_of_an_echo_reply_is_read_from_the_ip_header_or_the_ping_sockets_control_message():
    reply = bytes([0x45, 0, 0, 44, 0, 0, 0, 0, 128, 1, 0, 0, 10, 0, 0, 5, 10, 0, 0, 1]) + b"\0" * 24
    assert probe.reply_ttl(reply, [], True) == 128
    assert probe.reply_ttl(b"\0" * 24, [(socket.IPPROTO_IP, probe.IP_TTL, struct.pack("i", 64))], False) == 64
    assert probe.reply_ttl(b"\0" * 24, [], False) is None and probe.reply_ttl(b"\0" * 8, [], True) is None


def test_the_lan_summary_counts_this_computer_once_when_it_says_it_is_one(tmp_path, monkeypatch):
    pc = {"counted_as_computer": True, "computer_kind": "desktop", "computer_why": "AMD64 Windows desktop"}
    hosts = [{"ip": "192.168.1.1", "mac": "00:1d:aa:00:00:01", "interface": "eth0", "vendor": "DrayTek",
              "gateway": True}]
    monkeypatch.setattr(agent_lan, "sweep_child", lambda spec, timeout: {"method": "arp-scapy", "hosts": hosts,
                                                                         "notes": [], "sweep_s": 1.0})
    cfg = agent_config.LanConfig()
    addrs = lambda: [IfAddr("eth0", "192.168.1.10", "255.255.255.0")]  # noqa: E731
    for me, computers in ((pc, 1), (dict(pc, counted_as_computer=False, computer_kind="single_board",
                                         computer_why="Raspberry Pi 4: a probe box"), 0)):
        monkeypatch.setattr(agent_lan, "this_computer", lambda override=None, me=me: me)
        got = []
        agent_lan.LanJob(cfg, tmp_path / str(computers), addrs)(got.append)
        d = got[0].data
        wire.check_data("lan", d, True)
        assert (d["computers"], d["by_class"], d["counted_as_computer"]) == (computers, {"network": 1},
                                                                            me["counted_as_computer"])
        assert d["notes"][0].startswith("this computer: " + ("counted as a computer" if computers else "not counted"))


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


F = inventory.HostFacts


@pytest.mark.parametrize("facts,counted,kind", [
    (F("Windows", "AMD64"), True, "desktop"),                                  # the office PC the agent runs on
    (F("Windows", "AMD64", battery=True), True, "laptop"),
    (F("Windows", "ARM64", battery=True), True, "laptop"),                     # Snapdragon laptop: ARM, still a PC
    (F("Darwin", "arm64", battery=True), True, "laptop"),                      # Apple silicon MacBook
    (F("Linux", "x86_64", chassis_type=3), True, "desktop"),
    (F("Linux", "x86_64", chassis_type=10, battery=False), True, "laptop"),   # notebook, battery removed
    (F("Linux", "x86_64", chassis_type=35), True, "desktop"),                  # mini PC
    (F("Linux", "aarch64", "Raspberry Pi 4 Model B Rev 1.4"), False, "single_board"),
    (F("Linux", "armv7l", "Orange Pi PC"), False, "single_board"),
    (F("Linux", "x86_64", product="innotek GmbH VirtualBox"), False, "virtual_machine"),
    (F("Windows", "AMD64", product="VMware, Inc. VMware Virtual Platform"), False, "virtual_machine"),
    (F("Linux", "x86_64", hypervisor=True), False, "virtual_machine"),
    (F("Windows", "AMD64", hypervisor=True), True, "desktop"),                 # Windows' own VBS sets the flag
    (F("Linux", "x86_64", chassis_type=17), False, "server"),
])
def test_the_agent_says_whether_its_own_computer_counts_and_why(facts, counted, kind):
    c, k, why = inventory.judge_computer(facts)
    assert (c, k) == (counted, kind) and why
    if kind == "single_board":
        assert facts.board in why


def test_this_computers_word_on_itself_is_in_its_inventory():
    d = collect().data
    assert isinstance(d["counted_as_computer"], bool) and d["computer_kind"] in wire_checks.COMPUTER_KINDS
    assert d["computer_why"]


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


# ------------------------------------------------------------------ counting computers
AGENT_MAC = "3c:52:82:11:22:33"


def inv_msg(seq: int, minutes: int, **data) -> wire.Message:
    d = {"hostname": "ubnd-pc01", "os_name": "Windows 10 Pro", "os_version": "10.0.19045", "machine": "AMD64",
         "ram_total_mb": 8000, "disk_total_gb": 256.0, "disk_free_gb": 100.0,
         "boot_time": wire.format_time(T0 - timedelta(hours=1)),
         "interfaces": [{"name": "Ethernet", "is_up": True, "mac": AGENT_MAC, "ipv4": ["192.168.1.10"]}], **data}
    return wire.build_message(kind="inventory", agent_id="ag-21583", province="52", site="21583", seq=seq,
                              measured_at=T0 + timedelta(minutes=minutes), data=d)


PC_SAYS = {"counted_as_computer": True, "computer_kind": "desktop", "computer_why": "AMD64 Windows desktop"}


def test_a_site_whose_only_computer_runs_the_agent_shows_one_computer_not_zero(ingest):
    """16 staff, one PC -- the agent's: 1 computer, shortfall 15, before and after a sweep that
    finds only the router (no LAN)."""
    assert ingest(inv_msg(1, 0, **PC_SAYS)).status == "stored"
    lan = site_lan(ingest.store, ingest.site, 0)
    assert (lan["swept"], lan["has_lan"], lan["computers"], lan["own_computers"], lan["shortfall"]) == \
        (False, None, 1, 1, 15)
    ingest(lan_msg(2, 5, 1, appeared=[_host("00:1d:aa:00:00:01", "192.168.1.1", "network")], known=1))
    lan = site_lan(ingest.store, ingest.site, 0)
    assert (lan["has_lan"], lan["computers"], lan["shortfall"], lan["by_class"]) == (False, 1, 15, {"network": 1})
    from linewatch.collector.export.exporter import computers
    assert computers(ingest.store, "21583") == 1, "the exported figure counts as status does"


def test_the_agents_word_on_its_computer_wins_and_an_older_agent_is_counted_unless_arm(ingest):
    pi = {"counted_as_computer": False, "computer_kind": "single_board", "computer_why": "Raspberry Pi 4: a probe box"}
    ingest(inv_msg(1, 0, machine="aarch64", **pi))
    assert site_lan(ingest.store, ingest.site, 0)["computers"] is None
    ingest(inv_msg(2, 1, machine="x86_64", counted_as_computer=False, computer_kind="virtual_machine"))
    assert site_lan(ingest.store, ingest.site, 0)["own_computers"] == 0
    ingest(inv_msg(3, 2))  # an older agent: no word on itself, x86 -> counted (the former rule)
    assert site_lan(ingest.store, ingest.site, 0)["own_computers"] == 1
    ingest(inv_msg(4, 3, machine="aarch64"))  # an older agent on a Pi
    assert site_lan(ingest.store, ingest.site, 0)["own_computers"] == 0
    ingest(inv_msg(5, 4, machine="ARM64", **PC_SAYS))  # a Snapdragon laptop says it is a computer
    assert site_lan(ingest.store, ingest.site, 0)["own_computers"] == 1


def test_an_agents_own_computer_seen_on_the_lan_is_counted_once_and_makes_no_lan_by_itself(ingest):
    """Another sweep (a second agent, an older agent's Wi-Fi card) sees the agent's PC: one computer."""
    ingest(inv_msg(1, 0, **PC_SAYS))
    ingest(lan_msg(2, 5, 1, appeared=[_host("00:1d:aa:00:00:01", "192.168.1.1", "network"),
                                      _host(AGENT_MAC, "192.168.1.10", "computer")],
                   known=2))
    lan = site_lan(ingest.store, ingest.site, 0)
    assert (lan["computers"], lan["by_class"], lan["has_lan"]) == (1, {"network": 1}, False)
    assert [h["agent_computer"] for h in lan["host_list"] if h["mac"] == AGENT_MAC] == [True]


def test_unsure_devices_and_older_agents_unknown_ones_are_counted_apart_never_as_computers(ingest):
    ingest(lan_msg(1, 0, 1, appeared=[
        _host("3c:52:82:00:00:05", "192.168.1.5", "unsure", vendor="Hewlett Packard",
              evidence="vendor Hewlett Packard: PCs and printers alike"),
        _host("da:a1:19:00:00:06", "192.168.1.6", "unknown"),  # an older agent's word
        _host("04:03:12:00:00:07", "192.168.1.7", "camera", vendor="Hangzhou Hikvision Digital Technology"),
        _host(PC1, "192.168.1.21", "computer")], known=4))
    lan = site_lan(ingest.store, ingest.site, 0)
    assert lan["by_class"] == {"unsure": 2, "camera": 1, "computer": 1}
    assert (lan["computers"], lan["unsure"], lan["has_lan"]) == (1, 2, True)
    text = render([{"site": "21583", "name": "UBND", "lan": lan}], "vi", lambda s: "1m")
    assert "1 camera, 2 chưa rõ loại" in text
    st = ingest.store.lan_state("21583")
    hosts = st.hosts
    around = dataclasses.replace(period("2026-10"), start=T0.timestamp() - 86400, end=T0.timestamp() + 86400)
    assert fg.lan_counts(st, around) == (1, 0, 2, True)
    assert {h.device_class for h in hosts} == {"unsure", "unknown", "camera", "computer"}, "stored as sent"


def test_a_host_whose_class_became_sure_is_updated_at_the_collector_and_the_feed_says_so(ingest):
    unsure = _host("3c:52:82:00:00:05", "192.168.1.5", "unsure", vendor="Hewlett Packard",
                   first_seen=wire.format_time(T0))
    ingest(lan_msg(1, 0, 1, appeared=[unsure], known=1))
    ingest(lan_msg(2, 15, 2, appeared=[dict(unsure, device_class="computer", name="KETOAN-PC", update=True)], known=1))
    lan = site_lan(ingest.store, ingest.site, 0)
    assert lan["by_class"] == {"computer": 1} and lan["host_list"][0]["name"] == "KETOAN-PC"
    assert lan["host_list"][0]["first_seen"] == wire.format_time(T0), "an update is not a new device"
    changes = [e.data["change"] for e in ingest.store.events(EventFilter(kind="lan_host"))]
    assert changes == ["appeared", "updated"]


def test_the_report_counts_with_the_same_rule_over_the_month():
    p = period("2026-10")
    H0 = p.start
    sweep = [LanSweep("ag-1", "21583", H0 + 100, "arp-scapy", 1, 3, [], None, None, None)]
    own_pc = LanHost(AGENT_MAC, "192.168.1.10", "Hewlett Packard", None, "computer", "ag-2", H0, H0 + 9, None)
    hosts = [LanHost(PC1, "192.168.1.21", "Dell", None, "computer", "ag-1", H0, H0 + 9, None), own_pc,
             LanHost("x", "192.168.1.5", None, None, "unsure", "ag-1", H0, H0 + 9, None)]
    pc = HostInventory("ag-1", "21583", H0, {"machine": "AMD64", **PC_SAYS, "interfaces": []})
    vm = HostInventory("ag-2", "21583", H0, {"machine": "x86_64", "counted_as_computer": False,
                                             "interfaces": [{"name": "eth0", "mac": AGENT_MAC}]})
    assert fg.lan_counts(LanState(hosts, 0, sweep, [pc, vm]), p) == (2, 0, 1, True)
    assert fg.lan_counts(LanState([], 0, [], [pc, vm]), p) == (1, None, None, None), "no sweep: the agents' own"


def test_the_wire_takes_the_new_classes_and_fields_and_still_the_older_agents_messages():
    for cls in ("unsure", "camera", "unknown"):
        wire.check_lan_host("h", {"ip": "10.0.0.1", "mac": "aa:bb:cc:dd:ee:ff", "device_class": cls})
    wire.check_data("inventory", inv_msg(1, 0).data, True)  # no word on itself: an older agent
    wire.check_data("inventory", inv_msg(1, 0, **PC_SAYS).data, True)
    with pytest.raises(wire.MalformedMessage, match="computer_kind='tablet' is not one of"):
        wire.check_data("inventory", inv_msg(1, 0, computer_kind="tablet").data, True)
    with pytest.raises(wire.MalformedMessage, match="unknown class 'toaster'"):
        wire.check_data("lan", dict(lan_msg(1, 0, 1).data, by_class={"toaster": 1}), True)


def test_the_admin_can_say_whether_the_agents_pc_counts_and_turn_on_the_port_probe(tmp_path, monkeypatch):
    from linewatch.agent import config as agent_config
    from linewatch.agent import inventory

    doc = {"agent": {"id": "ag-1", "province": "52", "site": "21583", "state_dir": str(tmp_path),
                     "counted_as_computer": "no"},
           "mqtt": {"host": "localhost", "tls": False}, "lan": {"probe_ports": True},
           "line": [{"id": "fiber", "latency": {"targets": ["1.1.1.1"]}}]}
    cfg = agent_config.parse(doc)
    assert cfg.counted_as_computer is False and cfg.lan.probe_ports is True
    # a dedicated x86 probe box the agent takes for a staff PC
    monkeypatch.setattr(inventory, "judge_computer", lambda facts: (True, "desktop", "an x86 desktop"))
    me = inventory.this_computer(cfg.counted_as_computer)
    assert me["counted_as_computer"] is False and me["computer_kind"] == "desktop"
    assert "set in agent.toml" in me["computer_why"] and "an x86 desktop" in me["computer_why"]
    assert inventory.this_computer(None)["counted_as_computer"] is True, "auto: the agent's own judgement"
    doc["agent"]["counted_as_computer"] = "maybe"
    with pytest.raises(agent_config.ConfigError, match="counted_as_computer"):
        agent_config.parse(doc)

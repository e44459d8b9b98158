"""LAN discovery on a real (namespaced) Ethernet: a bridge, host namespaces with known MACs
-- one with a printer maker's prefix -- and the agent's own namespace. Needs root."""
from __future__ import annotations

import ipaddress
import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from linewatch import wire
from linewatch.collector.record import EventFilter, open_record

from conftest import MOSQUITTO, REGISTRY_TOML, ROOT, wait_for
from netlab import IP, Lab, netns_unavailable

pytestmark = pytest.mark.netns
_why = netns_unavailable()
if _why:
    pytest.skip(_why, allow_module_level=True)

# Real IEEE prefixes: Dell (a PC), Brother (a printer), HP (PCs and printers alike).
HOSTS = {
    "pc-ketoan": (10, "f8:bc:12:4a:00:10", "desktop-ketoan"),
    "printer": (20, "00:80:77:4a:00:20", None),
    "pc-motcua": (30, "3c:52:82:4a:00:30", "pc-motcua"),
}
EXPECTED = {"f8:bc:12:4a:00:10": ("Dell", "computer"), "00:80:77:4a:00:20": ("Brother industries", "printer"),
            "3c:52:82:4a:00:30": ("Hewlett Packard", "computer")}


@pytest.fixture
def lab():
    net = ipaddress.IPv4Network(f"10.{random.randint(64, 127)}.{random.randint(0, 255)}.0/24")
    lab = Lab(net)
    try:
        lab.start()
        for key, (index, mac, name) in HOSTS.items():
            lab.add_host(key, index, mac, name)
        yield lab
    finally:
        lab.close()


def sweep(lab: Lab, no_caps: bool = False, method: str = "auto", **extra) -> dict:
    """One sweep process in the agent's namespace, as root or (``no_caps``) as root without
    any capability: no raw socket, hence no ARP sweep -- what "no raw-socket rights" means.
    Not another user: that user could not read a checkout in a private folder (CI's clone
    lives in a 0700 mktemp -d folder)."""
    spec = {"targets": [{"cidr": str(lab.network), "interface": "lan0", "source": lab.agent_ip}],
            "rate_pps": 1000, "timeout_s": 1, "method": method, **extra}
    r = subprocess.run(lab.exec_args(sys.executable, "-m", "linewatch.agent.discovery.sweep", json.dumps(spec),
                                     no_caps=no_caps), capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def found(out: dict) -> dict[str, tuple[str, str]]:
    return {h["mac"]: (h["vendor"], h["device_class"]) for h in out["hosts"]}


def test_the_arp_sweep_finds_exactly_the_hosts_on_the_bridge_with_their_macs_vendors_and_names(lab):
    out = sweep(lab)
    assert out["method"] == "arp-scapy"
    assert found(out) == EXPECTED
    ips = {h["mac"]: h["ip"] for h in out["hosts"]}
    assert ips == {mac: lab.hosts[k].ip for k, (_, mac, _) in HOSTS.items()}
    names = {h["mac"]: h["name"] for h in out["hosts"]}
    assert names["f8:bc:12:4a:00:10"] == "desktop-ketoan" and names["00:80:77:4a:00:20"] is None


def test_without_raw_socket_rights_a_ping_sweep_and_the_neighbour_table_find_the_same_hosts(lab):
    # No capabilities: scapy cannot open a raw socket; ICMP echo sockets are off in a new
    # namespace (ping_group_range "1 0"), so the empty-UDP sweep is what is left, and no TTL.
    out = sweep(lab, no_caps=True)
    assert out["method"] == "udp+neigh", out
    assert any("no raw-socket rights" in n for n in out["notes"])
    assert any(n.startswith("no TTLs: no ICMP socket") for n in out["notes"])
    assert found(out) == EXPECTED
    assert all(h["ttl"] is None for h in out["hosts"])
    # With unprivileged ping allowed, it pings; the kernel table is emptied first so it has to re-learn.
    subprocess.run(lab.exec_args("sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"), check=True)
    subprocess.run([IP, "-n", lab.agent_ns, "neigh", "flush", "dev", "lan0"], check=True)
    out = sweep(lab, no_caps=True)
    assert out["method"] == "ping+neigh"
    assert found(out) == EXPECTED
    assert {h["ttl"] for h in out["hosts"]} == {64}, "the ping socket reads each reply's TTL"


def test_the_sweep_learns_ttls_and_on_request_open_ports_and_never_reports_the_agents_own_cards(lab):
    """Real packets: an HP device answering pings like Windows is a computer; a silent HP one
    is unsure; with the port probe, the HP one listening on 9100 is a printer. The agent's own
    second card on the same LAN (Wi-Fi beside Ethernet) is not reported as another host."""
    pc = lab.add_host("hp-windows", 40, "3c:52:82:4a:00:40", ttl=128)
    prn = lab.add_host("hp-printer", 41, "3c:52:82:4a:00:41")
    cam = lab.add_host("camera", 42, "04:03:12:4a:00:42")        # Hikvision
    phone = lab.add_host("phone", 43, "da:a1:19:4a:00:43")       # random MAC, nothing else
    own_mac = "f8:bc:12:4a:00:02"
    own_ip = lab.add_agent_card(2, own_mac)
    listener = lab.listen("hp-printer", 9100)
    try:
        out = sweep(lab, own={"macs": [own_mac], "ips": [own_ip]})
        by_ip = {h["ip"]: h for h in out["hosts"]}
        assert own_ip not in by_ip and own_mac not in {h["mac"] for h in out["hosts"]}
        assert by_ip[pc.ip]["ttl"] == 128 and by_ip[pc.ip]["device_class"] == "computer"
        assert "TTL 128: Windows" in by_ip[pc.ip]["evidence"]
        assert by_ip[prn.ip]["ttl"] == 64 and by_ip[prn.ip]["device_class"] == "unsure"
        assert by_ip[prn.ip]["ports"] is None, "no port is probed unless asked"
        assert by_ip[cam.ip]["device_class"] == "camera" and by_ip[phone.ip]["device_class"] == "unsure"
        assert found(out).items() >= EXPECTED.items()

        out = sweep(lab, ports=True, names=False)
        by_ip = {h["ip"]: h for h in out["hosts"]}
        assert own_ip not in by_ip, "Linux does not answer an ARP request sent from its own address"
        assert by_ip[prn.ip]["ports"] == [9100] and by_ip[prn.ip]["device_class"] == "printer"
        assert "port 9100 open: raw printing" in by_ip[prn.ip]["evidence"]
        assert by_ip[phone.ip]["ports"] == [] and by_ip[phone.ip]["device_class"] == "unsure"
        assert by_ip[pc.ip]["ports"] is None, "hosts already settled are not probed"
    finally:
        listener.terminate()
        listener.wait()


def test_the_lan_command_shows_a_technician_the_devices_without_touching_the_agents_state(lab, tmp_path):
    cfg, state_dir = tmp_path / "agent.toml", tmp_path / "state"
    cfg.write_text(f'[agent]\nid = "ag-1"\nprovince = "52"\nsite = "21583"\nstate_dir = "{state_dir}"\n'
                   '[lan]\nrate_pps = 1000\ntimeout_s = 1\n[[line]]\nid = "fiber"\n[line.latency]\n'
                   'targets = ["127.0.0.1"]\n')
    r = subprocess.run(lab.exec_args(sys.executable, "-m", "linewatch.agent.cli", "-c", str(cfg), "lan"),
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert f"{lab.network} on lan0: 3 devices" in r.stdout and "method arp-scapy" in r.stdout
    printer = next(l for l in r.stdout.splitlines() if l.startswith(lab.hosts["printer"].ip + " "))
    assert printer.split()[:6] == [lab.hosts["printer"].ip, "00:80:77:4a:00:20", "printer", "Brother", "industries", "-"]
    assert "brother" in printer.split(None, 6)[6].lower(), "and why it is a printer"
    assert not (tmp_path / "state" / "lan-state.json").exists()


# ------------------------------------------------------------------ the whole chain
def _netns_proc(lab: Lab, args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(lab.exec_args(*args), stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT)


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _lan_messages(record: Path) -> list[dict]:
    rec = open_record(record)
    try:
        return [e.data | {"_seq": e.seq} for e in rec.events(EventFilter(kind="lan", ok=True))]
    finally:
        rec.close()


def _inventory(record: Path, site: str = "21583") -> dict | None:
    if not record.exists():
        return None
    rec = open_record(record)
    try:
        return next((i.data for i in rec.lan_state(site).inventories), None)
    finally:
        rec.close()


def _hosts(record: Path, site: str = "21583") -> dict[str, tuple]:
    if not record.exists():
        return {}
    rec = open_record(record)
    try:
        st = rec.lan_state(site)
        return {h.mac: (h.vendor, h.device_class, h.gone_at) for h in st.hosts + st.gone}
    finally:
        rec.close()


@pytest.mark.skipif(not MOSQUITTO, reason="mosquitto is not installed (./dev test installs it with apt-get)")
def test_inventory_shortfall_and_a_gone_host_reach_the_collectors_status_through_mqtt(lab, tmp_path):
    missed = 2
    (tmp_path / "mosquitto.conf").write_text("listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\n")
    (tmp_path / "registry.toml").write_text(REGISTRY_TOML)  # site 21583: staff 10 + 4 + 2 = 16
    record = tmp_path / "record.sqlite3"
    (tmp_path / "collector.toml").write_text(textwrap.dedent(f"""\
        registry = "{tmp_path / 'registry.toml'}"
        record = "{record}"
        [mqtt]
        host = "127.0.0.1"
        port = 1883
        """))
    (tmp_path / "agent.toml").write_text(textwrap.dedent(f"""\
        [agent]
        id = "ag-21583"
        province = "52"
        site = "21583"
        state_dir = "{tmp_path / 'agent-state'}"
        [mqtt]
        host = "127.0.0.1"
        port = 1883
        [schedule]
        heartbeat_s = 5
        jitter_pct = 0
        [lan]
        subnets = ["auto"]
        interval_s = 3
        rate_pps = 1000
        timeout_s = 1
        missed_sweeps_before_gone = {missed}
        [[line]]
        id = "fiber"
        [line.latency]
        targets = ["127.0.0.1"]
        interval_s = 60
        count = 1
        """))
    procs = []
    try:
        procs.append(_netns_proc(lab, [MOSQUITTO, "-c", str(tmp_path / "mosquitto.conf")], tmp_path / "mosquitto.log"))
        time.sleep(0.5)
        procs.append(_netns_proc(lab, [sys.executable, "-m", "linewatch.collector.cli", "-c",
                                       str(tmp_path / "collector.toml"), "run"], tmp_path / "collector.log"))
        # the agent's inventory goes out once at its start (then every 6 h): the collector listens first
        wait_for(lambda: b"subscribed to" in (tmp_path / "collector.log").read_bytes(), 20, "the collector to subscribe")
        agent_args = [sys.executable, "-m", "linewatch.agent.cli", "-c", str(tmp_path / "agent.toml"), "run"]
        agent = _netns_proc(lab, agent_args, tmp_path / "agent.log")
        procs.append(agent)
        hosts = wait_for(lambda: len(_hosts(record)) == 3 and _hosts(record), 40, "three hosts in the record")
        assert {mac: (v, c) for mac, (v, c, _gone) in hosts.items()} == EXPECTED
        assert all(gone is None for *_, gone in hosts.values())

        # The agent says what its own computer is (a PC: counted; a VM or a Pi: not), in its
        # inventory and in every lan summary; the collector counts it from that word.
        inv = wait_for(lambda: _inventory(record), 40, "the agent's inventory")
        me = int(inv["counted_as_computer"])
        assert inv["computer_kind"] in wire.THIS_COMPUTER_FIELDS["computer_kind"].choices and inv["computer_why"]
        first = _lan_messages(record)[0]
        assert first["counted_as_computer"] == inv["counted_as_computer"] and first["computers"] == 2 + me
        status = subprocess.run([sys.executable, "-m", "linewatch.collector.cli", "-c", str(tmp_path / "collector.toml"),
                                 "status", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=30)
        site = next(s for s in json.loads(status.stdout)["sites"] if s["site"] == "21583")
        lan = site["lan"]
        assert (lan["has_lan"], lan["computers"], lan["staff"], lan["shortfall"]) == (True, 2 + me, 16, 14 - me)
        assert lan["by_class"] == {"computer": 2, "printer": 1} and lan["method"] == "arp-scapy"
        assert lan["own_computers"] == me
        text = subprocess.run([sys.executable, "-m", "linewatch.collector.cli", "-c", str(tmp_path / "collector.toml"),
                               "status"], capture_output=True, text=True, cwd=ROOT, timeout=30).stdout
        row = next(l for l in text.splitlines() if l.startswith("21583") and " có " in l)
        assert f" {2 + me} " in row and "16 (10/4/2)" in row and f" {14 - me} " in row and "1 máy in" in row, text

        # Unplug the printer: gone only after `missed` sweeps without it.
        lab.remove_host("printer")
        printer = "00:80:77:4a:00:20"
        wait_for(lambda: _hosts(record).get(printer, (0, 0, None))[2] is not None, 40, "printer reported gone")
        msgs = _lan_messages(record)
        gone_at = next(i for i, m in enumerate(msgs) if any(h["mac"] == printer for h in m["gone"]))
        missing_before = [m["sweep_no"] for m in msgs[:gone_at] if printer in m.get("missing", [])]
        assert missing_before == list(range(msgs[gone_at]["sweep_no"] - missed + 1, msgs[gone_at]["sweep_no"]))
        assert all(not m["appeared"] for m in msgs[1:]), "hosts are announced once, not every sweep"

        # A restart keeps the sweep state: nothing is announced again.
        _stop(agent)
        n_before = len(_lan_messages(record))
        procs.append(_netns_proc(lab, agent_args, tmp_path / "agent.log"))
        wait_for(lambda: len(_lan_messages(record)) > n_before, 40, "a sweep after the restart")
        after = _lan_messages(record)[n_before]
        assert after["appeared"] == [] and after["hosts_known"] == 2 and after["sweep_no"] > msgs[-1]["sweep_no"]
    finally:
        for p in reversed(procs):
            _stop(p)

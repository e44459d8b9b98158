"""A bandwidth test says whether this computer's own network card carried other traffic while
it ran (nic, nic_other_mbps, nic_busy): the arithmetic on generated counters, the choice of the
card, and for real on loopback and on a shaped veth link between two namespaces."""
from __future__ import annotations

import socket
import sys
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linewatch import wire
from linewatch.agent import netif
from linewatch.agent.probes import LineBinding, Result
from linewatch.agent.probes import bandwidth as bw
from linewatch.agent.probes.bandwidth import nicload
from linewatch.agent.probes.bandwidth.config import BandwidthConfig

from conftest import free_port

LINE = LineBinding("fiber", source_address="127.0.0.9")  # 127/8 is all local: a "line" on loopback


def valid(r: Result) -> Result:
    wire.build_message(kind=r.kind, agent_id="ag-t", province="52", site="21583", line=r.line, seq=1,
                       measured_at=r.measured_at, data=r.data, ok=r.ok, error_code=r.error_code, error=r.error)
    return r


def quiet_cfg(tmp_path) -> BandwidthConfig:
    return BandwidthConfig(method="linewatch", target=f"http://127.0.0.1:{free_port()}", state_dir=tmp_path)


# ----------------------------------------------------------------------------- other traffic on the card
counts = st.integers(0, 10**12)


@settings(max_examples=500, deadline=None)
@given(b0=counts, p0=st.integers(0, 10**9), own=st.integers(0, 10**10), own_packets=st.integers(0, 10**7),
       other=st.integers(0, 10**10), loop=st.booleans())
def test_other_traffic_is_what_the_card_counted_beyond_the_tests_payload_and_headers(b0, p0, own, own_packets, other,
                                                                                    loop):
    k = 2 if loop else 1
    before = nicload.Counters(b0, p0)
    after = nicload.Counters(b0 + k * (own + own_packets * nicload.HEADER_BYTES + other), p0 + k * own_packets)
    assert nicload.other_bytes(before, after, own, loopback=loop) == other
    assert nicload.other_bytes(after, before, own) == 0, "counters that went back (a reset) say nothing is other"


@settings(max_examples=500, deadline=None)
@given(other=st.integers(-10, 10**10), test=st.integers(0, 10**10), seconds=st.floats(0, 3600), pct=st.floats(0.1, 100))
def test_the_card_is_busy_only_when_other_traffic_is_above_the_floor_and_the_share(other, test, seconds, pct):
    v = nicload.judge(other, test, seconds, pct)
    assert v.busy == (other > nicload.FLOOR_BYTES and other > pct / 100 * test)
    assert v.other_mbps >= 0 and (v.other_mbps == 0 or seconds > 0)
    more = nicload.judge(max(0, other) * 2 + 1, test, seconds, pct)
    assert more.busy or not v.busy, "more other traffic is never less busy"


def test_the_card_is_the_lines_interface_or_the_one_holding_its_address_or_the_routes():
    cfg = BandwidthConfig(method="linewatch", target="http://127.0.0.1:8090")
    assert nicload.nic_for(LineBinding("a", interface="eth7"), cfg) == "eth7"
    if not sys.platform.startswith("linux"):
        pytest.skip("loopback is 'lo' on Linux")
    assert nicload.nic_for(LINE, cfg) == "lo", "127.0.0.9 is on the loopback's 127.0.0.0/8"
    assert nicload.nic_for(LineBinding("b"), cfg) == "lo", "the route to the target (a UDP connect sends nothing)"
    assert nicload.nic_for(LineBinding("c", source_address="10.255.255.1"), cfg) is None, "not on this computer"
    assert netif.route_source("127.0.0.1") == "127.0.0.1"


def test_without_psutil_or_a_known_card_nothing_is_said_about_other_traffic(tmp_path, monkeypatch):
    monkeypatch.setattr(netif, "_psutil", lambda: None)
    assert nicload.NicWatch.start(LINE, quiet_cfg(tmp_path)) is None
    gone = LineBinding("gone", interface="lw-no-such-card")
    monkeypatch.undo()
    assert nicload.NicWatch.start(gone, quiet_cfg(tmp_path)) is None


def hog(port: int, stop: threading.Event) -> threading.Thread:
    """Somebody else downloading over the same card as fast as it goes."""
    def run() -> None:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /lw/download?bytes=1000000000000 HTTP/1.1\r\nHost: x\r\n\r\n")
            while not stop.is_set() and s.recv(1 << 20):
                pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="loopback is 'lo' on Linux")
def test_a_test_that_shared_the_loopback_card_with_a_download_says_the_card_was_busy(tmp_path, speedserver):
    cfg = BandwidthConfig(method="linewatch", target=f"http://127.0.0.1:{speedserver.server_port}", max_test_mb=200,
                          state_dir=tmp_path)
    stop = threading.Event()
    t = hog(speedserver.server_port, stop)
    try:
        time.sleep(0.3)
        r = valid(bw.run_test(LINE, cfg))
    finally:
        stop.set()
        t.join(5)
    assert r.data["bytes"] > 0 and r.data["nic"] == "lo"
    assert r.data["nic_busy"] is True and r.data["nic_other_mbps"] > 10, r.data


def test_a_test_on_a_shaped_link_says_whether_someone_else_used_the_card_meanwhile(lab):
    """Office and server namespaces joined by a 20 Mbit/s veth link: the real agent CLI,
    first alone (not busy), then while another download runs from the office (busy)."""
    from linklab import agent_config as lab_agent_config

    office, server = lab.ns("o"), lab.ns("s")
    if_o, if_s = lab.link(office, server, 1)
    lab.shape(office, if_o, 20)
    lab.shape(server, if_s, 20)
    lab.speedserver(server)
    src, srv = lab.addr(1, 2), lab.addr(1, 1)
    cfg = lab_agent_config(lab.tmp / "state", f"""
        [[line]]
        id = "l1"
        source_address = "{src}"
          [line.bandwidth]
          target = "http://{srv}:8090"
          max_duration_s = 4
        """)
    [alone] = lab.probe(office, cfg, "l1", "bandwidth")
    assert alone["ok"] and alone["data"]["nic"] == if_o and alone["data"]["schedule"] == "manual"
    assert alone["data"]["nic_busy"] is False and alone["data"]["nic_other_mbps"] < 1, alone["data"]
    other = lab.spawn(office, sys.executable, "-c", "import urllib.request as u\n"
                      f"r = u.urlopen('http://{srv}:8090/lw/download?bytes=100000000000')\n"
                      "while r.read(65536): pass", log="other-download.log")
    time.sleep(1)
    try:
        [shared] = lab.probe(office, cfg, "l1", "bandwidth")
    finally:
        other.kill()
    assert shared["data"]["nic_busy"] is True and shared["data"]["nic_other_mbps"] > 2, shared["data"]

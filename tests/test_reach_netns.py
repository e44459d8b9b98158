"""Reach over a real line in network namespaces: the real agent (`run`) inside the office, a
router (the office gateway) and a far host; the line is blackholed with nftables and healed,
and a subscriber sees line_down / up / gateway_unreachable within seconds.

    office --(line, 10.N.1.0/24)--> gw (10.N.1.1) --(10.N.2.0/24)--> far (target 10.N.2.1)
    office --(own link, 10.N.3.0/24)--> far: mosquitto on 10.N.3.1 (never blackholed)
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import sys
import textwrap
import time

import pytest

from linklab import NFT, Lab

from conftest import MOSQUITTO, wait_for

SUBSCRIBER = """\
import json, sys
import paho.mqtt.client as mqtt
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="reach-listener")
c.on_connect = lambda c, *a: c.subscribe("lw/v1/52/21583/line/+/reach", qos=1)
c.on_subscribe = lambda *a: print("SUBSCRIBED", flush=True)
c.on_message = lambda c, u, m: print(m.payload.decode(), flush=True)
c.connect(sys.argv[1], int(sys.argv[2]))
c.loop_forever()
"""


@pytest.fixture
def office(lab: Lab):
    if not MOSQUITTO:
        pytest.skip("mosquitto is not installed")
    if not os.path.exists(NFT):
        pytest.skip("nftables is not installed (apt-get install nftables)")
    office, gw, far = lab.ns("office"), lab.ns("gw"), lab.ns("far")
    lab.link(office, gw, 1, tag="l")
    lab.link(gw, far, 2, tag="w")
    lab.link(office, far, 3, tag="m")
    lab.run(gw, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    lab.run(office, "ip", "route", "add", "default", "via", lab.addr(1, 1))
    lab.run(far, "ip", "route", "add", lab.addr(1, 0) + "/24", "via", lab.addr(2, 2))
    broker = lab.addr(3, 1)
    conf = lab.tmp / "mosquitto.conf"
    conf.write_text(textwrap.dedent(f"""\
        user {pwd.getpwuid(os.getuid()).pw_name}
        persistence false
        log_dest stdout
        listener 1883 {broker}
        allow_anonymous true
        """))
    lab.spawn(far, MOSQUITTO, "-c", str(conf), log="mosquitto.log")
    lab.wait_port(far, broker, 1883)
    lab.spawn(far, sys.executable, "-c", SUBSCRIBER, broker, "1883", log="reach.log")
    wait_for(lambda: "SUBSCRIBED" in (lab.tmp / "reach.log").read_text(), 10, "the reach subscriber")
    cfg = lab.tmp / "agent.toml"
    cfg.write_text(textwrap.dedent(f"""\
        [agent]
        id = "ag-lab"
        province = "52"
        site = "21583"
        state_dir = "{lab.tmp / 'state'}"
        [mqtt]
        host = "{broker}"
        keepalive_s = 5
        [inventory]
        enabled = false
        [[line]]
        id = "fiber"
        source_address = "{lab.addr(1, 2)}"
        [line.reach]
        target = "{lab.addr(2, 1)}"
        interval_s = 0.5
        timeout_s = 0.4
        down_after = 3
        up_after = 2
        report_s = 600
        """))
    agent = lab.spawn(office, sys.executable, "-m", "linewatch.agent.cli", "-c", str(cfg), "run", log="agent.log")
    return lab, gw, agent


def reach_messages(lab: Lab) -> list[dict]:
    out = []
    for row in (lab.tmp / "reach.log").read_text().splitlines():
        if row.startswith("{"):
            out.append(json.loads(row))
    return out


def wait_reach(lab: Lab, agent, pred, what: str, timeout: float = 10) -> dict:
    def found():
        assert agent.poll() is None, (lab.tmp / "agent.log").read_text()
        return next((m for m in reach_messages(lab) if pred(m)), None)
    try:
        return wait_for(found, timeout, what)
    except AssertionError:
        raise AssertionError(f"{what}: got {reach_messages(lab)}\n{(lab.tmp / 'agent.log').read_text()[-3000:]}")


def test_a_blackholed_line_is_reported_down_within_seconds_and_up_with_down_s(office):
    lab, gw, agent = office
    first = wait_reach(lab, agent, lambda m: m["data"]["change"], "the first state after start-up", 15)
    assert first["ok"] and first["data"]["state"] == "up" and first["line"] == "fiber"
    assert first["data"]["source"] == f"source {lab.addr(1, 2)}" and first["data"]["target"] == lab.addr(2, 1)
    assert first["data"]["gateway"] == lab.addr(1, 1)  # "auto": the default route of the line's interface

    lab.nft(gw, f"""\
        table inet t {{
          chain c {{ type filter hook forward priority 0; ip daddr {lab.addr(2, 1)} drop; }}
        }}""")
    t0 = time.monotonic()
    down = wait_reach(lab, agent, lambda m: m["data"]["state"] == "down", "a line_down message", 10)
    took = time.monotonic() - t0
    assert down["data"]["change"] is True and down["ok"] is False and down["error_code"] == "line_down"
    assert down["data"]["gateway_ok"] is True and lab.addr(2, 1) in down["error"] and "fiber" in down["error"]
    assert down["data"]["lost"] >= 3
    assert took < 6, f"line_down took {took:.1f} s"

    lab.run(gw, NFT, "delete", "table", "inet", "t")
    back = wait_reach(lab, agent, lambda m: m["data"]["state"] == "up" and m["data"].get("down_s") is not None,
                      "the line back up", 10)
    assert back["ok"] and back["data"]["change"] is True and back["error_code"] is None
    assert 1.0 <= back["data"]["down_s"] <= 15


def test_a_dead_gateway_is_reported_gateway_unreachable(office):
    lab, gw, agent = office
    wait_reach(lab, agent, lambda m: m["data"]["change"] and m["data"]["state"] == "up", "the line up", 15)
    src = lab.addr(1, 2)
    lab.nft(gw, f"""\
        table inet g {{
          chain i {{ type filter hook input priority 0; ip saddr {src} drop; }}
          chain f {{ type filter hook forward priority 0; ip saddr {src} drop; }}
        }}""")
    down = wait_reach(lab, agent, lambda m: m["data"]["state"] == "down", "a gateway_unreachable message", 10)
    assert down["error_code"] == "gateway_unreachable" and down["data"]["gateway_ok"] is False
    assert down["data"]["gateway"] == lab.addr(1, 1) and lab.addr(1, 1) in down["error"]

"""The agent's own parts on this machine: outbox durability, latency probe on loopback, one-shot CLI."""
import json
import os
import socket
import subprocess
import sys

import pytest

from linewatch import wire
from linewatch.agent.outbox import Outbox
from linewatch.agent.probes import LineBinding
from linewatch.agent.probes.latency import LatencyConfig, Target, measure

from conftest import ROOT, agent_toml


def heartbeat(seq: int) -> wire.Message:
    return wire.build_message(kind="heartbeat", agent_id="ag-1", province="52", site="21583", seq=seq,
                              measured_at=wire.utc_now(),
                              data={"version": "t", "uptime_s": 1, "queue_depth": 0, "queue_dropped": 0,
                                    "probe_errors": 0, "clock_utc": wire.format_time(wire.utc_now())})


def test_sequence_numbers_continue_after_the_outbox_is_reopened(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite3")
    assert [ob.put(heartbeat).seq for _ in range(3)] == [1, 2, 3]
    ob.close()
    ob = Outbox(tmp_path / "o.sqlite3")
    assert ob.put(heartbeat).seq == 4
    assert [p.seq for p in ob.pending(10)] == [1, 2, 3, 4]


def test_only_acknowledged_messages_leave_the_outbox(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite3")
    for _ in range(5):
        ob.put(heartbeat)
    ob.ack_many([2, 4])
    assert [p.seq for p in ob.pending(10)] == [1, 3, 5]
    assert [p.seq for p in ob.pending(10, exclude={1})] == [3, 5]
    assert ob.depth() == 3


def test_a_full_outbox_drops_the_oldest_and_counts_them(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite3", max_messages=3)
    for _ in range(5):
        ob.put(heartbeat)
    assert [p.seq for p in ob.pending(10)] == [3, 4, 5]
    assert ob.dropped() == 2


def test_a_message_written_to_the_outbox_survives_kill_9_of_the_writer(tmp_path):
    code = ("import sys, os; sys.path.insert(0, %r)\n"
            "from test_agent_local import heartbeat\n"
            "from linewatch.agent.outbox import Outbox\n"
            "ob = Outbox(__import__('pathlib').Path(%r))\n"
            "for _ in range(50): ob.put(heartbeat)\n"
            "os.kill(os.getpid(), 9)\n") % (str(ROOT / "tests"), str(tmp_path / "o.sqlite3"))
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT)
    assert p.returncode == -9
    assert Outbox(tmp_path / "o.sqlite3").depth() == 50


FAST = LatencyConfig(targets=("127.0.0.1",), count=5, spacing_ms=10, timeout_s=1)


@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP needs root")
def test_icmp_burst_on_loopback_receives_every_reply_and_names_its_method():
    r = measure(LineBinding("lo"), Target.parse("127.0.0.1"), FAST)
    assert r.ok and r.data["method"] == "icmp-raw"
    assert r.data["sent"] == 5 and r.data["received"] == 5 and r.data["loss_pct"] == 0
    assert 0 <= r.data["rtt_min_ms"] <= r.data["rtt_median_ms"] <= r.data["rtt_max_ms"] < 1000


def test_tcp_connect_measures_a_listening_port_and_a_refusing_one():
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        port = srv.getsockname()[1]
        r = measure(LineBinding("lo"), Target.parse(f"tcp:127.0.0.1:{port}"), FAST)
    assert r.ok and r.data["method"] == "tcp-connect" and r.data["received"] == 5
    # the listener is closed now: a RST still proves the path works
    r = measure(LineBinding("lo"), Target.parse(f"tcp:127.0.0.1:{port}"), FAST)
    assert r.ok and r.data["received"] == 5


def test_a_line_whose_address_is_not_on_this_computer_is_reported_not_measured_elsewhere():
    # 127.0.0.1 is local, 203.0.113.7 (TEST-NET-3) is not: binding to it must fail, and no packet leaves
    r = measure(LineBinding("fiber", source_address="203.0.113.7"), Target.parse("127.0.0.1"), FAST)
    assert not r.ok and r.error_code == "line_unbound"
    assert "203.0.113.7" in r.error and "fiber" in r.error
    assert r.data["sent"] == 0 and "loss_pct" not in r.data


def test_a_missing_interface_is_reported_with_its_name():
    r = measure(LineBinding("tslcd", interface="nosuch0"), Target.parse("127.0.0.1"), FAST)
    assert not r.ok and r.error_code == "line_unbound" and "nosuch0" in r.error


def test_an_unresolvable_target_is_a_failed_measurement_with_the_reason():
    r = measure(LineBinding("lo"), Target.parse("no-such-host.invalid"), FAST)
    assert not r.ok and r.error_code == "dns_failed" and "no-such-host.invalid" in r.error


def test_one_shot_probe_prints_a_table_and_json(tmp_path):
    cfg = tmp_path / "agent.toml"
    cfg.write_text(agent_toml(tmp_path / "state", 1883))
    out = subprocess.run([sys.executable, "-m", "linewatch.agent.cli", "-c", str(cfg), "probe", "--line", "fiber"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    header, rule, row = out.stdout.splitlines()[:3]
    assert header.split()[:4] == ["line", "kind", "target", "method"] and row.startswith("fiber")
    assert row.rstrip().endswith("OK")
    js = subprocess.run([sys.executable, "-m", "linewatch.agent.cli", "-c", str(cfg), "probe", "--json"],
                        capture_output=True, text=True, cwd=ROOT, timeout=60)
    [result] = json.loads(js.stdout)
    assert result["line"] == "fiber" and result["data"]["received"] == 3


def test_a_broken_connection_is_explained_in_plain_words(tmp_path):
    from linewatch.agent.config import MqttConfig
    from linewatch.agent.publisher import diagnose

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert "nothing listens on that port" in diagnose(MqttConfig(port=port))
    assert "does not resolve" in diagnose(MqttConfig(host="broker.invalid"))
    with socket.socket() as srv:  # a listener that is not a TLS server
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        import threading

        def close_first():
            c, _ = srv.accept()
            c.close()
        threading.Thread(target=close_first, daemon=True).start()
        assert "TLS failed" in diagnose(MqttConfig(port=srv.getsockname()[1], tls=True))

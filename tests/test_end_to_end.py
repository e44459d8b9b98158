"""The walking skeleton, end to end over a real mosquitto: agent -> broker -> collector -> record."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

from linewatch import wire
from linewatch.collector import config as collector_config
from linewatch.collector import registry as registry_mod
from linewatch.collector.ingest import Ingestor
from linewatch.collector.mqtt import Subscriber
from linewatch.collector.record import EventFilter, open_record

from conftest import ROOT, agent_toml, collector_toml, spawn, wait_for, write_registry


def start_agent(tmp_path: Path, port: int, procs, **kw):
    cfg = tmp_path / "agent.toml"
    cfg.write_text(agent_toml(tmp_path / "agent-state", port, **kw))
    p = spawn(["linewatch.agent.cli", "-c", str(cfg), "run"], tmp_path / "agent.log")
    procs.append(p)
    return p


def publish(port: int, topic: str, payload: bytes) -> None:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-publisher")
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, payload, qos=1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def test_agent_measurements_reach_the_record_with_site_line_and_sequence(tmp_path, mosquitto, collector, procs):
    agent = start_agent(tmp_path, mosquitto.port, procs, interval_s=5, heartbeat_s=2)
    store = collector.ingestor.record
    rows = wait_for(lambda: [r for r in store.events(EventFilter(kind="latency"))] or None, 30,
                    "a latency measurement in the record")
    lat = rows[0]
    assert (lat.agent_id, lat.site, lat.line) == ("ag-21583", "21583", "fiber")
    assert lat.ok and lat.data["target"] == "127.0.0.1"
    assert lat.data["loss_pct"] == 0 and lat.data["rtt_median_ms"] >= 0
    wait_for(lambda: len(store.events(EventFilter(kind="heartbeat"))) >= 2, 20, "two heartbeats")
    seqs = [r.seq for r in store.events(EventFilter(messages=True))]
    assert len(seqs) == len(set(seqs)) and min(seqs) >= 1, "sequence numbers are unique and start at 1"
    assert sorted(seqs) == list(range(1, max(seqs) + 1)), "no sequence number is missing"
    assert agent.stop() == 0, agent.output()


def test_malformed_and_wrong_schema_messages_are_rejected_and_the_next_valid_one_lands(tmp_path, mosquitto, collector):
    topic = wire.line_topic("52", "21583", "fiber", "latency")
    publish(mosquitto.port, topic, b"{not json")
    publish(mosquitto.port, topic, json.dumps({"schema": 99, "kind": "latency"}).encode())
    def latency(line: str, seq: int) -> wire.Message:
        return wire.build_message(kind="latency", agent_id="ag-21583", province="52", site="21583", line=line,
                                  seq=seq, measured_at=wire.utc_now() - timedelta(seconds=3),
                                  data={"method": "icmp-raw", "target": "10.0.0.1", "sent": 20, "received": 20,
                                        "loss_pct": 0, "rtt_median_ms": 12.5})
    unknown = latency("nosuchline", 6)
    publish(mosquitto.port, unknown.topic, unknown.to_json())
    good = latency("fiber", 7)
    publish(mosquitto.port, good.topic, good.to_json())
    store = collector.ingestor.record
    wait_for(lambda: store.events(EventFilter(seq_min=7, seq_max=7)), 10, "the valid message to land")
    reasons = {r.reason: r.detail for r in store.rejects()}
    assert "bad_json" in reasons and "bad_schema" in reasons, reasons
    assert "99" in reasons["bad_schema"]
    counters = store.counters()
    assert counters["rejected.bad_json"] == 1 and counters["rejected.bad_schema"] == 1
    assert counters["rejected.unknown_line"] == 1 and "nosuchline" in reasons["unknown_line"]
    assert collector.stats["rejected"] == 3 and collector.stats["stored"] == 1


def test_a_killed_agent_is_shown_offline_by_its_last_will(tmp_path, mosquitto, collector, procs):
    agent = start_agent(tmp_path, mosquitto.port, procs, keepalive_s=5)
    store = collector.ingestor.record

    def state():
        a = [x for x in store.agents() if x.agent_id == "ag-21583"]
        return a[0].state if a else None

    wait_for(lambda: state() == "online", 20, "agent online")
    agent.stop(signal.SIGKILL)
    # mosquitto notices the dead connection after 1.5 x keepalive and publishes the LWT
    wait_for(lambda: state() == "offline", 20, "broker to publish the agent's last will")
    out = subprocess.run([sys.executable, "-m", "linewatch.collector.cli", "-c", str(collector.config_path),
                          "status", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert out.returncode == 0, out.stderr
    site = next(s for s in json.loads(out.stdout)["sites"] if s["site"] == "21583")
    assert site["agents"][0]["state"] == "offline"
    text = subprocess.run([sys.executable, "-m", "linewatch.collector.cli", "-c", str(collector.config_path),
                           "status", "--lang", "en"], capture_output=True, text=True, cwd=ROOT, timeout=30).stdout
    assert "ag-21583 OFFLINE" in text


def test_a_gracefully_stopped_agent_says_offline_itself(tmp_path, mosquitto, collector, procs):
    agent = start_agent(tmp_path, mosquitto.port, procs, keepalive_s=60)
    store = collector.ingestor.record
    wait_for(lambda: any(a.state == "online" for a in store.agents()), 20, "agent online")
    assert agent.stop(signal.SIGTERM) == 0
    # keepalive is 60 s: only the agent's own goodbye can make this fast
    wait_for(lambda: any(a.state == "offline" for a in store.agents()), 5, "offline status")


def test_the_collector_keeps_working_after_the_broker_restarts(tmp_path, mosquitto, collector, procs):
    start_agent(tmp_path, mosquitto.port, procs, interval_s=5, heartbeat_s=1)
    store = collector.ingestor.record
    wait_for(lambda: store.events(EventFilter(kind="heartbeat")), 20, "first heartbeat")
    mosquitto.restart()
    n = len(store.events(EventFilter(messages=True)))
    wait_for(lambda: len(store.events(EventFilter(messages=True))) > n + 2, 40, "measurements after the broker restart")
    seqs = [r.seq for r in store.events(EventFilter(messages=True))]
    assert sorted(seqs) == list(range(1, max(seqs) + 1)), "nothing lost across the restart"


def test_measurements_taken_while_the_broker_is_down_arrive_later_with_their_own_time(tmp_path, procs):
    from conftest import free_port, start_mosquitto

    port = free_port()
    agent = start_agent(tmp_path, port, procs, interval_s=5, heartbeat_s=1)
    # no broker yet: the agent measures into its on-disk outbox
    wait_for(lambda: "cannot reach the collector's broker" in agent.output(), 20, "the agent to say the broker is down")
    time.sleep(3)
    started_broker_at = time.time()
    broker = start_mosquitto(tmp_path / "late-broker", port=port)
    try:
        reg_path = write_registry(tmp_path / "registry.toml")
        (tmp_path / "collector.toml").write_text(collector_toml(reg_path, tmp_path / "record.sqlite3", port))
        cfg = collector_config.load(tmp_path / "collector.toml")
        store = open_record(cfg.record)
        sub = Subscriber(cfg.mqtt, Ingestor(store, registry_mod.load(cfg.registry_path)))
        sub.start()
        wait_for(lambda: len(store.events(EventFilter(messages=True))) >= 4, 30, "the backlog to arrive")
        rows = store.events(EventFilter(messages=True))
        assert rows[0].at < started_broker_at, "the first rows were measured before the broker existed"
        seqs = sorted(r.seq for r in rows)
        assert seqs == list(range(1, len(seqs) + 1))
        sub.stop()
        store.close()
    finally:
        broker.stop()

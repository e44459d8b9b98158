"""The collector as a real process against a real mosquitto: hostile and retained input,
restarts, two collectors sharing one broker and one PostgreSQL record, and PostgreSQL lost
while running. Helpers: tests/collectorlab.py."""
from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections import Counter

import paho.mqtt.client as mqtt

from linewatch import wire

from collectorlab import (OPEN_REGISTRY_TOML, Publisher, RecordReader, broker_log_count, collector_config, kill9,
                          latency, retained_at_broker, start_collector)
from conftest import spawn, start_mosquitto, wait_for, write_registry
from pgfixture import pg_start, pg_stop

#: The collector's reason for a retained measurement (wire.parse_message(retained=True) says "bad_retain").
RETAINED_REASONS = {"retained", "bad_retain"}


def hostile_messages() -> list[tuple[str, bytes, str]]:
    """(topic, payload, reason) for messages on ag-21583's valid topics that must be refused."""
    d = latency(1000).to_dict()
    lat = wire.line_topic("52", "21583", "fiber", "latency")
    dns_topic = wire.line_topic("52", "21583", "fiber", "dns")
    hb = {**d, "kind": "heartbeat", "line": None, "seq": 1001,
          "data": {"version": "t", "uptime_s": 1, "queue_depth": 0, "queue_dropped": 0, "probe_errors": 0,
                   "clock_utc": "not a time"}}
    status = {**d, "kind": "status", "line": "fiber", "seq": 0, "data": {"state": "online"}}
    dns = {**d, "kind": "dns", "seq": 1002, "data": {"resolver": "1.1.1.1", "name": "x.gov.vn", "qtype": "A",
                                                     "attempts": 1,
                                                     "addresses": {f"k{i}": [[i]] for i in range(10_000)}}}
    deep_dns = json.dumps({**d, "kind": "dns", "data": "X"}).encode().replace(
        b'"X"', b"[" * 10_000 + b"]" * 10_000)
    return [
        (lat, json.dumps({**d, "data": {**d["data"], "target": "\ud800"}}).encode(), "bad_text"),
        (lat, json.dumps({**d, "data": {**d["data"], "target": "X"}}).encode().replace(b"X", b"\xed\xa0\x80"),
         "bad_json"),
        (lat, b"[" * 100_000, "bad_json"),
        (wire.agent_topic("52", "21583", "ag-21583", "heartbeat"), json.dumps(hb).encode(), "bad_time"),
        (lat, json.dumps({**d, "measured_at": "0001-01-01T00:00:00+14:00"}).encode(), "bad_time"),
        (lat, json.dumps({**d, "seq": 2**63 - 1}).encode(), "bad_field"),
        (wire.agent_topic("52", "21583", "ag-21583", "status"), json.dumps(status).encode(), "topic_mismatch"),
        (dns_topic, json.dumps(dns).encode(), "bad_type"),
        (dns_topic, deep_dns, "bad_json"),
    ]


def both_agents(seqs) -> list[wire.Message]:
    return [m for s in seqs for m in (latency(s), latency(s, "ag-21584", "21584"))]


def landed(reader: RecordReader, n: int) -> bool:
    return reader.seqs("ag-21583") == list(range(1, n + 1)) and reader.seqs("ag-21584") == list(range(1, n + 1))


def test_hostile_messages_are_rejected_with_reasons_valid_ones_land_and_a_restart_replays_nothing(
        tmp_path, mosquitto, procs):
    """Hostile messages on an agent's own topics are rejected with their reasons while valid messages of
    two agents land, the collector process survives, and after a restart new messages land and no
    hostile message comes back."""
    reg = write_registry(tmp_path / "registry.toml")
    cfg = collector_config(tmp_path / "collector.toml", reg, str(tmp_path / "record.sqlite3"), mosquitto.port,
                           "collector-hostile")
    coll = start_collector(cfg, tmp_path / "collector-1.log", procs)
    reader = RecordReader(tmp_path / "record.sqlite3")
    pub = Publisher(mosquitto.port)
    bad = hostile_messages()
    for topic, payload, _ in bad:
        pub.publish(topic, payload)
    for m in both_agents(range(1, 6)):
        pub.message(m)
    pub.wait()
    wait_for(lambda: landed(reader, 5), 10, "the valid messages of both agents to land")
    wait_for(lambda: reader.rejected_total() >= len(bad), 10, "every hostile message to be judged")
    counters = reader.counters()
    rejected = {k.removeprefix("rejected."): v for k, v in counters.items() if k.startswith("rejected.")}
    assert rejected == dict(Counter(reason for _, _, reason in bad))
    rejects = reader.rejects()
    assert len(rejects) == len(bad) and all(r.detail for r in rejects)
    assert Counter(r.reason for r in rejects) == Counter(reason for _, _, reason in bad)
    assert coll.proc.poll() is None, coll.output()

    assert coll.stop(signal.SIGTERM) == 0, coll.output()
    coll = start_collector(cfg, tmp_path / "collector-2.log", procs)
    for m in both_agents(range(6, 11)):
        pub.message(m)
    pub.close()
    wait_for(lambda: landed(reader, 10), 10, "new messages after the restart")
    time.sleep(1)  # anything the broker were to hand back would arrive with the session
    assert reader.rejected_total() == len(bad), "a hostile message was delivered again after the restart"
    assert len(reader.rejects()) == len(bad)
    assert coll.proc.poll() is None, coll.output()


def will_dies_with_garbage(port: int, topic: str) -> None:
    """A client whose last will is a retained b"garbage" on ``topic`` loses its connection."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ag-21583")
    c.will_set(topic, b"garbage", qos=1, retain=True)
    c.connect("127.0.0.1", port, keepalive=60)
    deadline = time.monotonic() + 5
    while not c.is_connected() and time.monotonic() < deadline:
        c.loop(0.1)
    assert c.is_connected()
    c.socket().close()  # no DISCONNECT: the broker publishes the will


def test_retained_measurements_are_refused_and_cleared_and_a_garbage_last_will_does_not_stop_the_collector(
        tmp_path, mosquitto, procs):
    """Retained measurements (hostile or valid) are refused as retained, not stored, and cleared at the
    broker; valid live messages land; a retained garbage last will is rejected without stopping the
    collector, and cleared at its next subscription."""
    lat_topic = wire.line_topic("52", "21583", "fiber", "latency")
    bad_topic = wire.line_topic("52", "21583", "fiber", "dns")
    status_topic = wire.agent_topic("52", "21583", "ag-21583", "status")
    pub = Publisher(mosquitto.port, "retainer")
    pub.publish(bad_topic, b'{"schema": 1, "kind": "dns", "data": [' * 50, retain=True)
    pub.message(latency(1), retain=True)
    pub.wait()
    assert {bad_topic, lat_topic} <= set(retained_at_broker(mosquitto.port, listen_s=0.5))

    reg = write_registry(tmp_path / "registry.toml")
    cfg = collector_config(tmp_path / "collector.toml", reg, str(tmp_path / "record.sqlite3"), mosquitto.port,
                           "collector-retained")
    coll = start_collector(cfg, tmp_path / "collector-1.log", procs)
    reader = RecordReader(tmp_path / "record.sqlite3")
    wait_for(lambda: len(reader.rejects()) >= 2, 10, "both retained messages to be refused")
    reasons = {r.topic: r.reason for r in reader.rejects()}
    assert reasons[lat_topic] in RETAINED_REASONS, reasons
    # the hostile one is refused either as retained or for what it is
    assert reasons[bad_topic] in RETAINED_REASONS | {"bad_json"}, reasons
    wait_for(lambda: not {bad_topic, lat_topic} & set(retained_at_broker(mosquitto.port, listen_s=1)), 10,
             "the collector to clear the retained messages at the broker")

    for s in range(2, 7):
        pub.message(latency(s))
    pub.wait()
    wait_for(lambda: reader.seqs("ag-21583") == [2, 3, 4, 5, 6], 10,
             "live messages to land, and not the retained seq 1")

    will_dies_with_garbage(mosquitto.port, status_topic)
    wait_for(lambda: any(r.topic == status_topic for r in reader.rejects()), 10, "the garbage will to be refused")
    pub.message(latency(7))
    pub.wait()
    wait_for(lambda: reader.seqs("ag-21583") == [2, 3, 4, 5, 6, 7], 10, "a message after the garbage will")
    assert coll.proc.poll() is None, coll.output()

    # delivered live, the will lost its retain flag; at the next subscription it is retained: cleared
    assert coll.stop(signal.SIGTERM) == 0, coll.output()
    coll = start_collector(cfg, tmp_path / "collector-2.log", procs)
    wait_for(lambda: status_topic not in retained_at_broker(mosquitto.port, listen_s=1), 10,
             "the collector to clear the retained garbage will")
    assert coll.proc.poll() is None, coll.output()
    pub.close()


# ------------------------------------------------------------ two collectors, shared subscription
AGENTS = [("ag-a", "21583"), ("ag-b", "21583"), ("ag-c", "21584"), ("ag-d", "21584")]


def shared_subscription_with_a_killed_member(tmp_path, procs, pg_url: str, total: int, timeout: float) -> None:
    log = tmp_path / "mosquitto-debug.log"  # log_dest file is flushed line by line, stdout is not
    broker = start_mosquitto(tmp_path / "mosquitto", extra_conf=f"log_type debug\nlog_dest file {log}\n",
                             persistence=True)
    try:
        port = broker.port
        reg = write_registry(tmp_path / "registry.toml", OPEN_REGISTRY_TOML)
        cfg1 = collector_config(tmp_path / "c1.toml", reg, pg_url, port, "collector-1", shared_group="lw")
        cfg2 = collector_config(tmp_path / "c2.toml", reg, pg_url, port, "collector-2", shared_group="lw")
        c1 = start_collector(cfg1, tmp_path / "collector-1.log", procs)
        c2 = start_collector(cfg2, tmp_path / "collector-2.log", procs)
        per_agent = total // len(AGENTS)
        msgs = [latency(s, a, site) for s in range(1, per_agent + 1) for a, site in AGENTS]
        pub = Publisher(port, inflight=2000)
        killed = threading.Event()

        def send() -> None:
            # as fast as possible; the second part once collector-2 is dead (the broker keeps
            # queueing part of the shared traffic for its session)
            for i, m in enumerate(msgs):
                if i == len(msgs) * 2 // 5:
                    killed.wait(timeout)
                pub.message(m)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        # kill -9 collector-2 while it is storing its share, then restart it with its client id (as systemd would)
        wait_for(lambda: broker_log_count(log, r"Received PUBACK from collector-2 ") >= 100, timeout,
                 "collector-2 to store some messages", step=0.05)
        kill9(c2)
        killed.set()
        time.sleep(1)
        restart_at = log.stat().st_size
        c2 = start_collector(cfg2, tmp_path / "collector-2b.log", procs)
        sender.join(timeout)
        pub.close()

        reader = RecordReader(pg_url)

        def stored():
            return {a: reader.seqs(a) for a, _ in AGENTS}

        wait_for(lambda: all(len(s) >= per_agent for s in stored().values()), timeout, "every message to be stored",
                 step=0.5)
        time.sleep(2)
        got = stored()
        for a, _ in AGENTS:
            assert len(got[a]) == per_agent and sorted(got[a]) == list(range(1, per_agent + 1)), a
        acks = {c: broker_log_count(log, rf"Received PUBACK from {c} ") for c in ("collector-1", "collector-2")}
        assert acks["collector-1"] > 0 and acks["collector-2"] > 0, acks
        held = broker_log_count(log, r"Sending PUBLISH to collector-2 ", restart_at)
        assert held > 0, "the restarted collector-2 got nothing of what its session held"
        assert sum(acks.values()) >= total, f"not every message was acknowledged by a collector: {acks}"
        counters = reader.counters()
        assert counters.get("stored.latency") == total, counters

        # nothing is left in either session: stopped and started again, they receive nothing
        assert c1.stop(signal.SIGTERM) == 0, c1.output()
        assert c2.stop(signal.SIGTERM) == 0, c2.output()
        offset = log.stat().st_size
        start_collector(cfg1, tmp_path / "collector-1c.log", procs)
        start_collector(cfg2, tmp_path / "collector-2c.log", procs)
        time.sleep(3)
        assert broker_log_count(log, r"Sending PUBLISH to collector-", offset) == 0
        assert stored() == got and reader.counters() == counters
        print(f"acks {acks}, held for collector-2 until its restart {held}, "
              f"duplicates {counters.get('duplicates', 0)}")
    finally:
        for p in procs:
            p.stop(signal.SIGKILL, 5)
        broker.stop()


def test_two_collectors_sharing_a_subscription_store_every_message_once_across_a_kill(tmp_path, procs, pg_url):
    """Two collectors in one shared subscription on one PostgreSQL record store each of 4,000 messages
    exactly once although one is killed with -9 and restarted mid-flow, both store part of the traffic,
    and nothing is left at the broker."""
    shared_subscription_with_a_killed_member(tmp_path, procs, pg_url, 4_000, 60)


def test_two_collectors_sharing_a_subscription_store_20000_messages_once_across_a_kill(tmp_path, procs, pg_url):
    """As above with 20,000 messages from 4 agents: every (agent, seq) exactly once, both collectors took
    part, nothing left at the broker. (About 15 s on 2 CPUs; mark it soak if it grows past ~40 s.)"""
    shared_subscription_with_a_killed_member(tmp_path, procs, pg_url, 20_000, 240)


# ------------------------------------------------------------ PostgreSQL lost
def test_postgresql_lost_while_running_keeps_every_message_waiting_at_the_broker(
        tmp_path, mosquitto, procs, pg_server, pg_url):
    """With PostgreSQL gone the collector stays up, says the record cannot be written and messages wait at
    the broker, and acknowledges nothing: every message published during an outage is stored once it is
    back, even by a collector started after the one that received them was killed."""
    reg = write_registry(tmp_path / "registry.toml")
    cfg = collector_config(tmp_path / "collector.toml", reg, pg_url, mosquitto.port, "collector-pg")
    coll = start_collector(cfg, tmp_path / "collector-1.log", procs)
    reader = RecordReader(pg_url)
    pub = Publisher(mosquitto.port)
    # the database's error text may span lines
    lost = re.compile(r"cannot write the record \([\s\S]*?messages wait unacknowledged at the broker")

    for s in range(1, 21):
        pub.message(latency(s))
    pub.wait()
    wait_for(lambda: reader.seqs("ag-21583") == list(range(1, 21)), 10, "messages before the outage")

    # outage 1: the running collector waits, then stores everything by itself
    pg_stop(pg_server)
    try:
        for s in range(21, 121):
            pub.message(latency(s))
        pub.wait()
        wait_for(lambda: lost.search(coll.output()), 15, "the collector to say the record cannot be written")
        time.sleep(1)
        assert coll.proc.poll() is None, coll.output()
    finally:
        pg_start(pg_server)
    wait_for(lambda: reader.seqs("ag-21583") == list(range(1, 121)), 40, "the outage's messages to be stored")
    assert coll.proc.poll() is None, coll.output()

    # outage 2: killed while waiting, a new collector still gets every message from the broker
    pg_stop(pg_server)
    try:
        seen = len(lost.findall(coll.output()))
        for s in range(121, 221):
            pub.message(latency(s))
        pub.wait()
        wait_for(lambda: len(lost.findall(coll.output())) > seen, 15, "the collector to fail a write again")
        kill9(coll)
    finally:
        pg_start(pg_server)
    coll = start_collector(cfg, tmp_path / "collector-2.log", procs)
    wait_for(lambda: reader.seqs("ag-21583") == list(range(1, 221)), 30,
             "messages received by the killed collector, redelivered by the broker")
    pub.close()


def test_a_wrong_postgresql_password_exits_2_naming_the_database_but_not_the_password(
        tmp_path, mosquitto, pg_server, pg_url):
    """A wrong password in the record DSN makes `run` exit with code 2 and a message that names
    host:port/database and does not contain the password."""
    db = pg_url.rsplit("/", 1)[1]
    wrong = "Wr0ng-pa55word-xyzzy"
    reg = write_registry(tmp_path / "registry.toml")
    cfg = collector_config(tmp_path / "collector.toml", reg, pg_server.url(db, password=wrong), mosquitto.port,
                           "collector-badpw")
    p = spawn(["linewatch.collector.cli", "-c", str(cfg), "run"], tmp_path / "collector.log")
    try:
        assert p.proc.wait(30) == 2, p.output()
    finally:
        p.stop(signal.SIGKILL)
    out = p.output()
    assert f"127.0.0.1:{pg_server.port}/{db}" in out, out
    assert wrong not in out and pg_server.password not in out, out


def test_a_taken_acknowledgement_port_is_reported_and_the_collector_keeps_collecting(tmp_path, mosquitto, procs):
    """Links in notices need [http]; measurements matter more: the collector says what is
    missing and goes on storing."""
    import socket

    reg = write_registry(tmp_path / "registry.toml")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = collector_config(tmp_path / "collector.toml", reg, str(tmp_path / "record.sqlite3"), mosquitto.port,
                               "collector-port")
        cfg.write_text(cfg.read_text().replace("[http]\nport = 0", f"[http]\nport = {port}"))
        coll = start_collector(cfg, tmp_path / "collector.log", procs)
        pub = Publisher(mosquitto.port)
        pub.message(latency(1))
        pub.wait()
        reader = RecordReader(tmp_path / "record.sqlite3")
        wait_for(lambda: reader.seqs("ag-21583") == [1], 20, "the measurement stored")
        assert f"cannot listen on 127.0.0.1:{port} for acknowledgement links" in coll.output()
        assert coll.proc.poll() is None
        pub.close()

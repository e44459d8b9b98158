"""Delivery that loses nothing: sequence streams, gap records, a full disk, old messages."""
import time
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linewatch import wire
from linewatch.agent.outbox import Outbox
from linewatch.collector import registry as registry_mod
from linewatch.collector import status as status_mod
from linewatch.collector.ingest import Ingestor
from linewatch.collector.record import EventFilter, open_record

from conftest import REGISTRY_TOML, fill, small_fs


def heartbeat(seq: int, stream: str | None = "0123abcd", depth: int = 0) -> wire.Message:
    return wire.build_message(kind="heartbeat", agent_id="ag-21583", province="52", site="21583", seq=seq,
                              stream=stream, measured_at=wire.utc_now() - timedelta(seconds=1),
                              data={"version": "t", "uptime_s": 1, "queue_depth": depth, "queue_dropped": 0,
                                    "probe_errors": 0, "clock_utc": wire.format_time(wire.utc_now())})


@pytest.fixture
def ingest(tmp_path):
    record = open_record(tmp_path / "record.sqlite3")
    yield Ingestor(record, registry_mod.parse(tomllib.loads(REGISTRY_TOML)))
    record.close()


def feed(ingest, *msgs):
    return [ingest.handle(m.topic, m.to_json()).status for m in msgs]


def test_a_missing_sequence_number_is_recorded_as_a_gap_until_it_arrives(ingest):
    feed(ingest, *(heartbeat(s) for s in (1, 2, 3, 6, 7, 10)))
    assert [(g.first_missing, g.last_missing, g.count) for g in ingest.record.gaps()] == [(4, 5, 2), (8, 9, 2)]
    rows = status_mod.build(ingest.registry, ingest.record, 300)
    assert rows[0]["agents"][0]["missing_msgs"] == 4
    assert "ag-21583 trực tuyến (thiếu bản tin 4)" in status_mod.render(rows, "vi")
    feed(ingest, heartbeat(5), heartbeat(4), heartbeat(9), heartbeat(8))  # the backlog arrives late, any order
    assert ingest.record.gaps() == []


def test_a_reinstalled_agent_starts_a_new_stream_and_is_not_mistaken_for_duplicates(ingest):
    assert feed(ingest, heartbeat(1, "aaaaaaaa"), heartbeat(2, "aaaaaaaa")) == ["stored", "stored"]
    # state folder lost: the new outbox starts again at 1, in a new stream
    assert feed(ingest, heartbeat(1, "bbbbbbbb"), heartbeat(1, "bbbbbbbb")) == ["stored", "duplicate"]
    assert len(ingest.record.events(EventFilter(messages=True))) == 3 and ingest.record.gaps() == []


def test_every_new_outbox_gets_its_own_stream_and_keeps_it(tmp_path):
    a = Outbox(tmp_path / "a.sqlite3")
    b = Outbox(tmp_path / "b.sqlite3")
    assert a.stream != b.stream and wire.STREAM_RE.match(a.stream)
    stream = a.stream
    a.close()
    assert Outbox(tmp_path / "a.sqlite3").stream == stream


def test_messages_too_old_to_send_are_dropped_and_counted(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite3", max_age_s=3600)
    ob.put(heartbeat, now=time.time() - 7200)
    ob.put(heartbeat)
    assert ob.expire() == 1
    assert [p.seq for p in ob.pending(10)] == [2] and ob.dropped() == 1 and ob.depth() == 1


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 1 MiB file system we can fill up (tmpfs; needs root)."""
    with small_fs(tmp_path / "disk", "1m") as mnt:
        yield mnt


def test_a_full_disk_keeps_measurements_in_memory_and_saves_them_when_space_returns(tiny_disk, caplog):
    ob = Outbox(tiny_disk / "outbox.sqlite3")
    for _ in range(5):
        ob.put(heartbeat)
    fill(tiny_disk)
    for _ in range(200):  # 200 x ~300 bytes: cannot fit in what is left
        ob.put(heartbeat)
    assert ob.disk_full is not None
    assert "the disk is probably full" in caplog.text and "free some disk space" in caplog.text
    assert ob.depth() == 205 and [p.seq for p in ob.pending(300)] == list(range(1, 206))
    ob.ack_many([1, 2])  # what is held in memory can still be sent and acknowledged
    (tiny_disk / "filler").unlink()
    ob.retry_disk()
    assert ob.disk_full is None
    ob.close()
    reopened = Outbox(tiny_disk / "outbox.sqlite3")  # now really on disk
    assert [p.seq for p in reopened.pending(300)] == list(range(3, 206))
    assert reopened.put(heartbeat).seq == 206


def test_after_a_reconnect_live_results_go_before_the_rate_limited_backlog(tmp_path, mosquitto, collector):
    from linewatch.agent import config as agent_config
    from linewatch.agent.publisher import Publisher
    from faultkit import synthetic
    from conftest import agent_toml, wait_for

    cfg = agent_config.parse(tomllib.loads(agent_toml(tmp_path / "agent", mosquitto.port, drain_rate_per_s=20)))
    outbox = Outbox(cfg.state_dir / "outbox.sqlite3")
    for _ in range(1000):  # measured while the line was down
        outbox.put(lambda seq: synthetic(cfg, seq, outbox.stream))
    pub = Publisher(cfg, outbox)
    pub.start()
    store = collector.ingestor.record
    try:
        wait_for(lambda: store.events(EventFilter(seq_max=1000)), 10, "the backlog to start draining")
        live = outbox.put(lambda seq: synthetic(cfg, seq, outbox.stream))
        pub.wake()
        wait_for(lambda: store.events(EventFilter(seq_min=live.seq, seq_max=live.seq)), 10, "the live result")
        backlog_done = len(store.events(EventFilter(seq_max=1000)))
        assert backlog_done < 500, "the live result did not wait for the backlog"
        assert pub.drain_rate_per_s == 20
    finally:
        pub.stop()
        outbox.close()


# --------------------------------------------------------------------------- what the broker refuses (MQTT 5)
# Mosquitto 2.x answers an MQTT 5 publish its ACL denies with PUBACK 135 "Not authorized"
# (eclipse-mosquitto/mosquitto#1654); under MQTT 3.1.1 the same PUBACK says nothing and the
# message is dropped. The agent's login here is ag-21583, whose ACL (generated from the
# registry) lets it write for site 21583 only, while its agent.toml says site 21584.
MOVED = REGISTRY_TOML.replace('agents = ["ag-21583"]\n', "").replace('agents = ["ag-21584"]',
                                                                    'agents = ["ag-21584", "ag-21583"]')


def acl_broker(tmp: Path):
    from linewatch.collector import security

    from conftest import start_mosquitto

    files = tmp / "broker-files"
    write_acl(files, REGISTRY_TOML)
    return start_mosquitto(tmp, extra_conf=f"acl_file {files / security.ACL_FILE}\n", persistence=True)


def write_acl(files: Path, registry_text: str) -> None:
    from linewatch.collector import security

    security.write_acl(registry_mod.parse(tomllib.loads(registry_text)), files, "linewatch-collector")


def listener(broker):
    """The collector's login reading everything, in a session the broker keeps across its
    restarts: (client, {seq: topic} of the measurements the broker let through)."""
    import json

    import paho.mqtt.client as mqtt

    from conftest import wait_for

    got: dict[int, str] = {}
    subscribed = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="listener", clean_session=False)
    c.username_pw_set("linewatch-collector")
    c.on_message = lambda _c, _u, m: json.loads(m.payload)["seq"] and got.setdefault(json.loads(m.payload)["seq"],
                                                                                     m.topic)
    c.on_subscribe = lambda *a: subscribed.append(1)
    c.on_connect = lambda cl, *a: cl.subscribe("lw/v1/#", qos=1)
    c.connect(broker.host, broker.port)
    c.loop_start()
    wait_for(lambda: subscribed, 10, "the listener to subscribe")
    return c, got


def wrong_site_agent(tmp: Path, port: int):
    from linewatch.agent import config as agent_config

    from conftest import agent_toml

    return agent_config.parse(tomllib.loads(agent_toml(tmp, port, site="21584", mqtt_extra='username = "ag-21583"')))


def settled(pub) -> None:
    """Wait until a whole round of the sender began after this call and ended."""
    from conftest import wait_for

    begun = pub.rounds
    pub.wake()
    wait_for(lambda: pub.rounds_done > begun, 10, "a round of the sender")


def test_a_publish_the_broker_refuses_stays_in_the_outbox_is_said_once_and_goes_once_the_acl_is_fixed(
        tmp_path, caplog):
    import logging

    from faultkit import synthetic
    from linewatch.agent.publisher import Publisher

    from conftest import wait_for

    caplog.set_level(logging.INFO, "linewatch.agent.mqtt")
    broker = acl_broker(tmp_path / "broker")
    sub, got = listener(broker)
    cfg = wrong_site_agent(tmp_path / "agent", broker.port)
    outbox = Outbox(cfg.state_dir / "outbox.sqlite3")
    for _ in range(20):
        outbox.put(lambda seq: synthetic(cfg, seq, outbox.stream))
    pub = Publisher(cfg, outbox)  # refused rows wait 5 minutes, or the next reconnect
    pub.start()
    try:
        wait_for(lambda: pub.stats()["held"], 10, "the broker's refusals")
        assert pub.protocol == "MQTT 5"
        assert outbox.depth() == 20 and got == {}, "refused is not delivered: it stays in the outbox"
        told = [r for r in caplog.records if "refused measurements stay on disk" in r.getMessage()]
        assert len(told) == 1 and told[0].levelno == logging.ERROR, "said once per reason, not once per message"
        assert ("its ACL does not allow agent ag-21583 to write for site 21584 of province 52 -- run "
                "`linewatch-collector acl` and reload the broker, or fix the agent's site in agent.toml"
                in told[0].getMessage())
        assert "Not authorized" in pub.holds.last and pub.stats()["held"] == ["topic:lw/v1/52/21584/line/fiber/latency"]
        # held back, not hammered: new results on the refused topic wait for the hold to end
        refused = pub.holds.refused
        for _ in range(5):
            outbox.put(lambda seq: synthetic(cfg, seq, outbox.stream))
        settled(pub)
        assert pub.stats()["inflight"] == 0 and pub.holds.refused == refused and outbox.depth() == 25
        # the admin moves the agent to site 21584 in the registry, regenerates the ACL; the
        # broker restarts with it, and the agent tries its held rows again at the reconnect
        write_acl(tmp_path / "broker" / "broker-files", MOVED)
        broker.restart()
        wait_for(lambda: outbox.depth() == 0, 20, "the held measurements to be delivered")
        wait_for(lambda: len(got) == 25, 10, "the listener to get them")
        assert sorted(got) == list(range(1, 26))
        assert any("accepts this agent's publishes on lw/v1/52/21584/line/fiber/latency again" in r.getMessage()
                   for r in caplog.records)
    finally:
        pub.stop()
        outbox.close()
        sub.loop_stop()
        broker.stop()


def test_refused_measurements_are_tried_again_after_their_back_off_once_the_broker_reloads_its_acl(tmp_path):
    import signal

    from faultkit import synthetic
    from linewatch.agent.publisher import Publisher

    from conftest import wait_for

    broker = acl_broker(tmp_path / "broker")
    sub, got = listener(broker)
    cfg = wrong_site_agent(tmp_path / "agent", broker.port)
    outbox = Outbox(cfg.state_dir / "outbox.sqlite3")
    for _ in range(10):
        outbox.put(lambda seq: synthetic(cfg, seq, outbox.stream))
    pub = Publisher(cfg, outbox, hold_s=0.5)
    pub.start()
    try:
        wait_for(lambda: pub.stats()["held"], 10, "the broker's refusals")
        write_acl(tmp_path / "broker" / "broker-files", MOVED)
        broker.proc.send_signal(signal.SIGHUP)  # `systemctl reload mosquitto`: no reconnect
        wait_for(lambda: outbox.depth() == 0, 20, "the held measurements to go after their back-off")
        wait_for(lambda: len(got) == 10, 10, "the listener to get them")
        assert pub.connected.is_set() and pub.stats()["held"] == []
    finally:
        pub.stop()
        outbox.close()
        sub.loop_stop()
        broker.stop()


def test_an_agent_talks_mqtt_311_to_a_broker_that_does_not_answer_mqtt_5_and_says_what_that_costs(
        tmp_path, caplog):
    """The embedded broker of `linewatch up` (amqtt) speaks MQTT 3.1.1 only and never answers
    an MQTT 5 CONNECT."""
    from faultkit import synthetic
    from linewatch.agent.publisher import Publisher
    from linewatch.embedded import EmbeddedBroker

    from conftest import free_port, wait_for

    port = free_port()
    broker = EmbeddedBroker("127.0.0.1", port)
    broker.start()
    from linewatch.agent import config as agent_config
    from conftest import agent_toml

    cfg = agent_config.parse(tomllib.loads(agent_toml(tmp_path / "agent", port)))
    outbox = Outbox(cfg.state_dir / "outbox.sqlite3")
    for _ in range(5):
        outbox.put(lambda seq: synthetic(cfg, seq, outbox.stream))
    pub = Publisher(cfg, outbox, connack_timeout_s=1)
    pub.start()
    try:
        wait_for(lambda: outbox.depth() == 0, 20, "the outbox to be delivered over MQTT 3.1.1")
        assert pub.protocol == "MQTT 3.1.1"
        assert any("did not answer an MQTT 5 connection in 1 s: this agent talks MQTT 3.1.1 to it instead, and "
                   "so cannot tell when the broker refuses one of its messages" in r.getMessage()
                   for r in caplog.records)
    finally:
        pub.stop()
        outbox.close()
        broker.stop()


PUBACK_REFUSALS = (128, 131, 135, 144, 145, 151, 153)  # every failure code MQTT 5 allows in a PUBACK
TOPICS = ("lw/v1/52/21583/line/fiber/latency", "lw/v1/52/21583/line/fiber/http", "lw/v1/52/21583/agent/a/heartbeat")
broker_answers = st.lists(st.one_of(
    st.tuples(st.just("refuse"), st.integers(1, 60), st.sampled_from(TOPICS), st.sampled_from(PUBACK_REFUSALS)),
    st.tuples(st.just("accept"), st.integers(1, 60), st.sampled_from(TOPICS)),
    st.tuples(st.just("later"), st.floats(0, 7200)),
    st.tuples(st.just("reconnect"))), max_size=80)


@settings(max_examples=300, deadline=None)
@given(broker_answers)
def test_whatever_the_broker_refuses_is_held_back_at_least_its_back_off_and_each_reason_is_said_once(answers):
    import logging

    from linewatch.agent import config as agent_config
    from linewatch.agent.answers import MAX_HELD_ROWS, MAX_HOLD_S, PAUSE_REFUSALS, TOPIC_REFUSALS, Holds

    from conftest import agent_toml

    said: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = said.append  # type: ignore[method-assign]
    logger = logging.getLogger("linewatch.agent.mqtt")
    logger.addHandler(handler)
    cfg = agent_config.parse(tomllib.loads(agent_toml(Path("/nonexistent"), 1883)))
    holds = Holds(cfg, hold_s=300)
    now, held_since, told_since_accept = 0.0, {}, set()
    try:
        for a in answers:
            if a[0] == "refuse":
                _, seq, topic, code = a
                before = len(said)
                status = seq % 7 == 0  # now and then the status message, which is not an outbox row
                holds.refuse(None if status else seq, topic, code, "x", now)
                assert (len(said) > before) == ((code, status) not in told_since_accept), "each reason said once"
                told_since_accept.add((code, status))
                if status:
                    continue
                if code in TOPIC_REFUSALS:
                    assert topic in holds.topics
                    held_since.setdefault(("topic", topic), now)
                elif code in PAUSE_REFUSALS:
                    assert holds.paused
                else:
                    assert seq in holds.rows or holds.paused
                assert len(holds.rows) <= MAX_HELD_ROWS
                assert "refuse" in holds.last and str(code) in holds.last
            elif a[0] == "accept":
                codes = {c for k, (_, c) in holds._backoff.items() if k in (("topic", a[2]), ("row", a[1]), ("all",))}
                holds.accepted(a[1], a[2])  # taken: what was held for its topic goes again now
                told_since_accept -= {(c, s) for c in codes for s in (False, True)}
                held_since.pop(("topic", a[2]), None)
                assert a[2] not in holds.topics and a[1] not in holds.rows
            elif a[0] == "later":
                now += a[1]
                holds.lift(now)
                for (kind, topic), since in list(held_since.items()):
                    if topic in holds.topics:
                        continue
                    assert now - since >= 300, "lifted before its back-off"
                    del held_since[(kind, topic)]
            else:
                holds.lift(now, everything=True)
                assert not holds.topics and not holds.rows and not holds.paused
                held_since.clear()
            assert all(300 <= b <= MAX_HOLD_S for b, _ in holds._backoff.values())
    finally:
        logger.removeHandler(handler)

"""Delivery that loses nothing: sequence streams, gap records, a full disk, old messages."""
import time
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

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

"""The record behind its typed interface, on both backends (SQLite and a real PostgreSQL):
the feed, consumer positions, agent states, rollups that survive the raw rows, sequence
accounting that absurd numbers cannot fool, and failures that lose nothing."""
import json
import random
import sqlite3
import time
import tomllib
from datetime import datetime, timedelta, timezone

import pytest

from linewatch import wire
from linewatch.collector import registry as registry_mod
from linewatch.collector.ingest import Incoming, Ingestor
from linewatch.collector.record import (EventFilter, RecordConfigError, RecordUnavailable, open_record,
                                        rollup as rollup_math)
from linewatch.collector.record.schema import SQLITE_V1

from conftest import REGISTRY_TOML, fill, small_fs

REGISTRY = registry_mod.parse(tomllib.loads(REGISTRY_TOML))
HOUR = 3600


@pytest.fixture(params=["sqlite", "postgresql"])
def record(request, tmp_path):
    url = str(tmp_path / "record.sqlite3") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    rec = open_record(url)
    yield rec
    rec.close()


def latency(seq, at, agent="ag-21583", site="21583", line="fiber", target="10.0.0.1", rtt=20.0, loss=0.0,
            stream="feedc0de", ok=True):
    return wire.Message(kind="latency", agent_id=agent, province="52", site=site, line=line, seq=seq, stream=stream,
                        measured_at=datetime.fromtimestamp(at, timezone.utc), ok=ok,
                        data={"method": "icmp-raw", "target": target, "sent": 20, "received": 20,
                              "loss_pct": loss, "rtt_median_ms": rtt})


def bandwidth(seq, at, down, up=10.0):
    return wire.Message(kind="bandwidth", agent_id="ag-21583", province="52", site="21583", line="fiber", seq=seq,
                        stream="feedc0de", measured_at=datetime.fromtimestamp(at, timezone.utc),
                        data={"method": "linewatch", "target": "speed.tinh.example", "streams": 4,
                              "duration_s": 8.0, "bytes": 10**8, "download_mbps": down, "upload_mbps": up})


def store(rec, *msgs, received_at=None):
    with rec.batch() as b:
        return [b.add_message(m, received_at or time.time()) for m in msgs]


def test_every_stored_message_enters_the_feed_once_in_order(record):
    now = time.time()
    first = store(record, latency(1, now - 30), latency(2, now - 20))
    second = store(record, latency(2, now - 20), latency(3, now - 10))
    assert second[0] is None  # 2 is a redelivery
    feed = record.read_feed(0)
    assert [e.seq for e in feed] == [1, 2, 3] and [e.pos for e in feed] == [*first, second[1]]
    assert first[0] < first[1] < second[1]  # positions only grow (they may skip numbers)
    assert record.read_feed(first[1]) == feed[2:] and record.feed_head() == second[1]
    assert record.counters()["duplicates"] == 1


def test_a_consumer_that_crashes_before_saving_its_position_sees_the_same_events_again_and_no_others(record):
    now = time.time()
    store(record, *(latency(s, now - 100 + s) for s in range(1, 11)))
    done = []
    events = record.read_feed(record.position("notify"), limit=4)
    done += [e.seq for e in events]
    record.set_position("notify", events[-1].pos)
    crashed = record.read_feed(record.position("notify"), limit=4)  # effect done, position not saved
    again = record.read_feed(record.position("notify"), limit=100)
    assert [e.pos for e in again[:4]] == [e.pos for e in crashed]
    done += [e.seq for e in again]
    record.set_position("notify", again[-1].pos)
    assert done == list(range(1, 11)) and record.read_feed(record.position("notify")) == []
    assert record.positions()["notify"] == record.feed_head()


def test_agent_state_changes_enter_the_feed_once_each(record):
    ingest = Ingestor(record, REGISTRY)

    t = time.time()

    def status(state, received_at=None):
        m = wire.build_message(kind="status", agent_id="ag-21583", province="52", site="21583", seq=0,
                               measured_at=wire.utc_now(), data={"state": state})
        ingest.handle(m.topic, m.to_json(), received_at=received_at)

    status("online", t - 2000)
    status("online", t - 1500)  # the retained status again after a reconnect: no change
    ingest.handle(latency(1, t - 5).topic, latency(1, t - 5).to_json(), received_at=t - 1000)
    assert record.mark_silent(offline_after_s=300) == 1
    assert record.mark_silent(offline_after_s=300) == 0  # said once
    ingest.handle(latency(2, t - 1).topic, latency(2, t - 1).to_json())  # it speaks again
    status("offline")
    states = [(e.data["state"], e.data["previous"]) for e in record.events(EventFilter(kind="agent_state"))]
    assert states == [("online", None), ("silent", "online"), ("online", "silent"), ("offline", None)]


def test_lan_hosts_that_appear_and_go_enter_the_feed(record):
    ingest = Ingestor(record, REGISTRY)
    host = {"ip": "192.168.1.20", "mac": "aa:bb:cc:00:00:01", "device_class": "computer"}
    base = {"method": "arp-scapy", "subnets": [{"cidr": "192.168.1.0/24", "interface": "eth0"}],
            "missed_sweeps_before_gone": 3, "hosts_seen": 1, "hosts_known": 1, "computers": 1,
            "by_class": {"computer": 1}}
    for seq, appeared, gone in ((1, [host], []), (2, [], [host])):
        m = wire.build_message(kind="lan", agent_id="ag-21583", province="52", site="21583", seq=seq,
                               measured_at=wire.utc_now() - timedelta(seconds=10 - seq),
                               data={**base, "sweep_no": seq, "appeared": appeared, "gone": gone})
        assert ingest.handle(m.topic, m.to_json()).status == "stored"
    changes = [(e.data["change"], e.data["mac"]) for e in record.events(EventFilter(kind="lan_host"))]
    assert changes == [("appeared", "aa:bb:cc:00:00:01"), ("gone", "aa:bb:cc:00:00:01")]
    assert record.lan_state("21583").n_gone == 1


def test_rollups_keep_each_target_apart_and_answer_p95_after_the_raw_rows_are_gone(record):
    rnd = random.Random(7)
    hour0 = (int(time.time()) // HOUR - 24 * 50) * HOUR  # 50 days ago
    rtts = {"10.0.0.1": [rnd.lognormvariate(3.0, 0.4) for _ in range(200)],
            "1.1.1.1": [rnd.lognormvariate(4.0, 0.2) for _ in range(200)]}
    msgs, seq = [], 0
    for target, values in rtts.items():
        for i, v in enumerate(values):
            seq += 1
            msgs.append(latency(seq, hour0 + (i % 20) * HOUR + i, target=target, rtt=v))
    store(record, *msgs)
    while record.rollup(max_events=150):
        pass
    result = record.prune(raw_days=45, rollup_days=400)
    assert result.pruned_events == 400 and record.events() == []
    for target, values in rtts.items():
        rows = [r for r in record.rollups(site="21583", line="fiber", kind="latency") if r.key.target == target]
        assert {r.key.method for r in rows} == {"icmp-raw"} and len(rows) == 20
        month = rollup_math.merge(rows)
        assert month.n == 200
        exact = sorted(values)[int(0.95 * 199)]
        assert rollup_math.quantile(month.stats["rtt_median_ms"], 0.95) == pytest.approx(exact, rel=0.03)
        assert month.stats["rtt_median_ms"][2] == min(values) and month.stats["rtt_median_ms"][3] == max(values)


def test_a_late_batch_adds_to_its_hour_and_never_replaces_it(record):
    hour = (int(time.time()) // HOUR - 3) * HOUR
    store(record, *(latency(s, hour + 60 * s, rtt=10.0) for s in range(1, 7)))
    record.rollup()
    # the agent's outbox delivers the rest of that hour after an outage
    store(record, *(latency(s, hour + 60 * s, rtt=30.0) for s in range(7, 10)))
    record.rollup()
    [r] = record.rollups(kind="latency")
    assert r.n == 9 and r.stats["rtt_median_ms"][0] == 9
    assert r.stats["rtt_median_ms"][1] == pytest.approx(6 * 10.0 + 3 * 30.0)


def test_the_share_of_compliant_bandwidth_tests_and_lossy_hours_are_recomputable_after_pruning(record):
    hour0 = (int(time.time()) // HOUR - 24 * 50) * HOUR
    downs = [95.0, 85.0, 79.9, 60.0, 81.0]  # contracted 100 Mbit/s: QCVN 34:2022 line at 80
    store(record, *(bandwidth(s + 1, hour0 + s * HOUR, d) for s, d in enumerate(downs)),
          *(latency(100 + h, hour0 + h * HOUR + 5, loss=[0.0, 12.0, 0.5, 6.0][h]) for h in range(4)))
    record.rollup()
    record.prune(raw_days=45, rollup_days=400)
    tests = record.bandwidth_tests(site="21583", line="fiber", start=hour0, end=hour0 + 30 * 86400)
    assert [t.download_mbps for t in tests] == downs
    assert rollup_math.share_at_least((t.download_mbps for t in tests), 0.8 * 100) == (3, 5)
    lat = record.rollups(site="21583", line="fiber", kind="latency")
    assert rollup_math.hours_above(lat, "loss_pct", 5.0) == [hour0 + HOUR, hour0 + 3 * HOUR]


def test_absurd_sequence_numbers_are_jumps_not_missing_messages(record):
    now = time.time()
    store(record, *(latency(s, now - 10) for s in (1, 2, 3, 5, 2**53 - 1, 2**40)))
    assert [(g.first_missing, g.count) for g in record.gaps()] == [(4, 1)]
    s = record.seq_summary()["ag-21583"]
    assert s.missing == 1 and s.jumps == 2


def test_a_new_stream_per_message_does_not_grow_the_sequence_bookkeeping_without_bound(record):
    now = time.time()
    for i in range(40):
        store(record, latency(1, now - 10, stream=f"{i:08x}"))
    assert record.seq_summary()["ag-21583"].streams <= 8
    assert record.counters()["seq.streams_forgotten"] == 32


def test_a_record_made_by_linewatch_0_1_is_upgraded_keeping_everything(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(SQLITE_V1)
    t = time.time() - 3600
    data = json.dumps({"method": "icmp-raw", "target": "10.0.0.1", "sent": 20, "received": 20, "loss_pct": 0.0,
                       "rtt_median_ms": 12.5})
    db.executemany("INSERT INTO measurements (agent_id, stream, seq, site, line, kind, measured_at, received_at, ok,"
                   " data) VALUES (?,?,?,?,?,?,?,?,?,?)",
                   [("ag-21583", "feedc0de", s, "21583", "fiber", "latency", t + s, t + s, 1, data)
                    for s in (1, 2, 3, 6)])
    db.execute("INSERT INTO seq_ranges VALUES ('ag-21583', 'feedc0de', 1, 3), ('ag-21583', 'feedc0de', 6, 6)")
    db.execute("INSERT INTO agents (agent_id, province, site, state, last_seen_at) VALUES "
               "('ag-21583', '52', '21583', 'online', ?)", (t,))
    db.execute("INSERT INTO counters VALUES ('stored.latency', 4)")
    db.execute("INSERT INTO rollup_hourly VALUES ('21583', 'fiber', 'latency', 0, 4, 4, '{}')")
    db.execute("INSERT INTO lan_hosts VALUES ('21583', 'aa:bb:cc:00:00:01', '192.168.1.2', NULL, NULL, 'computer',"
               " 'ag-21583', ?, ?, NULL)", (t, t))
    db.commit()
    db.close()

    rec = open_record(path)
    assert rec.migrated == [2, 3, 4]
    assert [e.seq for e in rec.events(EventFilter(messages=True))] == [1, 2, 3, 6]
    assert [(g.first_missing, g.count) for g in rec.gaps()] == [(4, 2)]
    assert rec.agents()[0].state == "online" and rec.counters()["stored.latency"] == 4
    assert rec.lan_state("21583").hosts[0].mac == "aa:bb:cc:00:00:01"
    assert rec.rollup() == 4 and rec.rollups()[0].n == 4  # rebuilt from the raw rows kept
    store(rec, latency(4, time.time() - 5))
    assert [g.count for g in rec.gaps()] == [1]
    rec.close()
    again = open_record(path)  # opening again applies nothing
    assert again.migrated == [] and len(again.events(EventFilter(messages=True))) == 5
    assert sqlite3.connect(path).execute("SELECT count(*) FROM rollup_hourly_v1").fetchone()[0] == 1


def test_a_wrong_postgresql_password_names_the_server_and_never_the_password(pg_server):
    url = pg_server.url(password="not-the-password-xyz")
    with pytest.raises(RecordConfigError) as e:
        open_record(url)
    msg = str(e.value)
    assert f"127.0.0.1:{pg_server.port}/postgres" in msg and "not-the-password-xyz" not in msg
    assert "check that the server is running" in msg


def test_postgresql_lost_while_running_keeps_nothing_of_the_batch_and_recovers(pg_url, pg_server):
    from pgfixture import pg_start, pg_stop

    rec = open_record(pg_url)
    ingest = Ingestor(rec, REGISTRY)
    now = time.time()
    ingest.store([Incoming(latency(1, now - 5).topic, latency(1, now - 5).to_json(), now)])
    pg_stop(pg_server)
    try:
        with pytest.raises(RecordUnavailable):
            ingest.store([Incoming(latency(2, now - 4).topic, latency(2, now - 4).to_json(), now)])
    finally:
        pg_start(pg_server)
    ingest.store([Incoming(latency(s, now - 4).topic, latency(s, now - 4).to_json(), now) for s in (2, 3)])
    assert [e.seq for e in rec.events(EventFilter(messages=True))] == [1, 2, 3]
    rec.close()


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB file system of its own (tmpfs), to fill up."""
    with small_fs(tmp_path / "small", "3m") as mnt:
        yield mnt


def test_a_full_disk_keeps_nothing_of_the_batch_and_storing_resumes_when_space_is_freed(small_disk):
    rec = open_record(small_disk / "record.sqlite3")
    ingest = Ingestor(rec, REGISTRY)
    now = time.time()

    def batch(seqs):
        return [Incoming(latency(s, now - 5).topic, latency(s, now - 5).to_json(), now) for s in seqs]

    ingest.store(batch([1]))
    filler = fill(small_disk)
    with pytest.raises(RecordUnavailable, match="full"):
        for start in range(2, 2000, 200):  # until the WAL needs a page it cannot get
            ingest.store(batch(range(start, start + 200)))
    filler.unlink()
    ingest.store(batch(range(2, 2200)))
    seqs = [e.seq for e in rec.events(EventFilter(messages=True))]
    assert seqs == sorted(set(seqs)) and set(seqs) == set(range(1, 2200))
    rec.close()


def test_a_batch_appended_in_one_statement_keeps_its_order_and_stores_a_repeated_message_once(record):
    now = time.time()
    store(record, latency(2, now - 50))
    msgs = [latency(s, now - 40 + s) for s in (1, 2, 3, 3, 4)]
    with record.batch() as b:
        positions = b.add_messages([(m, now) for m in msgs])
    assert positions[1] is None and positions[3] is None  # 2 was there; 3 came twice
    kept = [p for p in positions if p is not None]
    assert kept == sorted(kept)
    assert [e.seq for e in record.read_feed(0)] == [2, 1, 3, 4]
    assert record.counters()["duplicates"] == 2 and record.gaps() == []


def test_pruning_goes_in_chunks_and_keeps_what_the_rollup_consumer_has_not_read(record, monkeypatch):
    monkeypatch.setattr("linewatch.collector.record.base.PRUNE_CHUNK", 7)
    old = time.time() - 70 * 86400
    store(record, *(latency(s, old + s) for s in range(1, 31)))
    record.rollup(max_events=20)  # the consumer has read 20 of the 30
    assert record.prune(raw_days=62, rollup_days=400).pruned_events == 20
    assert [e.seq for e in record.events()] == list(range(21, 31))
    record.rollup()
    assert record.prune(raw_days=62, rollup_days=400).pruned_events == 10 and record.events() == []


def test_two_processes_opening_a_new_record_at_once_migrate_it_once(tmp_path):
    """`status` run while the collector starts: both open the same new file; one migrates,
    the other finds it done (it used to fail with "table feed already exists")."""
    import subprocess
    import sys

    path = tmp_path / "race.sqlite3"
    code = ("import sys, time; from linewatch.collector.record import open_record; "
            "time.sleep(max(0, float(sys.argv[2]) - time.time())); "  # all start together
            "r = open_record(sys.argv[1]); print(r.migrated); r.close()")
    start = str(time.time() + 2)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), start], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    results = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    rec = open_record(path)
    assert rec.migrated == [] and [e for e in rec.events()] == []
    rec.close()

"""The collector's checks, record and status, without MQTT in the way."""
import time
import tomllib
from datetime import timedelta

import pytest

from linewatch import wire
from linewatch.collector import registry as registry_mod
from linewatch.collector import status as status_mod
from linewatch.collector.ingest import Incoming, Ingestor
from linewatch.collector.record import EventFilter, open_record

from conftest import REGISTRY_TOML


@pytest.fixture
def ingest(tmp_path):
    record = open_record(tmp_path / "record.sqlite3")
    yield Ingestor(record, registry_mod.parse(tomllib.loads(REGISTRY_TOML)))
    record.close()


def msg(seq=1, agent="ag-21583", site="21583", line="fiber", ago_s=5.0, kind="latency", **data):
    if kind == "latency":
        d = {"method": "icmp-raw", "target": "10.0.0.1", "sent": 20, "received": 20, "loss_pct": 0.0,
             "rtt_median_ms": 20.0}
    elif kind == "dns":
        d = {"resolver": "10.0.0.53", "name": "dichvucong.gov.vn", "qtype": "A", "resolve_ms": 31.0,
             "rcode": "NOERROR", "answers": 1, "attempts": 1}
    else:
        d = {"method": "linewatch", "target": "speed.tinh.example", "streams": 4, "duration_s": 8.0,
             "bytes": 10**8, "download_mbps": 92.5, "upload_mbps": 40.0}
    d.update(data)
    return wire.build_message(kind=kind, agent_id=agent, province="52", site=site, line=line, seq=seq,
                              measured_at=wire.utc_now() - timedelta(seconds=ago_s), data=d)


def handle(ingest, m, payload=None, received_at=None):
    return ingest.handle(m.topic, payload or m.to_json(), received_at)


def test_a_duplicate_agent_and_sequence_number_is_stored_once_and_counted(ingest):
    assert handle(ingest, msg(seq=5)).status == "stored"
    assert handle(ingest, msg(seq=5)).status == "duplicate"
    assert len(ingest.record.events(EventFilter(messages=True))) == 1
    assert ingest.record.counters()["duplicates"] == 1


@pytest.mark.parametrize("m, reason", [
    (lambda: msg(site="21599"), "unknown_site"),
    (lambda: msg(line="adsl"), "unknown_line"),
    (lambda: msg(agent="ag-21584"), "unknown_agent"),  # listed for the neighbouring site
])
def test_messages_the_registry_does_not_know_are_rejected_with_a_reason(ingest, m, reason):
    out = handle(ingest, m())
    assert out.status == "rejected" and out.reason == reason
    assert ingest.record.rejects()[0].reason == reason
    assert ingest.record.events() == []


def test_a_flood_of_garbage_is_counted_but_the_reject_log_stays_bounded(ingest, monkeypatch):
    monkeypatch.setattr("linewatch.collector.record.batch.MAX_REJECTS_KEPT", 50)
    topic = msg().topic
    ingest.store([Incoming(topic, b"garbage %d" % i, time.time()) for i in range(300)])
    assert ingest.record.counters()["rejected.bad_json"] == 300
    assert len(ingest.record.rejects(1000)) <= 51


def test_the_last_status_received_is_the_agents_state(ingest):
    def status(state):
        return wire.build_message(kind="status", agent_id="ag-21583", province="52", site="21583", seq=0,
                                  measured_at=wire.utc_now() - timedelta(minutes=5), data={"state": state})
    handle(ingest, status("online"))
    handle(ingest, status("offline"))  # an LWT carries the time it was set, older than "online"
    assert ingest.record.agents()[0].state == "offline"


def test_a_retained_measurement_is_refused_but_a_retained_status_is_the_agents_state(ingest):
    m = msg(seq=3)
    out = ingest.handle(m.topic, m.to_json(), retained=True)
    assert out.status == "rejected" and out.reason == "retained"
    assert ingest.record.events(EventFilter(messages=True)) == []
    st = wire.build_message(kind="status", agent_id="ag-21583", province="52", site="21583", seq=0,
                            measured_at=wire.utc_now(), data={"state": "online"})
    assert ingest.handle(st.topic, st.to_json(), retained=True).status == "status"


def test_a_message_that_breaks_storage_is_quarantined_and_the_rest_of_its_batch_is_stored(ingest, monkeypatch):
    """A fault nobody foresaw (here: a bug in the DNS path) costs one message, never the batch."""
    from linewatch.collector.record import batch

    real = batch.Batch._row

    def explode_on_dns(m, received_at):
        if m.kind == "dns":
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return real(m, received_at)

    monkeypatch.setattr(batch.Batch, "_row", staticmethod(explode_on_dns))
    msgs = [msg(seq=1), msg(seq=2, kind="dns"), msg(seq=3), msg(seq=4, agent="ag-21584", site="21584")]
    outcomes = ingest.store([Incoming(m.topic, m.to_json(), time.time()) for m in msgs])
    assert [o.status for o in outcomes] == ["stored", "quarantined", "stored", "stored"]
    assert sorted(e.seq for e in ingest.record.events(EventFilter(messages=True))) == [1, 3, 4]
    rej = ingest.record.rejects()[0]
    assert rej.reason == "quarantined" and "OverflowError" in rej.detail
    assert ingest.record.counters()["rejected.quarantined"] == 1


def test_status_shows_the_latest_result_of_each_probe_kind_per_line(ingest):
    handle(ingest, msg(seq=1, loss_pct=5.0, received=19, rtt_median_ms=25.0, ago_s=30))
    handle(ingest, msg(seq=2, kind="dns", ago_s=10))
    handle(ingest, msg(seq=3, kind="bandwidth", ago_s=20))
    rows = status_mod.build(ingest.registry, ingest.record, offline_after_s=300)
    site = next(r for r in rows if r["site"] == "21583")
    fiber, tslcd = site["lines"]
    kinds = {p["kind"]: p for p in fiber["probes"]}
    assert set(kinds) == {"latency", "dns", "bandwidth"}
    assert kinds["latency"]["figures"]["loss_pct"] == 5.0 and 29 <= kinds["latency"]["age_s"] < 90
    assert kinds["dns"]["figures"]["resolve_ms"] == 31.0
    assert tslcd["probes"] == []
    vi = status_mod.render(rows, "vi")
    assert "tốt, mất gói 5%, trễ 25.0 ms" in vi and "chưa có số liệu" in vi
    assert "tải xuống 92.5 Mbit/s" in vi and "phân giải 31 ms" in vi
    en = status_mod.render(rows, "en")
    assert "ok, loss 5%, rtt 25.0 ms" in en and "never seen" in en  # site 21584 has no agent yet


def test_status_does_not_pass_control_characters_from_agents_to_the_terminal(ingest):
    m = wire.build_message(kind="latency", agent_id="ag-21583", province="52", site="21583", line="fiber", seq=1,
                           measured_at=wire.utc_now(), ok=False, error_code="unreachable",
                           error="host down \x1b[2J\x1b]0;pwned\x07 \u202eevil",
                           data={"method": "icmp-raw", "target": "10.0.0.1", "sent": 3, "received": 0,
                                 "loss_pct": 100.0})
    handle(ingest, m)
    out = status_mod.render(status_mod.build(ingest.registry, ingest.record, 300), "en")
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "FAIL unreachable: host down" in out


def test_an_agent_that_went_quiet_is_shown_silent(ingest):
    handle(ingest, msg(seq=1), received_at=time.time() - 900)
    rows = status_mod.build(ingest.registry, ingest.record, offline_after_s=300)
    assert rows[0]["agents"][0]["state"] == "silent"


def test_a_collector_whose_writer_dies_exits_non_zero_so_the_service_manager_restarts_it(tmp_path, mosquitto,
                                                                                        monkeypatch):
    import threading

    from linewatch.collector import cli as collector_cli
    from linewatch.collector import config as collector_config

    from conftest import collector_toml, write_registry

    reg = write_registry(tmp_path / "registry.toml")
    (tmp_path / "collector.toml").write_text(collector_toml(reg, tmp_path / "record.sqlite3", mosquitto.port))
    cfg = collector_config.load(tmp_path / "collector.toml")
    record = open_record(cfg.record)

    def broken(self, items):
        raise MemoryError("simulated: the writer thread cannot go on")

    monkeypatch.setattr(Ingestor, "store", broken)
    monkeypatch.setattr("signal.signal", lambda *a: None)  # not the main thread
    result = {}
    t = threading.Thread(target=lambda: result.update(code=collector_cli.run(cfg, REGISTRY_FOR_RUN, record)))
    t.start()
    import paho.mqtt.publish as publish

    m = msg(seq=1)
    deadline = time.monotonic() + 20
    while t.is_alive() and time.monotonic() < deadline:
        publish.single(m.topic, m.to_json(), qos=1, hostname="127.0.0.1", port=mosquitto.port)
        t.join(1)
    assert not t.is_alive() and result["code"] == collector_cli.EXIT_WRITER_DIED


REGISTRY_FOR_RUN = registry_mod.parse(tomllib.loads(REGISTRY_TOML))


def test_the_newest_heartbeat_describes_the_agent_even_when_an_older_one_arrives_later_in_the_batch(ingest):
    def hb(seq, ago_s, version):
        return wire.build_message(kind="heartbeat", agent_id="ag-21583", province="52", site="21583", seq=seq,
                                  measured_at=wire.utc_now() - timedelta(seconds=ago_s),
                                  data={"version": version, "uptime_s": 10.0, "queue_depth": seq, "queue_dropped": 0,
                                        "probe_errors": 0, "clock_utc": wire.format_time(wire.utc_now())})
    now = time.time()
    ingest.store([Incoming(m.topic, m.to_json(), now) for m in (hb(2, 10, "0.2"), hb(1, 600, "0.1"))])
    ingest.store([Incoming(hb(0, 900, "0.0").topic, hb(0, 900, "0.0").to_json(), now)])  # a replay from the outbox
    a = ingest.record.agents()[0]
    assert (a.version, a.queue_depth) == ("0.2", 2)


def test_status_json_is_the_same_json_but_never_carries_a_raw_control_character(ingest):
    import json

    from linewatch.text import json_for_terminal

    m = wire.build_message(kind="latency", agent_id="ag-21583", province="52", site="21583", line="fiber", seq=1,
                           measured_at=wire.utc_now(), ok=False, error_code="unreachable",
                           error="\x9b2J csi \u202eevil \x1b[0m Phường",
                           data={"method": "icmp-raw", "target": "10.0.0.1", "sent": 3, "received": 0})
    handle(ingest, m)
    rows = status_mod.build(ingest.registry, ingest.record, 300)
    raw = json.dumps({"sites": rows}, ensure_ascii=False, indent=2)
    out = json_for_terminal(raw)
    assert json.loads(out) == json.loads(raw)
    assert not any(c in out for c in "\x9b\u202e\x1b") and "Phường" in out

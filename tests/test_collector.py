"""The collector's checks, record and status, without MQTT in the way."""
import json
import time
import tomllib
from datetime import datetime, timedelta, timezone

import pytest

from linewatch import wire
from linewatch.collector import registry as registry_mod
from linewatch.collector import status as status_mod
from linewatch.collector.ingest import Ingestor
from linewatch.collector.store import Store

from conftest import REGISTRY_TOML


@pytest.fixture
def ingest(tmp_path):
    store = Store(tmp_path / "record.sqlite3")
    yield Ingestor(store, registry_mod.parse(tomllib.loads(REGISTRY_TOML)))
    store.close()


def msg(seq=1, agent="ag-21583", site="21583", line="fiber", ago_s=5.0, **data):
    d = {"method": "icmp-raw", "target": "10.0.0.1", "sent": 20, "received": 20, "loss_pct": 0.0,
         "rtt_median_ms": 20.0}
    d.update(data)
    return wire.build_message(kind="latency", agent_id=agent, province="52", site=site, line=line, seq=seq,
                              measured_at=wire.utc_now() - timedelta(seconds=ago_s), data=d)


def handle(ingest, m, payload=None, received_at=None):
    with ingest.store.transaction():
        return ingest.handle(m.topic, payload or m.to_json(), received_at)


def test_a_duplicate_agent_and_sequence_number_is_stored_once_and_counted(ingest):
    assert handle(ingest, msg(seq=5)).status == "stored"
    assert handle(ingest, msg(seq=5)).status == "duplicate"
    assert len(ingest.store.measurements()) == 1
    assert ingest.store.counters()["duplicates"] == 1


@pytest.mark.parametrize("m, reason", [
    (lambda: msg(site="21599"), "unknown_site"),
    (lambda: msg(line="adsl"), "unknown_line"),
    (lambda: msg(agent="ag-21584"), "unknown_agent"),  # listed for the neighbouring site
])
def test_messages_the_registry_does_not_know_are_rejected_with_a_reason(ingest, m, reason):
    out = handle(ingest, m())
    assert out.status == "rejected" and out.reason == reason
    assert ingest.store.rejects()[0]["reason"] == reason
    assert ingest.store.measurements() == []


def test_a_flood_of_garbage_is_counted_but_the_reject_log_stays_bounded(ingest, monkeypatch):
    monkeypatch.setattr("linewatch.collector.store.MAX_REJECTS_KEPT", 50)
    topic = msg().topic
    with ingest.store.transaction():
        for i in range(300):
            ingest.handle(topic, b"garbage %d" % i)
    assert ingest.store.counters()["rejected.bad_json"] == 300
    assert len(ingest.store.rejects(1000)) <= 51


def test_the_last_status_received_is_the_agents_state(ingest):
    def status(state):
        return wire.build_message(kind="status", agent_id="ag-21583", province="52", site="21583", seq=0,
                                  measured_at=wire.utc_now() - timedelta(minutes=5), data={"state": state})
    handle(ingest, status("online"))
    handle(ingest, status("offline"))  # an LWT carries the time it was set, older than "online"
    assert ingest.store.agents()[0]["state"] == "offline"


def test_hourly_rollups_keep_the_figures_when_raw_rows_expire(ingest):
    now = time.time()
    hour = (now // 3600 - 50 * 24) * 3600  # 50 days ago, past the 45-day raw retention
    with ingest.store.transaction():
        for i, rtt in enumerate([10.0, 20.0, 30.0]):
            m = msg(seq=i + 1, rtt_median_ms=rtt)
            m.measured_at = datetime.fromtimestamp(hour + 60 * i, timezone.utc)
            ingest.store.insert_measurement(m, received_at=hour + 60 * i)
    handle(ingest, msg(seq=99))
    result = ingest.store.rollup_and_prune(raw_days=45, rollup_days=400, now=now)
    assert result["pruned_raw"] == 3
    row = ingest.store.db.execute("SELECT n, n_ok, stats FROM rollup_hourly WHERE hour = ?", (hour,)).fetchone()
    stats = json.loads(row[2])
    assert row[:2] == (3, 3) and stats["rtt_median_ms"] == [10.0, 20.0, 30.0]
    assert len(ingest.store.measurements()) == 1  # today's row is kept


def test_status_lists_every_registered_line_even_never_measured_ones(ingest):
    handle(ingest, msg(seq=1, loss_pct=5.0, received=19, rtt_median_ms=25.0))
    rows = status_mod.build(ingest.registry, ingest.store, offline_after_s=300)
    site = next(r for r in rows if r["site"] == "21583")
    fiber, tslcd = site["lines"]
    assert fiber["ok"] and fiber["loss_pct"] == 5.0 and 4 <= fiber["age_s"] < 60
    assert tslcd["last_kind"] is None
    assert site["agents"][0]["state"] == "online"
    vi = status_mod.render(rows, "vi")
    assert "tốt, mất gói 5%, trễ 25.0 ms" in vi and "chưa có số liệu" in vi
    en = status_mod.render(rows, "en")
    assert "ok, loss 5%, rtt 25.0 ms" in en and "never seen" in en  # site 21584 has no agent yet


def test_an_agent_that_went_quiet_is_shown_silent(ingest):
    handle(ingest, msg(seq=1), received_at=time.time() - 900)
    rows = status_mod.build(ingest.registry, ingest.store, offline_after_s=300)
    assert rows[0]["agents"][0]["state"] == "silent"

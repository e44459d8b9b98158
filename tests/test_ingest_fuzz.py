"""Property-based hostile input through the real ingest and the real record (SQLite and
PostgreSQL): messages that pass the wire schema with extreme and odd values in every field,
and garbage, interleaved with ordinary traffic. Nothing escapes, no schema-valid message is
quarantined, and the ordinary messages always land."""
import itertools
import time
import tomllib
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linewatch import wire
from linewatch.collector import registry as registry_mod
from linewatch.collector.ingest import Incoming, Ingestor
from linewatch.collector.record import EventFilter, open_record

from conftest import REGISTRY_TOML
from strategies import hostile_payloads, valid_messages

REGISTRY = registry_mod.parse(tomllib.loads(REGISTRY_TOML))
SETTINGS = settings(max_examples=int(__import__("os").environ.get("LW_FUZZ_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow,
                                                                           HealthCheck.data_too_large])


@pytest.fixture(params=["sqlite", "postgresql"])
def ingest(request, tmp_path):
    url = str(tmp_path / "record.sqlite3") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    rec = open_record(url)
    yield Ingestor(rec, REGISTRY)
    rec.close()


_neighbour_seq = itertools.count(1)


def neighbour() -> Incoming:
    """An ordinary latency result of the commune next door."""
    m = wire.build_message(kind="latency", agent_id="ag-21584", province="52", site="21584", line="fiber",
                           seq=next(_neighbour_seq), stream="0badf00d",
                           measured_at=wire.utc_now() - timedelta(seconds=3),
                           data={"method": "icmp-raw", "target": "10.0.0.1", "sent": 20, "received": 20,
                                 "loss_pct": 0.0, "rtt_median_ms": 12.0})
    return Incoming(m.topic, m.to_json(), time.time())


batches = st.lists(st.one_of(valid_messages().map(lambda tp: ("valid", tp)),
                             hostile_payloads().map(lambda tp: ("hostile", tp))), min_size=1, max_size=8)


@SETTINGS
@given(batch=batches, retained=st.lists(st.booleans(), min_size=8, max_size=8))
def test_no_message_that_passes_the_schema_can_stop_ingest_and_ordinary_traffic_always_lands(ingest, batch,
                                                                                             retained):
    items, kinds, ours = [], [], []
    for (what, (topic, payload)), keep in zip(batch, retained):
        ours.append(neighbour())
        items += [ours[-1], Incoming(topic, payload, time.time(), retained=keep and what == "hostile")]
        kinds += ["ours", what]
    outcomes = ingest.store(items)  # nothing may escape
    assert len(outcomes) == len(items)
    for kind, o in zip(kinds, outcomes):
        if kind == "ours":
            assert o.status == "stored", o
        elif kind == "valid":
            assert o.status in ("stored", "duplicate", "status"), o  # never quarantined
        else:
            assert o.status in ("stored", "duplicate", "status", "rejected", "ignored"), o
    seqs = {e.seq for e in ingest.record.events(EventFilter(agent_id="ag-21584"))}
    assert {wire.parse_message(i.topic, i.payload).seq for i in ours} <= seqs
    # and the record can still be read back whole
    ingest.record.read_feed(0, limit=10_000)
    ingest.record.gaps()
    ingest.record.lan_state("21583")
    assert ingest.record.rollup() >= 0

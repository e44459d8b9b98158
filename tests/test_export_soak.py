"""Long run (./dev test-soak): the time-series server down for LW_SOAK_S (default 600 s) while
agent messages keep being stored at a few hundred per second -> once it is back, every point
arrives, in order, none twice. Counts printed: sent / in TSDB / duplicates / missing."""
from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone

import pytest

from linewatch import wire
from linewatch.collector.export.config import ExportConfig
from linewatch.collector.export.exporter import CONSUMER, Exporter
from linewatch.collector.ingest import Incoming

from incidentlab import Province
from test_export import Recording
from vmfixture import victoria  # noqa: F401  (fixture)

pytestmark = pytest.mark.soak
SOAK_S = float(os.environ.get("LW_SOAK_S", "600"))
RATE = float(os.environ.get("LW_SOAK_RATE", "300"))  # messages per second
SITES = ("21583", "21584", "21585")
BATCH = 50


def test_the_tsdb_down_for_a_long_time_under_load_loses_nothing_and_doubles_nothing(tmp_path, victoria):
    prov = Province(tmp_path, n_sites=len(SITES))
    rec = prov.record
    base = time.time() - 3 * 3600
    sent: dict[str, list[tuple[int, float]]] = {s: [] for s in SITES}
    stop_sending = threading.Event()
    seq = [0]

    def sender() -> None:
        """Latency messages through the real ingest path, BATCH at a time, at RATE per second."""
        period = BATCH / RATE
        nxt = time.monotonic()
        while not stop_sending.is_set():
            items = []
            for _ in range(BATCH):
                seq[0] += 1
                n = seq[0]
                site = SITES[n % len(SITES)]
                at_ms = int(base * 1000) + n * 10  # 10 ms apart: distinct times per series
                rtt = float(n % 60000)
                m = wire.build_message(kind="latency", agent_id=f"ag-{site}", province="52", site=site,
                                       line="fiber", seq=n, stream="50a50a50a5",
                                       measured_at=datetime.fromtimestamp(at_ms / 1000, timezone.utc),
                                       data={"method": "icmp-raw", "target": "1.1.1.1", "sent": 20,
                                             "received": 20, "loss_pct": 0.0, "rtt_avg_ms": rtt})
                items.append(Incoming(m.topic, m.to_json(), time.time()))
                sent[site].append((at_ms, rtt))
            out = prov.ingest.store(items)
            assert all(o.status == "stored" for o in out), out[:3]
            nxt += period
            time.sleep(max(0.0, nxt - time.monotonic()))

    sink = Recording(ExportConfig(url=victoria.url, timeout_s=5))
    ex = Exporter(rec, prov.registry, sink.cfg, sink=sink)
    stop = threading.Event()
    exporter = threading.Thread(target=ex.run_forever, args=(stop,), daemon=True)
    feeder = threading.Thread(target=sender, daemon=True)
    lags: list[int] = []
    t0 = time.monotonic()
    feeder.start()
    exporter.start()
    time.sleep(10)
    victoria.stop()
    down_at = time.monotonic()
    pos_at_down = rec.position(CONSUMER)
    while time.monotonic() - down_at < SOAK_S:
        time.sleep(5)
        lags.append(ex.lag())
    assert rec.position(CONSUMER) - pos_at_down <= 5000, "the position moved while the server was down"
    failures_while_down = ex.stats["failures"]
    victoria.start()
    up_at = time.monotonic()
    time.sleep(10)
    stop_sending.set()
    feeder.join(10)
    head = rec.feed_head()
    deadline = time.monotonic() + 180  # the exporter's backoff reaches 60 s; then the catch-up
    while rec.position(CONSUMER) < head and time.monotonic() < deadline:
        time.sleep(1)
    caught_up_s = time.monotonic() - up_at
    stop.set()
    exporter.join(10)
    total_sent = sum(len(v) for v in sent.values())
    in_tsdb = dups = missing = 0
    in_order = True
    for series in victoria.export('lw_latency_rtt_avg_ms{line="fiber"}'):
        site = series["metric"]["site"]
        got = list(zip(series["timestamps"], series["values"]))
        in_tsdb += len(got)
        dups += len(got) - len(set(got))
        missing += len(set(sent[site]) - set(got))
        in_order &= got == sent[site]
    accepted = [ln for ln in sink.accepted if ln.startswith("lw_latency,")]
    sender_dups = len(accepted) - len(set(accepted))
    for site in SITES:  # the exporter sent each series in the order it was measured (= feed order)
        stamps = [int(ln.rsplit(" ", 1)[1]) for ln in accepted if f",site={site}," in ln]
        in_order &= stamps == sorted(stamps)
    print(f"\nserver down {SOAK_S:.0f} s under {total_sent / (time.monotonic() - t0):.0f} msg/s: "
          f"max lag {max(lags, default=0)} events, {failures_while_down} failed tries while down, "
          f"caught up {caught_up_s:.0f} s after it came back")
    print(f"sent {total_sent} / in TSDB {in_tsdb} / duplicates {dups} / missing {missing} "
          f"(exporter re-sent accepted points: {sender_dups}); in order: {in_order}")
    assert rec.position(CONSUMER) == head, f"not caught up: lag {head - rec.position(CONSUMER)}"
    assert (in_tsdb, dups, missing, sender_dups) == (total_sent, 0, 0, 0)
    assert in_order
    assert failures_while_down <= SOAK_S / 30 + 10, "backoff: retries spread out, not hammering"
    rec.close()

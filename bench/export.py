"""Benchmark (not a test): the time-series export into a real VictoriaMetrics.

    .venv/bin/python bench/export.py [--events 200000] [--sites 20] [--batch 5000] [--backend sqlite]
                                     [--concurrent 100000] [--record postgresql://...]

1. Throughput: a record of N events (latency messages, every 20th a speed test: 3 points),
   stored through Ingestor.store in batches of 500; then the exporter (feed consumer
   "export.tsdb", synchronous writes of batch_points, position after each accepted write)
   catches up from 0 into a fresh VictoriaMetrics: events/s, points/s, requests.
2. Lag under ingest: the exporter runs (run_forever, as in the collector) while another
   thread stores --concurrent more messages as fast as Ingestor.store takes them (what the
   ingest benchmark's writer does, without the broker); the export lag (feed head - position)
   is sampled every 0.1 s: max / p95 / mean events, and how long after the last commit the
   export caught up.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import tomllib
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

BATCH = 500


def messages(n: int, sites: list[str], start_seq: int, base: float):
    from linewatch import wire
    from linewatch.collector.ingest import Incoming

    out = []
    for k in range(start_seq, start_seq + n):
        site = sites[k % len(sites)]
        at = datetime.fromtimestamp(base + k * 0.01, timezone.utc)
        if k % 20 == 0:
            kind, data = "bandwidth", {"method": "linewatch", "target": "speed.tinh.example", "streams": 4,
                                       "duration_s": 8.0, "bytes": 10**8, "download_mbps": 50 + k % 60,
                                       "upload_mbps": 30.0}
        else:
            kind, data = "latency", {"method": "icmp-raw", "target": "1.1.1.1", "sent": 20, "received": 20,
                                     "loss_pct": 0.0, "rtt_min_ms": 9.1, "rtt_median_ms": 11.0,
                                     "rtt_avg_ms": 10 + k % 50, "rtt_p95_ms": 15.0, "rtt_max_ms": 17.2,
                                     "jitter_ms": 1.2, "source": "192.168.1.10"}
        m = wire.build_message(kind=kind, agent_id=f"ag-{site}", province="52", site=site, line="fiber", seq=k,
                               stream="be0cbe0cbe", measured_at=at, data=data)
        out.append(Incoming(m.topic, m.to_json(), time.time()))
    return out


def store(ing, items) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(items), BATCH):
        ing.store(items[i:i + BATCH])
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--sites", type=int, default=20)
    ap.add_argument("--batch", type=int, default=5000, help="batch_points (points per write request)")
    ap.add_argument("--concurrent", type=int, default=100_000, help="messages stored while the exporter runs")
    ap.add_argument("--record", help="record URL (default: a fresh SQLite file)")
    a = ap.parse_args()

    from incidentlab import registry_text
    from linewatch.collector import registry as registry_mod
    from linewatch.collector.export.config import ExportConfig
    from linewatch.collector.export.exporter import CONSUMER, Exporter
    from linewatch.collector.ingest import Ingestor
    from linewatch.collector.record import open_record
    from vmfixture import Victoria

    tmp = Path(tempfile.mkdtemp(prefix="lw-bench-export-"))
    reg = registry_mod.parse(tomllib.loads(registry_text(a.sites)))
    sites = sorted(reg.sites)
    rec = open_record(a.record or tmp / "record.sqlite3")
    ing = Ingestor(rec, reg)
    base = time.time() - 4 * 86400
    print(f"building a record of {a.events} events ({rec.backend}) ...", flush=True)
    items = messages(a.events, sites, 1, base)
    s = store(ing, items)
    print(f"  stored in {s:.1f} s ({a.events / s:,.0f} msg/s)")

    vm = Victoria(tmp / "vm-data")
    vm.start()
    try:
        cfg = ExportConfig(url=vm.url, batch_points=a.batch)
        ex = Exporter(rec, reg, cfg)
        t0 = time.perf_counter()
        while ex.step(limit=a.batch):
            pass
        dt = time.perf_counter() - t0
        n_ev, n_pt = ex.stats["events"], ex.stats["points"]
        n_vm = sum(len(s["values"]) for s in vm.export('{__name__=~"lw_latency_rtt_avg_ms|lw_bandwidth_download_mbps"}'))
        print(f"\nexport throughput into VictoriaMetrics ({cfg.batch_points} points per request):")
        print(f"  {n_ev} events, {n_pt} points, {ex.sink.requests} requests in {dt:.2f} s")
        print(f"  {n_ev / dt:,.0f} events/s, {n_pt / dt:,.0f} points/s "
              f"(check: {n_vm} latency+bandwidth samples in VictoriaMetrics)")

        # -- lag while ingest runs concurrently ----------------------------------------------
        more = messages(a.concurrent, sites, a.events + 1, base)
        stop = threading.Event()
        runner = threading.Thread(target=ex.run_forever, args=(stop,), kwargs={"every_s": 0.2}, daemon=True)
        lags: list[int] = []
        done = threading.Event()
        res = {}

        def writer():
            res["s"] = store(ing, more)
            res["end"] = time.perf_counter()
            done.set()

        runner.start()
        w = threading.Thread(target=writer, daemon=True)
        t0 = time.perf_counter()
        w.start()
        while not done.is_set():
            lags.append(ex.lag())
            time.sleep(0.1)
        head = rec.feed_head()
        while rec.position(CONSUMER) < head:
            time.sleep(0.02)
        caught = time.perf_counter() - res["end"]
        stop.set()
        runner.join(10)
        lags.sort()
        rate = a.concurrent / res["s"]
        p95 = lags[int(0.95 * (len(lags) - 1))] if lags else 0
        print(f"\nexport lag while ingest stores {a.concurrent} messages at full speed ({rate:,.0f} msg/s, "
              f"batches of {BATCH}):")
        print(f"  lag max {max(lags, default=0)} events (~{max(lags, default=0) / rate:.2f} s of ingest), "
              f"p95 {p95}, mean {statistics.fmean(lags) if lags else 0:.0f} events "
              f"({len(lags)} samples every 0.1 s)")
        print(f"  caught up {caught:.2f} s after the last commit; ingest alone in this run: {res['s']:.1f} s")
    finally:
        vm.stop()
        rec.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

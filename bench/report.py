"""Benchmark (not a test): the monthly report of a province, SQLite and PostgreSQL.

    ./dev bench report [--communes 150] [--backends sqlite,postgresql]

A record holding what the rollup consumer would have made of one month (2026-10) of 150
communes x 2 lines at the default schedule of agent/example-agent.toml: per line and UTC hour,
latency rollups (fiber: 2 targets, TSLCD: 1; 12 rounds of 20 pings each hour), DNS (2
resolvers) and HTTP (3 URLs) on the fiber line, reach coverage (12 summaries an hour), a
bandwidth test a night per line, a few outages (reach state changes), agent streams per hour
(3,746 messages a day, a few lost) and ~40 incidents. The raw rows are gone, as 62 days
after the month: the report reads rollups and the tables kept with them only, which is what
makes it cost the same with or without raw rows. The rollups are built with the collector's
own rollup maths (rollup.add over realistic values) and loaded with Record.import_rollups;
their size per row is that of real rollups (every field's histogram).

Printed per backend: rows loaded, the time of build() (read + figures), of write() (XLSX and
DOCX of the whole and of each operator), the whole `report` wall time, and the peak memory
of the process (ru_maxrss; with --tracemalloc also Python's own allocations, which slows the
run ~2x, so the times printed then are not the figures).
Goal (issue 11): <= 30 s and <= 500 MB.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from month import FIBER_TARGETS, RESOLVERS, TSLCD_TARGETS, URLS, make_province, registry_toml  # noqa: E402

VN = timezone(timedelta(hours=7))
MONTH = "2026-10"
START = datetime(2026, 10, 1, tzinfo=VN).timestamp()
END = datetime(2026, 11, 1, tzinfo=VN).timestamp()


def templates(rnd: random.Random, n: int = 40):
    """Per kind, n hourly stats made by rollup.add over 12 realistic measurements."""
    from linewatch.collector.record import rollup as rm
    from linewatch.collector.record.types import Rollup, RollupKey

    def hour(kind: str, make) -> Rollup:
        r = Rollup(RollupKey("", "", kind, "", "", "", 0))
        for _ in range(12):
            ok, data = make()
            rm.add(r, ok, data)
        return r

    def lat():
        med = rnd.lognormvariate(math.log(20), 0.3)
        lost = 0 if rnd.random() < 0.93 else rnd.randint(1, 3)
        return True, {"sent": 20, "received": 20 - lost, "loss_pct": 5.0 * lost, "rtt_min_ms": med * 0.8,
                      "rtt_median_ms": med, "rtt_avg_ms": med * 1.1, "rtt_p95_ms": med * 1.6,
                      "rtt_max_ms": med * 2.1, "jitter_ms": med * 0.1}

    def dns():
        return True, {"resolve_ms": rnd.lognormvariate(math.log(12), 0.5), "answers": 1, "attempts": 1}

    def http():
        c = rnd.lognormvariate(math.log(25), 0.3)
        return True, {"status_code": 200, "dns_ms": 10.0, "connect_ms": c, "tls_ms": 2 * c, "ttfb_ms": c + 120,
                      "total_ms": 4 * c + 200, "bytes": rnd.randint(20_000, 262_144)}

    def reach():
        return True, {"sent": 150, "lost": 0, "interval_s": 2, "rtt_ms": rnd.lognormvariate(math.log(20), 0.3)}

    return {k: [hour(k, f) for _ in range(n)] for k, f in
            (("latency", lat), ("dns", dns), ("http", http), ("reach", reach))}


def load(rec, communes, rnd: random.Random) -> dict[str, int]:
    from linewatch.collector.record.types import BandwidthTest, Incident, Rollup, RollupKey, SeqHour, StateChange

    tpl = templates(rnd)
    hours = range(int(START), int(END), 3600)
    counts = {"rollups": 0, "tests": 0, "changes": 0, "seq": 0, "incidents": 0}
    pos = 1
    for i, c in enumerate(communes):
        rollups, tests, changes, seq = [], [], [], []
        for ln in c.lines:
            keys = [("latency", t, m) for t, m, _f in (FIBER_TARGETS if ln.kind == "internet" else TSLCD_TARGETS)]
            keys.append(("reach", "10.52.0.1" if ln.kind == "tslcd" else "1.1.1.1", "icmp-dgram"))
            if ln.kind == "internet":
                keys += [("dns", r, "A") for r in RESOLVERS] + [("http", u, "") for u in URLS]
            for h in hours:
                for kind, target, method in keys:
                    t = tpl[kind][rnd.randrange(len(tpl[kind]))]
                    rollups.append(Rollup(RollupKey(c.code, ln.id, kind, c.agent, target, method, h), t.n, t.n_ok,
                                          t.stats))
            for d in range(31):
                at = START + d * 86400 + rnd.uniform(3600, 5 * 3600)
                down, up = ln.down * rnd.uniform(0.6, 1.1), ln.up * rnd.uniform(0.6, 1.1)
                tests.append(BandwidthTest(pos, c.code, ln.id, c.agent, at, ln.bw_method, "srv", True, None, down, up))
                pos += 1
            for _ in range(rnd.choice((0, 0, 1, 2))):
                t0 = rnd.uniform(START, END - 86400)
                changes += [StateChange(pos, "line", c.code, ln.id, c.agent, t0, "down", "line_down"),
                            StateChange(pos + 1, "line", c.code, ln.id, c.agent, t0 + rnd.uniform(600, 6 * 3600),
                                        "up", None)]
                pos += 2
        for h in hours:
            n = 3746 // 24 - (1 if rnd.random() < 0.01 else 0)
            base = (h - int(START)) // 3600 * (3746 // 24)
            seq.append(SeqHour(c.agent, c.stream, h, c.code, n, base + 1, base + 3746 // 24))
        rec.import_rollups(rollups, tests, changes, seq)
        counts["rollups"] += len(rollups)
        counts["tests"] += len(tests)
        counts["changes"] += len(changes)
        counts["seq"] += len(seq)
        if i % 4 == 0:  # ~40 incidents in the month
            at = rnd.uniform(START, END - 86400)
            with rec.incident_tx(at) as tx:
                tx.open(Incident(0, f"line_down/{c.code}/{c.lines[0].id}", "line_down", "line", "operator", c.code,
                                 c.lines[0].id, None, "closed", at, at + 20, acked_at=at + 900, acked_by="NOC",
                                 resolved_at=at + 7200, closed_at=at + 8000, updated_at=at + 8000))
            counts["incidents"] += 1
    return counts


def run(backend: str, location: str, args, log) -> dict:
    import tomllib

    from linewatch.collector import registry as registry_mod
    from linewatch.collector.record import open_record
    from linewatch.collector.report.config import ReportConfig
    from linewatch.collector.report.run import build, write

    rnd = random.Random(args.seed)
    communes = make_province(args.communes, rnd)
    registry = registry_mod.parse(tomllib.loads(registry_toml(communes)))
    rec = open_record(location)
    log(f"{backend}: loading a month of rollups ...")
    l0 = time.perf_counter()
    counts = load(rec, communes, rnd)
    res = {"backend": backend, "load_s": time.perf_counter() - l0, **counts}
    rec.close()
    rec = open_record(location)  # a fresh connection, as `linewatch-collector report` opens it
    log(f"{backend}: report ...")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if args.tracemalloc:
        tracemalloc.start()
    t0 = time.perf_counter()
    if args.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.enable()
    report = build(rec, registry, ReportConfig(), MONTH, now=END + 86400)
    res["build_s"] = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="lw-bench-report-") as out:
        w0 = time.perf_counter()
        written = write(report, Path(out))
        res["write_s"] = time.perf_counter() - w0
        res["files"] = len(written.files)
        res["bytes"] = sum(p.stat().st_size for p in written.files)
    res["total_s"] = time.perf_counter() - t0
    if args.profile:
        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
    res["py_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20 if args.tracemalloc else None
    tracemalloc.stop()
    res["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["rss_before_mb"] = rss0 / 1024
    res["lines"] = len(report.lines())
    res["short"] = report.totals.sites_short
    rec.close()
    log(f"{backend}: {res}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--communes", type=int, default=150)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--seed", type=int, default=52)
    ap.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (2x slower)")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the report (SQLite)")
    args = ap.parse_args()
    t_start = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t_start:6.0f} s] {msg}", file=sys.stderr, flush=True)

    import _pg

    print(f"report: {args.communes} communes x 2 lines, month {MONTH}; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="lw-bench-report-") as d:
                results.append(run(backend, str(Path(d) / "record.sqlite3"), args, log))
        else:
            why = _pg.available()
            if why:
                print(f"postgresql: skipped ({why})")
                continue
            with _pg.throwaway_postgres() as pg:
                results.append(run(backend, pg.new_database("report"), args, log))
    rows = [("rollup rows in the month", lambda r: f"{r['rollups']:,}"),
            ("bandwidth tests / state changes / seq hours", lambda r: f"{r['tests']:,} / {r['changes']:,} / "
                                                                      f"{r['seq']:,}"),
            ("lines / units short", lambda r: f"{r['lines']} / {r['short']}"),
            ("build(): read + figures", lambda r: f"{r['build_s']:.1f} s"),
            ("write(): XLSX + DOCX, whole + operators", lambda r: f"{r['write_s']:.1f} s ({r['files']} files, "
                                                                   f"{r['bytes'] / 2**20:.1f} MB)"),
            ("report wall time", lambda r: f"{r['total_s']:.1f} s"),
            ("peak RSS of the process", lambda r: f"{r['rss_mb']:.0f} MB"),
            ("peak Python allocations in the report", lambda r: f"{r['py_peak_mb']:.0f} MB" if r["py_peak_mb"]
             is not None else "(--tracemalloc)")]
    w = max(len(label) for label, _ in rows)
    print(f"{'':<{w}}  " + "  ".join(f"{r['backend']:>26}" for r in results))
    for label, f in rows:
        print(f"{label:<{w}}  " + "  ".join(f"{f(r):>26}" for r in results))
    if not results or any(r["total_s"] > 30 or r["rss_mb"] > 500 for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()

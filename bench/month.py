"""Benchmark (not a test): one month of one province in the record, SQLite and PostgreSQL.

    ./dev bench month [--communes 150] [--days 30] [--backends sqlite,postgresql]
    ./dev bench month --communes 10 --days 3          # a quick run (seconds)

Longer than 400 lines on purpose: the traffic generator and its measurement are one script a
reader follows top to bottom; the generator is not used anywhere else.

Synthetic but realistic traffic of N communes, each with one agent and the two lines of
agent/example-agent.toml at its schedule before issue 12 (300 s probe intervals, bandwidth once a
day in the 01:00-05:00 window -- today 4 per working day in office hours, 0.2 % more messages --,
heartbeat every 60 s):

    line "vnpt-fiber" (internet): latency 2 targets, dns 2 resolvers x 1 name, http 3 URLs,
                                  bandwidth (speedtest) 1/day           -> 2017 messages/day
    line "vnpt-tslcd":            latency 1 target, bandwidth 1/day     ->  289 messages/day
    agent heartbeat:                                                    -> 1440 messages/day
    (LAN sweeps and host inventory are left out; --heartbeat-s 0 leaves heartbeats out too)

Values: RTT per burst lognormal around a per-line base with an evening peak, loss mostly 0
(a few single lost probes, rare bursts with heavy or total loss), DNS/HTTP times lognormal, a
few failures, download/upload 0.6-1.1 x contracted. measured_at is spread over the month
(which ends a day before now, so the collector's "not older than 120 days" check passes),
received_at = measured_at + a small delay, and everything goes through Ingestor.store in
batches of 500, in time order, as the collector's writer would store it.

Printed per backend: messages generated; ingest time (Ingestor.store only; building the
payloads is timed apart); rollup time (rec.rollup() until it returns 0); the record's size
after ingest, after rollups, after rec.prune(62, 400, now = end of month + 70 days) (raw rows
gone, file/database as it is) and after compaction (SQLite VACUUM, PostgreSQL VACUUM FULL);
and the time to answer "p95 RTT (of the burst medians, all targets) and share of compliant
bandwidth tests (download >= 0.8 x contracted) per line for the month" from rollups and
bandwidth_tests alone, once with one query each for the province and once per line, checked
against the exact values computed from the generated data: the worst relative p95 error
against the exact order statistic at rank 0.95 x (n - 1) (the definition rollup.quantile
uses) must be within rollup.REL_ERROR = 2 % (the error against the interpolated p95 is
printed too), and the compliant shares must be equal. Exit status 1 if not.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
import traceback
from array import array
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

PROVINCE = "52"
INTERVAL_S = 300          # latency, dns, http (agent/probes/*.py defaults)
BW_WINDOW_UTC = (18, 22)  # 01:00-05:00 Asia/Ho_Chi_Minh (UTC+7)
BATCH = 500
RAW_DAYS, ROLLUP_DAYS = 62, 400   # collector/config.py defaults
PRUNE_AFTER_DAYS = 70
FIBER_TARGETS = (("1.1.1.1", "icmp-raw", 1.0), ("dichvucong.gov.vn:443", "tcp-connect", 1.4))
TSLCD_TARGETS = (("10.52.0.1", "icmp-raw", 1.0),)
RESOLVERS = ("203.162.4.191", "203.162.4.190")
DNS_NAME = "dichvucong.gov.vn"
URLS = ("https://dichvucong.gov.vn/", "https://qlvb.example.gov.vn/", "https://mail.example.gov.vn/")
SPEED = {"speedtest": ("speedtest", "12345"), "linewatch": ("linewatch", "http://10.52.0.5:8090")}


def dumps(v) -> bytes:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":")).encode()


def iso(t: float) -> str:
    ms = int(round((t - math.floor(t)) * 1000))
    s = math.floor(t)
    if ms == 1000:
        s, ms = s + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{ms:03d}Z"


# ----------------------------------------------------------------------------- the province
@dataclass
class LineSpec:
    id: str
    kind: str            # internet | tslcd
    isp: str
    down: float
    up: float
    base_rtt: float      # ms, median RTT of this line to its first target at quiet hours
    bw_method: str
    source: str


@dataclass
class Commune:
    code: str
    agent: str
    stream: str
    phase: float         # s into each 300-s cycle when its probes start
    hb_phase: float
    lines: tuple[LineSpec, ...]
    seq: int = 0


def make_province(n: int, rnd: random.Random) -> list[Commune]:
    out = []
    for i in range(n):
        code = f"{21000 + i * 7:05d}"
        isp = rnd.choice(("VNPT", "Viettel", "FPT"))
        fiber = LineSpec("vnpt-fiber", "internet", isp, rnd.choice((50, 100, 150, 200)), 0, rnd.lognormvariate(
            math.log(22), 0.35), "speedtest", "192.168.1.10")
        fiber.up = fiber.down
        tslcd_down = rnd.choice((20, 50, 100, 200))
        tslcd = LineSpec("vnpt-tslcd", "tslcd", "VNPT", tslcd_down, tslcd_down,
                         rnd.lognormvariate(math.log(7), 0.3), "linewatch", "eth1")
        out.append(Commune(code, f"ag-{code}-01", f"{rnd.getrandbits(64):016x}", rnd.uniform(0, INTERVAL_S - 30),
                           rnd.uniform(0, 60), (fiber, tslcd)))
    return out


def registry_toml(communes: list[Commune]) -> str:
    parts = []
    for c in communes:
        parts.append(f'[[site]]\ncode = "{c.code}"\nprovince = "{PROVINCE}"\nname = "UBND xã {c.code}"\n')
        for ln in c.lines:
            parts.append(f'  [[site.line]]\n  id = "{ln.id}"\n  isp = "{ln.isp}"\n  kind = "{ln.kind}"\n'
                         f"  contracted_down_mbps = {ln.down}\n  contracted_up_mbps = {ln.up}\n")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- the traffic
@dataclass
class Truth:
    """What the generated data says, to check the answers read from rollups."""
    rtt: dict[tuple[str, str], array] = field(default_factory=lambda: defaultdict(lambda: array("d")))
    downloads: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    kinds: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def peak(t: float) -> float:
    """Evening congestion: local 19:00-23:00 (12:00-16:00 UTC) up to +60 %."""
    h = (t / 3600 + 7) % 24
    return 1.0 + 0.6 * math.exp(-((h - 21) / 1.6) ** 2)


class Traffic:
    def __init__(self, communes: list[Commune], start: float, days: int, heartbeat_s: float, seed: int):
        self.communes = communes
        self.start = start
        self.days = days
        self.heartbeat_s = heartbeat_s
        self.rnd = random.Random(seed)
        self.truth = Truth()
        # bandwidth tests: one per line per day at a random time of the window
        self.bw: dict[int, list[tuple[float, Commune, LineSpec]]] = defaultdict(list)
        for d in range(days):
            day0 = start + d * 86400
            for c in communes:
                for ln in c.lines:
                    t = day0 + self.rnd.uniform(BW_WINDOW_UTC[0] * 3600, BW_WINDOW_UTC[1] * 3600)
                    self.bw[int((t - start) // INTERVAL_S)].append((t, c, ln))

    def _msg(self, c: Commune, kind: str, line: str | None, at: float, data: dict, ok: bool = True,
             error_code: str | None = None, error: str | None = None) -> tuple[float, str, bytes]:
        c.seq += 1
        self.truth.kinds[kind] += 1
        topic = (f"lw/v1/{PROVINCE}/{c.code}/line/{line}/{kind}" if line else
                 f"lw/v1/{PROVINCE}/{c.code}/agent/{c.agent}/{kind}")
        body = dumps({"schema": 1, "kind": kind, "agent_id": c.agent, "province": PROVINCE, "site": c.code,
                      "line": line, "seq": c.seq, "stream": c.stream, "measured_at": iso(at), "ok": ok,
                      "error_code": error_code, "error": error, "data": data})
        return at, topic, body

    def latency(self, c: Commune, ln: LineSpec, target: str, method: str, factor: float, at: float):
        r = self.rnd
        sent = 20
        u = r.random()
        lost = 0 if u < 0.93 else 1 if u < 0.985 else r.randint(2, 10) if u < 0.998 else 20
        base = {"target": target, "method": method, "source": ln.source}
        if lost == sent:
            return self._msg(c, "latency", ln.id, at, {**base, "sent": sent, "received": 0, "loss_pct": 100.0},
                             ok=False, error_code="unreachable",
                             error=f"no reply from {target} to {sent} probes within 2 s")
        med = ln.base_rtt * factor * peak(at) * r.lognormvariate(0, 0.22)
        p95 = med * r.uniform(1.1, 2.2)
        data = {**base, "sent": sent, "received": sent - lost, "loss_pct": round(100.0 * lost / sent, 2),
                "rtt_min_ms": round(med * r.uniform(0.7, 0.95), 3), "rtt_median_ms": round(med, 3),
                "rtt_avg_ms": round(med * r.uniform(1.0, 1.2), 3), "rtt_p95_ms": round(p95, 3),
                "rtt_max_ms": round(p95 * r.uniform(1.0, 1.6), 3), "jitter_ms": round(med * r.uniform(0.03, 0.3), 3)}
        self.truth.rtt[(c.code, ln.id)].append(data["rtt_median_ms"])
        return self._msg(c, "latency", ln.id, at, data)

    def dns(self, c: Commune, ln: LineSpec, resolver: str, at: float):
        r = self.rnd
        base = {"resolver": resolver, "name": DNS_NAME, "qtype": "A", "source": ln.source}
        if r.random() < 0.005:
            return self._msg(c, "dns", ln.id, at, {**base, "attempts": 2}, ok=False, error_code="unreachable",
                             error=f"no answer from resolver {resolver} within 2 s (2 attempts)")
        return self._msg(c, "dns", ln.id, at, {**base, "resolve_ms": round(r.lognormvariate(math.log(12), 0.5), 3),
                                               "rcode": "NOERROR", "answers": 1, "addresses": ["103.9.76.14"],
                                               "attempts": 1})

    def http(self, c: Commune, ln: LineSpec, url: str, at: float):
        r = self.rnd
        base = {"url": url, "source": ln.source}
        if r.random() < 0.01:
            return self._msg(c, "http", ln.id, at, {**base, "dns_ms": round(r.uniform(5, 40), 3)}, ok=False,
                             error_code="timeout", error=f"no answer from {url} within 10 s")
        dns_ms = r.lognormvariate(math.log(12), 0.5)
        conn = ln.base_rtt * peak(at) * r.lognormvariate(0.3, 0.25)
        tls = conn * r.uniform(1.5, 2.5)
        ttfb = conn + r.lognormvariate(math.log(120), 0.6)
        total = dns_ms + conn + tls + ttfb + r.uniform(5, 200)
        return self._msg(c, "http", ln.id, at, {**base, "status_code": 200, "dns_ms": round(dns_ms, 3),
                                                "connect_ms": round(conn, 3), "tls_ms": round(tls, 3),
                                                "ttfb_ms": round(ttfb, 3), "total_ms": round(total, 3),
                                                "bytes": r.randint(20_000, 262_144)})

    def bandwidth(self, c: Commune, ln: LineSpec, at: float):
        r = self.rnd
        method, target = SPEED[ln.bw_method]
        base = {"method": method, "target": target, "streams": 4, "source": ln.source}
        if r.random() < 0.02:
            return self._msg(c, "bandwidth", ln.id, at, {**base, "duration_s": 5.0, "bytes": 0}, ok=False,
                             error_code="server_unreachable", error=f"cannot reach {target}")
        down = round(ln.down * r.uniform(0.6, 1.1), 2)
        up = round(ln.up * r.uniform(0.6, 1.1), 2)
        self.truth.downloads[(c.code, ln.id)].append(down)
        dur = round(r.uniform(6, 10), 2)
        return self._msg(c, "bandwidth", ln.id, at, {
            **base, "duration_s": dur * 2, "bytes": int((down + up) * 1e6 / 8 * dur), "download_mbps": down,
            "upload_mbps": up, "warmup_s": 2.0, "stopped_by": "stable/stable", "budget_left_mb": 4000.0})

    def heartbeat(self, c: Commune, at: float):
        return self._msg(c, "heartbeat", None, at, {"version": "0.1.0", "hostname": f"pc-{c.code}",
                                                    "uptime_s": round(at - self.start, 1), "queue_depth": 0,
                                                    "queue_dropped": 0, "probe_errors": 0, "clock_utc": iso(at)})

    def slots(self):
        """Per 300-s cycle, the messages of every commune in time order: (measured_at, topic, body)."""
        r = self.rnd
        for slot in range(self.days * 86400 // INTERVAL_S):
            t0 = self.start + slot * INTERVAL_S
            out = []
            for c in self.communes:
                t = t0 + c.phase + r.uniform(0, 20)
                fiber, tslcd = c.lines
                for i, (target, method, factor) in enumerate(FIBER_TARGETS):
                    out.append(self.latency(c, fiber, target, method, factor, t + 4.5 * i))
                for i, (target, method, factor) in enumerate(TSLCD_TARGETS):
                    out.append(self.latency(c, tslcd, target, method, factor, t + 4.5 * i))
                for i, resolver in enumerate(RESOLVERS):
                    out.append(self.dns(c, fiber, resolver, t + 10 + 0.1 * i))
                for i, url in enumerate(URLS):
                    out.append(self.http(c, fiber, url, t + 11 + 0.5 * i))
                if self.heartbeat_s:
                    k = 0
                    while (hb := c.hb_phase + k * self.heartbeat_s) < INTERVAL_S:
                        out.append(self.heartbeat(c, t0 + hb))
                        k += 1
            for at, c, ln in self.bw.get(slot, ()):
                out.append(self.bandwidth(c, ln, at))
            out.sort(key=lambda m: m[0])
            yield out


# ----------------------------------------------------------------------------- answers
def p95_exact(values) -> tuple[float, float]:
    """The exact 0.95 quantile of the values: the order statistic at rank 0.95 x (n - 1)
    rounded down (the definition rollup.quantile reads from the histogram), and the same
    with linear interpolation to the next value (numpy's default)."""
    s = sorted(values)
    rank = 0.95 * (len(s) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(s) - 1)
    return s[lo], s[lo] + (s[hi] - s[lo]) * (rank - lo)


def answer(rec, registry, start: float, end: float, per_line: bool):
    """p95 RTT and compliant share per line, from rollups + bandwidth_tests only."""
    from linewatch.collector.record import rollup as rm

    lines = [(s.code, ln.id) for s in registry.sites.values() for ln in s.lines]
    if per_line:
        rows = {k: rec.rollups(site=k[0], line=k[1], kind="latency", start=start, end=end) for k in lines}
        tests = {k: rec.bandwidth_tests(site=k[0], line=k[1], start=start, end=end) for k in lines}
    else:
        rows, tests = defaultdict(list), defaultdict(list)
        for r in rec.rollups(kind="latency", start=start, end=end):
            rows[(r.key.site, r.key.line)].append(r)
        for t in rec.bandwidth_tests(start=start, end=end):
            tests[(t.site, t.line)].append(t)
    out = {}
    for k in lines:
        merged = rm.merge(rows.get(k, ()))
        p95 = rm.quantile(merged.stats.get("rtt_median_ms"), 0.95) if merged else None
        ln = registry.site(k[0]).line(k[1])
        share = rm.share_at_least((t.download_mbps for t in tests.get(k, ())),
                                  ln.thresholds.min_speed_ratio * ln.contracted_down_mbps)
        out[k] = (p95, share)
    return out


# ----------------------------------------------------------------------------- sizes
def compacted_size(backend: str, location: str) -> int:
    """Size after giving the free pages back (bench only: a separate connection)."""
    if backend == "sqlite":
        import sqlite3

        db = sqlite3.connect(location, isolation_level=None)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        return sum(p.stat().st_size for p in (Path(location), Path(location + "-wal")) if p.exists())
    import psycopg

    with psycopg.connect(location, autocommit=True) as db:
        db.execute("VACUUM FULL")
        return int(db.execute("SELECT pg_database_size(current_database())").fetchone()[0])


def table_rows(backend: str, location: str) -> dict[str, int]:
    tables = ("feed", "rollups", "bandwidth_tests")
    if backend == "sqlite":
        import sqlite3

        db = sqlite3.connect(location)
        try:
            return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
        finally:
            db.close()
    import psycopg

    with psycopg.connect(location) as db:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


# ----------------------------------------------------------------------------- one backend
def run(backend: str, location: str, args, log) -> dict:
    import tomllib

    from linewatch.collector import registry as registry_mod
    from linewatch.collector.ingest import Incoming, Ingestor
    from linewatch.collector.record import open_record
    from linewatch.collector.record.rollup import REL_ERROR

    rnd = random.Random(args.seed)
    communes = make_province(args.communes, rnd)
    registry = registry_mod.parse(tomllib.loads(registry_toml(communes)))
    now = time.time()
    end = (math.floor(now / 86400) - 1) * 86400      # midnight UTC a day or two ago
    start = end - args.days * 86400
    traffic = Traffic(communes, start, args.days, args.heartbeat_s, args.seed + 1)
    rec = open_record(location)
    ing = Ingestor(rec, registry)
    res: dict = {"backend": backend}

    log(f"{backend}: ingest ...")
    t_store = t_gen = 0.0
    n = 0
    statuses: dict[str, int] = defaultdict(int)
    pending: list = []
    delay = random.Random(args.seed + 2)
    g0 = time.perf_counter()
    last_report = time.monotonic()

    def flush(batch):
        nonlocal t_store, n
        items = [Incoming(topic, body, at + delay.lognormvariate(math.log(0.3), 0.8)) for at, topic, body in batch]
        s0 = time.perf_counter()
        for o in ing.store(items):
            statuses[o.status] += 1
        t_store += time.perf_counter() - s0
        n += len(batch)

    for slot in traffic.slots():
        pending.extend(slot)
        while len(pending) >= BATCH:
            flush(pending[:BATCH])
            del pending[:BATCH]
        if time.monotonic() - last_report > 60:
            last_report = time.monotonic()
            log(f"  {backend}: {n:,} messages stored, {n / t_store:,.0f} msg/s in Ingestor.store")
    if pending:
        flush(pending)
    t_gen = time.perf_counter() - g0 - t_store
    assert statuses.get("stored") == n, dict(statuses)
    res.update(messages=n, kinds=dict(traffic.truth.kinds), ingest_s=t_store, gen_s=t_gen)
    res["size_ingest"] = rec.size_bytes()

    log(f"{backend}: rollups ...")
    r0 = time.perf_counter()
    rolled = 0
    while (k := rec.rollup()) > 0:
        rolled += k
    res["rollup_s"] = time.perf_counter() - r0
    res["rolled"] = rolled
    res["size_rollup"] = rec.size_bytes()

    log(f"{backend}: prune ...")
    p0 = time.perf_counter()
    pr = rec.prune(RAW_DAYS, ROLLUP_DAYS, now=end + PRUNE_AFTER_DAYS * 86400)
    res["prune_s"] = time.perf_counter() - p0
    res["pruned"] = pr.pruned_events
    res["size_pruned"] = rec.size_bytes()
    res["rows"] = table_rows(backend, location)

    log(f"{backend}: queries ...")
    answers = {}
    for mode in (False, True):
        best = math.inf
        for _ in range(args.query_repeat):
            q0 = time.perf_counter()
            answers[mode] = answer(rec, registry, start, end, per_line=mode)
            best = min(best, time.perf_counter() - q0)
        res["query_per_line_s" if mode else "query_province_s"] = best
    assert answers[False] == answers[True]
    worst, worst_interp, worst_line, share_mismatch = 0.0, 0.0, None, 0
    for k, (p95, share) in answers[False].items():
        exact, interp = p95_exact(traffic.truth.rtt[k])
        err = abs(p95 - exact) / exact
        worst_interp = max(worst_interp, abs(p95 - interp) / interp)
        if err >= worst:
            worst, worst_line = err, (k, p95, exact)
        lines = registry.site(k[0]).line(k[1])
        threshold = lines.thresholds.min_speed_ratio * lines.contracted_down_mbps
        true_share = (sum(1 for v in traffic.truth.downloads[k] if v >= threshold), len(traffic.truth.downloads[k]))
        share_mismatch += share != true_share
    res.update(p95_worst=worst, p95_worst_interp=worst_interp, p95_worst_line=worst_line, share_mismatch=share_mismatch, lines=len(answers[False]),
               p95_ok=worst <= REL_ERROR,
               compliant=sum(s[0] for _, s in answers[False].values()),
               tests=sum(s[1] for _, s in answers[False].values()))
    rec.close()
    log(f"{backend}: compaction ...")
    c0 = time.perf_counter()
    res["size_compact"] = compacted_size(backend, location)
    res["compact_s"] = time.perf_counter() - c0
    log(f"{backend}: done: {res}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--communes", type=int, default=150)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    ap.add_argument("--heartbeat-s", type=float, default=60.0, help="agent heartbeat interval; 0: none")
    ap.add_argument("--seed", type=int, default=52)
    ap.add_argument("--query-repeat", type=int, default=3, help="runs of each query (best is printed)")
    ap.add_argument("--dir", default=None, help="folder for the SQLite file (default: a temp folder)")
    args = ap.parse_args()
    if args.days > 100:
        ap.error("--days: at most 100 (the collector refuses measurements older than 120 days)")
    if args.heartbeat_s and INTERVAL_S % args.heartbeat_s:
        ap.error(f"--heartbeat-s must divide {INTERVAL_S}")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    t_start = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t_start:7.0f} s] {msg}", file=sys.stderr, flush=True)

    import _pg

    per_day = 2017 + 289 + (86400 / args.heartbeat_s if args.heartbeat_s else 0)
    print(f"month: {args.communes} communes x 2 lines, {args.days} days, province {PROVINCE}; per commune and day "
          f"2017 (fiber) + 289 (tslcd) + {per_day - 2306:.0f} heartbeats = {per_day:.0f} messages; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    results = []
    failed = False
    with ExitStack() as stack:
        tmp = Path(args.dir) if args.dir else Path(stack.enter_context(tempfile.TemporaryDirectory(
            prefix="lw-bench-month-")))
        for backend in backends:
            if backend not in ("sqlite", "postgresql"):
                ap.error(f"unknown backend {backend!r}")
        for backend in backends:
            try:
                if backend == "sqlite":
                    loc = str(tmp / f"month-{os.getpid()}.sqlite3")
                    try:
                        results.append(run(backend, loc, args, log))
                    finally:
                        for suffix in ("", "-wal", "-shm"):
                            Path(loc + suffix).unlink(missing_ok=True)
                else:
                    why = _pg.available()
                    if why:
                        print(f"postgresql: skipped ({why})")
                        continue
                    with _pg.throwaway_postgres() as pg:
                        results.append(run(backend, pg.new_database("month"), args, log))
            except Exception:  # noqa: BLE001 - report it and still print the other backend's figures
                log(f"{backend}: failed")
                traceback.print_exc()
                failed = True

    if not results:
        sys.exit(1)
    r0 = results[0]
    print("messages by kind: " + ", ".join(f"{k} {v:,}" for k, v in sorted(r0["kinds"].items())))
    rows = [
        ("messages stored", lambda r: f"{r['messages']:,}"),
        ("building payloads (not in ingest)", lambda r: f"{r['gen_s']:,.0f} s"),
        ("ingest: Ingestor.store, batches of 500", lambda r: f"{r['ingest_s']:,.0f} s"),
        ("ingest rate", lambda r: f"{r['messages'] / r['ingest_s']:,.0f} msg/s"),
        ("rollup: rec.rollup() until 0", lambda r: f"{r['rollup_s']:,.0f} s"),
        ("rollup rate", lambda r: f"{r['rolled'] / r['rollup_s']:,.0f} events/s"),
        ("record size after ingest", lambda r: mb(r["size_ingest"])),
        ("record size after rollups", lambda r: mb(r["size_rollup"])),
        ("prune (raw rows of the month)", lambda r: f"{r['pruned']:,} rows, {r['prune_s']:,.0f} s"),
        ("record size after prune, as is", lambda r: mb(r["size_pruned"])),
        ("record size after prune, compacted", lambda r: f"{mb(r['size_compact'])} ({r['compact_s']:,.0f} s)"),
        ("rows left: rollups / bandwidth_tests", lambda r: f"{r['rows']['rollups']:,} / "
                                                           f"{r['rows']['bandwidth_tests']:,}"),
        ("rows left: feed", lambda r: f"{r['rows']['feed']:,}"),
        ("answer, 2 queries for the province", lambda r: f"{r['query_province_s'] * 1000:,.0f} ms"),
        ("answer, 2 queries per line", lambda r: f"{r['query_per_line_s'] * 1000:,.0f} ms "
                                                 f"({r['lines']} lines)"),
        ("p95 RTT: worst error vs exact", lambda r: f"{r['p95_worst'] * 100:.2f} % "
                                                    f"({'ok' if r['p95_ok'] else 'OVER 2 %'})"),
        ("  (vs exact interpolated p95)", lambda r: f"{r['p95_worst_interp'] * 100:.2f} %"),
        ("compliant tests (>= 0.8 x contracted)", lambda r: f"{r['compliant']:,}/{r['tests']:,} "
                                                            f"({100 * r['compliant'] / max(r['tests'], 1):.1f} %)"),
        ("lines whose share differs from exact", lambda r: f"{r['share_mismatch']}"),
    ]
    w = max(len(label) for label, _ in rows)
    print(f"{'':<{w}}  " + "  ".join(f"{r['backend']:>22}" for r in results))
    for label, f in rows:
        print(f"{label:<{w}}  " + "  ".join(f"{f(r):>22}" for r in results))
    for r in results:
        (site, line), p95, exact = r["p95_worst_line"]
        print(f"{r['backend']}: worst p95 line {site}/{line}: histogram {p95:.3f} ms, exact {exact:.3f} ms")
    if failed or not all(r["p95_ok"] and not r["share_mismatch"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()

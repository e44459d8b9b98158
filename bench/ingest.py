"""Benchmark (not a test): sustained ingest through mosquitto into the collector's record,
SQLite and PostgreSQL side by side with the same workload.

    ./dev bench ingest [--messages 20000] [--agents 4] [--backends sqlite,postgresql] [--repeat 2]
    ./dev bench ingest --no-broker              # Ingestor.store alone, batches of 500, no MQTT
    ./dev bench ingest --profile [--no-broker]  # + cProfile of the record writer (top functions)
    ./dev bench ingest --inflight default       # Mosquitto's default inflight window instead of 0
    ./dev bench ingest --preload                # queue everything at the broker first, time the catch-up

With the broker: K publisher processes build their latency messages first, then on a common
"go" publish them at QoS 1 as fast as the broker takes them (shipped deploy/server/mosquitto.conf,
a fresh broker per run); the collector's Subscriber (manual ack after commit, batches of up to
500) stores them through Ingestor into a fresh record: SQLite as shipped (WAL,
synchronous=FULL) or a throw-away local PostgreSQL 15 (fsync on, synchronous_commit on).
``seconds`` runs from the go to the return of the commit that holds the last message;
``record`` is rec.size_bytes() afterwards; a second table splits the CPU seconds of the run
between the collector's threads, mosquitto, the publishers and PostgreSQL (the machine's cores
are shared by all of them). --preload publishes everything while the collector is away (its
persistent session queues it) and times the catch-up from its connect, so the publishers do
not compete for the CPUs. With --no-broker the same payloads go straight to
Ingestor.store in batches of 500 (what the writer thread does, minus paho and the queue), and
the time wire.parse_message alone takes over them is printed too.

The issue's goal: >= 10,000 msg/s on SQLite with durable commits (7,578 msg/s before the
record package).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

BATCH = 500


def registry():
    import tomllib

    from linewatch.collector import registry as registry_mod

    text = (ROOT / "tests/conftest.py").read_text().split('REGISTRY_TOML = """\\\n')[1].split('"""')[0]
    text = text.replace('agents = ["ag-21583"]\n', "")  # any agent id may report for 21583
    return registry_mod.parse(tomllib.loads(text))


def payloads(agent_no: int, n: int) -> list[tuple[str, bytes]]:
    """n latency messages of one agent (one stream, seq 1..n), as the agent publishes them."""
    from linewatch import wire

    at = wire.utc_now() - timedelta(seconds=1)
    out = []
    for seq in range(1, n + 1):
        m = wire.build_message(kind="latency", agent_id=f"ag-bench-{agent_no}", province="52", site="21583",
                               line="fiber", seq=seq, stream=f"be0c{agent_no:04x}", measured_at=at,
                               data={"method": "icmp-raw", "target": "10.0.0.1", "sent": 20, "received": 20,
                                     "loss_pct": 0.0, "rtt_min_ms": 9.1, "rtt_median_ms": 11.0,
                                     "rtt_avg_ms": 11.4, "rtt_p95_ms": 15.0, "rtt_max_ms": 17.2,
                                     "jitter_ms": 1.2, "source": "192.168.1.10"})
        out.append((m.topic, m.to_json()))
    return out


def publisher(port: int, agent_no: int, n: int) -> None:
    """Child process: connect, build the messages, say ready, wait for "go", publish."""
    import paho.mqtt.client as mqtt

    msgs = payloads(agent_no, n)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{agent_no}")
    c.max_inflight_messages_set(100)  # as the agent's publisher
    c.connect("127.0.0.1", port)
    c.loop_start()
    print("ready", flush=True)
    sys.stdin.readline()
    cpu0 = time.process_time()
    infos = [c.publish(topic, body, qos=1) for topic, body in msgs]
    for i in infos:
        i.wait_for_publish(300)
    print(f"cpu {time.process_time() - cpu0:.3f}", flush=True)
    c.disconnect()
    c.loop_stop()


def open_fresh(backend: str, tmp: Path, pg):
    from linewatch.collector.record import open_record

    if backend == "sqlite":
        return open_record(tmp / "record.sqlite3")
    return open_record(pg.new_database("ingest"))


def _timed_ingestor(rec):
    from linewatch.collector.ingest import Ingestor

    class TimedIngestor(Ingestor):
        """Ingestor that notes when the last commit returned and how many messages it held."""
        committed = 0
        batches = 0
        busy = 0.0  # seconds inside store(): parsing, SQL, commit
        last_commit = 0.0

        def store(self, items):
            t = time.perf_counter()
            out = super().store(items)
            self.last_commit = time.perf_counter()
            self.busy += self.last_commit - t
            self.committed += len(out)
            self.batches += 1
            return out

    return TimedIngestor(rec, registry())


def _profiled(target, prof: cProfile.Profile):
    def run():
        prof.enable()
        try:
            target()
        finally:
            prof.disable()
    return run


class CpuMeter:
    """CPU seconds (user + system) of the processes and threads taking part in one run."""

    def __init__(self, broker_pid: int, sub, pg):
        import psutil

        self.psutil = psutil
        self.me = psutil.Process()
        self.broker = psutil.Process(broker_pid)
        self.sub = sub
        self.pg_root = None
        if pg is not None:
            pid = int((pg.server.datadir / "postmaster.pid").read_text().split()[0])
            self.pg_root = psutil.Process(pid)

    def _pg(self) -> dict[int, float]:
        if self.pg_root is None:
            return {}
        out = {}
        for p in [self.pg_root] + self.pg_root.children(recursive=True):
            try:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
            except self.psutil.Error:
                pass
        return out

    def snapshot(self) -> dict:
        t = self.broker.cpu_times()
        threads = {th.id: th.user_time + th.system_time for th in self.me.threads()}
        ids = {"writer": self.sub._writer.native_id,
               "paho": getattr(getattr(self.sub.client, "_thread", None), "native_id", None)}
        return {"process": time.process_time(), "broker": t.user + t.system, "pg": self._pg(),
                **{k: threads.get(v, 0.0) for k, v in ids.items()}}

    @staticmethod
    def delta(a: dict, b: dict) -> dict[str, float]:
        out = {k: b[k] - a[k] for k in ("process", "broker", "writer", "paho")}
        out["postgres"] = sum(v - a["pg"].get(pid, 0.0) for pid, v in b["pg"].items())
        return out


def run_broker(backend: str, total: int, agents: int, default_inflight: bool, pg,
               prof: cProfile.Profile | None, preload: bool = False) -> tuple[int, float, int, dict[str, float]]:
    """Through mosquitto. ``preload``: the publishers fill the collector's persistent session
    while it is away; the clock then runs from its (re)connect to the last commit."""
    from conftest import wait_for
    from test_deploy import shipped_broker

    from linewatch.collector.config import BrokerConfig
    from linewatch.collector.mqtt import Subscriber

    per = total // agents
    with tempfile.TemporaryDirectory(prefix="lw-bench-ingest-") as tmp:
        tmp = Path(tmp)
        b = shipped_broker(tmp / "broker", secure=False)
        try:
            if default_inflight:
                b.conf.write_text(re.sub(r"^max_inflight_messages 0$", "", b.conf.read_text(), flags=re.M))
                b.restart()
            rec = open_fresh(backend, tmp, pg)
            ing = _timed_ingestor(rec)

            def subscriber() -> Subscriber:
                sub = Subscriber(BrokerConfig(port=b.port), ing)
                if prof is not None:
                    sub._writer = threading.Thread(target=_profiled(sub._write_loop, prof), name="record-writer",
                                                   daemon=True)
                return sub

            sub = subscriber()
            sub.start()
            wait_for(sub.subscribed.is_set, 10, "collector subscribed")
            if preload:
                sub.stop()  # the session (subscription + queue) stays at the broker
            procs = [subprocess.Popen([sys.executable, __file__, "--publish", str(b.port), str(i), str(per)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                     for i in range(agents)]
            for p in procs:
                assert p.stdout.readline().strip() == "ready"
            meter = CpuMeter(b.proc.pid, sub, pg if backend == "postgresql" else None)
            publishers_cpu = 0.0

            def go() -> None:
                nonlocal publishers_cpu
                for p in procs:
                    p.stdin.write("go\n")
                    p.stdin.flush()
                if preload:
                    for p in procs:
                        out, _ = p.communicate(timeout=600)
                        publishers_cpu += float(out.split()[-1])

            if preload:
                go()
                sub = meter.sub = subscriber()
            cpu0 = meter.snapshot()
            t0 = time.perf_counter()
            if preload:
                sub.start()
            else:
                go()
            wait_for(lambda: ing.committed >= per * agents, 900, "all messages stored", step=0.01)
            elapsed = ing.last_commit - t0
            cpu = meter.delta(cpu0, meter.snapshot())
            if not preload:
                for p in procs:
                    out, _ = p.communicate(timeout=60)
                    publishers_cpu += float(out.split()[-1])
            cpu["publishers"] = 0.0 if preload else publishers_cpu  # preload: they ran before the clock
            cpu["batches"], cpu["store"] = ing.batches, ing.busy
            sub.stop()
            stored = rec.counters().get("stored.latency", 0)
            assert stored == per * agents, (stored, per * agents, sub.stats)
            size = rec.size_bytes()
            rec.close()
        finally:
            b.stop()
        return per * agents, elapsed, size, cpu


def run_direct(backend: str, total: int, agents: int, pg, prof: cProfile.Profile | None) -> tuple[int, float, int]:
    """Ingestor.store alone: the writer thread's work without paho and its queue."""
    from linewatch.collector.ingest import Incoming

    per = total // agents
    msgs = [m for i in range(agents) for m in payloads(i, per)]
    # interleave the agents as the broker would
    msgs = [msgs[a * per + k] for k in range(per) for a in range(agents)]
    with tempfile.TemporaryDirectory(prefix="lw-bench-ingest-") as tmp:
        rec = open_fresh(backend, Path(tmp), pg)
        ing = _timed_ingestor(rec)
        batches = [msgs[i:i + BATCH] for i in range(0, len(msgs), BATCH)]
        if prof is not None:
            prof.enable()
        t0 = time.perf_counter()
        for batch in batches:
            now = time.time()
            ing.store([Incoming(t, p, now) for t, p in batch])
        elapsed = time.perf_counter() - t0
        if prof is not None:
            prof.disable()
        assert rec.counters().get("stored.latency", 0) == len(msgs)
        size = rec.size_bytes()
        rec.close()
    return len(msgs), elapsed, size


def parse_only(total: int, agents: int) -> tuple[int, float]:
    from linewatch import wire

    per = total // agents
    msgs = [m for i in range(agents) for m in payloads(i, per)]
    t0 = time.perf_counter()
    for topic, body in msgs:
        wire.parse_message(topic, body)
    return len(msgs), time.perf_counter() - t0


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        publisher(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    ap.add_argument("--repeat", type=int, default=2, help="runs per backend (best and spread are printed)")
    ap.add_argument("--no-broker", action="store_true", help="Ingestor.store alone, no MQTT")
    ap.add_argument("--profile", action="store_true", help="cProfile the record writer; print the top functions")
    ap.add_argument("--preload", action="store_true",
                    help="publish everything while the collector is away, then time its catch-up "
                         "(the publishers do not compete with it for the CPUs)")
    ap.add_argument("--inflight", choices=("shipped", "default"), default="shipped",
                    help="broker inflight window: the shipped 0 (unlimited) or Mosquitto's default (20)")
    args = ap.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in backends:
        if b not in ("sqlite", "postgresql"):
            ap.error(f"unknown backend {b!r}")

    from contextlib import ExitStack

    import _pg

    with ExitStack() as stack:
        pg = None
        if "postgresql" in backends:
            why = _pg.available()
            if why:
                print(f"postgresql: skipped ({why})")
                backends.remove("postgresql")
            else:
                pg = stack.enter_context(_pg.throwaway_postgres())
        path = ("Ingestor.store, batches of 500, no broker" if args.no_broker else
                f"{args.agents} publisher processes -> mosquitto ({args.inflight} inflight) -> Subscriber"
                + ("; preloaded: clock from the collector's connect" if args.preload else ""))
        print(f"ingest: {args.messages} QoS 1 latency messages; {path}; {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f}")
        print("sqlite: WAL, synchronous=FULL; postgresql: local 15, fsync on, synchronous_commit on")
        print(f"{'backend':<11} {'run':>3} {'messages':>9} {'seconds':>8} {'msg/s':>8} {'record':>10}")
        rates: dict[str, list[float]] = {b: [] for b in backends}
        cpus: list[tuple[str, int, float, dict[str, float]]] = []
        profs = {b: cProfile.Profile() for b in backends} if args.profile else {}
        for r in range(1, args.repeat + 1):
            for backend in backends:
                prof = profs.get(backend)
                if args.no_broker:
                    n, secs, size = run_direct(backend, args.messages, args.agents, pg, prof)
                else:
                    n, secs, size, cpu = run_broker(backend, args.messages, args.agents,
                                                    args.inflight == "default", pg, prof, args.preload)
                    cpus.append((backend, r, secs, cpu))
                rates[backend].append(n / secs)
                print(f"{backend:<11} {r:>3} {n:>9} {secs:>8.2f} {n / secs:>8.0f} {mb(size):>10}", flush=True)
        print(f"(load average now {os.getloadavg()[0]:.2f})\n")
        print(f"{'backend':<11} {'best msg/s':>10} {'spread (min-max)':>18} {'median':>8}")
        for backend, rs in rates.items():
            print(f"{backend:<11} {max(rs):>10.0f} {f'{min(rs):.0f}-{max(rs):.0f}':>18} {statistics.median(rs):>8.0f}")
        if cpus:
            print(f"\nCPU seconds from go to the last commit (the machine has {os.cpu_count()} CPUs; "
                  f"collector = writer thread + paho thread + the rest of the bench process; "
                  f"batches: store() calls; in store(): the writer's wall time inside them, the rest it waited "
                  f"for messages or acked)")
            print(f"{'backend':<11} {'run':>3} {'wall':>6} {'writer':>7} {'paho':>6} {'collector':>9} "
                  f"{'mosquitto':>9} {'publishers':>10} {'postgres':>8} {'total':>6}  {'batches':>7} {'in store()':>10}")
            for backend, r, secs, c in cpus:
                tot = c["process"] + c["broker"] + c["publishers"] + c["postgres"]
                print(f"{backend:<11} {r:>3} {secs:>6.2f} {c['writer']:>7.2f} {c['paho']:>6.2f} "
                      f"{c['process']:>9.2f} {c['broker']:>9.2f} {c['publishers']:>10.2f} {c['postgres']:>8.2f} "
                      f"{tot:>6.2f}  {c['batches']:>7} {c['store']:>9.2f}s")
        if args.no_broker:
            n, secs = parse_only(args.messages, args.agents)
            print(f"\nwire.parse_message alone: {n} messages in {secs:.2f} s = {n / secs:.0f} msg/s "
                  f"({secs / n * 1e6:.0f} us/message)")
        for backend, prof in profs.items():
            s = io.StringIO()
            st = pstats.Stats(prof, stream=s)
            st.sort_stats("tottime").print_stats(25)
            total = sum(v[2] for v in st.stats.values())
            print(f"\n---- profile of the record writer, {backend} ({args.repeat} runs, {total:.2f} s own time "
                  f"in total), top 25 by own time")
            lines = s.getvalue().splitlines()
            head = next((i for i, ln in enumerate(lines) if ln.strip().startswith("ncalls")), 0)
            print("\n".join(ln for ln in lines[head:] if ln.strip()))


if __name__ == "__main__":
    main()

"""Benchmark (not a test): what the idle agent costs the office PC it runs on.

    ./dev bench idle [--minutes 10] [--warmup 60] [--broker mosquitto|embedded]

Starts a real broker on a free port (Debian's mosquitto, or the embedded one of `linewatch
up`), writes the shipped example config (agent/example-agent.toml) with every target moved
onto this machine -- loopback addresses, a local HTTP server, a local DNS responder, the LAN
sweep limited to the loopback interface -- and keeps everything else as shipped (lines,
probes, intervals, counts, heartbeat, outbox). Nothing leaves the machine.

Then it runs the real agent process (`linewatch-agent -c agent.toml run`, with its threads
named so the cost can be attributed) and, after the warm-up, samples /proc/<pid> for N
minutes: CPU (% of one core), RSS, and wakeups (voluntary context switches) per second, for
the whole process and per thread. A listener on the broker counts what the agent published.
Goal: <= 0.2 % of one core, <= 40 MB RSS.
"""
from __future__ import annotations

import argparse
import collections
import http.server
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
TICK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- the agent, threads named
def run_agent(config: str) -> int:
    """The agent as `linewatch-agent run` does it; only its threads get OS names (prctl), so
    /proc/<pid>/task/*/comm says which is which."""
    import ctypes

    libc = ctypes.CDLL(None)
    orig = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def named(self):  # type: ignore[no-untyped-def]
        libc.prctl(15, self.name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
        orig(self)

    threading.Thread._bootstrap_inner = named  # type: ignore[attr-defined]
    libc.prctl(15, b"main", 0, 0, 0)
    from linewatch.agent.cli import main

    return main(["-c", config, "run"])


# --------------------------------------------------------------------------- local stand-ins for the far targets
def http_server() -> int:
    class Quiet(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"portal\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def dns_responder() -> int:
    """Answers every A query with 127.0.0.1."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            q, addr = s.recvfrom(512)
            end = 12
            while q[end]:
                end += q[end] + 1
            question = q[12:end + 5]
            answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
            s.sendto(q[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, 1, 0, 0) + question + answer, addr)

    threading.Thread(target=serve, daemon=True).start()
    return s.getsockname()[1]


def local_config(state: Path, port: int, http_port: int, dns_port: int) -> dict:
    doc = tomllib.loads((ROOT / "agent" / "example-agent.toml").read_text())
    doc["agent"]["state_dir"] = str(state)
    doc["mqtt"] = {"host": "127.0.0.1", "port": port, "keepalive_s": doc["mqtt"]["keepalive_s"]}
    doc["lan"]["interfaces"] = ["lo"]  # no sweep of this machine's real LAN
    root = os.geteuid() == 0
    for line in doc["line"]:
        if "interface" in line:
            del line["interface"]
            line["interface" if root else "source_address"] = "lo" if root else "127.0.0.1"
        else:
            line["source_address"] = "127.0.0.1"
        if "latency" in line:
            line["latency"]["targets"] = ["127.0.0.1", f"tcp:127.0.0.1:{http_port}"][:len(line["latency"]["targets"])]
        if "dns" in line:
            line["dns"]["resolvers"] = ["127.0.0.1"] * len(line["dns"]["resolvers"])
            line["dns"]["port"] = dns_port
        if "http" in line:
            line["http"]["urls"] = [f"http://127.0.0.1:{http_port}/{i}" for i in range(len(line["http"]["urls"]))]
        if "bandwidth" in line:
            line["bandwidth"]["target"] = "http://127.0.0.1:9"  # nothing listens: refused at once, if ever run
    return doc


def to_toml(doc: dict) -> str:
    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        return "[" + ", ".join(value(x) for x in v) + "]"

    out: list[str] = []

    def table(name: str, t: dict, array: bool = False) -> None:
        out.append(f"[[{name}]]" if array else f"[{name}]")
        out.extend(f"{k} = {value(v)}" for k, v in t.items() if not isinstance(v, dict))
        for k, v in t.items():
            if isinstance(v, dict):
                table(f"{name}.{k}", v)

    for name, t in doc.items():
        for item in (t if isinstance(t, list) else [t]):
            table(name, item, isinstance(t, list))
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- /proc
def proc_sample(pid: int) -> dict:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    status = dict(ln.split(":", 1) for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in ln)
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            st = dict(ln.split(":", 1) for ln in (task / "status").read_text().splitlines() if ":" in ln)
            ns = int((task / "schedstat").read_text().split()[0])
            name = (task / "comm").read_text().strip()
        except (FileNotFoundError, ProcessLookupError):
            continue
        threads[(task.name, name)] = (ns, int(st["voluntary_ctxt_switches"]) + int(st["nonvoluntary_ctxt_switches"]))
    return {"t": time.monotonic(), "cpu_s": (int(stat[11]) + int(stat[12])) / TICK,
            "children_s": (int(stat[13]) + int(stat[14])) / TICK,
            "rss_mb": int(status["VmRSS"].split()[0]) / 1024, "hwm_mb": int(status["VmHWM"].split()[0]) / 1024,
            "threads": threads}


def listen(port: int) -> collections.Counter:
    import paho.mqtt.client as mqtt

    seen: collections.Counter = collections.Counter()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="idle-bench-listener")
    c.on_connect = lambda cl, *a: cl.subscribe("lw/v1/#", qos=1)
    def count(_c, _u, m) -> None:
        doc = json.loads(m.payload)
        seen.update([doc["kind"] + ("" if doc.get("ok", True) else " failed")])
    c.on_message = count
    c.connect("127.0.0.1", port)
    c.loop_start()
    return seen


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--agent":
        return run_agent(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=60, help="seconds before measuring (default: %(default)s)")
    ap.add_argument("--sample", type=float, default=30, help="seconds per sample (default: %(default)s)")
    ap.add_argument("--broker", choices=("mosquitto", "embedded"), default="mosquitto")
    args = ap.parse_args()
    from conftest import free_port, start_mosquitto, wait_port

    with tempfile.TemporaryDirectory(prefix="idle-bench-") as tmp:
        tmp = Path(tmp)
        port = free_port()
        if args.broker == "mosquitto":
            broker = start_mosquitto(tmp / "broker", port=port)
            stop_broker = broker.stop
            version = subprocess.run([broker.proc.args[0], "-h"], capture_output=True, text=True).stdout.split("\n")[0]
        else:
            from linewatch.embedded import EmbeddedBroker

            eb = EmbeddedBroker("127.0.0.1", port)
            eb.start()
            stop_broker, version = eb.stop, "embedded amqtt (MQTT 3.1.1)"
        wait_port("127.0.0.1", port)
        seen = listen(port)
        cfg = tmp / "agent.toml"
        cfg.write_text(to_toml(local_config(tmp / "state", port, http_server(), dns_responder())))
        log = tmp / "agent.log"
        agent = subprocess.Popen([sys.executable, __file__, "--agent", str(cfg)], stdout=log.open("wb"),
                                 stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            print(f"idle: agent pid {agent.pid}, broker {version} on 127.0.0.1:{port}; warm-up {args.warmup:g} s, "
                  f"then {args.minutes:g} min", flush=True)
            time.sleep(args.warmup)
            seen.clear()
            first = prev = proc_sample(agent.pid)
            windows: list[float] = []
            rss: list[float] = [first["rss_mb"]]
            end = first["t"] + args.minutes * 60
            while time.monotonic() < end and agent.poll() is None:
                time.sleep(min(args.sample, max(0.0, end - time.monotonic())))
                cur = proc_sample(agent.pid)
                windows.append(100 * (cur["cpu_s"] - prev["cpu_s"]) / (cur["t"] - prev["t"]))
                rss.append(cur["rss_mb"])
                prev = cur
            if agent.poll() is not None:
                print(log.read_text()[-3000:])
                raise SystemExit(f"the agent exited ({agent.returncode}) during the run")
            published = collections.Counter(seen)  # before the agent's goodbye
        finally:
            agent.terminate()
            agent.wait(30)
            stop_broker()
        report(first, prev, windows, rss, published, log)
    return 0


def report(first: dict, last: dict, windows: list[float], rss: list[float], seen, log: Path) -> None:
    dt = last["t"] - first["t"]
    cpu = 100 * (last["cpu_s"] - first["cpu_s"]) / dt
    wake = {k: (last["threads"][k][1] - v[1]) / dt for k, v in first["threads"].items() if k in last["threads"]}
    ns = {k: (last["threads"][k][0] - v[0]) / 1e9 for k, v in first["threads"].items() if k in last["threads"]}
    print(f"\nidle agent over {dt / 60:.1f} min (shipped example config, targets on this machine)")
    print(f"  {'CPU, % of one core (mean)':34} {cpu:8.3f}   goal <= 0.2")
    print(f"  {'CPU, % of one core (max of ' + str(len(windows)) + ' windows)':34} {max(windows, default=0):8.3f}")
    print(f"  {'child processes CPU s':34} {last['children_s'] - first['children_s']:8.2f}")
    print(f"  {'RSS MB (max sampled / peak ever)':34} {max(rss):8.1f} / {last['hwm_mb']:.1f}   goal <= 40")
    print(f"  {'wakeups per second (all threads)':34} {sum(wake.values()):8.2f}")
    print(f"  {'messages published per minute':34} {sum(seen.values()) / dt * 60:8.2f}   "
          + ", ".join(f"{k} {n}" for k, n in seen.most_common()))
    print(f"\n  {'thread':18} {'CPU s':>8} {'CPU %':>7} {'wakeups/s':>10}")
    for k in sorted(ns, key=lambda k: -ns[k]):
        print(f"  {k[1]:18} {ns[k]:8.3f} {100 * ns[k] / dt:7.3f} {wake[k]:10.2f}")
    warnings = [ln for ln in log.read_text(errors="replace").splitlines() if " WARNING " in ln or " ERROR " in ln]
    if warnings:
        print(f"\n  agent log: {len(warnings)} warnings/errors, e.g. {warnings[-1][:200]}")


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark (not a test): sustained ingest through mosquitto into the collector's record.

    ./dev bench ingest [--messages 20000] [--agents 4]

K agent processes publish valid latency messages at QoS 1 as fast as the broker takes them;
the collector (manual ack after commit, batched SQLite writes, synchronous=FULL) stores them.
Printed: messages per second from the first publish to the last row committed, for the
shipped mosquitto.conf and for the same file with Mosquitto's default inflight window.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def publisher(port: int, agent_no: int, n: int) -> None:
    import paho.mqtt.client as mqtt

    from linewatch import wire

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{agent_no}")
    c.max_inflight_messages_set(100)  # as the agent's publisher
    c.connect("127.0.0.1", port)
    c.loop_start()
    infos = []
    for seq in range(1, n + 1):
        m = wire.build_message(kind="latency", agent_id=f"ag-bench-{agent_no}", province="52", site="21583",
                               line="fiber", seq=seq, stream="be0c0000", measured_at=wire.utc_now() - timedelta(seconds=1),
                               data={"method": "icmp-raw", "target": "10.0.0.1", "sent": 20, "received": 20,
                                     "loss_pct": 0.0, "rtt_median_ms": 11.0, "rtt_p95_ms": 15.0, "jitter_ms": 1.2})
        infos.append(c.publish(m.topic, m.to_json(), qos=1))
    for i in infos:
        i.wait_for_publish(120)
    c.disconnect()
    c.loop_stop()


def run(total: int, agents: int, default_inflight: bool) -> float:
    from conftest import wait_for
    from test_deploy import shipped_broker

    from linewatch.collector import registry as registry_mod
    from linewatch.collector.config import BrokerConfig
    from linewatch.collector.ingest import Ingestor
    from linewatch.collector.mqtt import Subscriber
    from linewatch.collector.store import Store

    registry_text = (ROOT / "tests/conftest.py").read_text().split('REGISTRY_TOML = """\\\n')[1].split('"""')[0]
    registry_text = registry_text.replace('agents = ["ag-21583"]\n', "")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        b = shipped_broker(tmp / "broker", secure=False)
        if default_inflight:
            b.conf.write_text(re.sub(r"^max_inflight_messages 0$", "", b.conf.read_text(), flags=re.M))
            b.restart()
        import tomllib
        store = Store(tmp / "record.sqlite3")
        sub = Subscriber(BrokerConfig(port=b.port), Ingestor(store, registry_mod.parse(tomllib.loads(registry_text))))
        sub.start()
        wait_for(sub.subscribed.is_set, 10, "collector subscribed")
        per = total // agents
        t0 = time.monotonic()
        procs = [subprocess.Popen([sys.executable, __file__, "--publish", str(b.port), str(i), str(per)])
                 for i in range(agents)]

        def count() -> int:
            return sub.stats["stored"] + sub.stats["duplicate"]
        wait_for(lambda: count() >= per * agents, 600, "all messages stored", step=0.05)
        elapsed = time.monotonic() - t0
        for p in procs:
            p.wait(60)
        sub.stop()
        assert len(store.measurements()) == per * agents
        store.close()
        b.stop()
        return per * agents / elapsed


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        publisher(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--agents", type=int, default=4)
    args = ap.parse_args()
    print(f"ingest: {args.messages} QoS 1 messages from {args.agents} publisher processes -> mosquitto -> "
          f"collector -> SQLite record (synchronous=FULL)")
    print(f"{'broker config':<44} {'msg/s':>8}")
    for label, default_inflight in (("shipped deploy/server/mosquitto.conf", False),
                                    ("shipped, but Mosquitto's default inflight", True)):
        n = args.messages if not default_inflight else min(args.messages, 4000)
        rate = run(n, args.agents, default_inflight)
        print(f"{label:<44} {rate:8.0f}", flush=True)


if __name__ == "__main__":
    main()

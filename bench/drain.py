"""Benchmark (not a test): time to drain an agent's backlog after a reconnect.

    ./dev bench drain [--messages 10000] [--rates 0,500,50]

The agent's real outbox is filled with N measurements while the broker is down; then the
broker (shipped mosquitto.conf) and the collector start, and we time until the last one is
committed to the record. ``drain_rate_per_s`` 0 is unlimited; 50 is the shipped default,
which keeps a commune's line (and a province's collector after a mass outage) usable while
live results go first.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def run(n: int, rate: float) -> tuple[float, float]:
    from conftest import REGISTRY_TOML, agent_toml, free_port, wait_for
    from faultkit import synthetic
    from test_deploy import shipped_broker

    from linewatch.agent import config as agent_config
    from linewatch.agent.outbox import Outbox
    from linewatch.agent.publisher import Publisher
    from linewatch.collector import registry as registry_mod
    from linewatch.collector.config import BrokerConfig
    from linewatch.collector.ingest import Ingestor
    from linewatch.collector.mqtt import Subscriber
    from linewatch.collector.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = agent_config.parse(tomllib.loads(agent_toml(tmp / "agent", free_port(), drain_rate_per_s=rate)))
        outbox = Outbox(cfg.state_dir / "outbox.sqlite3")
        t0 = time.monotonic()
        for _ in range(n):
            outbox.put(lambda seq: synthetic(cfg, seq, outbox.stream))
        fill_s = time.monotonic() - t0
        b = shipped_broker(tmp / "broker", secure=False)
        store = Store(tmp / "record.sqlite3")
        sub = Subscriber(BrokerConfig(port=b.port), Ingestor(store, registry_mod.parse(tomllib.loads(REGISTRY_TOML))))
        sub.start()
        wait_for(sub.subscribed.is_set, 10, "collector subscribed")
        import dataclasses
        cfg = dataclasses.replace(cfg, mqtt=dataclasses.replace(cfg.mqtt, port=b.port))
        pub = Publisher(cfg, outbox)
        t0 = time.monotonic()
        pub.start()
        wait_for(lambda: sub.stats["stored"] >= n, 3600, "backlog drained", step=0.05)
        drain_s = time.monotonic() - t0
        pub.stop()
        sub.stop()
        store.close()
        outbox.close()
        b.stop()
        return fill_s, drain_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--rates", default="0,500,50", help="drain_rate_per_s values to try (0 = unlimited)")
    args = ap.parse_args()
    print(f"drain: {args.messages} measurements queued in the agent's outbox while the broker was down")
    print(f"{'drain_rate_per_s':>16} {'fill outbox s':>14} {'drain s':>9} {'msg/s':>8}")
    for rate in (float(r) for r in args.rates.split(",")):
        fill_s, drain_s = run(args.messages, rate)
        label = "unlimited" if rate == 0 else f"{rate:g}"
        print(f"{label:>16} {fill_s:14.1f} {drain_s:9.1f} {args.messages / drain_s:8.0f}", flush=True)


if __name__ == "__main__":
    main()

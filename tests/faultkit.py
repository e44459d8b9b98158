"""Fault-run kit: a load-generating agent built from the real outbox and publisher, and the
accounting of what was sent against what the record holds.

Run as a process (so it can be killed -9):
    python tests/faultkit.py CONFIG COUNT RATE
It produces COUNT synthetic latency results at RATE per second through the agent's real
delivery path (outbox -> paho -> broker), continues after a restart from its outbox, and
exits 0 once everything is acknowledged.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from linewatch import wire
from linewatch.agent import config as agent_config
from linewatch.agent.outbox import Outbox
from linewatch.agent.publisher import Publisher


def synthetic(cfg: agent_config.AgentConfig, seq: int, stream: str) -> wire.Message:
    return wire.build_message(kind="latency", agent_id=cfg.agent_id, province=cfg.province, site=cfg.site,
                              line=cfg.lines[0].id, seq=seq, stream=stream, measured_at=wire.utc_now(),
                              data={"method": "tcp-connect", "target": "load:1", "sent": 1, "received": 1,
                                    "loss_pct": 0.0, "rtt_median_ms": float(seq % 100)})


def run_load(config: Path, count: int, rate: float) -> int:
    cfg = agent_config.load(config)
    outbox = Outbox(cfg.state_dir / "outbox.sqlite3")
    pub = Publisher(cfg, outbox)
    pub.start()
    try:
        while outbox.last_seq < count:
            outbox.put(lambda seq: synthetic(cfg, seq, outbox.stream))
            pub.wake()
            time.sleep(1 / rate)
        while outbox.depth() > 0:
            time.sleep(0.1)
    finally:
        pub.stop()
    print(f"load: produced {count}, outbox empty", flush=True)
    return 0


@dataclass
class Tally:
    sent: int
    stored: int
    duplicates: int
    missing: list[int]

    @property
    def lost(self) -> int:
        return len(self.missing)

    def line(self, name: str) -> str:
        return (f"fault run {name}: sent {self.sent} / stored {self.stored} / duplicates {self.duplicates} / "
                f"lost {self.lost}")


def tally(record: Path, agent_id: str, sent: int) -> Tally:
    from linewatch.collector.record import EventFilter, open_record

    store = open_record(record)
    try:
        seqs = [e.seq for e in store.events(EventFilter(agent_id=agent_id, kind="latency"))]
        dups = store.counters().get("duplicates", 0)
    finally:
        store.close()
    have = set(seqs)
    assert len(have) == len(seqs), "a sequence number is stored twice"
    return Tally(sent, len(have), dups, [s for s in range(1, sent + 1) if s not in have])


if __name__ == "__main__":
    sys.exit(run_load(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))

"""Helpers for driving collector *processes* against a real mosquitto (tests/test_collector_broker.py):
valid messages, a fast QoS 1 publisher, a collector started with `python -m ... run`, short-lived
reads of its record, and a look at what the broker still holds retained."""
from __future__ import annotations

import re
import signal
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

from linewatch import wire
from linewatch.collector.record import EventFilter, open_record

from conftest import REGISTRY_TOML, Proc, spawn, wait_for

STREAM = "feedc0de"

#: The test registry without `agents = [...]`: any agent id may report for these sites.
OPEN_REGISTRY_TOML = re.sub(r"agents = \[.*\]\n", "", REGISTRY_TOML)


def latency(seq: int, agent_id: str = "ag-21583", site: str = "21583", line: str = "fiber",
            stream: str = STREAM) -> wire.Message:
    return wire.build_message(kind="latency", agent_id=agent_id, province="52", site=site, line=line, seq=seq,
                              stream=stream, measured_at=wire.utc_now() - timedelta(seconds=2),
                              data={"method": "icmp-raw", "target": "10.0.0.1", "sent": 20, "received": 20,
                                    "loss_pct": 0.0, "rtt_median_ms": 12.0})


class Publisher:
    """One paho client publishing at QoS 1 as fast as the broker acknowledges."""

    def __init__(self, port: int, client_id: str = "test-publisher", inflight: int = 1000):
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.c.max_inflight_messages_set(inflight)
        self.c.max_queued_messages_set(0)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self._infos: list[mqtt.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, info.rc
        self._infos.append(info)

    def message(self, m: wire.Message, retain: bool = False) -> None:
        self.publish(m.topic, m.to_json(), retain)

    def acked(self) -> int:
        return sum(1 for i in self._infos if i.is_published())

    def wait(self, timeout: float = 60) -> None:
        """Until the broker has acknowledged (PUBACK) every message."""
        deadline = time.monotonic() + timeout
        for info in self._infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            assert info.is_published(), "the broker did not acknowledge a QoS 1 publish"
        self._infos.clear()

    def close(self) -> None:
        self.wait()
        self.c.disconnect()
        self.c.loop_stop()


def collector_config(path: Path, registry: Path, record: str, port: int, client_id: str,
                     shared_group: str | None = None) -> Path:
    group = f'shared_group = "{shared_group}"' if shared_group else ""
    path.write_text(textwrap.dedent(f"""\
        registry = "{registry}"
        record = "{record}"
        [mqtt]
        host = "127.0.0.1"
        port = {port}
        client_id = "{client_id}"
        """) + group + "\n[status]\noffline_after_s = 60\n"
                    # several collectors on one test machine: no acknowledgement endpoint each
                    "[http]\nport = 0\n")
    return path


def start_collector(config: Path, log: Path, procs: list[Proc], wait_subscribed: bool = True) -> Proc:
    """`linewatch-collector -c config run` as a real process; returns once it has subscribed."""
    p = spawn(["linewatch.collector.cli", "-c", str(config), "run"], log)
    procs.append(p)
    if wait_subscribed:
        wait_for(lambda: "subscribed to" in p.output() or p.proc.poll() is not None, 20,
                 f"collector ({config.name}) to subscribe")
        assert p.proc.poll() is None, f"collector exited with {p.proc.returncode}:\n{p.output()}"
    return p


def kill9(p: Proc) -> None:
    p.proc.send_signal(signal.SIGKILL)
    p.proc.wait(10)


class RecordReader:
    """Reads the record with a fresh connection each time (the collector is writing it; a
    PostgreSQL connection does not survive a server restart)."""

    def __init__(self, location: str | Path):
        self.location = str(location)

    def _with(self, fn):
        rec = open_record(self.location)
        try:
            return fn(rec)
        finally:
            rec.close()

    def seqs(self, agent_id: str, kind: str = "latency") -> list[int]:
        return self._with(lambda r: [e.seq for e in r.events(EventFilter(kind=kind, agent_id=agent_id))])

    def counters(self) -> dict[str, int]:
        return self._with(lambda r: r.counters())

    def rejects(self, limit: int = 1000):
        return self._with(lambda r: r.rejects(limit))

    def rejected_total(self) -> int:
        return sum(v for k, v in self.counters().items() if k.startswith("rejected."))


def retained_at_broker(port: int, topic_filter: str = "lw/v1/#", listen_s: float = 1.5) -> dict[str, bytes]:
    """What a brand-new subscriber (clean session, fresh client id) is handed as retained."""
    got: dict[str, bytes] = {}
    lock = threading.Lock()

    def on_message(client, userdata, msg):
        if msg.retain:
            with lock:
                got[msg.topic] = bytes(msg.payload)

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"retained-probe-{time.monotonic_ns()}",
                    clean_session=True)
    c.on_message = on_message
    c.on_connect = lambda client, *a: client.subscribe(topic_filter, qos=1)
    c.connect("127.0.0.1", port)
    c.loop_start()
    time.sleep(listen_s)
    c.disconnect()
    c.loop_stop()
    return got


def broker_log_count(log: Path, pattern: str, start: int = 0) -> int:
    """Lines of the (debug) mosquitto log after byte offset ``start`` matching ``pattern``."""
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    return len(re.findall(pattern, text))

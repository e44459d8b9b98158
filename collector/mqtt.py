"""The collector's MQTT side: a persistent session, QoS 1, and an acknowledgement sent
only after the message is committed to the record (paho manual ack)."""
from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from linewatch import wire
from linewatch.mqttclient import connect_async, new_client

from .config import BrokerConfig
from .ingest import Ingestor

log = logging.getLogger("linewatch.collector.mqtt")


@dataclass(frozen=True)
class _Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: float


class Subscriber:
    def __init__(self, cfg: BrokerConfig, ingestor: Ingestor, batch_max: int = 500, batch_wait_s: float = 0.05,
                 maintenance_every_s: float = 3600, maintenance=None):
        self.cfg = cfg
        self.ingestor = ingestor
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.maintenance_every_s = maintenance_every_s
        self.maintenance = maintenance
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.fatal: str | None = None
        self.stats = {"stored": 0, "duplicate": 0, "rejected": 0, "status": 0}
        self._q: "queue.Queue[_Incoming]" = queue.Queue()
        self._stop = threading.Event()
        c = new_client(cfg, cfg.client_id, manual_ack=True, max_reconnect_delay_s=30)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self.client = c
        self._writer = threading.Thread(target=self._write_loop, name="record-writer", daemon=True)

    def start(self) -> None:
        connect_async(self.client, self.cfg)
        self._writer.start()

    def stop(self) -> None:
        self._stop.set()
        self._writer.join(10)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            if reason_code.value in (133, 134, 135):
                self.fatal = (f"the broker at {self.cfg.host}:{self.cfg.port} refused the collector's "
                              f"credentials ({reason_code}); fix [mqtt] username/password")
                log.error(self.fatal)
                client.disconnect()
            return
        client.subscribe(wire.subscription(self.cfg.province), qos=1)
        log.info("collector connected to %s:%s (session %s)", self.cfg.host, self.cfg.port,
                 "resumed" if flags.session_present else "new")
        self.connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("the broker refused the subscription to %s (%s): check the collector's ACL entry",
                      wire.subscription(self.cfg.province), reason_codes)
            return
        log.info("subscribed to %s", wire.subscription(self.cfg.province))
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("collector lost the broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        self._q.put(_Incoming(msg.topic, msg.payload, msg.mid, msg.qos, time.time()))

    def _write_loop(self) -> None:
        next_maintenance = time.monotonic() + 5
        while not self._stop.is_set() or not self._q.empty():
            batch: list[_Incoming] = []
            try:
                batch.append(self._q.get(timeout=0.5))
                deadline = time.monotonic() + self.batch_wait_s
                while len(batch) < self.batch_max:
                    batch.append(self._q.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                pass
            if batch:
                self._commit(batch)
            if self.maintenance and time.monotonic() >= next_maintenance:
                next_maintenance = time.monotonic() + self.maintenance_every_s
                try:
                    self.maintenance()
                except Exception:
                    log.exception("record maintenance (rollup/prune) failed; will retry")

    def _commit(self, batch: list[_Incoming]) -> None:
        delay = 1.0
        while True:
            try:
                outcomes = []
                with self.ingestor.store.transaction():
                    for m in batch:
                        outcomes.append(self.ingestor.handle(m.topic, m.payload, m.received_at))
                break
            except sqlite3.OperationalError as e:
                # Disk full, read-only file system, locked: nothing is acknowledged, so the
                # broker keeps every message; try again until the operator fixes the disk.
                log.error("cannot write the record %s: %s -- %d messages wait unacknowledged at the broker; "
                          "free disk space or fix permissions", self.ingestor.store.path, e, len(batch))
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, 30)
        for m, o in zip(batch, outcomes):
            self.stats[o.status] += 1
            if m.qos > 0:
                self.client.ack(m.mid, m.qos)

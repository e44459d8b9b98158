"""The collector's MQTT side: a persistent session, QoS 1, and an acknowledgement sent only
after the message is committed to the record (paho manual ack).

Several collectors can share one broker's traffic (``[mqtt] shared_group``): each subscribes
to ``$share/<group>/lw/v1/...`` and the broker hands every message to one of them. They
write to one PostgreSQL record, which drops a redelivered (agent, stream, seq).

If the writer thread dies for any reason, ``fatal`` is set and the process exits non-zero,
so the service manager restarts it: a collector that is up but stores nothing is the one
failure nobody would notice.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

import paho.mqtt.client as mqtt

from linewatch import wire
from linewatch.mqttclient import connect_async, new_client, subscribe

from .config import BrokerConfig
from .ingest import Incoming, Ingestor
from .record import RecordUnavailable

log = logging.getLogger("linewatch.collector.mqtt")


@dataclass(frozen=True)
class _Msg:
    item: Incoming
    mid: int
    qos: int


class Subscriber:
    def __init__(self, cfg: BrokerConfig, ingestor: Ingestor, batch_max: int = 500, batch_wait_s: float = 0.05,
                 maintenance: Callable[[], None] | None = None, maintenance_every_s: float = 60,
                 on_stored: Callable[[], None] | None = None):
        self.cfg = cfg
        self.ingestor = ingestor
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.maintenance = maintenance
        self.maintenance_every_s = maintenance_every_s
        self.on_stored = on_stored  # wakes the feed's consumers (incident rules) after a commit
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.died = threading.Event()
        self.fatal: str | None = None
        self.stats = {"stored": 0, "duplicate": 0, "rejected": 0, "quarantined": 0, "status": 0, "ignored": 0}
        self._q: "queue.Queue[_Msg]" = queue.Queue()
        self._stop = threading.Event()
        self.topic_filter = wire.subscription(cfg.province)
        if cfg.shared_group:
            self.topic_filter = f"$share/{cfg.shared_group}/{self.topic_filter}"
        c = new_client(cfg, cfg.client_id, manual_ack=True, max_reconnect_delay_s=30, mqtt5=cfg.mqtt_version == 5)
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
            if reason_code.value in (4, 5, 133, 134, 135):
                self.fatal = (f"the broker at {self.cfg.host}:{self.cfg.port} refused the collector's "
                              f"credentials ({reason_code}); fix [mqtt] username/password")
                log.error(self.fatal)
                self.died.set()
                client.disconnect()
            return
        subscribe(client, self.topic_filter)
        log.info("collector connected to %s:%s (session %s)", self.cfg.host, self.cfg.port,
                 "resumed" if flags.session_present else "new")
        self.connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("the broker refused the subscription to %s (%s): check the collector's ACL entry",
                      self.topic_filter, reason_codes)
            return
        log.info("subscribed to %s", self.topic_filter)
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("collector lost the broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        # msg.topic would raise on a topic that is not UTF-8; decode it ourselves
        topic = msg._topic.decode("utf-8", "replace") if isinstance(msg._topic, bytes) else str(msg._topic)
        self._q.put(_Msg(Incoming(topic, bytes(msg.payload), time.time(), bool(msg.retain)), msg.mid, msg.qos))

    # -- the writer ------------------------------------------------------------------
    def _write_loop(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # noqa: BLE001 - reported, and the process exits
            self.fatal = (f"the record writer stopped ({type(e).__name__}: {e}); exiting so that the service "
                          f"manager restarts the collector -- unacknowledged messages wait at the broker")
            log.critical(self.fatal, exc_info=True)
            self.died.set()

    def _loop(self) -> None:
        next_maintenance = time.monotonic() + 5
        while not self._stop.is_set() or not self._q.empty():
            batch: list[_Msg] = []
            try:
                batch.append(self._q.get(timeout=0.5))
                deadline = time.monotonic() + self.batch_wait_s
                while len(batch) < self.batch_max:
                    batch.append(self._q.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                pass
            if batch and not self._commit(batch):
                return
            if self.maintenance and time.monotonic() >= next_maintenance:
                next_maintenance = time.monotonic() + self.maintenance_every_s
                try:
                    self.maintenance()
                except RecordUnavailable as e:
                    log.error("record maintenance (rollups, retention) cannot run: %s; will retry", e)
                except Exception:  # noqa: BLE001 - maintenance must not stop ingest
                    log.exception("record maintenance (rollups, retention) failed; will retry")

    def _commit(self, batch: list[_Msg]) -> bool:
        delay = 1.0
        while True:
            try:
                outcomes = self.ingestor.store([m.item for m in batch])
                break
            except RecordUnavailable as e:
                # Database down, disk full, read-only: nothing is acknowledged, so the broker
                # keeps every message; try again until the admin fixes it.
                log.error("cannot write the record (%s) -- %d messages wait unacknowledged at the broker; "
                          "check that the database is running and the disk is not full",
                          " ".join(str(e).split()), len(batch))
                if self._stop.wait(delay):
                    return False
                delay = min(delay * 2, 30)
        for m, o in zip(batch, outcomes):
            self.stats[o.status] += 1
            if m.qos > 0:
                self.client.ack(m.mid, m.qos)
            if m.item.retained and o.status in ("rejected", "quarantined"):
                # a retained message the contract has no use for would come back at every
                # reconnect: clear it at the broker (an empty retained message deletes it)
                self.client.publish(m.item.topic, b"", qos=1, retain=True)
        if self.on_stored and any(o.status in ("stored", "status") for o in outcomes):
            self.on_stored()
        return True

"""Publishes the outbox over MQTT (paho 2.x), QoS 1, deleting a message only on PUBACK.

paho's own queue lives in memory, so durability is the outbox's job; this module only
moves rows from the outbox to the broker, with a bounded in-flight window.
"""
from __future__ import annotations

import logging
import queue
import socket
import ssl
import threading
import time
from typing import Callable

import paho.mqtt.client as mqtt

from linewatch import __version__, wire
from linewatch.mqttclient import connect_async, new_client

from .config import AgentConfig, MqttConfig
from .outbox import Outbox

log = logging.getLogger("linewatch.agent.mqtt")
INFLIGHT_TIMEOUT_S = 60.0
EARLY_ACK_TTL_S = 5.0

#: CONNACK reason codes that no amount of retrying will fix.
FATAL_CONNACK = {134: "the broker refused this agent's user name or password",
                 # Mosquitto answers a wrong password with 135 too
                 135: "the broker refused this agent's user name or password, or it is not authorised",
                 133: "the broker refused this agent's id"}


def diagnose(m: MqttConfig, timeout: float = 5.0) -> str:
    """Why can we not connect? paho only says that we could not; a clerk needs to know
    whether the line is down, the broker stopped, or the certificate is wrong."""
    try:
        addr = socket.getaddrinfo(m.host, m.port, type=socket.SOCK_STREAM)[0][4]
    except OSError as e:
        return f"the name {m.host} does not resolve ({e.strerror or e}): line down or DNS not working"
    try:
        raw = socket.create_connection(addr[:2], timeout=timeout)
    except ConnectionRefusedError:
        return "the server answers but nothing listens on that port (broker stopped, or wrong port)"
    except (TimeoutError, socket.timeout):
        return "no answer from the server (line down, or a firewall drops the traffic)"
    except OSError as e:
        return f"{e.strerror or e} (line down?)"
    with raw:
        if not m.tls:
            return "the server accepts connections but the MQTT connection failed (is it really the broker?)"
        ctx = ssl.create_default_context(cafile=m.ca_file) if m.ca_file else ssl.create_default_context()
        try:
            with ctx.wrap_socket(raw, server_hostname=m.host):
                return "TLS works; the MQTT connection itself failed (broker overloaded?)"
        except ssl.SSLCertVerificationError as e:
            return (f"the broker's certificate is not trusted ({e.verify_message}): ca_file {m.ca_file} is not "
                    f"the province's CA, or host {m.host!r} is not the name on the certificate")
        except (ssl.SSLError, OSError) as e:
            return f"TLS failed ({e}): is port {m.port} the broker's TLS port?"


def status_message(cfg: AgentConfig, state: str) -> wire.Message:
    # Status (online/offline, also the MQTT last will) is not part of the sequence: seq 0.
    return wire.build_message(kind="status", agent_id=cfg.agent_id, province=cfg.province, site=cfg.site,
                              seq=0, measured_at=wire.utc_now(),
                              data={"state": state, "version": __version__})


class Publisher:
    def __init__(self, cfg: AgentConfig, outbox: Outbox, max_inflight: int = 100,
                 on_fatal: Callable[[str], None] | None = None):
        self.cfg = cfg
        self.outbox = outbox
        self.max_inflight = max_inflight
        # messages per second for the backlog (0 = unlimited)
        self.drain_rate_per_s = cfg.outbox.drain_rate_per_s
        self.on_fatal = on_fatal
        self.connected = threading.Event()
        self.fatal: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._acks: "queue.SimpleQueue[int]" = queue.SimpleQueue()
        self._maplock = threading.Lock()  # guards the two dicts below; never held while calling paho
        self._seq_by_mid: dict[int, int | None] = {}  # None: a status message, nothing to delete
        # PUBACKs that beat _register() for their mid, with when they came. Such a race lasts
        # microseconds; older entries are PUBACKs of paho's own resends after a reconnect and
        # must expire before the 16-bit mid counter wraps round to them.
        self._early_acks: dict[int, float] = {}
        self._inflight: dict[int, float] = {}  # seq -> when published
        self._last_fail_log = 0.0
        self._live_from = 0  # messages with seq above this were measured since the last connect
        #: called with (topic, payload) for every message on the command topic, on paho's thread
        self.on_command: Callable[[str, bytes], None] | None = None
        self.command_topic = wire.command_topic(cfg.province, cfg.site, cfg.agent_id)

        c = new_client(cfg.mqtt, cfg.agent_id)
        offline = status_message(cfg, "offline")
        c.will_set(offline.topic, offline.to_json(), qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self.client = c
        self._sender = threading.Thread(target=self._send_loop, name="outbox-sender", daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        connect_async(self.client, self.cfg.mqtt)
        self._sender.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Say goodbye (retained 'offline'), flush acks, disconnect."""
        self._stop.set()
        self._wake.set()
        if self._sender.is_alive():
            self._sender.join(timeout)
        if self.connected.is_set():
            info = self.client.publish(*self._status("offline"), qos=1, retain=True)
            self._register(info.mid, None)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self._drain_acks()
        self.client.disconnect()
        self.client.loop_stop()

    def wake(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------------ paho callbacks
    def _status(self, state: str) -> tuple[str, bytes]:
        msg = status_message(self.cfg, state)
        return msg.topic, msg.to_json()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            why = FATAL_CONNACK.get(reason_code.value)
            if why:
                self.fatal = (f"{why} (agent {self.cfg.agent_id} at {self.cfg.mqtt.host}:{self.cfg.mqtt.port}). "
                              f"Retrying will not help: ask the provincial IT office for a new agent config.")
                log.error(self.fatal)
                self._stop.set()
                client.disconnect()  # stops paho's reconnect loop: no retry on bad credentials
                if self.on_fatal:
                    self.on_fatal(self.fatal)
            else:
                log.warning("broker refused connection: %s; retrying", reason_code)
            return
        log.info("connected to %s:%s as %s", self.cfg.mqtt.host, self.cfg.mqtt.port, self.cfg.agent_id)
        with self._maplock:  # anything unacknowledged is sent again; the collector drops duplicates
            self._seq_by_mid.clear()
            self._early_acks.clear()
            self._inflight.clear()
            self._live_from = self.outbox.last_seq
        self._register(client.publish(*self._status("online"), qos=1, retain=True).mid, None)
        client.subscribe(self.command_topic, qos=1)  # on-demand tests (agent/commands.py)
        self.connected.set()
        self._wake.set()

    def _on_connect_fail(self, client, userdata) -> None:
        now = time.monotonic()
        if now - self._last_fail_log > 60:
            self._last_fail_log = now
            log.warning("cannot reach the collector's broker at %s:%s: %s; "
                        "%d measurements are kept on disk and will be sent when it is back",
                        self.cfg.mqtt.host, self.cfg.mqtt.port, diagnose(self.cfg.mqtt), self.outbox.depth())

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set() and not self._stop.is_set():
            log.warning("disconnected from broker (%s); measurements keep going to disk", reason_code)
        self.connected.clear()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.warning("the broker refused this agent's subscription to its command topic %s (%s): "
                        "on-demand tests will not reach it", self.command_topic,
                        ", ".join(str(rc) for rc in reason_codes))
        else:
            log.info("listening for commands on %s", self.command_topic)

    def _on_message(self, client, userdata, msg) -> None:
        handler = self.on_command
        if handler is None:
            return
        try:
            handler(msg.topic, msg.payload)
        except Exception:  # never let a bad command kill paho's network thread
            log.exception("command handler failed on %s", msg.topic)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # Called by paho with its own locks held: only touch our small map, never paho.
        with self._maplock:
            if mid not in self._seq_by_mid:
                now = time.monotonic()
                self._early_acks[mid] = now
                if len(self._early_acks) > 1000:
                    self._early_acks = {m: t for m, t in self._early_acks.items() if now - t < EARLY_ACK_TTL_S}
                return
            seq = self._seq_by_mid.pop(mid)
        if seq is not None:
            self._acks.put(seq)
            self._wake.set()

    def _register(self, mid: int, seq: int | None) -> None:
        """Remember which outbox row a mid carries (PUBACK may already have come)."""
        with self._maplock:
            if seq is not None:
                self._inflight[seq] = time.monotonic()
            acked_at = self._early_acks.pop(mid, None)
            if acked_at is not None and time.monotonic() - acked_at < EARLY_ACK_TTL_S:
                if seq is not None:
                    self._acks.put(seq)
            else:
                self._seq_by_mid[mid] = seq

    # ------------------------------------------------------------------ sender
    def _drain_acks(self) -> None:
        seqs: list[int] = []
        while True:
            try:
                seqs.append(self._acks.get_nowait())
            except queue.Empty:
                break
        if seqs:
            self.outbox.ack_many(seqs)
            with self._maplock:
                for s in seqs:
                    self._inflight.pop(s, None)

    def _publish_rows(self, rows) -> int:
        sent = 0
        for p in rows:
            info = self.client.publish(p.topic, p.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            sent += 1
            self._register(info.mid, p.seq)
        return sent

    def _send_loop(self) -> None:
        """Live results first, without limit; the backlog from before the last (re)connect
        at ``drain_rate_per_s``, so a line that just came back is not flooded and 150 agents
        reconnecting together do not bury the collector."""
        tokens = 0.0
        last = time.monotonic()
        next_housekeeping = 0.0
        while not self._stop.is_set():
            self._wake.wait(0.5 if self.drain_rate_per_s <= 0 else min(0.5, 1 / self.drain_rate_per_s))
            self._wake.clear()
            self._drain_acks()
            now = time.monotonic()
            if now >= next_housekeeping:
                next_housekeeping = now + 30
                self.outbox.retry_disk()
                self.outbox.expire()
            if not self.connected.is_set():
                continue
            with self._maplock:
                # a PUBACK that never came (lost with a connection) frees its slot after a while
                stale = [s for s, t in self._inflight.items() if now - t > INFLIGHT_TIMEOUT_S]
                for s in stale:
                    del self._inflight[s]
                room = self.max_inflight - len(self._inflight)
                exclude = frozenset(self._inflight)
                live_from = self._live_from
            live = self.outbox.pending(room, exclude, min_seq=live_from)
            sent = self._publish_rows(live)
            room -= sent
            if sent and room <= 0:
                self._wake.set()
            if room <= 0:
                continue
            if self.drain_rate_per_s > 0:
                tokens = min(max(self.drain_rate_per_s, 1.0), tokens + (now - last) * self.drain_rate_per_s)
                last = now
                quota = min(room, int(tokens))
            else:
                quota = room
            if quota <= 0:
                continue
            n = self._publish_rows(self.outbox.pending(quota, exclude, max_seq=live_from))
            tokens -= n
            if n == quota:
                self._wake.set()  # more may be waiting

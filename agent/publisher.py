"""Publishes the outbox over MQTT (paho 2.x), QoS 1, deleting a message only on a PUBACK
that says the broker took it. paho's own queue lives in memory, so durability is the outbox's
job; this module moves rows from the outbox to the broker, with a bounded in-flight window.

MQTT 5: a PUBACK may refuse a publish (Mosquitto: 135 "Not authorized" when its ACL denies the
topic; under MQTT 3.1.1 it acknowledges the message and drops it in silence). A refused row
stays in the outbox, held back until the next reconnect or a back-off of minutes, said once
and counted in the heartbeat (agent/answers.py). A broker that does not answer MQTT 5 (the
embedded broker of ``linewatch up``, Mosquitto < 1.6) gets MQTT 3.1.1, said once in the log.

Idle cost: the sender sleeps until there is work -- a result (:meth:`wake`), a PUBACK, a
(re)connect -- or a timer that exists only while needed: the token bucket while there is a
backlog, the oldest message in flight, a hold to lift, the CONNACK deadline, and the outbox's
hourly housekeeping (every 30 s while it holds messages in memory).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

import paho.mqtt.client as mqtt

from linewatch import __version__, wire
from linewatch.mqttclient import connect_async, new_client, retire

from .config import AgentConfig
from .outbox import Outbox
from .answers import FATAL_CONNACK, HOLD_S, NO_MQTT5_CONNACK, Holds, diagnose

log = logging.getLogger("linewatch.agent.mqtt")
INFLIGHT_TIMEOUT_S = 60.0
EARLY_ACK_TTL_S = 5.0
CONNACK_TIMEOUT_S = 15.0     # no answer to an MQTT 5 CONNECT in this long: try MQTT 3.1.1
SESSION_EXPIRY_S = 7 * 86400  # the broker keeps the agent's session (commands for it) a week
EXPIRE_EVERY_S = 3600.0
RETRY_DISK_EVERY_S = 30.0
NO_SUBSCRIBER_LOG_EVERY_S = 3600.0

def status_message(cfg: AgentConfig, state: str) -> wire.Message:
    # Status (online/offline, also the MQTT last will) is not part of the sequence: seq 0.
    return wire.build_message(kind="status", agent_id=cfg.agent_id, province=cfg.province, site=cfg.site,
                              seq=0, measured_at=wire.utc_now(),
                              data={"state": state, "version": __version__})


class Publisher:
    def __init__(self, cfg: AgentConfig, outbox: Outbox, max_inflight: int = 100,
                 on_fatal: Callable[[str], None] | None = None, *, mqtt5: bool | None = None,
                 hold_s: float = HOLD_S, connack_timeout_s: float = CONNACK_TIMEOUT_S):
        """``mqtt5``: True MQTT 5 only, False MQTT 3.1.1 only, None (default) MQTT 5 and
        MQTT 3.1.1 if the broker does not answer it."""
        self.cfg = cfg
        self.outbox = outbox
        self.max_inflight = max_inflight
        # messages per second for the backlog (0 = unlimited)
        self.drain_rate_per_s = cfg.outbox.drain_rate_per_s
        self.on_fatal = on_fatal
        self.connack_timeout_s = connack_timeout_s
        self.connected = threading.Event()
        self.fatal: str | None = None
        self.holds = Holds(cfg, hold_s)  # refused rows held back; the sender thread's only
        self.rounds = self.rounds_done = 0  # rounds of the send loop begun and ended (tests, bench)
        self._stop = threading.Event()
        self._wake = threading.Event()
        # PUBACKs to act on, from paho's thread: (seq, topic, reason code, its name)
        self._answers: "queue.SimpleQueue[tuple[int | None, str, int, str]]" = queue.SimpleQueue()
        self._maplock = threading.Lock()  # guards the dicts below; never held while calling paho
        self._by_mid: dict[int, tuple[int | None, str]] = {}  # mid -> (seq, topic); seq None: status
        # PUBACKs that beat _register() for their mid: when they came, code, name. Such a race lasts
        # microseconds; older entries are PUBACKs of paho's own resends after a reconnect and
        # must expire before the 16-bit mid counter wraps round to them.
        self._early_acks: dict[int, tuple[float, int, str]] = {}
        self._inflight: dict[int, float] = {}  # seq -> when published
        self._window = max_inflight
        self._live_from = 0  # messages with seq above this were measured since the last connect
        self._last_fail_log = self._last_takeover_log = self._last_nosub_log = -1e9
        # sender thread only: token bucket, timers, "rows older than _live_from may wait"
        self._tokens, self._tokens_at = 0.0, time.monotonic()
        self._next_expire = self._next_retry_disk = 0.0
        self._backlog, self._reconnected = True, False
        # MQTT 5 unless the broker turns out not to speak it (then _no_v5, or no CONNACK in time)
        self._auto, self._v5_works, self._no_v5 = mqtt5 is None, False, False
        self._opened_at: float | None = None  # socket open, CONNACK awaited (MQTT 5 probing only)
        #: called with (topic, payload) for every message on the command topic, on paho's thread
        self.on_command: Callable[[str, bytes], None] | None = None
        self.command_topic = wire.command_topic(cfg.province, cfg.site, cfg.agent_id)
        self.client = self._new_client(mqtt5 is not False)
        self._sender = threading.Thread(target=self._send_loop, name="outbox-sender", daemon=True)

    def _new_client(self, v5: bool) -> mqtt.Client:
        # paho's network thread wakes for the keepalive only (see Client.idle_wait_s)
        c = new_client(self.cfg.mqtt, self.cfg.agent_id, mqtt5=v5, idle_wait_s=self.cfg.mqtt.keepalive_s / 4)
        offline = status_message(self.cfg, "offline")
        c.will_set(offline.topic, offline.to_json(), qos=1, retain=True)
        for event in ("connect", "connect_fail", "disconnect", "publish", "message", "subscribe", "socket_open"):
            setattr(c, f"on_{event}", getattr(self, f"_on_{event}"))
        return c

    @property
    def protocol(self) -> str:
        return "MQTT 5" if self.client.protocol == mqtt.MQTTv5 else "MQTT 3.1.1"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        connect_async(self.client, self.cfg.mqtt, session_expiry_s=SESSION_EXPIRY_S)
        self._sender.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Say goodbye (retained 'offline'), flush acks, disconnect."""
        self._stop.set()
        self._wake.set()
        if self._sender.is_alive():
            self._sender.join(timeout)
        if self.connected.is_set():
            topic, payload = self._status("offline")
            info = self.client.publish(topic, payload, qos=1, retain=True)
            self._register(info.mid, None, topic)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self._drain_answers(time.monotonic())
        self.client.disconnect()
        self.client.loop_stop()

    def wake(self) -> None:
        self._wake.set()

    def stats(self) -> dict[str, object]:
        with self._maplock:
            inflight = len(self._inflight)
        return {"rounds": self.rounds, "inflight": inflight, "held": self.holds.describe(),
                "refused": self.holds.refused, "protocol": self.protocol}

    # ------------------------------------------------------------------ paho callbacks
    def _status(self, state: str) -> tuple[str, bytes]:
        msg = status_message(self.cfg, state)
        return msg.topic, msg.to_json()

    def _on_socket_open(self, client, userdata, sock) -> None:
        # From the first connection that got no CONNACK until one does (or the broker cannot be
        # reached at all): a broker silent that long to MQTT 5 gets MQTT 3.1.1.
        if self._auto and not self._v5_works and client.protocol == mqtt.MQTTv5 and self._opened_at is None:
            self._opened_at = time.monotonic()
            self._wake.set()  # the sender keeps the CONNACK deadline

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is not self.client:
            return
        self._opened_at = None
        v5 = client.protocol == mqtt.MQTTv5
        if reason_code.is_failure:
            if v5 and self._auto and not self._v5_works and reason_code.value in NO_MQTT5_CONNACK:
                self._no_v5 = True
                self._wake.set()
                return
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
        window = self.max_inflight
        if v5:
            self._v5_works = True
            receive_max = getattr(properties, "ReceiveMaximum", None)
            if receive_max:  # one place is kept for the status message
                window = max(1, min(window, receive_max - 1))
        log.info("connected to %s:%s as %s (%s)", self.cfg.mqtt.host, self.cfg.mqtt.port, self.cfg.agent_id,
                 self.protocol)
        with self._maplock:  # anything unacknowledged is sent again; the collector drops duplicates
            self._by_mid.clear()
            self._early_acks.clear()
            self._inflight.clear()
            self._live_from = self.outbox.last_seq
            self._window = window
        self._reconnected = True
        topic, payload = self._status("online")
        self._register(client.publish(topic, payload, qos=1, retain=True).mid, None, topic)
        client.subscribe(self.command_topic, qos=1)  # on-demand tests (agent/commands.py)
        self.connected.set()
        self._wake.set()

    def _on_connect_fail(self, client, userdata) -> None:
        self._opened_at = None  # not a broker that is silent to MQTT 5: no broker at all
        now = time.monotonic()
        if now - self._last_fail_log > 60:
            self._last_fail_log = now
            log.warning("cannot reach the collector's broker at %s:%s: %s; "
                        "%d measurements are kept on disk and will be sent when it is back",
                        self.cfg.mqtt.host, self.cfg.mqtt.port, diagnose(self.cfg.mqtt), self.outbox.depth())

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is not self.client:
            return
        now = time.monotonic()
        if reason_code.value == 142 and now - self._last_takeover_log > 600:  # MQTT 5 "Session taken over"
            self._last_takeover_log = now
            log.error("the broker disconnected this agent because another client logged in as %s: is this "
                      "agent.toml installed on two computers? Each agent needs its own id and login (enrol)",
                      self.cfg.agent_id)
        elif self.connected.is_set() and not self._stop.is_set():
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
        # Called by paho with its own locks held: only touch our small maps, never paho.
        code, name = reason_code.value, str(reason_code)
        with self._maplock:
            if mid not in self._by_mid:
                now = time.monotonic()
                self._early_acks[mid] = (now, code, name)
                if len(self._early_acks) > 1000:
                    self._early_acks = {m: e for m, e in self._early_acks.items() if now - e[0] < EARLY_ACK_TTL_S}
                return
            seq, topic = self._by_mid.pop(mid)
        self._settle(seq, topic, code, name)

    def _settle(self, seq: int | None, topic: str, code: int, name: str) -> None:
        if seq is not None or code >= 128:  # (a status message taken needs nothing more)
            self._answers.put((seq, topic, code, name))
            self._wake.set()

    def _register(self, mid: int, seq: int | None, topic: str) -> None:
        """Remember which outbox row a mid carries (PUBACK may already have come)."""
        now = time.monotonic()
        with self._maplock:
            if seq is not None:
                self._inflight[seq] = now
            early = self._early_acks.pop(mid, None)
            if early is None or now - early[0] >= EARLY_ACK_TTL_S:
                self._by_mid[mid] = (seq, topic)
                return
        self._settle(seq, topic, early[1], early[2])

    # ------------------------------------------------------------------ acks and refusals
    def _drain_answers(self, now: float) -> None:
        """Delete what the broker took; hold back what it refused (MQTT 5: reason >= 128)."""
        answers: list[tuple[int | None, str, int, str]] = []
        while True:
            try:
                answers.append(self._answers.get_nowait())
            except queue.Empty:
                break
        taken = [(s, t, c) for s, t, c, _ in answers if c < 128 and s is not None]
        if taken:
            self.outbox.ack_many([s for s, _, _ in taken])
        with self._maplock:
            for s, _, _, _ in answers:
                self._inflight.pop(s or 0, None)
        for s, topic, code, name in answers:
            if code >= 128:
                self.holds.refuse(s, topic, code, name, now)
            elif s is not None and self.holds.accepted(s, topic):
                self._backlog = True
        nobody = [t for _, t, c in taken if c == 16]  # MQTT 5 "No matching subscribers": heard by nobody
        if nobody and now - self._last_nosub_log > NO_SUBSCRIBER_LOG_EVERY_S:
            self._last_nosub_log = now
            log.warning("the broker took this agent's messages but nobody subscribes to them (%s): is the "
                        "collector running, and did the broker keep its session (persistence true)?", nobody[0])

    # ------------------------------------------------------------------ sender
    def _publish_rows(self, rows) -> int:
        sent = 0
        for p in rows:
            info = self.client.publish(p.topic, p.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            sent += 1
            self._register(info.mid, p.seq, p.topic)
        return sent

    def _fall_back_to_mqtt311(self, why: str) -> None:
        retire(self.client)
        self._auto = self._no_v5 = False
        self._opened_at = None
        log.warning("the broker at %s:%s %s: this agent talks MQTT 3.1.1 to it instead, and so cannot tell when "
                    "the broker refuses one of its messages (ACL). Mosquitto >= 1.6 speaks MQTT 5; restart the "
                    "agent to try again", self.cfg.mqtt.host, self.cfg.mqtt.port, why)
        self.client = self._new_client(False)
        connect_async(self.client, self.cfg.mqtt)

    def _send_loop(self) -> None:
        """Live results first, without limit; the backlog from before the last (re)connect
        at ``drain_rate_per_s``, so a line that just came back is not flooded and 150 agents
        reconnecting together do not bury the collector."""
        timeout: float | None = 0.0
        while not self._stop.is_set():
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stop.is_set():
                break
            self.rounds += 1
            try:
                timeout = self._round(time.monotonic())
            except Exception:  # the sender must outlive a bug: what it did not send stays in the outbox
                log.exception("the outbox sender failed; trying again in 5 s")
                timeout = 5.0
            self.rounds_done += 1

    def _round(self, now: float) -> float | None:
        """One round of sending; seconds until the next timer (None: sleep until woken)."""
        self._drain_answers(now)
        timers: list[float] = []
        if now >= self._next_expire:
            self._next_expire = now + EXPIRE_EVERY_S
            self.outbox.expire()
        timers.append(self._next_expire)
        if self.outbox.needs_retry():
            if now >= self._next_retry_disk:
                self._next_retry_disk = now + RETRY_DISK_EVERY_S
                self.outbox.retry_disk()
            timers.append(self._next_retry_disk)
        if self._no_v5:
            self._fall_back_to_mqtt311("refuses MQTT 5")
        elif self._opened_at is not None and not self.connected.is_set():
            if now >= self._opened_at + self.connack_timeout_s:
                self._fall_back_to_mqtt311(f"did not answer an MQTT 5 connection in {self.connack_timeout_s:g} s")
            else:
                timers.append(self._opened_at + self.connack_timeout_s)
        lifted, next_lift = self.holds.lift(now, everything=self._reconnected)
        if lifted or self._reconnected:  # what was held, or in flight when the line dropped, may go
            self._backlog, self._reconnected = True, False
        if next_lift is not None:
            timers.append(next_lift)
        if self.connected.is_set():
            timers += self._send(now)
        return max(0.0, min(timers) - now)

    def _send(self, now: float) -> list[float]:
        """Publish what may go now; the timers this asks for."""
        with self._maplock:
            # a PUBACK that never came (lost with a connection) frees its slot after a while
            stale = [s for s, t in self._inflight.items() if now - t > INFLIGHT_TIMEOUT_S]
            for s in stale:
                del self._inflight[s]
            room = self._window - len(self._inflight)
            exclude = frozenset(self._inflight)
            oldest = min(self._inflight.values(), default=None)
            live_from = self._live_from
        timers = [] if oldest is None else [oldest + INFLIGHT_TIMEOUT_S]
        if stale:
            self._backlog = True
        if self.holds.paused:
            return timers
        held_rows, held_topics = self.holds.rows, self.holds.topics
        if held_rows:
            exclude = exclude | held_rows
        room -= self._publish_rows(self.outbox.pending(room, exclude, min_seq=live_from,
                                                       exclude_topics=held_topics))
        if room <= 0 or not self._backlog:
            return timers  # a PUBACK frees room and wakes us
        rate = self.drain_rate_per_s
        if rate > 0:
            self._tokens = min(max(rate, 1.0), self._tokens + (now - self._tokens_at) * rate)
            quota = min(room, int(self._tokens))
        else:
            quota = room
        self._tokens_at = now
        if quota > 0:
            rows = self.outbox.pending(quota, exclude, max_seq=live_from, exclude_topics=held_topics)
            n = self._publish_rows(rows)
            if rate > 0:
                self._tokens -= n
            if len(rows) < quota:
                self._backlog = False  # nothing older is waiting (a reconnect or a lifted hold says otherwise)
                return timers
            if n < len(rows) or quota == room:
                return timers  # paho is not connected, or the window is full: a connect or PUBACK wakes us
        if rate > 0:
            timers.append(now + (1 - self._tokens) / rate)
        return timers

"""What the broker answers, in words the provincial IT office can act on: why a connection
fails (:func:`diagnose`), the CONNACKs no retry will fix, and the publishes it refuses -- held
back and tried again (:class:`Holds`, the publisher's sender thread only).

Under MQTT 5 a PUBACK may refuse a publish. The refused row stays in the outbox and is held
back, with a back-off that starts at minutes and doubles up to an hour, or until the next
reconnect: a topic the broker refuses (135 Not authorized: its ACL; 144 Topic Name invalid),
all of this agent's publishes (151 Quota exceeded, or more than MAX_HELD_ROWS rows refused one
by one), or that one row (its payload: 153 Payload format invalid, 131 a message larger than
Mosquitto's message_size_limit, ...). Each reason code is logged once until the broker accepts
again; every refusal is counted for the heartbeat (``publish_refused``, ``last_refusal``).
"""
from __future__ import annotations

import logging
import socket
import ssl

from .config import AgentConfig, MqttConfig

log = logging.getLogger("linewatch.agent.mqtt")
HOLD_S = 300.0
MAX_HOLD_S = 3600.0
MAX_HELD_ROWS = 1000
#: PUBACK reason codes that refuse the topic (any message on it would be refused) ...
TOPIC_REFUSALS = frozenset({135, 144})
#: ... and those that refuse every message of this agent for now. The rest refuse one row.
PAUSE_REFUSALS = frozenset({151})
ALL = ("all",)

#: CONNACK reason codes that no amount of retrying will fix.
FATAL_CONNACK = {134: "the broker refused this agent's user name or password",
                 # Mosquitto answers a wrong password with 135 too
                 135: "the broker refused this agent's user name or password, or it is not authorised",
                 133: "the broker refused this agent's id"}
#: CONNACK from a broker that does not speak MQTT 5 (132; 1 is MQTT 3.1.1's "unacceptable version").
NO_MQTT5_CONNACK = {1, 132}


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


def _for(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 120 else f"{seconds:g} s"


def refusal_sentence(cfg: AgentConfig, code: int, name: str, topic: str, seq: int | None, hold_s: float) -> str:
    """What a refused publish means and what to do about it."""
    who = f"agent {cfg.agent_id}"
    if cfg.mqtt.username and cfg.mqtt.username != cfg.agent_id:
        who += f" (broker login {cfg.mqtt.username})"
    kept = ("" if seq is None else
            f"; the refused measurements stay on disk and are tried again after each reconnect and "
            f"in {_for(hold_s)}")
    if code == 135:
        return (f"the broker refuses this agent's publishes on {topic} ({code} {name}): its ACL does not allow "
                f"{who} to write for site {cfg.site} of province {cfg.province} -- run `linewatch-collector acl` "
                f"and reload the broker, or fix the agent's site in agent.toml{kept}")
    if code == 144:
        return (f"the broker refuses the topic {topic} ({code} {name}): check [agent] province/site and the "
                f"[[line]] ids in agent.toml{kept}")
    if code in PAUSE_REFUSALS:
        return (f"the broker refuses this agent's publishes for now ({code} {name}): too many of its messages "
                f"are in flight or queued there (Mosquitto max_inflight_messages / max_queued_messages){kept}")
    what = "its status message" if seq is None else f"message {seq}"
    return f"the broker refuses {what} on {topic} ({code} {name}){kept}"


class Holds:
    def __init__(self, cfg: AgentConfig, hold_s: float = HOLD_S):
        self.cfg = cfg
        self.hold_s = hold_s
        self.refused = 0                 # refusals since start (heartbeat publish_refused)
        self.last: str | None = None     # what the last one means (heartbeat last_refusal)
        self._until: dict[tuple, float] = {}             # ("topic", t) | ("row", seq) | ALL -> lift at
        self._backoff: dict[tuple, tuple[float, int]] = {}  # key -> (current back-off, reason code)
        self._told: set[tuple[int, bool]] = set()  # (reason code, about the status message)

    def refuse(self, seq: int | None, topic: str, code: int, name: str, now: float) -> None:
        self.refused += 1
        wait = self.hold_s
        if seq is not None:  # a status message is sent again at the next connect anyway
            key: tuple = ("topic", topic) if code in TOPIC_REFUSALS else ALL if code in PAUSE_REFUSALS \
                else ("row", seq)
            if key[0] == "row" and len(self.rows) >= MAX_HELD_ROWS:
                key = ALL
            if key not in self._until:  # the first refusal since the hold was lifted: back off further
                prev = self._backoff.get(key)
                wait = self.hold_s if prev is None else min(prev[0] * 2, max(MAX_HOLD_S, self.hold_s))
                self._backoff[key] = (wait, code)
                self._until[key] = now + wait
            wait = self._backoff[key][0]
        self.last = refusal_sentence(self.cfg, code, name, topic, seq, wait)
        if (code, seq is None) not in self._told:
            self._told.add((code, seq is None))
            log.error("%s", self.last)
        else:
            log.debug("%s", self.last)

    def accepted(self, seq: int, topic: str) -> bool:
        """The broker took a row: whatever was held for its topic or itself is lifted and
        forgiven. True if a hold was lifted."""
        if not self._backoff:
            return False
        lifted = False
        for key in (("topic", topic), ("row", seq), ALL):
            if key in self._backoff:
                code = self._backoff.pop(key)[1]
                self._told -= {(code, False), (code, True)}
                lifted |= self._until.pop(key, None) is not None
                if key[0] != "row":
                    log.info("the broker accepts this agent's publishes on %s again", topic)
        return lifted

    def lift(self, now: float, everything: bool = False) -> tuple[bool, float | None]:
        """Lift the holds that are due (all after a reconnect): (any lifted, when the next is due)."""
        due = list(self._until) if everything else [k for k, at in self._until.items() if at <= now]
        for key in due:
            del self._until[key]
        return bool(due), min(self._until.values(), default=None)

    @property
    def paused(self) -> bool:
        return ALL in self._until

    @property
    def rows(self) -> set[int]:
        return {k[1] for k in self._until if k[0] == "row"}

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(k[1] for k in self._until if k[0] == "topic")

    def describe(self) -> list[str]:
        return sorted(":".join(map(str, k)) for k in self._until)

"""The notifier: takes the notices the rules queued and delivers them.

Each pass (``run_once``) claims the pending notices of every recipient that has one due,
groups them per (channel, recipient) into ONE message, holds back recipients that already
had ``max_per_hour`` messages in the last hour (their notices wait, and go later together),
sends, and records the outcome: sent (with the message's deterministic id), or failed
(retried after 30 s, 60 s, ... up to 15 min, until the notice expires). One recipient or
channel failing never stops the others.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from ..record.types import Notice
from . import chat as chat_mod
from . import email as email_mod
from . import webhook as webhook_mod
from .config import NotifyConfig
from .links import Links, link_identity, load_secret
from .message import Item, Message, build
from .text import clean

log = logging.getLogger(__name__)

CHANNELS = ("email", "webhook", "chat")
BACKOFF_FIRST_S = 30.0
BACKOFF_MAX_S = 900.0


def backoff(attempts: int) -> float:
    """Wait before the next try after ``attempts`` failed ones (0: the first failed)."""
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * (2 ** min(max(attempts, 0), 10)))


@dataclass
class PassResult:
    claimed: int = 0
    messages: int = 0
    sent: int = 0       # notices
    failed: int = 0     # notices
    deferred: int = 0   # notices
    errors: list[str] = field(default_factory=list)


class Notifier:
    def __init__(self, record: Any, registry: Any, cfg: NotifyConfig, *, links: Links | None = None,
                 webhook_secret: bytes | None = None, clock: Callable[[], float] = time.time):
        self.record = record
        self.registry = registry
        self.cfg = cfg
        self.clock = clock
        self.links = links or Links(load_secret(cfg.secret_file), cfg.public_url, cfg.ack_link_days)
        if webhook_secret is None:
            webhook_secret = (self.links.secret if cfg.webhook_secret_file == cfg.secret_file and links is None
                              else load_secret(cfg.webhook_secret_file))
        self.webhook_secret = webhook_secret
        if cfg.smtp_username:
            cfg.smtp_password()  # a missing password file is a config error at start, not at the first mail
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self.counters: dict[str, Counter] = {"sent": Counter(), "failed": Counter(), "deferred": Counter(),
                                             "messages": Counter(), "errors": Counter()}
        self.last_error: str | None = None
        self.last_pass_at: float | None = None

    # -- the loop ----------------------------------------------------------------------
    def wake(self) -> None:
        """Look at the queue now (the rules just queued something)."""
        self._wake.set()

    def run_forever(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        while not stop.is_set():
            try:
                self.run_once()
            except Exception as e:  # the record unreachable: keep going, it comes back
                self._count("errors", "pass")
                self.last_error = f"{type(e).__name__}: {e}"
                log.warning("notifier pass failed: %s", self.last_error)
            self._wake.wait(poll_s)
            self._wake.clear()

    def metrics(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {k: dict(v) for k, v in self.counters.items()}

    def _count(self, what: str, channel: str, n: int = 1) -> None:
        with self._lock:
            self.counters[what][channel] += n

    # -- one pass ----------------------------------------------------------------------
    def run_once(self, now: float | None = None) -> PassResult:
        now = self.clock() if now is None else now
        res = PassResult()
        notices = self.record.claim_notices(now)
        res.claimed = len(notices)
        groups: dict[tuple[str, str], list[Notice]] = {}
        for n in notices:
            if n.state != "pending" or n.expires_at <= now:
                continue  # claim_notices marks them expired; never send one
            if n.event == "report":  # a monthly report: its own mail, with its files attached
                self._deliver_report(n, now, res)
                continue
            groups.setdefault((n.channel, n.recipient), []).append(n)
        for (channel, recipient), group in groups.items():
            try:
                self._deliver(channel, recipient, group, now, res)
            except Exception as e:  # a bug or the record failing for this one: isolate it
                log.exception("notices %s to %s %s could not be handled", [n.id for n in group], channel,
                              link_identity(channel, recipient))
                res.errors.append(f"{type(e).__name__}: {e}")
                self._count("errors", channel)
                self._fail(group, f"{type(e).__name__}: {e}", now, res, channel)
        self.last_pass_at = now
        return res

    def _fail(self, group: list[Notice], error: str, now: float, res: PassResult, channel: str) -> None:
        ids = [n.id for n in group]
        retry_at = now + backoff(max(n.attempts for n in group))
        try:
            self.record.notices_failed(ids, clean(error, 480), retry_at)
        except Exception as e:  # the lease runs out and they are claimed again
            log.warning("could not record the failure of notices %s: %s", ids, e)
        res.failed += len(ids)
        self._count("failed", channel, len(ids))
        self.last_error = error

    def _deliver(self, channel: str, recipient: str, group: list[Notice], now: float, res: PassResult) -> None:
        ids = [n.id for n in group]
        if self.record.sent_since(channel, recipient, now - 3600) >= self.cfg.max_per_hour:
            until = now + min(300.0, 3600.0 / self.cfg.max_per_hour)
            self.record.notices_deferred(ids, until)
            res.deferred += len(ids)
            self._count("deferred", channel, len(ids))
            log.info("%d notice(s) to %s %s held back (max_per_hour %d) until %.0f", len(ids), channel,
                     link_identity(channel, recipient), self.cfg.max_per_hour, until)
            return
        msg = self.message(channel, recipient, group, now)
        try:
            if channel not in CHANNELS:
                raise ValueError(f"unknown channel {channel!r}")
            sent_as = self._send(msg, now)
        except Exception as e:
            err = f"{type(e).__name__}: {e}" if not isinstance(e, (webhook_mod.WebhookError, chat_mod.ChatError)) \
                else str(e)
            log.warning("%s to %s failed (notices %s, try %d): %s", channel, link_identity(channel, recipient), ids,
                        max(n.attempts for n in group) + 1, err)
            self._fail(group, err, now, res, channel)
            return
        self.record.notices_sent(ids, sent_as=sent_as, now=now)
        res.sent += len(ids)
        res.messages += 1
        self._count("sent", channel, len(ids))
        self._count("messages", channel)

    def _deliver_report(self, n: Notice, now: float, res: PassResult) -> None:
        from ..report import mail as report_mail

        try:
            if n.channel != "email":
                raise ValueError(f"a monthly report goes by e-mail only, not {n.channel!r}")
            em = report_mail.render(n.body, n.recipient, self.cfg.from_addr, now, n.key)
            email_mod.send(self.cfg, em, n.recipient)
        except Exception as e:
            log.warning("monthly report mail to %s failed (notice %s, try %d): %s", n.recipient, n.id,
                        n.attempts + 1, e)
            self._fail([n], f"{type(e).__name__}: {e}", now, res, n.channel)
            return
        self.record.notices_sent([n.id], sent_as=str(em["Message-ID"]), now=now)
        res.sent += 1
        res.messages += 1
        self._count("sent", n.channel)
        self._count("messages", n.channel)

    # -- rendering and sending --------------------------------------------------------------
    def message(self, channel: str, recipient: str, group: list[Notice], now: float) -> Message:
        who = link_identity(channel, recipient)

        def ack_url(item: Item) -> str | None:
            if item.incident_id is None or item.event in ("resolved", "opened_resolved", "digest"):
                return None
            if not any(n.route == "operator" for n in item.notices):
                return None
            state = item.inc.get("state")
            try:  # the incident as it is now, not as queued: acknowledged or closed needs no link
                state = self.record.incident(item.incident_id).state
            except Exception:
                pass
            return self.links.make(item.incident_id, who, now) if state == "open" else None

        return build(channel, recipient, group, self.cfg.lang, ack_url)

    def _send(self, msg: Message, now: float) -> str:
        if msg.channel == "email":
            em = email_mod.render(msg, self.cfg, now)
            email_mod.send(self.cfg, em, msg.recipient)
            return email_mod.message_id(msg)
        if msg.channel == "webhook":
            return webhook_mod.send(msg.recipient, msg, self.webhook_secret, self.cfg.timeout_s)
        return chat_mod.send(msg.recipient, msg, self.cfg.timeout_s)

"""Webhook notices: a signed JSON POST to an operator's ticket system.

    POST <url>
    Content-Type: application/json
    X-Linewatch-Event: opened | resolved | escalated | refined | opened_resolved | digest | group
    X-Linewatch-Delivery: notice-12-13      (the same notices always have the same id: dedupe on it)
    X-Linewatch-Signature: sha256=<hex HMAC-SHA256 of the raw body, key = the webhook secret>

    {"notice_ids": [12, 13], "event": "opened", "delivery": "notice-12-13",
     "incidents": [{...the incident snapshot..., "event": "opened", "summary": {...},
                    "ack_url": "https://.../ack/12?..." or null}],
     "evidence": [{"incident_id": 12, ...measurement row...}],
     "ack_url": <the one incident's link, or null when there are several>}

A 2xx answer means delivered; anything else (a redirect too) or no answer in time is a
failure, retried later with the same delivery id.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import urllib.error
import urllib.request
from typing import Any

from ..errors import WebhookError  # noqa: F401
from .message import Message

USER_AGENT = "linewatch-notifier/1"


def payload(msg: Message) -> dict[str, Any]:
    incidents = []
    evidence = []
    for item in msg.items:
        d = dict(item.inc)
        d["id"] = item.incident_id if item.incident_id is not None else d.get("id")
        d["event"] = item.event
        d["notice_ids"] = [n.id for n in item.notices]
        d["summary"] = item.summary
        d["ack_url"] = item.ack_url
        incidents.append(d)
        for r in item.evidence:
            evidence.append({"incident_id": item.incident_id, **r})
    acks = [i.ack_url for i in msg.items if i.ack_url]
    return {"notice_ids": msg.ids, "event": msg.event, "delivery": msg.key, "recipient_route":
            msg.notices[0].route if msg.notices else None, "incidents": incidents, "evidence": evidence,
            "ack_url": acks[0] if len(msg.items) == 1 and acks else None}


def _finite(v: Any) -> Any:
    """NaN and infinities (not JSON) as null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def body_bytes(msg: Message) -> bytes:
    return json.dumps(_finite(payload(msg)), ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                      allow_nan=False, default=str).encode("utf-8", "surrogatepass")


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str) -> bool:
    """What a receiver does (documented for operators, used by the tests)."""
    return hmac.compare_digest(signature(secret, body), header or "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect is not a delivery
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def send(url: str, msg: Message, secret: bytes, timeout_s: float) -> str:
    """POST the message; returns the delivery id, raises WebhookError when not delivered."""
    body = body_bytes(msg)
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Linewatch-Event": msg.event,
        "X-Linewatch-Delivery": msg.key,
        "X-Linewatch-Signature": signature(secret, body),
    })
    try:
        with _OPENER.open(req, timeout=timeout_s) as resp:
            status = resp.status
            resp.read(65536)
    except urllib.error.HTTPError as e:
        raise WebhookError(f"HTTP {e.code} from the webhook") from None
    except urllib.error.URLError as e:
        raise WebhookError(f"webhook not reached: {e.reason}") from None
    except (OSError, ValueError) as e:  # timeouts, resets, a URL urllib cannot use
        raise WebhookError(f"webhook not reached: {e}") from None
    if not 200 <= status < 300:
        raise WebhookError(f"HTTP {status} from the webhook")
    return msg.key

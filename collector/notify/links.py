"""Signed acknowledgement links.

    {public_url}/ack/{incident_id}?r={recipient}&e={expires}&s={signature}

``s`` is HMAC-SHA256(secret, "{incident_id}:{recipient}:{expires}") in hex: whoever holds the
link (the recipient it was sent to) may acknowledge that incident until ``expires`` (UTC
epoch seconds), nobody can make one for another incident or recipient. The incident id and
the expiry are whole numbers without ':', so the recipient in between is unambiguous.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from linewatch.config import ConfigError

from ..errors import LinkError  # noqa: F401

log = logging.getLogger(__name__)

_ID_RE = re.compile(r"[1-9][0-9]{0,17}\Z")
_EXP_RE = re.compile(r"[0-9]{1,12}\Z")
_SIG_RE = re.compile(r"[0-9a-f]{64}\Z")
MAX_RECIPIENT = 320
MIN_SECRET = 16


def load_secret(path: str | Path, *, create: bool = True) -> bytes:
    """The key in ``path`` (its text, stripped, as UTF-8 bytes: the same string an operator is
    given to check webhook signatures). A missing file is created, mode 0600, holding 32
    random bytes written as 64 hex digits."""
    p = Path(path)
    if create and not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # made by another process meanwhile: read theirs
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
            log.info("made a new notify secret in %s", p)
    try:
        text = p.read_text(encoding="utf-8").strip()
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"[notify]: secret file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"[notify]: secret file {p} cannot be read: {getattr(e, 'strerror', None) or e}") from None
    if len(text) < MIN_SECRET:
        raise ConfigError(f"[notify]: secret file {p} holds fewer than {MIN_SECRET} characters; delete it and a "
                          f"random one is made")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("secret file %s can be read by other users (chmod 600 %s)", p, p)
    return text.encode()


def sign(secret: bytes, incident_id: int, recipient: str, expires: int) -> str:
    msg = f"{incident_id}:{recipient}:{expires}".encode("utf-8", "surrogatepass")
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


class Links:
    def __init__(self, secret: bytes, public_url: str, days: float = 7):
        self.secret = secret
        self.public_url = public_url.rstrip("/")
        self.valid_s = days * 86400

    def make(self, incident_id: int, recipient: str, now: float) -> str:
        expires = int(now + self.valid_s)
        s = sign(self.secret, incident_id, recipient, expires)
        return (f"{self.public_url}/ack/{int(incident_id)}?r={quote(recipient, safe='@')}"
                f"&e={expires}&s={s}")

    def verify(self, incident_id: object, recipient: object, expires: object, sig: object, now: float) -> str:
        """The recipient the link was made for, or LinkError(reason)."""
        if not all(isinstance(x, str) for x in (incident_id, recipient, expires, sig)):
            raise LinkError("malformed", "missing part")
        assert isinstance(incident_id, str) and isinstance(recipient, str)
        assert isinstance(expires, str) and isinstance(sig, str)
        if not _ID_RE.match(incident_id):
            raise LinkError("malformed", "incident id")
        if not recipient or len(recipient) > MAX_RECIPIENT:
            raise LinkError("malformed", "recipient")
        if not _EXP_RE.match(expires):
            raise LinkError("malformed", "expiry")
        if not _SIG_RE.match(sig):
            raise LinkError("malformed", "signature")
        want = sign(self.secret, int(incident_id), recipient, int(expires))
        if not hmac.compare_digest(want, sig):
            raise LinkError("forged", "signature does not match")
        if int(expires) <= now:
            raise LinkError("expired", f"expired at {expires}")
        return recipient

    def verify_query(self, incident_id: object, query: object, now: float) -> str:
        """Verify the query string of a link (``r=..&e=..&s=..``) or of a posted form."""
        if not isinstance(query, str) or len(query) > 4096:
            raise LinkError("malformed", "query")
        try:
            q = parse_qs(query, keep_blank_values=True, strict_parsing=False, errors="strict",
                         max_num_fields=20)
        except (ValueError, UnicodeError):
            raise LinkError("malformed", "query") from None
        return self.verify_fields(incident_id, q, now)

    def verify_fields(self, incident_id: object, fields: dict[str, list[str]], now: float) -> str:
        vals = []
        for k in ("r", "e", "s"):
            v = fields.get(k)
            if not v or len(v) != 1:
                raise LinkError("malformed", f"{k} missing or repeated")
            vals.append(v[0])
        return self.verify(incident_id, vals[0], vals[1], vals[2], now)

    def verify_url(self, url: str, now: float) -> tuple[int, str]:
        """(incident id, recipient) of a whole link."""
        try:
            parts = urlsplit(url)
        except ValueError:
            raise LinkError("malformed", "url") from None
        m = re.search(r"/ack/([^/]*)\Z", parts.path)
        if not m:
            raise LinkError("malformed", "path")
        who = self.verify_query(m.group(1), parts.query, now)
        return int(m.group(1)), who


def link_identity(channel: str, recipient: str) -> str:
    """Who a link is made for: the e-mail address, or, for a webhook or chat (whose URLs may
    hold tokens, not to be copied into links and logs), the channel and a short hash."""
    if channel == "email":
        return recipient
    h = hashlib.sha256(recipient.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    if channel == "webhook":
        try:
            host = urlsplit(recipient).hostname or "?"
        except ValueError:
            host = "?"
        return f"webhook:{host}:{h}"
    scheme = recipient.split("://", 1)[0] if "://" in recipient else "chat"
    return f"chat:{scheme[:20]}:{h}"

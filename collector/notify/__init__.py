"""Notices to telecom operators and the IT office: e-mail, signed webhooks, chat (Apprise),
signed acknowledgement links. See sender.Notifier (the loop) and config.EXAMPLE ([notify])."""
from __future__ import annotations

from .config import HttpConfig, NotifyConfig, parse_http, parse_notify
from .links import LinkError, Links, load_secret
from .sender import Notifier

__all__ = ["Notifier", "NotifyConfig", "HttpConfig", "parse_notify", "parse_http", "Links", "LinkError",
           "load_secret"]

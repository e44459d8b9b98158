"""Chat notices through Apprise (https://github.com/caronc/apprise): one short text to any of
the services it knows, e.g. ``tgram://BOT_TOKEN/CHAT_ID`` (Telegram), ``mailto://``,
``json://host/path`` (a plain JSON POST). Apprise is imported only when a chat notice is sent.
"""
from __future__ import annotations

import logging

from ..errors import ChatError  # noqa: F401
from .message import Item, Message
from .text import clean, fmt_time_short, kind_name, kind_phrase, line_label, site_label, t, where, event_word

#: incidents listed in one chat message (a chat is read on a phone)
MAX_LINES = 15
_ICON = {"opened": "⚠️", "escalated": "⏫", "resolved": "✅", "opened_resolved": "✅", "refined": "ℹ️",
         "digest": "📋"}


def _line(item: Item, lang: str) -> str:
    inc = item.inc
    parts = [site_label(inc), line_label(inc), kind_name(inc.get("kind"), lang),
             f"{t('f_since', lang).lower()} {fmt_time_short(inc.get('opened_at'))}"]
    s = " — ".join(p for p in parts if p)
    if item.event != "opened":
        s += f" [{event_word(item.event, lang)}]"
    return s


def title(msg: Message) -> str:
    from .email import subject
    return subject(msg).removeprefix("[linewatch] ")


def render(msg: Message) -> str:
    lang = msg.lang
    if len(msg.items) == 1:
        it = msg.items[0]
        inc = it.inc
        head = (f"{_ICON.get(it.event, '')} "
                f"{t('incident_head', lang, id=it.incident_id, kind=kind_name(inc.get('kind'), lang), event=event_word(it.event, lang))}"
                if it.incident_id is not None else t("intro_digest", lang))
        lines = [head.strip(), where(inc), f"{t('f_opened', lang)}: {fmt_time_short(inc.get('opened_at'))}"]
        if inc.get("resolved_at") is not None:
            lines.append(f"{t('f_resolved', lang)}: {fmt_time_short(inc.get('resolved_at'))}")
        if it.ack_url:
            lines.append(t("chat_ack", lang, url=it.ack_url))
        return "\n".join(ln for ln in lines if ln)
    kinds = {str(i.inc.get("kind")) for i in msg.items}
    isps = {clean(i.inc.get("isp"), 40) for i in msg.items}
    n_sites = len(msg.sites()) or len(msg.items)
    if len(kinds) == 1 and len(isps) == 1 and "" not in isps:
        head = t("subj_group_same", lang, n=n_sites, isp=isps.pop(), phrase=kind_phrase(kinds.pop(), lang))
        head = head.removeprefix("[linewatch] ") + ":"
    else:
        head = t("chat_group_head", lang, n=len(msg.items))
    lines = [f"{_ICON.get(msg.event, '⚠️')} {head}"]
    for it in msg.items[:MAX_LINES]:
        lines.append(f"• #{it.incident_id} {_line(it, lang)}")
    if len(msg.items) > MAX_LINES:
        lines.append(t("and_more", lang, n=len(msg.items) - MAX_LINES))
    return "\n".join(lines)


def send(url: str, msg: Message, timeout_s: float) -> str:
    """Send through Apprise; returns the message key, raises ChatError when not delivered."""
    try:
        import apprise
    except ImportError:  # pragma: no cover - a collector installed without [collector]
        raise ChatError("chat notices need the apprise package: pip install 'linewatch[collector]'") from None
    a = apprise.Apprise()
    if not a.add(url):
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        raise ChatError(f"not an Apprise URL Apprise knows ({clean(scheme, 20)}://...)")
    with apprise.LogCapture(level=logging.WARNING) as out:
        ok = a.notify(body=render(msg), title=title(msg), body_format=apprise.NotifyFormat.TEXT)
    if not ok:
        logs = out.getvalue().strip().splitlines() if hasattr(out, "getvalue") else []
        raise ChatError("chat not delivered" + (f": {clean(logs[-1], 300)}" if logs else ""))
    return msg.key

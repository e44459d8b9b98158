"""E-mail notices: plain text with a simple HTML alternative, the evidence as a table and as
a CSV attachment (UTF-8 with BOM, so Excel shows the Vietnamese right), sent with smtplib.

The Message-ID is made from the notice ids (``<notice-12-13-14@linewatch>``): the same
notices sent again (after a crash between sending and recording it) carry the same id, so
a mail system or a person can tell it is a resend.
"""
from __future__ import annotations

import csv
import html
import io
import json
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from linewatch import table as text_table

from .config import NotifyConfig
from .message import Item, Message
from .text import (EVIDENCE_COLUMNS, SUMMARY_LABELS, VN_TZ, cause_name, clean, event_word, evidence_cell,
                   fmt_date, fmt_duration, fmt_time, fmt_time_short, fmt_value, iso_vn, kind_name, kind_phrase,
                   line_label, site_label, state_name, t, where)

#: evidence rows shown in the text/HTML table of one incident (the CSV has all of them)
TABLE_ROWS = 20
#: incidents shown as full blocks; more than this are listed one a line
FULL_BLOCKS = 3
_CSV_FIRST = ("incident_id", "at", "at_vn", "kind", "ok", "error_code", "target", "download_mbps", "upload_mbps",
              "rtt_avg_ms", "loss_pct", "state", "pos")
_SUBJECT_KEYS = {"opened": "subj_one", "resolved": "subj_resolved", "escalated": "subj_escalated",
                 "refined": "subj_refined", "opened_resolved": "subj_opened_resolved"}


def message_id(msg: Message) -> str:
    return f"<{msg.key}@linewatch>"


# -- wording ---------------------------------------------------------------------------
def subject(msg: Message) -> str:
    lang = msg.lang
    items = msg.items
    if len(items) == 1:
        it = items[0]
        if it.event == "digest" or it.incident_id is None:
            return clean(t("subj_digest", lang, date=fmt_date(it.notices[-1].created_at)), 300)
        return clean(t(_SUBJECT_KEYS.get(it.event, "subj_one"), lang, id=it.incident_id,
                       kind=kind_name(it.inc.get("kind"), lang), where=where(it.inc)), 300)
    kinds = {str(i.inc.get("kind")) for i in items}
    isps = {clean(i.inc.get("isp"), 40) for i in items}
    n_sites = len(msg.sites()) or len(items)
    if len(kinds) == 1 and len(isps) == 1 and "" not in isps:
        s = t("subj_group_same", lang, n=n_sites, isp=isps.pop(), phrase=kind_phrase(kinds.pop(), lang))
    elif len(kinds) == 1:
        s = t("subj_group_kind", lang, n=n_sites, kind=kind_name(kinds.pop(), lang))
    else:
        s = t("subj_group", lang, n=len(items), sites=n_sites)
    ev = msg.event
    if ev in ("resolved", "opened_resolved"):
        s += t("group_resolved_suffix", lang)
    elif ev == "escalated":
        s += t("group_escalated_suffix", lang)
    return clean(s, 300)


def _intro(msg: Message) -> str:
    lang = msg.lang
    if len(msg.items) > 1:
        return t("intro_group", lang, n=len(msg.items), sites=len(msg.sites()) or len(msg.items))
    ev = msg.items[0].event if msg.items else "opened"
    return t(f"intro_{ev}" if ev in ("opened", "resolved", "escalated", "refined", "opened_resolved", "digest")
             else "intro_opened", lang)


def _greeting(msg: Message) -> str:
    name = clean(msg.contact.get("name"), 120)
    return t("greeting", msg.lang, name=name) if name else t("greeting_anon", msg.lang)


def incident_fields(item: Item, lang: str) -> list[tuple[str, str]]:
    """(label, value) lines describing one incident."""
    inc = item.inc
    out: list[tuple[str, str]] = []
    site = site_label(inc)
    if inc.get("province"):
        site += f", {t('f_province', lang).lower()} {clean(inc.get('province'), 20)}"
    out.append((t("f_site", lang), site))
    if line_label(inc):
        lk = clean(inc.get("line_kind"), 20)
        out.append((t("f_line", lang), line_label(inc) + (f" — {lk}" if lk else "")))
    if inc.get("target"):
        out.append((t("f_target", lang), clean(inc.get("target"), 200)))
    if inc.get("cause"):
        out.append((t("f_cause", lang), cause_name(inc.get("cause"), lang)))
    if inc.get("state"):
        out.append((t("f_state", lang), state_name(inc.get("state"), lang)))
    out.append((t("f_opened", lang), fmt_time(inc.get("opened_at"), lang)))
    if inc.get("detected_at") is not None and inc.get("detected_at") != inc.get("opened_at"):
        out.append((t("f_detected", lang), fmt_time(inc.get("detected_at"), lang)))
    if inc.get("resolved_at") is not None:
        out.append((t("f_resolved", lang), fmt_time(inc.get("resolved_at"), lang)))
        try:
            dur = float(inc["resolved_at"]) - float(inc["opened_at"])
            out.append((t("f_duration", lang), fmt_duration(dur, lang)))
        except (KeyError, TypeError, ValueError):
            pass
    if inc.get("acked_at") is not None:
        out.append((t("f_acked", lang), t("acked_by", lang, by=clean(inc.get("acked_by"), 120),
                                          at=fmt_time(inc.get("acked_at"), lang))))
    esc = inc.get("escalation")
    if isinstance(esc, int) and not isinstance(esc, bool) and esc > 0:
        out.append((t("f_escalation", lang), str(esc)))
    if inc.get("late") is True:
        out.append((t("f_late", lang), t("late_note", lang)))
    return [(k, v) for k, v in out if v]


def summary_fields(item: Item, lang: str) -> list[tuple[str, str]]:
    labels = SUMMARY_LABELS["en" if lang == "en" else "vi"]
    out = []
    s = item.summary
    for key, (label, unit) in labels.items():
        if key in s and s[key] is not None and not isinstance(s[key], (dict, list)):
            out.append((label, fmt_value(s[key], unit, lang)))
    sites = s.get("sites")
    if isinstance(sites, list) and sites:
        shown = ", ".join(clean(x, 40) for x in sites[:30])
        out.append((t("f_site", lang), shown + (f" … (+{len(sites) - 30})" if len(sites) > 30 else "")))
    return [(k, v) for k, v in out if v]


def evidence_columns(rows: list[dict[str, Any]]) -> list[str]:
    present = set().union(*(r.keys() for r in rows)) if rows else set()
    return [k for k in EVIDENCE_COLUMNS["vi"] if k in present]


def evidence_table(rows: list[dict[str, Any]], lang: str) -> tuple[list[str], list[list[str]]]:
    cols = evidence_columns(rows)
    heads = [EVIDENCE_COLUMNS["en" if lang == "en" else "vi"][c] for c in cols]
    body = []
    for r in rows[:TABLE_ROWS]:
        cells = []
        for c in cols:
            v = evidence_cell(c, r.get(c), lang)
            if c == "ok" and r.get("ok") is False and r.get("error_code"):
                v += f" ({clean(r.get('error_code'), 40)})"
            cells.append(v)
        body.append(cells)
    return heads, body


def _item_head(item: Item, lang: str) -> str:
    if item.incident_id is None:
        return t("intro_digest", lang)
    return t("incident_head", lang, id=item.incident_id, kind=kind_name(item.inc.get("kind"), lang),
             event=event_word(item.event, lang))


def _compact(item: Item, lang: str) -> list[str]:
    """site, line, kind, since — one incident of a long list."""
    inc = item.inc
    return [site_label(inc), line_label(inc), kind_name(inc.get("kind"), lang),
            fmt_time_short(inc.get("opened_at")), event_word(item.event, lang)]


def digest_rows(item: Item, lang: str) -> tuple[list[str], list[list[str]]]:
    """The daily digest's incidents: one row each (the digest body's ``incidents``)."""
    incs = item.body.get("incidents")
    incs = [i for i in incs if isinstance(i, dict)] if isinstance(incs, list) else []
    heads = ["#", t("f_site", lang), t("f_line", lang), t("f_kind", lang), t("f_since", lang),
             "Trạng thái" if lang == "vi" else "State"]
    rows = [[str(i.get("id", "")), site_label(i), line_label(i), kind_name(i.get("kind"), lang),
             fmt_time_short(i.get("opened_at")), state_name(i.get("state"), lang)] for i in incs]
    return heads, rows


# -- rendering ----------------------------------------------------------------------------
def render_text(msg: Message, ack_days: float = 7) -> str:
    lang = msg.lang
    lines = [_greeting(msg), "", _intro(msg), ""]
    full = len(msg.items) <= FULL_BLOCKS
    if not full:
        heads = ["#", t("f_site", lang), t("f_line", lang), t("f_kind", lang), t("f_since", lang), t("f_event", lang)]
        rows = [[str(i.incident_id or "")] + _compact(i, lang) for i in msg.items]
        lines += text_table.lines(heads, rows) + [""]
    for item in msg.items:
        if item.incident_id is None and item.event == "digest":
            heads, rows = digest_rows(item, lang)
            lines += [_item_head(item, lang)] + text_table.lines(heads, rows) + [""]
            continue
        if full:
            lines.append(_item_head(item, lang))
            lines += [f"  {k}: {v}" for k, v in incident_fields(item, lang)]
            summ = summary_fields(item, lang)
            if summ:
                lines.append(f"  {t('summary_head', lang)}:")
                lines += [f"    {k}: {v}" for k, v in summ]
        if item.ack_url:
            lines.append(("  " if full else "") + t("ack_line", lang, id=item.incident_id, url=item.ack_url))
        if full:
            ev = item.evidence
            lines += ["", "  " + t("evidence_head", lang)]
            if ev:
                heads, rows = evidence_table(ev, lang)
                lines += ["  " + ln for ln in text_table.lines(heads, rows)]
                if len(ev) > TABLE_ROWS:
                    lines.append("  " + t("evidence_more", lang, n=len(ev) - TABLE_ROWS))
            else:
                lines.append("  " + t("evidence_none", lang))
            lines.append("")
    if any(i.ack_url for i in msg.items):
        lines += [t("ack_hint", lang, days=int(ack_days) if ack_days == int(ack_days) else ack_days), ""]
    if any(i.evidence for i in msg.items):
        lines += [t("csv_note", lang, file=csv_filename(msg)), ""]
    lines += ["--", t("footer", lang, ids=", ".join(f"#{i}" for i in msg.ids))]
    return "\n".join(lines) + "\n"


def _h(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _html_table(heads: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th style=\"text-align:left;padding:2px 8px;border-bottom:1px solid #999\">{_h(h)}</th>"
                 for h in heads)
    trs = "".join("<tr>" + "".join(f"<td style=\"padding:2px 8px\">{_h(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table style=\"border-collapse:collapse;font-size:90%\"><tr>{th}</tr>{trs}</table>"


def render_html(msg: Message, ack_days: float = 7) -> str:
    lang = msg.lang
    out = [f"<!DOCTYPE html><html lang=\"{_h(lang)}\"><head><meta charset=\"utf-8\"><title>{_h(subject(msg))}"
           f"</title></head><body style=\"font-family:sans-serif\">",
           f"<p>{_h(_greeting(msg))}</p><p>{_h(_intro(msg))}</p>"]
    full = len(msg.items) <= FULL_BLOCKS
    if not full:
        heads = ["#", t("f_site", lang), t("f_line", lang), t("f_kind", lang), t("f_since", lang), t("f_event", lang)]
        rows = []
        for i in msg.items:
            rows.append([str(i.incident_id or "")] + _compact(i, lang))
        out.append(_html_table(heads, rows))
        acks = [i for i in msg.items if i.ack_url]
        if acks:
            out.append("<ul>" + "".join(
                f"<li><a href=\"{_h(i.ack_url)}\">{_h(t('ack_button', lang))} #{_h(i.incident_id)}</a> — "
                f"{_h(site_label(i.inc))}</li>" for i in acks) + "</ul>")
    else:
        for item in msg.items:
            if item.incident_id is None and item.event == "digest":
                out.append(f"<h3>{_h(_item_head(item, lang))}</h3>" + _html_table(*digest_rows(item, lang)))
                continue
            out.append(f"<h3>{_h(_item_head(item, lang))}</h3><table>")
            for k, v in incident_fields(item, lang) + summary_fields(item, lang):
                out.append(f"<tr><td style=\"padding-right:12px;color:#555\">{_h(k)}</td><td>{_h(v)}</td></tr>")
            out.append("</table>")
            if item.ack_url:
                out.append(f"<p><a href=\"{_h(item.ack_url)}\" style=\"display:inline-block;padding:6px 14px;"
                           f"background:#1a5fb4;color:#fff;text-decoration:none;border-radius:4px\">"
                           f"{_h(t('ack_button', lang))} #{_h(item.incident_id)}</a></p>")
            ev = item.evidence
            out.append(f"<p><b>{_h(t('evidence_head', lang))}</b></p>")
            if ev:
                heads, rows = evidence_table(ev, lang)
                out.append(_html_table(heads, rows))
                if len(ev) > TABLE_ROWS:
                    out.append(f"<p>{_h(t('evidence_more', lang, n=len(ev) - TABLE_ROWS))}</p>")
            else:
                out.append(f"<p>{_h(t('evidence_none', lang))}</p>")
    if any(i.ack_url for i in msg.items):
        out.append(f"<p>{_h(t('ack_hint', lang, days=int(ack_days) if ack_days == int(ack_days) else ack_days))}</p>")
    if any(i.evidence for i in msg.items):
        out.append(f"<p>{_h(t('csv_note', lang, file=csv_filename(msg)))}</p>")
    out.append(f"<hr><p style=\"color:#777;font-size:85%\">"
               f"{_h(t('footer', lang, ids=', '.join(f'#{i}' for i in msg.ids)))}</p></body></html>")
    return "\n".join(out)


def csv_filename(msg: Message) -> str:
    return f"linewatch-{msg.key}.csv"


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if isinstance(v, float) else str(v)
    s = json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else str(v)
    s = clean(s, 2000)
    # a cell starting like a formula would be run by a spreadsheet (CSV injection)
    return "'" + s if s[:1] in ("=", "+", "-", "@") else s


def evidence_csv(msg: Message) -> bytes:
    """Every evidence row of every incident in the message: UTF-8 with BOM, comma-separated,
    ``at`` as UTC epoch seconds and ``at_vn`` in Vietnam time."""
    rows = []
    for item in msg.items:
        for r in item.evidence:
            row = dict(r)
            row["incident_id"] = item.incident_id
            row["at_vn"] = iso_vn(r.get("at"))
            rows.append(row)
    keys = set().union(*(r.keys() for r in rows)) if rows else set(_CSV_FIRST)
    cols = [k for k in _CSV_FIRST if k in keys] + sorted(str(k) for k in keys if k not in _CSV_FIRST)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([clean(c, 100) for c in cols])
    for r in rows:
        w.writerow([_csv_cell(r.get(c)) for c in cols])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def render(msg: Message, cfg: NotifyConfig, now: float) -> EmailMessage:
    em = EmailMessage()
    em["Subject"] = subject(msg)
    em["From"] = cfg.from_addr
    em["To"] = msg.recipient
    em["Message-ID"] = message_id(msg)
    em["Date"] = format_datetime(datetime.fromtimestamp(now, VN_TZ))
    em["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    em["Content-Language"] = msg.lang
    em["X-Linewatch-Notices"] = ",".join(map(str, msg.ids))[:900]
    em.set_content(render_text(msg, cfg.ack_link_days))
    em.add_alternative(render_html(msg, cfg.ack_link_days), subtype="html")
    if any(i.evidence for i in msg.items):
        em.add_attachment(evidence_csv(msg), maintype="text", subtype="csv", filename=csv_filename(msg))
    return em


def send(cfg: NotifyConfig, em: EmailMessage, recipient: str) -> None:
    """One SMTP conversation; raises (smtplib.SMTPException, OSError) when it is not accepted."""
    password = cfg.smtp_password()
    ctx = ssl.create_default_context()
    cls = smtplib.SMTP_SSL if cfg.smtp_ssl else smtplib.SMTP
    kw: dict[str, Any] = {"context": ctx} if cfg.smtp_ssl else {}
    with cls(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout_s, **kw) as s:
        if cfg.smtp_starttls:
            s.starttls(context=ctx)
        if cfg.smtp_username:
            s.login(cfg.smtp_username, password or "")
        refused = s.send_message(em, from_addr=cfg.from_addr, to_addrs=[recipient])
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)

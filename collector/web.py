"""The collector's small HTTP endpoint: acknowledgement links and health.

    GET  /healthz                    200 "ok"
    GET  /ack/<id>?r=..&e=..&s=..    a page with the incident and a form; does NOT acknowledge
                                     (mail scanners and link previews open links on their own)
    POST /ack/<id>  r, e, s, by, note   acknowledges (record.acknowledge(..., via="link"))

A link that was altered, made up or has expired gets 403 with the reason in Vietnamese and
English; a valid link for an incident the record does not have gets 404. More GET routes
(/metrics) are added with ``AckServer.add_route``. Everything put into a page is escaped.
Run it behind the office's reverse proxy (TLS) and set [notify] public_url to its address.
"""
from __future__ import annotations

import html
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from linewatch.text import printable

from .notify.config import HttpConfig
from .notify.links import LinkError, Links
from .notify.text import both, fmt_time, kind_name, state_name, t
from .record import NoSuchIncident, RecordUnavailable

log = logging.getLogger(__name__)

MAX_BODY = 16384
_ACK_RE = re.compile(r"/ack/([^/]+)")
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the link's signature is in the address
    "X-Frame-Options": "DENY",         # no acknowledging through a hidden frame
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'",
}


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _h(s: Any) -> str:
    return html.escape(str(s), quote=True)


def page(status: int, title: str, body_html: str, lang: str = "vi") -> Response:
    doc = (f"<!DOCTYPE html><html lang=\"{_h(lang)}\"><head><meta charset=\"utf-8\">"
           f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
           f"<meta name=\"robots\" content=\"noindex\"><title>{_h(title)}</title>"
           f"<style>body{{font-family:sans-serif;max-width:42em;margin:2em auto;padding:0 1em}}"
           f"td{{padding:2px 10px 2px 0;vertical-align:top}} .en{{color:#666}} "
           f"input,textarea{{width:100%;box-sizing:border-box;margin:4px 0 12px}}"
           f"button{{padding:8px 18px;font-size:105%}}</style></head><body>"
           f"<h1>{_h(title)}</h1>{body_html}<hr><p class=\"en\">linewatch</p></body></html>")
    return Response(status, doc.encode("utf-8"))


def refused(reason: str) -> Response:
    key = f"reason_{reason}" if reason in ("forged", "expired", "malformed") else "reason_malformed"
    return page(403, both("page_refused"),
                f"<p>{_h(t(key, 'vi'))}</p><p class=\"en\" lang=\"en\">{_h(t(key, 'en'))}</p>")


def _bad_request(detail: str = "") -> Response:
    return page(400, both("page_bad_request"), f"<p>{_h(detail)}</p>" if detail else "")


def _not_found(detail_vi: str = "", detail_en: str = "") -> Response:
    body = f"<p>{_h(detail_vi)}</p><p class=\"en\" lang=\"en\">{_h(detail_en)}</p>" if detail_vi else ""
    return page(404, both("page_not_found"), body)


class AckServer:
    def __init__(self, record: Any, links: Links, cfg: HttpConfig, *, registry: Any = None,
                 clock: Callable[[], float] = time.time, lang: str = "vi"):
        self.record = record
        self.links = links
        self.cfg = cfg
        self.registry = registry
        self.clock = clock
        self.lang = lang
        self.routes: dict[str, Callable[[], Response]] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life ------------------------------------------------------------------------------
    def add_route(self, path: str, fn: Callable[[], Response]) -> None:
        """Another GET route, e.g. /metrics: ``fn()`` returns a Response."""
        self.routes[path] = fn

    def start(self) -> "AckServer":
        app = self

        class Handler(_Handler):
            pass

        Handler.app = app
        self._httpd = ThreadingHTTPServer((self.cfg.listen, self.cfg.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="linewatch-http", daemon=True)
        self._thread.start()
        log.info("HTTP endpoint on %s:%d", self.cfg.listen, self.port)
        return self

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd else self.cfg.port

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread:
            self._thread.join(5)
            self._thread = None

    # -- routing (no sockets: the handler and the tests call this) ----------------------------------
    def handle(self, method: str, target: str, body: bytes | None = None) -> Response:
        try:
            return self._route(method, target, body)
        except RecordUnavailable as e:
            log.warning("HTTP %s: the record is unavailable: %s", method, e)
            return page(503, "Tạm thời không phục vụ được / Temporarily unavailable",
                        "<p>Vui lòng thử lại sau ít phút.</p><p class=\"en\">Please try again in a few minutes.</p>")

    def _route(self, method: str, target: str, body: bytes | None) -> Response:
        try:
            parts = urlsplit(target)
        except ValueError:
            return _bad_request()
        path = parts.path
        if method in ("GET", "HEAD"):
            if path == "/healthz":
                return Response(200, b"ok\n", "text/plain; charset=utf-8")
            if path in self.routes:
                return self.routes[path]()
        m = _ACK_RE.fullmatch(path)
        if not m:
            return _not_found()
        if method in ("GET", "HEAD"):
            return self._ack_page(m.group(1), parts.query)
        if method == "POST":
            return self._ack_post(m.group(1), body or b"")
        return Response(405, b"method not allowed\n", "text/plain; charset=utf-8", {"Allow": "GET, POST"})

    def _site_name(self, code: str) -> str:
        try:
            site = self.registry.site(code) if self.registry is not None else None
        except Exception:
            site = None
        return f"{site.name} ({code})" if site is not None else code

    def _summary(self, inc: Any) -> str:
        lang = self.lang
        rows = [(t("f_kind", lang), kind_name(inc.kind, lang)),
                (t("f_site", lang), self._site_name(inc.site)),
                (t("f_line", lang), inc.line or ""),
                (t("f_target", lang), inc.target or ""),
                (t("f_opened", lang), fmt_time(inc.opened_at, lang)),
                (t("f_state", lang), state_name(inc.state, lang))]
        return "<table>" + "".join(f"<tr><td>{_h(k)}</td><td>{_h(printable(str(v), 300))}</td></tr>"
                                   for k, v in rows if v) + "</table>"

    def _status_note(self, inc: Any) -> str | None:
        lang = self.lang
        if inc.acked_at is not None:
            return t("page_already", lang, id=inc.id, by=printable(inc.acked_by or "?", 120),
                     at=fmt_time(inc.acked_at, lang))
        if inc.state == "closed":
            return t("page_closed", lang, id=inc.id)
        return None

    def _incident(self, id_str: str) -> Any:
        try:
            return self.record.incident(int(id_str))
        except NoSuchIncident:
            return None

    def _ack_page(self, id_str: str, query: str) -> Response:
        lang = self.lang
        try:
            self.links.verify_query(id_str, query, self.clock())
        except LinkError as e:
            return refused(e.reason)
        inc = self._incident(id_str)
        if inc is None:
            return _not_found(t("page_no_incident", "vi", id=id_str), t("page_no_incident", "en", id=id_str))
        title = t("page_title", lang, id=inc.id)
        note = self._status_note(inc)
        if note:
            return page(200, title, self._summary(inc) + f"<p><b>{_h(note)}</b></p>", lang)
        q = parse_qs(query, keep_blank_values=True)  # verified: r, e, s each once
        hidden = "".join(f"<input type=\"hidden\" name=\"{k}\" value=\"{_h(q[k][0])}\">" for k in ("r", "e", "s"))
        form = (f"<form method=\"post\" action=\"{_h(id_str)}\">{hidden}"
                f"<label>{_h(t('page_name', lang))}<input name=\"by\" maxlength=\"80\" required></label>"
                f"<label>{_h(t('page_note', lang))}<textarea name=\"note\" rows=\"3\" maxlength=\"1000\">"
                f"</textarea></label><button type=\"submit\">{_h(t('ack_button', lang))}</button></form>")
        return page(200, title, self._summary(inc) + form, lang)

    def _ack_post(self, id_str: str, body: bytes) -> Response:
        lang = self.lang
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=20)
        except (ValueError, UnicodeError):
            return _bad_request("form")
        try:
            who = self.links.verify_fields(id_str, fields, self.clock())
        except LinkError as e:
            return refused(e.reason)
        by = printable(" ".join((fields.get("by") or [""])[0].split()), 80)
        note = (fields.get("note") or [""])[0].replace("\x00", "")[:1000]
        by_whom = f"{by} <{who}>" if by else who
        try:
            inc, changed = self.record.acknowledge(int(id_str), by=by_whom, note=note, via="link",
                                                   now=self.clock())
        except NoSuchIncident:
            return _not_found(t("page_no_incident", "vi", id=id_str), t("page_no_incident", "en", id=id_str))
        title = t("page_title", lang, id=inc.id)
        if changed:
            log.info("incident #%d acknowledged by %s via link", inc.id, printable(by_whom))
            msg = t("page_done", lang, id=inc.id, by=printable(inc.acked_by or by_whom, 120),
                    at=fmt_time(inc.acked_at, lang))
        else:
            msg = self._status_note(inc) or t("page_closed", lang, id=inc.id)
        return page(200, title, self._summary(inc) + f"<p><b>{_h(msg)}</b></p>", lang)


class _Handler(BaseHTTPRequestHandler):
    app: AckServer
    server_version = "linewatch"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    timeout = 15  # a client that opens a connection and sends nothing does not hold a thread

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return self._send(Response(411, b"Content-Length required\n", "text/plain; charset=utf-8"))
        try:
            n = int(raw)
        except ValueError:
            n = -1
        if n < 0:
            return self._send(_bad_request("Content-Length"))
        if n > MAX_BODY:
            return self._send(Response(413, b"too large\n", "text/plain; charset=utf-8"))
        self._serve("POST", self.rfile.read(n))

    def _serve(self, method: str, body: bytes | None = None) -> None:
        try:
            resp = self.app.handle(method, self.path, body)
        except Exception:
            log.exception("HTTP %s %s failed", method, printable(self.path, 200))
            resp = page(500, "Lỗi máy chủ / Server error", "")
        self._send(resp, head=method == "HEAD")

    def _send(self, resp: Response, head: bool = False) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for k, v in {**_HEADERS, **resp.headers}.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(resp.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("http %s %s", self.address_string(), printable(format % args, 300))

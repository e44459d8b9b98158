"""The notifier against real services on free ports: an aiosmtpd SMTP server, an HTTP
receiver (webhooks and Apprise's json://), and a real SQLite record."""
from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import hmac
import io
import json
import re
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd import controller as aiosmtpd_controller

from linewatch.collector.notify import text as T
from linewatch.collector.notify.config import EXAMPLE, NotifyConfig, parse_http, parse_notify
from linewatch.collector.notify.sender import Notifier, backoff
from linewatch.collector.notify.webhook import verify_signature
from linewatch.collector.record import Incident, open_record
from linewatch.config import ConfigError, Section

from conftest import free_port, wait_for


T0 = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC, 18:06:40 in Vietnam
NOC = "noc@vnpt.example"


# ------------------------------------------------------------------ real services
class Mailbox:
    def __init__(self):
        self.envelopes: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
                               or envelope.content))
        return "250 OK"

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(c, policy=email.policy.default) for _, _, c in self.envelopes]


class SmtpServer:
    def __init__(self, port: int):
        self.port = port
        self.box = Mailbox()
        self.ctl = None

    def start(self) -> "SmtpServer":
        self.ctl = aiosmtpd_controller.Controller(self.box, hostname="127.0.0.1", port=self.port)
        self.ctl.start()
        return self

    def stop(self) -> None:
        if self.ctl:
            self.ctl.stop()
            self.ctl = None


@pytest.fixture
def smtp():
    s = SmtpServer(free_port()).start()
    yield s
    s.stop()


class Receiver:
    """An HTTP server that records every request and answers ``status``."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        rec = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                rec.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(rec.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def rec(tmp_path):
    r = open_record(tmp_path / "r.sqlite3")
    yield r
    r.close()


def notify_cfg(tmp_path: Path, smtp_port: int, **kw) -> NotifyConfig:
    base = dict(smtp_host="127.0.0.1", smtp_port=smtp_port, from_addr="linewatch@tinh.example",
                public_url="https://linewatch.tinh.example", secret_file=tmp_path / "notify.secret",
                webhook_secret_file=tmp_path / "notify.secret", timeout_s=5)
    base.update(kw)
    return NotifyConfig(**base)


# ------------------------------------------------------------------ incidents and notices
def open_incident(rec, site: str, *, kind: str = "line_down", isp: str = "VNPT", line: str = "vnpt-fiber",
                  at: float = T0, name: str | None = None, target: str = "1.1.1.1", evidence=None) -> dict:
    """An open incident in the record; returns the notice body the rules would queue."""
    evidence = evidence if evidence is not None else [
        {"at": at - 120, "kind": "latency", "ok": False, "error_code": "timeout", "target": target,
         "rtt_avg_ms": None, "loss_pct": 100.0, "pos": 1},
        {"at": at - 60, "kind": "bandwidth", "ok": True, "target": "speed.vnpt.example", "download_mbps": 12.5,
         "upload_mbps": 40.5, "pos": 2},
    ]
    summary = {"contracted_down_mbps": 100, "measured_down_mbps": 12.5, "min_speed_ratio": 0.8,
               "threshold_down_mbps": 80, "down_s": 3900}
    with rec.incident_tx(at) as tx:
        inc = tx.open(Incident(id=0, key=f"{kind}/{site}/{line}/-", kind=kind, cause="line", route="operator",
                               site=site, line=line, target=target, state="open", opened_at=at - 120,
                               detected_at=at, summary=summary, evidence=evidence))
    return {"incident": {"id": inc.id, "kind": kind, "cause": "line", "route": "operator", "site": site,
                         "site_name": name or f"UBND xã Số {site}", "province": "52", "line": line, "isp": isp,
                         "line_kind": "internet", "target": target, "state": "open", "opened_at": at - 120,
                         "detected_at": at, "resolved_at": None, "closed_at": None, "acked_at": None,
                         "acked_by": None, "escalation": 0, "late": False, "maintenance_id": None},
            "summary": summary, "evidence": evidence, "contact": {"name": "NOC VNPT Tỉnh", "email": NOC}}


def enqueue(rec, body: dict, event: str = "opened", channel: str = "email", recipient: str = NOC, *,
            at: float = T0, wait: float = 0, expires: float = 72 * 3600, state: str = "pending",
            route: str = "operator") -> None:
    iid = body["incident"]["id"]
    with rec.incident_tx(at) as tx:
        assert tx.enqueue(f"{event}/{iid}/{channel}/{recipient}", iid, event, channel, recipient, route, body,
                          not_before=at + wait, expires_at=at + expires, state=state)


def notice_of(rec, incident_id: int):
    (n,) = rec.notices(incident_id=incident_id)
    return n


def plain(msg) -> str:
    return msg.get_body(("plain",)).get_content()


def html_part(msg) -> str:
    return msg.get_body(("html",)).get_content()


def csv_rows(msg) -> list[dict]:
    (att,) = list(msg.iter_attachments())
    assert att.get_content_type() == "text/csv"
    raw = att.get_payload(decode=True)
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM for Excel"
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


# ------------------------------------------------------------------ e-mail
def test_opened_notice_is_one_vietnamese_email_with_evidence_and_csv(rec, smtp, tmp_path):
    body = open_incident(rec, "21583", name="UBND phường Thử Nghiệm",
                         evidence=[{"at": T0 - 120, "kind": "latency", "ok": False, "error_code": "timeout",
                                    "target": "<script>alert(1)</script>", "loss_pct": 100.0, "pos": 1},
                                   {"at": T0 - 60, "kind": "bandwidth", "ok": True, "target": "=HYPERLINK(\"x\")",
                                    "download_mbps": 12.5, "upload_mbps": 40.5, "pos": 2}])
    iid = body["incident"]["id"]
    enqueue(rec, body)
    n = Notifier(rec, None, notify_cfg(tmp_path, smtp.port))
    res = n.run_once(T0 + 1)
    assert (res.messages, res.sent, res.failed) == (1, 1, 0)
    (env,) = smtp.box.envelopes
    assert env[0] == "linewatch@tinh.example" and env[1] == [NOC]
    (msg,) = smtp.box.messages()
    assert msg["Subject"] == (f"[linewatch] Sự cố #{iid}: Mất kết nối đường truyền — UBND phường Thử Nghiệm "
                              f"(21583), vnpt-fiber (VNPT)")
    nid = notice_of(rec, iid).id
    assert msg["Message-ID"] == f"<notice-{nid}@linewatch>"
    text = plain(msg)
    assert "Kính gửi NOC VNPT Tỉnh," in text
    assert "Tốc độ tải xuống cam kết: 100 Mbit/s" in text and "Tốc độ tải xuống đo được: 12,5 Mbit/s" in text
    assert "Thời gian gián đoạn: 1 giờ 5 phút" in text
    assert "Bắt đầu: 18:04:40 ngày 18/11/2026" in text  # T0-120 in Vietnam time
    # the evidence table: header and both rows, decimal commas
    assert re.search(r"Thời điểm\s+Loại đo\s+Kết quả\s+Đích đo\s+Tải xuống\s+Tải lên", text)
    assert "lỗi (timeout)" in text and "12,5 Mbit/s" in text and "40,5 Mbit/s" in text
    # the acknowledgement link verifies, for this recipient and incident
    url = re.search(r"https://linewatch\.tinh\.example/ack/\S+", text).group(0)
    assert n.links.verify_url(url, T0 + 2) == (iid, NOC)
    h = html_part(msg)
    assert "<script>alert" not in h and "&lt;script&gt;alert(1)&lt;/script&gt;" in h
    assert "Xác nhận đã tiếp nhận" in h
    rows = csv_rows(msg)
    assert [r["kind"] for r in rows] == ["latency", "bandwidth"]
    assert rows[0]["incident_id"] == str(iid) and rows[0]["ok"] == "false" and rows[0]["error_code"] == "timeout"
    assert float(rows[1]["download_mbps"]) == 12.5 and rows[1]["at_vn"] == "2026-11-18T18:05:40+07:00"
    assert rows[1]["target"] == "'=HYPERLINK(\"x\")"  # no formula runs in Excel
    # recorded: sent once, as that message id; the incident knows it was notified
    nt = notice_of(rec, iid)
    assert nt.state == "sent" and nt.sent_as == msg["Message-ID"] and nt.attempts == 1
    assert rec.incident(iid).notified_at == T0 + 1
    assert n.run_once(T0 + 60).claimed == 0 and len(smtp.box.envelopes) == 1
    assert n.metrics()["sent"]["email"] == 1


def test_twenty_notices_to_one_recipient_make_one_grouped_email(rec, smtp, tmp_path):
    bodies = [open_incident(rec, str(22000 + i), at=T0 + i) for i in range(20)]
    for i, b in enumerate(bodies):
        enqueue(rec, b, at=T0 + i, wait=10)
    n = Notifier(rec, None, notify_cfg(tmp_path, smtp.port))
    assert n.run_once(T0 + 5).claimed == 0  # nobody due yet (group wait)
    res = n.run_once(T0 + 10)  # the first is due: all 20 of the recipient come along
    assert (res.claimed, res.messages, res.sent) == (20, 1, 20)
    (msg,) = smtp.box.messages()
    assert msg["Subject"] == "[linewatch] 20 điểm của VNPT mất kết nối"
    text = plain(msg)
    for i in range(20):
        assert f"UBND xã Số {22000 + i} ({22000 + i})" in text
        assert f"/ack/{bodies[i]['incident']['id']}?" in text
    assert "linewatch gửi Quý đơn vị 20 thông báo sự cố (20 điểm đo)" in text
    rows = csv_rows(msg)
    assert len(rows) == 40 and {r["incident_id"] for r in rows} == {str(b["incident"]["id"]) for b in bodies}
    sent = rec.notices(state="sent")
    assert len(sent) == 20 and len({s.sent_as for s in sent}) == 1
    assert rec.sent_since("email", NOC, T0) == 1


def test_smtp_down_keeps_the_notice_then_delivers_it_exactly_once(rec, tmp_path):
    port = free_port()
    body = open_incident(rec, "21583")
    iid = body["incident"]["id"]
    enqueue(rec, body)
    n = Notifier(rec, None, notify_cfg(tmp_path, port, timeout_s=2))
    res = n.run_once(T0)
    assert (res.sent, res.failed) == (0, 1)
    nt = notice_of(rec, iid)
    assert nt.state == "pending" and nt.attempts == 1 and nt.last_error and nt.not_before == T0 + 30
    assert n.run_once(T0 + 10).claimed == 0  # backing off
    assert n.run_once(T0 + 30).failed == 1
    assert notice_of(rec, iid).not_before == T0 + 30 + 60  # doubling
    server = SmtpServer(port).start()
    try:
        for k in range(6):
            n.run_once(T0 + 90 + 50 * k)
        assert len(server.box.envelopes) == 1
        nt = notice_of(rec, iid)
        assert nt.state == "sent" and nt.attempts == 3 and nt.sent_at == T0 + 90
        assert n.metrics()["failed"]["email"] == 2 and n.metrics()["sent"]["email"] == 1
    finally:
        server.stop()
    assert [backoff(a) for a in range(7)] == [30, 60, 120, 240, 480, 900, 900]


def test_opened_and_resolved_in_one_group_are_one_message(rec, smtp, tmp_path):
    body = open_incident(rec, "21583")
    iid = body["incident"]["id"]
    enqueue(rec, body, wait=10)
    resolved = json.loads(json.dumps(body))
    resolved["incident"].update(state="closed", resolved_at=T0 + 300, closed_at=T0 + 600)
    enqueue(rec, resolved, event="resolved", at=T0 + 5, wait=10)
    n = Notifier(rec, None, notify_cfg(tmp_path, smtp.port))
    assert n.run_once(T0 + 20).messages == 1
    (msg,) = smtp.box.messages()
    assert msg["Subject"].startswith(f"[linewatch] Sự cố #{iid} đã xảy ra và đã khắc phục: Mất kết nối")
    text = plain(msg)
    assert "[đã xảy ra và đã khắc phục]" in text and "/ack/" not in text  # nothing to acknowledge
    assert all(x.state == "sent" for x in rec.notices(incident_id=iid))


def test_no_ack_link_once_acknowledged_or_to_the_it_office(rec, smtp, tmp_path):
    a = open_incident(rec, "21583")
    b = open_incident(rec, "21584")
    rec.acknowledge(a["incident"]["id"], by="NOC", now=T0)
    enqueue(rec, a)
    enqueue(rec, b, recipient="cntt@tinh.example", route="it_office")
    Notifier(rec, None, notify_cfg(tmp_path, smtp.port)).run_once(T0 + 1)
    assert len(smtp.box.envelopes) == 2
    assert all("/ack/" not in plain(m) for m in smtp.box.messages())


def test_expired_and_suppressed_notices_are_never_sent(rec, smtp, tmp_path):
    old = open_incident(rec, "21583")
    enqueue(rec, old, expires=100)
    late = open_incident(rec, "21584")
    enqueue(rec, late, expires=20, recipient="other@x.example")
    quiet = open_incident(rec, "21585")
    enqueue(rec, quiet, state="suppressed", recipient="third@x.example")
    down = free_port()
    n = Notifier(rec, None, notify_cfg(tmp_path, down, timeout_s=2))
    assert n.run_once(T0).failed == 2  # both tried, server down; the suppressed one not
    n.cfg = notify_cfg(tmp_path, smtp.port)  # the server is back, after both expired
    assert n.run_once(T0 + 200).claimed == 0
    assert smtp.box.envelopes == []
    assert notice_of(rec, old["incident"]["id"]).state == "expired"
    assert notice_of(rec, late["incident"]["id"]).state == "expired"
    assert notice_of(rec, quiet["incident"]["id"]).state == "suppressed"


def test_rate_limit_defers_and_later_sends_the_rest_grouped(rec, smtp, tmp_path):
    n = Notifier(rec, None, notify_cfg(tmp_path, smtp.port, max_per_hour=2))
    starts = [T0 + 600 * k for k in range(5)]
    ids = []
    sent_at: list[float] = []
    t = T0
    while t <= T0 + 3 * 3600:
        for s in starts:
            if s == t:
                b = open_incident(rec, str(23000 + len(ids)), at=t)
                ids.append(b["incident"]["id"])
                enqueue(rec, b, at=t, wait=10)
        before = len(smtp.box.envelopes)
        n.run_once(t)
        sent_at += [t] * (len(smtp.box.envelopes) - before)
        t += 60
    msgs = smtp.box.messages()
    assert len(msgs) == 3, sent_at
    for a in sent_at:  # never more than 2 messages in any hour
        assert sum(1 for b in sent_at if a <= b < a + 3600) <= 2
    assert sent_at[0] == T0 + 60 and sent_at[1] == T0 + 660 and sent_at[2] >= T0 + 3600
    assert msgs[2]["Subject"] == "[linewatch] 3 điểm của VNPT mất kết nối"
    for iid in ids[2:]:
        assert f"Sự cố #{iid}" not in msgs[2]["Subject"] and f"/ack/{iid}?" in plain(msgs[2])
    assert all(x.state == "sent" for x in rec.notices())
    assert n.metrics()["deferred"]["email"] >= 3


# ------------------------------------------------------------------ webhook and chat
def test_webhook_is_signed_and_a_500_means_retry(rec, receiver, tmp_path):
    body = open_incident(rec, "21583")
    iid = body["incident"]["id"]
    url = receiver.url("/hooks/linewatch")
    enqueue(rec, body, channel="webhook", recipient=url)
    cfg = notify_cfg(tmp_path, free_port())
    n = Notifier(rec, None, cfg)
    secret = (tmp_path / "notify.secret").read_text().strip().encode()
    receiver.status = 500
    assert n.run_once(T0).failed == 1
    nt = notice_of(rec, iid)
    assert nt.state == "pending" and "HTTP 500" in nt.last_error
    receiver.status = 204
    assert n.run_once(T0 + 30).sent == 1
    assert len(receiver.requests) == 2
    first, second = receiver.requests
    assert first["headers"]["X-Linewatch-Delivery"] == second["headers"]["X-Linewatch-Delivery"] == f"notice-{nt.id}"
    raw = second["body"]
    sig = second["headers"]["X-Linewatch-Signature"]
    assert sig == "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
    assert verify_signature(secret, raw, sig) and not verify_signature(secret, raw + b" ", sig)
    assert not verify_signature(b"another secret of some length", raw, sig)
    doc = json.loads(raw)
    assert doc["notice_ids"] == [nt.id] and doc["event"] == "opened"
    assert doc["incidents"][0]["id"] == iid and doc["incidents"][0]["site_name"] == "UBND xã Số 21583"
    assert [e["kind"] for e in doc["evidence"]] == ["latency", "bandwidth"]
    assert all(e["incident_id"] == iid for e in doc["evidence"])
    got_iid, who = n.links.verify_url(doc["ack_url"], T0 + 31)
    assert got_iid == iid and who.startswith("webhook:127.0.0.1:") and "hooks" not in who
    assert notice_of(rec, iid).sent_as == f"notice-{nt.id}"


def test_chat_through_apprise_json(rec, receiver, tmp_path):
    body = open_incident(rec, "21583", name="UBND phường Thử Nghiệm")
    iid = body["incident"]["id"]
    enqueue(rec, body, channel="chat", recipient=receiver.url("/chat", "json"))
    n = Notifier(rec, None, notify_cfg(tmp_path, free_port()))
    assert n.run_once(T0).sent == 1
    (req,) = receiver.requests
    assert req["path"] == "/chat"
    doc = json.loads(req["body"])
    assert f"Sự cố #{iid}: Mất kết nối đường truyền" in doc["message"]
    assert "UBND phường Thử Nghiệm (21583), vnpt-fiber (VNPT)" in doc["message"]
    assert "Xác nhận: https://linewatch.tinh.example/ack/" in doc["message"]
    assert "Mất kết nối đường truyền" in doc["title"]
    # the chat service failing is a retry, with Apprise's reason kept
    b2 = open_incident(rec, "21584")
    enqueue(rec, b2, channel="chat", recipient=receiver.url("/chat2", "json"))
    receiver.status = 500
    assert n.run_once(T0 + 10).failed == 1
    nt = notice_of(rec, b2["incident"]["id"])
    assert nt.state == "pending" and nt.last_error.startswith("chat not delivered")


def test_one_failing_recipient_does_not_stop_the_others(rec, smtp, receiver, tmp_path):
    a = open_incident(rec, "21583")
    enqueue(rec, a, channel="webhook", recipient=f"http://127.0.0.1:{free_port()}/nothing-here")
    b = open_incident(rec, "21584")
    enqueue(rec, b, channel="chat", recipient="notaservice://x")
    c = open_incident(rec, "21585")
    enqueue(rec, c)
    n = Notifier(rec, None, notify_cfg(tmp_path, smtp.port, timeout_s=2))
    res = n.run_once(T0)
    assert (res.sent, res.failed) == (1, 2)
    assert len(smtp.box.envelopes) == 1
    assert "not reached" in notice_of(rec, a["incident"]["id"]).last_error
    assert "Apprise" in notice_of(rec, b["incident"]["id"]).last_error
    m = n.metrics()
    assert m["failed"] == {"webhook": 1, "chat": 1} and m["sent"] == {"email": 1}


def test_run_forever_sends_when_woken(rec, smtp, tmp_path):
    n = Notifier(rec, None, notify_cfg(tmp_path, smtp.port))
    stop = threading.Event()
    th = threading.Thread(target=n.run_forever, args=(stop,), daemon=True)
    th.start()
    try:
        now = time.time()
        b = open_incident(rec, "21583", at=now)
        enqueue(rec, b, at=now)
        n.wake()
        wait_for(lambda: smtp.box.envelopes, 10, "the e-mail")
    finally:
        stop.set()
        n.wake()
        th.join(5)
    assert not th.is_alive()


# ------------------------------------------------------------------ wording and config
def test_vietnamese_formats():
    at = datetime(2026, 11, 23, 7, 5, 9, tzinfo=timezone.utc).timestamp()
    assert T.fmt_time(at) == "14:05:09 ngày 23/11/2026"
    assert T.fmt_time(at, "en") == "14:05:09 on 23/11/2026"
    assert T.fmt_duration(3900) == "1 giờ 5 phút" and T.fmt_duration(45) == "45 giây"
    assert T.fmt_duration(2 * 86400 + 3 * 3600 + 7) == "2 ngày 3 giờ" and T.fmt_duration(3900, "en") == "1 h 5 min"
    assert T.fmt_num(12.5) == "12,5" and T.fmt_num(1250) == "1.250" and T.fmt_num(1234.56, 2) == "1.234,56"
    assert T.fmt_num(12.5, lang="en") == "12.5" and T.fmt_num(100.0) == "100"
    assert T.fmt_value(12.5, "mbps") == "12,5 Mbit/s" and T.fmt_value(0.8, "ratio") == "80 %"
    assert T.kind_name("slow_line") == "Tốc độ thấp hơn cam kết" and T.kind_name("slow_line", "en")
    assert T.kind_name("x\x1b[2Jy") == "x\\x1b[2Jy"  # agent text is made printable
    for lang in T.LANGS:
        assert set(T.KIND_NAMES[lang]) == set(T.KIND_NAMES["vi"]) == set(T.KIND_PHRASES[lang])
    assert T.fmt_time(None) == "" and T.fmt_time(float("nan")) == "" and T.fmt_time(1e300) == ""


def test_notify_config_defaults_and_errors(tmp_path):
    cfg = parse_notify(Section({}, "c.toml [notify]"), tmp_path)
    assert cfg.smtp_port == 25 and cfg.public_url == "http://127.0.0.1:8470" and cfg.max_per_hour == 12
    assert cfg.secret_file == tmp_path / "notify.secret" == cfg.webhook_secret_file and cfg.lang == "vi"
    assert parse_notify(Section({"smtp_ssl": True}, "n"), tmp_path).smtp_port == 465
    assert parse_notify(Section({"smtp_starttls": True}, "n"), tmp_path).smtp_port == 587
    assert parse_notify(Section({"public_url": "https://lw.example/"}, "n"), tmp_path).public_url == \
        "https://lw.example"
    assert parse_http(Section({}, "h")).port == 8470 and not parse_http(Section({"port": 0}, "h")).enabled
    cases = [
        ({"smtp_ssl": True, "smtp_starttls": True}, "n: smtp_ssl and smtp_starttls cannot both be true"),
        ({"smtp_username": "u"}, "n: smtp_username needs smtp_password_file (a file holding only the password)"),
        ({"from_addr": "linewatch"}, "n: from_addr 'linewatch' is not an e-mail address like linewatch@tinh.example"),
        ({"public_url": "linewatch.example"}, "n: public_url 'linewatch.example' must be the address people open"),
        ({"max_per_hour": 0}, "n: max_per_hour must be >= 1, got 0"),
        ({"lang": "fr"}, "n: lang = 'fr' must be one of: vi, en"),
        ({"smtp_prot": 25}, "n: unknown setting(s) smtp_prot (misspelt?)"),
    ]
    for doc, msg in cases:
        with pytest.raises(ConfigError) as e:
            parse_notify(Section(doc, "n"), tmp_path)
        assert str(e.value).startswith(msg), (doc, str(e.value))
    with pytest.raises(ConfigError, match=r"h: port must be <= 65535, got 70000"):
        parse_http(Section({"port": 70000}, "h"))
    # the example block parses as it is and with its settings uncommented
    import tomllib
    doc = tomllib.loads(EXAMPLE)
    parse_notify(Section(doc["notify"], "n"), tmp_path)
    parse_http(Section(doc["http"], "h"))
    uncommented = re.sub(r"^# (\w+ = )", r"\1", EXAMPLE, flags=re.M)
    doc = tomllib.loads(uncommented)
    (tmp_path / "smtp.password").write_text("pw\n")
    cfg = parse_notify(Section(doc["notify"], "n"), tmp_path)
    assert cfg.smtp_username == "linewatch" and cfg.smtp_password() == "pw"
    assert parse_http(Section(doc["http"], "h")).port == 8470
    missing = NotifyConfig(smtp_username="u", smtp_password_file=tmp_path / "nope")
    with pytest.raises(ConfigError, match="smtp_password_file .*nope does not exist"):
        Notifier(None, None, notify_cfg(tmp_path, 25, smtp_username="u", smtp_password_file=tmp_path / "nope"))
    with pytest.raises(ConfigError):
        missing.smtp_password()


def test_webhook_body_is_strict_json_even_with_nan():
    from linewatch.collector.notify.message import build
    from linewatch.collector.notify.webhook import body_bytes
    from linewatch.collector.record import Notice
    body = {"incident": {"id": 7, "kind": "slow_line", "site": "1"}, "summary": {"measured_down_mbps": float("nan")},
            "evidence": [{"at": T0, "download_mbps": float("inf")}], "contact": {}}
    n = Notice(3, "k", 7, "opened", "webhook", "http://x/", "operator", T0, T0, T0 + 99, "pending", 0, None, None,
               None, body)
    doc = json.loads(body_bytes(build("webhook", "http://x/", [n])))
    assert doc["incidents"][0]["summary"]["measured_down_mbps"] is None and doc["evidence"][0]["download_mbps"] is None

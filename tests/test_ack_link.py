"""Signed acknowledgement links and the real AckServer on a free port."""
from __future__ import annotations

import os
import socket
import stat
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linewatch.collector.notify.config import HttpConfig
from linewatch.collector.notify.links import LinkError, Links, link_identity, load_secret, sign
from linewatch.collector.record import Incident, open_record
from linewatch.collector.web import AckServer

SECRET = b"0123456789abcdef0123456789abcdef"
URL = "https://linewatch.tinh.example"
NOC = "noc+52@vnpt.example"


def links() -> Links:
    return Links(SECRET, URL, 7)


def reason(fn, *a) -> str:
    with pytest.raises(LinkError) as e:
        fn(*a)
    return e.value.reason


# ------------------------------------------------------------------ the links
def test_link_round_trip_and_refusals():
    lk = links()
    now = 1_795_000_000.0
    url = lk.make(12, NOC, now)
    assert url.startswith(f"{URL}/ack/12?r=noc%2B52@vnpt.example&e={int(now + 7 * 86400)}&s=")
    assert lk.verify_url(url, now) == (12, NOC)
    assert lk.verify_url(url, now + 7 * 86400 - 1) == (12, NOC)
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    r, e, s = q["r"][0], q["e"][0], q["s"][0]
    flipped = s[:-1] + ("0" if s[-1] != "0" else "1")
    assert reason(lk.verify, "12", r, e, flipped, now) == "forged"
    assert reason(lk.verify_url, url.replace("/ack/12?", "/ack/13?"), now) == "forged"  # another incident
    assert reason(lk.verify, "12", "someone@else.example", e, s, now) == "forged"      # another recipient
    assert reason(lk.verify, "12", r, str(int(e) + 86400), s, now) == "forged"         # a longer life
    assert reason(Links(b"another secret, also 32 bytes!!", URL).verify_url, url, now) == "forged"
    assert reason(lk.verify_url, url, now + 7 * 86400) == "expired"
    assert reason(lk.verify_url, url, now + 30 * 86400) == "expired"
    assert reason(lk.verify_url, url.split("&s=")[0], now) == "malformed"              # cut when copied
    assert reason(lk.verify, "12", r, e, s.upper(), now) == "malformed"
    assert reason(lk.verify, "012", r, e, s, now) == "malformed"
    assert reason(lk.verify, "12", "", e, s, now) == "malformed"
    assert reason(lk.verify_query, "12", f"r={r}&r={r}&e={e}&s={s}", now) == "malformed"  # repeated
    assert reason(lk.verify_url, f"{URL}/nothing", now) == "malformed"
    # the message signed is exactly "{id}:{recipient}:{expires}"
    assert s == sign(SECRET, 12, NOC, int(e))


def test_link_identity_keeps_tokens_out_of_links():
    assert link_identity("email", NOC) == NOC
    w = link_identity("webhook", "https://tickets.vnpt.example/hook?token=SECRET")
    c = link_identity("chat", "tgram://123456:ABCDEF/-100200")
    assert w.startswith("webhook:tickets.vnpt.example:") and "SECRET" not in w
    assert c.startswith("chat:tgram:") and "ABCDEF" not in c


def test_secret_file_is_made_private_and_kept(tmp_path):
    p = tmp_path / "sub" / "notify.secret"
    a = load_secret(p)
    assert len(a) == 64 and int(a, 16) >= 0
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert load_secret(p) == a
    (tmp_path / "short").write_text("abc\n")
    from linewatch.config import ConfigError
    with pytest.raises(ConfigError, match="fewer than 16 characters"):
        load_secret(tmp_path / "short")


_text = st.text(max_size=80)


@settings(max_examples=400, deadline=None)
@given(incident=st.one_of(_text, st.integers().map(str)), query=st.one_of(
    _text,
    st.dictionaries(st.sampled_from(["r", "e", "s", "x"]), _text, max_size=4).map(urllib.parse.urlencode),
    st.lists(st.tuples(st.sampled_from(["r", "e", "s"]), _text), max_size=6).map(urllib.parse.urlencode),
    st.binary(max_size=60).map(lambda b: urllib.parse.quote_from_bytes(b, safe="=&")),
))
def test_verify_arbitrary_queries_only_raises_link_error(incident, query):
    lk = links()
    try:
        who = lk.verify_query(incident, query, 1_795_000_000.0)
    except LinkError as e:
        assert e.reason in ("forged", "expired", "malformed")
    else:  # only a real signature gets through
        q = urllib.parse.parse_qs(query)
        assert q["s"][0] == sign(SECRET, int(incident), who, int(q["e"][0]))


@given(recipient=st.text(min_size=1, max_size=100), incident=st.integers(1, 10**12))
@settings(max_examples=150, deadline=None)
def test_any_recipient_round_trips(recipient, incident):
    lk = links()
    try:
        url = lk.make(incident, recipient, 1_795_000_000.0)
    except UnicodeEncodeError:  # a lone surrogate cannot be in a URL at all
        return
    assert lk.verify_url(url, 1_795_000_001.0) == (incident, recipient)


# ------------------------------------------------------------------ the HTTP endpoint
@pytest.fixture
def rec(tmp_path):
    r = open_record(tmp_path / "r.sqlite3")
    yield r
    r.close()


def open_incident(rec, site="21583", target="1.1.1.1") -> int:
    now = time.time()
    with rec.incident_tx(now) as tx:
        inc = tx.open(Incident(id=0, key=f"line_down/{site}/fiber/-", kind="line_down", cause="line",
                               route="operator", site=site, line="fiber", target=target, state="open",
                               opened_at=now - 60, detected_at=now))
    return inc.id


@pytest.fixture
def server(rec):
    s = AckServer(rec, links(), HttpConfig("127.0.0.1", 0)).start()
    yield s
    s.stop()


def http(method: str, url: str, form: dict | None = None) -> tuple[int, str]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def local(server, url: str) -> str:
    return url.replace(URL, f"http://127.0.0.1:{server.port}")


def form_of(url: str, **kw) -> dict:
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    return {"r": q["r"][0], "e": q["e"][0], "s": q["s"][0], **kw}


def test_get_shows_the_form_and_post_acknowledges_once(rec, server):
    iid = open_incident(rec, target="<img src=x onerror=alert(1)>")
    url = links().make(iid, NOC, time.time())
    status, page = http("GET", local(server, url))
    assert status == 200
    assert "Xác nhận đã tiếp nhận" in page and 'method="post"' in page and "Mất kết nối đường truyền" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert rec.incident(iid).acked_at is None, "a GET (a mail scanner) must not acknowledge"
    status, page = http("GET", local(server, url))  # opened twice: still nothing
    assert status == 200 and rec.incident(iid).acked_at is None

    path = urllib.parse.urlsplit(url).path
    base = f"http://127.0.0.1:{server.port}{path}"
    status, page = http("POST", base, form_of(url, by="Nguyễn Văn A", note="đã cử kỹ thuật"))
    assert status == 200 and "Đã ghi nhận" in page
    inc = rec.incident(iid)
    assert inc.acked_by == f"Nguyễn Văn A <{NOC}>" and inc.ack_via == "link" and inc.ack_note == "đã cử kỹ thuật"
    assert inc.state == "acknowledged"
    assert [e.what for e in rec.incident_log(iid)][-1] == "acknowledged"
    first_at = inc.acked_at

    status, page = http("POST", base, form_of(url, by="Trần B", note="lần hai"))
    assert status == 200 and "đã được xác nhận trước đó" in page and "Nguyễn Văn A" in page
    inc = rec.incident(iid)
    assert inc.acked_by == f"Nguyễn Văn A <{NOC}>" and inc.acked_at == first_at and inc.ack_note == "đã cử kỹ thuật"
    status, page = http("GET", local(server, url))  # now the page says who, and has no form
    assert status == 200 and "Nguyễn Văn A" in page and "<form" not in page


def test_forged_expired_and_unknown_links(rec, server):
    iid = open_incident(rec)
    other = open_incident(rec, site="21584")
    now = time.time()
    url = links().make(iid, NOC, now)
    base = f"http://127.0.0.1:{server.port}"
    # a link for one incident used on another
    status, page = http("POST", f"{base}/ack/{other}", form_of(url, by="x"))
    assert status == 403 and "Chữ ký của liên kết không đúng" in page and "signature is wrong" in page
    forged = form_of(url, by="x")
    forged["s"] = "0" * 64
    status, page = http("POST", f"{base}/ack/{iid}", forged)
    assert status == 403
    status, page = http("GET", local(server, url.replace("&s=", "&s=f")))
    assert status == 403 and "không đầy đủ" in page and "malformed" in page
    expired = Links(SECRET, URL, 7).make(iid, NOC, now - 8 * 86400)
    status, page = http("GET", local(server, expired))
    assert status == 403 and "hết hạn" in page and "expired" in page
    status, _ = http("POST", f"{base}/ack/{iid}", form_of(expired, by="x"))
    assert status == 403
    assert rec.incident(iid).acked_at is None and rec.incident(other).acked_at is None
    # a properly signed link to an incident the record does not have
    ghost = links().make(999999, NOC, now)
    assert http("GET", local(server, ghost))[0] == 404
    assert http("POST", f"{base}/ack/999999", form_of(ghost, by="x"))[0] == 404
    assert http("GET", f"{base}/healthz") == (200, "ok\n")
    assert http("GET", f"{base}/nothing")[0] == 404
    assert http("PUT", f"{base}/ack/{iid}")[0] in (405, 501)


def test_a_closed_incident_is_not_acknowledged(rec, server):
    iid = open_incident(rec)
    rec.close_incident(iid, by="cli", note="done")
    url = links().make(iid, NOC, time.time())
    path = urllib.parse.urlsplit(url).path
    status, page = http("POST", f"http://127.0.0.1:{server.port}{path}", form_of(url, by="x"))
    assert status == 200 and "đã đóng" in page
    assert rec.incident(iid).acked_at is None


def test_extra_route_for_metrics(rec, server):
    from linewatch.collector.web import Response
    server.add_route("/metrics", lambda: Response(200, b"linewatch_up 1\n", "text/plain"))
    assert http("GET", f"http://127.0.0.1:{server.port}/metrics") == (200, "linewatch_up 1\n")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE"]),
       path=st.one_of(st.text(max_size=100), st.text(max_size=60).map(lambda s: "/ack/" + s),
                      st.text(max_size=60).map(lambda s: "/ack/1?" + s), st.just("/healthz")),
       body=st.one_of(st.none(), st.binary(max_size=200), st.text(max_size=100).map(str.encode)))
def test_handler_never_fails_on_junk(rec, method, path, body):
    app = AckServer(rec, links(), HttpConfig("127.0.0.1", 0))
    resp = app.handle(method, path, body)
    assert resp.status in (200, 400, 403, 404, 405), (method, path, resp.status)
    assert resp.status != 200 or path.startswith(("/healthz", "/ack/"))


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.binary(min_size=1, max_size=120).filter(lambda b: b"\r" not in b and b"\n" not in b),
       method=st.sampled_from([b"GET", b"POST", b"HEAD"]))
def test_real_server_never_500_on_junk_paths(server, path, method):
    req = method + b" /" + path.replace(b" ", b"%20") + b" HTTP/1.0\r\n"
    req += b"Content-Length: 5\r\n\r\nr=1&e" if method == b"POST" else b"\r\n"
    out = _raw(server.port, req)
    status_line = out.split(b"\r\n", 1)[0]
    assert out.startswith(b"HTTP/1.") and b" 500 " not in status_line, (req, status_line)
    assert _raw(server.port, b"GET /healthz HTTP/1.0\r\n\r\n").split(b"\r\n", 1)[0].endswith(b"200 OK")

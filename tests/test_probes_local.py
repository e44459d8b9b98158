"""Probes against real local services on loopback: DNS, HTTP(S), the speed server, the
data budget and the test calendar. No namespaces needed."""
from __future__ import annotations

import http.server
import json
import shutil
import socket
import struct
import subprocess
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from linewatch import wire
from linewatch.agent import config as agent_config
from linewatch.agent.probes import REGISTRY, LineBinding, Result
from linewatch.agent.probes import bandwidth as bw
from linewatch.agent.probes import dns, http as httpprobe

from dnsresponder import Responder
from linewatch.agent import errors
from linewatch.agent.probes.bandwidth import calendar, iperf3
from linewatch.agent.probes.bandwidth import rate as tp
from linewatch.speed.server import SpeedServer, SpeedServerConfig
from linewatch.config import ConfigError, Section

from conftest import free_port

DATA = Path(__file__).parent / "data"
LINE = LineBinding("fiber", source_address="127.0.0.9")  # 127/8 is all local: a second "line" on loopback
GONE = LineBinding("gone", source_address="10.255.255.1")  # an address this computer does not have


def valid(r: Result) -> Result:
    """The result is a well-formed message under the wire contract (what the collector accepts)."""
    wire.build_message(kind=r.kind, agent_id="ag-t", province="52", site="21583", line=r.line, seq=1,
                       measured_at=r.measured_at, data=r.data, ok=r.ok, error_code=r.error_code, error=r.error)
    return r


# ----------------------------------------------------------------------------- DNS
@pytest.fixture
def responder():
    r = Responder({"dichvucong.test": "127.0.0.50"})
    yield r
    r.close()


def dns_cfg(port: int, names=("dichvucong.test",), **kw) -> dns.DnsConfig:
    return dns.DnsConfig(resolvers=("127.0.0.1",), names=tuple(names), port=port, **kw)


def test_dns_query_encoder_and_reply_decoder_round_trip_with_compressed_names():
    q = dns.encode_query(0x1234, "mail.hue.gov.vn", "A")
    assert q[:2] == b"\x12\x34" and q[12:] == b"\x04mail\x03hue\x03gov\x02vn\x00\x00\x01\x00\x01"
    reply = (b"\x12\x34" + struct.pack("!HHHHH", 0x8180, 1, 2, 0, 0) + q[12:]
             + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([10, 1, 2, 3])
             + b"\xc0\x0c" + struct.pack("!HHIH", 28, 1, 60, 16) + bytes(15) + b"\x01")
    r = dns.decode_reply(reply)
    assert (r.qid, r.rcode, r.answers, r.addresses) == (0x1234, "NOERROR", 2, ("10.1.2.3", "::1"))
    assert dns.decode_reply(b"\x00\x01" + struct.pack("!HHHHH", 0x8183, 0, 0, 0, 0)).rcode == "NXDOMAIN"
    with pytest.raises(ValueError):
        dns.decode_reply(q)  # a query is not a reply
    with pytest.raises(ValueError):
        dns.decode_reply(reply[:-3])  # truncated answer data


def test_dns_probe_times_each_resolver_and_asks_from_the_lines_own_address(responder):
    results = dns.DnsProbe().run(LINE, dns_cfg(responder.port, names=("dichvucong.test", "nope.test")))
    ok, nx = (valid(r) for r in results)
    assert ok.ok and ok.data["rcode"] == "NOERROR" and ok.data["addresses"] == ["127.0.0.50"]
    assert 0 < ok.data["resolve_ms"] < 2000 and ok.data["attempts"] == 1 and ok.line == "fiber"
    assert not nx.ok and nx.error_code == "dns_error" and "NXDOMAIN" in nx.error
    assert set(responder.clients) == {"127.0.0.9"}, "queries left from the line's source address"


def test_a_silent_resolver_gives_a_failed_measurement_with_the_reason_after_retries():
    silent = Responder({}, silent=True)
    try:
        r = valid(dns.DnsProbe().run(LINE, dns_cfg(silent.port, timeout_s=0.3, attempts=2))[0])
    finally:
        silent.close()
    assert not r.ok and r.error_code == "unreachable" and "no answer from resolver 127.0.0.1" in r.error
    assert r.data["attempts"] == 2 and len(silent.clients) == 2 and "resolve_ms" not in r.data


def test_dns_on_a_line_whose_address_is_gone_says_so_and_sends_nothing(responder):
    r = valid(dns.DnsProbe().run(GONE, dns_cfg(responder.port))[0])
    assert not r.ok and r.error_code == "line_unbound" and "10.255.255.1" in r.error
    time.sleep(0.3)
    assert responder.clients == []


# ----------------------------------------------------------------------------- HTTP
class _Handler(http.server.BaseHTTPRequestHandler):
    clients: list[str] = []

    def log_message(self, *a) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        type(self).clients.append(self.client_address[0])
        if self.path == "/slow":
            time.sleep(0.3)
        code = 404 if self.path == "/missing" else 200
        body = b"portal" * 100
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def web(tmp_path):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.clients = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def http_cfg(*urls: str, **kw) -> httpprobe.HttpConfig:
    return httpprobe.HttpConfig(urls=urls, timeout_s=3, **kw)


def test_http_probe_reports_status_and_time_to_first_byte_over_the_line(web):
    base = f"http://127.0.0.1:{web.server_port}"
    ok, slow, missing = (valid(r) for r in httpprobe.HttpProbe().run(
        LINE, http_cfg(f"{base}/", f"{base}/slow", f"{base}/missing")))
    assert ok.ok and ok.data["status_code"] == 200 and ok.data["bytes"] == 600
    assert {"dns_ms", "connect_ms", "ttfb_ms", "total_ms"} <= set(ok.data) and "tls_ms" not in ok.data
    assert slow.ok and slow.data["ttfb_ms"] >= 300, "the server's 0.3 s think time is in the time to first byte"
    assert not missing.ok and missing.error_code == "http_error" and "404" in missing.error
    assert set(_Handler.clients) == {"127.0.0.9"}


def test_http_probe_names_a_refused_service_and_a_missing_line():
    port = free_port()
    r = valid(httpprobe.HttpProbe().run(LINE, http_cfg(f"http://127.0.0.1:{port}/"))[0])
    assert not r.ok and r.error_code == "refused" and f"port {port}" in r.error
    r = valid(httpprobe.HttpProbe().run(GONE, http_cfg(f"http://127.0.0.1:{port}/"))[0])
    assert not r.ok and r.error_code == "line_unbound"


@pytest.fixture
def tls_web(tmp_path, web):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed (apt-get install openssl)")
    import ssl
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{srv.server_port}/", cert
    srv.shutdown()
    srv.server_close()


def test_https_is_timed_with_its_handshake_and_an_untrusted_certificate_is_reported(tls_web):
    url, cert = tls_web
    r = valid(httpprobe.HttpProbe().run(LINE, http_cfg(url, ca_file=str(cert)))[0])
    assert r.ok and r.data["status_code"] == 200 and r.data["tls_ms"] > 0
    r = valid(httpprobe.HttpProbe().run(LINE, http_cfg(url))[0])
    assert not r.ok and r.error_code == "tls_failed" and "not trusted" in r.error


# ----------------------------------------------------------------------------- config
def test_probe_tables_parse_from_the_agent_config_and_typos_are_named(tmp_path):
    doc = {"agent": {"id": "ag-1", "province": "52", "site": "21583", "state_dir": str(tmp_path)},
           "line": [{"id": "fiber", "source_address": "127.0.0.9",
                     "bandwidth": {"method": "linewatch", "target": "http://10.52.0.5:8090", "window": "01:00-05:00"},
                     "dns": {"resolvers": ["10.52.0.53"], "names": ["dichvucong.gov.vn"]},
                     "http": {"urls": ["https://dichvucong.gov.vn/"]}}]}
    cfg = agent_config.parse(doc)
    b = cfg.lines[0].probes["bandwidth"]
    assert b.state_dir == tmp_path and b.schedule == "night" and b.streams == 4
    assert b.plan.per_day == 1 and b.plan.week == (((calendar.Window.parse("01:00-05:00"),),) * 7), \
        'an existing config with window = "01:00-05:00" keeps meaning once a night'
    every = REGISTRY["bandwidth"].parse_config(Section({"method": "iperf3", "target": "h:5201", "window": ""}, "x"))
    assert every.plan is None and every.schedule == "interval" and every.interval_s == 600, \
        'window = "" runs every interval_s'
    office = REGISTRY["bandwidth"].parse_config(Section({"method": "iperf3", "target": "h:5201"}, "x"))
    assert office.schedule == "office" and office.plan.per_day == 4, "by default several tests in office hours"
    assert office.interval_s == 60, "the calendar is looked at every minute, so slots start on time"
    bad = [({"method": "linewatch", "target": "10.52.0.5"}, "must be the speed server's address"),
           ({"method": "iperf3", "target": "10.52.0.5"}, "HOST:PORT of an iperf3 server"),
           ({"method": "linewatch", "target": "http://x:1", "window": "1-5"}, "must look like \"01:00-05:00\""),
           ({"method": "speedtst"}, "must be one of"),
           ({"method": "speedtest", "streem": 2}, "unknown setting(s) streem")]
    for table, msg in bad:
        with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            REGISTRY["bandwidth"].parse_config(Section(table, "line 'fiber' [bandwidth]"))
    with pytest.raises(ConfigError, match="resolver 'dns.example' must be an IPv4 address"):
        REGISTRY["dns"].parse_config(Section({"resolvers": ["dns.example"], "names": ["a.vn"]}, "x"))
    with pytest.raises(ConfigError, match="must be a full address starting with http"):
        REGISTRY["http"].parse_config(Section({"urls": ["dichvucong.gov.vn"]}, "x"))


def test_the_example_agent_config_parses():
    cfg = agent_config.load(agent_config.EXAMPLE)
    assert {"bandwidth", "dns", "http"} <= {p for ln in cfg.lines for p in ln.probes}


# ----------------------------------------------------------------------------- throughput maths
def _measured_as_the_agent_does(samples: list, warmup_s: float = 2.0) -> tuple[float, float, float] | None:
    """(Mbit/s, seconds when the test stopped, end of its warm-up) as transfer() would stop."""
    for i in range(3, len(samples)):
        if tp.is_stable(samples[:i + 1], warmup_s):
            start = tp.settled_start(samples[:i + 1], tp.MIN_WARMUP_S, warmup_s)
            return tp.measured_rate(samples[:i + 1], start)[0], samples[i][0], start
    return None


def _recorded(name: str) -> tuple[list, float, bool]:
    doc = json.loads((DATA / name).read_text())
    return [tuple(r) for r in doc["readings"]], doc["payload_ceiling_mbit"], doc["direction"] == "upload"


def _figure_as_the_agent_does(readings: list, upload: bool) -> tuple[float, float]:
    """(Mbit/s, seconds when the test stopped) of kernel readings, as transfer() reports."""
    samples = tp.delivered(readings, upload)
    for i in range(3, len(samples)):
        if tp.is_stable(samples[:i + 1], 2.0):
            start = tp.settled_start(samples[:i + 1], tp.MIN_WARMUP_S, 2.0)
            return tp.measured_rate(samples[:i + 1], start)[0], samples[i][0]
    raise AssertionError("never stable")


def test_steady_rate_leaves_the_warm_up_burst_out():
    # 1 s of a 50 Mbit/s burst (a shaper's full bucket), then exactly 10 Mbit/s
    samples = [(t / 10, int(min(t, 10) * 625_000 + max(0, t - 10) * 125_000)) for t in range(0, 51)]
    rate, span = tp.steady_rate(samples, warmup_s=1.0)
    assert rate == pytest.approx(10.0) and span == pytest.approx(4.0)
    assert tp.mbps(samples[-1][1], 5.0) > 15, "a whole-transfer average would have been inflated by the burst"
    assert tp.steady_rate(samples[:8], warmup_s=1.0) is None


def test_steady_rate_shrugs_off_a_sample_taken_while_packets_sat_in_the_kernel_backlog():
    samples = [(t / 10, t * 125_000) for t in range(0, 51)]  # 10 Mbit/s
    t, b = samples[20]
    samples[20] = (t, b - 300_000)  # the warm-up-end sample lagged by 300 kB, caught up right after
    assert tp.steady_rate(samples, warmup_s=2.0)[0] == pytest.approx(10.0, rel=0.03)
    two_point = (samples[-1][1] - samples[20][1]) * 8 / 1e6 / 3.0
    assert two_point > 10.7, "a plain end-minus-start rate would be 8 % high"


def test_a_settled_rate_is_stable_and_a_still_climbing_one_is_not():
    steady = [(t / 10, t * 125_000) for t in range(0, 46)]  # 10 Mbit/s from the start
    assert tp.is_stable(steady, warmup_s=1.0)
    assert not tp.is_stable(steady[:24], warmup_s=1.0), "needs MIN_SPAN_S of measuring after the warm-up"
    climbing = [(t / 10, int(t * t * 12_500)) for t in range(0, 46)]
    assert not tp.is_stable(climbing, warmup_s=1.0)
    # the sender stalled for 0.4 s just after the warm-up: the two halves disagree
    stalled = [(t / 10, (t - min(4, max(0, t - 12))) * 125_000) for t in range(0, 46)]
    assert not tp.is_stable(stalled, warmup_s=1.0)
    later = [(t / 10, (t - min(4, max(0, t - 12))) * 125_000) for t in range(0, 200)]
    assert tp.is_stable(later, warmup_s=1.0), "once the stall is a small part of the span, it may stop"


def test_the_warm_up_ends_as_soon_as_the_rate_is_level_and_never_later_than_warmup_s():
    level = [(t / 10, t * 125_000) for t in range(0, 80)]  # 10 Mbit/s from the start
    assert tp.settled_start(level[:26], tp.MIN_WARMUP_S, 2.0) == tp.MIN_WARMUP_S, "2 s measured after 0.5 s"
    assert _measured_as_the_agent_does(level)[1] == pytest.approx(2.5), "a level line costs 2.5 s, not 2 + 2.5"
    # a shaper's bucket: 1.5x the rate for the first 1.2 s; slow start: a ramp over the first 1.6 s
    burst = [(t, b + int(min(t, 1.2) * 625_000)) for t, b in level]
    ramp = [(t, max(0, b - int(125_000 * 10 * (0.8 if t >= 1.6 else t - t * t / 3.2)))) for t, b in level]
    for shaped, until in ((burst, 1.2), (ramp, 1.6)):
        rate, stopped, start = _measured_as_the_agent_does(shaped)
        assert rate == pytest.approx(10.0, rel=0.005)
        assert tp.MIN_WARMUP_S < start <= until and 2.5 < stopped <= until + tp.MIN_SPAN_S + tp.STEP_S
    # a bucket still not empty after warmup_s = 2 s: the measurement starts there all the same
    # (like iperf3 --omit 2), and the median of slopes leaves the bucket's last 0.2 s out
    long_burst = [(t, b + int(min(t, 2.2) * 625_000)) for t, b in level]
    rate, stopped, start = _measured_as_the_agent_does(long_burst)
    assert start == 2.0 and rate == pytest.approx(10.0, rel=0.002)


def _half_second_rates(samples: list) -> list[float]:
    return [tp.mbps(samples[i + 5][1] - samples[i][1], samples[i + 5][0] - samples[i][0])
            for i in range(5, len(samples) - 5, 5)]


def test_a_lossy_upload_counted_in_order_reads_above_the_link_and_counted_as_held_does_not():
    """Recorded on a 20 Mbit/s tbf link (tests/data): the shaper dropped ~20 % of what was
    sent, so the count acknowledged in order stalled at every loss and then jumped. Its rate
    from 2 s to the end read 4 % more than the link can carry -- the 1.042 x iperf3 upload.
    The bytes the server holds (in order + SACKed) move at the link's payload rate."""
    readings, ceiling, upload = _recorded("bw-upload-tbf20mbit-lossy.json")
    assert upload
    in_order = [(t, b) for t, b, _ in readings]
    assert max(_half_second_rates(in_order)) > 1.25 * ceiling and min(_half_second_rates(in_order)) < 0.8 * ceiling
    (t0, b0), (t1, b1) = next(x for x in in_order if x[0] >= 2.0), in_order[-1]
    assert tp.mbps(b1 - b0, t1 - t0) > 1.03 * ceiling
    held = tp.delivered(readings, upload=True)
    assert all(abs(r / ceiling - 1) < 0.015 for r in _half_second_rates(held))
    rate, stopped = _figure_as_the_agent_does(readings, upload=True)
    assert rate == pytest.approx(ceiling, rel=0.005) and rate <= 1.005 * ceiling
    assert stopped <= 3.2, "a third of a 10 s iperf3 run is 3.3 s per direction"


def test_a_lossy_download_counts_the_bytes_that_arrived_behind_a_hole():
    readings, ceiling, upload = _recorded("bw-download-tbf10mbit-lossy.json")
    assert not upload
    in_order = [(t, b) for t, b, _ in readings]
    assert max(_half_second_rates(in_order)) > 1.15 * ceiling and min(_half_second_rates(in_order)) < 0.85 * ceiling
    arrived = tp.delivered(readings, upload=False)
    assert all(i <= a for (_, i, _), (_, a) in zip(readings, arrived)), "never below the in-order count"
    assert all(abs(r / ceiling - 1) < 0.03 for r in _half_second_rates(arrived))
    rate, stopped = _figure_as_the_agent_does(readings, upload=False)
    assert rate == pytest.approx(ceiling, rel=0.005) and rate <= 1.005 * ceiling and stopped <= 3.2


def test_tcp_info_reads_as_in_order_and_held_bytes():
    from linewatch.agent.netif import held_counts

    info = bytearray(232)
    struct.pack_into("=II", info, 16, 1448, 1440)  # snd_mss, rcv_mss
    struct.pack_into("=I", info, 28, 7)  # segments SACKed
    struct.pack_into("=QQ", info, 120, 1_000_000, 2_000_000)  # bytes acked, bytes received
    struct.pack_into("=I", info, 152, 1400)  # data segments in
    assert held_counts(bytes(info), upload=True) == (1_000_000, 1_000_000 + 7 * 1448)
    assert held_counts(bytes(info), upload=False) == (2_000_000, 1400 * 1440)
    assert held_counts(bytes(info[:140]), upload=False) == (2_000_000, None), "Linux < 4.6: in order only"
    assert held_counts(bytes(info[:100]), upload=True) is None


def test_iperf3_json_recorded_on_a_20_mbit_tbf_link_is_summarised():
    run = iperf3.parse_iperf3((DATA / "iperf3-reverse-2streams-tbf20mbit.json").read_text())
    assert run.reverse and run.streams == 2 and run.duration_s == pytest.approx(3.0, abs=0.01)
    assert 18.0 < run.mbps < 20.0, "receiver rate with the 1 s --omit warm-up excluded"
    assert run.mbps == pytest.approx(19.110114, abs=1e-5)
    assert run.bytes == 2405128 + 2380512 + 2402232 + 2383408, "budget pays the omitted second too"
    with pytest.raises(errors.IperfError, match="unable to connect to server: Connection refused"):
        iperf3.parse_iperf3((DATA / "iperf3-refused.json").read_text())
    with pytest.raises(errors.IperfError, match="printed no JSON"):
        iperf3.parse_iperf3("iperf3: error - the server is busy running a test")


def test_each_line_tests_once_a_night_at_its_own_random_slot_inside_the_window():
    plan = calendar.Plan("night", 1, ((calendar.Window.parse("23:00-03:00"),),) * 7)  # across midnight
    day = date(2026, 3, 10)
    slots = [plan.slots(day, f"site-{i}")[0][0] for i in range(150)]
    start = datetime(2026, 3, 10, 23, 0)
    assert all(start <= s < start + timedelta(hours=4) for s in slots)
    hours = {(s - start).seconds // 3600 for s in slots}
    assert hours == {0, 1, 2, 3}, "150 sites spread over all four hours of the window"
    slot = slots[0]
    handled = slot - timedelta(days=1)  # yesterday's slot ran
    assert calendar.decide(plan, "site-0", slot - timedelta(minutes=1), handled).run is None
    assert calendar.decide(plan, "site-0", slot + timedelta(minutes=1), handled).run == slot
    assert calendar.decide(plan, "site-0", slot + timedelta(minutes=2), slot).run is None, "ran already"
    late = calendar.decide(plan, "site-0", start + timedelta(hours=5), handled)
    assert late.run is None and late.missed == 1, "window closed: given up, counted, wait for tomorrow"
    assert plan.slots(day, "site-0")[0][0] == slot, "a restart keeps the same slot"


def test_the_probe_is_due_only_at_its_slot_and_keeps_its_seed_in_the_state_folder(tmp_path):
    night = calendar.Plan("night", 1, ((calendar.Window.parse("01:00-02:00"),),) * 7)
    cfg = bw.BandwidthConfig(method="linewatch", target="http://127.0.0.1:1", plan=night, state_dir=tmp_path,
                             clock=None)
    probe = REGISTRY["bandwidth"]
    assert not probe.due(LINE, cfg, now=datetime(2026, 3, 10, 0, 30))
    seed = json.loads((tmp_path / "bandwidth-fiber.json").read_text())["seed"]
    assert probe.due(LINE, cfg, now=datetime(2026, 3, 10, 2, 0) - timedelta(seconds=1))
    assert json.loads((tmp_path / "bandwidth-fiber.json").read_text())["seed"] == seed


# ----------------------------------------------------------------------------- speed server, budget
def test_tests_are_charged_to_the_monthly_budget_and_stop_when_it_is_used_up(tmp_path, speedserver):
    url = f"http://127.0.0.1:{speedserver.server_port}"
    cfg = bw.BandwidthConfig(method="linewatch", target=url, max_test_mb=20, monthly_budget_mb=30,
                             max_duration_s=3, warmup_s=1, state_dir=tmp_path)
    path = tmp_path / "bandwidth-fiber.json"
    results = []
    for day in range(1, 8):  # loopback is so fast each test ends at its byte cap, before the warm-up
        r = valid(bw.run_test(LINE, cfg, today=date(2026, 3, day)))
        results.append(r)
        if r.error_code == "budget_exhausted":
            break
        assert 0 < r.data["bytes"] <= 20e6 + 1e6, "a test never moves much more than max_test_mb"
        used = json.loads(path.read_text())["used_bytes"]
        assert used == sum(x.data["bytes"] for x in results), "every byte moved is charged to the line"
        assert r.data["budget_left_mb"] == pytest.approx(max(0, 30e6 - used) / 1e6, abs=0.1)
    last = results[-1]
    assert len(results) >= 3 and last.error_code == "budget_exhausted" and not last.ok
    assert "30 MB" in last.error and last.data["bytes"] == 0
    assert json.loads(path.read_text())["used_bytes"] <= 30e6 + 1e6, "the month's budget is not overrun"
    fresh = valid(bw.run_test(LINE, cfg, today=date(2026, 4, 1)))
    assert fresh.error_code != "budget_exhausted", "a new month starts a new budget"


@pytest.mark.parametrize("speedserver", [2], indirect=True)  # room for two transfers only
def test_a_full_speed_server_answers_busy_and_the_agent_reports_it(speedserver):
    port = speedserver.server_port
    hogs = []
    for _ in range(2):  # take both transfer slots with downloads nobody reads
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /lw/download?bytes=1000000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        hogs.append(s)
    time.sleep(0.3)
    cfg = bw.BandwidthConfig(method="linewatch", target=f"http://127.0.0.1:{port}", streams=1, state_dir=None)
    r = valid(bw.run_test(LINE, cfg))
    assert not r.ok and r.error_code == "server_busy" and "busy" in r.error
    with pytest.raises(errors.TestFailed, match="busy"):
        bw.transfer(LINE, "127.0.0.1", port, "", True, cfg, 10**9)
    for s in hogs:
        s.close()


def test_the_speed_server_serves_speedtest_mini_paths():
    srv = SpeedServer(SpeedServerConfig("127.0.0.1", 0))
    srv.start_background()
    try:
        import urllib.request
        base = f"http://127.0.0.1:{srv.server_port}"
        assert urllib.request.urlopen(f"{base}/speedtest/latency.txt").read() == b"test=test\n"
        assert len(urllib.request.urlopen(f"{base}/speedtest/random350x350.jpg").read()) == int(350 * 350 * 1.9766)
        req = urllib.request.Request(f"{base}/speedtest/upload.php", data=b"x" * 12345, method="POST")
        assert urllib.request.urlopen(req).read() == b"size=12345"
    finally:
        srv.shutdown()
        srv.server_close()



def test_the_agent_skips_bandwidth_rounds_outside_the_window_and_runs_them_without_one(tmp_path):
    from linewatch.agent.runner import Agent

    soon = datetime.now() + timedelta(hours=2)  # a one-minute window two hours from now: not due
    window = f"{soon:%H:%M}-{soon + timedelta(minutes=1):%H:%M}"
    port = free_port()  # nothing listens: a run gives an 'unreachable' measurement at once

    def agent_for(window: str) -> Agent:
        return Agent(agent_config.parse({
            "agent": {"id": "ag-1", "province": "52", "site": "21583", "state_dir": str(tmp_path / window)},
            "line": [{"id": "fiber", "source_address": "127.0.0.9",
                      "bandwidth": {"method": "linewatch", "target": f"http://127.0.0.1:{port}", "window": window,
                                    "utc_offset": "local"}}]}))

    for window, expected in ((window, 0), ("", 1)):
        agent = agent_for(window)
        try:
            line = agent.cfg.lines[0]
            agent._probe_job(line, "bandwidth", line.probes["bandwidth"])()
            assert agent.outbox.depth() == expected and agent.probe_errors == 0, f"window {window!r}"
            if expected:
                [msg] = agent.outbox.pending(10)
                assert json.loads(msg.payload)["data"]["schedule"] == "interval", "says which schedule ran it"
        finally:
            agent.scheduler.stop()
            agent.outbox.close()

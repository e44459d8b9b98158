"""The time-series export: agent messages stored through the real ingest path into a real
record, exported by the feed consumer into a real VictoriaMetrics (tests/vmfixture.py), and
read back with the queries the dashboards use."""
from __future__ import annotations

import http.server
import io
import math
import re
import threading
import tomllib
from datetime import timezone
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linewatch import wire
from linewatch.collector import registry as registry_mod
from linewatch.collector.export import cli as export_cli
from linewatch.collector.export.config import ExportConfig, parse_export
from linewatch.collector.export.exporter import CONSUMER, INCIDENTS_POSITION, Exporter
from linewatch.collector.export.points import points_for
from linewatch.collector.export.refill import printer, refill
from linewatch.collector.export.sink import ExportRefused, ExportServerError, ExportUnreachable, Sink
from linewatch.collector.incidents.rules import Policy
from linewatch.collector.record.types import Event, EventFilter
from linewatch.config import ConfigError, Section

from conftest import free_port
from incidentlab import Province, registry_text
from strategies import valid_messages
from vmfixture import victoria  # noqa: F401  (fixture)


@pytest.fixture
def prov(tmp_path):
    p = Province(tmp_path)
    yield p
    p.record.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def prov_any(request, tmp_path):
    """The same province on either record backend."""
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_url")
    p = Province(tmp_path, url)
    yield p
    p.record.close()


class Recording(Sink):
    """The real sink, remembering every line the server accepted (in the order accepted)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.accepted: list[str] = []

    def write_lines(self, lines):
        lines = list(lines)
        super().write_lines(lines)
        self.accepted.extend(lines)


def heartbeat(prov, **kw):
    prov.send("heartbeat", {"version": "0.3.0", "uptime_s": 3600.5, "queue_depth": 7, "queue_dropped": 0,
                            "probe_errors": 2, "clock_utc": wire.format_time(wire.utc_now()),
                            "hostname": "may-xa-1", "last_probe_error": "dns: timeout"}, line=None, **kw)


def one(victoria, expr, at):
    res = victoria.query(expr, time=at)
    assert len(res) == 1, (expr, res)
    return res[0]["metric"], float(res[0]["value"][1])


def test_measurements_arrive_with_the_labels_and_values_panels_query(prov, victoria):
    t0 = prov.t
    prov.latency(rtt=12.5, loss=5.0)
    prov.reach("up")
    heartbeat(prov)
    prov.speed(95.0, 45.0)
    prov.advance(60)
    prov.speed(60.0, 45.0, line="tslcd")  # 0.3 x its 200 Mbit/s: not compliant
    ex = Exporter(prov.record, prov.registry, ExportConfig(url=victoria.url), clock=lambda: prov.t)
    assert ex.step() == 5 and ex.step() == 0  # one event per message
    assert ex.lag() == 0 and prov.record.position(CONSUMER) == prov.record.feed_head()
    at = t0 + 30
    m, v = one(victoria, 'lw_latency_rtt_avg_ms{site="21583",line="fiber"}', at)
    assert v == 12.5
    assert {k: m[k] for k in ("province", "site", "line", "isp", "line_kind", "target", "method")} == {
        "province": "52", "site": "21583", "line": "fiber", "isp": "VNPT", "line_kind": "internet",
        "target": "1.1.1.1", "method": "icmp-raw"}
    assert one(victoria, 'lw_latency_loss_pct{site="21583",line="fiber"}', at)[1] == 5.0
    assert one(victoria, 'lw_latency_ok{site="21583",line="fiber"}', at)[1] == 1.0
    assert one(victoria, 'lw_reach_up{site="21583",line="fiber"}', at)[1] == 1.0
    assert one(victoria, 'lw_agent_uptime_s{site="21583",agent="ag-21583"}', at)[1] == 3600.5
    assert one(victoria, 'lw_agent_queue_depth{site="21583"}', at)[1] == 7
    assert one(victoria, 'lw_bandwidth_download_mbps{site="21583",line="fiber"}', at)[1] == 95.0
    # measured against contracted and the 0.8 x line, and the verdict
    assert one(victoria, 'lw_line_contracted_down_mbps{site="21583",line="fiber"}', at)[1] == 100
    assert one(victoria, 'lw_line_threshold_down_mbps{site="21583",line="fiber"}', at)[1] == 80
    assert one(victoria, 'lw_verdict_compliant_down{site="21583",line="fiber"}', at)[1] == 1
    assert one(victoria, 'lw_verdict_ratio_down{site="21583",line="fiber"}', at)[1] == pytest.approx(0.95)
    at2 = prov.t + 10
    assert one(victoria, 'lw_verdict_compliant_down{site="21583",line="tslcd"}', at2)[1] == 0
    assert one(victoria, 'lw_line_contracted_down_mbps{site="21583",line="tslcd"}', at2)[1] == 200
    # text fields are never exported (VictoriaMetrics would store them as 0)
    names = set(victoria.get("/api/v1/label/__name__/values")["data"])
    text_fields = {f"{m}_{f}" for kind, m in (("latency", "lw_latency"), ("bandwidth", "lw_bandwidth"),
                                               ("reach", "lw_reach"), ("heartbeat", "lw_agent"))
                   for f, spec in wire.SCHEMAS[kind].items() if isinstance(spec, wire.Str)}
    assert names and not names & text_fields, names & text_fields
    print(f"{len(names)} metric names, e.g. {sorted(names)[:8]}")


def test_contracts_sites_and_incidents_are_written_every_contract_interval(prov, victoria):
    prov.latency()
    prov.reach("up")
    prov.run()
    t_down = prov.t
    prov.advance(5)
    prov.reach("down", since=t_down)
    prov.run()
    [inc] = prov.incidents()
    cfg = ExportConfig(url=victoria.url, contract_every_s=300)
    ex = Exporter(prov.record, prov.registry, cfg, clock=lambda: prov.t)
    ex.step()
    assert ex.periodic() > 0 and ex.periodic() == 0  # not due again yet
    at = prov.t + 1
    n_lines = sum(len(s.lines) for s in prov.registry.sites.values())
    res = victoria.query("lw_line_contracted_down_mbps", time=at)
    assert len(res) == n_lines == 6
    assert {(r["metric"]["site"], r["metric"]["line"], float(r["value"][1])) for r in res} == {
        (s.code, ln.id, ln.contracted_down_mbps) for s in prov.registry.sites.values() for ln in s.lines}
    assert len(victoria.query("lw_site_lines", time=at)) == 3
    m, v = one(victoria, 'lw_incidents_open{kind="line_down"}', at)
    assert v == 1 and (m["site"], m["line"], m["isp"]) == ("21583", "fiber", "VNPT")
    # repaired and closed: the gauge drops to 0, the closed incident carries its times
    prov.advance(30)
    prov.record.acknowledge(inc.id, "Anh Tuấn", now=prov.t)
    ttack = prov.t - inc.detected_at
    t_up = prov.t
    prov.reach("up", since=t_up)
    prov.run()
    prov.advance(Policy().resolve_hold_s + 1)
    prov.run()
    [inc] = prov.incidents()
    assert inc.state == "closed"
    prov.advance(cfg.contract_every_s)
    ex.step()
    assert ex.periodic() > 0
    at = prov.t + 1
    assert one(victoria, 'lw_incidents_open{kind="line_down",site="21583",line="fiber"}', at)[1] == 0
    m, v = one(victoria, 'lw_incident_closed_time_to_repair_s{site="21583"}', inc.closed_at + 1)
    assert v == pytest.approx(t_up - t_down, abs=0.01) and m["kind"] == "line_down" and m["isp"] == "VNPT"
    assert one(victoria, 'lw_incident_closed_time_to_ack_s{site="21583"}', inc.closed_at + 1)[1] == \
        pytest.approx(ttack, abs=0.01)
    assert prov.record.position(INCIDENTS_POSITION) == int(inc.closed_at * 1000)
    # a new exporter (a restart) does not need memory to find nothing new
    prov.advance(cfg.contract_every_s)
    ex2 = Exporter(prov.record, prov.registry, cfg, clock=lambda: prov.t)
    ex2.periodic()
    [closed] = victoria.export('lw_incident_closed_time_to_repair_s')
    assert len(closed["values"]) == 1


def test_the_position_moves_only_after_the_server_accepted_and_everything_arrives_once_in_order(prov_any, victoria):
    prov = prov_any
    sent = []
    for i in range(40):
        prov.latency(rtt=10 + i)
        sent.append((prov.t, 10 + i))
        prov.advance(1)
    sink = Recording(ExportConfig(url=victoria.url, batch_points=7))
    ex = Exporter(prov.record, prov.registry, sink.cfg, clock=lambda: prov.t, sink=sink)
    assert ex.step() == 7
    assert prov.record.position(CONSUMER) == 7
    victoria.stop()
    with pytest.raises(ExportUnreachable) as ei:
        ex.step()
    msg = str(ei.value)
    print(msg)
    assert f"VictoriaMetrics {victoria.url}" in msg and "is it running" in msg
    assert prov.record.position(CONSUMER) == 7 and ex.lag() == 33
    for i in range(40, 60):  # measurements keep arriving while the server is down
        prov.latency(rtt=10 + i)
        sent.append((prov.t, 10 + i))
        prov.advance(1)
    with pytest.raises(ExportUnreachable):
        ex.step()
    assert prov.record.position(CONSUMER) == 7
    victoria.start()
    while ex.step():
        pass
    assert ex.lag() == 0
    [series] = victoria.export('lw_latency_rtt_avg_ms{site="21583",line="fiber"}')
    got = list(zip(series["timestamps"], series["values"]))
    stored = prov.record.events(EventFilter(kind="latency"))
    assert [e.data["rtt_avg_ms"] for e in stored] == [v for _t, v in sent]
    want = [(int(round(e.at * 1000)), float(e.data["rtt_avg_ms"])) for e in stored]
    dups = len(got) - len(set(got))
    missing = len(set(want) - set(got))
    print(f"sent {len(want)} / in TSDB {len(got)} / duplicates {dups} / missing {missing}")
    assert got == want
    # the exporter itself sent each accepted point once, in feed order
    stamps = [int(ln.rsplit(" ", 1)[1]) for ln in sink.accepted if ln.startswith("lw_latency,")]
    assert stamps == [w[0] for w in want]


def test_a_point_for_a_site_the_registry_does_not_know_is_skipped(prov, victoria, tmp_path):
    prov.latency(rtt=11, site="21585")
    prov.latency(rtt=12, site="21583")
    smaller = registry_mod.parse(tomllib.loads(registry_text(2)))  # 21585 removed from the registry
    ex = Exporter(prov.record, smaller, ExportConfig(url=victoria.url), clock=lambda: prov.t)
    assert ex.step() == 2 and ex.lag() == 0 and ex.stats["skipped_events"] == 1
    assert victoria.query('lw_latency_rtt_avg_ms{site="21585"}', time=prov.t + 1) == []
    assert one(victoria, 'lw_latency_rtt_avg_ms{site="21583"}', prov.t + 1)[1] == 12


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 500
    body = b""

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *a):
        pass


@pytest.mark.parametrize("status,body,error,words", [
    (500, b'{"message":"disk full"}', ExportServerError, ["HTTP 500", "disk full", "sent again"]),
    (401, b'{"code":"unauthorized","message":"unauthorized access"}', ExportRefused, ["HTTP 401", "token_file"]),
    (404, b'{"code":"not found","message":"bucket \\"lw\\" not found"}', ExportRefused, ["HTTP 404", "bucket"]),
])
def test_a_server_that_answers_with_an_error_gives_an_error_an_admin_can_act_on(prov, status, body, error, words):
    handler = type("H", (_Answer,), {"status": status, "body": body})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        prov.latency()
        cfg = ExportConfig(url=f"http://127.0.0.1:{srv.server_address[1]}", kind="influxdb2", org="so",
                           bucket="lw")
        ex = Exporter(prov.record, prov.registry, cfg, clock=lambda: prov.t)
        with pytest.raises(error) as ei:
            ex.step()
        print(ei.value)
        assert all(w in str(ei.value) for w in words), str(ei.value)
        assert prov.record.position(CONSUMER) == 0
    finally:
        srv.shutdown()


def test_points_the_server_refuses_as_data_are_dropped_alone_and_the_rest_arrive(prov):
    """400/422 (e.g. InfluxDB's field type conflict): retrying the same points would stop the
    export for good, so the refused ones are found by halving and dropped, logged."""
    seen = []

    class Picky(_Answer):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            bad = "rtt_avg_ms=13.0" in body
            if not bad:
                seen.extend(body.splitlines())
            self.send_response(422 if bad else 204)
            self.end_headers()
            if bad:
                self.wfile.write(b'{"code":"unprocessable entity","message":"field type conflict"}')

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Picky)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        for i in range(8):
            prov.latency(rtt=10 + i)
            prov.advance(1)
        ex = Exporter(prov.record, prov.registry, ExportConfig(url=f"http://127.0.0.1:{srv.server_address[1]}"),
                      clock=lambda: prov.t)
        assert ex.step() == 8 and ex.lag() == 0
        assert ex.stats["refused_points"] == 1 and len(seen) == 7
    finally:
        srv.shutdown()


def test_refill_since_writes_the_range_into_an_empty_server_and_shows_progress(prov, victoria, capsys):
    prov.latency(rtt=99)  # before --since: not written
    prov.advance(3600)
    since = prov.t - 0.5  # measured times are kept to the millisecond
    for i in range(30):
        prov.latency(rtt=20 + i)
        prov.advance(10)
    prov.speed(90, 40)
    until = prov.t + 1
    prov.advance(600)
    prov.latency(rtt=98)  # after --until
    out = io.StringIO()
    cfg = ExportConfig(url=victoria.url, batch_points=8)
    st = refill(prov.record, prov.registry, cfg, since, until, progress=printer(out, every_s=0))
    print(out.getvalue())
    assert st.exported == 31 and prov.record.position(CONSUMER) == 0  # the consumer's position is untouched
    lines = out.getvalue().splitlines()
    assert lines and all("points/s" in ln and "ETA" in ln for ln in lines) and "ETA done" in lines[-1]
    [series] = victoria.export('lw_latency_rtt_avg_ms{site="21583",line="fiber"}')
    assert series["values"] == [20.0 + i for i in range(30)]
    assert one(victoria, 'lw_bandwidth_download_mbps{line="fiber"}', until)[1] == 90
    assert len(victoria.query("lw_line_contracted_down_mbps", time=since + 1)) == 6
    # the command: dates in Vietnam time or with a zone
    victoria_cfg = SimpleNamespace(export=ExportConfig(url=victoria.url))
    from datetime import datetime
    args = SimpleNamespace(since=datetime.fromtimestamp(since, timezone.utc).isoformat(), until=None)
    assert export_cli.run(args, victoria_cfg, prov.registry, prov.record) == 0
    err = capsys.readouterr().err
    assert "export: done: 32 measurements" in err and "ETA" in err, err
    assert export_cli.run(SimpleNamespace(since="yesterday", until=None), victoria_cfg, prov.registry,
                          prov.record) == 2
    assert "not a date" in capsys.readouterr().err
    assert export_cli.run(args, SimpleNamespace(export=ExportConfig()), prov.registry, prov.record) == 2


def test_refill_into_a_server_that_is_down_fails_with_how_to_resume(prov, capsys, monkeypatch):
    prov.latency()
    args = SimpleNamespace(since="2020-01-01", until=None)
    cfg = SimpleNamespace(export=ExportConfig(url=f"http://127.0.0.1:{free_port()}", timeout_s=1))
    import linewatch.collector.export.refill as refill_mod
    monkeypatch.setattr(refill_mod, "RETRIES", 2)
    assert export_cli.run(args, cfg, prov.registry, prov.record) == 1
    err = capsys.readouterr().err
    assert "no answer" in err and "run the same command again" in err, err


# --------------------------------------------------------------------------- config
def _cfg(tmp_path, **kw):
    return parse_export(Section(kw, "collector.toml [export]"), tmp_path)


def test_export_config_defaults_off_and_exact_errors(tmp_path):
    assert not _cfg(tmp_path).enabled and _cfg(tmp_path).batch_points == 5000
    c = _cfg(tmp_path, url="http://127.0.0.1:8428/")
    assert c.enabled and c.url == "http://127.0.0.1:8428" and c.kind == "victoriametrics"
    c = _cfg(tmp_path, url="http://i:8086", kind="influxdb2", org="so", bucket="lw", token_file="t")
    assert c.token_file == tmp_path / "t"
    cases = [
        (dict(url="127.0.0.1:8428"), "must be the server's address like http://127.0.0.1:8428"),
        (dict(url="http://vm:8428/api/v2/write"), "without the write path"),
        (dict(url="http://vm:8428", bucket="x"), "bucket is not used by VictoriaMetrics"),
        (dict(url="http://i:8086", kind="influxdb2", org="so"), "needs org and bucket"),
        (dict(url="http://i:8086", kind="influxdb2", org="so", bucket="b"), "needs token_file"),
        (dict(url="http://i:8181", kind="influxdb3"), "needs database"),
        (dict(url="http://i:8181", kind="influx"), "kind = 'influx' must be one of: victoriametrics, influxdb2"),
        (dict(batch_points=0), "batch_points must be >= 1"),
        (dict(urll="x"), "unknown setting(s) urll"),
    ]
    for kw, words in cases:
        with pytest.raises(ConfigError) as ei:
            _cfg(tmp_path, **kw)
        assert words in str(ei.value), (kw, str(ei.value))
        assert str(ei.value).startswith("collector.toml [export]: ")
    c = _cfg(tmp_path, url="http://i:8086", kind="influxdb2", org="so", bucket="lw", token_file="missing")
    with pytest.raises(ConfigError, match="token_file .*missing does not exist"):
        c.token()


def test_the_example_parses():
    from linewatch.collector.export.config import EXAMPLE
    doc = tomllib.loads(EXAMPLE)
    assert parse_export(Section(doc["export"], "[export]"), __import__("pathlib").Path(".")) == ExportConfig()
    for block in ("http://127.0.0.1:8428", 'kind = "influxdb2"', 'kind = "influxdb3"', "dedup.minScrapeInterval"):
        assert block in EXAMPLE


# --------------------------------------------------------------------------- every message
_REG = registry_mod.parse(tomllib.loads(registry_text(1)))


def _lp_split(s: str, sep: str) -> list[str]:
    out, cur, i = [], "", 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur += s[i:i + 2]
            i += 2
            continue
        if c == sep:
            out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    out.append(cur)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_messages(), st.integers(1, 2**40))
def test_points_for_never_raises_and_gives_valid_line_protocol(msg, pos):
    topic, payload = msg
    m = wire.parse_message(topic, payload)
    assert m is not None
    e = Event(pos=pos, kind=m.kind, agent_id=m.agent_id, site=m.site, line=m.line, at=m.measured_at.timestamp(),
              received_at=m.measured_at.timestamp(), ok=m.ok, data=m.data, stream=m.stream, seq=m.seq,
              error_code=m.error_code, error=m.error)
    for p in points_for(e, _REG):
        lp = p.line_protocol()
        assert "\n" not in lp and "\r" not in lp
        parts = _lp_split(lp, " ")
        assert len(parts) == 3, lp
        head, fields, ts = parts
        assert re.fullmatch(r"-?\d+", ts) and int(ts) == p.time_ms
        name, *tags = _lp_split(head, ",")
        assert name.startswith("lw_") and all(len(_lp_split(t, "=")) == 2 and _lp_split(t, "=")[1] for t in tags)
        for f in _lp_split(fields, ","):
            k, v = _lp_split(f, "=")
            assert k and math.isfinite(float(v)), f
        assert not any(k in ("source", "version", "hostname", "error", "command_id") for k, _ in p.fields)

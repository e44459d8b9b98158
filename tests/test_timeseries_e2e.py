"""Time series end to end: agent messages through a real mosquitto, the real collector process
exporting to a real VictoriaMetrics, its /metrics scraped, and every dashboard query run on it."""
from __future__ import annotations

import textwrap
import time
import urllib.request
from datetime import datetime, timedelta, timezone

from prometheus_client.parser import text_string_to_metric_families

import dashlab
from collectorlab import Publisher, start_collector
from conftest import free_port, wait_for, write_registry
from linewatch import wire
from vmfixture import victoria  # noqa: F401  (fixture)

REGISTRY = textwrap.dedent("""\
    [it_office]
    email = "it@tinh.example"
    [[site]]
    code = "21583"
    province = "52"
    name = "UBND phường Thử Nghiệm"
      [site.staff]
      full_time = 10
      [[site.line]]
      id = "fiber"
      isp = "VNPT"
      kind = "internet"
      contracted_down_mbps = 100
      contracted_up_mbps = 50
        [site.line.operator]
        email = "noc@vnpt.example"
    """)


def messages(n: int, t0: datetime) -> list[wire.Message]:
    out, seq = [], 0

    def m(kind, data, at, line="fiber", ok=True, code=None):
        nonlocal seq
        seq += 1
        out.append(wire.build_message(kind=kind, agent_id="ag-21583", province="52", site="21583",
                                      line=line if kind in wire.LINE_KINDS else None, seq=seq, stream="e2e0c0de",
                                      measured_at=at, data=data, ok=ok, error_code=code, error="x" if code else None))
    for i in range(n):
        at = t0 + timedelta(minutes=i)
        m("latency", {"method": "icmp-raw", "target": "1.1.1.1", "sent": 20, "received": 20 - (i % 3 == 0),
                      "loss_pct": 5.0 if i % 3 == 0 else 0.0, "rtt_avg_ms": 12.0 + i % 5, "jitter_ms": 1.5}, at)
        m("reach", {"method": "icmp-dgram", "target": "1.1.1.1", "state": "up", "change": i == 0,
                    "since": wire.format_time(t0), "interval_s": 2, "sent": 30, "lost": 0, "rtt_ms": 11.0}, at)
        m("heartbeat", {"version": "0.2", "uptime_s": 60.0 * i, "queue_depth": 0, "queue_dropped": 0,
                        "probe_errors": 0, "clock_utc": wire.format_time(at)}, at)
        if i % 10 == 0:
            m("bandwidth", {"method": "linewatch", "target": "http://speed:8090", "streams": 4, "duration_s": 8.0,
                            "bytes": 10**8, "download_mbps": 92.0 - i / 10, "upload_mbps": 47.5}, at)
    m("lan", {"method": "arp-scapy", "subnets": [{"cidr": "192.168.1.0/24", "interface": "eth0"}],
              "missed_sweeps_before_gone": 3, "sweep_no": 1, "sweep_s": 4.0, "hosts_seen": 9, "hosts_known": 9,
              "computers": 6, "by_class": {"computer": 6, "printer": 3}, "appeared": [], "gone": []},
      t0 + timedelta(minutes=n))
    return out


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {s.name + str(sorted(s.labels.items())): s.value for f in text_string_to_metric_families(text)
            for s in f.samples}


def test_agent_messages_reach_victoriametrics_through_the_collector_and_every_dashboard_query_answers(
        tmp_path, mosquitto, victoria, procs):
    reg = write_registry(tmp_path / "registry.toml", REGISTRY)
    http_port = free_port()
    cfg = tmp_path / "collector.toml"
    cfg.write_text(textwrap.dedent(f"""\
        registry = "{reg}"
        record = "{tmp_path / 'record.sqlite3'}"
        [mqtt]
        host = "127.0.0.1"
        port = {mosquitto.port}
        client_id = "collector-ts"
        [http]
        port = {http_port}
        [export]
        url = "{victoria.url}"
        contract_every_s = 10
        """))
    coll = start_collector(cfg, tmp_path / "collector.log", procs)
    t0 = datetime.now(timezone.utc) - timedelta(minutes=70)
    msgs = messages(60, t0)
    pub = Publisher(mosquitto.port)
    for m in msgs:
        pub.message(m)
    pub.wait()

    def exported() -> bool:
        m = scrape(http_port)
        return m.get("linewatch_messages_total[('kind', 'latency'), ('outcome', 'stored')]") == 60 and \
            m.get("linewatch_export_lag_events[]") == 0
    wait_for(exported, 60, "the collector to store and export everything (/metrics: export lag 0)")
    time.sleep(11)  # one more contract/staff/incident round

    rtt = victoria.export('lw_latency_rtt_avg_ms{site="21583",line="fiber"}')
    assert len(rtt) == 1 and len(rtt[0]["values"]) == 60, "every round once"
    assert rtt[0]["metric"]["isp"] == "VNPT" and rtt[0]["metric"]["target"] == "1.1.1.1"
    [contracted] = victoria.query('lw_line_contracted_down_mbps{site="21583",line="fiber"}')
    assert float(contracted["value"][1]) == 100.0, "the registry's number"
    [bw] = victoria.export('lw_bandwidth_download_mbps{site="21583"}')
    assert bw["values"] == [92.0 - i for i in range(6)], "each speed test, as measured"
    [ok] = victoria.export('lw_verdict_compliant_down{site="21583"}')
    assert ok["values"] == [1.0] * 6  # 87-92 Mbit/s of 100: above the 0.8 x line

    # the collector's own /metrics, as VictoriaMetrics would scrape it (deploy/server/scrape.yml)
    for _ in range(3):
        text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10).read()
        urllib.request.urlopen(urllib.request.Request(f"{victoria.url}/api/v1/import/prometheus", data=text),
                               timeout=10).read()
        time.sleep(1)
    at = time.time()
    values = {"province": "52", "site": "21583", "line": "fiber", "operator": "VNPT"}
    results = dashlab.run_dashboards(victoria.url, values, at=at, range_s=2 * 3600)
    errors = [(r.query.dashboard, r.query.where, r.error) for r in results if r.error]
    assert not errors, errors
    fed = ("lw_latency", "lw_bandwidth", "lw_reach", "lw_line_", "lw_verdict", "lw_site_staff",
           "linewatch_messages_total", "linewatch_feed_lag_events", "linewatch_agents")
    empty = [(r.query.dashboard, r.query.where, r.expr) for r in results
             if any(f in r.query.expr for f in fed) and r.query.kind != "annotation" and not r.series]
    assert not empty, empty
    assert coll.proc.poll() is None
    pub.close()

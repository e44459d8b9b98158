"""The collector's own health on /metrics, scraped over HTTP as Prometheus would."""
from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from linewatch.collector.ingest import Incoming
from linewatch.collector.metrics import registry_for, route
from linewatch.collector.notify.config import HttpConfig
from linewatch.collector.notify.links import Links
from linewatch.collector.web import AckServer

from incidentlab import Province


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_show_what_was_stored_refused_lagging_open_and_waiting(tmp_path):
    prov = Province(tmp_path)
    prov.latency()
    prov.latency()
    prov.reach("down")
    prov.ingest.store([Incoming("lw/v1/52/21583/line/fiber/latency", b"not json", prov.t)])
    prov.run()  # the rules open a line_down incident and queue its notice
    prov.send("heartbeat", {"version": "0.2", "uptime_s": 5.0, "queue_depth": 0, "queue_dropped": 0,
                            "probe_errors": 0, "clock_utc": "2026-11-24T00:00:00Z"}, line=None)
    server = AckServer(prov.record, Links(b"k" * 32, "http://127.0.0.1", 7), HttpConfig("127.0.0.1", 0)).start()
    server.add_route("/metrics", route(registry_for(prov.record, 10**9, lambda: 7)))
    try:
        m = scrape(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        server.stop()
    assert m[("linewatch_messages_total", (("kind", "latency"), ("outcome", "stored")))] == 2
    assert m[("linewatch_rejected_total", (("reason", "bad_json"),))] == 1
    assert m[("linewatch_incidents_open", (("kind", "line_down"),))] == 1
    assert m[("linewatch_notices_pending", ())] == 1
    assert m[("linewatch_feed_lag_events", (("consumer", "incidents.rules"),))] == 1  # the heartbeat, not yet judged
    assert m[("linewatch_agents", (("state", "online"),))] == 1
    assert m[("linewatch_ingest_queue", ())] == 7
    assert m[("linewatch_scrape_errors_total", ())] == 0

"""The collector's own health for Prometheus / VictoriaMetrics to scrape (`GET /metrics` on
the [http] endpoint), with prometheus-client.

Read from the record at scrape time (it is the source of truth, and every collector sharing
it reports the same figures), plus this process's queue:

    linewatch_messages_total{outcome="stored|duplicate|ignored", kind}   counter
    linewatch_rejected_total{reason}                                     counter
    linewatch_feed_head                                                  gauge: newest feed position
    linewatch_feed_lag_events{consumer}                                  gauge: feed_head - position
    linewatch_export_lag_events                                          gauge (the TSDB export)
    linewatch_agents{state="online|offline|silent"}                      gauge
    linewatch_incidents_open{kind}                                       gauge
    linewatch_notices_pending                                            gauge: notification backlog
    linewatch_ingest_queue                                               gauge: received, not yet stored
    linewatch_scrape_errors_total                                        counter (record unreachable)
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any, Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .status import agent_state

log = logging.getLogger("linewatch.collector.metrics")
EXPORT_CONSUMER = "export.tsdb"


class RecordMetrics:
    """A prometheus-client collector over the record (and optionally the MQTT queue)."""

    def __init__(self, record: Any, offline_after_s: float, queue_size: Callable[[], int] | None = None):
        self.record = record
        self.offline_after_s = offline_after_s
        self.queue_size = queue_size
        self.errors = 0

    def collect(self):
        try:
            yield from self._collect()
        except Exception as e:  # noqa: BLE001 - a scrape must answer; the error is a figure too
            self.errors += 1
            log.warning("metrics: cannot read the record (%s)", e)
        c = CounterMetricFamily("linewatch_scrape_errors", "Scrapes that could not read the record")
        c.add_metric([], self.errors)
        yield c

    def _collect(self):
        counters = self.record.counters()
        msgs = CounterMetricFamily("linewatch_messages", "Agent messages by outcome and kind",
                                   labels=["outcome", "kind"])
        rej = CounterMetricFamily("linewatch_rejected", "Messages refused or quarantined, by reason",
                                  labels=["reason"])
        for name, value in sorted(counters.items()):
            head, _, rest = name.partition(".")
            if head == "stored":
                msgs.add_metric(["stored", rest], value)
            elif head == "ignored":
                msgs.add_metric(["ignored", rest], value)
            elif head == "rejected":
                rej.add_metric([rest], value)
            elif name == "duplicates":
                msgs.add_metric(["duplicate", ""], value)
        yield msgs
        yield rej
        head = self.record.feed_head()
        g = GaugeMetricFamily("linewatch_feed_head", "Newest position of the record's feed")
        g.add_metric([], head)
        yield g
        positions = self.record.positions()
        lag = GaugeMetricFamily("linewatch_feed_lag_events", "Feed events a consumer has not read yet",
                                labels=["consumer"])
        for name, pos in sorted(positions.items()):
            if "." in name and not name.startswith("export.incidents"):
                lag.add_metric([name], max(0, head - pos))
        yield lag
        ex = GaugeMetricFamily("linewatch_export_lag_events", "Feed events not yet accepted by the time-series server")
        if EXPORT_CONSUMER in positions:
            ex.add_metric([], max(0, head - positions[EXPORT_CONSUMER]))
        yield ex
        now = time.time()
        states = Counter(agent_state(a, now, self.offline_after_s) for a in self.record.agents())
        ag = GaugeMetricFamily("linewatch_agents", "Agents by state", labels=["state"])
        for s in ("online", "offline", "silent"):
            ag.add_metric([s], states.get(s, 0))
        yield ag
        inc = GaugeMetricFamily("linewatch_incidents_open", "Incidents not closed, by kind", labels=["kind"])
        for kind, n in sorted(Counter(i.kind for i in self.record.incidents(live_only=True)).items()):
            inc.add_metric([kind], n)
        yield inc
        nb = GaugeMetricFamily("linewatch_notices_pending", "Notifications waiting to be delivered")
        nb.add_metric([], self.record.notice_backlog())
        yield nb
        if self.queue_size is not None:
            q = GaugeMetricFamily("linewatch_ingest_queue", "Messages received from the broker, not yet stored")
            q.add_metric([], self.queue_size())
            yield q


def registry_for(record: Any, offline_after_s: float, queue_size: Callable[[], int] | None = None
                 ) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(RecordMetrics(record, offline_after_s, queue_size))
    return reg


def route(reg: CollectorRegistry):
    """A GET route for collector/web.py's AckServer."""
    from .web import Response

    def metrics() -> Response:
        return Response(200, generate_latest(reg), "text/plain; version=0.0.4; charset=utf-8")
    return metrics

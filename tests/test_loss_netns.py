"""Latency and loss measured through faults injected with nftables inside network
namespaces built here, with the real agent CLI. Needs root (skips with the reason otherwise)."""
from __future__ import annotations

import json

import pytest

from linklab import Lab, agent_config

pytestmark = pytest.mark.netns


@pytest.fixture
def link(lab):
    office, server = lab.ns("o"), lab.ns("s")
    lab.link(office, server, 1)
    return office, server, lab.addr(1, 2), lab.addr(1, 1)


def latency_cfg(lab: Lab, src: str, target: str, count: int, method: str = "auto", spacing_ms: int = 10) -> str:
    return agent_config(lab.tmp / "state", f"""
[[line]]
id = "fiber"
source_address = "{src}"
  [line.latency]
  targets = ["{target}"]
  count = {count}
  spacing_ms = {spacing_ms}
  timeout_s = 1
  method = "{method}"
""")


DROP_REPLIES = """\
table inet lw3fault {
  chain out {
    type filter hook output priority 0; policy accept;
    icmp type echo-reply %s counter drop
  }
}
"""


def dropped(lab: Lab, ns: str) -> int:
    out = json.loads(lab.run(ns, "nft", "-j", "list", "table", "inet", "lw3fault").stdout)
    return sum(r["rule"]["expr"][-2]["counter"]["packets"] for r in (x for x in out["nftables"] if "rule" in x))


def test_random_10_percent_loss_one_way_is_measured_as_10_plus_minus_4_over_200_probes(lab, link):
    office, server, src, srv = link
    lab.nft(server, DROP_REPLIES % "numgen random mod 100 < 10")  # only the way back loses packets
    cfg = latency_cfg(lab, src, srv, count=200)
    for attempt in range(3):
        lab.run(server, "nft", "reset", "counters", "table", "inet", "lw3fault")
        [r] = lab.probe(office, cfg, "fiber", "latency")
        truth = dropped(lab, server)
        d = r["data"]
        assert d["sent"] == 200 and d["method"] == "icmp-raw", r
        # the probe counts exactly what the firewall dropped: nothing more, nothing less
        assert d["sent"] - d["received"] == truth, f"measured {d['received']} replies, nftables dropped {truth}"
        if 12 <= truth <= 28:  # the injector itself hit 10 +/- 4 %; it misses ~6 % of runs by chance
            break
    assert 6 <= d["loss_pct"] <= 14, f"loss {d['loss_pct']} % after {attempt + 1} runs"
    assert r["ok"] and d["rtt_median_ms"] > 0 and d["rtt_p95_ms"] >= d["rtt_median_ms"] and "jitter_ms" in d


def test_a_full_blackhole_gives_loss_100_and_a_reason_not_silence(lab, link):
    office, server, src, srv = link
    lab.nft(server, DROP_REPLIES % "")
    [r] = lab.probe(office, latency_cfg(lab, src, srv, count=20), "fiber", "latency")
    assert not r["ok"] and r["error_code"] == "unreachable"
    assert r["data"]["loss_pct"] == 100 and r["data"]["sent"] == 20 and r["data"]["received"] == 0
    assert f"no reply from {srv} to 20 probes" in r["error"]
    assert dropped(lab, server) == 20


def test_unprivileged_ping_sockets_work_exactly_when_ping_group_range_allows(lab, link):
    office, server, src, srv = link
    cfg = latency_cfg(lab, src, srv, count=5, method="icmp-dgram")
    lab.run(office, "sysctl", "-qw", "net.ipv4.ping_group_range=1 0")  # per namespace: off
    [r] = lab.probe(office, cfg, "fiber", "latency")
    assert not r["ok"] and r["error_code"] == "method_unavailable" and "ping_group_range" in r["error"]
    lab.run(office, "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
    [r] = lab.probe(office, cfg, "fiber", "latency")
    assert r["ok"] and r["data"]["method"] == "icmp-dgram" and r["data"]["loss_pct"] == 0, r


def test_tcp_connect_fallback_measures_through_a_firewall_that_drops_icmp(lab, link):
    office, server, src, srv = link
    lab.nft(server, DROP_REPLIES % "")
    lab.speedserver(server, 8090)
    [r] = lab.probe(office, latency_cfg(lab, src, f"tcp:{srv}:8090", count=10), "fiber", "latency")
    assert r["ok"] and r["data"]["method"] == "tcp-connect" and r["data"]["loss_pct"] == 0, r

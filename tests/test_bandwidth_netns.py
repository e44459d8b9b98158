"""Bandwidth measured on links shaped with tc tbf inside network namespaces built here,
compared with iperf3 on the same link in the same run (one after the other) and with what the
shaper lets through at all: TCP payload can use 1448/1514 of a tbf rate (linklab.payload_ceiling).
Runs the real agent CLI in the office namespace. Needs root (skips with the reason otherwise).

Noise, measured on this 2-core VM against the payload ceiling: iperf3 -t 3 -O 2 read from
-3 % to +2 %, a 10 s iperf3 (-t 8 -O 2) from -2.2 % to +1.7 % (its in-order count at the two
ends of its window; above the ceiling at 2-5 Mbit/s), linewatch from -0.9 % to +0.6 %
(bench/bandwidth.py --repeat 3 prints the spread per line)."""
from __future__ import annotations

import json
import sys

import pytest

from linklab import Lab, agent_config, payload_ceiling

pytestmark = pytest.mark.netns

#: iperf3 -t 3 -O 2 in the default run (10 s of iperf3 per line); 10 s per direction in soak
QUICK_IPERF3_S, FULL_IPERF3_S = 5, 10


def bw_line(line_id: str, src: str | None, method: str, target: str, max_duration_s: float = 5) -> str:
    bind = f'source_address = "{src}"' if src else ""
    return f"""
[[line]]
id = "{line_id}"
{bind}
  [line.bandwidth]
  method = "{method}"
  target = "{target}"
  streams = 4
  max_duration_s = {max_duration_s}
  warmup_s = 2
  monthly_budget_mb = 100000
"""


def office_and_server(lab: Lab, down: float, up: float | None = None, **bucket: float):
    """Office and speed server joined by one link shaped as a line of ``down``/``up`` Mbit/s."""
    office, server = lab.ns("o"), lab.ns("s")
    if_o, if_s = lab.link(office, server, 1)
    lab.shape_line(office, if_o, server, if_s, down, up, **bucket)
    lab.speedserver(server)
    return office, server, lab.addr(1, 2), lab.addr(1, 1)


def measure(lab: Lab, office: str, src: str, method: str, target: str, line: str = "l1",
            max_duration_s: float = 5) -> dict:
    cfg = agent_config(lab.tmp / "state", bw_line(line, src, method, target, max_duration_s))
    [r] = lab.probe(office, cfg, line, "bandwidth")
    assert r["line"] == line and r["kind"] == "bandwidth"
    assert r["ok"], f"{method} failed: {r['error_code']}: {r['error']}"
    return r["data"]


def check_against_iperf3(lab: Lab, down: float, up: float | None = None, iperf3_s: float = QUICK_IPERF3_S) -> None:
    up = down if up is None else up
    office, server, src, srv = office_and_server(lab, down, up)
    lab.iperf3_server(server)
    shaped = {"download_mbps": down, "upload_mbps": up}

    def pair(seconds: float) -> tuple[dict, dict]:
        ref = measure(lab, office, src, "iperf3", f"{srv}:5201", max_duration_s=seconds)
        ours = measure(lab, office, src, "linewatch", f"http://{srv}:8090", max_duration_s=10)
        return ref, ours

    def agree(ref: dict, ours: dict) -> bool:
        return all(abs(ours[k] / ref[k] - 1) <= 0.03 for k in shaped)

    # Two measurements on a shared 2-core VM. iperf3 over 3 s itself strays from -3 % to +4 %
    # from what the link carries (its in-order count at the two ends of its window: the very
    # lumps linewatch no longer counts); over 8 s, within +/-2.2 %. So when a quick pair
    # disagrees, independent pairs with a 10 s iperf3 decide.
    for seconds in (iperf3_s, FULL_IPERF3_S, FULL_IPERF3_S):
        ref, ours = pair(seconds)
        if agree(ref, ours):
            break
    for key, mbit in shaped.items():
        ceiling = payload_ceiling(mbit)
        assert 0.9 * ceiling < ref[key] <= 1.05 * ceiling, f"iperf3 {key}={ref[key]} is not a {mbit} Mbit/s link"
        assert abs(ours[key] / ref[key] - 1) <= 0.03, (
            f"{key}: linewatch {ours[key]} vs iperf3 {ref[key]} on a {down}/{up} line (of the payload ceiling: "
            f"linewatch {ours[key] / ceiling:.3f}, iperf3 {ref[key] / ceiling:.3f})")
        # never above what the shaper lets through (1 %: when the kernel's counters are read)
        assert ours[key] <= 1.01 * ceiling < mbit, f"{key}: linewatch {ours[key]} above a {mbit} Mbit/s shaper"
    assert ours["method"] == "linewatch" and ours["streams"] == 4 and 0.5 <= ours["warmup_s"] <= 2
    assert ours["stopped_by"] == "stable/stable", ours
    # a 10 s iperf3 run moves 10 s of both directions; a test stops well before a third of that
    iperf3_10s = 10 * (ref["download_mbps"] + ref["upload_mbps"]) * 1e6 / 8
    assert 0 < ours["bytes"] <= iperf3_10s / 3, f"{ours['bytes'] / 1e6:.1f} MB vs {iperf3_10s / 1e6:.1f} MB"
    assert ours["duration_s"] <= 2 * 3.3 + 1


@pytest.mark.parametrize("mbit", [5, 20, 100])
def test_linewatch_agrees_with_iperf3_within_3_percent_stays_under_the_shaper_and_costs_under_a_third(lab, mbit):
    check_against_iperf3(lab, mbit)


def test_an_operators_shaper_bucket_at_the_start_is_left_out_of_the_figure(lab):
    """A fresh transfer runs at 30 Mbit/s on a 20 Mbit/s line until its 2 MB bucket is spent
    (after 1.6 s): the warm-up lasts until the rate is level, and the figure is the line's
    rate, not the bucket's (a fixed 0.5 s warm-up would have counted a second of the bucket)."""
    office, server, src, srv = office_and_server(lab, 20, burst_bytes=2_000_000, peak_mbit=30)
    ours = measure(lab, office, src, "linewatch", f"http://{srv}:8090", max_duration_s=10)
    for key in ("download_mbps", "upload_mbps"):
        assert 0.97 * payload_ceiling(20) <= ours[key] <= 1.01 * payload_ceiling(20), ours
    assert ours["stopped_by"] == "stable/stable" and ours["warmup_s"] >= 1.25, ours


LINES = [(2, 2), (5, 5), (10, 10), (20, 20), (50, 50), (100, 100), (200, 200),
         (20, 5),    # copper (ADSL2+/VDSL2-class) and cheap FTTH plans: a quarter upstream
         (100, 20)]  # FTTH plans that sell the download: a fifth upstream


@pytest.mark.soak
@pytest.mark.parametrize("down,up", LINES, ids=[f"{d}-{u}" for d, u in LINES])
@pytest.mark.parametrize("repeat", range(3))
def test_soak_linewatch_matches_a_10_s_iperf3_on_symmetric_and_asymmetric_lines(lab, down, up, repeat):
    check_against_iperf3(lab, down, up, iperf3_s=FULL_IPERF3_S)


def test_each_line_of_a_two_line_office_is_measured_over_its_own_shaped_line(lab):
    """Two modems, one server: only source-address routing decides the path, so a probe that
    ignored the line's address would measure the wrong line (or none)."""
    office, server = lab.ns("o"), lab.ns("s")
    rates = {"slow": 5, "fast": 20}
    srv = lab.addr(9, 1)
    lab.run(server, "ip", "addr", "add", f"{srv}/32", "dev", "lo")
    for subnet, (name, mbit) in enumerate(rates.items(), start=1):
        if_o, if_s = lab.link(office, server, subnet, tag=name[0])
        lab.shape(office, if_o, mbit)
        lab.shape(server, if_s, mbit)
        table = str(100 + subnet)
        lab.run(office, "ip", "rule", "add", "from", lab.addr(subnet, 2), "lookup", table)
        lab.run(office, "ip", "route", "add", f"{srv}/32", "via", lab.addr(subnet, 1), "table", table)
    lab.speedserver(server)
    lines = "".join(bw_line(name, lab.addr(i, 2), "linewatch", f"http://{srv}:8090")
                    for i, name in enumerate(rates, start=1))
    lines += bw_line("unplugged", "10.254.254.254", "linewatch", f"http://{srv}:8090")
    cfg = agent_config(lab.tmp / "state", lines)
    got = {}
    for name in rates:
        [r] = lab.probe(office, cfg, name, "bandwidth")
        assert r["ok"] and r["line"] == name, r
        got[name] = r["data"]
        assert r["data"]["source"] == f"source {lab.addr(list(rates).index(name) + 1, 2)}"
    for name, mbit in rates.items():
        for key in ("download_mbps", "upload_mbps"):
            # each line's own rate (payload is ~95.6 % of a tbf rate), far from the other line's
            assert 0.85 * mbit <= got[name][key] <= 1.05 * mbit, f"line {name} ({mbit} Mbit/s) measured {got[name]}"
    [r] = lab.probe(office, cfg, "unplugged", "bandwidth")
    assert not r["ok"] and r["error_code"] == "line_unbound" and "10.254.254.254" in r["error"]
    assert r["data"]["bytes"] == 0 and "download_mbps" not in r["data"], "no other line measured in its place"


def test_speedtest_cli_against_the_mini_endpoint_never_contacts_speedtest_net(lab):
    """The office namespace has no route beyond the lab link: had speedtest-cli fetched
    speedtest.net's config, the test would have failed."""
    pytest.importorskip("speedtest", reason="speedtest-cli is not installed (pip install 'linewatch[agent]')")
    office, server, src, srv = office_and_server(lab, 20)
    d = measure(lab, office, src, "speedtest-mini", f"http://{srv}:8090")
    assert d["method"] == "speedtest-mini" and d["target"] == f"http://{srv}:8090"
    # speedtest-cli keeps its ramp-up in the figure and counts upload bytes handed to the
    # socket: looser than ours (the benchmark shows by how much), but it is the same link
    assert 0.6 * 20 < d["download_mbps"] <= 20 and 0.6 * 20 < d["upload_mbps"] < 1.5 * 20
    health = lab.run(office, sys.executable, "-c", f"import urllib.request;print(urllib.request.urlopen("
                                                f"'http://{srv}:8090/lw/health').read().decode())")
    served = json.loads(health.stdout)
    assert served["bytes_sent"] > 0 and served["bytes_received"] > 0


def test_speedtest_against_ookla_without_internet_fails_at_once_with_the_reason(lab):
    """No route out of the office namespace: the name lookup / connection fails locally
    (no packet leaves the lab) and the result says the line has no internet."""
    pytest.importorskip("speedtest", reason="speedtest-cli is not installed (pip install 'linewatch[agent]')")
    office = lab.ns("o")
    server = lab.ns("s")
    lab.link(office, server, 1)
    cfg = agent_config(lab.tmp / "state", """
[[line]]
id = "fiber"
source_address = "%s"
  [line.bandwidth]
  method = "speedtest"
  timeout_s = 3
""" % lab.addr(1, 2))
    [r] = lab.probe(office, cfg, "fiber", "bandwidth", timeout=60)
    assert not r["ok"] and r["error_code"] == "unreachable", r
    assert "speedtest.net" in r["error"] and "no internet access" in r["error"]
    assert r["data"]["method"] == "speedtest" and r["data"]["bytes"] == 0


def test_a_missing_speed_server_is_a_failed_measurement_naming_the_server(lab):
    office, server = lab.ns("o"), lab.ns("s")
    lab.link(office, server, 1)
    srv = lab.addr(1, 1)
    cfg = agent_config(lab.tmp / "state", bw_line("l1", lab.addr(1, 2), "linewatch", f"http://{srv}:8090"))
    [r] = lab.probe(office, cfg, "l1", "bandwidth")
    assert not r["ok"] and r["error_code"] == "unreachable"
    assert f"nothing listens on {srv}:8090" in r["error"] and "linewatch-speedserver" in r["error"]

"""Bandwidth measured on links shaped with tc tbf inside network namespaces built here,
compared with iperf3 on the same link in the same run. Runs the real agent CLI in the
office namespace. Needs root (skips with the reason otherwise)."""
from __future__ import annotations

import json
import sys

import pytest

from linklab import Lab, agent_config

pytestmark = pytest.mark.netns


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


def office_and_server(lab: Lab, mbit: float):
    office, server = lab.ns("o"), lab.ns("s")
    if_o, if_s = lab.link(office, server, 1)
    lab.shape(office, if_o, mbit)  # upload direction
    lab.shape(server, if_s, mbit)  # download direction
    lab.speedserver(server)
    return office, server, lab.addr(1, 2), lab.addr(1, 1)


def measure(lab: Lab, office: str, src: str, method: str, target: str, line: str = "l1",
            max_duration_s: float = 5) -> dict:
    cfg = agent_config(lab.tmp / "state", bw_line(line, src, method, target, max_duration_s))
    [r] = lab.probe(office, cfg, line, "bandwidth")
    assert r["line"] == line and r["kind"] == "bandwidth"
    assert r["ok"], f"{method} failed: {r['error_code']}: {r['error']}"
    return r["data"]


def check_against_iperf3(lab: Lab, mbit: float) -> None:
    office, server, src, srv = office_and_server(lab, mbit)
    lab.iperf3_server(server)
    # 6 s after the 2 s warm-up: over 3 s, iperf3 itself strayed up to 9 % from the
    # link's true payload rate on this busy 2-core machine (kernel backlog lumps)
    def pair() -> tuple[dict, dict]:
        ref = measure(lab, office, src, "iperf3", f"{srv}:5201", max_duration_s=8)
        ours = measure(lab, office, src, "linewatch", f"http://{srv}:8090", max_duration_s=8)
        return ref, ours

    def agree(ref: dict, ours: dict) -> bool:
        return all(abs(ours[k] / ref[k] - 1) <= 0.05 for k in ("download_mbps", "upload_mbps"))

    ref, ours = pair()
    if not agree(ref, ours):
        # Both tools are measurements on a shared 2-core VM: in 42 soak comparisons one pair
        # missed by 5.3 % (iperf3 itself read low). A second, independent pair must agree.
        ref, ours = pair()
    for key in ("download_mbps", "upload_mbps"):
        assert 0.85 * mbit < ref[key] <= 1.1 * mbit, f"iperf3 {key}={ref[key]} does not look like a {mbit} Mbit/s link"
        ratio = ours[key] / ref[key]
        assert abs(ratio - 1) <= 0.05, f"{key}: linewatch {ours[key]} vs iperf3 {ref[key]} at {mbit} Mbit/s"
    assert ours["method"] == "linewatch" and ours["streams"] == 4 and ours["warmup_s"] == 2
    assert 0 < ours["duration_s"] <= 2 * 8 + 3 and ours["bytes"] > 0
    # the bytes charged are what the link can carry in the time the test ran, not more
    assert ours["bytes"] <= mbit * 1e6 / 8 * ours["duration_s"] * 1.02


@pytest.mark.parametrize("mbit", [5, 20, 100])
def test_download_and_upload_are_within_5_percent_of_iperf3_on_a_tbf_shaped_link(lab, mbit):
    check_against_iperf3(lab, mbit)


@pytest.mark.soak
@pytest.mark.parametrize("mbit", [2, 5, 10, 20, 50, 100, 200])
@pytest.mark.parametrize("repeat", range(3))
def test_soak_linewatch_matches_iperf3_over_a_wider_rate_matrix(lab, mbit, repeat):
    check_against_iperf3(lab, mbit)


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

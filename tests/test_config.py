"""Config files are validated at start-up, with messages that say exactly what to fix."""
import subprocess
import sys
import tomllib

import pytest

from linewatch.agent import config as agent_config
from linewatch.collector import registry
from linewatch.config import ConfigError

from conftest import REGISTRY_TOML, ROOT

AGENT = """
[agent]
id = "ag-21583"
province = "52"
site = "21583"
[[line]]
id = "fiber"
[line.latency]
targets = ["10.0.0.1"]
"""


def agent_error(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        agent_config.parse(tomllib.loads(text))
    return str(e.value)


def registry_error(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        registry.parse(tomllib.loads(text))
    return str(e.value)


def test_the_shipped_examples_are_valid():
    cfg = agent_config.load(agent_config.EXAMPLE)
    assert [ln.id for ln in cfg.lines] == ["vnpt-fiber", "vnpt-tslcd"]
    reg = registry.load(registry.EXAMPLE)
    assert reg.sites["21583"].lines[1].kind == "tslcd"
    assert reg.sites["21583"].lines[0].thresholds.min_speed_ratio == 0.8  # QCVN 34:2022 default


def test_a_minimal_agent_config_gets_sane_defaults():
    cfg = agent_config.parse(tomllib.loads(AGENT))
    lat = cfg.lines[0].probes["latency"]
    assert (lat.count, lat.interval_s, lat.method) == (20, 300.0, "auto")
    assert cfg.mqtt.port == 1883 and cfg.heartbeat_s == 60


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('site = "21583"', 'site = "2158"'), "site '2158' must be a 5-digit commune code"),
    (lambda t: t.replace('province = "52"', 'province = 52'), "province must be text in quotes"),
    (lambda t: t.replace('targets = ["10.0.0.1"]', 'targets = []'), "line 'fiber' [latency]: targets must list"),
    (lambda t: t.replace('targets = ["10.0.0.1"]', 'targets = ["tcp:host"]'), "must look like tcp:HOST:PORT"),
    (lambda t: t + "count = 0\n", "line 'fiber' [latency]: count must be >= 1, got 0"),
    (lambda t: t + "methd = \"auto\"\n", "unknown setting(s) methd (misspelt?)"),
    (lambda t: t.replace("[line.latency]", "[line.latncy]"), "unknown setting or probe 'latncy' (probes: bandwidth, dns, http, latency, reach)"),
    (lambda t: t.replace('id = "fiber"', 'id = "fiber"\nsource_address = "192.168.1"'),
     "source_address '192.168.1' is not an IP address"),
    (lambda t: t + '[[line]]\nid = "tslcd"\ninterface = "eth1"\n[line.latency]\ntargets = ["10.1.1.1"]\n',
     "each must set source_address or interface to be measured over the right line; missing for: fiber"),
])
def test_agent_config_mistakes_are_named_exactly(edit, message):
    assert message in agent_error(edit(AGENT))


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("contracted_down_mbps = 200", "contracted_down_mbps = 0"),
     "site 21583, line 'tslcd': contracted_down_mbps must be > 0, got 0"),
    (lambda t: t.replace('kind = "tslcd"', 'kind = "adsl"'), "line 'tslcd': kind = 'adsl' must be one of: internet, tslcd"),
    (lambda t: t.replace('code = "21584"', 'code = "21583"'), "site 21583 is listed twice"),
    (lambda t: t.replace('agents = ["ag-21584"]', 'agents = ["ag-21583"]'), "agent 'ag-21583' is listed under sites 21583 and 21584"),
    (lambda t: t.replace('code = "21584"', 'code = "so-khcn"'), "a commune code must be 5 digits"),
    (lambda t: t.replace("full_time = 10", "full_time = -1"), "site 21583 [staff]: full_time must be >= 0"),
    (lambda t: t.replace('isp = "Viettel"', ''), "site 21584, line 'fiber': isp is required"),
])
def test_registry_mistakes_are_named_exactly(edit, message):
    assert message in registry_error(edit(REGISTRY_TOML))


def test_check_config_prints_the_error_and_exits_2(tmp_path):
    bad = tmp_path / "agent.toml"
    bad.write_text(AGENT.replace("count", "x") + "count = -5\n")
    out = subprocess.run([sys.executable, "-m", "linewatch.agent.cli", "-c", str(bad), "check-config"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    assert "config error: agent.toml line 'fiber' [latency]: count must be >= 1, got -5" in out.stderr
    missing = subprocess.run([sys.executable, "-m", "linewatch.agent.cli", "-c", str(tmp_path / "nope.toml"),
                              "check-config"], capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 2 and "does not exist (copy the example" in missing.stderr


def test_the_shipped_collector_example_carries_the_notify_example_and_every_incidents_setting_parses():
    from linewatch.collector import config as collector_config
    from linewatch.collector.notify.config import EXAMPLE

    text = collector_config.EXAMPLE.read_text()
    assert EXAMPLE in text
    section = text.split("[incidents]")[1].split("\n[")[0]
    doc = tomllib.loads(tomllib.loads(text) and "[incidents]\n" + "\n".join(
        ln[2:] for ln in section.splitlines() if ln.startswith("# ")))
    assert set(doc["incidents"]) >= {"slow_m", "resolve_hold_s", "escalate_after_min", "it_office_copy"}
    cfg = collector_config.parse(doc)
    assert cfg.incidents.escalate_after_s == 1800 and cfg.notify.max_per_hour == 12


def test_an_incidents_policy_that_cannot_hold_is_refused_with_the_setting_named():
    from linewatch.collector import config as collector_config

    with pytest.raises(ConfigError, match=r"slow_m = 4 is more than slow_n = 3"):
        collector_config.parse({"incidents": {"slow_m": 4}})


def test_the_shipped_collector_example_carries_the_export_example():
    from linewatch.collector import config as collector_config
    from linewatch.collector.export.config import EXAMPLE

    assert EXAMPLE in collector_config.EXAMPLE.read_text()
    assert not collector_config.parse({}).export.enabled, "no export unless [export] url is set"

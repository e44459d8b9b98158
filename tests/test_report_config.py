"""What the office writes for the reports ([report] in collector.toml, the registry's form
columns) and what it types on the command line: exact messages for mistakes, hostile input
never anything but a clear refusal."""
from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linewatch.collector import config as collector_config
from linewatch.collector import registry as reg
from linewatch.collector.errors import BadMonth, UnknownScope
from linewatch.collector.report.run import _scope, period_of
from linewatch.config import ConfigError

SITE = '''
[[site]]
code = "21583"
province = "52"
name = "UBND xã A"
{extra}
  [[site.line]]
  id = "fiber"
  isp = "VNPT"
  kind = "internet"
  contracted_down_mbps = 100
  contracted_up_mbps = 100
'''


def registry(extra: str = "", top: str = "") -> reg.Registry:
    return reg.parse(tomllib.loads(top + SITE.format(extra=extra)))


def test_the_form_columns_are_read_from_the_registry():
    """Declared devices, software with its cost, LAN and proposals, and province names are read as written."""
    r = registry('lan = false\nproposals = "Nâng cấp"\n[site.devices]\nlaptops = 2\ndesktops = 9\n'
                 '[[site.software]]\nname = "MISA"\ncost_vnd = 5500000\n', '[provinces]\n"52" = "Gia Lai"\n')
    s = r.site("21583")
    assert (s.devices.laptops, s.devices.desktops, s.devices.scanners) == (2, 9, None)
    assert s.software == (reg.Software("MISA", 5500000),) and s.lan is False and s.proposals == "Nâng cấp"
    assert r.provinces == {"52": "Gia Lai"}


@pytest.mark.parametrize("extra, top, message", [
    ("[site.devices]\nlaptops = -1\n", "", "registry site 21583 [devices]: laptops must be >= 0, got -1"),
    ("[site.devices]\nlaptop = 1\n", "", "registry site 21583 [devices]: unknown setting(s) laptop (misspelt?)"),
    ("[[site.software]]\ncost_vnd = 1\n", "", "registry site 21583 [[site.software]] #1: name is required"),
    ('lan = "yes"\n', "", "registry site 21583: lan must be true or false, got 'yes'"),
    ("", '[provinces]\n"Gia Lai" = "52"\n',
     "registry [provinces]: 'Gia Lai' is not a 2-digit province code, e.g. \"52\" = \"Gia Lai\""),
])
def test_registry_mistakes_in_the_form_columns_are_named_exactly(extra, top, message):
    """A wrong form column in the registry is refused with a message naming the site and the key."""
    with pytest.raises(ConfigError) as e:
        registry(extra, top)
    assert str(e.value) == message


@pytest.mark.parametrize("table, message", [
    ("day = 5", "collector.toml [report]: day = 5: the operators' figures are due before the 5th (Circular 06/2026 "
                "Art. 9); use a day from 1 to 4"),
    ('doc_code = "BC/SKHCN"', "collector.toml [report]: doc_code = 'BC/SKHCN' is the short name in "
                              "\"Số: …/BC-SKHCN\": letters without spaces or '/'"),
    ("min_completeness_pct = 120", "collector.toml [report]: min_completeness_pct must be <= 100, got 120"),
    ("[report.schedule]\nlatency_interval_s = 0", "collector.toml [report.schedule]: latency_interval_s must be >= 1, "
                                                  "got 0"),
    ("hours = 7", "collector.toml [report]: unknown setting(s) hours (misspelt?)"),
])
def test_report_config_mistakes_are_named_exactly(tmp_path, table, message):
    """A wrong [report] setting stops the collector at start with one exact message."""
    p = tmp_path / "collector.toml"
    p.write_text(f"[report]\n{table}\n")
    with pytest.raises(ConfigError) as e:
        collector_config.load(p)
    assert str(e.value) == message


NOW = 1_795_000_000.0  # 2026-11-18


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12) | st.from_regex(r"\A-?\d{1,5}-\d{1,3}\Z"))
def test_any_month_text_is_a_past_month_or_a_clear_refusal(month):
    """Whatever is typed after --month: a Period of a month already over, or BadMonth."""
    try:
        p = period_of(month, NOW)
    except BadMonth as e:
        assert "--month" in str(e) or "chưa kết thúc" in str(e)
        return
    assert p.end <= NOW and p.start < p.end and 28 <= p.days <= 31 and month == p.month


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=8)), st.one_of(st.none(), st.text(max_size=8)),
       st.one_of(st.none(), st.text(max_size=10)))
def test_any_scope_is_a_subset_of_the_registry_or_a_clear_refusal(province, site, operator):
    """--province/--site/--operator select registered units, or raise UnknownScope naming what exists."""
    r = registry()
    try:
        sites, op = _scope(r, province, site, operator)
    except UnknownScope as e:
        assert "Không có" in str(e)
        return
    assert all(s in r.sites.values() for s in sites)
    assert op in (None, "VNPT")

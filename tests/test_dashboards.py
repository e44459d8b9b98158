"""The Grafana dashboards: built by dashboards/build.py, valid for Grafana, and every query
returns what its panel is meant to show from a real VictoriaMetrics.

Grafana cannot run here, so the test runs what it would run (tests/dashlab.py): every panel
target, annotation and variable query, with the template variables substituted, against a
VictoriaMetrics filled from real agent messages stored through the real ingest path and the
incident engine (tests/incidentlab.Province), exported by the collector's Exporter
(collector/export/exporter.py). tests/test_timeseries_e2e.py runs the same queries on data that
came through mosquitto and the collector process.
"""
from __future__ import annotations

import copy
import json
import math
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jsonschema
import pytest

import dashlab
from incidentlab import Province
from linewatch.collector import registry as registry_mod
from linewatch.collector.export.config import ExportConfig
from linewatch.collector.export.exporter import Exporter
from linewatch.collector.incidents.engine import Engine
from linewatch.collector.incidents.rules import Policy
from linewatch.collector.ingest import Ingestor
from vmfixture import victoria  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "dashboards" / "build.py"
SCHEMAS = ROOT / "dashboards" / "schema"
OUT = ROOT / "deploy" / "grafana" / "dashboards"
FILES = sorted(OUT.rglob("*.json"))
DS_UID = "linewatch-vm"


# --------------------------------------------------------------------------- as code
def test_regenerating_the_dashboards_changes_nothing():
    r = subprocess.run([sys.executable, str(BUILD), "--check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"run `python dashboards/build.py` and commit the result:\n{r.stdout}{r.stderr}"


def test_check_mode_sees_a_hand_edited_or_missing_file(tmp_path):
    out = tmp_path / "dashboards"
    shutil.copytree(OUT, out)
    check = [sys.executable, str(BUILD), "--check", "--out", str(out)]
    assert subprocess.run(check, capture_output=True, timeout=120).returncode == 0
    victim = sorted(out.rglob("*.json"))[0]
    victim.write_text(victim.read_text(encoding="utf-8").replace("linewatch-vm", "other", 1), encoding="utf-8")
    r = subprocess.run(check, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and victim.name in r.stderr
    victim.unlink()
    assert subprocess.run(check, capture_output=True, timeout=120).returncode == 1
    assert subprocess.run([sys.executable, str(BUILD), "--out", str(out)], capture_output=True,
                          timeout=120).returncode == 0
    assert subprocess.run(check, capture_output=True, timeout=120).returncode == 0
    assert victim.exists()


def test_every_dashboard_is_built_and_in_a_folder():
    uids = {p.stem: p.parent.name for p in FILES}
    assert uids == {"lw-tong-quan-tinh": "Đường truyền", "lw-chi-tiet-duong-truyen": "Đường truyền",
                    "lw-su-co": "Đường truyền", "lw-mang-lan-may-tinh": "Đường truyền",
                    "lw-suc-khoe-he-thong": "Hệ thống linewatch"}
    titles = {json.loads(p.read_text(encoding="utf-8"))["title"] for p in FILES}
    assert titles == {"Tổng quan tỉnh", "Chi tiết đường truyền", "Sự cố", "Mạng LAN và máy tính",
                      "Sức khoẻ hệ thống"}


# --------------------------------------------------------------------------- schema
#: Where Grafana's published schema (generated from its CUE kinds) is narrower than the JSON
#: Grafana itself writes and the SDK's own builders emit. Each is relaxed, only there:
RELAXED = {
    # the base step of every threshold list is {"value": null} (-Infinity); the schema's own
    # description says "Nulls currently appear here when serializing -Infinity to JSON"
    ("Threshold", "value"): {"type": ["number", "null"]},
    # a byName / byType matcher's options is the name (a string): the SDK's override_by_name
    ("MatcherConfig", "options"): {},
    # an override property's value is whatever the option takes (a colour object, "center", ...)
    ("DynamicConfigValue", "value"): {},
}


def _schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.jsonschema.json").read_text(encoding="utf-8"))


def dashboard_validator() -> jsonschema.Draft7Validator:
    s = _schema("dashboard")
    assert s["$schema"] == "http://json-schema.org/draft-07/schema#"
    for (definition, prop), sub in RELAXED.items():
        assert prop in s["definitions"][definition]["properties"]
        s["definitions"][definition]["properties"][prop] = sub
    jsonschema.Draft7Validator.check_schema(s)
    return jsonschema.Draft7Validator(s)


def part_validator(schema: str, definition: str) -> jsonschema.Draft7Validator | None:
    s = _schema(schema)
    if definition not in s["definitions"]:
        return None
    return jsonschema.Draft7Validator({"$ref": f"#/definitions/{definition}", "definitions": s["definitions"]})


def _errors(v: jsonschema.Draft7Validator, doc) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
            for e in sorted(v.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_dashboard_validates_against_grafanas_dashboard_schema(path):
    d = json.loads(path.read_text(encoding="utf-8"))
    assert _errors(dashboard_validator(), d) == []
    # the panel plugins' own schemas: options, custom field config; the Prometheus queries
    target_v = part_validator("prometheus", "dataquery")
    for p in dashlab.panels(d):
        if p["type"] == "row":
            continue
        opts = part_validator(p["type"].replace("-", ""), "Options")
        assert opts is not None, p["type"]
        assert _errors(opts, p["options"]) == [], p["title"]
        custom = part_validator(p["type"].replace("-", ""), "FieldConfig")
        if custom is not None and "custom" in p["fieldConfig"]["defaults"]:
            assert _errors(custom, p["fieldConfig"]["defaults"]["custom"]) == [], p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert _errors(target_v, t) == [], (p["title"], t)


def test_the_schema_check_is_not_vacuous():
    d = json.loads((OUT / "Đường truyền" / "lw-tong-quan-tinh.json").read_text(encoding="utf-8"))
    v = dashboard_validator()
    for break_it in (lambda d: d["panels"][1]["gridPos"].update(w=30),
                     lambda d: d["panels"][1].pop("type"),
                     lambda d: d.pop("schemaVersion"),
                     lambda d: d["templating"]["list"][0].update(refresh=7),
                     lambda d: d.update(unknown_key=1)):
        bad = copy.deepcopy(d)
        break_it(bad)
        assert _errors(v, bad), "a broken dashboard passed the schema"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_query_uses_the_provisioned_data_source_and_every_panel_has_a_title(path):
    d = json.loads(path.read_text(encoding="utf-8"))
    ids = [p["id"] for p in dashlab.panels(d)]
    titles = [p["title"] for p in dashlab.panels(d)]
    assert len(titles) == len(set(titles)), "two panels with one title"
    assert len(ids) == len(set(ids)) and 0 not in ids
    for p in dashlab.panels(d):
        assert p.get("title", "").strip()
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": DS_UID}
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs)) and all(refs)
            assert all(t["datasource"]["uid"] == DS_UID for t in p["targets"])
    for v in d["templating"].get("list", []):
        assert v["datasource"]["uid"] == DS_UID and v["label"]
    for a in d["annotations"].get("list", []):
        assert a["datasource"]["uid"] == DS_UID


def test_the_office_dashboards_have_the_province_site_line_and_operator_menus():
    for p in FILES:
        d = json.loads(p.read_text(encoding="utf-8"))
        names = {v["name"] for v in d["templating"].get("list", [])}
        want = {"lw-tong-quan-tinh": {"province", "site", "line", "operator"},
                "lw-su-co": {"province", "site", "line", "operator"},
                "lw-chi-tiet-duong-truyen": {"province", "site", "line"},
                "lw-mang-lan-may-tinh": {"province", "site"}, "lw-suc-khoe-he-thong": set()}[d["uid"]]
        assert names == want, d["uid"]


# --------------------------------------------------------------------------- a real VictoriaMetrics
SITES = {"21583": (20, 5, 3), "21584": (10, 4, 1), "21585": (8, 2, 0)}  # staff: full, part, contract
LAN_COMPUTERS = {"21583": 25, "21584": 18, "21585": 6}
FIBER_ISP = "Viettel"


def registry_text() -> str:
    out = ['[it_office]\nname = "Sở KH&CN"\nemail = "it@tinh.example"\n']
    for code, (full, part, contract) in SITES.items():
        out.append(f'''
[[site]]
code = "{code}"
province = "52"
name = "UBND xã Thử {code}"
  [site.staff]
  full_time = {full}
  part_time = {part}
  contract = {contract}
  [[site.line]]
  id = "fiber"
  isp = "{FIBER_ISP}"
  kind = "internet"
  contracted_down_mbps = 100
  contracted_up_mbps = 50
    [site.line.operator]
    email = "noc@viettel.example"
  [[site.line]]
  id = "tslcd"
  isp = "VNPT"
  kind = "tslcd"
  contracted_down_mbps = 200
  contracted_up_mbps = 200
    [site.line.operator]
    email = "tslcd@vnpt.example"
''')
    return "".join(out)


def import_metrics(url: str, text: str) -> None:
    """Prometheus text exposition (what the collector's /metrics serves) into VictoriaMetrics."""
    req = urllib.request.Request(f"{url}/api/v1/import/prometheus", data=text.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status in (200, 204)


def health_metrics(end: float, minutes: int = 30) -> str:
    """The collector's /metrics, sampled every minute (as a scrape would store it)."""
    out = []
    for i in range(minutes):
        ts = int((end - (minutes - 1 - i) * 60) * 1000)
        out += [f'linewatch_messages_total{{outcome="stored"}} {1000 + 50 * i} {ts}',
                f'linewatch_messages_total{{outcome="rejected"}} {i} {ts}',
                f'linewatch_rejected_total{{reason="bad_signature"}} {i} {ts}',
                f'linewatch_feed_lag_events{{consumer="export"}} {i % 4} {ts}',
                f'linewatch_feed_lag_events{{consumer="incidents"}} 0 {ts}',
                f'linewatch_agents{{state="online"}} 3 {ts}', f'linewatch_agents{{state="offline"}} 1 {ts}',
                f'linewatch_agents{{state="silent"}} 0 {ts}',
                f'linewatch_notices_pending 2 {ts}', f'linewatch_export_lag_events {i % 4} {ts}']
    return "\n".join(out) + "\n"


class Scenario:
    """Six hours of a province: three sites with a fiber (Viettel) and a TSLCD (VNPT) line each.

    21584's fiber tests at 40 of 100 Mbit/s (below 0.8 x contracted); 21583's TSLCD is down for
    20 minutes (an incident, acknowledged after 5 minutes, then closed); 21585's fiber goes down
    for the last hour and stays down (an open incident). Every message goes through the real
    ingest path and the incident engine, and the collector's Exporter writes the feed and its
    periodic points (contracts, staff, computers, open and closed incidents) at the province's
    clock."""

    STEP_S, STEPS = 600, 36

    def __init__(self, tmp: Path, tsdb_url: str):
        self.p = p = Province(tmp, n_sites=1)
        (tmp / "registry.toml").write_text(registry_text(), encoding="utf-8")
        p.registry = registry_mod.load(tmp / "registry.toml")
        p.ingest = Ingestor(p.record, p.registry)
        p.engine = Engine(p.record, p.registry, Policy(), publish=p._publish, clock=lambda: p.t)
        self.t0 = p.t
        self.exporter = Exporter(p.record, p.registry, ExportConfig(url=tsdb_url, contract_every_s=self.STEP_S),
                                 clock=lambda: p.t)
        self.since: dict[tuple[str, str], tuple[str, float]] = {}  # (site, line) -> (state, since)
        self.acked: set[int] = set()

    def state(self, site: str, line: str, step: int) -> str:
        if (site, line) == ("21583", "tslcd") and step in (10, 11):
            return "down"
        if (site, line) == ("21585", "fiber") and step >= 30:
            return "down"
        return "up"

    def run(self) -> None:
        p = self.p
        for s in SITES:
            p.status("online", site=s, at=p.t)
        for step in range(self.STEPS):
            for s in SITES:
                for ln in ("fiber", "tslcd"):
                    st = self.state(s, ln, step)
                    prev = self.since.get((s, ln))
                    if prev is None or prev[0] != st:
                        self.since[(s, ln)] = prev = (st, p.t)
                    since = prev[1]
                    p.reach(st, since=since, site=s, line=ln)
                    if st == "up":
                        rtt, loss = (12.0 + step % 5) if ln == "fiber" else 4.0, 5.0 if step % 7 == 0 else 0.0
                        p.send("latency", {"method": "icmp-raw", "target": "1.1.1.1", "sent": 20,
                                           "received": round(20 * (1 - loss / 100)), "loss_pct": loss,
                                           "rtt_min_ms": rtt - 1, "rtt_avg_ms": rtt, "rtt_max_ms": rtt + 3,
                                           "jitter_ms": 0.5 + step % 3}, site=s, line=ln)
                    if step % 6 == 0 and st == "up":
                        down = 40.0 if (s, ln) == ("21584", "fiber") else (95.0 if ln == "fiber" else 190.0)
                        p.speed(down, 48.0 if ln == "fiber" else 190.0, site=s, line=ln)
                if step % 3 == 0:
                    n = LAN_COMPUTERS[s]
                    hosts = [{"mac": f"f8:bc:12:{int(s) % 256:02x}:00:{i:02x}", "ip": f"192.168.1.{10 + i}",
                              "device_class": "computer"} for i in range(n)] if step == 0 else []
                    p.send("lan", {"method": "arp-scapy", "subnets": [{"cidr": "192.168.1.0/24", "interface": "eth0"}],
                                   "missed_sweeps_before_gone": 3, "sweep_no": step + 1, "sweep_s": 4.2,
                                   "hosts_seen": n, "hosts_known": n, "computers": n, "by_class": {"computer": n},
                                   "appeared": hosts, "gone": []}, site=s, line=None)
            p.run()
            for inc in p.incidents():
                if (inc.site, inc.line, inc.kind) == ("21583", "tslcd", "line_down") and inc.id not in self.acked:
                    self.acked.add(inc.id)
                    p.record.acknowledge(inc.id, "Nguyễn Văn A", "đã cử kỹ thuật", now=inc.detected_at + 300)
            while self.exporter.step():
                pass
            self.exporter.periodic()
            self.end = p.t
            p.advance(self.STEP_S)
        self.exporter.close()


@pytest.fixture
def filled(tmp_path, victoria):
    sc = Scenario(tmp_path, victoria.url)
    sc.run()
    assert sc.exporter.lag() == 0 and sc.exporter.stats["points"] > 500 and sc.exporter.stats["refused_points"] == 0
    import_metrics(victoria.url, health_metrics(sc.end))
    return sc, victoria


ALL = {"province": ".*", "site": ".*", "line": ".*", "operator": ".*"}


def by_title(results: list[dashlab.Result], uid: str) -> dict[str, list[dashlab.Result]]:
    out: dict[str, list[dashlab.Result]] = {}
    for r in results:
        if r.query.dashboard == uid:
            out.setdefault(r.query.where.split("«", 1)[-1].rstrip("»") if "«" in r.query.where else r.query.where,
                           []).append(r)
    return out


def check_generic(results: list[dashlab.Result]) -> None:
    """Every query ran, returned series, the labels its panel shows, and finite numbers."""
    bad = []
    for r in results:
        if r.error or not r.series:
            bad.append(f"{r.query.dashboard} {r.query.where} {r.query.ref}: {r.error or 'no series'}\n    {r.expr}")
            continue
        need = dashlab.labels_used(r.query)
        for lab in r.labels:
            if not need <= set(lab):
                bad.append(f"{r.query.dashboard} {r.query.where} {r.query.ref}: labels {sorted(lab)} lack "
                           f"{sorted(need - set(lab))}")
                break
        if r.query.kind != "label_values" and not all(math.isfinite(v) for v in r.values()):
            bad.append(f"{r.query.dashboard} {r.query.where} {r.query.ref}: not finite {r.values()[:5]}")
    assert not bad, "\n".join(bad)


def one(results: dict[str, list[dashlab.Result]], title: str, ref: str = "A") -> dashlab.Result:
    [r] = [r for r in results[title] if r.query.ref == ref]
    return r


def test_every_query_returns_what_its_panel_shows_from_a_real_victoriametrics(filled):
    sc, vm = filled
    p = sc.p
    at, rng = sc.end, sc.STEP_S * sc.STEPS + 1800
    office = ("lw-tong-quan-tinh", "lw-su-co", "lw-mang-lan-may-tinh", "lw-suc-khoe-he-thong")
    every = dashlab.run_dashboards(vm.url, ALL, at=at, range_s=rng)
    check_generic([r for r in every if r.query.dashboard in office])
    one_line = {"province": "52", "site": "21585", "line": "fiber"}
    detail = [r for r in dashlab.run_dashboards(vm.url, one_line, at=at, range_s=rng)
              if r.query.dashboard == "lw-chi-tiet-duong-truyen"]
    check_generic(detail)
    assert len(every) + len(detail) > 60

    # the menus: what the registry and the scenario have
    v = {r.query.ref: sorted(x["site" if r.query.ref == "site" else
                               {"province": "province", "line": "line", "operator": "isp"}[r.query.ref]]
                             for x in r.labels)
         for r in every if r.query.kind == "label_values" and r.query.dashboard == "lw-tong-quan-tinh"}
    assert v == {"province": ["52"], "site": sorted(SITES), "line": ["fiber", "tslcd"],
                 "operator": sorted(["VNPT", FIBER_ISP])}

    # province overview
    ov = by_title(every, "lw-tong-quan-tinh")
    assert one(ov, "Đường truyền không đạt tốc độ").last() == [1]
    assert one(ov, "Đường truyền đạt tốc độ").last() == [5]
    assert one(ov, "Đường truyền mất kết nối").last() == [1]
    live = [i for i in p.incidents() if i.live]
    assert any((i.site, i.line, i.kind) == ("21585", "fiber", "line_down") for i in live)
    assert one(ov, "Sự cố đang mở").last() == [len(live)]
    grid = {(lab["site"], lab["line"]): val for lab, val in zip(one(ov, "Đạt tốc độ cam kết (lần đo gần nhất)").labels,
                                                                 one(ov, "Đạt tốc độ cam kết (lần đo gần nhất)").last())}
    assert grid == {(s, ln): (0.0 if (s, ln) == ("21584", "fiber") else 1.0) for s in SITES for ln in ("fiber", "tslcd")}
    reach = {(lab["site"], lab["line"]): val for lab, val in zip(one(ov, "Kết nối (trạng thái gần nhất)").labels,
                                                                  one(ov, "Kết nối (trạng thái gần nhất)").last())}
    assert reach == {(s, ln): (0.0 if (s, ln) == ("21585", "fiber") else 1.0) for s in SITES for ln in ("fiber", "tslcd")}
    table_open = one(ov, "Danh sách sự cố đang mở")
    assert {(x["site"], x["line"], x["kind"], x["isp"]) for x in table_open.labels} == \
        {(i.site, i.line or "", i.kind, p.registry.site(i.site).line(i.line).isp if i.line else "") for i in live}

    # line detail: 21585's fiber (Viettel, 100/50 contracted), down for the last hour
    ld = by_title(detail, "lw-chi-tiet-duong-truyen")
    dl = {r.query.legend: r for r in ld["Tốc độ tải xuống"]}
    assert set(dl["Cam kết"].values()) == {100.0}, "the contracted line is the registry's number"
    assert set(dl["Ngưỡng 0,8 × cam kết"].values()) == {80.0}
    assert set(dl["Đo được"].values()) == {95.0}
    ul = {r.query.legend: r for r in ld["Tốc độ tải lên"]}
    assert set(ul["Cam kết"].values()) == {50.0} and set(ul["Ngưỡng 0,8 × cam kết"].values()) == {40.0}
    assert set(ul["Đo được"].values()) == {48.0}
    assert one(ld, "Tỉ lệ tốc độ tải xuống / cam kết (lần đo gần nhất)").last() == [pytest.approx(0.95)]
    assert one(ld, "Tốc độ cam kết tải xuống").last() == [100.0]
    assert one(ld, "Số lần đo không đạt").last() == [0]
    lat = {r.query.ref: r for r in ld["Độ trễ trung bình"]}
    assert set(lat["A"].values()) <= {12.0, 13.0, 14.0, 15.0, 16.0} and lat["A"].labels[0]["target"] == "1.1.1.1"
    assert set(lat["B"].values()) == {50.0}
    assert set(one(ld, "Mất gói").values()) == {0.0, 5.0}
    assert set(one(ld, "Độ biến thiên trễ (jitter)").values()) == {0.5, 1.5, 2.5}
    [avail] = one(ld, "Độ khả dụng").last()
    assert 70 < avail < 100, avail  # down for the last ~6 of 36 reports
    [ann] = ld["Sự cố"]  # the annotation query
    assert ann.query.kind == "annotation"
    assert {x["kind"] for x in ann.labels} == {"line_down"} and set(ann.values()) == {1.0}
    assert set(one(ld, "Kết nối").values()) == {0.0, 1.0}

    # incidents: the closed TSLCD outage of 21583, acknowledged after 5 minutes
    inc = by_title(every, "lw-su-co")
    closed = [i for i in p.incidents() if i.state == "closed"]
    assert closed and any(i.time_to_ack_s == pytest.approx(300) for i in closed)
    assert one(inc, "Sự cố đã đóng").last() == [len(closed)]
    per_isp = {r.query.ref: {x["isp"]: val for x, val in zip(r.labels, r.last())}
               for r in inc["Thời gian xác nhận và khắc phục theo nhà mạng"]}
    vnpt = [i for i in closed if p.registry.site(i.site).line(i.line).isp == "VNPT"]
    assert per_isp["A"]["VNPT"] == len(vnpt)
    assert per_isp["B"]["VNPT"] == pytest.approx(sum(i.time_to_ack_s for i in vnpt if i.time_to_ack_s is not None)
                                                 / len([i for i in vnpt if i.time_to_ack_s is not None]))
    assert per_isp["C"]["VNPT"] == pytest.approx(sum(i.time_to_repair_s for i in vnpt) / len(vnpt))
    assert 600 <= per_isp["C"]["VNPT"] <= 3600, "20 minutes down, plus the hold before closing"

    # LAN and computers against staff
    lan = by_title(every, "lw-mang-lan-may-tinh")
    assert one(lan, "Tổng số cán bộ, công chức").last() == [sum(sum(x) for x in SITES.values())]
    assert one(lan, "Tổng số máy tính thấy trên mạng LAN").last() == [sum(LAN_COMPUTERS.values())]
    short = [s for s in SITES if LAN_COMPUTERS[s] < sum(SITES[s])]
    assert one(lan, "Điểm có ít máy tính hơn cán bộ").last() == [len(short)]
    tab = {r.query.ref: {x["site"]: val for x, val in zip(r.labels, r.last())}
           for r in lan["Máy tính và cán bộ theo điểm"]}
    assert tab["A"] == {s: float(sum(v)) for s, v in SITES.items()}
    assert tab["B"] == {s: float(n) for s, n in LAN_COMPUTERS.items()}
    assert tab["D"]["21584"] == pytest.approx(18 / 15)
    assert tab["E"] == {s: float(n) for s, n in LAN_COMPUTERS.items()}, "the collector's own host table"

    # collector health
    h = by_title(every, "lw-suc-khoe-he-thong")
    assert one(h, "Máy đo trực tuyến").last() == [3] and one(h, "Máy đo mất liên lạc").last() == [1]
    assert one(h, "Thông báo chờ gửi").last() == [2]
    rates = {x["outcome"]: r for r in h["Bản tin theo kết quả (mỗi giây)"] for x in r.labels}
    assert set(rates) == {"stored", "rejected"}
    stored = [s for s in h["Bản tin theo kết quả (mỗi giây)"][0].series if s["metric"]["outcome"] == "stored"][0]
    assert all(float(v) == pytest.approx(50 / 60, rel=0.05) for _, v in stored["values"][-5:])

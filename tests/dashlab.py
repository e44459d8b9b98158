"""Run what Grafana would run: every query of the built dashboards, against a real server.

Grafana cannot run here, so this does its part of the work: it takes each dashboard JSON
(deploy/grafana/dashboards/**.json), substitutes the template variables and Grafana's global
variables the way Grafana's Prometheus data source does, and sends

* every panel target to ``/api/v1/query`` (instant targets) or ``/api/v1/query_range``;
* every annotation query to ``/api/v1/query_range`` (Grafana's Prometheus annotations do);
* every ``label_values(metric{...}, label)`` variable query to ``/api/v1/label/<label>/values``
  with ``match[]`` (what Grafana sends for it),

and returns one :class:`Result` per query. Nothing here knows how the server was filled, so
the same function serves a test that writes points directly and one fed by the real collector:

    results = run_dashboards(vm_url, {"province": "52", "site": "21583", ...}, at=time.time())
"""
from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"

LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<match>.+?)\s*,\s*)?(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$")
LEGEND_LABEL = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass
class Query:
    dashboard: str      # uid
    where: str          # "panel 3 «title»", "annotation «name»", "variable site"
    ref: str            # refId, or the variable's name
    kind: str           # instant | range | annotation | label_values
    expr: str           # as written in the dashboard
    legend: str = ""
    panel: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Result:
    query: Query
    expr: str           # as sent (variables substituted)
    series: list[dict]  # Prometheus API result (vector / matrix); label_values: [{"metric": {label: v}}]
    error: str | None = None

    @property
    def labels(self) -> list[dict[str, str]]:
        return [s.get("metric", {}) for s in self.series]

    def values(self) -> list[float]:
        out: list[float] = []
        for s in self.series:
            if "value" in s:
                out.append(float(s["value"][1]))
            out.extend(float(v) for _, v in s.get("values", []))
        return out

    def last(self) -> list[float]:
        """The last value of every series."""
        return [float(s["value"][1]) if "value" in s else float(s["values"][-1][1]) for s in self.series]


def load(folder: Path = DASHBOARDS) -> dict[str, dict]:
    """uid -> dashboard JSON, for every dashboard file under ``folder``."""
    out = {}
    for p in sorted(folder.rglob("*.json")):
        d = json.loads(p.read_text(encoding="utf-8"))
        out[d["uid"]] = d
    return out


def panels(d: dict) -> Iterable[dict]:
    for p in d.get("panels", []):
        yield p
        yield from p.get("panels", [])  # collapsed rows keep their panels inside


def queries(d: dict) -> list[Query]:
    uid = d["uid"]
    out: list[Query] = []
    for v in d.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"] if isinstance(v["query"], str) else v["query"].get("query", "")
            out.append(Query(uid, f"variable {v['name']}", v["name"], "label_values", q))
    for a in d.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append(Query(uid, f"annotation «{a['name']}»", a["name"], "annotation", a["expr"]))
    for p in panels(d):
        for t in p.get("targets", []):
            out.append(Query(uid, f"panel {p.get('id')} «{p.get('title')}»", t.get("refId", ""),
                             "instant" if t.get("instant") else "range", t["expr"], t.get("legendFormat", ""), p))
    return out


def _duration(s: float) -> str:
    return f"{int(s)}s"


def substitute(expr: str, values: dict[str, str], range_s: float, step_s: float) -> str:
    """Grafana's interpolation for Prometheus: $__range / $__rate_interval / $__interval and
    template variables (``$name``, ``${name}``, ``[[name]]``; a multi-value selection is a regex
    ``(a|b)``, "All" is the variable's allValue, ``.*`` here)."""
    glob = {"__range": _duration(range_s), "__range_s": str(int(range_s)), "__range_ms": str(int(range_s * 1000)),
            "__rate_interval": _duration(max(4 * step_s, 300)), "__interval": _duration(step_s),
            "__interval_ms": str(int(step_s * 1000))}
    allv = {**glob, **{k: (v if isinstance(v, str) else "(" + "|".join(map(re.escape, v)) + ")")
                       for k, v in values.items()}}
    for name in sorted(allv, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", allv[name]).replace("[[" + name + "]]", allv[name])
        expr = re.sub(r"\$" + re.escape(name) + r"(?![A-Za-z0-9_])", lambda _m, v=allv[name]: v, expr)
    left = re.findall(r"\$\{?[A-Za-z_][A-Za-z0-9_]*", expr)
    if left:
        raise ValueError(f"no value for {left} in {expr!r}")
    return expr


def _get(url: str, path: str, params: list[tuple[str, Any]]) -> dict:
    q = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}{path}?{q}", timeout=60) as r:
        return json.loads(r.read())


def flush(url: str) -> None:
    """VictoriaMetrics: make what was just written searchable (test instances)."""
    try:
        urllib.request.urlopen(f"{url}/internal/force_flush", timeout=10).read()
    except OSError:
        pass


def run(url: str, q: Query, values: dict[str, str], at: float, range_s: float = 6 * 3600,
        step_s: float = 60) -> Result:
    try:
        expr = substitute(q.expr, values, range_s, step_s)
    except ValueError as e:
        return Result(q, q.expr, [], str(e))
    start, end = at - range_s, at
    try:
        if q.kind == "label_values":
            m = LABEL_VALUES.match(expr)
            if not m:
                return Result(q, expr, [], "not a label_values(...) query")
            params: list[tuple[str, Any]] = [("start", start), ("end", end)]
            if m["match"]:
                params.append(("match[]", m["match"]))
            vals = _get(url, f"/api/v1/label/{m['label']}/values", params)["data"]
            return Result(q, expr, [{"metric": {m["label"]: v}} for v in vals])
        if q.kind == "instant":
            r = _get(url, "/api/v1/query", [("query", expr), ("time", end), ("nocache", 1)])
        else:
            r = _get(url, "/api/v1/query_range", [("query", expr), ("start", start), ("end", end),
                                                  ("step", f"{int(step_s)}s"), ("nocache", 1)])
    except urllib.error.HTTPError as e:
        return Result(q, expr, [], f"HTTP {e.code}: {e.read()[:500].decode(errors='replace')}")
    if r.get("status") != "success":
        return Result(q, expr, [], json.dumps(r)[:500])
    return Result(q, expr, r["data"]["result"])


def run_dashboards(url: str, values: dict[str, str], at: float, range_s: float = 6 * 3600, step_s: float = 60,
                   folder: Path = DASHBOARDS) -> list[Result]:
    """Every variable, annotation and panel query of every dashboard, executed against ``url``."""
    flush(url)
    return [run(url, q, values, at, range_s, step_s) for d in load(folder).values() for q in queries(d)]


def labels_used(q: Query) -> set[str]:
    """Labels a panel needs from its query's result: the legend's {{label}}, the grid
    transformation's row/column fields and the table columns it renames."""
    need = set(LEGEND_LABEL.findall(q.legend))
    for t in q.panel.get("transformations", []):
        o = t.get("options", {})
        if t.get("id") == "groupingToMatrix":
            need |= {o["rowField"], o["columnField"]}
        if t.get("id") == "organize":
            need |= {k for k in o.get("renameByName", {}) if not k.startswith("Value") and k != "Time"}
    return need

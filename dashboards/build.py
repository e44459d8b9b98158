#!/usr/bin/env python3
"""Every linewatch Grafana dashboard, as code (grafana-foundation-sdk builders).

    python dashboards/build.py            # (re)write deploy/grafana/dashboards/<folder>/<uid>.json
    python dashboards/build.py --check    # exit 1 when a file would change (or is missing / stale)

The metric names come from the exporter's contract (collector/export/points.py): a measurement
``lw_latency`` with field ``rtt_avg_ms`` is the VictoriaMetrics series ``lw_latency_rtt_avg_ms``,
tags become labels. The collector's own health comes from its ``/metrics`` endpoint
(``linewatch_*``). Every query is PromQL / MetricsQL for a Prometheus-type data source with uid
``linewatch-vm`` (deploy/grafana/provisioning/datasources/linewatch.yaml).

The output is deterministic: panel ids and query refIds are numbered in build order, keys are
sorted, and nothing depends on the clock, so ``--check`` (and tests/test_dashboards.py) can tell
whether the committed JSON is what this script builds.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "deploy" / "grafana" / "dashboards"

#: the provisioned data source (deploy/grafana/provisioning/datasources/linewatch.yaml)
DS_UID = "linewatch-vm"
DS = dm.DataSourceRef(type_val="prometheus", uid=DS_UID)
#: Grafana folders (foldersFromFilesStructure: the folder title is the directory name)
FOLDER_LINES = "Đường truyền"
FOLDER_SYSTEM = "Hệ thống linewatch"
TAGS = ["linewatch"]
TZ = "Asia/Ho_Chi_Minh"  # the office reads Vietnam time (UTC+7)

GREEN, RED, ORANGE, BLUE, GREY = "green", "red", "orange", "blue", "text"

# --------------------------------------------------------------------------- label filters
#: template-variable filters, one per dashboard scope (multi-value variables expand to a regex)
F_PROVINCE = 'province=~"$province"'
F_LINES = 'province=~"$province", site=~"$site", line=~"$line", isp=~"$operator"'
F_SITES = 'province=~"$province", site=~"$site"'
F_INCIDENTS = F_LINES
F_ONE_LINE = 'site="$site", line="$line"'


# --------------------------------------------------------------------------- helpers
class Numbering:
    """Panel ids and query refIds in build order: the same script gives the same JSON."""

    def __init__(self) -> None:
        self.panel = 0

    def next_panel(self) -> int:
        self.panel += 1
        return self.panel


def q(expr: str, legend: str | None = None, *, instant: bool = False, fmt: str | None = None,
      ref: str = "A") -> prom.Dataquery:
    b = prom.Dataquery().expr(expr).ref_id(ref).datasource(DS).editor_mode(pm.QueryEditorMode.CODE)
    b = b.instant() if instant else b.range()
    if legend:
        b = b.legend_format(legend)
    if fmt == "table":
        b = b.format(pm.PromQueryFormat.TABLE)
    elif fmt == "time_series":
        b = b.format(pm.PromQueryFormat.TIME_SERIES)
    return b


def targets(panel, queries: list[prom.Dataquery]):
    for i, t in enumerate(queries):
        panel = panel.with_target(t.ref_id(chr(ord("A") + i)))
    return panel


def steps(*pairs: tuple[float | None, str]) -> db.ThresholdsConfig:
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for v, c in pairs])


def vmap(pairs: dict[str, tuple[str, str]]) -> list[dm.ValueMapping]:
    """Value -> (Vietnamese text, colour)."""
    return [dm.ValueMap(options={k: dm.ValueMappingResult(text=t, color=c, index=i)
                                 for i, (k, (t, c)) in enumerate(pairs.items())})]


YES_NO_SPEED = vmap({"1": ("Đạt", GREEN), "0": ("Không đạt", RED)})
UP_DOWN = vmap({"1": ("Có kết nối", GREEN), "0": ("Mất kết nối", RED)})


def override_color(name: str, color: str) -> list:
    return [dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color})]


def legend(calcs: tuple[str, ...] = ("lastNotNull", "min", "max", "mean"),
           mode: common.LegendDisplayMode = common.LegendDisplayMode.TABLE) -> cb.VizLegendOptions:
    return (cb.VizLegendOptions().display_mode(mode).placement(common.LegendPlacement.BOTTOM)
            .show_legend(True).calcs(list(calcs)))


def tooltip() -> cb.VizTooltipOptions:
    return cb.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.NONE)


def reduce_last() -> cb.ReduceDataOptions:
    return cb.ReduceDataOptions().values(False).calcs(["lastNotNull"]).fields("")


def ts(n: Numbering, title: str, queries: list, unit: str, *, desc: str = "", w: int = 12, h: int = 8,
       overrides: dict[str, str] | None = None, minimum: float | None = None, maximum: float | None = None,
       bars: bool = False) -> timeseries.Panel:
    p = (timeseries.Panel().id(n.next_panel()).title(title).datasource(DS).unit(unit).span(w).height(h)
         .legend(legend()).tooltip(tooltip()).line_width(2).fill_opacity(10).span_nulls(True)
         .show_points(common.VisibilityMode.AUTO))
    if bars:
        p = p.draw_style(common.GraphDrawStyle.BARS).fill_opacity(60)
    if desc:
        p = p.description(desc)
    if minimum is not None:
        p = p.min(minimum)
    if maximum is not None:
        p = p.max(maximum)
    for name, color in (overrides or {}).items():
        p = p.override_by_name(name, override_color(name, color))
    return targets(p, queries)


def st(n: Numbering, title: str, queries: list, *, unit: str = "none", desc: str = "", w: int = 6, h: int = 4,
       thresholds: db.ThresholdsConfig | None = None, decimals: float | None = None) -> stat.Panel:
    p = (stat.Panel().id(n.next_panel()).title(title).datasource(DS).unit(unit).span(w).height(h)
         .reduce_options(reduce_last()).graph_mode(common.BigValueGraphMode.NONE)
         .color_mode(common.BigValueColorMode.BACKGROUND).text_mode(common.BigValueTextMode.AUTO)
         .justify_mode(common.BigValueJustifyMode.AUTO).orientation(common.VizOrientation.AUTO))
    if desc:
        p = p.description(desc)
    if thresholds is not None:
        p = p.thresholds(thresholds)
    if decimals is not None:
        p = p.decimals(decimals)
    return targets(p, queries)


def tbl(n: Numbering, title: str, queries: list, *, desc: str = "", w: int = 24, h: int = 9,
        transformations: list[dm.DataTransformerConfig] = (), renames: dict[str, str] | None = None,
        mappings: list[dm.ValueMapping] | None = None, color_cells: bool = False,
        thresholds: db.ThresholdsConfig | None = None, unit: str | None = None,
        sort_by: str | None = None) -> table.Panel:
    p = (table.Panel().id(n.next_panel()).title(title).datasource(DS).span(w).height(h).show_header(True)
         .cell_height(common.TableCellHeight.SM))
    if desc:
        p = p.description(desc)
    if unit:
        p = p.unit(unit)
    if mappings:
        p = p.mappings(mappings)
    if thresholds is not None:
        p = p.thresholds(thresholds)
    if color_cells:
        p = p.override_by_field_type("number", [
            dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background", "mode": "basic"}),
            dm.DynamicConfigValue(id_val="custom.align", value="center")])
    if sort_by:
        p = p.sort_by([cb.TableSortByFieldState().display_name(sort_by).desc(False)])
    for t in transformations:
        p = p.with_transformation(t)
    if renames:
        p = p.with_transformation(organize(renames))
    return targets(p, queries)


def organize(renames: dict[str, str], exclude: tuple[str, ...] = ("Time",)) -> dm.DataTransformerConfig:
    """Keep and rename the label columns that matter, in this order (Vietnamese headers)."""
    return dm.DataTransformerConfig(id_val="organize", options={
        "excludeByName": {k: True for k in exclude},
        "indexByName": {k: i for i, k in enumerate(renames)},
        "renameByName": dict(renames)})


def matrix(row: str, column: str) -> dm.DataTransformerConfig:
    """A grid: one row per ``row`` label value, one column per ``column`` label value."""
    return dm.DataTransformerConfig(id_val="groupingToMatrix", options={
        "rowField": row, "columnField": column, "valueField": "Value", "emptyValue": "null"})


def merge() -> dm.DataTransformerConfig:
    return dm.DataTransformerConfig(id_val="merge", options={})


def timeline(n: Numbering, title: str, queries: list, mappings: list[dm.ValueMapping], *, desc: str = "",
             w: int = 24, h: int = 10) -> statetimeline.Panel:
    p = (statetimeline.Panel().id(n.next_panel()).title(title).datasource(DS).span(w).height(h)
         .mappings(mappings).show_value(common.VisibilityMode.NEVER).merge_values(True).row_height(0.8)
         .fill_opacity(80).line_width(0).align_value("left")
         .legend(legend((), common.LegendDisplayMode.LIST))
         .tooltip(tooltip())
         .thresholds(steps((None, GREY))).color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS)))
    if desc:
        p = p.description(desc)
    return targets(p, queries)


def row(n: Numbering, title: str) -> db.Row:
    return db.Row(title).id(n.next_panel())


# --------------------------------------------------------------------------- variables
def var(name: str, label: str, query: str, *, multi: bool = True, include_all: bool = True,
        desc: str = "") -> db.QueryVariable:
    v = (db.QueryVariable(name).label(label).datasource(DS).query(query)
         .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
         .multi(multi).include_all(include_all))
    if include_all:
        v = v.all_value(".*")
    if desc:
        v = v.description(desc)
    return v


#: every office dashboard draws its menus from the contract series, which every line has
CONTRACT = "lw_line_contracted_down_mbps"


def var_province(**kw) -> db.QueryVariable:
    return var("province", "Tỉnh", f"label_values({CONTRACT}, province)", **kw)


def var_site(**kw) -> db.QueryVariable:
    return var("site", "Điểm (mã xã)", f'label_values({CONTRACT}{{{F_PROVINCE}}}, site)', **kw)


def var_line(**kw) -> db.QueryVariable:
    return var("line", "Đường truyền", f'label_values({CONTRACT}{{{F_PROVINCE}, site=~"$site"}}, line)', **kw)


def var_operator(**kw) -> db.QueryVariable:
    return var("operator", "Nhà mạng", f'label_values({CONTRACT}{{{F_PROVINCE}}}, isp)', **kw)


def base(title: str, uid: str, desc: str, *, time_from: str = "now-24h") -> db.Dashboard:
    return (db.Dashboard(title).uid(uid).description(desc).tags(TAGS).timezone(TZ).time(time_from, "now")
            .refresh("5m").tooltip(dm.DashboardCursorSync.CROSSHAIR).readonly())


# --------------------------------------------------------------------------- dashboards
def province_overview() -> db.Dashboard:
    n = Numbering()
    last_verdict = f'min by (province, site, line, isp) (last_over_time(lw_verdict_compliant_down{{{F_LINES}}}[$__range]))'
    last_reach = f'min by (province, site, line, isp) (last_over_time(lw_reach_up{{{F_LINES}}}[$__range]))'
    d = (base("Tổng quan tỉnh", "lw-tong-quan-tinh",
              "Mỗi điểm (xã) và mỗi đường truyền: đạt tốc độ cam kết hay không (QCVN 34:2022: ≥ 0,8 × tốc độ "
              "cam kết), còn kết nối hay không, và các sự cố đang mở.")
         .with_variable(var_province()).with_variable(var_site()).with_variable(var_line())
         .with_variable(var_operator())
         .with_row(row(n, "Tóm tắt"))
         .with_panel(st(n, "Đường truyền không đạt tốc độ",
                        [q(f"count(({last_verdict}) == 0) or vector(0)", instant=True)],
                        desc="Số đường truyền có lần đo tốc độ gần nhất (trong khoảng thời gian đang xem) dưới "
                             "0,8 × tốc độ cam kết.",
                        thresholds=steps((None, GREEN), (1, RED))))
         .with_panel(st(n, "Đường truyền đạt tốc độ",
                        [q(f"count(({last_verdict}) == 1) or vector(0)", instant=True)],
                        thresholds=steps((None, BLUE))))
         .with_panel(st(n, "Đường truyền mất kết nối",
                        [q(f"count(({last_reach}) == 0) or vector(0)", instant=True)],
                        desc="Số đường truyền mà trạng thái kết nối gần nhất là mất kết nối.",
                        thresholds=steps((None, GREEN), (1, RED))))
         .with_panel(st(n, "Sự cố đang mở",
                        [q(f'sum(last_over_time(lw_incidents_open{{{F_INCIDENTS}}}[$__range])) or vector(0)',
                           instant=True)],
                        thresholds=steps((None, GREEN), (1, ORANGE), (5, RED))))
         .with_row(row(n, "Bảng điểm × đường truyền"))
         .with_panel(tbl(n, "Đạt tốc độ cam kết (lần đo gần nhất)",
                         [q(last_verdict, instant=True, fmt="table")],
                         desc="Mỗi hàng là một điểm (mã xã), mỗi cột là một đường truyền. Xanh: đạt "
                              "(≥ 0,8 × cam kết); đỏ: không đạt; trống: chưa có lần đo.",
                         transformations=[matrix("site", "line")], mappings=YES_NO_SPEED, color_cells=True,
                         thresholds=steps((None, RED), (1, GREEN)), w=12, h=10))
         .with_panel(tbl(n, "Kết nối (trạng thái gần nhất)",
                         [q(last_reach, instant=True, fmt="table")],
                         desc="Mỗi hàng là một điểm, mỗi cột là một đường truyền. Xanh: có kết nối; đỏ: mất "
                              "kết nối.",
                         transformations=[matrix("site", "line")], mappings=UP_DOWN, color_cells=True,
                         thresholds=steps((None, RED), (1, GREEN)), w=12, h=10))
         .with_row(row(n, "Diễn biến"))
         .with_panel(timeline(n, "Đạt tốc độ theo thời gian",
                              [q(f'min by (site, line) (lw_verdict_compliant_down{{{F_LINES}}})',
                                 "{{site}} · {{line}}")], YES_NO_SPEED))
         .with_panel(timeline(n, "Kết nối theo thời gian",
                              [q(f'min by (site, line) (lw_reach_up{{{F_LINES}}})', "{{site}} · {{line}}")],
                              UP_DOWN))
         .with_row(row(n, "Sự cố"))
         .with_panel(tbl(n, "Danh sách sự cố đang mở",
                         [q(f'sum by (site, line, kind, isp) (last_over_time(lw_incidents_open{{{F_INCIDENTS}}}'
                            f'[$__range])) > 0', instant=True, fmt="table")],
                         renames={"site": "Điểm", "line": "Đường truyền", "isp": "Nhà mạng", "kind": "Loại sự cố",
                                  "Value": "Số sự cố"}, sort_by="Điểm")))
    return d


def line_detail() -> db.Dashboard:
    n = Numbering()
    ann = (db.AnnotationQuery().name("Sự cố").datasource(DS).enable(True).icon_color("red")
           .expr(f'max by (site, line, kind, isp) (lw_incidents_open{{{F_ONE_LINE}}}) > 0'))
    down = {"Đo được": BLUE, "Cam kết": GREEN, "Ngưỡng 0,8 × cam kết": RED}
    d = (base("Chi tiết đường truyền", "lw-chi-tiet-duong-truyen",
              "Một đường truyền của một điểm: tốc độ đo được so với tốc độ cam kết và ngưỡng 0,8 × cam kết, "
              "độ trễ, độ biến thiên trễ (jitter), mất gói, độ khả dụng; sự cố hiện là chú thích trên biểu đồ.",
              time_from="now-7d")
         .with_variable(var_province(multi=False, include_all=False))
         .with_variable(var_site(multi=False, include_all=False))
         .with_variable(var_line(multi=False, include_all=False))
         .annotation(ann)
         .with_row(row(n, "Tốc độ"))
         .with_panel(ts(n, "Tốc độ tải xuống", [
             q(f'max by (site, line) (lw_bandwidth_download_mbps{{{F_ONE_LINE}}})', "Đo được"),
             q(f'max by (site, line) (lw_line_contracted_down_mbps{{{F_ONE_LINE}}})', "Cam kết"),
             q(f'max by (site, line) (lw_line_threshold_down_mbps{{{F_ONE_LINE}}})', "Ngưỡng 0,8 × cam kết")],
             "Mbits", overrides=down, minimum=0,
             desc="Mỗi lần đo tốc độ một điểm. Dưới đường đỏ (0,8 × cam kết) là không đạt (QCVN 34:2022)."))
         .with_panel(ts(n, "Tốc độ tải lên", [
             q(f'max by (site, line) (lw_bandwidth_upload_mbps{{{F_ONE_LINE}}})', "Đo được"),
             q(f'max by (site, line) (lw_line_contracted_up_mbps{{{F_ONE_LINE}}})', "Cam kết"),
             q(f'max by (site, line) (lw_line_threshold_up_mbps{{{F_ONE_LINE}}})', "Ngưỡng 0,8 × cam kết")],
             "Mbits", overrides=down, minimum=0))
         .with_panel(st(n, "Tỉ lệ tốc độ tải xuống / cam kết (lần đo gần nhất)",
                        [q(f'max by (site, line) (last_over_time(lw_verdict_ratio_down{{{F_ONE_LINE}}}[$__range]))',
                           instant=True)],
                        unit="percentunit", decimals=0, w=8,
                        thresholds=steps((None, RED), (0.8, GREEN))))
         .with_panel(st(n, "Tốc độ cam kết tải xuống",
                        [q(f'max by (site, line) (last_over_time(lw_line_contracted_down_mbps{{{F_ONE_LINE}}}'
                           f'[$__range]))', instant=True)],
                        unit="Mbits", w=8, thresholds=steps((None, BLUE))))
         .with_panel(st(n, "Số lần đo không đạt",
                        [q(f'sum(count_over_time(lw_verdict_compliant_down{{{F_ONE_LINE}}}[$__range])'
                           f' - sum_over_time(lw_verdict_compliant_down{{{F_ONE_LINE}}}[$__range])) or vector(0)',
                           instant=True)],
                        w=8, thresholds=steps((None, GREEN), (1, RED))))
         .with_row(row(n, "Chất lượng"))
         .with_panel(ts(n, "Độ trễ trung bình", [
             q(f'lw_latency_rtt_avg_ms{{{F_ONE_LINE}}}', "{{target}} ({{method}})"),
             q(f'max by (site, line) (lw_line_max_latency_ms{{{F_ONE_LINE}}})', "Ngưỡng")],
             "ms", minimum=0, overrides={"Ngưỡng": RED}, w=8,
             desc="Ngưỡng độ trễ theo QCVN 34:2019 (mặc định 50 ms, có thể đặt riêng cho từng đường)."))
         .with_panel(ts(n, "Độ biến thiên trễ (jitter)", [
             q(f'lw_latency_jitter_ms{{{F_ONE_LINE}}}', "{{target}} ({{method}})")], "ms", minimum=0, w=8))
         .with_panel(ts(n, "Mất gói", [
             q(f'lw_latency_loss_pct{{{F_ONE_LINE}}}', "{{target}} ({{method}})"),
             q(f'max by (site, line) (lw_line_max_loss_pct{{{F_ONE_LINE}}})', "Ngưỡng")],
             "percent", minimum=0, overrides={"Ngưỡng": RED}, w=8))
         .with_row(row(n, "Kết nối và độ khả dụng"))
         .with_panel(st(n, "Độ khả dụng", [
             q(f'100 * min by (site, line) (avg_over_time(lw_reach_up{{{F_ONE_LINE}}}[$__range]))', instant=True)],
             unit="percent", decimals=2, w=6,
             desc="Tỉ lệ các lần kiểm tra kết nối báo có kết nối trong khoảng thời gian đang xem.",
             thresholds=steps((None, RED), (99.5, GREEN))))
         .with_panel(timeline(n, "Kết nối", [q(f'min by (site, line) (lw_reach_up{{{F_ONE_LINE}}})', "{{line}}")],
                              UP_DOWN, w=18, h=4)))
    return d


def incidents() -> db.Dashboard:
    n = Numbering()
    closed = "lw_incident_closed_time_to_repair_s"
    f_closed = F_INCIDENTS
    d = (base("Sự cố", "lw-su-co",
              "Sự cố đang mở và đã đóng; thời gian nhà mạng xác nhận và khắc phục, theo nhà mạng.", time_from="now-30d")
         .with_variable(var_province()).with_variable(var_site()).with_variable(var_line())
         .with_variable(var_operator())
         .with_row(row(n, "Đang mở"))
         .with_panel(st(n, "Sự cố đang mở",
                        [q(f'sum(last_over_time(lw_incidents_open{{{F_INCIDENTS}}}[$__range])) or vector(0)',
                           instant=True)],
                        thresholds=steps((None, GREEN), (1, ORANGE), (5, RED))))
         .with_panel(st(n, "Sự cố đã đóng",
                        [q(f'sum(count_over_time(lw_incident_closed_closed{{{f_closed}}}[$__range])) or vector(0)',
                           instant=True)],
                        thresholds=steps((None, BLUE))))
         .with_panel(st(n, "Thời gian xác nhận trung bình",
                        [q(f'sum(sum_over_time(lw_incident_closed_time_to_ack_s{{{f_closed}}}[$__range])) / '
                           f'sum(count_over_time(lw_incident_closed_time_to_ack_s{{{f_closed}}}[$__range]))',
                           instant=True)], unit="s", thresholds=steps((None, GREEN), (3600, ORANGE), (14400, RED))))
         .with_panel(st(n, "Thời gian khắc phục trung bình",
                        [q(f'sum(sum_over_time({closed}{{{f_closed}}}[$__range])) / '
                           f'sum(count_over_time({closed}{{{f_closed}}}[$__range]))', instant=True)],
                        unit="s", thresholds=steps((None, GREEN), (14400, ORANGE), (86400, RED))))
         .with_panel(ts(n, "Sự cố đang mở theo loại",
                        [q(f'sum by (kind) (lw_incidents_open{{{F_INCIDENTS}}})', "{{kind}}")], "none", minimum=0,
                        w=12))
         .with_panel(ts(n, "Sự cố đang mở theo nhà mạng",
                        [q(f'sum by (isp) (lw_incidents_open{{{F_INCIDENTS}}})', "{{isp}}")], "none", minimum=0,
                        w=12))
         .with_panel(tbl(n, "Danh sách sự cố đang mở",
                         [q(f'sum by (site, line, kind, isp) (last_over_time(lw_incidents_open{{{F_INCIDENTS}}}'
                            f'[$__range])) > 0', instant=True, fmt="table")],
                         renames={"site": "Điểm", "line": "Đường truyền", "isp": "Nhà mạng", "kind": "Loại sự cố",
                                  "Value": "Số sự cố"}, sort_by="Điểm"))
         .with_row(row(n, "Theo nhà mạng"))
         .with_panel(tbl(n, "Thời gian xác nhận và khắc phục theo nhà mạng", [
             q(f'sum by (isp) (count_over_time(lw_incident_closed_closed{{{f_closed}}}[$__range]))', instant=True,
               fmt="table"),
             q(f'sum by (isp) (sum_over_time(lw_incident_closed_time_to_ack_s{{{f_closed}}}[$__range])) / '
               f'sum by (isp) (count_over_time(lw_incident_closed_time_to_ack_s{{{f_closed}}}[$__range]))',
               instant=True, fmt="table"),
             q(f'sum by (isp) (sum_over_time({closed}{{{f_closed}}}[$__range])) / '
               f'sum by (isp) (count_over_time({closed}{{{f_closed}}}[$__range]))', instant=True, fmt="table"),
             q(f'max by (isp) (max_over_time({closed}{{{f_closed}}}[$__range]))', instant=True, fmt="table")],
             desc="Các sự cố đã đóng trong khoảng thời gian đang xem. Thời gian xác nhận: từ khi linewatch "
                  "phát hiện đến khi nhà mạng xác nhận; thời gian khắc phục: từ khi sự cố bắt đầu đến khi "
                  "đường truyền được đo là đã hết lỗi.",
             transformations=[merge()],
             renames={"isp": "Nhà mạng", "Value #A": "Số sự cố đã đóng", "Value #B": "Xác nhận TB (s)",
                      "Value #C": "Khắc phục TB (s)", "Value #D": "Khắc phục lâu nhất (s)"}, sort_by="Nhà mạng"))
         .with_panel(ts(n, "Thời gian khắc phục từng sự cố",
                        [q(f'{closed}{{{f_closed}}}', "{{isp}} · {{site}} · {{line}} · {{kind}}")], "s", minimum=0,
                        bars=True, w=12))
         .with_panel(ts(n, "Thời gian xác nhận từng sự cố",
                        [q(f'lw_incident_closed_time_to_ack_s{{{f_closed}}}', "{{isp}} · {{site}} · {{line}} · {{kind}}")],
                        "s", minimum=0, bars=True, w=12)))
    return d


def lan() -> db.Dashboard:
    n = Numbering()
    f = F_SITES
    computers = f'max by (site) (last_over_time(lw_lan_computers{{{f}}}[$__range]))'
    staff = f'max by (site) (last_over_time(lw_site_staff_total{{{f}}}[$__range]))'
    d = (base("Mạng LAN và máy tính", "lw-mang-lan-may-tinh",
              "Mạng nội bộ của từng điểm: số thiết bị và máy tính thấy được trên mạng LAN so với số cán bộ, "
              "công chức (theo danh sách điểm).", time_from="now-7d")
         .with_variable(var_province()).with_variable(var_site())
         .with_row(row(n, "Máy tính so với cán bộ"))
         .with_panel(st(n, "Điểm có ít máy tính hơn cán bộ",
                        [q(f"count(({computers}) < on (site) ({staff})) or vector(0)", instant=True)],
                        thresholds=steps((None, GREEN), (1, ORANGE))))
         .with_panel(st(n, "Tổng số máy tính thấy trên mạng LAN", [q(f"sum({computers})", instant=True)],
                        thresholds=steps((None, BLUE))))
         .with_panel(st(n, "Tổng số cán bộ, công chức", [q(f"sum({staff})", instant=True)],
                        thresholds=steps((None, BLUE))))
         .with_panel(tbl(n, "Máy tính và cán bộ theo điểm", [
             q(staff, instant=True, fmt="table"),
             q(computers, instant=True, fmt="table"),
             q(f'max by (site) (last_over_time(lw_lan_hosts_known{{{f}}}[$__range]))', instant=True, fmt="table"),
             q(f'{computers} / on (site) ({staff})', instant=True, fmt="table"),
             q(f'max by (site) (last_over_time(lw_site_computers{{{f}}}[$__range]))', instant=True, fmt="table")],
             desc="Cán bộ: theo danh sách điểm (chuyên trách, không chuyên trách, hợp đồng). Máy tính (LAN): "
                  "số máy tính máy đo báo ở lần quét gần nhất; máy tính (danh sách thiết bị): số thiết bị loại "
                  "máy tính collector đang theo dõi cho điểm.",
             transformations=[merge()],
             renames={"site": "Điểm", "Value #A": "Cán bộ", "Value #B": "Máy tính (LAN)",
                      "Value #C": "Thiết bị (LAN)", "Value #D": "Máy tính / cán bộ",
                      "Value #E": "Máy tính (danh sách thiết bị)"}, sort_by="Điểm"))
         .with_row(row(n, "Diễn biến"))
         .with_panel(ts(n, "Máy tính thấy trên mạng LAN",
                        [q(f'max by (site) (lw_lan_computers{{{f}}})', "{{site}}")], "none", minimum=0))
         .with_panel(ts(n, "Thiết bị trên mạng LAN", [
             q(f'max by (site) (lw_lan_hosts_known{{{f}}})', "{{site}} · đã biết"),
             q(f'max by (site) (lw_lan_hosts_seen{{{f}}})', "{{site}} · trả lời lần quét")], "none", minimum=0)))
    return d


def collector_health() -> db.Dashboard:
    n = Numbering()
    d = (base("Sức khoẻ hệ thống", "lw-suc-khoe-he-thong",
              "Bộ thu (collector) của linewatch: bản tin nhận và bị từ chối, độ trễ của hàng đợi, xuất dữ liệu, "
              "máy đo trực tuyến và thông báo chờ gửi (từ /metrics của collector).", time_from="now-6h")
         .with_row(row(n, "Hiện tại"))
         .with_panel(st(n, "Máy đo trực tuyến", [q('sum(linewatch_agents{state="online"})', instant=True)],
                        thresholds=steps((None, BLUE))))
         .with_panel(st(n, "Máy đo mất liên lạc",
                        [q('sum(linewatch_agents{state=~"offline|silent"})', instant=True)],
                        thresholds=steps((None, GREEN), (1, ORANGE))))
         .with_panel(st(n, "Độ trễ xuất dữ liệu (sự kiện)", [q("max(linewatch_export_lag_events)", instant=True)],
                        thresholds=steps((None, GREEN), (1000, ORANGE), (100000, RED))))
         .with_panel(st(n, "Thông báo chờ gửi", [q("sum(linewatch_notices_pending)", instant=True)],
                        thresholds=steps((None, GREEN), (1, ORANGE), (50, RED))))
         .with_row(row(n, "Bản tin"))
         .with_panel(ts(n, "Bản tin theo kết quả (mỗi giây)",
                        [q("sum by (outcome) (rate(linewatch_messages_total[$__rate_interval]))", "{{outcome}}")],
                        "reqps", minimum=0))
         .with_panel(ts(n, "Bản tin bị từ chối theo lý do (mỗi giây)",
                        [q("sum by (reason) (rate(linewatch_rejected_total[$__rate_interval]))", "{{reason}}")],
                        "reqps", minimum=0))
         .with_row(row(n, "Hàng đợi và xuất dữ liệu"))
         .with_panel(ts(n, "Độ trễ hàng đợi theo bên đọc (sự kiện)",
                        [q("max by (consumer) (linewatch_feed_lag_events)", "{{consumer}}")], "none", minimum=0, w=8))
         .with_panel(ts(n, "Độ trễ xuất dữ liệu theo thời gian",
                        [q("max(linewatch_export_lag_events)", "xuất dữ liệu")], "none", minimum=0, w=8))
         .with_panel(ts(n, "Thông báo chờ gửi theo thời gian", [q("sum(linewatch_notices_pending)", "chờ gửi")], "none",
                        minimum=0, w=8))
         .with_panel(ts(n, "Máy đo theo trạng thái", [q("sum by (state) (linewatch_agents)", "{{state}}")], "none",
                        minimum=0, w=24,
                        overrides={"online": GREEN, "offline": RED, "silent": ORANGE})))
    return d


@dataclass(frozen=True)
class Spec:
    folder: str
    build: Callable[[], db.Dashboard]


DASHBOARDS = (Spec(FOLDER_LINES, province_overview), Spec(FOLDER_LINES, line_detail), Spec(FOLDER_LINES, incidents),
              Spec(FOLDER_LINES, lan), Spec(FOLDER_SYSTEM, collector_health))


# --------------------------------------------------------------------------- output
def encode(obj) -> str:
    """Stable text: sorted keys, two-space indent, Vietnamese kept readable, final newline."""
    return json.dumps(json.loads(json.dumps(obj, cls=JSONEncoder)), indent=2, sort_keys=True,
                      ensure_ascii=False) + "\n"


def render() -> dict[Path, str]:
    """Relative path (<folder>/<uid>.json) -> file text, for every dashboard."""
    out: dict[Path, str] = {}
    for spec in DASHBOARDS:
        model = spec.build().build()
        path = Path(spec.folder) / f"{model.uid}.json"
        if path in out:
            raise SystemExit(f"two dashboards with uid {model.uid}")
        out[path] = encode(model)
    return out


def dashboards() -> dict[Path, dict]:
    """Relative path -> dashboard JSON (as Grafana reads it)."""
    return {p: json.loads(t) for p, t in render().items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would change")
    ap.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT.relative_to(ROOT)})")
    a = ap.parse_args(argv)
    files = render()
    existing = {p.relative_to(a.out) for p in a.out.rglob("*.json")} if a.out.exists() else set()
    stale = sorted(existing - set(files))
    changed = sorted(p for p, text in files.items()
                     if not (a.out / p).exists() or (a.out / p).read_text(encoding="utf-8") != text)
    if a.check:
        for p in changed:
            print(f"would change: {p}", file=sys.stderr)
        for p in stale:
            print(f"not built by this script: {p}", file=sys.stderr)
        return 1 if changed or stale else 0
    for p in changed:
        (a.out / p).parent.mkdir(parents=True, exist_ok=True)
        (a.out / p).write_text(files[p], encoding="utf-8")
        print(f"wrote {a.out / p}")
    for p in stale:
        print(f"warning: {a.out / p} is not built by this script (delete it if it is an old one)", file=sys.stderr)
    print(f"{len(files)} dashboards, {len(changed)} changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

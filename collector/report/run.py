"""Build a month's report from the record (thin I/O around figures.py) and write its files.

    report = build(record, registry, cfg, "2026-10", province="52")
    written = write(report, cfg.out_dir)

The record is read through rollups, bandwidth tests, state changes, sequence spans, the LAN
inventory and incidents only -- never raw rows -- so a month whose raw rows were pruned gives
the same report. Writing never replaces a file someone changed since linewatch wrote it (a
signed copy): the new one goes beside it as "… (2).xlsx" and the caller is told.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from .. import registry as reg
from ..consumer import drain
from ..record import Record
from . import text
from .config import ReportConfig
from ..errors import BadMonth, NoData, UnknownScope
from .figures import LineInputs, SiteInputs, site_figures
from .model import Period, Report, SiteFigures, Totals

VN = timezone(timedelta(hours=7))
MANIFEST = ".linewatch-manifest.json"
Progress = Callable[[str], None]


def period_of(month: str, now: float | None = None) -> Period:
    m = re.fullmatch(r"(\d{4})-(\d{2})", month or "")
    if not m or not 1 <= int(m.group(2)) <= 12 or not 2020 <= int(m.group(1)) <= 2100:
        raise BadMonth(f"--month {month!r}: viết theo dạng NĂM-THÁNG, ví dụ 2026-10 (month must be YYYY-MM)")
    y, mo = int(m.group(1)), int(m.group(2))
    start = datetime(y, mo, 1, tzinfo=VN)
    end = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=VN)
    now = time.time() if now is None else now
    if end.timestamp() > now:
        raise BadMonth(f"Tháng {month} chưa kết thúc: báo cáo tháng lập được từ ngày {end:%d/%m/%Y} "
                       f"(month {month} has not ended yet)")
    return Period(month, y, mo, start.timestamp(), end.timestamp())


def last_month(now: float | None = None) -> str:
    d = datetime.fromtimestamp(time.time() if now is None else now, VN).replace(day=1) - timedelta(days=1)
    return f"{d.year}-{d.month:02d}"


def _scope(registry: reg.Registry, province: str | None, site: str | None, operator: str | None
           ) -> tuple[list[reg.Site], str | None]:
    sites = sorted(registry.sites.values(), key=lambda s: (s.province, s.code))
    if province is not None:
        known = sorted({s.province for s in sites})
        if province not in known:
            raise UnknownScope(f"Không có tỉnh {province!r} trong danh mục {registry.source or 'registry'}; "
                               f"các tỉnh có: {', '.join(known)} (unknown province)")
        sites = [s for s in sites if s.province == province]
    if site is not None:
        if registry.site(site) is None or registry.site(site) not in sites:
            raise UnknownScope(f"Không có đơn vị {site!r} trong danh mục {registry.source or 'registry'}"
                               f"{' thuộc tỉnh ' + province if province else ''} (unknown site)")
        sites = [s for s in sites if s.code == site]
    op = None
    if operator is not None:
        isps = sorted({ln.isp for s in sites for ln in s.lines})
        op = next((i for i in isps if i.casefold() == operator.casefold()), None)
        if op is None:
            raise UnknownScope(f"Không có nhà mạng {operator!r} trong danh mục; các nhà mạng có: {', '.join(isps)} "
                               f"(unknown operator)")
        sites = [s for s in sites if any(ln.isp == op for ln in s.lines)]
    return sites, op


def build(record: Record, registry: reg.Registry, cfg: ReportConfig, month: str, *, province: str | None = None,
          site: str | None = None, operator: str | None = None, now: float | None = None,
          progress: Progress | None = None, catch_up: bool = True) -> Report:
    """The month's report. ``catch_up``: fold what the rollup consumer has not read yet first."""
    now = time.time() if now is None else now
    p = period_of(month, now)
    sites, op = _scope(registry, province, site, operator)
    say = progress or (lambda _m: None)
    if catch_up:
        drain(record.rollup, 3600)
    counts = record.rollup_counts(p.start, p.end)
    latency = record.latency_month(p.start, p.end)
    reach = record.reach_coverage(p.start, p.end)
    tests_all = record.bandwidth_tests(start=p.start, end=p.end)
    changes_all = record.state_changes(p.start, p.end)
    seq_all = record.seq_hours(p.start, p.end)
    incidents_all = record.incidents(since=p.start, until=p.end)
    # grouped once: a province's month is read in a few queries, then handed out per site and line
    by_line: dict[tuple[str, str | None], dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for t in tests_all:
        by_line[(t.site, t.line)]["tests"].append(t)
    for c in changes_all:
        by_line[(c.site, c.line if c.subject == "line" else None)]["changes"].append(c)
    for x in incidents_all:
        by_line[(x.site, x.line)]["incidents"].append(x)
    for h in seq_all:
        by_line[(h.site, None)]["seq"].append(h)
    kinds: dict[tuple[str, str], dict] = defaultdict(dict)
    for (si, li, k), v in counts.items():
        kinds[(si, li)][k] = v
    figs: list[SiteFigures] = []
    basis = []
    for i, s in enumerate(sites, 1):
        lines = [ln for ln in s.lines if op is None or ln.isp == op]
        own = by_line[(s.code, None)]
        inputs = SiteInputs(
            s, [LineInputs(s, ln, by_line[(s.code, ln.id)]["tests"], latency.get((s.code, ln.id)),
                           reach.get((s.code, ln.id), {}), kinds[(s.code, ln.id)],
                           by_line[(s.code, ln.id)]["changes"], by_line[(s.code, ln.id)]["incidents"])
                for ln in lines],
            own["seq"], own["changes"], record.lan_state(s.code), own["incidents"] if op is None else [])
        f, b = site_figures(inputs, p, cfg)
        figs.append(f)
        basis += b
        if i % 25 == 0 or i == len(sites):
            say(f"đã tổng hợp {i}/{len(sites)} đơn vị")
    if not any(f.messages or any(ln.measured for ln in f.lines) for f in figs):
        what = ", ".join(x for x in (f"tỉnh {province}" if province else "", f"đơn vị {site}" if site else "",
                                     f"nhà mạng {op}" if op else "") if x) or "toàn bộ danh mục"
        raise NoData(f"Không có số liệu đo nào trong tháng {month} ({what}): các máy đo chưa gửi số liệu của tháng "
                     f"này, hoặc số liệu đã quá hạn lưu giữ. Kiểm tra: linewatch-collector status "
                     f"(nothing was measured in {month})")
    scope = {k: v for k, v in (("province", province), ("site", site), ("operator", op)) if v}
    provinces = {s.province: registry.provinces.get(s.province, s.province) for s in sites}
    issuer = cfg.issuer
    if issuer.parent_body.strip().upper() == "UBND TỈNH" and len(provinces) == 1:
        name = next(iter(provinces.values()))
        issuer = replace(issuer, parent_body=f"UBND TỈNH {name.upper()}" if name.isalpha() or " " in name
                         else issuer.parent_body)
    lines = [ln for f in figs for ln in f.lines]
    incidents = [i for f in figs for ln in f.lines for i in ln.incidents] + [i for f in figs for i in f.incidents]
    totals = Totals(
        sites=len(figs), sites_measured=sum(1 for f in figs if f.messages or any(ln.measured for ln in f.lines)),
        sites_short=sum(1 for f in figs if f.falls_short), lines=len(lines),
        lines_speed_pass=sum(1 for ln in lines if ln.speed_verdict == "pass"),
        lines_speed_fail=sum(1 for ln in lines if ln.speed_verdict == "fail"),
        lines_insufficient=sum(1 for ln in lines if ln.speed_verdict == "insufficient"),
        incidents=len(incidents), incidents_open=sum(1 for i in incidents if i.state != "closed"))
    notes = (f"Số liệu tính từ bảng tổng hợp theo giờ (rollups) và các kết quả đo tốc độ lưu trong "
             f"{record.where.split(' ')[0]}; lập lúc {text.time_(now)}.",)
    return Report(p, now, scope, provinces, issuer, tuple(figs),
                  tuple(sorted({ln.operator for ln in lines})), tuple(basis), totals, notes)


# -- files -------------------------------------------------------------------------------
@dataclass
class Written:
    folder: Path
    whole: list[Path] = field(default_factory=list)
    by_operator: dict[str, list[Path]] = field(default_factory=dict)
    kept: list[tuple[Path, Path]] = field(default_factory=list)  # (changed file kept, where the new one went)

    @property
    def files(self) -> list[Path]:
        return self.whole + [p for ps in self.by_operator.values() for p in ps]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _place(folder: Path, name: str, manifest: dict[str, str], out: Written) -> Path:
    """Where to write ``name``: itself when new or unchanged since we wrote it; else a free
    "name (2).ext" beside the changed (signed) copy."""
    target = folder / name
    if not target.exists() or manifest.get(name) == _sha(target):
        return target
    stem, ext = os.path.splitext(name)
    n = 2
    while (folder / f"{stem} ({n}){ext}").exists() and manifest.get(f"{stem} ({n}){ext}") != _sha(
            folder / f"{stem} ({n}){ext}"):
        n += 1
    alt = folder / f"{stem} ({n}){ext}"
    out.kept.append((target, alt))
    return alt


def write(report: Report, out_dir: Path, progress: Progress | None = None, operators: bool = True) -> Written:
    """The whole report (XLSX + DOCX) and, with ``operators``, each operator's part, into
    ``out_dir/<month>/``. Every file is written to a temporary name and renamed: a crash
    never leaves half a file under the real name."""
    from .docx import write_cover
    from .xlsx import write_workbook

    say = progress or (lambda _m: None)
    folder = Path(out_dir) / report.period.month
    folder.mkdir(parents=True, exist_ok=True)
    mpath = folder / MANIFEST
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    out = Written(folder)
    scope = "-".join(text.ascii_slug(f"{k}-{v}") for k, v in report.scope.items() if k != "operator")
    jobs: list[tuple[str | None, str]] = []
    if "operator" in report.scope:
        jobs.append((report.scope["operator"], text.ascii_slug(report.scope["operator"])))
    else:
        jobs.append((None, "tong-hop"))
        if operators:
            jobs += [(op, text.ascii_slug(op)) for op in report.operators]
    for op, part in jobs:
        stem = text.file_stem(report.period, "-".join(x for x in (scope, part) if x))
        for ext, render in ((".xlsx", write_workbook), (".docx", write_cover)):
            target = _place(folder, stem + ext, manifest, out)
            tmp = target.with_name(f".{target.name}.tmp")
            render(report, tmp, operator=op)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
            manifest[target.name] = _sha(target)
            (out.whole if op is None else out.by_operator.setdefault(op, [])).append(target)
            say(f"đã ghi {target}")
    tmp = mpath.with_name(MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, mpath)
    return out

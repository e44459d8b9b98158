"""Rollup maths, pure: no SQL, no clock.

One rollup row per (site, line, probe kind, agent, target, method, UTC hour) keeps, for each
numeric field of the measurements, ``[n, sum, min, max]`` and, for the fields verdicts and
reports read (RTT, jitter, loss, DNS/HTTP times, speeds), a log-bucket histogram
``{bucket: count}`` with a relative error of at most ``REL_ERROR`` (the DDSketch idea).
Everything is additive, so:

* hours merge into days and months by adding (``merge``), and p50/p90/p95 of any past
  month come from the merged histogram (``quantile``) after the raw rows are gone;
* a late batch (an agent's outbox after an outage) adds into the hour it belongs to and
  never replaces what is already there.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

from .types import Rollup, RollupKey

#: Relative accuracy of a quantile read from a histogram (2 %: a 50 ms p95 is 49-51 ms).
REL_ERROR = 0.02
GAMMA = (1 + REL_ERROR) / (1 - REL_ERROR)
_LOG_GAMMA = math.log(GAMMA)
#: Values at or below this count as zero (loss 0 %, a speed of 0).
ZERO = 1e-6
ZERO_BUCKET = "z"

#: Fields whose distribution is kept (the others keep n/sum/min/max only).
DIST_FIELDS = frozenset({
    "rtt_min_ms", "rtt_median_ms", "rtt_avg_ms", "rtt_p95_ms", "rtt_max_ms", "jitter_ms", "loss_pct",
    "resolve_ms", "dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "total_ms",
    "download_mbps", "upload_mbps",
})
#: The kinds rolled up: the per-line probes.
ROLLED_KINDS = ("latency", "bandwidth", "dns", "http", "reach")
#: A reach message covers ``sent`` probes x ``interval_s`` seconds before it: the seconds its
#: line's state was observed (availability's denominator), kept as the derived field ``covered_s``.
COVERED = "covered_s"
#: Reach failures that are the office's own network, not the line (not the operator's downtime).
LAN_CODES = frozenset({"gateway_unreachable"})


def bucket_of(v: float) -> str:
    if v <= ZERO:
        return ZERO_BUCKET
    return str(math.ceil(math.log(v) / _LOG_GAMMA))


def bucket_value(b: str) -> float:
    """The value a bucket stands for (within REL_ERROR of every value in it)."""
    if b == ZERO_BUCKET:
        return 0.0
    i = int(b)
    return 2 * GAMMA ** i / (GAMMA + 1)


def hour_of(t: float) -> int:
    return int(t // 3600) * 3600


def key_of(site: str, line: str, kind: str, agent_id: str, data: dict[str, Any], at: float) -> RollupKey:
    if kind == "dns":
        target, method = str(data.get("resolver", "")), str(data.get("qtype", ""))
    elif kind == "http":
        target, method = str(data.get("url", "")), ""
    else:
        target, method = str(data.get("target", "")), str(data.get("method", ""))
    return RollupKey(site, line, kind, agent_id, target, method, hour_of(at))


def state_change(kind: str, ok: bool, error_code: str | None, at: float, data: dict[str, Any]
                 ) -> tuple[str, float, str, str | None] | None:
    """(subject, at, state, code) when a feed event is a state change the reports keep: a
    line's reach change (down/up from its measured ``since``; a down of the office's own
    gateway is state "lan_down") or an agent's online/offline/silent. None otherwise."""
    if kind == "reach" and data.get("change") is True:
        from linewatch.wire import parse_time
        try:
            since = parse_time(str(data.get("since"))).timestamp()
        except (ValueError, TypeError):
            since = at
        state = str(data.get("state"))
        if state == "down" and error_code in LAN_CODES:
            state = "lan_down"
        return "line", since, state, error_code
    if kind == "agent_state" and data.get("state") in ("online", "offline", "silent"):
        return "agent", at, str(data["state"]), None
    return None


def add(r: Rollup, ok: bool, data: dict[str, Any]) -> None:
    """Fold one measurement into a rollup."""
    if r.key.kind == "reach" and isinstance(data.get("sent"), (int, float)) and isinstance(
            data.get("interval_s"), (int, float)):
        data = {**data, COVERED: float(data["sent"]) * float(data["interval_s"])}
    r.n += 1
    r.n_ok += 1 if ok else 0
    for name, v in data.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            continue
        v = float(v)
        s = r.stats.get(name)
        if s is None:
            s = r.stats[name] = [0, 0.0, v, v] + ([{}] if name in DIST_FIELDS else [])
        s[0] += 1
        s[1] += v
        s[2] = min(s[2], v)
        s[3] = max(s[3], v)
        if len(s) > 4:
            b = bucket_of(v)
            s[4][b] = s[4].get(b, 0) + 1


def merge_stats(into: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Add ``other``'s field stats into ``into`` (in place) and return it."""
    for name, o in other.items():
        s = into.get(name)
        if s is None:
            into[name] = [o[0], o[1], o[2], o[3]] + ([dict(o[4])] if len(o) > 4 else [])
            continue
        s[0] += o[0]
        s[1] += o[1]
        s[2] = min(s[2], o[2])
        s[3] = max(s[3], o[3])
        if len(o) > 4:
            if len(s) == 4:
                s.append({})
            for b, c in o[4].items():
                s[4][b] = s[4].get(b, 0) + c
    return into


def merge(rows: Iterable[Rollup]) -> Rollup | None:
    """Many rollups (hours, targets) as one; the key is the first row's."""
    out: Rollup | None = None
    for r in rows:
        if out is None:
            out = Rollup(r.key, 0, 0, {})
        out.n += r.n
        out.n_ok += r.n_ok
        merge_stats(out.stats, r.stats)
    return out


def quantile(stat: list[Any], q: float) -> float | None:
    """The q-quantile (0..1) of one field's histogram; exact at the ends (min, max)."""
    if not stat or stat[0] == 0 or len(stat) < 5:
        return None
    n, lo, hi, hist = stat[0], stat[2], stat[3], stat[4]
    if q <= 0:
        return lo
    if q >= 1:
        return hi
    rank = q * (n - 1)
    seen = 0
    for b in sorted(hist, key=lambda b: -math.inf if b == ZERO_BUCKET else int(b)):
        seen += hist[b]
        if seen > rank:
            return min(max(bucket_value(b), lo), hi)
    return hi


def mean(stat: list[Any] | None) -> float | None:
    return stat[1] / stat[0] if stat and stat[0] else None


def share_at_least(values: Iterable[float | None], threshold: float) -> tuple[int, int]:
    """(tests at or above ``threshold``, tests with a value): the QCVN 34:2022 share."""
    vals = [v for v in values if v is not None]
    return sum(1 for v in vals if v >= threshold), len(vals)


def hours_above(rows: Iterable[Rollup], field: str, threshold: float) -> list[int]:
    """Hours (epoch seconds) whose mean of ``field`` is above ``threshold`` (e.g. loss_pct),
    the targets of one line merged hour by hour."""
    by_hour: dict[int, Rollup] = {}
    for r in rows:
        h = by_hour.setdefault(r.key.hour, Rollup(r.key, 0, 0, {}))
        merge_stats(h.stats, r.stats)
    return sorted(h for h, r in by_hour.items() if (m := mean(r.stats.get(field))) is not None and m > threshold)

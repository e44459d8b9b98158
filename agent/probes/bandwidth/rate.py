"""Pure throughput arithmetic for the bandwidth probe (no sockets here).

* :func:`steady_rate` -- rate after the warm-up, from cumulative byte samples;
* :func:`is_stable` -- has the rate settled (so the test may stop early)?
"""
from __future__ import annotations

import statistics

#: One sample: (seconds since the transfer started, cumulative payload bytes moved).
Sample = tuple[float, int]


def mbps(nbytes: float, seconds: float) -> float:
    return nbytes * 8 / seconds / 1e6 if seconds > 0 else 0.0


def _bytes_at(samples: list[Sample], t: float) -> float:
    """Cumulative bytes at time ``t``, linearly interpolated between samples."""
    if t <= samples[0][0]:
        return samples[0][1]
    for (t0, b0), (t1, b1) in zip(samples, samples[1:]):
        if t0 <= t <= t1:
            return b0 if t1 == t0 else b0 + (b1 - b0) * (t - t0) / (t1 - t0)
    return samples[-1][1]


def window_rates(samples: list[Sample], start_s: float, window_s: float) -> list[float]:
    """Mbit/s over consecutive windows of ``window_s`` from ``start_s`` to the last sample."""
    if not samples:
        return []
    out = []
    t = start_s
    while t + window_s <= samples[-1][0] + 1e-9:
        out.append(mbps(_bytes_at(samples, t + window_s) - _bytes_at(samples, t), window_s))
        t += window_s
    return out


def steady_rate(samples: list[Sample], warmup_s: float, min_pair_s: float = 1.0,
                max_points: int = 80) -> tuple[float, float] | None:
    """(Mbit/s, measured seconds) after the warm-up, or None if the transfer did not last
    past the warm-up. Slow start and the shaper's initial burst fall in the warm-up, so
    they neither lower nor inflate the figure.

    The rate is the median of the slopes between every two samples at least
    ``min_pair_s`` apart (Theil-Sen), not (last - first) / time: on a busy PC packets
    wait in the kernel's backlog for tens of ms and then arrive in a lump, so any sample
    may lag, the last one included. A two-point difference inherits the lag of both ends
    (we saw +8 % over 3 s); the median of many slopes ignores the few that straddle a lump."""
    pts = [(t, b) for t, b in samples if t >= warmup_s]
    if len(pts) < 3 or pts[-1][0] - pts[0][0] <= 0:
        return None
    span = pts[-1][0] - pts[0][0]
    if len(pts) > max_points:  # thin evenly, always keeping the last sample
        step = len(pts) / max_points
        pts = [pts[int(i * step)] for i in range(max_points - 1)] + [pts[-1]]
    gap = min(min_pair_s, span / 2)
    slopes = [(b2 - b1) / (t2 - t1) for i, (t1, b1) in enumerate(pts) for t2, b2 in pts[i + 1:]
              if t2 - t1 >= gap]
    if not slopes:
        return None
    return max(0.0, statistics.median(slopes)) * 8 / 1e6, span


def is_stable(samples: list[Sample], warmup_s: float, min_span_s: float = 2.5, hold_s: float = 1.0,
              tolerance: float = 0.01) -> bool:
    """True when the rate since the warm-up has stopped moving: over the last ``hold_s`` it
    stayed within ``tolerance`` of its mean, after at least ``min_span_s`` of measuring.
    More seconds would then not change the answer, only cost the commune data.

    The *cumulative* rate is tested, not short windows: 0.5 s windows swing by +/-15 %
    while TCP recovers from losses at a shaper, and four calm windows in a row happen
    by chance long before the average has settled."""
    if not samples or samples[-1][0] - warmup_s < min_span_s:
        return False
    end = samples[-1][0]
    rates = [r[0] for t, b in samples if t >= end - hold_s and t - warmup_s >= min_span_s / 2
             if (r := steady_rate([s for s in samples if s[0] <= t], warmup_s))]
    if len(rates) < 3:
        return False
    mean = statistics.fmean(rates)
    if mean <= 0 or (max(rates) - min(rates)) > 2 * tolerance * mean:
        return False
    # and the second half alone says the same as the whole: a stall or a burst early in
    # the measurement has not been averaged away yet when they disagree
    half = steady_rate(samples, warmup_s + (end - warmup_s) / 2)
    return half is not None and abs(half[0] - rates[-1]) <= 2 * tolerance * rates[-1]

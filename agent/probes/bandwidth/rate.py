"""Pure throughput arithmetic for the bandwidth probe (no sockets here).

* :func:`delivered` -- the count to measure, from the kernel's readings;
* :func:`settled_start` -- where the warm-up ends: the first moment after which the rate is level;
* :func:`steady_rate` -- the rate from a moment on (Theil-Sen median of slopes);
* :func:`is_stable` -- has the rate settled, so the test may stop early?
* :func:`measured_rate` -- the figure a test reports.

Why this shape (measured on tc-tbf links in network namespaces on a busy 2-core VM, see
bench/bandwidth.py): the count that matters is the payload that reached the far end. The
in-order count alone (tcpi_bytes_acked, tcpi_bytes_received, what iperf3 reads) stalls while
a lost packet is re-sent and then jumps by everything that arrived behind it; with 4 streams
into a shaper that drops, 0.5 s rates of the in-order count swung 0.7-1.5x, and a rate taken
between two samples read 4 % above what the link can carry (the 1.042 upload). Counting the
bytes held out of order too (SACKed at the sender, arrived at the receiver) keeps 0.5 s rates
within +/-1-3 %, so a level rate can be recognised after ~2 s instead of being averaged over 8.
"""
from __future__ import annotations

import statistics
from typing import Sequence

#: One sample: (seconds since the transfer started, cumulative payload bytes delivered).
Sample = tuple[float, int]
#: One reading of the kernel: (seconds, bytes in order, bytes the far end holds or None).
Reading = tuple[float, int, int | None]

#: Slow start on a 50 ms line reaches 100 Mbit/s in ~0.3 s; never measure before this.
MIN_WARMUP_S = 0.5
#: Measure at least this long after the warm-up before a rate may count as settled.
MIN_SPAN_S = 2.0
#: The two halves of the measured span must agree within this share of the rate.
TOLERANCE = 0.01
#: Candidate ends of the warm-up are this far apart.
STEP_S = 0.25


def mbps(nbytes: float, seconds: float) -> float:
    return nbytes * 8 / seconds / 1e6 if seconds > 0 else 0.0


def delivered(readings: Sequence[Reading], upload: bool) -> list[Sample]:
    """The count to measure: the bytes that reached the far end (in order or not) where the
    kernel says, else the in-order bytes. Upload: the sender's SACK scoreboard, exact.
    Download: the data segments that arrived x MSS; the one short segment carrying the HTTP
    head is a constant (no rate), and a segment the server needlessly sent twice counts (it
    did cross the line, so the figure still never exceeds what the line carries). Counted
    against the in-order bytes after lossy lab runs, no such copy was seen: the difference
    came back to the heads' constant. Taking copies out on the fly was tried and dropped: a
    copy cannot be told from a hole that stays open to the end of the test, and the
    correction read 2 % low after a lossy start."""
    return [(t, in_order if held is None else max(held, in_order)) for t, in_order, held in readings]


def _after(samples: Sequence[Sample], start_s: float) -> list[Sample]:
    return sorted((t, b) for t, b in samples if t >= start_s)


def _thin(pts: list[Sample], max_points: int) -> list[Sample]:
    """At most ``max_points`` evenly spread, always keeping the last sample."""
    if len(pts) <= max_points:
        return pts
    step = len(pts) / max_points
    return [pts[int(i * step)] for i in range(max_points - 1)] + [pts[-1]]


def slope(pts: Sequence[Sample], min_gap_s: float) -> float | None:
    """Median of the slopes (bytes/s) between every two samples at least ``min_gap_s`` apart
    (Theil-Sen), or None without such a pair. On a busy PC packets wait in the kernel's
    backlog for tens of ms and then arrive in a lump, so any sample may lag; a two-point
    difference inherits the lag of both ends, the median of many slopes ignores the few
    pairs that straddle a lump."""
    gap = max(min_gap_s, 1e-6)
    slopes = [(b2 - b1) / (t2 - t1) for i, (t1, b1) in enumerate(pts) for t2, b2 in pts[i + 1:]
              if t2 - t1 >= gap]
    return statistics.median(slopes) if slopes else None


def steady_rate(samples: Sequence[Sample], warmup_s: float, min_pair_s: float = 0.5,
                max_points: int = 60) -> tuple[float, float] | None:
    """(Mbit/s, measured seconds) from ``warmup_s`` on, or None if the transfer did not last
    past it. Slow start and the shaper's initial burst fall in the warm-up, so they neither
    lower nor inflate the figure."""
    pts = _thin(_after(samples, warmup_s), max_points)
    if len(pts) < 3 or pts[-1][0] - pts[0][0] <= 0:
        return None
    span = pts[-1][0] - pts[0][0]
    r = slope(pts, min(min_pair_s, span / 2))
    if r is None:
        return None
    return max(0.0, r) * 8 / 1e6, span


def halves(samples: Sequence[Sample], start_s: float) -> tuple[float, float] | None:
    """(Mbit/s, Mbit/s): the :func:`steady_rate` of the first and of the second half of the
    span from ``start_s`` to the last sample; None while it is too short to split."""
    pts = _after(samples, start_s)
    if len(pts) < 6:
        return None
    mid = (pts[0][0] + pts[-1][0]) / 2
    first = steady_rate([p for p in pts if p[0] <= mid], start_s, max_points=20)
    second = steady_rate([p for p in pts if p[0] >= mid], mid, max_points=20)
    return (first[0], second[0]) if first and second else None


def level_from(samples: Sequence[Sample], start_s: float, tolerance: float = TOLERANCE) -> bool:
    """Is the rate level from ``start_s`` to the last sample: do the first and the second half
    of that span agree within ``tolerance``? A burst not yet spent makes the first half
    faster, slow start still climbing makes it slower, and a rate that drifts moves the
    halves apart long before the average over the whole settles."""
    h = halves(samples, start_s)
    return h is not None and sum(h) > 0 and abs(h[0] - h[1]) <= tolerance * sum(h) / 2


def measured_rate(samples: Sequence[Sample], start_s: float) -> tuple[float, float] | None:
    """(Mbit/s, measured seconds) a test reports from ``start_s`` on: the mean of its two
    halves' rates, each the median of its slopes. One median over the whole span is not
    robust to a lull in its middle, which most pairs of samples straddle: a 40 ms lull of a
    lossy download read 2.5 % low that way, 0.1 % low this way."""
    whole = steady_rate(samples, start_s)
    h = halves(samples, start_s)
    if whole is None or h is None:
        return whole
    return max(0.0, sum(h) / 2), whole[1]


def settled_start(samples: Sequence[Sample], min_warmup_s: float, max_warmup_s: float,
                  min_span_s: float = MIN_SPAN_S, tolerance: float = TOLERANCE,
                  step_s: float = STEP_S) -> float | None:
    """The earliest end of the warm-up, from ``min_warmup_s`` to ``max_warmup_s`` in steps of
    ``step_s``, after which at least ``min_span_s`` was measured at a level rate; None while
    there is none. A fixed warm-up long enough for a slow line's slow start and an
    operator's generous shaper burst wastes seconds of a commune's data on every fast one."""
    if not samples:
        return None
    end = max(t for t, _ in samples)
    start = min(min_warmup_s, max_warmup_s)
    while start <= min(max_warmup_s, end - min_span_s) + 1e-9:
        if level_from(samples, start, tolerance):
            return start
        start += step_s
    return None


def is_stable(samples: Sequence[Sample], warmup_s: float, min_span_s: float = MIN_SPAN_S,
              tolerance: float = TOLERANCE) -> bool:
    """True once the rate after a warm-up of at most ``warmup_s`` is level for ``min_span_s``:
    more seconds would then not change the answer, only cost the commune data."""
    return settled_start(samples, MIN_WARMUP_S, warmup_s, min_span_s, tolerance) is not None

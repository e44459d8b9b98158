"""When a line tests: pure calendar arithmetic on naive times of the schedule's clock
(Vietnam time, UTC+7, unless the config says otherwise). No I/O, no "now" of its own.

A :class:`Plan` is a set of periods per weekday (office hours Mon-Fri, or the night window
every day) and ``per_day`` tests. Each test day's periods are laid end to end and cut into
``per_day`` equal shares; one slot falls in each share, at a random point of its middle
(never within ``MARGIN`` of a share's edges), so the day's tests cover the morning and the
afternoon and two of them are at least ``2 * MARGIN`` of a share apart. The random draw is
seeded by the line's seed (made once per installation) and the date: a restart keeps the
day's slots, and 150 communes testing against one speed server spread over the hours
instead of meeting at 07:30.

:func:`decide` says what to do at a given moment: run the latest slot that has passed and
has not been dealt with, if its period (the office session, the night window) is still
open; earlier unrun slots (the computer was off) are given up and counted, never run in a
burst at boot.
"""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterable, Sequence

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Vietnamese day names: thứ hai (t2) ... thứ bảy (t7), chủ nhật (cn)
DAY_ALIASES = {**{n: i for i, n in enumerate(DAY_NAMES)}, **{f"t{i + 2}": i for i in range(6)}, "cn": 6}
#: a slot never falls in the outer tenth of its share of the day
MARGIN = 0.1
#: each test of a day needs at least this much of the day's periods (so two are >= 2 min apart)
MIN_SHARE = timedelta(minutes=10)
#: a slot may still start this long after it, even past the end of its period (a slot in the
#: last minute before the lunch break is not lost to the agent's once-a-minute look)
GRACE = timedelta(minutes=10)
#: unrun slots older than this are not counted as missed (a PC off for a season)
LOOKBACK_DAYS = 31
_DAY = timedelta(days=1)
_RANGE_RE = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?-\d{1,2}:\d{2}(:\d{2})?$")
_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*-\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


@dataclass(frozen=True)
class Window:
    start: time
    end: time  # may be before start: the window runs past midnight

    @classmethod
    def parse(cls, text: str) -> "Window":
        m = _WINDOW_RE.match(text)
        try:
            if not m:
                raise ValueError
            return cls(*(time(int(h), int(mi), int(sec or 0)) for h, mi, sec in (m.group(1, 2, 3), m.group(4, 5, 6))))
        except ValueError:
            raise ValueError(f"window {text!r} must look like \"01:00-05:00\" (local time, 24 h)") from None

    def length(self) -> timedelta:
        d = datetime.combine(date.min, self.end) - datetime.combine(date.min, self.start)
        return d if d > timedelta(0) else d + _DAY

    def on(self, day: date) -> tuple[datetime, datetime]:
        """This window as it starts on ``day``: (start, end), end possibly the next day."""
        start = datetime.combine(day, self.start)
        return start, start + self.length()

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_hours(items: Iterable[str], what: str = "office_hours") -> tuple[Window, ...]:
    """Periods of one day, e.g. ["07:30-11:30", "13:30-17:00"]: in order, not overlapping,
    none past midnight. Raises ValueError with the reason."""
    out: list[Window] = []
    for text in items:
        w = Window.parse(text)
        if w.end <= w.start:
            raise ValueError(f"{what} period {text!r} must end after it starts, the same day")
        if out and w.start < out[-1].end:
            raise ValueError(f"{what} periods must be in order and not overlap: {text!r} starts before "
                             f"{out[-1]} ends")
        out.append(w)
    if not out:
        raise ValueError(f"{what} must list at least one period, e.g. [\"07:30-11:30\", \"13:30-17:00\"]")
    return tuple(out)


def parse_days(spec: str | Sequence[str], hours: tuple[Window, ...]) -> tuple[tuple[Window, ...], ...]:
    """The periods of each weekday (Monday first; () where nothing runs) from ``days``:
    "mon-fri", "mon-sat", "daily", "t2-t6", or a list of groups each optionally followed by its
    own hours: ["mon-fri", "sat 07:30-11:30"] (a one-stop-shop desk open on Saturday mornings).
    Days without their own hours use ``hours``. Raises ValueError with the reason."""
    text = spec if isinstance(spec, str) else ",".join(spec)
    tokens = [t for t in re.split(r"[,\s]+", text.strip().lower()) if t]
    week: list[tuple[Window, ...] | None] = [None] * 7
    group: list[int] = []
    own: list[str] = []

    def close() -> None:
        for d in group:
            week[d] = parse_hours(own, f"days {text!r}") if own else hours

    for tok in tokens:
        if _RANGE_RE.match(tok):
            if not group:
                raise ValueError(f"days {text!r}: hours {tok!r} must follow a day, e.g. \"sat 07:30-11:30\"")
            own.append(tok)
            continue
        close()
        group, own = _day_group(tok, text), []
    close()
    if not any(week):
        raise ValueError(f"days {text!r} names no day; e.g. \"mon-fri\" or [\"mon-fri\", \"sat 07:30-11:30\"]")
    return tuple(w or () for w in week)


def _day_group(tok: str, text: str) -> list[int]:
    if tok in ("daily", "all", "mon-sun"):
        return list(range(7))
    a, sep, b = tok.partition("-")
    try:
        first, last = DAY_ALIASES[a], DAY_ALIASES[b if sep else a]
    except KeyError:
        raise ValueError(f"days {text!r}: {tok!r} is not a day or a range of days (mon, tue, wed, thu, fri, sat, "
                         f"sun or t2..t7, cn; e.g. \"mon-fri\")") from None
    if last < first:
        raise ValueError(f"days {text!r}: {tok!r} runs backwards; write the days Monday first, e.g. \"mon-fri\"")
    return list(range(first, last + 1))


def _hm(d: timedelta) -> str:
    minutes = round(d.total_seconds() / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


@dataclass(frozen=True)
class Plan:
    """When a line tests: ``per_day`` slots on each day whose weekday has periods."""

    name: str                               # "office" | "night": said in every result it produces
    per_day: int
    week: tuple[tuple[Window, ...], ...]    # Monday first; () = no tests that day

    def check(self) -> None:
        """Raises ValueError if some day has too little time for its tests."""
        for d, periods in enumerate(self.week):
            span = sum((w.length() for w in periods), timedelta(0))
            if periods and self.per_day > 1 and span / self.per_day < MIN_SHARE:
                raise ValueError(f"tests_per_day = {self.per_day} does not fit in the {_hm(span)} of "
                                 f"{DAY_NAMES[d]}: at most {max(1, int(span / MIN_SHARE))} "
                                 f"(one per {MIN_SHARE.seconds // 60} minutes)")

    def min_gap(self) -> timedelta:
        """How often the calendar must be looked at so that no slot is missed: a slot may run
        until its period ends (at least MARGIN of a share away) or GRACE has passed, and must
        run before the next slot (at least 2 * MARGIN of a share away)."""
        share = min(sum((w.length() for w in p), timedelta(0)) for p in self.week if p) / self.per_day
        late = max(GRACE, MARGIN * share)
        return late if self.per_day == 1 else min(late, 2 * MARGIN * share)

    def periods(self, day: date) -> list[tuple[datetime, datetime]]:
        return [w.on(day) for w in self.week[day.weekday()]]

    def slots(self, day: date, seed: str) -> list[tuple[datetime, datetime]]:
        """The day's slots in order, each with the end of the period it falls in."""
        periods = self.periods(day)
        if not periods:
            return []
        share = sum((b - a for a, b in periods), timedelta(0)) / self.per_day
        rnd = random.Random(hashlib.sha256(f"{seed}/{day.isoformat()}".encode()).digest())
        out = []
        for i in range(self.per_day):
            offset = share * (i + MARGIN + (1 - 2 * MARGIN) * rnd.random())
            for a, b in periods:
                if offset < b - a:
                    out.append((a + offset, b))
                    break
                offset -= b - a
            else:  # rounding at the very end of the last period
                out.append((periods[-1][1] - timedelta(seconds=1), periods[-1][1]))
        return out

    def slots_between(self, seed: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Slots with ``start <= slot < end``, in order."""
        out: list[tuple[datetime, datetime]] = []
        day = start.date() - _DAY  # a night window of the day before may reach past midnight
        while day <= end.date():
            out += [(s, e) for s, e in self.slots(day, seed) if start <= s < end]
            day += _DAY
        return sorted(out)


@dataclass(frozen=True)
class Decision:
    run: datetime | None       # the slot to run now, else None
    missed: int                # passed slots given up without a test (computer off, agent stopped)
    handled: datetime | None   # every slot up to this one is dealt with now (None: nothing changed)


def decide(plan: Plan, seed: str, now: datetime, handled: datetime | None) -> Decision:
    """What to do at ``now`` when every slot up to ``handled`` has been dealt with.

    The latest slot that has passed and is not dealt with runs, if its period is still open
    or it passed less than ``GRACE`` ago; if not (the office session or the night window is
    over) it is given up too. Earlier unrun slots are given up, never run in a burst.
    ``missed`` counts what was given up, except on a first start (``handled`` None: nothing
    was scheduled before) and after the clock went back (``handled`` in the future: treated
    as a first start)."""
    if handled is not None and handled > now:
        handled = None
    since = max(handled, now - timedelta(days=LOOKBACK_DAYS)) if handled else now - _DAY
    passed = [(s, e) for s, e in plan.slots_between(seed, since, now + timedelta(microseconds=1))
              if handled is None or s > handled]
    if not passed:
        return Decision(None, 0, None)
    latest, end = passed[-1]
    counted = len(passed) - 1 if handled is not None else 0
    if now < max(end, latest + GRACE):
        return Decision(latest, counted, latest)
    return Decision(None, counted + (handled is not None), latest)


def next_slot(plan: Plan, seed: str, after: datetime) -> datetime | None:
    """The first slot strictly after ``after`` (within 8 days), else None."""
    for s, _e in plan.slots_between(seed, after, after + timedelta(days=8)):
        if s > after:
            return s
    return None


def month_end(now: datetime) -> datetime:
    first = now.date().replace(day=1)
    return datetime.combine((first + timedelta(days=32)).replace(day=1), time())

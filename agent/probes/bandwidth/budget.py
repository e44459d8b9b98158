"""The line's monthly data budget: pure arithmetic (:class:`BudgetState`, :func:`spread`) and
its state file.

Every test is charged to it. The file is written atomically and durably
(linewatch.statefile); a damaged one is set aside and *said*: the test that finds it carries
the reason, and the month's count restarts from what that test used -- never in silence.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from linewatch import statefile
from linewatch.errors import DamagedState

log = logging.getLogger("linewatch.agent.bandwidth")


def month_key(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


@dataclass(frozen=True)
class BudgetState:
    month: str
    used_bytes: int

    def remaining(self, budget_bytes: int, today: date) -> int:
        used = self.used_bytes if self.month == month_key(today) else 0
        return max(0, budget_bytes - used)

    def add(self, nbytes: int, today: date) -> "BudgetState":
        m = month_key(today)
        return BudgetState(m, (self.used_bytes if self.month == m else 0) + nbytes)

    @classmethod
    def of(cls, state: dict[str, Any]) -> "BudgetState":
        return cls(str(state.get("month", "")), int(state.get("used_bytes", 0)))


def spread(remaining: int, per_test: int | None, slots_left: int, skipped: int) -> bool:
    """Whether a scheduled slot runs, so that the month's remaining budget lasts to its last slot.

    ``remaining``: bytes left this month; ``per_test``: what a test of this line costs (None
    before the first test: it runs, to learn it); ``slots_left``: scheduled slots until the
    month ends, this one included; ``skipped``: slots skipped in a row just before this one.
    When the budget affords fewer tests than there are slots, one slot in every
    ``slots_left / affordable`` runs (re-judged at every slot, so it evens out as the month
    goes on). When it affords none, the slot runs anyway: the test is capped at what is left,
    and once nothing is left the test reports ``budget_exhausted`` -- said, not silent."""
    if per_test is None or per_test <= 0 or slots_left <= 1:
        return True
    affordable = remaining // per_test
    if affordable >= slots_left or affordable == 0:
        return True
    return (skipped + 1) * affordable >= slots_left


def learn_cost(previous: int | None, nbytes: int) -> int:
    """What a test costs, as a moving average of the tests that moved data."""
    return nbytes if previous is None else round(0.7 * previous + 0.3 * nbytes)


# ----------------------------------------------------------------------------- the file
#: keys of a line's state file and the types they must have
_FIELDS: dict[str, type | tuple[type, ...]] = {"month": str, "used_bytes": int, "last_run": str, "seed": str,
                                               "slots": dict, "last_slot": str, "missed": int,
                                               "skipped_budget": int, "test_bytes": int, "damage_note": str}
#: keys holding a time, and counts that must not be negative
_TIMES = ("last_run", "last_slot")
_COUNTS = ("used_bytes", "missed", "skipped_budget", "test_bytes")


@dataclass
class LineState:
    """A line's bandwidth state file: the month's bytes, the last run, the schedule's seed, the
    last slot dealt with (``last_slot``), slots missed or skipped since the last scheduled
    test (said in its result), and what a test costs (``test_bytes``)."""

    path: Path | None
    doc: dict[str, Any]
    #: why the file had to be started afresh (said in the next result and the log), else None
    damaged: str | None = None

    @classmethod
    def load(cls, path: Path | None) -> "LineState":
        if path is None:
            return cls(None, {})
        try:
            doc = statefile.read_json(path)
        except DamagedState as e:
            log.error("%s", e)
            return cls(path, {}, str(e))
        if doc is None:
            return cls(path, {})
        bad = _check(doc)
        if bad:
            e = statefile.set_aside(path, bad)
            log.error("%s", e)
            return cls(path, {}, str(e))
        return cls(path, doc)

    def save(self) -> None:
        if self.path is not None:
            statefile.write_json(self.path, self.doc)


def _check(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return "not a JSON object"
    for k, v in doc.items():
        want = _FIELDS.get(k)
        if want is None:
            continue  # a newer agent's key: kept, not checked
        if not isinstance(v, want) or isinstance(v, bool):
            return f"{k!r} is {type(v).__name__}, not {want.__name__ if isinstance(want, type) else want}"
    for k in _COUNTS:
        if doc.get(k, 0) < 0:
            return f"{k} is negative"
    month = doc.get("month", "")
    if month and not (len(month) == 7 and month[4] == "-" and month[:4].isdigit() and month[5:].isdigit()):
        return f"month {month!r} is not YYYY-MM"
    for k in _TIMES:
        if k in doc:
            try:
                datetime.fromisoformat(doc[k])
            except ValueError:
                return f"{k} {doc[k][:40]!r} is not a time"
    return None

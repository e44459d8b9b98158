"""The line's monthly data budget: pure arithmetic (:class:`BudgetState`) and its state file.

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


# ----------------------------------------------------------------------------- the file
#: keys of a line's state file and the types they must have
_FIELDS: dict[str, type | tuple[type, ...]] = {"month": str, "used_bytes": int, "last_run": str, "seed": str,
                                               "slots": dict}


@dataclass
class LineState:
    """A line's bandwidth state file: the month's bytes, the last run, the schedule's seed."""

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
    if doc.get("used_bytes", 0) < 0:
        return "used_bytes is negative"
    month = doc.get("month", "")
    if month and not (len(month) == 7 and month[4] == "-" and month[:4].isdigit() and month[5:].isdigit()):
        return f"month {month!r} is not YYYY-MM"
    if "last_run" in doc:
        try:
            datetime.fromisoformat(doc["last_run"])
        except ValueError:
            return f"last_run {doc['last_run'][:40]!r} is not a time"
    return None

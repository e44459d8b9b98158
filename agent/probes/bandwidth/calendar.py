"""When a line tests: pure calendar arithmetic, naive local (Vietnam) times."""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

@dataclass(frozen=True)
class Window:
    start: time
    end: time  # may be before start: the window runs past midnight

    @classmethod
    def parse(cls, text: str) -> "Window":
        try:
            a, b = (part.strip() for part in text.split("-"))
            return cls(time.fromisoformat(a), time.fromisoformat(b))
        except ValueError:
            raise ValueError(f"window {text!r} must look like \"01:00-05:00\" (local time, 24 h)") from None

    def length(self) -> timedelta:
        d = datetime.combine(date.min, self.end) - datetime.combine(date.min, self.start)
        return d if d > timedelta(0) else d + timedelta(days=1)


def slot_for_day(day: date, window: Window, seed: str) -> datetime:
    """The moment inside ``window`` that starts on ``day`` when this line tests. Random
    per line and per day (seeded, so a restart keeps the same slot) so that 150
    communes spread over the window instead of all hitting the server at its start."""
    rnd = random.Random(hashlib.sha256(f"{seed}/{day.isoformat()}".encode()).digest())
    return datetime.combine(day, window.start) + timedelta(seconds=rnd.uniform(0, window.length().total_seconds()))


def due_slot(now: datetime, window: Window, seed: str, last_run: datetime | None) -> datetime | None:
    """The slot that should run now (it has passed, it is still within its window and it
    has not run yet), else None. ``now`` and ``last_run`` are naive local times."""
    for day in (now.date() - timedelta(days=1), now.date()):
        slot = slot_for_day(day, window, seed)
        window_end = datetime.combine(day, window.start) + window.length()
        if slot <= now < window_end and (last_run is None or last_run < slot):
            return slot
    return None

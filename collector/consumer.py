"""What every consumer of the record's feed does to catch up: call its step (read from my
position, do my effect, store my position) until it reports nothing new, within a time budget
so one long backlog does not starve the thread's other work."""
from __future__ import annotations

import time
from typing import Callable


def drain(step: Callable[[], int], budget_s: float) -> int:
    """Call ``step`` until it returns 0 (caught up) or ``budget_s`` has passed; events read."""
    t0, total = time.monotonic(), 0
    while time.monotonic() - t0 < budget_s:
        n = step()
        total += n
        if n == 0:
            break
    return total

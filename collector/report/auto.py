"""The monthly report, by itself: after a month closes (``[report] day`` at ``hour``, Vietnam
time) the collector writes last month's report and queues one e-mail per operator (its part)
and one to the IT office (the whole), before the 5th (Circular 06/2026 Art. 9).

Done once per month: the files are written first (re-writing them is harmless), then, in one
record transaction, the month is marked done and the mails are queued as notices with keys
(report:<month>:<recipient>), so a crash anywhere repeats nothing and loses nothing; the
notifier sends them like every notice (retries, sent only once accepted).
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any, Callable

from .. import registry as reg
from ..record import Record
from .config import ReportConfig
from ..errors import NoData, ReportError
from .run import VN, build, last_month, write

log = logging.getLogger("linewatch.collector.report")
STATE_KEY = "report:{month}"
#: A report mail is worth sending late rather than never: kept 30 days.
MAIL_TTL_S = 30 * 86400


def due(cfg: ReportConfig, now: float) -> str | None:
    """The month whose report is due at ``now`` (last month, from its ``day`` at ``hour``)."""
    if not cfg.auto:
        return None
    d = datetime.fromtimestamp(now, VN)
    if (d.day, d.hour) < (cfg.day, cfg.hour):
        return None
    return last_month(now)


def recipients(registry: reg.Registry, operator: str | None) -> list[str]:
    """E-mail addresses: each line's operator contact for ``operator``; the IT office for None."""
    if operator is None:
        return [registry.it_office.email] if registry.it_office.email else []
    return sorted({ln.operator.email for s in registry.sites.values() for ln in s.lines
                   if ln.isp == operator and ln.operator.email})


class MonthlyReports:
    def __init__(self, record: Record, registry: reg.Registry, cfg: ReportConfig, *, email: bool = True,
                 clock: Callable[[], float] = time.time, on_queued: Callable[[], None] | None = None):
        self.record, self.registry, self.cfg = record, registry, cfg
        self.email = email and cfg.email
        self.clock = clock
        self.on_queued = on_queued or (lambda: None)
        self.last_error: str | None = None

    def done(self, month: str) -> dict[str, Any] | None:
        return self.record.saved_state(STATE_KEY.format(month=month))

    def run_once(self, now: float | None = None) -> str | None:
        """Write and queue the due month's report unless done; returns the month written."""
        now = self.clock() if now is None else now
        month = due(self.cfg, now)
        if month is None or self.done(month) is not None:
            return None
        try:
            report = build(self.record, self.registry, self.cfg, month, now=now)
        except NoData as e:
            log.warning("monthly report %s: %s", month, e)
            with self.record.incident_tx(now) as tx:  # nothing to send; do not try every minute
                tx.save_state(STATE_KEY.format(month=month), {"at": now, "files": [], "error": str(e)})
            return None
        written = write(report, self.cfg.out_dir, progress=lambda m: log.info("monthly report %s: %s", month, m))
        for changed, alt in written.kept:
            log.warning("monthly report %s: %s was changed since it was written (signed?); kept it and wrote %s",
                        month, changed, alt)
        with self.record.incident_tx(now) as tx:
            if tx.load_state(STATE_KEY.format(month=month)) is not None:
                return None  # another collector did it meanwhile
            queued = 0
            if self.email:
                parts: list[tuple[str | None, list[str]]] = [(None, [str(p) for p in written.whole])]
                parts += [(op, [str(p) for p in ps]) for op, ps in written.by_operator.items()]
                for op, files in parts:
                    for to in recipients(self.registry, op):
                        body = {"month": month, "operator": op, "files": files,
                                "totals": report.totals.__dict__, "generated_at": now}
                        queued += tx.enqueue(f"report:{month}:{op or '*'}:{to}", None, "report", "email", to,
                                             "operator" if op else "it_office", body, now, now + MAIL_TTL_S)
            tx.save_state(STATE_KEY.format(month=month), {"at": now, "files": [str(p) for p in written.files],
                                                          "mails": queued})
        log.info("monthly report %s written to %s (%d files, %d mails queued)", month, written.folder,
                 len(written.files), queued)
        if queued:
            self.on_queued()
        return month

    def run_forever(self, stop: threading.Event, poll_s: float = 300.0) -> None:
        while not stop.is_set():
            try:
                self.run_once()
                self.last_error = None
            except ReportError as e:
                self.last_error = str(e)
                log.error("monthly report: %s", e)
            except Exception as e:  # the record down, a disk full: say so, try again next poll
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("monthly report could not be written (will retry)")
            stop.wait(poll_s)

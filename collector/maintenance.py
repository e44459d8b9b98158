"""The record's housekeeping, run by the writer between batches: the rollup consumer catches
up with the feed, agents that went quiet are marked silent, and once an hour old raw rows and
rollups are pruned (raw rows only once the rollup consumer has read them)."""
from __future__ import annotations

import logging
import time

from .config import CollectorConfig
from .consumer import drain
from .record import Record

log = logging.getLogger("linewatch.collector.maintenance")


class Maintenance:
    def __init__(self, record: Record, cfg: CollectorConfig, budget_s: float = 5.0, prune_every_s: float = 3600):
        self.record = record
        self.cfg = cfg
        self.budget_s = budget_s  # per call: ingest must not wait long behind a big catch-up
        self.prune_every_s = prune_every_s
        self._next_prune = 0.0

    def __call__(self) -> None:
        rolled = drain(self.record.rollup, self.budget_s)
        silent = self.record.mark_silent(self.cfg.offline_after_s)
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + self.prune_every_s
            r = self.record.prune(self.cfg.raw_days, self.cfg.rollup_days)
            if r.pruned_events or r.pruned_rollups:
                log.info("retention: dropped %d raw events older than %g days and %d rollups older than %g days",
                         r.pruned_events, self.cfg.raw_days, r.pruned_rollups, self.cfg.rollup_days)
        if rolled or silent:
            log.debug("maintenance: %d events rolled up, %d agents now silent", rolled, silent)

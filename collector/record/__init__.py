"""The collector's record: the source of truth every consumer reads.

    from linewatch.collector.record import open_record
    rec = open_record("sqlite:///var/lib/linewatch/record.sqlite3")   # or postgresql://...

See docs/record.md for the feed and how a consumer follows it.
"""
from __future__ import annotations

from pathlib import Path

from .backend import open_backend
from .base import MAX_GAP, ROLLUP_CONSUMER, Record
from .batch import Batch
from .incidents import IncidentTx, NoSuchIncident
from ..errors import RecordConfigError, RecordError, RecordUnavailable, SchemaTooNew
from .types import *  # noqa: F401,F403  (the typed values are part of the interface)


def open_record(location: str | Path, base: Path | None = None) -> Record:
    """Open (and migrate) the record named by the ``record`` setting."""
    return Record(open_backend(str(location), base))


__all__ = ["open_record", "Record", "Batch", "RecordError", "RecordConfigError", "RecordUnavailable",
           "SchemaTooNew", "IncidentTx", "NoSuchIncident", "MAX_GAP", "ROLLUP_CONSUMER"]

"""The record's exceptions: what went wrong with the storage, kept apart from bad input."""
from __future__ import annotations


class RecordError(Exception):
    """Base of everything the record raises on purpose."""


class RecordConfigError(RecordError):
    """The record cannot be opened as configured (bad URL, server unreachable at start,
    wrong password, unwritable folder). The message names the place and what to check,
    never a password."""


class RecordUnavailable(RecordError):
    """The record cannot be written right now (database down, disk full, read-only file
    system). Nothing of the batch was kept; the caller acknowledges nothing and retries."""


class SchemaTooNew(RecordConfigError):
    """The record was written by a newer linewatch than this one."""

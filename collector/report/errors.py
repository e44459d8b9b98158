"""The report's exceptions. Every message says what to do; the CLI prints it and exits 2."""
from __future__ import annotations


class ReportError(Exception):
    """Base of everything the report raises on purpose (bad request, nothing to report)."""


class BadMonth(ReportError):
    """--month is not YYYY-MM, or is a month that has not ended yet."""


class UnknownScope(ReportError):
    """--province / --site / --operator names nothing in the registry."""


class NoData(ReportError):
    """Nothing was measured in the month for what was asked."""


class SignedCopy(ReportError):
    """A file the report would write was changed since linewatch wrote it (signed, edited)."""

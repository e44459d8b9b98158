"""The collector's exceptions, in one place. Each message is for the provincial admin who has
to act on it: what went wrong, where, what to do. Bad *input* (a malformed message) is not
here: that is linewatch.errors.MalformedMessage, counted and set aside, never raised to a caller."""
from __future__ import annotations


# ----------------------------------------------------------------------------- the record
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


class NoSuchIncident(RecordError):
    """An incident id that the record does not have."""


# ----------------------------------------------------------------------------- time-series export
class ExportError(Exception):
    """The server did not accept the points; nothing can be assumed written. The message is
    for the admin (what happened, where, what to do)."""

    retry = True  # worth retrying unchanged later


class ExportUnreachable(ExportError):
    """No answer: the server is down, the address is wrong, a firewall, a timeout."""


class ExportRefused(ExportError):
    """The server answered 4xx: the request itself (credentials, bucket, size, the data)."""

    def __init__(self, msg: str, status: int, body: str = ""):
        super().__init__(msg)
        self.status = status
        self.body = body

    @property
    def retry(self) -> bool:  # type: ignore[override]
        """Only "too many requests" goes away by itself; the rest needs the admin (the running
        exporter still retries: the admin may fix the token or the bucket meanwhile)."""
        return self.status == 429

    @property
    def bad_data(self) -> bool:
        """The points themselves were refused (400/422): retrying the same ones will not help."""
        return self.status in (400, 422)


class ExportServerError(ExportError):
    """The server answered 5xx: it is there but failing (disk full, starting, overloaded)."""

    def __init__(self, msg: str, status: int, body: str = ""):
        super().__init__(msg)
        self.status = status
        self.body = body


# ----------------------------------------------------------------------------- notifications
class WebhookError(Exception):
    """The webhook receiver did not accept the notice."""


class ChatError(Exception):
    """The chat service (through Apprise) did not accept the notice."""


class LinkError(ValueError):
    """A link that does not acknowledge anything; ``reason`` is forged, expired or malformed."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# ----------------------------------------------------------------------------- monthly reports
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


class ReportMailError(Exception):
    """The report's files are gone or too large: the notice is retried, then expires."""

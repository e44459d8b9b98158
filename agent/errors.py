"""The agent's exceptions, in one place. None of them is a measurement: a probe turns each into
a failed result with a stable code (linewatch.wire.Code) and the sentence a clerk can act on."""
from __future__ import annotations

from typing import Any

from linewatch.wire import Code


class LineUnbound(Exception):
    """The line's address or interface is not on this computer: we must not measure
    another line in its place (``Code.LINE_UNBOUND``)."""


class TestFailed(Exception):
    """A bandwidth test did not give a figure: ``code`` and the reason, and what it did measure
    (``partial``: bytes moved, a direction that worked)."""

    __test__ = False  # not a pytest class

    def __init__(self, code: Code, reason: str, partial: dict[str, Any] | None = None):
        super().__init__(reason)
        self.code = code
        self.partial = partial or {}


class MethodUnavailable(Exception):
    """This computer cannot measure that way (no raw socket, tool not installed)."""


class IperfError(Exception):
    """iperf3 failed; the message is iperf3's own reason."""


class NoRawSocket(Exception):
    """The LAN sweep has no right to send raw frames (needs root or CAP_NET_RAW)."""

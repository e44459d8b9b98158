"""What every probe is: a typed config with defaults and validation, and a run() that
returns typed results -- one per target, failures included."""
from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from linewatch.config import Section
from linewatch.text import printable
from linewatch.wire import Code, utc_now

from ..errors import LineUnbound
from ..netif import interface_address


#: the wire's limit on an error text
MAX_ERROR_CHARS = 1000


@dataclass(frozen=True)
class LineBinding:
    """How to make traffic leave over one particular line."""

    id: str
    source_address: str | None = None
    interface: str | None = None

    def describe(self) -> str:
        if self.interface:
            return f"interface {self.interface}"
        if self.source_address:
            return f"source {self.source_address}"
        return "default-route"


def bind_socket(sock: socket.socket, line: LineBinding) -> None:
    """Pin a socket to the line, or raise :class:`LineUnbound` with a reason a clerk can act on."""
    if line.interface and not hasattr(socket, "SO_BINDTODEVICE"):
        # Windows, macOS: no binding to a device; the interface's address pins the source
        if not line.source_address:
            sock.bind((interface_address(line.interface), 0))
    elif line.interface:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, line.interface.encode() + b"\0")
        except OSError as e:
            if e.errno == errno.ENODEV:
                raise LineUnbound(f"network interface {line.interface!r} of line {line.id!r} does not exist "
                                  f"on this computer (cable or USB modem unplugged?)") from None
            if e.errno == errno.EPERM:
                raise LineUnbound(f"binding to interface {line.interface!r} needs root or CAP_NET_RAW; "
                                  f"set source_address for line {line.id!r} instead") from None
            raise
    if line.source_address:
        try:
            sock.bind((line.source_address, 0))
        except OSError as e:
            if e.errno == errno.EADDRNOTAVAIL:
                raise LineUnbound(f"address {line.source_address} of line {line.id!r} is not on this computer "
                                  f"(modem unplugged or its address changed?)") from None
            raise


def source_address(line: LineBinding) -> str | None:
    """The address a tool that binds by address only (speedtest-cli, iperf3) must use for this line."""
    if line.source_address:
        with socket.socket() as s:
            bind_socket(s, LineBinding(line.id, line.source_address))  # raises LineUnbound if gone
        return line.source_address
    if line.interface:
        return interface_address(line.interface)
    return None


@dataclass
class Result:
    """One measurement, before the agent gives it an id and a sequence number."""

    kind: str
    line: str | None
    data: dict[str, Any]
    ok: bool = True
    error_code: Code | None = None
    error: str | None = None
    measured_at: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        # Text that came from a far server (an HTTP reason, an OS error, a sponsor's name) may
        # hold anything; the wire takes printable text only. Escaped here, never dropped later.
        if self.error is not None:
            self.error = printable(self.error, MAX_ERROR_CHARS)
        for k, v in self.data.items():
            if isinstance(v, str) and not _clean(v):
                self.data[k] = printable(v)


def _clean(s: str) -> bool:
    if "\x00" in s:
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Probe:
    """Base class. Subclasses set ``name`` (the config table and message kind) and
    implement ``parse_config`` and ``run``."""

    name: ClassVar[str]
    kind: ClassVar[str]
    #: True: the agent runs it all the time in its own thread (reach), not on the scheduler
    continuous: ClassVar[bool] = False

    def parse_config(self, sec: Section) -> Any:  # returns the probe's typed config
        raise NotImplementedError

    def complete(self, cfg: Any, probes: dict[str, Any], where: str) -> Any:
        """Fill in defaults that depend on the line's other probes (called once all are parsed)."""
        return cfg

    def run(self, line: LineBinding, cfg: Any) -> list[Result]:
        raise NotImplementedError

    def failed(self, line: LineBinding, cfg: Any, error_code: str, error: str) -> Result:
        """One failed result of this probe's kind that did not measure anything (e.g. an on-demand
        command that expired): still carries the kind's required fields."""
        raise NotImplementedError

    def summary(self, data: dict[str, Any]) -> str | None:
        """The headline figures of one result for the clerk reading ``linewatch-agent probe``
        (beyond the latency columns every table has), or None."""
        return None

    def due(self, line: LineBinding, cfg: Any) -> bool:
        """Whether a scheduled round should run now. Probes with their own calendar (the
        bandwidth test's daily window) say no between their slots; manual runs ignore it."""
        return True

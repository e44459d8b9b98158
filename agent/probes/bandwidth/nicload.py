"""Was this computer's own network card busy with other traffic while the test ran?

A test measures what the line gave *this test*. If a colleague was downloading a file over
the same card at the time (or Windows Update was), the line was shared and a low figure is
no evidence against the operator. The card's byte counters are read before and after the
test (psutil, Linux/Windows/macOS), the test's own bytes are taken away, and what is left is
other traffic: ``nic_other_mbps``, and ``nic_busy = true`` when it was more than
``nic_busy_pct`` of the test's own bytes.

The test's own bytes are its payload (``data.bytes``); the card also counts every packet's
headers (Ethernet 14 + IPv4 20 + TCP 32 with timestamps = 66 bytes), so ``HEADER_BYTES`` per
packet the card counted is taken away too (a little of the other traffic's headers with it:
the figure errs low, never high). A loopback card counts every byte as sent and as received,
so its counts are halved. Bytes still in flight when a test stops (up to a tenth of a second
of traffic, a congestion window) and the HTTP heads are not in ``data.bytes``: they are why
the threshold has a floor and is a share, not zero.

Which card: the line's ``interface``; else the card holding its ``source_address``; else the
card of the route to the target. When psutil is missing or the card cannot be named, nothing
is said (the fields are absent), rather than a guess.
"""
from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ... import netif
from ..base import LineBinding
from .config import BandwidthConfig

log = logging.getLogger("linewatch.agent.bandwidth")

#: headers per packet a card counts and a test's payload does not (Ethernet + IPv4 + TCP w/ timestamps)
HEADER_BYTES = 66
#: other traffic below this is never "busy": ARP, DNS, NTP, the agent's own reach probes
FLOOR_BYTES = 256 * 1024
#: where the route to the internet is looked up when the target names no host (Ookla servers)
PUBLIC_ADDRESS = "1.1.1.1"


@dataclass(frozen=True)
class Counters:
    """A card's counters at one moment: bytes and packets, both directions summed."""

    bytes: int
    packets: int


@dataclass(frozen=True)
class NicLoad:
    other_bytes: int
    other_mbps: float
    busy: bool


def other_bytes(before: Counters, after: Counters, test_bytes: int, loopback: bool = False,
                header_bytes: int = HEADER_BYTES) -> int:
    """Bytes the card carried that were not the test's: its byte count over the test, less the
    test's payload and ``header_bytes`` for every packet counted. Never negative."""
    nbytes = max(0, after.bytes - before.bytes)
    packets = max(0, after.packets - before.packets)
    if loopback:  # every byte and packet counted once sent, once received
        nbytes, packets = nbytes // 2, packets // 2
    return max(0, nbytes - packets * header_bytes - max(0, test_bytes))


def judge(other: int, test_bytes: int, seconds: float, busy_pct: float, floor_bytes: int = FLOOR_BYTES) -> NicLoad:
    """The verdict on ``other`` bytes of other traffic during a test of ``test_bytes`` that took
    ``seconds``: busy when it is more than ``busy_pct`` % of the test's bytes and more than
    ``floor_bytes``."""
    other = max(0, other)
    mbps = other * 8 / seconds / 1e6 if seconds > 0 else 0.0
    busy = other > floor_bytes and other > busy_pct / 100 * max(0, test_bytes)
    return NicLoad(other, round(mbps, 3), busy)


def nic_for(line: LineBinding, cfg: BandwidthConfig) -> str | None:
    """The card this line's test goes out of, or None if it cannot be named."""
    if line.interface:
        return line.interface
    if line.source_address:
        return netif.nic_of_address(line.source_address)
    host = _target_host(cfg)
    if host is None:
        return None
    src = netif.route_source(host)
    return netif.nic_of_address(src) if src else None


def _target_host(cfg: BandwidthConfig) -> str | None:
    if cfg.method == "speedtest":
        return PUBLIC_ADDRESS
    target = cfg.target or ""
    name = urlsplit(target).hostname if "://" in target else target.rpartition(":")[0].strip("[]")
    if not name:
        return None
    try:
        return socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)[0][4][0]
    except (OSError, IndexError):
        return None


class NicWatch:
    """The card's counters around one test: ``start()`` before, ``fields()`` after."""

    def __init__(self, nic: str, before: Counters, loopback: bool, started: float):
        self.nic, self.before, self.loopback, self.started = nic, before, loopback, started

    @classmethod
    def start(cls, line: LineBinding, cfg: BandwidthConfig) -> "NicWatch | None":
        try:
            nic = nic_for(line, cfg)
            c = netif.nic_counters(nic) if nic else None
        except Exception:  # noqa: BLE001 -- a platform oddity must not cost the measurement
            log.debug("cannot read the network card's counters for line %s", line.id, exc_info=True)
            return None
        if c is None:
            return None
        return cls(nic, Counters(c[0], c[1]), c[2], time.monotonic())  # type: ignore[arg-type]

    def fields(self, test_bytes: int, busy_pct: float) -> dict[str, Any]:
        """nic, nic_other_mbps, nic_busy; {} if the counters cannot be read again."""
        seconds = time.monotonic() - self.started
        try:
            c = netif.nic_counters(self.nic)
        except Exception:  # noqa: BLE001
            c = None
        if c is None:
            return {}
        load = judge(other_bytes(self.before, Counters(c[0], c[1]), test_bytes, self.loopback), test_bytes,
                     seconds, busy_pct)
        if load.busy:
            log.info("line test over %s shared the card with %.1f Mbit/s of other traffic", self.nic, load.other_mbps)
        return {"nic": self.nic[:64], "nic_other_mbps": load.other_mbps, "nic_busy": load.busy}

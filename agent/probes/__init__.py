"""Probe registry. Adding a probe = one new module here + one line in REGISTRY
(+ its message schema in linewatch.wire)."""
from __future__ import annotations

from .base import LineBinding, LineUnbound, Probe, Result
from .bandwidth import BandwidthProbe
from .dns import DnsProbe
from .http import HttpProbe
from .latency import LatencyProbe
from .reach import ReachProbe

REGISTRY: dict[str, Probe] = {p.name: p for p in (LatencyProbe(), BandwidthProbe(), DnsProbe(), HttpProbe(),
                                                      ReachProbe())}

__all__ = ["REGISTRY", "LineBinding", "LineUnbound", "Probe", "Result"]

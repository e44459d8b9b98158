"""Probe registry. Adding a probe = one new module here + one line in REGISTRY
(+ its message schema in linewatch.wire)."""
from __future__ import annotations

from .base import LineBinding, LineUnbound, Probe, Result
from .latency import LatencyProbe

REGISTRY: dict[str, Probe] = {p.name: p for p in (LatencyProbe(),)}

__all__ = ["REGISTRY", "LineBinding", "LineUnbound", "Probe", "Result"]

"""The exceptions shared by the agent and the collector (each side keeps its own in its
``errors`` module: agent/errors.py, collector/errors.py). Every message is meant for a
person: the clerk or the provincial admin who has to act on it."""
from __future__ import annotations

from pathlib import Path

from .text import printable

MAX_DETAIL_CHARS = 500


class ConfigError(ValueError):
    """A config file is wrong. The message is meant for the person who edits the file."""


class MalformedMessage(ValueError):
    """The input is not a valid message. ``reason`` is a short stable code for counting;
    ``detail`` is for people: one printable line (agent text escaped), at most 500 characters."""

    def __init__(self, reason: str, detail: str):
        detail = printable(detail, MAX_DETAIL_CHARS)
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class BrokerError(RuntimeError):
    """The embedded broker of ``linewatch up`` could not start."""


class DamagedState(Exception):
    """A state file could not be read; it was moved aside to ``aside`` (None: it could not be)."""

    def __init__(self, path: Path, why: str, aside: Path | None):
        where = f"moved aside to {aside.name}" if aside else "left in place"
        super().__init__(f"state file {path} was damaged ({why}) and {where}; starting it afresh")
        self.path = path
        self.aside = aside

"""Small JSON state files (the bandwidth budget, the LAN sweep's memory), written so that a
power cut leaves the old file or the new one, never half of one, and read so that a damaged
file is *reported* -- set aside as ``<name>.damaged-<time>`` with the reason -- never reset in
silence.

Write: a temporary file in the same folder, ``fsync``, ``os.replace``, then ``fsync`` of the
folder (POSIX; Windows has no folder handle to sync and ``os.replace`` is already atomic there).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .errors import DamagedState


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


def _sync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def write_json(path: Path, doc: Any) -> None:
    write_atomic(path, json.dumps(doc, ensure_ascii=False, sort_keys=True))


def read_json(path: Path) -> Any | None:
    """The document, or None if the file does not exist. A file that cannot be parsed is
    renamed aside and :class:`DamagedState` is raised naming both paths: the caller decides
    what a fresh start means and says so in its result or log."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        raise set_aside(path, f"not valid JSON ({e})") from None


def set_aside(path: Path, why: str) -> DamagedState:
    """Rename a damaged state file aside and return the exception that names it."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    try:
        os.replace(path, aside)
    except OSError as e:
        return DamagedState(path, f"{why}; could not move it aside ({e.strerror or e})", None)
    return DamagedState(path, why, aside)

"""Small helpers for reading TOML config files with exact, actionable error messages.

Both the agent config and the collector's site registry are TOML files edited by people
(a commune clerk, a provincial IT officer). Every error names the file, the place in it
and what is expected, e.g. ``registry.toml: line 'vnpt-tslcd' of site 52123:
contracted_down_mbps must be > 0``.
"""
from __future__ import annotations

import math
import tomllib
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import ConfigError  # noqa: F401  (importers use linewatch.config.ConfigError too)


def load_toml(path: str | Path, what: str) -> dict[str, Any]:
    p = Path(path)
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{what} file {p} does not exist (copy the example next to it and edit it)") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{what} file {p} cannot be read: {e.strerror}") from None


class Section:
    """A view of one TOML table that records which keys were read, so that unknown
    (misspelt) keys are reported instead of silently ignored."""

    def __init__(self, data: Any, where: str):
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: must be a table")
        self.data = data
        self.where = where
        self.seen: set[str] = set()

    def _get(self, key: str, default: Any, required: bool) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if required:
                raise ConfigError(f"{self.where}: {key} is required")
            return default
        return self.data[key]

    def str(self, key: str, default: str | None = None, *, required: bool = False,
            choices: Iterable[str] | None = None) -> Any:
        v = self._get(key, default, required)
        if v is None:
            return None
        if not isinstance(v, str):
            raise ConfigError(f"{self.where}: {key} must be text in quotes, got {v!r}")
        if choices is not None and v not in (c := tuple(choices)):
            raise ConfigError(f"{self.where}: {key} = {v!r} must be one of: {', '.join(c)}")
        return v

    def num(self, key: str, default: float | None = None, *, required: bool = False,
            gt: float | None = None, ge: float | None = None, le: float | None = None,
            integer: bool = False) -> Any:
        v = self._get(key, default, required)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            kind = "a whole number" if integer else "a number"
            raise ConfigError(f"{self.where}: {key} must be {kind}, got {v!r}")
        if not math.isfinite(v):
            raise ConfigError(f"{self.where}: {key} must be a finite number")
        if gt is not None and not v > gt:
            raise ConfigError(f"{self.where}: {key} must be > {gt:g}, got {v!r}")
        if ge is not None and not v >= ge:
            raise ConfigError(f"{self.where}: {key} must be >= {ge:g}, got {v!r}")
        if le is not None and not v <= le:
            raise ConfigError(f"{self.where}: {key} must be <= {le:g}, got {v!r}")
        return v

    def bool(self, key: str, default: bool = False) -> bool:
        v = self._get(key, default, False)
        if not isinstance(v, bool):
            raise ConfigError(f"{self.where}: {key} must be true or false, got {v!r}")
        return v

    def str_list(self, key: str, default: list[str] | None = None, *, required: bool = False) -> list[str]:
        v = self._get(key, default if default is not None else [], required)
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ConfigError(f"{self.where}: {key} must be a list of texts, e.g. [\"a\", \"b\"]")
        return list(v)

    def table(self, key: str, where: str | None = None) -> "Section":
        v = self._get(key, {}, False)
        return Section(v, where or f"{self.where}.{key}")

    def tables(self, key: str) -> list[dict[str, Any]]:
        v = self._get(key, [], False)
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            raise ConfigError(f"{self.where}: {key} must be written as [[{key}]] tables")
        return v

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise ConfigError(f"{self.where}: unknown setting(s) {', '.join(unknown)} (misspelt?)")


@dataclass(frozen=True)
class MqttConnection:
    """How to reach the MQTT broker; shared by the agent's [mqtt] and the collector's [mqtt]."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    keepalive_s: int = 30


_PASSWORD_FILE_MAY_BE_MISSING: ContextVar[bool] = ContextVar("password_file_may_be_missing", default=False)


@contextmanager
def password_file_may_be_missing(allowed: bool = True) -> Iterator[None]:
    """While loading a config for a command that does not log in to the broker (the
    collector's init-ca, which creates the password file, enrol, acl), a ``password_file``
    that does not exist yet is not an error: the password is None. Everything else that
    loads a config (``run``) still refuses it."""
    token = _PASSWORD_FILE_MAY_BE_MISSING.set(allowed)
    try:
        yield
    finally:
        _PASSWORD_FILE_MAY_BE_MISSING.reset(token)


def mqtt_fields(m: Section, base: Path) -> dict[str, Any]:
    """Read the connection settings of an [mqtt] table. Relative file names are relative to
    the config file's folder, so a folder made by `enrol` works wherever it is copied."""
    password = m.str("password")
    if pf := m.str("password_file"):
        try:
            password = (base / pf).read_text().strip()
        except FileNotFoundError:
            if not _PASSWORD_FILE_MAY_BE_MISSING.get():
                raise ConfigError(f"{m.where}: password_file {base / pf} does not exist (the collector's is made "
                                  f"by `linewatch-collector init-ca`, an agent's by `enrol`)") from None
            password = None
        except OSError as e:
            raise ConfigError(f"{m.where}: password_file {base / pf} cannot be read: {e.strerror}") from None
    ca = m.str("ca_file")
    return dict(host=m.str("host", "127.0.0.1"), port=m.num("port", 1883, ge=1, le=65535, integer=True),
                username=m.str("username"), password=password, tls=m.bool("tls", False),
                ca_file=str(base / ca) if ca else None,
                keepalive_s=m.num("keepalive_s", 30, ge=5, le=3600, integer=True))

"""What differs between SQLite and PostgreSQL, and nothing else: connecting, placeholders,
two scalar functions, the write lock, and which errors mean "the database is not there"."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit, urlunsplit

from . import schema
from ..errors import RecordConfigError, RecordUnavailable, SchemaTooNew

#: Transaction-scoped PostgreSQL lock taken by every writer: feed positions become visible
#: in the order they were given, so a consumer reading "pos > mine" never skips a row that
#: a second collector was still committing.
PG_WRITE_LOCK = 727_001


class Backend:
    name = "?"
    where = "?"  # for messages: a path or host:port/db, never a password

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def begin_write(self) -> None:
        raise NotImplementedError

    def unavailable(self, e: BaseException) -> bool:
        """True when ``e`` means the database cannot be written now (retry later), False
        when it was caused by what was being written (quarantine that message)."""
        raise NotImplementedError

    def reconnect(self) -> None:
        pass

    def close(self) -> None:
        raise NotImplementedError

    def size_bytes(self) -> int:
        raise NotImplementedError

    # -- migrations ------------------------------------------------------------------
    def version(self) -> int:
        raise NotImplementedError

    def migrate(self) -> list[int]:
        """Apply every step above the record's version, each in its own transaction."""
        current = self.version()
        if current > schema.LATEST:
            raise SchemaTooNew(f"the record at {self.where} has schema version {current}, newer than this "
                               f"linewatch knows ({schema.LATEST}): upgrade linewatch, do not downgrade")
        done = []
        for step, ddl in sorted(self.steps().items()):
            if step <= current:
                continue
            if self.apply_step(step, ddl):
                done.append(step)
        return done

    def steps(self) -> dict[int, str]:
        raise NotImplementedError

    def apply_step(self, step: int, ddl: str) -> bool:
        """Apply one step in one transaction; False when another process had applied it."""
        raise NotImplementedError


_GREATEST = re.compile(r"\bGREATEST\(")
_LEAST = re.compile(r"\bLEAST\(")


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, path: Path):
        self.path = Path(path)
        self.where = str(self.path)
        self._cache: dict[str, str] = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # the busy timeout first: switching a new file to WAL while another process opens it
            # (a `status` while the collector starts) must wait for the lock, not fail
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            self.db.execute("PRAGMA busy_timeout=10000")
            _retry_locked(lambda: self.db.execute("PRAGMA journal_mode=WAL"))  # no busy handler here
            self.db.execute("PRAGMA synchronous=FULL")
        except (sqlite3.Error, OSError) as e:
            raise RecordConfigError(f"cannot open the record {self.path}: {e} (check the folder exists and is "
                                    f"writable by the collector's user, and the disk is not full)") from None

    def _sql(self, sql: str) -> str:
        out = self._cache.get(sql)
        if out is None:
            out = self._cache[sql] = _LEAST.sub("min(", _GREATEST.sub("max(", sql))
        return out

    def execute(self, sql, params=()):
        return self.db.execute(self._sql(sql), tuple(params))

    def executemany(self, sql, rows):
        self.db.executemany(self._sql(sql), rows)

    def begin_write(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def unavailable(self, e: BaseException) -> bool:
        # disk full, read-only file system, locked by another process, I/O error
        return isinstance(e, sqlite3.OperationalError)

    def close(self) -> None:
        self.db.close()

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())

    def version(self) -> int:
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "schema_version" in tables:
            return self.db.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
        return 1 if "measurements" in tables else 0

    def steps(self) -> dict[int, str]:
        return schema.SQLITE_STEPS

    def apply_step(self, step: int, ddl: str) -> bool:
        import time

        self.db.execute("BEGIN IMMEDIATE")
        try:
            if self.version() >= step:  # another process (a `status`, a second collector) did it first
                self.db.execute("ROLLBACK")
                return False
            for stmt in _statements(ddl):
                self.db.execute(stmt)
            self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, "
                            "applied_at REAL NOT NULL)")
            self.db.execute("INSERT INTO schema_version VALUES (?, ?)", (step, time.time()))
            self.db.execute("COMMIT")
            return True
        except BaseException:
            self.db.execute("ROLLBACK")
            raise


def _retry_locked(op, seconds: float = 10.0):
    """Run ``op`` again while SQLite says the database is locked (up to ``seconds``)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            return op()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _statements(ddl: str) -> list[str]:
    return [s.strip() for s in ddl.split(";") if s.strip()]


class PostgresBackend(Backend):
    name = "postgresql"

    def __init__(self, url: str):
        try:
            import psycopg
        except ImportError:
            raise RecordConfigError("record = postgresql://... needs psycopg: pip install 'linewatch[collector]'") \
                from None
        self._psycopg = psycopg
        self.url = url
        u = urlsplit(url)
        self.where = f"{u.hostname or 'localhost'}:{u.port or 5432}/{u.path.lstrip('/') or '?'}"
        self.safe_url = urlunsplit((u.scheme, f"{u.username + '@' if u.username else ''}{u.hostname or ''}"
                                    f"{':' + str(u.port) if u.port else ''}", u.path, "", ""))
        self._cache: dict[str, str] = {}
        self.db = None
        try:
            self._connect()
        except psycopg.Error as e:
            raise RecordConfigError(
                f"cannot connect to the PostgreSQL record at {self.where}: {_first_line(e)} -- check that the "
                f"server is running and reachable, and the user, password and database in `record`") from None

    def _connect(self) -> None:
        self.db = self._psycopg.connect(self.url, autocommit=True, connect_timeout=10,
                                        application_name="linewatch-collector")

    def _sql(self, sql: str) -> str:
        out = self._cache.get(sql)
        if out is None:
            out = self._cache[sql] = sql.replace("%", "%%").replace("?", "%s")
        return out

    def execute(self, sql, params=()):
        return self.db.execute(self._sql(sql), tuple(params))

    def executemany(self, sql, rows):
        with self.db.cursor() as cur:
            cur.executemany(self._sql(sql), list(rows))

    def begin_write(self) -> None:
        self.db.execute("BEGIN")
        self.db.execute(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")

    def unavailable(self, e: BaseException) -> bool:
        return isinstance(e, (self._psycopg.OperationalError, self._psycopg.InterfaceError))

    def reconnect(self) -> None:
        if self.db is not None and not self.db.closed and not self.db.broken:
            return
        try:
            if self.db is not None:
                self.db.close()
            self._connect()
        except self._psycopg.Error as e:
            raise RecordUnavailable(f"PostgreSQL at {self.where} is unreachable: {_first_line(e)}") from None

    def close(self) -> None:
        if self.db is not None:
            self.db.close()

    def size_bytes(self) -> int:
        return int(self.db.execute("SELECT pg_database_size(current_database())").fetchone()[0])

    def version(self) -> int:
        exists = self.db.execute("SELECT to_regclass('schema_version')").fetchone()[0]
        if not exists:
            return 0
        return self.db.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]

    def steps(self) -> dict[int, str]:
        return schema.POSTGRES_STEPS

    def apply_step(self, step: int, ddl: str) -> bool:
        import time

        with self.db.transaction():
            # two collectors starting at once: one migrates, the other waits and finds it done
            self.db.execute(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")
            self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, "
                            "applied_at DOUBLE PRECISION NOT NULL)")
            if self.version() >= step:
                return False
            for stmt in _statements(ddl):
                self.db.execute(stmt)
            self.db.execute("INSERT INTO schema_version VALUES (%s, %s)", (step, time.time()))
        return True


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def open_backend(location: str, base: Path | None = None) -> Backend:
    """``record`` setting -> backend: ``postgresql://user:pw@host:port/db`` (or
    ``postgres://``), ``sqlite:///abs/path``, or a plain path (relative to ``base``)."""
    if location.startswith(("postgresql://", "postgres://")):
        return PostgresBackend(location)
    if location.startswith("sqlite:///"):
        path = Path(location[len("sqlite://"):])
    elif "://" in location:
        raise RecordConfigError(f"record = {location.split('://')[0]}://... is not supported: use a file path, "
                                f"sqlite:///path or postgresql://user:password@host:port/database")
    else:
        path = Path(location)
        if not path.is_absolute() and base is not None:
            path = base / path
    return SqliteBackend(path)


"""Bench helper: a throw-away PostgreSQL cluster, the one tests/pgfixture.py starts (initdb in a
temp folder, as user ``postgres`` when run as root, 127.0.0.1 on a free port, scram password,
fsync on), with ``shared_buffers`` raised to Debian's stock 128MB (the fixture's 32MB is
sized for tests, not for a month of a province).

    with throwaway_postgres() as pg:
        url = pg.new_database("bench")   # postgresql://linewatch:...@127.0.0.1:PORT/bench
"""
from __future__ import annotations

import secrets
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

BENCH_CONF = """
# ---- linewatch benchmarks (bench/_pg.py): a stock Debian server's memory settings
shared_buffers = 128MB
"""


class BenchPg:
    def __init__(self, server):
        self.server = server

    def new_database(self, prefix: str = "bench") -> str:
        import psycopg

        name = f"{prefix}_{secrets.token_hex(4)}"
        with psycopg.connect(self.server.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.server.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.server.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def available() -> str | None:
    """None when a throw-away PostgreSQL can be started here, else why not."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[collector]')"
    from pgfixture import find_bindir

    if find_bindir() is None:
        return "PostgreSQL server binaries are not installed (apt-get install postgresql)"
    return None


@contextmanager
def throwaway_postgres() -> Iterator[BenchPg]:
    from pgfixture import _create_server  # plain functions; pytest is only used to report failures

    server = _create_server()
    try:
        with (server.datadir / "postgresql.conf").open("a") as f:
            f.write(BENCH_CONF)
        server.stop("fast")
        server.start()
        yield BenchPg(server)
    finally:
        try:
            server.stop("immediate")
        finally:
            shutil.rmtree(server.base, ignore_errors=True)

"""The throw-away PostgreSQL of tests/pgfixture.py behaves as the collector's tests need."""
from __future__ import annotations

import pytest

from pgfixture import PgServer, pg_start, pg_stop

psycopg = pytest.importorskip("psycopg")


def test_cluster_answers_a_query(pg_url: str, pg_server: PgServer) -> None:
    assert pg_url.startswith(f"postgresql://{pg_server.user}:{pg_server.password}@127.0.0.1:{pg_server.port}/")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
        assert conn.execute("SHOW max_connections").fetchone() == ("50",)
        assert conn.execute("SELECT current_database()").fetchone()[0] == pg_url.rsplit("/", 1)[1]


@pytest.mark.parametrize("round_", [1, 2])
def test_each_test_gets_an_empty_database(pg_url: str, round_: int) -> None:
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)
        # leave something behind: the next round must not see it
        conn.execute("CREATE TABLE leftover (n int)")
        conn.execute("INSERT INTO leftover VALUES (%s)", (round_,))


def test_wrong_password_is_refused(pg_url: str, pg_server: PgServer) -> None:
    bad = pg_server.url(pg_url.rsplit("/", 1)[1], password="not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(bad, connect_timeout=10)


def test_stop_and_start_mid_test(pg_url: str, pg_server: PgServer) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    conn = psycopg.connect(pg_url, autocommit=True)
    pg_stop(pg_server)  # immediate: like the server being lost
    assert not pg_server.running()
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_url, connect_timeout=5)
    conn.close()
    pg_start(pg_server)
    with psycopg.connect(pg_url) as conn:  # same port, same password, committed data survives
        assert conn.execute("SELECT n FROM kept").fetchall() == [(42,)]

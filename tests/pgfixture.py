"""A throw-away PostgreSQL for tests, started the way conftest starts mosquitto.

Fixtures (load this module as a pytest plugin: ``pytest_plugins = [..., "pgfixture"]``):

* ``pg_server`` (session): one private cluster (initdb in a temp dir), listening on
  127.0.0.1 on a free port with password (scram-sha-256) authentication for TCP
  connections, stopped with ``pg_ctl stop -m immediate`` and deleted at the end.
  It is a :class:`PgServer`: ``host``, ``port``, ``user``, ``password``, ``url(db)``,
  ``start()``, ``stop()``, ``running()``.
* ``pg_url`` (function): a fresh, empty database for one test, yielded as a DSN
  ``postgresql://USER:PASSWORD@127.0.0.1:PORT/DBNAME``; dropped afterwards.

``pg_stop(server)`` / ``pg_start(server)`` stop and restart the server mid-test (to test
"PostgreSQL lost while running"); the port, user, password and data survive a restart.

initdb refuses to run as root: as root, the cluster belongs to the unprivileged user
``postgres`` (created by Debian's package) and initdb/pg_ctl run as that user.
Missing binaries skip the tests, except as root or under CI, where they fail: there
``./dev test`` could have installed them, so a skip would hide a test that never ran.
"""
from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

INSTALL_HINT = "./dev test installs postgresql (apt-get install postgresql)"


def find_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/<ver>/bin that has initdb, pg_ctl and postgres."""
    def version(path: str) -> tuple[int, ...]:
        ver = Path(path).parent.parent.name
        return tuple(int(p) for p in re.findall(r"\d+", ver)) or (0,)

    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True):
        bindir = Path(initdb).parent
        if all(os.access(bindir / b, os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return bindir
    initdb = shutil.which("initdb")  # other distributions put them on PATH
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    return None


def _missing(reason: str) -> None:
    """Skip on a developer's machine; fail where the dependency could have been installed."""
    if os.geteuid() == 0 or os.environ.get("CI"):
        pytest.fail(f"{reason}; {INSTALL_HINT}. Failing instead of skipping because this run "
                    f"is {'root' if os.geteuid() == 0 else 'CI'}.", pytrace=False)
    pytest.skip(f"{reason}; {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_os_user() -> pwd.struct_passwd | None:
    """Who owns and runs the cluster: None = ourselves; as root, an unprivileged user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.fail("running as root but there is no user 'postgres' (or 'nobody') to run PostgreSQL as "
                "(initdb refuses to run as root)", pytrace=False)


@dataclass
class PgServer:
    bindir: Path
    base: Path                     # the temp dir holding everything below
    port: int
    user: str = "linewatch"        # the database superuser
    password: str = field(default_factory=lambda: secrets.token_hex(16))
    host: str = "127.0.0.1"
    os_user: pwd.struct_passwd | None = None

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def sockdir(self) -> Path:
        return self.base / "sock"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def url(self, dbname: str = "postgres", password: str | None = None) -> str:
        pw = self.password if password is None else password
        return f"postgresql://{self.user}:{pw}@{self.host}:{self.port}/{dbname}"

    # ------------------------------------------------------------ processes
    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        kw = {}
        if self.os_user is not None:  # as root: run as the cluster's owner
            kw = dict(user=self.os_user.pw_uid, group=self.os_user.pw_gid, extra_groups=[])
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C.UTF-8", LANG="C.UTF-8", TZ="UTC")
        return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                              cwd=self.base, env=env, **kw)

    def _chown(self, path: Path) -> None:
        if self.os_user is not None:
            os.chown(path, self.os_user.pw_uid, self.os_user.pw_gid)

    def init(self) -> None:
        self.sockdir.mkdir()
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        for p in (self.base, self.sockdir, pwfile):
            self._chown(p)
        r = self._run(self.bindir / "initdb", "-D", self.datadir, "-U", self.user, f"--pwfile={pwfile}",
                      "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8",
                      "--no-sync")
        pwfile.unlink()
        if r.returncode != 0:
            pytest.fail(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}", pytrace=False)
        self._write_conf()

    def _write_conf(self) -> None:
        conf = self.datadir / "postgresql.conf"
        with conf.open("a") as f:
            f.write(f"""
# ---- linewatch tests (tests/pgfixture.py)
port = {self.port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{self.sockdir}'
max_connections = 50
shared_buffers = 32MB
password_encryption = 'scram-sha-256'
fsync = on
logging_collector = off
log_min_messages = warning
""")

    def running(self) -> bool:
        return self._run(self.bindir / "pg_ctl", "-D", self.datadir, "status").returncode == 0

    def start(self, timeout: float = 60) -> None:
        r = self._run(self.bindir / "pg_ctl", "-D", self.datadir, "-l", self.log, "-w", "-t", str(int(timeout)),
                      "start", timeout=timeout + 30)
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed ({r.returncode}): {r.stdout}{r.stderr}\n"
                               f"--- {self.log}:\n{self._log_tail()}")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; the default 'immediate' is an abrupt stop (like a crash: no
        checkpoint, connections cut, crash recovery on the next start)."""
        if self.datadir.joinpath("postmaster.pid").exists():
            r = self._run(self.bindir / "pg_ctl", "-D", self.datadir, "-m", mode, "-w", "-t", "60", "stop")
            if r.returncode != 0 and self.running():
                raise RuntimeError(f"pg_ctl stop failed ({r.returncode}): {r.stdout}{r.stderr}")

    def _log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def pg_stop(server: PgServer, mode: str = "immediate") -> None:
    server.stop(mode)


def pg_start(server: PgServer) -> None:
    server.start()


def _create_server() -> PgServer:
    bindir = find_bindir()
    if bindir is None:
        _missing("PostgreSQL server binaries (initdb, pg_ctl, postgres under /usr/lib/postgresql/*/bin) "
                 "are not installed")
    os_user = _server_os_user()
    # not under pytest's basetemp: as root that is a 0700 root folder the server user cannot enter
    base = Path(tempfile.mkdtemp(prefix="lw-pg-"))
    server = PgServer(bindir=bindir, base=base, port=_free_port(), os_user=os_user)
    try:
        server.init()
        for attempt in range(3):
            try:
                server.start()
                return server
            except RuntimeError:
                if attempt == 2:
                    raise
                # most likely the free port was taken meanwhile: pick another one
                server.port = _free_port()
                server._write_conf()  # the last 'port =' line wins
    except BaseException:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
        raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = _create_server()
    try:
        yield server
    finally:
        try:
            server.stop("immediate")
        finally:
            shutil.rmtree(server.base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    try:
        import psycopg
    except ImportError:
        _missing("the Python package psycopg is not installed (pip install -e '.[test]')")
    dbname = "t_" + secrets.token_hex(6)
    if not pg_server.running():  # a previous test stopped it and did not restart it
        pg_server.start()
    with psycopg.connect(pg_server.url(), autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    yield pg_server.url(dbname)
    if not pg_server.running():  # this test stopped it: bring it back for the next tests
        pg_server.start()
    with psycopg.connect(pg_server.url(), autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

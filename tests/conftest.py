"""Fixtures that start real services on free ports: mosquitto, the collector, agents."""
from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the `lab` fixture of the shaped-link namespace lab (bandwidth and loss tests)
pytest_plugins = ["linklab", "pgfixture", "skipguard"]
MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def wait_for(predicate: Callable[[], object], timeout: float = 20, what: str = "condition", step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Broker:
    host: str
    port: int
    proc: subprocess.Popen
    conf: Path
    log: Path

    def restart(self) -> None:
        self.stop()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=self.log.open("ab"),
                                     stderr=subprocess.STDOUT)
        wait_port(self.host, self.port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_mosquitto(tmp: Path, extra_conf: str = "", port: int | None = None, persistence: bool = False) -> Broker:
    """A real mosquitto on a free port. With persistence the collector's session (its
    subscription and the messages queued for it) survives a broker restart, as in
    deploy/server/mosquitto.conf."""
    if not MOSQUITTO:
        pytest.skip("mosquitto is not installed (./dev test installs it with apt-get)")
    port = port or free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    conf = tmp / "mosquitto.conf"
    log = tmp / "mosquitto.log"
    conf.write_text(textwrap.dedent(f"""\
        per_listener_settings false
        # as root, mosquitto would switch to user "mosquitto", which cannot write the test's folder
        user {pwd.getpwuid(os.getuid()).pw_name}
        persistence {"true" if persistence else "false"}
        persistence_location {tmp}/
        log_dest stdout
        log_type error
        log_type warning
        log_type notice
        max_inflight_messages 0
        max_queued_messages 100000
        listener {port} 127.0.0.1
        allow_anonymous true
        """) + extra_conf)
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_port("127.0.0.1", port)
    except TimeoutError:
        proc.kill()
        raise AssertionError(f"mosquitto did not start: {log.read_text()}")
    return Broker("127.0.0.1", port, proc, conf, log)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    b = start_mosquitto(tmp_path / "mosquitto", persistence=True)
    yield b
    b.stop()


# ------------------------------------------------------------------ configs
REGISTRY_TOML = """\
[[site]]
code = "21583"
province = "52"
name = "UBND phường Thử Nghiệm"
agents = ["ag-21583"]
  [site.staff]
  full_time = 10
  part_time = 4
  contract = 2
  [[site.line]]
  id = "fiber"
  isp = "VNPT"
  kind = "internet"
  contracted_down_mbps = 100
  contracted_up_mbps = 100
  [[site.line]]
  id = "tslcd"
  isp = "VNPT"
  kind = "tslcd"
  contracted_down_mbps = 200
  contracted_up_mbps = 200

[[site]]
code = "21584"
province = "52"
name = "UBND xã Bên Cạnh"
agents = ["ag-21584"]
  [[site.line]]
  id = "fiber"
  isp = "Viettel"
  kind = "internet"
  contracted_down_mbps = 50
  contracted_up_mbps = 50
"""


def write_registry(path: Path, text: str = REGISTRY_TOML) -> Path:
    path.write_text(text)
    return path


def agent_toml(state_dir: Path, port: int, *, agent_id: str = "ag-21583", site: str = "21583",
               interval_s: float = 5, heartbeat_s: float = 2, targets: str = '["127.0.0.1"]',
               keepalive_s: int = 5, extra_line: str = "", mqtt_extra: str = "", host: str = "127.0.0.1",
               drain_rate_per_s: float | None = None) -> str:
    """An agent config for tests: one line "fiber" with a fast latency probe."""
    outbox = f"[outbox]\ndrain_rate_per_s = {drain_rate_per_s}" if drain_rate_per_s is not None else ""
    lines = [
        "[agent]", f'id = "{agent_id}"', 'province = "52"', f'site = "{site}"', f'state_dir = "{state_dir}"',
        "[mqtt]", f'host = "{host}"', f"port = {port}", f"keepalive_s = {keepalive_s}", mqtt_extra,
        "[schedule]", f"heartbeat_s = {heartbeat_s}", "jitter_pct = 0",
        outbox,
        "[[line]]", 'id = "fiber"', extra_line,
        "[line.latency]", f"targets = {targets}", f"interval_s = {interval_s}", "count = 3", "spacing_ms = 20",
        "timeout_s = 1",
    ]
    return "\n".join(lines) + "\n"


def collector_toml(registry: Path, record: Path, port: int, client_id: str = "collector-test") -> str:
    return textwrap.dedent(f"""\
        registry = "{registry}"
        record = "{record}"
        [mqtt]
        host = "127.0.0.1"
        port = {port}
        client_id = "{client_id}"
        [status]
        offline_after_s = 60
        """)


@dataclass
class Proc:
    proc: subprocess.Popen
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> Proc:
    """Run a linewatch command as a real process (python -m, from this checkout)."""
    e = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    p = subprocess.Popen([sys.executable, "-m", *args], stdout=log.open("wb"), stderr=subprocess.STDOUT, env=e,
                         cwd=ROOT)
    return Proc(p, log)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Processes started by a test; all stopped at the end, whatever happened."""
    started: list[Proc] = []
    yield started
    for p in started:
        p.stop(signal.SIGKILL, 5)


@pytest.fixture
def collector(tmp_path, mosquitto):
    """An in-process collector on the test broker, with its SQLite record."""
    from linewatch.collector import config as collector_config
    from linewatch.collector import registry as registry_mod
    from linewatch.collector.ingest import Ingestor
    from linewatch.collector.mqtt import Subscriber
    from linewatch.collector.record import open_record

    reg_path = write_registry(tmp_path / "registry.toml")
    (tmp_path / "collector.toml").write_text(collector_toml(reg_path, tmp_path / "record.sqlite3", mosquitto.port))
    cfg = collector_config.load(tmp_path / "collector.toml")
    store = open_record(cfg.record)
    sub = Subscriber(cfg.mqtt, Ingestor(store, registry_mod.load(cfg.registry_path)))
    sub.start()
    wait_for(sub.subscribed.is_set, 10, "collector to subscribe")
    sub.config_path = tmp_path / "collector.toml"
    yield sub
    sub.stop()
    store.close()


# ------------------------------------------------------------------ a disk to fill up
@contextlib.contextmanager
def small_fs(where: Path, size: str) -> Iterator[Path]:
    """A real file system of ``size`` (tmpfs, e.g. "1m") mounted at ``where``, to fill up.
    Needs root: skipped without it, a failure with it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill up needs root")
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> Path:
    """Write zeros into ``path``/filler until the file system is full; returns the filler."""
    filler = path / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


@pytest.fixture
def speedserver(request):
    """linewatch-speedserver on a free loopback port; ``indirect`` parametrisation sets how many
    transfers it takes at once (default 16)."""
    from linewatch.speed.server import SpeedServer, SpeedServerConfig

    srv = SpeedServer(SpeedServerConfig("127.0.0.1", 0, max_transfers=getattr(request, "param", 16)))
    srv.start_background()
    yield srv
    srv.shutdown()
    srv.server_close()

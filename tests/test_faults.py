"""Fault runs: agent killed -9, broker restarted, collector killed -9, the agent's link cut.
Every sequence number must arrive exactly once in the record. Each run prints
sent / stored / duplicates / lost. The short versions run by default; the long ones
(more messages, repeated faults, a link cut for minutes) are marked soak."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import ROOT, Proc, agent_toml, collector_toml, free_port, spawn, start_mosquitto, wait_for, write_registry
from faultkit import tally

AGENT = "ag-21583"


def stored(record: Path) -> int:
    if not record.exists():
        return 0
    db = sqlite3.connect(f"file:{record}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute("SELECT count(*) FROM feed WHERE kind = 'latency'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


class Rig:
    """mosquitto (persistent, as shipped) + collector process + load-generating agent process."""

    def __init__(self, tmp: Path, procs: list[Proc], count: int, rate: float, broker_host: str = "127.0.0.1",
                 agent_netns: str | None = None, keepalive_s: int = 5):
        self.tmp, self.procs, self.count, self.rate = tmp, procs, count, rate
        self.netns = agent_netns
        port = free_port()
        extra = f"listener {port} {broker_host}\n" if broker_host != "127.0.0.1" else ""
        self.broker = start_mosquitto(tmp / "broker", extra_conf=extra, persistence=True)
        self.record = tmp / "record.sqlite3"
        reg = write_registry(tmp / "registry.toml")
        self.collector_cfg = tmp / "collector.toml"
        self.collector_cfg.write_text(collector_toml(reg, self.record, self.broker.port, client_id="linewatch-collector"))
        self.agent_cfg = tmp / "agent.toml"
        agent_port = port if broker_host != "127.0.0.1" else self.broker.port
        self.agent_cfg.write_text(agent_toml(tmp / "agent-state", agent_port, agent_id=AGENT, host=broker_host,
                                             keepalive_s=keepalive_s, drain_rate_per_s=0))
        self.collector: Proc | None = None
        self.agent: Proc | None = None
        self.runs = 0

    def start_collector(self) -> None:
        self.collector = spawn(["linewatch.collector.cli", "-c", str(self.collector_cfg), "run"],
                               self.tmp / f"collector-{self.runs}.log")
        self.procs.append(self.collector)
        self.runs += 1
        # the first time, the broker only keeps messages for the collector once it has subscribed
        wait_for(lambda: "subscribed to" in self.collector.output(), 20, "the collector to subscribe")

    def start_agent(self) -> None:
        args = [sys.executable, str(ROOT / "tests/faultkit.py"), str(self.agent_cfg), str(self.count), str(self.rate)]
        if self.netns:
            args = ["ip", "netns", "exec", self.netns, *args]
        log = self.tmp / f"agent-{self.runs}.log"
        self.runs += 1
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT / "tests"))
        self.agent = Proc(subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT),
                          log)
        self.procs.append(self.agent)

    def wait_stored(self, n: int) -> None:
        timeout = 30 + 2 * n / self.rate  # the load produces `rate` results per second
        wait_for(lambda: stored(self.record) >= n, timeout, f"{n} results in the record", step=0.2)

    def finish(self, name: str, timeout: float = 120):
        assert self.agent is not None
        deadline = time.monotonic() + timeout + self.count / self.rate
        while self.agent.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert self.agent.proc.returncode == 0, self.agent.output()
        wait_for(lambda: stored(self.record) >= self.count, 60, "the record to catch up", step=0.2)
        time.sleep(1)  # let late duplicates land too, so they are counted
        if self.collector:
            assert self.collector.stop() == 0, self.collector.output()
        result = tally(self.record, AGENT, self.count)
        print(result.line(name))
        self.broker.stop()
        return result


@pytest.fixture
def rig(tmp_path, procs):
    made: list[Rig] = []

    def make(count: int, rate: float, **kw) -> Rig:
        r = Rig(tmp_path, procs, count, rate, **kw)
        made.append(r)
        return r
    yield make
    for r in made:
        r.broker.stop()


def assert_exactly_once(t) -> None:
    assert t.lost == 0, f"missing sequence numbers: {t.missing[:20]}"
    assert t.stored == t.sent


def kill_agent_mid_stream(rig, count: int, rate: float, kills: int):
    r = rig(count, rate)
    r.start_collector()
    r.start_agent()
    for k in range(kills):
        r.wait_stored(count * (k + 1) // (kills + 2))
        r.agent.stop(signal.SIGKILL)
        r.start_agent()  # same state folder: carries on from its outbox
    return r.finish(f"agent kill -9 x{kills}")


def restart_broker_mid_stream(rig, count: int, rate: float, restarts: int):
    r = rig(count, rate)
    r.start_collector()
    r.start_agent()
    for k in range(restarts):
        r.wait_stored(count * (k + 1) // (restarts + 2))
        r.broker.restart()
    return r.finish(f"broker restart x{restarts}")


def kill_collector_mid_stream(rig, count: int, rate: float, kills: int):
    r = rig(count, rate)
    r.start_collector()
    r.start_agent()
    for k in range(kills):
        r.wait_stored(count * (k + 1) // (kills + 2))
        r.collector.stop(signal.SIGKILL)
        time.sleep(1)
        r.start_collector()
    return r.finish(f"collector kill -9 x{kills}")


def test_an_agent_killed_mid_stream_loses_nothing(rig):
    assert_exactly_once(kill_agent_mid_stream(rig, count=600, rate=150, kills=1))


def test_a_broker_restart_mid_stream_loses_nothing(rig):
    assert_exactly_once(restart_broker_mid_stream(rig, count=600, rate=150, restarts=1))


def test_a_collector_killed_mid_stream_loses_nothing_and_stores_no_duplicate(rig):
    assert_exactly_once(kill_collector_mid_stream(rig, count=600, rate=150, kills=1))


@pytest.mark.soak
def test_soak_repeated_agent_kills(rig):
    assert_exactly_once(kill_agent_mid_stream(rig, count=20_000, rate=400, kills=5))


@pytest.mark.soak
def test_soak_repeated_broker_restarts(rig):
    assert_exactly_once(restart_broker_mid_stream(rig, count=20_000, rate=400, restarts=5))


@pytest.mark.soak
def test_soak_repeated_collector_kills(rig):
    assert_exactly_once(kill_collector_mid_stream(rig, count=20_000, rate=400, kills=5))


# ------------------------------------------------------------------ link cut (network namespace)
def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture
def agent_netns():
    """The agent in its own namespace, joined to this host by a veth pair (10.251.x.0/30)."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    tag = uuid.uuid4().hex[:6]
    ns, host_if, ns_if = f"lw5{tag}", f"lw5h{tag}", f"lw5n{tag}"
    octet = int(tag[:2], 16)
    host_ip, ns_ip = f"10.251.{octet}.1", f"10.251.{octet}.2"
    try:
        sh("ip", "netns", "add", ns)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        pytest.skip(f"cannot create a network namespace here: {e}")
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        sh("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "-n", ns, "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        sh("ip", "-n", ns, "link", "set", ns_if, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield ns, host_if, host_ip
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def cut_link(rig, agent_netns, count: int, rate: float, cut_s: float):
    ns, host_if, host_ip = agent_netns
    r = rig(count, rate, broker_host=host_ip, agent_netns=ns, keepalive_s=5)
    r.start_collector()
    r.start_agent()
    r.wait_stored(count // 4)
    sh("ip", "link", "set", host_if, "down")
    before = stored(r.record)
    time.sleep(cut_s)
    during = stored(r.record) - before
    sh("ip", "link", "set", host_if, "up")
    t = r.finish(f"link cut {cut_s:g}s")
    assert during <= r.rate, "nothing (but what was already in flight) can cross a cut link"
    return t


def test_a_cut_link_loses_nothing_once_it_is_back(rig, agent_netns):
    assert_exactly_once(cut_link(rig, agent_netns, count=1500, rate=100, cut_s=12))


@pytest.mark.soak
def test_soak_link_cut_for_minutes(rig, agent_netns):
    assert_exactly_once(cut_link(rig, agent_netns, count=30_000, rate=100, cut_s=180))

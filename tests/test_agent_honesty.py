"""Nothing lost in silence: whatever a probe, a server it measures, a job or the broker does,
the agent keeps a message saying so, logs it, and counts it in its heartbeat."""
from __future__ import annotations

import dataclasses
import json
import logging
import socketserver
import threading
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linewatch import wire
from linewatch.agent import config as agent_config
from linewatch.agent.probes import Result
from linewatch.agent.runner import Agent, Scheduler

from conftest import wait_for


class RawAnswer(socketserver.StreamRequestHandler):
    """Answers GET /STATUS/REASON-IN-HEX[?anything] with exactly that status line, whatever it is."""

    def handle(self) -> None:
        request = self.rfile.readline().decode("latin-1").split()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        _, status, reason = request[1].split("?")[0].split("/", 2)
        self.wfile.write(b"HTTP/1.1 " + status.encode() + b" " + bytes.fromhex(reason) +
                         b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


@pytest.fixture(scope="module")
def server():
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), RawAnswer)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def config(state: Path, url: str = "http://127.0.0.1:9/", extra: str = "", site: str = "21583",
           port: int = 1883, mqtt_extra: str = "") -> agent_config.AgentConfig:
    return agent_config.parse(tomllib.loads(f"""
        [agent]
        id = "ag-21583"
        province = "52"
        site = "{site}"
        state_dir = "{state}"
        [mqtt]
        port = {port}
        keepalive_s = 5
        {mqtt_extra}
        [schedule]
        heartbeat_s = 1
        jitter_pct = 0
        {extra}
        [[line]]
        id = "fiber"
          [line.http]
          urls = ["{url}"]
          timeout_s = 5
        """))


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    a = Agent(config(tmp_path_factory.mktemp("agent")))
    yield a
    a.outbox.close()


def stored(agent: Agent, kind: str | None = None) -> list[wire.Message]:
    """What the agent kept for the collector, through the collector's own parser."""
    rows = agent.outbox.pending(100_000)
    msgs = [wire.parse_message(p.topic, p.payload) for p in rows]
    return [m for m in msgs if kind is None or m.kind == kind]


def run_http(agent: Agent, url: str) -> None:
    line = agent.cfg.lines[0]
    pcfg = dataclasses.replace(line.probes["http"], urls=(url,))
    agent._probe_job(line, "http", pcfg)()


def test_a_measurement_that_breaks_the_wire_contract_is_kept_as_a_failed_one_with_the_reason_and_counted(
        tmp_path, server, caplog):
    # a portal's address with its tracking parameters pasted into agent.toml: longer than the
    # 512 characters the contract takes for http.data.url, so the result cannot be built
    url = f"{server}/200/{b'OK'.hex()}?utm_source=" + "x" * 600
    a = Agent(config(tmp_path, url))
    try:
        a._probe_job(a.cfg.lines[0], "http", a.cfg.lines[0].probes["http"])()
        [m] = stored(a, "http")
        assert (m.ok, m.error_code) == (False, "invalid_result")
        assert len(m.data["url"]) == 512 and url.startswith(m.data["url"][:-1]), "the address, shortened"
        assert "broke the wire contract" in m.error and "http.data.url" in m.error
        assert a.probe_errors == 1 and "fiber/http" in a.last_probe_error
        assert any(r.levelno == logging.ERROR and "fiber/http crashed" in r.getMessage() for r in caplog.records)
        a.heartbeat()
        [hb] = stored(a, "heartbeat")
        assert hb.data["probe_errors"] == 1 and "http.data.url" in hb.data["last_probe_error"]
    finally:
        a.outbox.close()


status_lines = st.tuples(st.integers(100, 999),
                         st.binary(max_size=1500).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status_lines)
def test_whatever_status_line_a_server_answers_the_agent_keeps_one_message_the_collector_accepts(
        agent, server, answer):
    status, reason = answer
    url = f"{server}/{status}/{reason.hex()}"
    before, errors = len(stored(agent, "http")), agent.probe_errors
    run_http(agent, url)
    kept = stored(agent, "http")
    assert len(kept) == before + 1
    m = kept[-1]
    assert m.data["url"] == url
    if m.error_code == "invalid_result":
        assert agent.probe_errors == errors + 1 and m.error
    else:
        assert agent.probe_errors == errors
        assert not m.ok or status < 400, "an error status is never a success"


def test_a_probe_that_crashes_leaves_a_failed_measurement_and_the_crash_in_the_heartbeat(tmp_path):
    a = Agent(config(tmp_path))
    try:
        run_http(a, "http://[::1")  # urlsplit raises on it: a real crash inside the probe
        [m] = stored(a, "http")
        assert (m.ok, m.error_code, m.data["url"]) == (False, "probe_crashed", "http://[::1")
        assert "http on line fiber crashed: ValueError" in m.error
        a.heartbeat()
        [hb] = stored(a, "heartbeat")
        assert hb.data["probe_errors"] == 1 and hb.data["last_probe_error"].startswith("fiber/http: ValueError")
    finally:
        a.outbox.close()


def test_a_lan_sweep_whose_result_breaks_the_contract_leaves_a_failed_sweep_with_the_reason(tmp_path):
    a = Agent(config(tmp_path, extra="[lan]\nsubnets = [\"192.168.1.0/24\"]"))
    try:
        a._agent_job("lan", lambda record: record(Result("lan", None, {"method": "telepathy", "subnets": []})))()
        [m] = stored(a, "lan")
        assert (m.ok, m.error_code, m.data["method"]) == (False, "invalid_result", "none")
        assert "lan.data.method" in m.error and a.probe_errors == 1
    finally:
        a.outbox.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=2000))
def test_the_heartbeat_carries_whatever_a_crash_said_in_a_form_the_collector_accepts(agent, text):
    agent._crashed("fiber/http", RuntimeError(text))
    agent.heartbeat()
    hb = stored(agent, "heartbeat")[-1]
    assert hb.data["last_probe_error"].startswith("fiber/http: RuntimeError")
    assert len(hb.data["last_probe_error"]) <= 500


def test_a_heartbeat_that_cannot_be_written_is_logged_and_counted_not_lost_in_a_future(tmp_path, caplog):
    a = Agent(config(tmp_path))
    a.outbox.close()  # the heartbeat's write fails
    [job] = [j for j in a.scheduler._heap if j.name == "heartbeat"]
    a.scheduler._guarded(job)
    assert a.probe_errors == 1 and a.last_probe_error.startswith("heartbeat: ProgrammingError")
    assert any("heartbeat crashed" in r.getMessage() for r in caplog.records)


def test_the_scheduler_logs_and_counts_a_job_that_raises_and_goes_on_with_the_others(caplog):
    crashes: list[str] = []
    ran = threading.Event()
    s = Scheduler(0, first_delay_s=0, on_crash=lambda name, e: crashes.append(f"{name}: {e}"))
    s.add("boom", 3600, lambda: 1 / 0)
    s.add("fine", 3600, ran.set)
    t = threading.Thread(target=s.run_forever, daemon=True)
    t.start()
    try:
        wait_for(lambda: ran.is_set() and crashes, 10, "both jobs to run")
        assert crashes == ["boom: division by zero"]
        s2 = Scheduler(0, first_delay_s=0)  # without a handler it still logs
        s2.add("boom", 3600, lambda: 1 / 0)
        threading.Thread(target=s2.run_forever, daemon=True).start()
        wait_for(lambda: any("boom crashed" in r.getMessage() for r in caplog.records), 10, "the log")
        s2.stop()
    finally:
        s.stop()
        t.join(5)
    assert not t.is_alive(), "stop() wakes a scheduler sleeping until its next job"


def test_an_agent_whose_publishes_the_broker_refuses_says_so_in_its_heartbeat(tmp_path):
    from test_delivery import acl_broker

    broker = acl_broker(tmp_path / "broker")
    cfg = config(tmp_path / "agent", site="21584", port=broker.port, mqtt_extra='username = "ag-21583"')
    a = Agent(cfg)
    stop = threading.Event()
    t = threading.Thread(target=a.run, args=(stop,), daemon=True)
    t.start()
    try:
        def refused_heartbeat():
            for p in a.outbox.pending(1000):
                data = json.loads(p.payload)["data"]
                if "publish_refused" in data:
                    return data
        data = wait_for(refused_heartbeat, 15, "a heartbeat that reports the refusals")
        assert data["publish_refused"] >= 1
        assert "its ACL does not allow agent ag-21583 to write for site 21584" in data["last_refusal"]
        wire.check_data("heartbeat", data, True)
    finally:
        stop.set()
        t.join(20)
        broker.stop()
    assert not t.is_alive()

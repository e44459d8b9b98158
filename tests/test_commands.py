"""On-demand commands, end to end over a real mosquitto and a real agent process: a command
on the agent's topic runs the line's probe now and the result echoes its id."""
from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from linewatch import wire

from conftest import agent_toml, spawn, wait_for

TOPIC = wire.command_topic("52", "21583", "ag-21583")


class Listener:
    """Every message under the site, parsed with the collector's own check."""

    def __init__(self, port: int):
        self.msgs: list[wire.Message] = []
        self.bad: list[str] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"listener-{time.monotonic_ns()}")
        self.c.on_connect = lambda c, *a: c.subscribe("lw/v1/52/21583/#", qos=1)
        self.c.on_subscribe = lambda *a: self.ready.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.ready.wait(10)

    def _on_message(self, c, u, m):
        if m.topic.endswith("/cmd"):
            return
        try:
            msg = wire.parse_message(m.topic, m.payload, retained=m.retain)
        except wire.MalformedMessage as e:
            with self.lock:
                self.bad.append(f"{m.topic}: {e}")
            return
        with self.lock:
            self.msgs.append(msg)

    def with_command(self, cid: str) -> list[wire.Message]:
        with self.lock:
            return [m for m in self.msgs if m.data.get("command_id") == cid]

    def publish(self, topic: str, payload: bytes) -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def agent(tmp_path: Path, mosquitto, procs):
    cfg = tmp_path / "agent.toml"
    # latency every hour: what arrives with a command id was run by the command
    cfg.write_text(agent_toml(tmp_path / "agent-state", mosquitto.port, interval_s=3600, heartbeat_s=30))
    p = spawn(["linewatch.agent.cli", "-c", str(cfg), "run"], tmp_path / "agent.log")
    procs.append(p)
    wait_for(lambda: "listening for commands on" in p.output(), 15, "the agent to subscribe to its commands")
    return p


@pytest.fixture
def listener(mosquitto):
    ln = Listener(mosquitto.port)
    yield ln
    ln.close()


def command(**kw) -> wire.Command:
    args = dict(agent_id="ag-21583", province="52", site="21583", line="fiber", probe="latency", ttl_s=60,
                by="test")
    args.update(kw)
    return wire.build_command(**args)


def test_a_command_runs_the_probe_now_and_the_result_echoes_its_id(agent, listener):
    cmd = command()
    listener.publish(cmd.topic, cmd.to_json())
    got = wait_for(lambda: listener.with_command(cmd.id), 15, "the commanded latency result")
    assert got[0].kind == "latency" and got[0].line == "fiber" and got[0].ok
    assert got[0].data["target"] == "127.0.0.1" and got[0].data["sent"] == 3
    assert not listener.bad
    assert agent.proc.poll() is None


def test_a_command_without_probe_runs_every_probe_of_the_line(agent, listener):
    cmd = command(probe=None)
    listener.publish(cmd.topic, cmd.to_json())
    got = wait_for(lambda: listener.with_command(cmd.id), 15, "the commanded results")
    assert [m.kind for m in got] == ["latency"]


def test_an_expired_command_is_not_run_but_reported_command_expired(agent, listener):
    cmd = command(now=wire.utc_now() - timedelta(seconds=120), ttl_s=60)
    listener.publish(cmd.topic, cmd.to_json())
    got = wait_for(lambda: listener.with_command(cmd.id), 15, "the command_expired result")
    assert len(got) == 1
    m = got[0]
    assert m.kind == "latency" and not m.ok and m.error_code == "command_expired"
    assert m.data["sent"] == 0 and m.data["received"] == 0 and cmd.id in m.error
    assert not listener.bad


def test_a_malformed_command_is_ignored_and_the_agent_keeps_running(agent, listener):
    listener.publish(TOPIC, b"{not json")
    listener.publish(TOPIC, b'{"schema": 1, "kind": "command", "action": "format-disk"}')
    wait_for(lambda: agent.output().count("ignored a malformed command") >= 2, 10, "two warnings")
    assert agent.proc.poll() is None
    cmd = command()
    listener.publish(cmd.topic, cmd.to_json())
    wait_for(lambda: listener.with_command(cmd.id), 15, "a valid command after the bad ones")


def test_a_command_delivered_twice_runs_once(agent, listener):
    cmd = command()
    listener.publish(cmd.topic, cmd.to_json())
    listener.publish(cmd.topic, cmd.to_json())  # what a QoS 1 redelivery looks like to the agent
    wait_for(lambda: listener.with_command(cmd.id), 15, "the commanded result")
    wait_for(lambda: "delivered again; it runs only once" in agent.output(), 10, "the duplicate to be seen")
    time.sleep(1.0)
    assert len(listener.with_command(cmd.id)) == 1


def test_a_command_for_an_unknown_line_or_probe_is_logged_and_nothing_runs(agent, listener):
    for kw in (dict(line="tslcd"), dict(probe="bandwidth")):
        cmd = command(**kw)
        listener.publish(cmd.topic, cmd.to_json())
    wait_for(lambda: "asks for line 'tslcd', which this agent does not measure" in agent.output(), 10,
             "the unknown line warning")
    wait_for(lambda: "asks for probe 'bandwidth' on line fiber, which is not configured there" in agent.output(),
             10, "the unknown probe warning")
    assert agent.proc.poll() is None


def test_the_agent_stops_cleanly_with_commands_enabled(agent, listener):
    assert agent.stop() == 0, agent.output()


# ------------------------------------------------------------------ in process: the overlap guard
def handler_for(tmp_path: Path, scheduler):
    import tomllib

    from linewatch.agent import config as agent_config
    from linewatch.agent.commands import CommandHandler
    cfg = agent_config.parse(tomllib.loads(agent_toml(tmp_path / "state", 1883)))
    recorded = []
    h = CommandHandler(cfg, recorded.append, claim=scheduler.claim, release=scheduler.release)
    return h, recorded


def test_a_command_waits_for_the_same_probe_already_running_on_the_line(tmp_path):
    from linewatch.agent.runner import Scheduler
    sched = Scheduler(0)
    h, recorded = handler_for(tmp_path, sched)
    assert sched.claim("fiber/latency")  # a scheduled run of the same probe is under way
    cmd = command(ttl_s=30)
    t = threading.Thread(target=h.execute, args=(cmd,))
    t0 = time.monotonic()
    t.start()
    time.sleep(1.0)
    assert recorded == [], "the command must not overlap the running probe"
    assert not sched.claim("fiber/latency")
    sched.release("fiber/latency")
    t.join(10)
    assert time.monotonic() - t0 >= 1.0
    assert [r.data["command_id"] for r in recorded] == [cmd.id] and recorded[0].ok
    assert sched.claim("fiber/latency"), "the command released the probe when done"
    h.stop()
    sched.stop()


def test_a_command_that_expires_while_waiting_is_reported_expired(tmp_path):
    from linewatch.agent.runner import Scheduler
    sched = Scheduler(0)
    h, recorded = handler_for(tmp_path, sched)
    assert sched.claim("fiber/latency")
    cmd = command(ttl_s=1)
    h.execute(cmd)
    assert len(recorded) == 1 and recorded[0].error_code == "command_expired"
    assert "while it waited for the same probe to finish" in recorded[0].error
    h.stop()
    sched.stop()

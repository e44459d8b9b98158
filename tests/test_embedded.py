"""`linewatch up`: broker, collector and agent in one command, with nothing to install."""
import signal
import socket
import subprocess
import sys

from linewatch.collector.record import EventFilter, open_record

from conftest import ROOT, free_port, spawn, wait_for


def test_linewatch_up_measures_shows_live_status_and_stops_cleanly_on_ctrl_c(tmp_path, procs):
    home = tmp_path / "home"
    p = spawn(["linewatch.cli", "up", "--dir", str(home), "--port", str(free_port()), "--refresh", "1",
               "--lang", "en"], tmp_path / "up.log")
    procs.append(p)
    wait_for(lambda: "ok, loss 0%" in p.output(), 60, "a measured line in the live status")
    assert "ag-demo online" in p.output()
    assert p.stop(signal.SIGINT, 30) == 0, p.output()
    assert "stopped cleanly" in p.output()
    store = open_record(home / "record.sqlite3")
    assert store.events(EventFilter(kind="latency", line="loopback", ok=True))
    assert [a.state for a in store.agents()] == ["offline"]  # the agent said goodbye
    assert {"registry.toml", "agent.toml", "collector.toml"} <= {f.name for f in home.iterdir()}


def test_linewatch_up_says_clearly_when_its_port_is_taken(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "linewatch.cli", "up", "--dir", str(tmp_path), "--port", str(port)],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in out.stderr

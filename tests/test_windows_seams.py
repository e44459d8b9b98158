"""Windows stays possible: the agent imports and runs its TCP-connect latency, DNS, HTTP and
bandwidth probes and the inventory with no Unix-only module and none of Linux's socket options.

Windows itself cannot run here, so a subprocess takes away what Windows lacks -- the modules
fcntl, termios, pwd, grp, resource (any import of them fails) and the socket options
SO_BINDTODEVICE, TCP_INFO, AF_PACKET -- and then does the real work against real local
servers. What this cannot show is listed in the README ("Windows")."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SCRIPT = r'''
import importlib.abc, json, socket, sys, threading, http.server

UNIX_ONLY = {"fcntl", "termios", "pwd", "grp", "resource", "tty", "pty", "syslog", "crypt", "spwd", "nis"}

OURS = ("/agent/", "/linewatch/", "<string>")
UNIX_ONLY_BY_US = set()

class NotOnWindows(importlib.abc.MetaPathFinder):
    """Fails linewatch's own imports of Unix-only modules. Libraries with their own Windows
    backends (psutil) still load their Linux backend here: that is theirs to port, not ours."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in UNIX_ONLY:
            return None
        f = sys._getframe(1)
        while f is not None and ("importlib" in f.f_code.co_filename or f.f_code.co_filename.startswith("<frozen")):
            f = f.f_back
        caller = f.f_code.co_filename if f is not None else ""
        if any(part in caller for part in OURS) and "site-packages" not in caller:
            UNIX_ONLY_BY_US.add(name)
            raise ImportError(f"{name} does not exist on Windows (imported by {caller})")
        return None

for m in list(sys.modules):
    if m.split(".")[0] in UNIX_ONLY:
        del sys.modules[m]
sys.meta_path.insert(0, NotOnWindows())
import psutil  # noqa: its Linux backend needs AF_PACKET, its Windows one does not
for opt in ("SO_BINDTODEVICE", "TCP_INFO", "AF_PACKET", "SO_BINDTOIFINDEX"):
    if hasattr(socket, opt):
        delattr(socket, opt)

import linewatch.agent.cli, linewatch.agent.runner, linewatch.agent.publisher, linewatch.agent.lan  # noqa
from linewatch import wire
from linewatch.config import Section
from linewatch.agent import inventory
from linewatch.agent.probes import REGISTRY, LineBinding
from linewatch.speed.server import SpeedServer, SpeedServerConfig
from dnsresponder import Responder

class Web(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        body = b"ok"
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(body)

web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Web)
threading.Thread(target=web.serve_forever, daemon=True).start()
speed = SpeedServer(SpeedServerConfig("127.0.0.1", 0)); speed.start_background()
dns = Responder({"dichvucong.test": "127.0.0.50"})
tcp = socket.socket(); tcp.bind(("127.0.0.1", 0)); tcp.listen(16)
threading.Thread(target=lambda: [tcp.accept()[0].close() for _ in iter(int, 1)], daemon=True).start()

tables = {
    "latency": {"targets": [f"tcp:127.0.0.1:{tcp.getsockname()[1]}"], "count": 3, "spacing_ms": 50},
    "dns": {"resolvers": ["127.0.0.1"], "names": ["dichvucong.test"], "port": dns.port},
    "http": {"urls": [f"http://127.0.0.1:{web.server_address[1]}/"]},
    "bandwidth": {"method": "linewatch", "target": f"http://127.0.0.1:{speed.server_address[1]}", "streams": 4,
                  "max_duration_s": 2, "warmup_s": 0.2, "window": "", "max_test_mb": 8000,
                  "monthly_budget_mb": 1000000},
}
out = {}
for binding in (LineBinding("l1", source_address="127.0.0.1"), LineBinding("l2", interface="lo")):
    for name, table in tables.items():
        probe = REGISTRY[name]
        cfg = probe.parse_config(Section(dict(table), f"[line.{name}]"))
        for r in probe.run(binding, cfg):
            wire.build_message(kind=r.kind, agent_id="ag-1", province="52", site="21583", line=r.line, seq=1,
                               measured_at=r.measured_at, data=r.data, ok=r.ok, error_code=r.error_code,
                               error=r.error)
            out[f"{binding.id}/{name}"] = {"ok": r.ok, "error": r.error, "data": r.data}
inv = inventory.collect()
wire.build_message(kind="inventory", agent_id="ag-1", province="52", site="21583", seq=2,
                   measured_at=inv.measured_at, data=inv.data)
out["inventory"] = {"ok": True, "data": {"hostname": inv.data["hostname"]}}
out["unix_only_loaded"] = sorted(m for m in UNIX_ONLY_BY_US)
print(json.dumps(out))
'''


def test_the_agent_imports_and_measures_without_unix_only_modules_or_linux_socket_options(tmp_path):
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env={"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out.pop("unix_only_loaded") == []
    for line in ("l1", "l2"):  # l2 is bound by interface name: on Windows, through its address
        for probe in ("latency", "dns", "http", "bandwidth"):
            got = out[f"{line}/{probe}"]
            assert got["ok"], f"{line}/{probe}: {got['error']}"
    assert out["l1/bandwidth"]["data"]["download_mbps"] > 0 and out["l1/bandwidth"]["data"]["upload_mbps"] > 0
    assert out["l1/latency"]["data"]["method"] == "tcp-connect"
    assert out["inventory"]["data"]["hostname"]

"""A real VictoriaMetrics (Debian's `victoria-metrics`) on a free port, with its own data folder.

    def test_x(victoria): victoria.url, victoria.query("up"), victoria.stop(), victoria.start()

Started with the flags the deploy uses for linewatch: samples with the same series and
timestamp are stored once (``-dedup.minScrapeInterval=1ms``: a point re-sent after a crash is
not a second sample), no query latency offset and no cache (tests read what they just wrote).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from conftest import free_port

VM = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"


@dataclass
class Victoria:
    data: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> None:
        log = (self.data.parent / "victoria.log").open("ab")
        self.proc = subprocess.Popen([VM, f"-storageDataPath={self.data}", f"-httpListenAddr=127.0.0.1:{self.port}",
                                      "-retentionPeriod=100y", "-dedup.minScrapeInterval=1ms",
                                      "-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=ERROR"],
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"victoria-metrics did not start on {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def flush(self) -> None:
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).read()

    def get(self, path: str, **params) -> dict:
        self.flush()
        q = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{q}", timeout=30) as r:
            return json.loads(r.read())

    def query(self, expr: str, **params) -> list[dict]:
        return self.get("/api/v1/query", query=expr, **params)["data"]["result"]

    def query_range(self, expr: str, start: float, end: float, step: str = "60s") -> list[dict]:
        return self.get("/api/v1/query_range", query=expr, start=start, end=end, step=step)["data"]["result"]

    def export(self, match: str, start: float = 0, end: float | None = None) -> list[dict]:
        """Every raw sample of the matching series (JSON lines of /api/v1/export)."""
        self.flush()
        q = urllib.parse.urlencode({"match[]": match, "start": start, "end": end or time.time() + 86400})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{q}", timeout=60) as r:
            return [json.loads(ln) for ln in r.read().splitlines() if ln.strip()]


@pytest.fixture
def victoria(tmp_path) -> Iterator[Victoria]:
    if not Path(VM).exists():
        pytest.skip("victoria-metrics is not installed (./dev test installs it with apt-get)")
    v = Victoria(tmp_path / "vm-data")
    v.start()
    yield v
    v.stop()

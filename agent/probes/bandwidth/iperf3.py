"""Adapter for the iperf3 client (``iperf3 --json`` against an ``iperf3 -s``): the command,
the parse of its JSON, one run per direction."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from linewatch.wire import Code

from ...errors import IperfError, TestFailed
from ..base import LineBinding, source_address
from .config import BandwidthConfig


@dataclass(frozen=True)
class IperfRun:
    mbps: float  # at the receiver, warm-up (--omit) excluded
    bytes: int  # everything that crossed the line, warm-up included (what the budget pays)
    duration_s: float
    streams: int
    reverse: bool  # True: server sent, i.e. a download for the agent


def parse_iperf3(text: str) -> IperfRun:
    """Summarise ``iperf3 --json`` output, or raise :class:`IperfError` with iperf3's reason."""
    try:
        doc: Any = json.loads(text)
    except ValueError:
        raise IperfError(f"iperf3 printed no JSON: {text.strip()[:200]!r}") from None
    if not isinstance(doc, dict):
        raise IperfError(f"iperf3 printed JSON that is not a result: {text.strip()[:200]!r}")
    if doc.get("error"):
        raise IperfError(f"iperf3: {str(doc['error'])[:300]}")
    try:
        start = doc.get("start") or {}
        end = doc.get("end") or {}
        received = end.get("sum_received")
        if not received:
            raise IperfError("iperf3 result has no end.sum_received (test interrupted?)")
        test = start.get("test_start") or {}
        nbytes = sum(int(iv["sum"]["bytes"]) for iv in doc.get("intervals") or [])
        nbytes = max(nbytes, int((end.get("sum_sent") or {}).get("bytes", 0)))
        rate = float(received["bits_per_second"]) / 1e6
        run = IperfRun(mbps=rate, bytes=nbytes, duration_s=float(received.get("seconds", 0.0)),
                       streams=int(test.get("num_streams", len(end.get("streams") or []) or 1)),
                       reverse=bool(test.get("reverse", 0)))
    except IperfError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as e:
        raise IperfError(f"iperf3 result is not in the expected form ({type(e).__name__}: {e})") from None
    if not (math.isfinite(run.mbps) and run.mbps >= 0 and run.bytes >= 0 and math.isfinite(run.duration_s)):
        raise IperfError(f"iperf3 reported impossible figures: {run.mbps} Mbit/s, {run.bytes} bytes")
    return run


def iperf3_command(host: str, port: int, cfg: BandwidthConfig, reverse: bool, src: str | None) -> list[str]:
    # --omit leaves the warm-up out of iperf3's own summary, like our method does
    cmd = ["iperf3", "--json", "-c", host, "-p", str(port), "-P", str(cfg.streams),
           "-t", f"{max(1, math.ceil(cfg.max_duration_s - cfg.warmup_s))}", "-O", f"{math.ceil(cfg.warmup_s)}",
           "--connect-timeout", str(int(cfg.timeout_s * 1000))]
    if src:
        cmd += ["-B", src]
    if reverse:
        cmd.append("-R")
    return cmd


def run_iperf3(line: LineBinding, cfg: BandwidthConfig, cap: int) -> dict[str, Any]:
    exe = shutil.which("iperf3")
    if not exe:
        raise TestFailed(Code.METHOD_UNAVAILABLE, "iperf3 is not installed on this computer (apt-get install iperf3)")
    host, _, port = (cfg.target or "").rpartition(":")
    src = source_address(line)
    out: dict[str, Any] = {"bytes": 0}
    t0 = time.monotonic()
    for reverse, key in ((True, "download_mbps"), (False, "upload_mbps")):
        cmd = iperf3_command(host.strip("[]"), int(port), cfg, reverse, src)
        cmd[0] = exe
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=cfg.max_duration_s + cfg.timeout_s + 10)
        except subprocess.TimeoutExpired:
            raise TestFailed(Code.TRANSFER_FAILED, f"iperf3 did not finish within {cfg.max_duration_s:g} s",
                             out) from None
        try:
            run = parse_iperf3(p.stdout)
        except IperfError as e:
            raise TestFailed(Code.TRANSFER_FAILED, str(e), out) from None
        out[key] = round(run.mbps, 3)
        out["bytes"] += run.bytes
    out["duration_s"] = round(time.monotonic() - t0, 2)
    out["warmup_s"] = float(math.ceil(cfg.warmup_s))
    return out

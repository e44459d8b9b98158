"""Adapter for speedtest-cli: Ookla's public servers (``speedtest``, internet lines only) and a
Speedtest-Mini-compatible endpoint (``speedtest-mini``, e.g. linewatch-speedserver) reached
*without* contacting speedtest.net -- which speedtest-cli's constructor always does, so the
object is built around it (:func:`mini_speedtest`)."""
from __future__ import annotations

import time
from typing import Any

from linewatch.wire import Code

from ...errors import TestFailed
from ..base import LineBinding, source_address
from .config import BandwidthConfig


def _speedtest_module():
    try:
        import speedtest  # speedtest-cli
    except ImportError:
        raise TestFailed(Code.METHOD_UNAVAILABLE, "speedtest-cli is not installed "
                                               "(pip install 'linewatch[agent]')") from None
    return speedtest


def mini_config(cfg: BandwidthConfig) -> dict[str, Any]:
    """What speedtest-cli would read from speedtest.net's config, chosen here instead."""
    up_sizes = [524288, 1048576, 7340032]
    return {"client": {"ip": "", "isp": "", "lat": "0", "lon": "0"}, "ignore_servers": [],
            "sizes": {"upload": up_sizes, "download": [350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000]},
            "counts": {"upload": 17, "download": 4},
            "threads": {"upload": cfg.streams, "download": cfg.streams},
            "length": {"upload": cfg.max_duration_s, "download": cfg.max_duration_s},
            "upload_max": 17 * len(up_sizes)}


def mini_speedtest(cfg: BandwidthConfig, src: str | None):
    """A speedtest.Speedtest pointed at a mini endpoint that never contacts speedtest.net:
    ``Speedtest.__init__`` always downloads speedtest.net's config, so the object is built
    without calling it and given the config that call would have produced."""
    speedtest = _speedtest_module()
    st = speedtest.Speedtest.__new__(speedtest.Speedtest)
    st.config = mini_config(cfg)
    st._source_address = src
    st._timeout = cfg.timeout_s
    st._opener = speedtest.build_opener(src, cfg.timeout_s)
    st._secure = False
    st._shutdown_event = speedtest.FakeShutdownEvent()
    st.servers, st.closest, st._best = {}, [], {}
    st.lat_lon = (0.0, 0.0)
    st.results = speedtest.SpeedtestResults(client=st.config["client"], opener=st._opener)
    return st


def _run_speedtest(st: Any) -> dict[str, Any]:
    t0 = time.monotonic()
    down = st.download()
    up = st.upload(pre_allocate=True)
    return {"download_mbps": round(down / 1e6, 3), "upload_mbps": round(up / 1e6, 3),
            "bytes": int(st.results.bytes_received + st.results.bytes_sent),
            "duration_s": round(time.monotonic() - t0, 2)}


def run_speedtest_mini(line: LineBinding, cfg: BandwidthConfig, cap: int) -> dict[str, Any]:
    speedtest = _speedtest_module()
    st = mini_speedtest(cfg, source_address(line))
    try:
        st.set_mini_server(cfg.target)
    except speedtest.SpeedtestException as e:
        raise TestFailed(Code.UNREACHABLE, f"Speedtest Mini endpoint {cfg.target} did not answer like one: {e}") from None
    st._best = st.servers[0]
    st.results.server = st._best
    try:
        data = _run_speedtest(st)
    except (speedtest.SpeedtestException, OSError) as e:
        raise TestFailed(*explain_speedtest_error(e)) from None
    if data["bytes"] == 0:
        raise TestFailed(Code.TRANSFER_FAILED, f"no data moved to or from {cfg.target}", data)
    return data


def explain_speedtest_error(e: BaseException) -> tuple[Code, str]:
    """(error_code, clerk-readable reason) for speedtest-cli's exceptions."""
    name = type(e).__name__
    detail = str(e) or name
    if name == "ConfigRetrievalError":
        return Code.UNREACHABLE, (f"cannot download speedtest.net's configuration ({detail}): this line has no "
                               f"internet access, or speedtest.net is blocked")
    if name == "ServersRetrievalError":
        return Code.UNREACHABLE, f"cannot download Ookla's server list ({detail})"
    if name in ("NoMatchedServers", "InvalidServerIDType"):
        return Code.CONFIG, f"no Ookla server with id {detail}; check target"
    if name == "SpeedtestBestServerFailure":
        return Code.UNREACHABLE, f"no Ookla server answered the latency test ({detail})"
    return Code.TRANSFER_FAILED, f"speedtest-cli failed: {name}: {detail}"


def run_speedtest(line: LineBinding, cfg: BandwidthConfig, cap: int) -> dict[str, Any]:
    speedtest = _speedtest_module()
    src = source_address(line)
    try:
        st = speedtest.Speedtest(source_address=src, timeout=cfg.timeout_s, secure=True)
        st.get_servers([int(cfg.target)] if cfg.target else [])
        st.get_best_server()
        st.config["threads"] = {"upload": cfg.streams, "download": cfg.streams}
        st.config["length"] = {"upload": cfg.max_duration_s, "download": cfg.max_duration_s}
        data = _run_speedtest(st)
    except (speedtest.SpeedtestException, ValueError, OSError) as e:
        raise TestFailed(*explain_speedtest_error(e)) from None
    data["target"] = f"{st.best.get('sponsor', '?')} ({st.best.get('host', '?')})"[:256]
    return data

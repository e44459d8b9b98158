"""Bandwidth: download and upload throughput of one line, over that line.

Methods (``method`` in ``[line.bandwidth]``):
  * ``linewatch``      -- our own test against ``linewatch-speedserver`` (works inside TSLCD, no
    internet needed): several TCP streams, the warm-up (slow start, the shaper's burst) is
    left out, the test stops as soon as the rate is stable, and never moves more than
    ``max_test_mb``;
  * ``speedtest``      -- speedtest-cli against Ookla's public servers (internet lines only);
  * ``speedtest-mini`` -- speedtest-cli against a Speedtest-Mini-compatible endpoint (e.g.
    linewatch-speedserver) *without* contacting speedtest.net;
  * ``iperf3``         -- the iperf3 client (``--json``) against an ``iperf3 -s``.

Every test is charged to the line's monthly data budget (kept in the agent's state
folder). With ``window`` set, a line tests once a day at a random moment inside the
window, so 150 communes do not hit one server at the same minute.
"""
from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from linewatch.config import ConfigError, Section

from . import throughput as tp
from .base import LineBinding, LineUnbound, Probe, Result, bind_socket

METHODS = ("linewatch", "speedtest", "speedtest-mini", "iperf3")
MB = 1_000_000


@dataclass(frozen=True)
class BandwidthConfig:
    method: str
    target: str | None  # base URL (linewatch, speedtest-mini), HOST:PORT (iperf3), server id (speedtest)
    streams: int = 4
    max_duration_s: float = 10.0  # per direction
    warmup_s: float = 2.0
    max_test_mb: float = 200.0
    monthly_budget_mb: float = 5000.0
    window: tp.Window | None = None
    interval_s: float = 600.0
    timeout_s: float = 5.0
    stop_when_stable: bool = True
    state_dir: Path | None = None  # filled in from [agent] state_dir


class TestFailed(Exception):
    def __init__(self, code: str, reason: str, partial: dict[str, Any] | None = None):
        super().__init__(reason)
        self.code = code
        self.partial = partial or {}


# ----------------------------------------------------------------------------- state
def _state_path(cfg: BandwidthConfig, line: LineBinding) -> Path | None:
    return cfg.state_dir / f"bandwidth-{line.id}.json" if cfg.state_dir else None


def load_state(path: Path | None) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path else {}
    except (OSError, ValueError):
        return {}


def save_state(path: Path | None, state: dict[str, Any]) -> None:
    if not path:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)  # atomic: a power cut leaves the old or the new file, never half


def _budget(state: dict[str, Any]) -> tp.BudgetState:
    return tp.BudgetState(str(state.get("month", "")), int(state.get("used_bytes", 0)))


# ----------------------------------------------------------------------------- probe
class BandwidthProbe(Probe):
    name = "bandwidth"
    kind = "bandwidth"

    def parse_config(self, sec: Section) -> BandwidthConfig:
        method = sec.str("method", "linewatch", choices=METHODS)
        target = sec.str("target", required=method != "speedtest")
        if method in ("linewatch", "speedtest-mini"):
            u = urlsplit(target)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise ConfigError(f"{sec.where}: target {target!r} must be the speed server's address, "
                                  f"e.g. \"http://10.52.0.5:8090\"")
        elif method == "iperf3":
            host, _, port = target.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"{sec.where}: target {target!r} must be HOST:PORT of an iperf3 server, "
                                  f"e.g. \"10.52.0.5:5201\"")
        # default: once a day at a random time in the small hours; "" = every interval_s
        window = sec.str("window", "01:00-05:00")
        try:
            parsed_window = tp.Window.parse(window) if window else None
        except ValueError as e:
            raise ConfigError(f"{sec.where}: {e}") from None
        cfg = BandwidthConfig(
            method=method, target=target,
            streams=sec.num("streams", 4, ge=1, le=16, integer=True),
            max_duration_s=sec.num("max_duration_s", 10.0, ge=2, le=60),
            warmup_s=sec.num("warmup_s", 2.0, ge=0, le=10),
            max_test_mb=sec.num("max_test_mb", 200.0, gt=0),
            monthly_budget_mb=sec.num("monthly_budget_mb", 5000.0, gt=0),
            window=parsed_window,
            interval_s=sec.num("interval_s", 600.0, ge=5),
            timeout_s=sec.num("timeout_s", 5.0, gt=0, le=60),
            stop_when_stable=sec.bool("stop_when_stable", True),
        )
        if cfg.warmup_s >= cfg.max_duration_s - 1:
            raise ConfigError(f"{sec.where}: warmup_s must be at least 1 s shorter than max_duration_s")
        sec.done()
        return cfg

    def due(self, line: LineBinding, cfg: BandwidthConfig, now: datetime | None = None) -> bool:
        """Scheduled runs only: with a window, once a day at this line's random slot."""
        if cfg.window is None:
            return True
        path = _state_path(cfg, line)
        state = load_state(path)
        if "seed" not in state:  # per installation, so identical line ids at 150 sites differ
            state["seed"] = os.urandom(8).hex()
            save_state(path, state)
        last = datetime.fromisoformat(state["last_run"]) if state.get("last_run") else None
        return tp.due_slot(now or datetime.now(), cfg.window, state["seed"], last) is not None

    def run(self, line: LineBinding, cfg: BandwidthConfig) -> list[Result]:
        return [run_test(line, cfg)]

    def failed(self, line: LineBinding, cfg: BandwidthConfig, error_code: str, error: str) -> Result:
        data = {"method": cfg.method, "target": cfg.target or "speedtest.net", "streams": cfg.streams,
                "duration_s": 0.0, "bytes": 0, "source": line.describe()}
        return Result("bandwidth", line.id, data, ok=False, error_code=error_code, error=error)


def run_test(line: LineBinding, cfg: BandwidthConfig, today: date | None = None) -> Result:
    """One test: budget check, the method, budget bookkeeping. Never raises for network trouble."""
    today = today or date.today()
    path = _state_path(cfg, line)
    state = load_state(path)
    budget = _budget(state)
    budget_bytes = int(cfg.monthly_budget_mb * MB)
    remaining = budget.remaining(budget_bytes, today)
    base: dict[str, Any] = {"method": cfg.method, "target": cfg.target or "speedtest.net",
                            "streams": cfg.streams, "duration_s": 0.0, "bytes": 0, "source": line.describe()}
    cap = min(int(cfg.max_test_mb * MB), remaining)
    if cap < min(int(cfg.max_test_mb * MB), 5 * MB):
        return Result("bandwidth", line.id, {**base, "budget_left_mb": round(remaining / MB, 1)}, ok=False,
                      error_code="budget_exhausted",
                      error=f"monthly data budget of {cfg.monthly_budget_mb:g} MB for line {line.id!r} is used up "
                            f"({budget.used_bytes / MB:.0f} MB this month); tests resume next month "
                            f"or raise monthly_budget_mb")
    started = time.monotonic()
    try:
        data = METHOD_FUNCS[cfg.method](line, cfg, cap)
        result = Result("bandwidth", line.id, {**base, **data})
    except LineUnbound as e:
        result = Result("bandwidth", line.id, base, ok=False, error_code="line_unbound", error=str(e))
    except TestFailed as e:
        d = {**base, **e.partial}
        if "duration_s" not in e.partial:
            d["duration_s"] = round(time.monotonic() - started, 2)
        result = Result("bandwidth", line.id, d, ok=False, error_code=e.code, error=str(e))
    used = int(result.data.get("bytes", 0))
    budget = budget.add(used, today)
    state.update(month=budget.month, used_bytes=budget.used_bytes, last_run=datetime.now().isoformat())
    result.data["budget_left_mb"] = round(max(0, budget_bytes - budget.used_bytes) / MB, 1)
    try:
        save_state(path, state)
    except OSError as e:  # the measurement stands; the clerk must fix the folder
        result.error = (result.error or "") + f" (could not record data used in {path}: {e.strerror})"
    return result


# ----------------------------------------------------------------------------- linewatch method
def _connect(line: LineBinding, host: str, port: int, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        bind_socket(sock, line)
        sock.settimeout(timeout)
        sock.connect((host, port))
        return sock
    except BaseException:
        sock.close()
        raise


def _read_head(sock: socket.socket) -> tuple[int, bytes]:
    """Read the HTTP response head; returns (status, bytes of body already read)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("server closed the connection before answering")
        buf += chunk
        if len(buf) > 16384:
            raise ConnectionError("answer is not HTTP")
    head, _, rest = buf.partition(b"\r\n\r\n")
    try:
        return int(head.split(b" ", 2)[1]), rest
    except (IndexError, ValueError):
        raise ConnectionError(f"answer is not HTTP: {head[:60]!r}") from None


def _refused_as_busy(sock: socket.socket) -> bool:
    """After a failed upload send: did the server answer 503 before closing on us?"""
    try:
        sock.settimeout(0.5)
        return sock.recv(64, socket.MSG_PEEK).startswith(b"HTTP/1.1 503")
    except OSError:
        return False


def _describe_connect_error(e: OSError, host: str, port: int, timeout: float) -> str:
    if isinstance(e, ConnectionRefusedError):
        return f"nothing listens on {host}:{port} (is linewatch-speedserver running there?)"
    if isinstance(e, (TimeoutError, socket.timeout)):
        return f"no answer from {host}:{port} within {timeout:g} s (server down or blocked by a firewall?)"
    if e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"no route to {host} over this line ({e.strerror})"
    return f"cannot reach {host}:{port}: {e.strerror or e}"


# offsets of tcpi_bytes_acked / tcpi_bytes_received in Linux struct tcp_info (since 4.1)
_TCPI_BYTES_ACKED = 120
_TCPI_BYTES_RECEIVED = 128


def tcp_bytes(sock: socket.socket, upload: bool) -> int | None:
    """Bytes the kernel has delivered on this connection (acknowledged by the far end when
    sending, received in order when receiving), or None if it cannot say. Counting what
    send() accepted would include what still sits in the socket buffer (it grows with the
    congestion window), and counting what recv() returned depends on when our thread got
    the CPU: both made 0.5 s rates swing by +/- 15 % on a busy 2-core PC."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    except (OSError, AttributeError):
        return None
    off = _TCPI_BYTES_ACKED if upload else _TCPI_BYTES_RECEIVED
    if len(info) < off + 8:
        return None
    return struct.unpack_from("=Q", info, off)[0]


@dataclass
class Transfer:
    """One direction of a multi-stream test; the outcome of :func:`transfer`."""

    samples: list[tp.Sample]
    bytes: int
    stopped_by: str  # stable | time | bytes | server


def transfer(line: LineBinding, host: str, port: int, path: str, upload: bool, cfg: BandwidthConfig,
             cap_bytes: int, clock: Callable[[], float] = time.monotonic) -> Transfer:
    """Move data over ``cfg.streams`` TCP connections until the rate is stable, the time is
    up or ``cap_bytes`` have moved. Raises :class:`TestFailed` with a reason."""
    per_stream = max(1, cap_bytes // cfg.streams)
    socks: list[socket.socket] = []
    try:
        for _ in range(cfg.streams):
            socks.append(_connect(line, host, port, cfg.timeout_s))
    except OSError as e:
        for s in socks:
            s.close()
        raise TestFailed("unreachable", _describe_connect_error(e, host, port, cfg.timeout_s)) from None
    counts = [0] * len(socks)
    errors: list[str] = []
    stop = threading.Event()

    def pump(i: int, sock: socket.socket) -> None:
        try:
            if upload:
                sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {per_stream}\r\n"
                             f"Connection: close\r\n\r\n".encode())
                block = memoryview(os.urandom(64 * 1024))
                sock.settimeout(0.5)
                while not stop.is_set() and counts[i] < per_stream:
                    try:
                        counts[i] += sock.send(block[:min(len(block), per_stream - counts[i])])
                    except (TimeoutError, socket.timeout):
                        continue
                    except OSError:
                        if _refused_as_busy(sock):
                            raise ConnectionError("speed server busy (too many tests at once); "
                                                  "will retry next time") from None
                        raise
            else:
                sock.sendall(f"GET {path}?bytes={per_stream} HTTP/1.1\r\nHost: {host}\r\n"
                             f"Connection: close\r\n\r\n".encode())
                status, rest = _read_head(sock)
                if status == 503:
                    raise ConnectionError("speed server busy (too many tests at once); will retry next time")
                if status != 200:
                    raise ConnectionError(f"speed server answered HTTP {status} for {path}")
                counts[i] += len(rest)
                buf = bytearray(256 * 1024)
                sock.settimeout(0.5)
                while not stop.is_set() and counts[i] < per_stream:
                    try:
                        k = sock.recv_into(buf)
                    except (TimeoutError, socket.timeout):
                        continue
                    if not k:
                        break
                    counts[i] += k
        except OSError as e:
            if not stop.is_set():
                errors.append(str(e) if isinstance(e, ConnectionError) and not e.errno else
                              f"{'upload' if upload else 'download'} stream broke: {e.strerror or e}")

    kernel_base = [tcp_bytes(s, upload) for s in socks]
    use_kernel = all(a is not None for a in kernel_base)

    def moved() -> int:
        if use_kernel:  # delivered bytes (HTTP heads of ~100 bytes included: negligible)
            return sum(max(0, (tcp_bytes(s, upload) or 0) - b) for s, b in zip(socks, kernel_base))
        return sum(counts)

    threads = [threading.Thread(target=pump, args=(i, s), daemon=True) for i, s in enumerate(socks)]
    t0 = clock()
    for t in threads:
        t.start()
    samples: list[tp.Sample] = [(0.0, 0)]
    stopped_by = "time"
    last_progress = t0
    try:
        while True:
            time.sleep(0.1)
            now = clock()
            total = sum(counts)
            samples.append((now - t0, moved()))
            if samples[-1][1] > samples[-2][1]:
                last_progress = now
            if errors and not any(t.is_alive() for t in threads):
                break
            if not any(t.is_alive() for t in threads):
                stopped_by = "bytes" if total >= per_stream * len(socks) else "server"
                break
            if total >= cap_bytes:
                stopped_by = "bytes"
                break
            if now - t0 >= cfg.max_duration_s:
                break
            if now - last_progress > cfg.timeout_s:
                errors.append(f"no data moved for {cfg.timeout_s:g} s")
                break
            if cfg.stop_when_stable and tp.is_stable(samples, cfg.warmup_s):
                stopped_by = "stable"
                break
    finally:
        stop.set()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(2)
        for s in socks:
            s.close()
    # bytes that crossed the line: the kernel's delivered count when it has one (what
    # send() accepted but never left the socket buffer was not paid for)
    total = samples[-1][1] if use_kernel and len(samples) > 1 else sum(counts)
    if errors:
        raise TestFailed("transfer_failed", errors[0], {"bytes": total})
    return Transfer(samples, total, stopped_by)


def _rate(tr: Transfer, cfg: BandwidthConfig, direction: str) -> float:
    r = tp.steady_rate(tr.samples, cfg.warmup_s)
    if r is None:
        raise TestFailed("too_short", f"{direction} ended after {tr.samples[-1][0]:.1f} s, before the "
                                      f"{cfg.warmup_s:g} s warm-up was over (server limit or max_test_mb too small)",
                         {"bytes": tr.bytes})
    return r[0]


def run_linewatch(line: LineBinding, cfg: BandwidthConfig, cap: int) -> dict[str, Any]:
    u = urlsplit(cfg.target or "")
    try:
        host = socket.gethostbyname(u.hostname or "")
    except OSError as e:
        raise TestFailed("dns_failed", f"cannot resolve the speed server name {u.hostname}: {e}") from None
    port = u.port or 80
    prefix = u.path.rstrip("/")
    t_start = time.monotonic()
    down = transfer(line, host, port, prefix + "/lw/download", False, cfg, cap // 2)
    down_mbps = _rate(down, cfg, "download")
    try:
        up = transfer(line, host, port, prefix + "/lw/upload", True, cfg, cap - down.bytes)
        up_mbps = _rate(up, cfg, "upload")
    except TestFailed as e:
        e.partial = {"download_mbps": round(down_mbps, 3), "bytes": down.bytes + int(e.partial.get("bytes", 0))}
        raise
    return {"download_mbps": round(down_mbps, 3), "upload_mbps": round(up_mbps, 3),
            "bytes": down.bytes + up.bytes, "duration_s": round(time.monotonic() - t_start, 2),
            "warmup_s": cfg.warmup_s, "stopped_by": f"{down.stopped_by}/{up.stopped_by}"}


# ----------------------------------------------------------------------------- speedtest-cli
def interface_address(ifname: str) -> str:
    """IPv4 address of an interface (SIOCGIFADDR), for tools that bind by address only."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", ifname.encode()[:15]))
        except OSError:
            raise LineUnbound(f"network interface {ifname!r} does not exist or has no IPv4 address "
                              f"(cable or USB modem unplugged?)") from None
    return socket.inet_ntoa(packed[20:24])


def source_address(line: LineBinding) -> str | None:
    if line.source_address:
        with socket.socket() as s:
            bind_socket(s, LineBinding(line.id, line.source_address))  # raises LineUnbound if gone
        return line.source_address
    if line.interface:
        return interface_address(line.interface)
    return None


def _speedtest_module():
    try:
        import speedtest  # speedtest-cli
    except ImportError:
        raise TestFailed("method_unavailable", "speedtest-cli is not installed "
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
        raise TestFailed("unreachable", f"Speedtest Mini endpoint {cfg.target} did not answer like one: {e}") from None
    st._best = st.servers[0]
    st.results.server = st._best
    try:
        data = _run_speedtest(st)
    except (speedtest.SpeedtestException, OSError) as e:
        raise TestFailed(*explain_speedtest_error(e)) from None
    if data["bytes"] == 0:
        raise TestFailed("transfer_failed", f"no data moved to or from {cfg.target}", data)
    return data


def explain_speedtest_error(e: BaseException) -> tuple[str, str]:
    """(error_code, clerk-readable reason) for speedtest-cli's exceptions."""
    name = type(e).__name__
    detail = str(e) or name
    if name == "ConfigRetrievalError":
        return "unreachable", (f"cannot download speedtest.net's configuration ({detail}): this line has no "
                               f"internet access, or speedtest.net is blocked")
    if name == "ServersRetrievalError":
        return "unreachable", f"cannot download Ookla's server list ({detail})"
    if name in ("NoMatchedServers", "InvalidServerIDType"):
        return "config", f"no Ookla server with id {detail}; check target"
    if name == "SpeedtestBestServerFailure":
        return "unreachable", f"no Ookla server answered the latency test ({detail})"
    return "transfer_failed", f"speedtest-cli failed: {name}: {detail}"


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


# ----------------------------------------------------------------------------- iperf3
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
        raise TestFailed("method_unavailable", "iperf3 is not installed on this computer (apt-get install iperf3)")
    host, _, port = (cfg.target or "").rpartition(":")
    src = source_address(line)
    out: dict[str, Any] = {"bytes": 0}
    t0 = time.monotonic()
    for reverse, key in ((True, "download_mbps"), (False, "upload_mbps")):
        cmd = iperf3_command(host.strip("[]"), int(port), cfg, reverse, src)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=cfg.max_duration_s + cfg.timeout_s + 10)
        except subprocess.TimeoutExpired:
            raise TestFailed("transfer_failed", f"iperf3 did not finish within {cfg.max_duration_s:g} s", out) from None
        try:
            run = tp.parse_iperf3(p.stdout)
        except tp.IperfError as e:
            raise TestFailed("transfer_failed", str(e), out) from None
        out[key] = round(run.mbps, 3)
        out["bytes"] += run.bytes
    out["duration_s"] = round(time.monotonic() - t0, 2)
    out["warmup_s"] = float(math.ceil(cfg.warmup_s))
    return out


METHOD_FUNCS: dict[str, Callable[[LineBinding, BandwidthConfig, int], dict[str, Any]]] = {
    "linewatch": run_linewatch, "speedtest": run_speedtest,
    "speedtest-mini": run_speedtest_mini, "iperf3": run_iperf3,
}

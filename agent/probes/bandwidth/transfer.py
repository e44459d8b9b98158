"""The ``linewatch`` method's transfer client: several TCP streams to linewatch-speedserver
(linewatch.speed.protocol, the contract both ends import), the warm-up (slow start, the
shaper's burst) left out, stopping as soon as the rate is stable, never more than the cap.

What is counted is the payload that reached the far end, read from the kernel (``TCP_INFO``)
every 0.1 s: on upload the bytes the server acknowledged in order plus those it acknowledged
out of order (SACK), on download the data segments that arrived (in order or behind a hole).
The in-order count alone stalls at every loss and then jumps; that made a 10 Mbit/s upload
read 1.042 x iperf3 (rate.py says more).
"""
from __future__ import annotations

import errno
import os
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from linewatch.speed import protocol as proto
from linewatch.wire import Code

from ...errors import TestFailed
from ...netif import kernel_counts
from ..base import LineBinding, bind_socket
from . import rate
from .config import BandwidthConfig

BUSY = "speed server busy (too many tests at once); will retry next time"
#: seconds between two readings of the kernel's counters
TICK_S = 0.1

#: SO_LINGER on, 0 s: close() resets the connection and drops what is still queued. A
#: polite close of an upload kept sending its socket buffer after the test had ended: at
#: 5 Mbit/s 0.95 MB more than the 1.5 MB counted (not charged, and in the next test's way).
_ABORT = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)  # struct linger


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
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("server closed the connection before answering")
        buf += chunk
        try:
            head = proto.split_head(buf)
        except proto.BadAnswer as e:
            raise ConnectionError(str(e)) from None
        if head is not None:
            return head


def _refused_as_busy(sock: socket.socket) -> bool:
    """After a failed upload send: did the server answer 503 before closing on us?"""
    try:
        sock.settimeout(0.5)
        return proto.is_busy(sock.recv(64, socket.MSG_PEEK))
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


@dataclass
class Transfer:
    """One direction of a multi-stream test; the outcome of :func:`transfer`."""

    readings: list[rate.Reading]  # what the kernel said every TICK_S (rate.Reading)
    bytes: int
    stopped_by: str  # stable | time | bytes | server
    upload: bool
    #: where the measured span starts: the end of the warm-up (found level, else cfg.warmup_s)
    warmup_s: float

    @property
    def samples(self) -> list[rate.Sample]:
        return rate.delivered(self.readings, self.upload)


class _Busy(ConnectionError):
    pass


def transfer(line: LineBinding, host: str, port: int, prefix: str, upload: bool, cfg: BandwidthConfig,
             cap_bytes: int, clock: Callable[[], float] = time.monotonic) -> Transfer:
    """Move data over ``cfg.streams`` TCP connections until the rate is stable, the time is
    up or ``cap_bytes`` have moved. Raises :class:`TestFailed` with a reason. ``prefix``: the
    path of the speed server's URL ("" at the root)."""
    per_stream = max(1, cap_bytes // cfg.streams)
    socks: list[socket.socket] = []
    try:
        for _ in range(cfg.streams):
            socks.append(_connect(line, host, port, cfg.timeout_s))
    except OSError as e:
        for s in socks:
            s.close()
        raise TestFailed(Code.UNREACHABLE, _describe_connect_error(e, host, port, cfg.timeout_s)) from None
    counts = [0] * len(socks)
    errors: list[str] = []
    busy: list[bool] = []
    stop = threading.Event()
    path = prefix + (proto.UPLOAD_PATH if upload else proto.DOWNLOAD_PATH)
    request = proto.upload_request if upload else proto.download_request

    def pump(i: int, sock: socket.socket) -> None:
        try:
            sock.sendall(request(prefix, host, per_stream))
            if upload:
                block = memoryview(os.urandom(64 * 1024))
                sock.settimeout(0.5)
                while not stop.is_set() and counts[i] < per_stream:
                    try:
                        counts[i] += sock.send(block[:min(len(block), per_stream - counts[i])])
                    except (TimeoutError, socket.timeout):
                        continue
                    except OSError:
                        if _refused_as_busy(sock):
                            raise _Busy(BUSY) from None
                        raise
            else:
                status, rest = _read_head(sock)
                if status == proto.BUSY_STATUS:
                    raise _Busy(BUSY)
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
                if isinstance(e, _Busy):
                    busy.append(True)
                errors.append(str(e) if isinstance(e, ConnectionError) and not e.errno else
                              f"{'upload' if upload else 'download'} stream broke: {e.strerror or e}")

    start = [kernel_counts(s, upload) for s in socks]
    use_kernel = all(k is not None for k in start)
    base = [k[0] if k else 0 for k in start]

    def read(t0: float) -> rate.Reading:
        """(seconds, in-order bytes, held bytes or None) over all streams. The time is taken
        after the counters are read: a reading may then lag its time stamp, never lead it."""
        if not use_kernel:  # not Linux: what recv() returned / send() accepted
            moved = sum(counts)
            return clock() - t0, moved, moved
        got = [kernel_counts(s, upload) for s in socks]
        t = clock() - t0
        in_order = sum(max(0, (g[0] if g else 0) - b) for g, b in zip(got, base))
        if any(g is None or g[1] is None for g in got):
            return t, in_order, None
        return t, in_order, sum(max(0, g[1] - b) for g, b in zip(got, base))

    threads = [threading.Thread(target=pump, args=(i, s), daemon=True) for i, s in enumerate(socks)]
    t0 = clock()
    for t in threads:
        t.start()
    readings: list[rate.Reading] = [(0.0, 0, None)]
    samples: list[rate.Sample] = [(0.0, 0)]
    stopped_by = "time"
    last_progress = t0
    try:
        while True:
            time.sleep(TICK_S)
            readings.append(read(t0))
            now = t0 + readings[-1][0]
            samples = rate.delivered(readings, upload)
            total = sum(counts)
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
            if cfg.stop_when_stable and rate.is_stable(samples, cfg.warmup_s):
                stopped_by = "stable"
                break
    finally:
        stop.set()
        for s in socks:
            try:
                if upload:  # reset, not a polite close: that still sends the whole socket buffer
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _ABORT)
            except OSError:
                pass
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(2)
        for s in socks:
            s.close()
    # bytes that crossed the line: the kernel's count of what arrived when it has one (what
    # send() accepted but never left the socket buffer was not paid for)
    _, in_order, held = readings[-1]
    total = max(in_order, held or 0) if use_kernel else sum(counts)
    if errors:
        raise TestFailed(Code.SERVER_BUSY if busy else Code.TRANSFER_FAILED, errors[0], {"bytes": total})
    settled = rate.settled_start(samples, rate.MIN_WARMUP_S, cfg.warmup_s)
    return Transfer(readings, total, stopped_by, upload, cfg.warmup_s if settled is None else settled)


def _rate(tr: Transfer, cfg: BandwidthConfig, direction: str) -> float:
    r = rate.measured_rate(tr.samples, tr.warmup_s)
    if r is None:
        raise TestFailed(Code.TOO_SHORT, f"{direction} ended after {tr.samples[-1][0]:.1f} s, before the "
                                         f"{tr.warmup_s:g} s warm-up was over (server limit or max_test_mb too small)",
                         {"bytes": tr.bytes})
    return r[0]


def run_linewatch(line: LineBinding, cfg: BandwidthConfig, cap: int) -> dict[str, Any]:
    u = urlsplit(cfg.target or "")
    try:
        host = socket.gethostbyname(u.hostname or "")
    except OSError as e:
        raise TestFailed(Code.DNS_FAILED, f"cannot resolve the speed server name {u.hostname}: {e}") from None
    port = u.port or 80
    prefix = u.path.rstrip("/")
    t_start = time.monotonic()
    down = transfer(line, host, port, prefix, False, cfg, cap // 2)
    down_mbps = _rate(down, cfg, "download")
    try:
        up = transfer(line, host, port, prefix, True, cfg, cap - down.bytes)
        up_mbps = _rate(up, cfg, "upload")
    except TestFailed as e:
        e.partial = {"download_mbps": round(down_mbps, 3), "bytes": down.bytes + int(e.partial.get("bytes", 0))}
        raise
    return {"download_mbps": round(down_mbps, 3), "upload_mbps": round(up_mbps, 3),
            "bytes": down.bytes + up.bytes, "duration_s": round(time.monotonic() - t_start, 2),
            "warmup_s": round(max(down.warmup_s, up.warmup_s), 2),
            "stopped_by": f"{down.stopped_by}/{up.stopped_by}"}

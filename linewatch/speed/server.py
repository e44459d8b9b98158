"""linewatch-speedserver: the throughput endpoint agents test against inside TSLCD.

Runs on its own at a provincial data centre (or beside the collector)::

    linewatch-speedserver --port 8090            (or: python -m linewatch.speed.server)

The paths and answers are linewatch.speed.protocol's (the agent imports the same module).
Speedtest-Mini-compatible paths too: /speedtest/random{S}x{S}.jpg, /speedtest/upload.php
(answers "size=N"), /speedtest/latency.txt ("test=test", as Ookla's mini serves it).

At most ``max_transfers`` transfers run at once; more get "503 busy" with Retry-After
at once, so 150 communes cannot queue the server to death and the agent reports
"server busy" instead of a falsely slow line.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from . import protocol as proto

log = logging.getLogger("linewatch.speedserver")

CHUNK = 256 * 1024
#: Random, so that compressing middleboxes (some operators' proxies) cannot fake speed.
_BLOCK = os.urandom(1 << 20)
MINI_INDEX = b"""<html><head><title>linewatch speedtest mini</title></head><body>
<script>var upload_extension: "php";</script>
linewatch Speedtest-Mini-compatible endpoint</body></html>
"""


@dataclass(frozen=True)
class SpeedServerConfig:
    host: str = "0.0.0.0"
    port: int = proto.DEFAULT_PORT
    max_transfers: int = 32  # concurrent streams; ~4 per testing commune
    max_request_mb: int = 2000  # one request never moves more than this
    io_timeout_s: float = 30.0


class _Handler(BaseHTTPRequestHandler):
    server: "SpeedServer"
    protocol_version = "HTTP/1.1"
    server_version = "linewatch-speedserver"

    def log_message(self, fmt: str, *args: object) -> None:
        log.debug("%s " + fmt, self.client_address[0], *args)

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.cfg.io_timeout_s)

    # -- helpers ----------------------------------------------------------------------
    def _reply(self, code: int, body: bytes, ctype: str = "text/plain", extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _busy(self) -> None:
        self.close_connection = True
        self._reply(proto.BUSY_STATUS, b"speed server busy: too many tests at once, retry later\n",
                    extra={"Retry-After": str(proto.RETRY_AFTER_S)})

    def _send_bytes(self, n: int, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(n))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        view = memoryview(_BLOCK)
        left = n
        try:
            while left > 0:
                k = min(left, len(view))
                self.wfile.write(view[:k])
                left -= k
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the agent stops early once the rate is stable: normal
        self.server.count(sent=n - left)
        self.close_connection = True

    def _drain_and_answer(self, answer: Callable[[int], tuple[bytes, str]]) -> None:
        """Read an upload, then say how much arrived (``answer(n)`` -> (body, content type)).
        The agent resets the connection once its rate is stable, so the answer usually finds
        nobody to hear it: that is normal, not an error for the log."""
        body, ctype = answer(self._drain())
        try:
            self._reply(200, body, ctype)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True

    def _drain(self) -> int:
        length = self.headers.get("Content-Length")
        limit = self.server.cfg.max_request_mb * 1_000_000
        want = min(int(length), limit) if length and length.isdigit() else limit
        got = 0
        buf = bytearray(CHUNK)
        try:
            while got < want:
                k = self.rfile.readinto(memoryview(buf)[:min(CHUNK, want - got)])
                if not k:
                    break
                got += k
        except (ConnectionResetError, TimeoutError, OSError):
            pass
        self.server.count(received=got)
        return got

    # -- routes -------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        url = urlsplit(self.path)
        if url.path in proto.MINI_INDEX_PATHS:
            return self._reply(200, MINI_INDEX, "text/html")
        if url.path == proto.MINI_LATENCY_PATH:
            return self._reply(200, b"test=test\n")
        if url.path == proto.HEALTH_PATH:
            return self._reply(200, json.dumps(self.server.stats()).encode(), "application/json")
        limit = self.server.cfg.max_request_mb * 1_000_000
        if url.path == proto.DOWNLOAD_PATH:
            try:
                n = proto.requested_bytes(parse_qs(url.query).get(proto.BYTES_PARAM, ["0"])[0], limit)
            except ValueError:
                return self._reply(400, b"bytes must be a whole number\n")
            return self._transfer(lambda: self._send_bytes(n, "application/octet-stream"))
        if m := proto.MINI_DOWNLOAD_RE.match(url.path):
            side = int(m.group(1))
            return self._transfer(lambda: self._send_bytes(min(proto.mini_file_size(side), limit), "image/jpeg"))
        self._reply(404, b"not found\n")

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if path == proto.UPLOAD_PATH:
            return self._transfer(lambda: self._drain_and_answer(
                lambda n: (json.dumps({"bytes": n}).encode(), "application/json")))
        if proto.MINI_UPLOAD_RE.match(path):
            return self._transfer(lambda: self._drain_and_answer(lambda n: (f"size={n}".encode(), "text/plain")))
        self._reply(404, b"not found\n")

    def _transfer(self, work) -> None:
        if not self.server.slots.acquire(blocking=False):
            return self._busy()
        try:
            work()
        finally:
            self.server.slots.release()


class SpeedServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, cfg: SpeedServerConfig):
        self.cfg = cfg
        self.slots = threading.BoundedSemaphore(cfg.max_transfers)
        self._lock = threading.Lock()
        self.bytes_sent = 0
        self.bytes_received = 0
        super().__init__((cfg.host, cfg.port), _Handler)

    def count(self, sent: int = 0, received: int = 0) -> None:
        with self._lock:
            self.bytes_sent += sent
            self.bytes_received += received

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
                    "max_transfers": self.cfg.max_transfers}

    def start_background(self) -> threading.Thread:
        t = threading.Thread(target=self.serve_forever, name="speedserver", daemon=True)
        t.start()
        return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="linewatch-speedserver",
                                 description="Download/upload endpoint for linewatch bandwidth tests "
                                             "(also Speedtest-Mini-compatible for speedtest-cli).")
    ap.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    ap.add_argument("--port", type=int, default=proto.DEFAULT_PORT)
    ap.add_argument("--max-transfers", type=int, default=32,
                    help="concurrent transfers before answering 503 busy (default: %(default)s)")
    ap.add_argument("--max-request-mb", type=int, default=2000)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        srv = SpeedServer(SpeedServerConfig(args.host, args.port, args.max_transfers, args.max_request_mb))
    except OSError as e:
        print(f"linewatch-speedserver: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    log.info("speed server listening on %s:%d (max %d transfers)", args.host, args.port, args.max_transfers)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

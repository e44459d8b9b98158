"""The linewatch speed-test protocol: plain HTTP/1.1 so that any proxy or firewall in TSLCD
lets it through, with incompressible bodies so that a compressing middlebox cannot fake speed.

    GET  {prefix}/lw/download?bytes=N   -> 200, Content-Length N, N random bytes
    POST {prefix}/lw/upload  (Content-Length N) -> 200 {"bytes": n read}
    GET  {prefix}/lw/health             -> 200 {"bytes_sent": .., "bytes_received": .., "max_transfers": ..}
    any transfer when the server is full -> 503 "busy" with Retry-After: the agent reports
                                            ``server_busy``, never a falsely slow line

Also Speedtest-Mini-compatible paths (speedtest-cli ``--mini``) under /speedtest/.
Pure: request bytes and answer parsing, no sockets.
"""
from __future__ import annotations

import re

DEFAULT_PORT = 8090
DOWNLOAD_PATH = "/lw/download"
UPLOAD_PATH = "/lw/upload"
HEALTH_PATH = "/lw/health"
BYTES_PARAM = "bytes"
BUSY_STATUS = 503
RETRY_AFTER_S = 60
MAX_HEAD_BYTES = 16384

MINI_DOWNLOAD_RE = re.compile(r"^/speedtest/random(\d{2,4})x(\d{2,4})\.jpg$")
MINI_UPLOAD_RE = re.compile(r"^/speedtest/upload\.(php|asp|aspx|jsp)$")
MINI_LATENCY_PATH = "/speedtest/latency.txt"
MINI_INDEX_PATHS = ("/", "/speedtest", "/speedtest/", "/speedtest/index.html")


class BadAnswer(ValueError):
    """The speed server's answer is not what this protocol says."""


def download_request(prefix: str, host: str, nbytes: int) -> bytes:
    return (f"GET {prefix}{DOWNLOAD_PATH}?{BYTES_PARAM}={nbytes} HTTP/1.1\r\nHost: {host}\r\n"
            f"Connection: close\r\n\r\n").encode()


def upload_request(prefix: str, host: str, nbytes: int) -> bytes:
    return (f"POST {prefix}{UPLOAD_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {nbytes}\r\n"
            f"Connection: close\r\n\r\n").encode()


def split_head(buf: bytes) -> tuple[int, bytes] | None:
    """(HTTP status, body bytes already received) once ``buf`` holds the whole answer head,
    None while it does not yet. Raises :class:`BadAnswer` for anything that is not HTTP/1.x."""
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        if len(buf) > MAX_HEAD_BYTES:
            raise BadAnswer(f"answer is not HTTP (no end of head in {MAX_HEAD_BYTES} bytes)")
        return None
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
        raise BadAnswer(f"answer is not HTTP: {head[:60]!r}")
    return int(parts[1]), rest


def is_busy(answer_start: bytes) -> bool:
    """Does an answer (its first bytes) say the server is full?"""
    return answer_start.startswith(f"HTTP/1.1 {BUSY_STATUS}".encode())


def requested_bytes(query_value: str, limit: int) -> int:
    """N of ``?bytes=N``, capped at ``limit``; ValueError if it is not a whole number."""
    n = int(query_value)
    return max(0, min(n, limit))


def mini_file_size(side: int) -> int:
    """Bytes of Ookla's randomSxS.jpg: about 1.98 bytes per pixel (random4000x4000.jpg
    is 31,625,365 bytes), so speedtest-cli sees the same volumes as against a real mini."""
    return int(side * side * 1.9766)

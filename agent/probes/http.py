"""HTTP(S) reachability and time-to-first-byte of the services the office uses (public
service portal, document management, official mail), over the line's own address.

Each phase is timed separately (DNS, TCP connect, TLS, first byte), so a slow portal
can be told apart from a slow line. Redirects are not followed: a 3xx proves the
service answered.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from linewatch.config import ConfigError, Section
from linewatch.wire import SCHEMAS, Code

from .base import LineBinding, LineUnbound, Probe, Result, bind_socket


@dataclass(frozen=True)
class HttpConfig:
    urls: tuple[str, ...]
    interval_s: float = 300.0
    timeout_s: float = 10.0
    max_body_kb: int = 256  # read at most this much of the answer (enough to time it, cheap on data)
    verify_tls: bool = True
    ca_file: str | None = None


def ms_since(t: float) -> float:
    return round((time.monotonic() - t) * 1000, 3)


class HttpProbe(Probe):
    name = "http"
    kind = "http"

    def parse_config(self, sec: Section) -> HttpConfig:
        urls = sec.str_list("urls", required=True)
        if not urls:
            raise ConfigError(f"{sec.where}: urls must list at least one address")
        for u in urls:
            parts = urlsplit(u)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"{sec.where}: {u!r} must be a full address starting with http:// or https://")
        cfg = HttpConfig(tuple(urls), interval_s=sec.num("interval_s", 300.0, ge=5),
                         timeout_s=sec.num("timeout_s", 10.0, gt=0, le=120),
                         max_body_kb=sec.num("max_body_kb", 256, ge=0, le=100_000, integer=True),
                         verify_tls=sec.bool("verify_tls", True), ca_file=sec.str("ca_file"))
        sec.done()
        return cfg

    def run(self, line: LineBinding, cfg: HttpConfig) -> list[Result]:
        return [fetch(line, u, cfg) for u in cfg.urls]

    def summary(self, data: dict) -> str | None:
        if "status_code" not in data:
            return None
        ttfb = data.get("ttfb_ms")
        return f"HTTP {data['status_code']}, first byte {'-' if ttfb is None else f'{ttfb:.1f}'} ms"

    def failed(self, line: LineBinding, cfg: HttpConfig, error_code: str, error: str) -> Result:
        return Result("http", line.id, {"url": cfg.urls[0], "source": line.describe()}, ok=False,
                      error_code=error_code, error=error)


TIMINGS = ("dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "total_ms")


def judge(line_id: str, url: str, data: dict, status: int, reason: str) -> Result:
    """The result of one answered request. A status outside 100..599 is not HTTP (a broken or
    hostile server); a timing the wire cannot carry (a clock that jumped, a server that dribbled
    its answer for minutes) is left out and said."""
    data = dict(data)
    odd = [k for k in TIMINGS if k in data and not 0 <= data[k] <= SCHEMAS["http"][k].hi]
    for k in odd:
        del data[k]
    if not 100 <= status <= 599:
        data.pop("status_code", None)
        return Result("http", line_id, data, ok=False, error_code=Code.BAD_ANSWER,
                      error=f"{url} answered with status {status}, which is not an HTTP status")
    if odd:
        return Result("http", line_id, data, ok=False, error_code=Code.TIMEOUT,
                      error=f"{url} took too long or the clock jumped (left out: {', '.join(odd)})")
    if status >= 400:
        return Result("http", line_id, data, ok=False, error_code=Code.HTTP_ERROR,
                      error=f"{url} answered HTTP {status} {reason}")
    return Result("http", line_id, data)


def fetch(line: LineBinding, url: str, cfg: HttpConfig) -> Result:
    u = urlsplit(url)
    host = u.hostname or ""
    https = u.scheme == "https"
    port = u.port or (443 if https else 80)
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    data: dict = {"url": url, "source": line.describe()}

    def fail(code: str, why: str) -> Result:
        return Result("http", line.id, data, ok=False, error_code=code, error=why)

    t0 = time.monotonic()
    try:
        addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except OSError as e:
        return fail(Code.DNS_FAILED, f"cannot resolve {host}: {e}")
    data["dns_ms"] = ms_since(t0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:
            bind_socket(sock, line)
        except LineUnbound as e:
            return fail(Code.LINE_UNBOUND, str(e))
        sock.settimeout(cfg.timeout_s)
        t1 = time.monotonic()
        try:
            sock.connect((addr, port))
        except ConnectionRefusedError:
            return fail(Code.REFUSED, f"{host} ({addr}) refused the connection on port {port}: service down?")
        except (TimeoutError, socket.timeout):
            return fail(Code.UNREACHABLE, f"no answer from {host} ({addr}) port {port} within {cfg.timeout_s:g} s")
        except OSError as e:
            return fail(Code.UNREACHABLE, f"cannot reach {host} ({addr}): {e.strerror or e}")
        data["connect_ms"] = ms_since(t1)
        if https:
            ctx = ssl.create_default_context(cafile=cfg.ca_file)
            if not cfg.verify_tls:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            t2 = time.monotonic()
            try:
                sock = ctx.wrap_socket(sock, server_hostname=host)
            except ssl.SSLCertVerificationError as e:
                return fail(Code.TLS_FAILED, f"the certificate of {host} is not trusted: {e.verify_message}")
            except (ssl.SSLError, OSError) as e:
                return fail(Code.TLS_FAILED, f"TLS with {host} failed: {e}")
            data["tls_ms"] = ms_since(t2)
        conn = http.client.HTTPConnection(host, port, timeout=cfg.timeout_s)
        conn.sock = sock  # already connected over the right line
        try:
            t3 = time.monotonic()
            conn.request("GET", path, headers={"User-Agent": "linewatch-agent", "Accept-Encoding": "identity"})
            resp = conn.getresponse()
            data["ttfb_ms"] = ms_since(t3)
            body = resp.read(cfg.max_body_kb * 1024)
            data["bytes"] = len(body)
            data["total_ms"] = ms_since(t0)
            data["status_code"] = resp.status
        except (TimeoutError, socket.timeout):
            return fail(Code.TIMEOUT, f"{host} accepted the connection but sent no answer within {cfg.timeout_s:g} s")
        except (http.client.HTTPException, OSError) as e:
            return fail(Code.BAD_ANSWER, f"{host} broke off the answer: {e or type(e).__name__}")
        finally:
            conn.close()
        return judge(line.id, url, data, resp.status, resp.reason)
    finally:
        sock.close()

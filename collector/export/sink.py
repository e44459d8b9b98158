"""Writing points to the time-series server with influxdb-client, synchronously.

``WriteApi`` in SYNCHRONOUS mode: one HTTP request per ``write``; it returns when the server
accepted the points and raises otherwise. (The library's default batching mode hands failed
batches to a callback after its own retries and forgets them, and its ``flush()`` does
nothing: data would be lost without the feed position knowing.) The library does not retry
here (``retries=False``): linewatch's exporter retries with its own backoff and moves its feed
position only after this returns.

Any server with the InfluxDB 2 write API (``POST /api/v2/write``, line protocol, precision ms):
VictoriaMetrics (org/bucket ignored, token optional), InfluxDB 2.x (org, bucket, token),
InfluxDB 3.x (its v2-compatible endpoint: bucket = database, token).
"""
from __future__ import annotations

import logging
import warnings
from typing import Iterable, Sequence

from ..errors import ExportError, ExportRefused, ExportServerError, ExportUnreachable  # noqa: F401
from .config import ExportConfig
from .points import Point

log = logging.getLogger("linewatch.collector.export")


_HINT = {
    401: "the token is missing or wrong: check token_file in [export]",
    403: "the token may not write here: give it write access to the bucket/database",
    404: "no such bucket/database/org, or this is not an InfluxDB-compatible server: check url, org, bucket, "
         "database and kind in [export]",
    405: "this address does not take writes: url must be the server's base address (e.g. http://127.0.0.1:8428)",
    413: "the request is too large for the server: lower batch_points in [export]",
    429: "the server limits writes: it will be retried",
}


def _body(e) -> str:
    b = getattr(e, "body", None)
    if isinstance(b, bytes):
        b = b.decode("utf-8", "replace")
    return (b or "").strip()[:500]


class Sink:
    """One time-series server. ``write(points)`` returns once the server accepted all of them,
    or raises an ExportError."""

    def __init__(self, cfg: ExportConfig):
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.cfg = cfg
        token = cfg.token()
        kw: dict = {}
        if cfg.kind == "victoriametrics" and token and ":" in token:
            kw["auth_basic"] = True  # vmauth / -httpAuth.*: user:password
        self._client = InfluxDBClient(url=cfg.url, token=token or "", org=cfg.org or None,
                                      timeout=int(cfg.timeout_s * 1000), retries=False, **kw)
        if cfg.kind == "victoriametrics" and token and ":" not in token:
            self._client.api_client.default_headers["Authorization"] = f"Bearer {token}"
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        # VictoriaMetrics turns a `db` argument into a label: send none. InfluxDB 3's v2 endpoint: bucket = database.
        self._bucket = {"influxdb2": cfg.bucket, "influxdb3": cfg.database}.get(cfg.kind, "")
        self.sent_points = 0
        self.requests = 0

    def close(self) -> None:
        try:
            self._write.close()
            self._client.close()
        except Exception:  # noqa: BLE001 - closing a client that failed
            pass

    def write(self, points: Sequence[Point]) -> None:
        """All ``points`` in requests of at most batch_points, in order."""
        lines = [p.line_protocol() for p in points]
        n = self.cfg.batch_points
        for i in range(0, len(lines), n):
            self.write_lines(lines[i:i + n])

    def write_lines(self, lines: Iterable[str]) -> None:
        from influxdb_client.client.write_api import WritePrecision
        from influxdb_client.rest import ApiException
        import urllib3

        body = "\n".join(lines)
        if not body:
            return
        where = self.cfg.target
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the library warns about missing org/bucket for VictoriaMetrics
                self._write.write(bucket=self._bucket, org=self.cfg.org or "", record=body.encode(),
                                  write_precision=WritePrecision.MS)
        except ApiException as e:
            status = int(e.status or 0)
            text = _body(e)
            if status == 0:  # the library's wrapper for connection-level failures (SSL, ...)
                raise ExportUnreachable(f"{where}: no answer ({e.reason}); is it running and reachable from this "
                                        f"server? points are kept and sent again when it answers") from None
            if 400 <= status < 500:
                hint = _HINT.get(status, "the server refused the points as written: see its answer")
                raise ExportRefused(f"{where} refused the write: HTTP {status} {e.reason or ''}: {hint}"
                                    + (f" (server said: {text})" if text else ""), status, text) from None
            raise ExportServerError(f"{where} failed: HTTP {status} {e.reason or ''}: the server is there but "
                                    f"not writing (disk full? starting up? see its log); points are kept and sent "
                                    f"again" + (f" (server said: {text})" if text else ""), status, text) from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            what = "timed out" if "timeout" in type(e).__name__.lower() or "timed out" in str(e) else "no answer"
            raise ExportUnreachable(f"{where}: {what} ({type(e).__name__}: {_reason(e)}); is it running and "
                                    f"reachable from this server? points are kept and sent again when it "
                                    f"answers") from None
        self.requests += 1
        self.sent_points += body.count("\n") + 1


def _reason(e: BaseException) -> str:
    r = getattr(e, "reason", None)
    s = str(r if r is not None else e)
    # urllib3 puts the pool object's repr in front: keep the part people can read
    if ": " in s and "object at 0x" in s:
        s = s.rsplit(": ", 1)[1]
    return s.strip()[:300]

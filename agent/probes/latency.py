"""Latency, jitter and loss: a burst of probes per target, over the line's own address.

Methods, in the order ``method = "auto"`` tries them:
  * ``icmp-raw``   -- raw ICMP socket (root or CAP_NET_RAW);
  * ``icmp-dgram`` -- unprivileged ICMP "ping" socket (Linux, when net.ipv4.ping_group_range allows);
  * ``tcp-connect``-- time of a TCP handshake to ``tcp_port`` (works without any privilege,
    and through firewalls that drop ICMP). A refused connection still proves the path.
A target written ``tcp:HOST:PORT`` always uses tcp-connect.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import time
from dataclasses import dataclass

from linewatch.config import ConfigError, Section
from linewatch.wire import Code

from ..errors import MethodUnavailable
from . import icmp
from .base import LineBinding, LineUnbound, Probe, Result, bind_socket


@dataclass(frozen=True)
class LatencyConfig:
    targets: tuple[str, ...]
    interval_s: float = 300.0
    count: int = 20
    spacing_ms: float = 200.0
    timeout_s: float = 2.0
    method: str = "auto"
    tcp_port: int = 443


@dataclass(frozen=True)
class Target:
    host: str
    port: int | None  # set when the target forces tcp-connect

    @classmethod
    def parse(cls, text: str) -> "Target":
        if text.startswith("tcp:"):
            host, _, port = text[4:].rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"target {text!r} must look like tcp:HOST:PORT")
            return cls(host.strip("[]"), int(port))
        if not text or "/" in text or " " in text:
            raise ValueError(f"target {text!r} is not a host name or address")
        return cls(text, None)


class LatencyProbe(Probe):
    name = "latency"
    kind = "latency"

    def parse_config(self, sec: Section) -> LatencyConfig:
        targets = sec.str_list("targets", required=True)
        if not targets:
            raise ConfigError(f"{sec.where}: targets must list at least one host")
        for t in targets:
            try:
                Target.parse(t)
            except ValueError as e:
                raise ConfigError(f"{sec.where}: {e}") from None
        cfg = LatencyConfig(
            targets=tuple(targets),
            interval_s=sec.num("interval_s", 300.0, ge=5),
            count=sec.num("count", 20, ge=1, le=1000, integer=True),
            spacing_ms=sec.num("spacing_ms", 200.0, ge=10, le=10_000),
            timeout_s=sec.num("timeout_s", 2.0, gt=0, le=30),
            method=sec.str("method", "auto", choices=("auto", "icmp-raw", "icmp-dgram", "tcp-connect")),
            tcp_port=sec.num("tcp_port", 443, ge=1, le=65535, integer=True),
        )
        sec.done()
        return cfg

    def run(self, line: LineBinding, cfg: LatencyConfig) -> list[Result]:
        return [measure(line, Target.parse(t), cfg) for t in cfg.targets]

    def failed(self, line: LineBinding, cfg: LatencyConfig, error_code: str, error: str) -> Result:
        t = Target.parse(cfg.targets[0])
        data = {"target": t.host if t.port is None else f"{t.host}:{t.port}", "source": line.describe(),
                "method": methods_for(t, cfg.method)[-1], "sent": 0, "received": 0}
        return Result("latency", line.id, data, ok=False, error_code=error_code, error=error)


def _resolve(host: str) -> str:
    infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    return infos[0][4][0]


def methods_for(target: Target, wanted: str) -> list[str]:
    if target.port is not None:
        return ["tcp-connect"]
    if wanted == "auto":
        return ["icmp-raw", "icmp-dgram", "tcp-connect"]
    return [wanted]


def measure(line: LineBinding, target: Target, cfg: LatencyConfig) -> Result:
    """One burst to one target. Never raises for network trouble: failure is a result."""
    base = {"target": target.host if target.port is None else f"{target.host}:{target.port}",
            "source": line.describe()}
    try:
        addr = _resolve(target.host)
    except OSError as e:
        return Result("latency", line.id, {**base, "method": methods_for(target, cfg.method)[-1], "sent": 0,
                                           "received": 0}, ok=False, error_code=Code.DNS_FAILED,
                      error=f"cannot resolve {target.host}: {e}")
    last_unavailable = ""
    for method in methods_for(target, cfg.method):
        try:
            if method == "tcp-connect":
                rtts, sent, err = _burst_tcp(line, addr, target.port or cfg.tcp_port, cfg)
            else:
                rtts, sent, err = _burst_icmp(line, addr, cfg, raw=(method == "icmp-raw"))
        except MethodUnavailable as e:
            last_unavailable = str(e)
            continue
        except LineUnbound as e:
            return Result("latency", line.id, {**base, "method": method, "sent": 0, "received": 0},
                          ok=False, error_code=Code.LINE_UNBOUND, error=str(e))
        return burst_result(line.id, base, method, sent, rtts, cfg.timeout_s, err, addr)
    return Result("latency", line.id, {**base, "method": cfg.method if cfg.method != "auto" else "tcp-connect",
                                       "sent": 0, "received": 0},
                  ok=False, error_code=Code.METHOD_UNAVAILABLE, error=last_unavailable)


def burst_result(line_id: str, base: dict, method: str, sent: int, rtts: list[float], timeout_s: float,
                 err: str, addr: str) -> Result:
    """The result of one burst. A round trip outside 0..timeout_s (a clock that jumped, a PC that
    slept mid-burst) is not a reply in time: it counts as lost, never as a 3-hour RTT."""
    kept = [r for r in rtts if 0 <= r <= timeout_s * 1000]
    sent = max(sent, len(kept))
    data = {**base, "method": method, **icmp.summarize(sent, kept)}
    if not kept:
        reason = err or f"no reply from {addr} to {sent} probes within {timeout_s:g} s"
        return Result("latency", line_id, data, ok=False, error_code=Code.UNREACHABLE, error=reason)
    return Result("latency", line_id, data)


def _burst_icmp(line: LineBinding, addr: str, cfg: LatencyConfig, raw: bool) -> tuple[list[float], int, str]:
    kind = socket.SOCK_RAW if raw else socket.SOCK_DGRAM
    try:
        sock = socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP)
    except PermissionError:
        raise MethodUnavailable("raw ICMP needs root" if raw else
                                "unprivileged ICMP is disabled (net.ipv4.ping_group_range)") from None
    with sock:
        bind_socket(sock, line)
        ident = os.getpid() & 0xFFFF
        sent_at: dict[int, float] = {}
        rtts: dict[int, float] = {}
        last_error = ""
        base_seq = int.from_bytes(os.urandom(2), "big")
        spacing = cfg.spacing_ms / 1000
        start = time.monotonic()
        n_sent = 0
        while True:
            now = time.monotonic()
            if n_sent < cfg.count and now >= start + n_sent * spacing:
                seq = (base_seq + n_sent) & 0xFFFF
                try:
                    sock.sendto(icmp.echo_request(ident, seq), (addr, 0))
                    sent_at[seq] = time.monotonic()
                except OSError as e:  # e.g. ENETUNREACH: counts as a lost probe
                    last_error = f"send failed: {e.strerror}"
                    sent_at[seq] = time.monotonic()
                n_sent += 1
                continue
            deadline = (start + n_sent * spacing) if n_sent < cfg.count else \
                (max(sent_at.values()) + cfg.timeout_s if sent_at else now)
            if n_sent >= cfg.count and (now >= deadline or len(rtts) == len(sent_at)):
                break
            ready, _, _ = select.select([sock], [], [], max(0.0, deadline - now))
            if not ready:
                continue
            try:
                packet, (src, _) = sock.recvfrom(2048)
            except OSError:
                continue
            received = time.monotonic()
            p = icmp.parse_packet(packet, has_ip_header=raw)
            if p is None or p.seq not in sent_at or (raw and p.ident != ident):
                continue
            if p.is_reply:
                if src == addr and p.seq not in rtts and received - sent_at[p.seq] <= cfg.timeout_s:
                    rtts[p.seq] = (received - sent_at[p.seq]) * 1000
            else:
                last_error = p.error_text()
        ordered = [rtts[s] for s in sorted(sent_at, key=sent_at.get) if s in rtts]
        return ordered, n_sent, last_error


def _burst_tcp(line: LineBinding, addr: str, port: int, cfg: LatencyConfig) -> tuple[list[float], int, str]:
    rtts: list[float] = []
    last_error = ""
    spacing = cfg.spacing_ms / 1000
    for i in range(cfg.count):
        t_start = time.monotonic()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            bind_socket(sock, line)
            sock.settimeout(cfg.timeout_s)
            t0 = time.monotonic()
            try:
                sock.connect((addr, port))
                rtts.append((time.monotonic() - t0) * 1000)
            except ConnectionRefusedError:  # a RST came back over the path: the host answered
                rtts.append((time.monotonic() - t0) * 1000)
            except (socket.timeout, TimeoutError):
                last_error = f"TCP connect to {addr}:{port} timed out after {cfg.timeout_s:g} s"
            except OSError as e:
                last_error = f"TCP connect to {addr}:{port} failed: {e.strerror or e}"
                if e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                    time.sleep(min(cfg.timeout_s, 0.2))
        finally:
            sock.close()
        if i + 1 < cfg.count:
            time.sleep(max(0.0, spacing - (time.monotonic() - t_start)))
    return rtts, cfg.count, last_error

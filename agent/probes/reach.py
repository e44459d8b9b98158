"""Reach: is the line carrying packets at all? One tiny probe to one target, bound to the line.

The agent runs it continuously (agent/reach.py: one monitor thread per line, a probe every
``interval_s``, state up/down, a message at once on every change). ``run()`` here is the
one-shot check for ``linewatch-agent probe --probe reach`` and on-demand commands: probes
until the first answer, at most ``down_after`` probes ``interval_s`` apart.

Methods (``method`` in ``[line.reach]``): ``icmp`` (raw ICMP, else the unprivileged ping
socket), ``tcp`` (a TCP handshake to ``port``; a refused connection proves the path too),
``auto`` (ICMP, else TCP). A target written ``tcp:HOST:PORT`` always uses TCP.

``gateway``: ``"auto"`` (the default route's next hop of the line's interface), an IPv4
address, or ``"none"``. It is probed only when the target did not answer, to tell a dead
line (the operator's) from a dead modem/LAN (the office's).
"""
from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from linewatch.config import ConfigError, Section
from linewatch.wire import Code, format_time, utc_now

from .base import LineBinding, LineUnbound, Probe, Result
from .latency import LatencyConfig, MethodUnavailable, Target, _burst_icmp, _burst_tcp, _resolve

METHODS = ("auto", "icmp", "tcp")
#: the gateway of a line whose target uses TCP is asked on this port (a modem's web page; a RST counts too)
GATEWAY_TCP_PORT = 80


@dataclass(frozen=True)
class ReachConfig:
    target: str | None  # None until filled in from the line's first latency target
    interval_s: float = 2.0
    timeout_s: float = 1.0
    down_after: int = 3
    up_after: int = 2
    report_s: float = 300.0
    gateway: str = "auto"  # "auto" | "none" | an IPv4 address
    method: str = "auto"   # auto | icmp | tcp
    port: int = 443        # for tcp


@dataclass(frozen=True)
class Check:
    """One probe: did it answer, its round trip, the wire method used, why not."""

    answered: bool
    method: str
    rtt_ms: float | None = None
    error: str = ""
    unbound: bool = False


class ReachProbe(Probe):
    name = "reach"
    kind = "reach"
    #: runs all the time in its own thread (agent/reach.py), not on the scheduler
    continuous: ClassVar[bool] = True

    def parse_config(self, sec: Section) -> ReachConfig:
        target = sec.str("target")
        if target is not None:
            try:
                Target.parse(target)
            except ValueError as e:
                raise ConfigError(f"{sec.where}: {e}") from None
        gateway = sec.str("gateway", "auto")
        if gateway not in ("auto", "none"):
            try:
                ipaddress.IPv4Address(gateway)
            except ValueError:
                raise ConfigError(f"{sec.where}: gateway {gateway!r} must be \"auto\", \"none\" or an IPv4 "
                                  f"address like \"192.168.1.1\"") from None
        cfg = ReachConfig(
            target=target,
            interval_s=sec.num("interval_s", 2.0, ge=0.5, le=3600),
            timeout_s=sec.num("timeout_s", 1.0, gt=0, le=30),
            down_after=sec.num("down_after", 3, ge=1, le=100, integer=True),
            up_after=sec.num("up_after", 2, ge=1, le=100, integer=True),
            report_s=sec.num("report_s", 300.0, ge=10, le=86400),
            gateway=gateway,
            method=sec.str("method", "auto", choices=METHODS),
            port=sec.num("port", 443, ge=1, le=65535, integer=True),
        )
        sec.done()
        return cfg

    def complete(self, cfg: ReachConfig, probes: dict[str, Any], where: str) -> ReachConfig:
        if cfg.target is not None:
            return cfg
        latency = probes.get("latency")
        if latency is not None and latency.targets:
            return replace(cfg, target=latency.targets[0])
        raise ConfigError(f"{where} [reach]: target is required (or add [line.latency] targets: "
                          f"the first one is used)")

    def run(self, line: LineBinding, cfg: ReachConfig) -> list[Result]:
        return [one_shot(line, cfg)]

    def summary(self, data: dict) -> str | None:
        rtt = f", rtt {data['rtt_ms']:.1f} ms" if data.get("rtt_ms") is not None else ""
        gw = (f", gateway {data['gateway']} {'answers' if data['gateway_ok'] else 'silent'}"
              if "gateway_ok" in data else "")
        return f"{data['state']}, {data['lost']}/{data['sent']} lost{rtt}{gw}"

    def failed(self, line: LineBinding, cfg: ReachConfig, error_code: str, error: str) -> Result:
        now = format_time(utc_now())
        data = {"method": "tcp-connect" if cfg.method == "tcp" else "icmp-raw", "target": cfg.target or "",
                "state": "down", "change": False, "since": now, "interval_s": cfg.interval_s, "sent": 0,
                "lost": 0, "source": line.describe()}
        return Result("reach", line.id, data, ok=False, error_code=error_code, error=error)


# ----------------------------------------------------------------------------- one probe
class Prober:
    """Sends single probes to one target over one line, remembering which method works."""

    def __init__(self, line: LineBinding, cfg: ReachConfig):
        self.line = line
        self.cfg = cfg
        self.target = Target.parse(cfg.target or "")
        self.port = self.target.port or cfg.port
        self._addr: str | None = None
        self._method: str | None = None  # the wire method that worked last

    @property
    def shown_target(self) -> str:
        t = self.target
        return t.host if t.port is None and self.cfg.method != "tcp" else f"{t.host}:{self.port}"

    def methods(self) -> list[str]:
        if self.target.port is not None or self.cfg.method == "tcp":
            return ["tcp-connect"]
        icmp = ["icmp-raw", "icmp-dgram"]
        ms = icmp if self.cfg.method == "icmp" else icmp + ["tcp-connect"]
        if self._method in ms:  # the one that worked first, the others only if it stops being available
            ms = [self._method] + [m for m in ms if m != self._method]
        return ms

    @property
    def method(self) -> str:
        return self._method or self.methods()[0]

    def forget_address(self) -> None:
        """Resolve the target's name again on the next probe (it may have moved)."""
        self._addr = None

    def check(self) -> Check:
        if self._addr is None:
            try:
                self._addr = _resolve(self.target.host)
            except OSError as e:
                return Check(False, self.method, error=f"cannot resolve {self.target.host}: {e}")
        return self.check_address(self._addr, self.port)

    def check_address(self, addr: str, port: int) -> Check:
        """One probe to ``addr``. Raises MethodUnavailable when no allowed method can be used."""
        cfg = LatencyConfig(targets=(addr,), count=1, spacing_ms=10, timeout_s=self.cfg.timeout_s)
        why = ""
        for method in self.methods():
            try:
                if method == "tcp-connect":
                    rtts, _, err = _burst_tcp(self.line, addr, port, cfg)
                else:
                    rtts, _, err = _burst_icmp(self.line, addr, cfg, raw=(method == "icmp-raw"))
            except MethodUnavailable as e:
                why = str(e)
                continue
            except LineUnbound as e:
                return Check(False, method, error=str(e), unbound=True)
            self._method = method
            if rtts:
                return Check(True, method, rtt_ms=round(rtts[0], 3))
            return Check(False, method, error=err or f"no reply within {self.cfg.timeout_s:g} s")
        raise MethodUnavailable(why or "no probe method available")

    def check_gateway(self, gateway: str) -> bool:
        try:
            port = GATEWAY_TCP_PORT if self.method == "tcp-connect" else self.port
            return self.check_address(gateway, port).answered
        except MethodUnavailable:
            return False


# ----------------------------------------------------------------------------- gateway
def _route_table() -> list[tuple[str, str, int]]:
    """Default routes of the main table from /proc/net/route: (interface, gateway, metric)."""
    out = []
    try:
        with open("/proc/net/route") as f:
            next(f, None)
            for row in f:
                p = row.split()
                if len(p) < 8 or p[1] != "00000000" or p[7] != "00000000":
                    continue
                flags = int(p[3], 16)
                if not flags & 0x1 or not flags & 0x2:  # RTF_UP, RTF_GATEWAY
                    continue
                gw = socket.inet_ntoa(struct.pack("<I", int(p[2], 16)))
                out.append((p[0], gw, int(p[6])))
    except OSError:
        pass
    return sorted(out, key=lambda r: r[2])


def _ip_default_routes() -> list[tuple[str, str, int]]:
    """Default routes of every table (policy routing puts a second line's in its own table)."""
    ip = shutil.which("ip")
    if not ip:
        return []
    try:
        r = subprocess.run([ip, "-j", "-4", "route", "show", "table", "all", "default"], capture_output=True,
                           text=True, timeout=5)
        rows = json.loads(r.stdout or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    out = [(x.get("dev", ""), x["gateway"], int(x.get("metric", 0))) for x in rows
           if isinstance(x, dict) and x.get("gateway") and x.get("dst") == "default"]
    return sorted(out, key=lambda r: r[2])


def _interface_of(address: str) -> str | None:
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dependency
        return None
    for name, addrs in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == address for a in addrs):
            return name
    return None


def find_gateway(line: LineBinding) -> str | None:
    """The next hop of the line's default route, or None when there is none to find."""
    iface = line.interface or (_interface_of(line.source_address) if line.source_address else None)
    if (line.interface or line.source_address) and not iface:
        return None
    for routes in (_route_table, _ip_default_routes):
        for dev, gw, _metric in routes():
            if iface is None or dev == iface:
                return gw
    return None


def gateway_for(line: LineBinding, cfg: ReachConfig) -> str | None:
    if cfg.gateway == "none":
        return None
    if cfg.gateway == "auto":
        return find_gateway(line)
    return cfg.gateway


# ----------------------------------------------------------------------------- one-shot
def one_shot(line: LineBinding, cfg: ReachConfig) -> Result:
    """Probe until the first answer, at most ``down_after`` times, ``interval_s`` apart."""
    prober = Prober(line, cfg)
    started = utc_now()
    sent = lost = 0
    last: Check | None = None
    try:
        for i in range(cfg.down_after):
            t0 = time.monotonic()
            last = prober.check()
            sent += 1
            if last.answered:
                break
            lost += 1
            if i + 1 < cfg.down_after:
                time.sleep(max(0.0, cfg.interval_s - (time.monotonic() - t0)))
    except MethodUnavailable as e:
        return Result("reach", line.id, {**ReachProbe().failed(line, cfg, "", "").data, "sent": sent,
                                         "lost": lost, "method": prober.method},
                      ok=False, error_code=Code.METHOD_UNAVAILABLE, error=str(e))
    assert last is not None
    data: dict[str, Any] = {"method": last.method, "target": prober.shown_target,
                            "state": "up" if last.answered else "down", "change": False,
                            "since": format_time(utc_now() if last.answered else started),
                            "interval_s": cfg.interval_s, "sent": sent, "lost": lost, "source": line.describe()}
    if last.answered:
        data["rtt_ms"] = last.rtt_ms
        return Result("reach", line.id, data)
    gateway = gateway_for(line, cfg)
    gateway_ok = prober.check_gateway(gateway) if gateway and not last.unbound else None
    if gateway:
        data["gateway"] = gateway
        if gateway_ok is not None:
            data["gateway_ok"] = gateway_ok
    code, error = down_reason(line, prober.shown_target, last, sent, gateway, gateway_ok)
    return Result("reach", line.id, data, ok=False, error_code=code, error=error)


def down_reason(line: LineBinding, target: str, last: Check, failures: int, gateway: str | None,
                gateway_ok: bool | None) -> tuple[str, str]:
    """error_code and the sentence for a line that does not answer."""
    times = f"{failures} time{'s' if failures != 1 else ''} in a row"
    where = f"over line {line.id} ({line.describe()})"
    detail = f": {last.error}" if last.error else ""
    if gateway and gateway_ok is False:
        return (Code.GATEWAY_UNREACHABLE,
                f"no answer from {target} nor from the office gateway {gateway} ({last.method}) {times} {where}: "
                f"the modem/router or the cable to it is down{detail}")
    gw = f" (the office gateway {gateway} answers: the fault is beyond it)" if gateway and gateway_ok else ""
    return Code.LINE_DOWN, f"no answer from {target} ({last.method}) {times} {where}{detail}{gw}"

"""DNS resolution time per resolver, asked over the line's own address.

The query is built here (stdlib only) rather than through the system resolver, because
the system resolver neither says which server answered nor lets us choose the line.
Pure encoding/decoding first, socket I/O after.
"""
from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import time
from dataclasses import dataclass

from linewatch.config import ConfigError, Section
from linewatch.wire import Code

from .base import LineBinding, LineUnbound, Probe, Result, bind_socket

QTYPES = {"A": 1, "AAAA": 28}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


# ----------------------------------------------------------------------------- pure codec
def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna") if label else b""
        if not 0 < len(raw) < 64:
            raise ValueError(f"{name!r} is not a valid host name")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def encode_query(qid: int, name: str, qtype: str = "A") -> bytes:
    """A standard recursive query (RD set) for one name."""
    header = struct.pack("!HHHHHH", qid & 0xFFFF, 0x0100, 1, 0, 0, 0)
    return header + encode_name(name) + struct.pack("!HH", QTYPES[qtype], 1)


def _skip_name(msg: bytes, off: int) -> int:
    while True:
        if off >= len(msg):
            raise ValueError("name runs past the end of the message")
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:  # compression pointer ends the name
            return off + 2
        off += 1 + n


@dataclass(frozen=True)
class DnsReply:
    qid: int
    rcode: str
    truncated: bool
    addresses: tuple[str, ...]  # A/AAAA records in the answer section
    answers: int


def decode_reply(msg: bytes) -> DnsReply:
    """Decode the parts of a reply we report. Raises ValueError for a broken message."""
    if len(msg) < 12:
        raise ValueError("reply shorter than a DNS header")
    qid, flags, qd, an, _ns, _ar = struct.unpack("!HHHHHH", msg[:12])
    if not flags & 0x8000:
        raise ValueError("message is a query, not a reply")
    off = 12
    for _ in range(qd):
        off = _skip_name(msg, off) + 4
    addrs = []
    for _ in range(an):
        off = _skip_name(msg, off)
        if off + 10 > len(msg):
            raise ValueError("answer record runs past the end of the message")
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        rdata = msg[off + 10:off + 10 + rdlen]
        if len(rdata) != rdlen:
            raise ValueError("answer data runs past the end of the message")
        if rtype == 1 and rdlen == 4:
            addrs.append(socket.inet_ntop(socket.AF_INET, rdata))
        elif rtype == 28 and rdlen == 16:
            addrs.append(socket.inet_ntop(socket.AF_INET6, rdata))
        off += 10 + rdlen
    rcode = flags & 0x000F
    return DnsReply(qid, RCODES.get(rcode, f"RCODE{rcode}"), bool(flags & 0x0200), tuple(addrs), an)


# ----------------------------------------------------------------------------- probe
@dataclass(frozen=True)
class DnsConfig:
    resolvers: tuple[str, ...]
    names: tuple[str, ...]
    qtype: str = "A"
    interval_s: float = 300.0
    timeout_s: float = 2.0
    attempts: int = 2
    port: int = 53


class DnsProbe(Probe):
    name = "dns"
    kind = "dns"

    def parse_config(self, sec: Section) -> DnsConfig:
        resolvers = sec.str_list("resolvers", required=True)
        names = sec.str_list("names", required=True)
        if not resolvers or not names:
            raise ConfigError(f"{sec.where}: resolvers and names must each list at least one entry")
        for r in resolvers:
            try:
                ipaddress.IPv4Address(r)
            except ValueError:
                raise ConfigError(f"{sec.where}: resolver {r!r} must be an IPv4 address, e.g. \"203.162.4.191\"") from None
        for n in names:
            try:
                encode_name(n)
            except (ValueError, UnicodeError):
                raise ConfigError(f"{sec.where}: {n!r} is not a valid host name") from None
        cfg = DnsConfig(tuple(resolvers), tuple(names),
                        qtype=sec.str("qtype", "A", choices=tuple(QTYPES)),
                        interval_s=sec.num("interval_s", 300.0, ge=5),
                        timeout_s=sec.num("timeout_s", 2.0, gt=0, le=30),
                        attempts=sec.num("attempts", 2, ge=1, le=10, integer=True),
                        port=sec.num("port", 53, ge=1, le=65535, integer=True))
        sec.done()
        return cfg

    def run(self, line: LineBinding, cfg: DnsConfig) -> list[Result]:
        return [resolve(line, r, n, cfg) for r in cfg.resolvers for n in cfg.names]

    def summary(self, data: dict) -> str | None:
        return f"{data['resolve_ms']:.1f} ms {data.get('rcode', '')}" if "resolve_ms" in data else None

    def failed(self, line: LineBinding, cfg: DnsConfig, error_code: str, error: str) -> Result:
        data = {"resolver": cfg.resolvers[0], "name": cfg.names[0], "qtype": cfg.qtype, "attempts": 0,
                "source": line.describe()}
        return Result("dns", line.id, data, ok=False, error_code=error_code, error=error)


def answer_result(line_id: str, base: dict, reply: DnsReply, elapsed_ms: float, attempt: int) -> Result:
    """The result of one reply that is ours (right resolver, right id)."""
    data = {**base, "resolve_ms": round(min(max(elapsed_ms, 0.0), 60_000.0), 3), "rcode": reply.rcode[:16],
            "answers": min(reply.answers, 1000), "addresses": list(reply.addresses[:16]), "attempts": attempt}
    if reply.rcode != "NOERROR":
        return Result("dns", line_id, data, ok=False, error_code=Code.DNS_ERROR,
                      error=f"resolver {base['resolver']} answered {reply.rcode[:16]} for {base['name']}")
    return Result("dns", line_id, data)


def resolve(line: LineBinding, resolver: str, name: str, cfg: DnsConfig) -> Result:
    """Ask one resolver for one name; retries after a timeout, like a stub resolver."""
    base = {"resolver": resolver, "name": name, "qtype": cfg.qtype, "source": line.describe()}
    last_error = ""
    for attempt in range(1, cfg.attempts + 1):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            try:
                bind_socket(sock, line)
            except LineUnbound as e:
                return Result("dns", line.id, {**base, "attempts": 0}, ok=False, error_code=Code.LINE_UNBOUND, error=str(e))
            qid = int.from_bytes(os.urandom(2), "big")
            t0 = time.monotonic()
            try:
                sock.sendto(encode_query(qid, name, cfg.qtype), (resolver, cfg.port))
            except OSError as e:
                last_error = f"cannot send to resolver {resolver}: {e.strerror}"
                continue
            deadline = t0 + cfg.timeout_s
            last_error = f"no answer from resolver {resolver} within {cfg.timeout_s:g} s"
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([sock], [], [], left)[0]:
                    break
                try:
                    msg, (src, _) = sock.recvfrom(4096)
                except ConnectionRefusedError:  # ICMP port unreachable came back
                    last_error = f"resolver {resolver} refused (no DNS server on port {cfg.port})"
                    break
                elapsed_ms = (time.monotonic() - t0) * 1000
                try:
                    reply = decode_reply(msg)
                except ValueError as e:
                    last_error = f"broken reply from {resolver}: {e}"
                    continue
                if src != resolver or reply.qid != qid:
                    continue  # a stray or spoofed packet: not our answer
                return answer_result(line.id, base, reply, elapsed_ms, attempt)
        finally:
            sock.close()
    return Result("dns", line.id, {**base, "attempts": cfg.attempts}, ok=False, error_code=Code.UNREACHABLE,
                  error=last_error + (f" ({cfg.attempts} attempts)" if cfg.attempts > 1 else ""))

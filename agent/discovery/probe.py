"""Cheap, bounded evidence about hosts a sweep already found (never about empty addresses):

- :func:`echo_ttls`: one ICMP echo per found host, the TTL of its reply (Windows answers with
  128, Linux/Android/iOS with 64, much network gear with 255). On by default: it is one
  ping to a device that just answered an ARP or ping sweep. Needs an ICMP socket: an
  unprivileged ping socket (net.ipv4.ping_group_range) or a raw one (CAP_NET_RAW); without
  either there is no TTL, and the sweep says so in a note.
- :func:`open_ports`: one TCP connect per listed port and host, all in flight at once, at
  ``rate_pps``, at most MAX_CONNECTS in all, answered or abandoned after ``wait_s``. Off by
  default: endpoint security may call connects to 445/3389 a port scan; the sweep asks only
  for hosts its other evidence left unsure.
"""
from __future__ import annotations

import errno
import ipaddress
import os
import select
import socket
import struct
import time

from linewatch.agent.probes import icmp

MAX_CONNECTS = 256
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
IP_TTL = getattr(socket, "IP_TTL", 2)


def _icmp_socket() -> tuple[socket.socket, bool] | None:
    """(socket, has_ip_header): a ping socket if allowed, else a raw one, else None."""
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        s.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        return s, False
    except OSError:
        pass
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), True
    except OSError:
        return None


def reply_ttl(data: bytes, ancdata: list, has_ip_header: bool) -> int | None:
    """The TTL of one received echo reply: from the IP header (raw socket) or the IP_TTL
    control message (ping socket)."""
    if has_ip_header:
        return data[8] if len(data) >= 20 else None
    for level, kind, value in ancdata:
        if level == socket.IPPROTO_IP and kind == IP_TTL and len(value) >= 4:
            return struct.unpack("i", value[:4])[0]
    return None


def echo_ttls(ips: list[str], rate_pps: float, wait_s: float) -> dict[str, int] | None:
    """{ip: reply TTL} of the hosts that answered; None when no ICMP socket can be had."""
    opened = _icmp_socket()
    if opened is None:
        return None
    sock, raw = opened
    ident = int.from_bytes(os.urandom(2), "big")
    wanted = {ip: i for i, ip in enumerate(ips)}
    found: dict[str, int] = {}
    gap = 1.0 / rate_pps
    with sock:
        sock.setblocking(False)
        for ip, seq in wanted.items():
            try:
                sock.sendto(icmp.echo_request(ident, seq), (ip, 0))
            except OSError:
                pass
            _drain(sock, raw, ident, wanted, found)
            time.sleep(gap)
        deadline = time.monotonic() + wait_s
        while len(found) < len(wanted) and (left := deadline - time.monotonic()) > 0:
            if select.select([sock], [], [], left)[0]:
                _drain(sock, raw, ident, wanted, found)
    return found


def _drain(sock: socket.socket, raw: bool, ident: int, wanted: dict[str, int], found: dict[str, int]) -> None:
    while True:
        try:
            data, anc, _flags, (src, _port) = sock.recvmsg(2048, socket.CMSG_SPACE(4))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        p = icmp.parse_packet(data, raw)
        # a ping socket's kernel rewrites the ident; a raw socket sees every ICMP packet
        if p is None or not p.is_reply or src not in wanted or p.seq != wanted[src] or (raw and p.ident != ident):
            continue
        ttl = reply_ttl(data, anc, raw)
        if ttl is not None:
            found[src] = ttl


def open_ports(targets: dict[str, tuple[int, ...]], rate_pps: float, wait_s: float, source: str | None = None
               ) -> dict[str, set[int]]:
    """{ip: open ports} of one non-blocking TCP connect per (ip, port); closed at once."""
    pending: dict[socket.socket, tuple[str, int]] = {}
    out: dict[str, set[int]] = {ip: set() for ip in targets}
    pairs = [(ip, port) for ip, ports in targets.items() for port in ports][:MAX_CONNECTS]
    gap = 1.0 / rate_pps
    try:
        for ip, port in pairs:
            ipaddress.IPv4Address(ip)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                if source:
                    s.bind((source, 0))
                err = s.connect_ex((ip, port))
            except OSError:
                s.close()
                continue
            if err in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                pending[s] = (ip, port)
            else:
                s.close()
            time.sleep(gap)
        deadline = time.monotonic() + wait_s
        while pending and (left := deadline - time.monotonic()) > 0:
            _r, writable, _x = select.select([], list(pending), [], left)
            for s in writable:
                ip, port = pending.pop(s)
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    out[ip].add(port)
                s.close()
    finally:
        for s in pending:
            s.close()
    return out

"""Cheap names for LAN hosts: reverse DNS (the office router often knows DHCP names) and
the NetBIOS node status query that Windows PCs answer on UDP 137. Both only talk to the
office's own resolver and to the hosts just found."""
from __future__ import annotations

import os
import queue
import select
import socket
import struct
import threading
import time

NBSTAT_PORT = 137


def reverse_dns(ips: list[str], timeout_s: float = 3.0, workers: int = 16) -> dict[str, str]:
    """PTR names; lookups still running at the deadline are abandoned (daemon threads)."""
    todo: "queue.Queue[str]" = queue.Queue()
    for ip in ips:
        todo.put(ip)
    found: dict[str, str] = {}

    def work() -> None:
        while True:
            try:
                ip = todo.get_nowait()
            except queue.Empty:
                return
            try:
                name = socket.gethostbyaddr(ip)[0]
            except (OSError, UnicodeError):
                continue
            if name and name != ip:
                found[ip] = name

    threads = [threading.Thread(target=work, daemon=True) for _ in range(min(workers, len(ips)))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout_s
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return dict(found)


def nbstat_query(tid: int) -> bytes:
    """RFC 1002 NODE STATUS REQUEST for the wildcard name '*'."""
    header = struct.pack("!HHHHHH", tid & 0xFFFF, 0x0000, 1, 0, 0, 0)
    raw = b"*" + b"\0" * 15
    encoded = bytes(b for c in raw for b in (ord("A") + (c >> 4), ord("A") + (c & 0x0F)))
    return header + bytes([32]) + encoded + b"\0" + struct.pack("!HH", 0x21, 0x0001)


def parse_nbstat_response(packet: bytes) -> str | None:
    """The machine name from a NODE STATUS RESPONSE: the first unique (non-group) name
    with suffix 0x00 (workstation service)."""
    if len(packet) < 12 + 34 + 10:
        return None
    off = 12
    if packet[off] & 0xC0 == 0xC0:  # compressed pointer
        off += 2
    else:
        while off < len(packet) and packet[off] != 0:
            off += packet[off] + 1
        off += 1
    off += 2 + 2 + 4  # type, class, ttl
    if off + 3 > len(packet):
        return None
    rdlength, count = struct.unpack("!HB", packet[off:off + 3])
    off += 3
    for _ in range(count):
        entry = packet[off:off + 18]
        if len(entry) < 18:
            return None
        name, suffix, flags = entry[:15], entry[15], struct.unpack("!H", entry[16:18])[0]
        off += 18
        if suffix == 0x00 and not flags & 0x8000:
            text = name.decode("ascii", "replace").strip()
            return text or None
    return None


def netbios_names(ips: list[str], timeout_s: float = 1.5, rate_pps: float = 100) -> dict[str, str]:
    if not ips:
        return {}
    tid = int.from_bytes(os.urandom(2), "big")
    found: dict[str, str] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        gap = 1.0 / rate_pps
        for ip in ips:
            try:
                s.sendto(nbstat_query(tid), (ip, NBSTAT_PORT))
            except OSError:
                pass
            _drain(s, found, tid)
            time.sleep(gap)
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0 and len(found) < len(ips):
            if select.select([s], [], [], left)[0]:
                _drain(s, found, tid)
    return found


def _drain(s: socket.socket, found: dict[str, str], tid: int) -> None:
    while True:
        try:
            data, (ip, _port) = s.recvfrom(2048)
        except (BlockingIOError, OSError):
            return
        if len(data) >= 2 and struct.unpack("!H", data[:2])[0] == tid:
            if name := parse_nbstat_response(data):
                found[ip] = name

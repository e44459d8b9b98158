"""A tiny DNS server on loopback for the DNS probe's tests."""
from __future__ import annotations

import socket
import struct
import threading


class Responder:
    """A tiny authoritative-style DNS server on loopback: answers A for known names,
    NXDOMAIN otherwise, and remembers who asked."""

    def __init__(self, records: dict[str, str], silent: bool = False):
        self.records = records
        self.silent = silent
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.clients: list[str] = []
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                msg, addr = self.sock.recvfrom(2048)
            except (TimeoutError, socket.timeout):
                continue
            self.clients.append(addr[0])
            if self.silent:
                continue
            qid = msg[:2]
            end = 12
            labels = []
            while msg[end]:
                labels.append(msg[end + 1:end + 1 + msg[end]].decode())
                end += 1 + msg[end]
            question = msg[12:end + 5]
            name = ".".join(labels)
            if name in self.records:
                answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(self.records[name])
                reply = qid + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question + answer
            else:
                reply = qid + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0) + question
            self.sock.sendto(reply, addr)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()

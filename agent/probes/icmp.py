"""Pure ICMP echo encoding/decoding and burst statistics (no sockets here)."""
from __future__ import annotations

import statistics
import struct
from dataclasses import dataclass

ECHO_REQUEST = 8
ECHO_REPLY = 0
DEST_UNREACHABLE = 3
TIME_EXCEEDED = 11

UNREACH_CODES = {0: "network unreachable", 1: "host unreachable", 3: "port unreachable",
                 9: "network administratively prohibited", 10: "host administratively prohibited",
                 13: "communication administratively prohibited"}


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes = b"linewatch-probe!") -> bytes:
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    csum = checksum(header + payload)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, csum, ident & 0xFFFF, seq & 0xFFFF) + payload


@dataclass(frozen=True)
class IcmpPacket:
    type: int
    code: int
    ident: int
    seq: int
    source: str | None = None

    @property
    def is_reply(self) -> bool:
        return self.type == ECHO_REPLY

    def error_text(self) -> str:
        if self.type == DEST_UNREACHABLE:
            what = UNREACH_CODES.get(self.code, f"unreachable (code {self.code})")
        elif self.type == TIME_EXCEEDED:
            what = "TTL exceeded (routing loop?)"
        else:
            what = f"ICMP type {self.type} code {self.code}"
        return f"{what}, reported by {self.source}" if self.source else what


def parse_packet(packet: bytes, has_ip_header: bool) -> IcmpPacket | None:
    """Decode an echo reply, or an error whose quoted datagram holds our echo request.

    Raw sockets hand us the IP header; unprivileged datagram sockets do not."""
    source = None
    if has_ip_header:
        if len(packet) < 20:
            return None
        ihl = (packet[0] & 0x0F) * 4
        source = ".".join(str(b) for b in packet[12:16])
        packet = packet[ihl:]
    if len(packet) < 8:
        return None
    typ, code, _csum, ident, seq = struct.unpack("!BBHHH", packet[:8])
    if typ == ECHO_REPLY:
        return IcmpPacket(typ, code, ident, seq, source)
    if typ in (DEST_UNREACHABLE, TIME_EXCEEDED):
        inner = packet[8:]
        if len(inner) < 28:
            return None
        ihl = (inner[0] & 0x0F) * 4
        quoted = inner[ihl:ihl + 8]
        if len(quoted) < 8 or quoted[0] != ECHO_REQUEST:
            return None
        _t, _c, _s, ident, seq = struct.unpack("!BBHHH", quoted)
        return IcmpPacket(typ, code, ident, seq, source)
    return None


def summarize(sent: int, rtts_in_send_order: list[float]) -> dict[str, float | int]:
    """Latency burst statistics: loss, min/median/avg/p95/max RTT and jitter.

    Jitter is the mean absolute difference between consecutive RTTs (RFC 3550's
    inter-arrival idea without the smoothing), in milliseconds."""
    received = len(rtts_in_send_order)
    out: dict[str, float | int] = {"sent": sent, "received": received}
    if sent:
        out["loss_pct"] = round(100.0 * (sent - received) / sent, 2)
    if received:
        s = sorted(rtts_in_send_order)
        p95_index = max(0, -(-95 * received // 100) - 1)  # nearest-rank
        out.update(
            rtt_min_ms=round(s[0], 3),
            rtt_median_ms=round(statistics.median(s), 3),
            rtt_avg_ms=round(statistics.fmean(s), 3),
            rtt_p95_ms=round(s[p95_index], 3),
            rtt_max_ms=round(s[-1], 3),
        )
        if received > 1:
            diffs = [abs(b - a) for a, b in zip(rtts_in_send_order, rtts_in_send_order[1:])]
            out["jitter_ms"] = round(statistics.fmean(diffs), 3)
        else:
            out["jitter_ms"] = 0.0
    return out

"""ICMP encoding/decoding against packets captured on a real link, and burst statistics."""
import json
from pathlib import Path

from linewatch.agent.probes import icmp

PACKETS = {k: bytes.fromhex(v) for k, v in json.loads((Path(__file__).parent / "data/icmp_packets.json").read_text()).items()
           if not k.startswith("_")}


def test_an_echo_request_carries_a_valid_internet_checksum():
    pkt = icmp.echo_request(0x1234, 7)
    assert icmp.checksum(pkt) == 0  # a correct checksum makes the whole packet sum to zero
    assert pkt[0] == icmp.ECHO_REQUEST and pkt[4:8] == bytes.fromhex("12340007")


def test_a_captured_echo_reply_on_a_raw_socket_decodes_to_our_ident_and_seq():
    p = icmp.parse_packet(PACKETS["echo_reply_raw"], has_ip_header=True)
    assert p is not None and p.is_reply
    assert (p.ident, p.seq, p.source) == (0x1234, 7, "10.77.0.2")


def test_a_datagram_socket_reply_has_no_ip_header_and_still_decodes():
    p = icmp.parse_packet(PACKETS["echo_reply_raw"][20:], has_ip_header=False)
    assert p is not None and p.is_reply and p.seq == 7 and p.source is None


def test_a_captured_host_unreachable_names_our_probe_and_says_who_reported_it():
    p = icmp.parse_packet(PACKETS["host_unreachable_raw"], has_ip_header=True)
    assert p is not None and not p.is_reply
    assert (p.ident, p.seq) == (0x1234, 7)
    assert p.error_text() == "host unreachable, reported by 10.77.0.2"


def test_truncated_or_foreign_packets_are_ignored():
    assert icmp.parse_packet(b"\x45\x00", has_ip_header=True) is None
    assert icmp.parse_packet(icmp.echo_request(1, 1), has_ip_header=False) is None  # our own request echoed


def test_burst_statistics_give_loss_percentiles_and_jitter():
    s = icmp.summarize(10, [10.0, 12.0, 11.0, 30.0, 10.0, 11.0, 12.0, 10.0])
    assert s["sent"] == 10 and s["received"] == 8 and s["loss_pct"] == 20.0
    assert s["rtt_min_ms"] == 10.0 and s["rtt_max_ms"] == 30.0 and s["rtt_median_ms"] == 11.0
    assert s["rtt_p95_ms"] == 30.0  # nearest rank of 8 samples
    # |12-10| + |11-12| + |30-11| + |10-30| + |11-10| + |12-11| + |10-12| = 46 over 7 pairs
    assert s["jitter_ms"] == round(46 / 7, 3)


def test_a_burst_with_no_reply_is_full_loss_without_rtt_figures():
    s = icmp.summarize(20, [])
    assert s == {"sent": 20, "received": 0, "loss_pct": 100.0}

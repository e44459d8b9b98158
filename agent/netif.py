"""Platform seam: what the agent asks of the operating system about its network cards.
Linux, Windows and macOS through psutil where it is installed (``linewatch[agent]``); the
Linux ioctl only as a fallback, imported when used, so nothing Unix-only loads at import."""
from __future__ import annotations

import socket
import struct
import sys

from .errors import LineUnbound


def interface_address(ifname: str) -> str:
    """IPv4 address of an interface, for tools that bind by address only (speedtest-cli, iperf3)."""
    psutil = _psutil()
    if psutil is not None:
        for a in psutil.net_if_addrs().get(ifname, []):
            if a.family == socket.AF_INET:
                return a.address
        raise LineUnbound(f"network interface {ifname!r} does not exist or has no IPv4 address "
                          f"(cable or USB modem unplugged?)")
    if not sys.platform.startswith("linux"):
        raise LineUnbound(f"cannot look up interface {ifname!r} without psutil (pip install 'linewatch[agent]'); "
                          f"set source_address for this line instead")
    import fcntl  # Linux only
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", ifname.encode()[:15]))  # SIOCGIFADDR
        except OSError:
            raise LineUnbound(f"network interface {ifname!r} does not exist or has no IPv4 address "
                              f"(cable or USB modem unplugged?)") from None
    return socket.inet_ntoa(packed[20:24])


# Linux struct tcp_info offsets (include/uapi/linux/tcp.h)
_SND_MSS, _RCV_MSS, _SACKED = 16, 20, 28
_BYTES_ACKED, _BYTES_RECEIVED = 120, 128  # since Linux 4.1
_DATA_SEGS_IN = 152  # since 4.6
_TCP_INFO_LEN = 160


def held_counts(info: bytes, upload: bool) -> tuple[int, int | None] | None:
    """(in-order bytes, bytes that reached the far end or None) from a Linux ``TCP_INFO``
    answer; None if the kernel is too old to say anything. Upload: acknowledged in order,
    and that plus the segments acknowledged out of order (SACKed) x MSS. Download: received
    in order, and the data segments arrived x MSS (Linux >= 4.6; None before)."""
    if len(info) < _BYTES_RECEIVED + 8:
        return None
    if upload:
        acked = struct.unpack_from("=Q", info, _BYTES_ACKED)[0]
        mss, sacked = struct.unpack_from("=I", info, _SND_MSS)[0], struct.unpack_from("=I", info, _SACKED)[0]
        return acked, acked + sacked * mss
    received = struct.unpack_from("=Q", info, _BYTES_RECEIVED)[0]
    if len(info) < _DATA_SEGS_IN + 4:
        return received, None
    mss, segs = struct.unpack_from("=I", info, _RCV_MSS)[0], struct.unpack_from("=I", info, _DATA_SEGS_IN)[0]
    return received, segs * mss


def kernel_counts(sock: socket.socket, upload: bool) -> tuple[int, int | None] | None:
    """:func:`held_counts` of a connected socket; None where there is no TCP_INFO (not Linux)."""
    opt = getattr(socket, "TCP_INFO", None)
    if opt is None:
        return None
    try:
        return held_counts(sock.getsockopt(socket.IPPROTO_TCP, opt, _TCP_INFO_LEN), upload)
    except OSError:
        return None


# ----------------------------------------------------------------------------- which card, how busy
def _psutil():
    try:
        import psutil
    except ImportError:
        return None
    return psutil


def nic_of_address(address: str) -> str | None:
    """The network card holding ``address``: the one with exactly that address, else the only
    one whose network contains it (127.0.0.9 is on the loopback's 127.0.0.0/8). None if psutil
    is missing or no card (or more than one) fits: never a guess."""
    import ipaddress
    psutil = _psutil()
    if psutil is None:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    holders: list[str] = []
    for nic, addrs in psutil.net_if_addrs().items():
        for a in addrs:
            if a.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                own = ipaddress.ip_address(a.address.split("%")[0])
            except ValueError:
                continue
            if own == ip:
                return nic
            try:
                if a.netmask and ip in ipaddress.ip_interface(f"{own}/{a.netmask}").network:
                    holders.append(nic)
            except ValueError:
                continue
    return holders[0] if len(set(holders)) == 1 else None


def route_source(host: str, port: int = 9) -> str | None:
    """The address this computer would send from to reach ``host`` (an IP address): a UDP
    socket's connect() only looks the route up, it sends nothing. None if there is no route."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((host, port))
            return s.getsockname()[0]
    except OSError:
        return None


def nic_counters(nic: str) -> tuple[int, int, bool] | None:
    """(bytes, packets, is_loopback) the card has sent and received since boot, both directions
    summed; None if psutil is missing or there is no such card. A loopback card counts every
    byte twice (sent and received)."""
    psutil = _psutil()
    if psutil is None:
        return None
    c = psutil.net_io_counters(pernic=True).get(nic)
    if c is None:
        return None
    stats = psutil.net_if_stats().get(nic)
    loop = "loopback" in (getattr(stats, "flags", "") or "") or nic == "lo"
    return c.bytes_sent + c.bytes_recv, c.packets_sent + c.packets_recv, loop

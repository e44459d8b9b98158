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
    try:
        import psutil
    except ImportError:
        psutil = None
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


# offsets of tcpi_bytes_acked / tcpi_bytes_received in Linux struct tcp_info (since 4.1)
_TCPI_BYTES_ACKED = 120
_TCPI_BYTES_RECEIVED = 128


def tcp_bytes(sock: socket.socket, upload: bool) -> int | None:
    """Bytes the kernel has delivered on this connection (acknowledged by the far end when
    sending, received in order when receiving), or None if it cannot say (not Linux).
    Counting what send() accepted would include what still sits in the socket buffer (it
    grows with the congestion window), and counting what recv() returned depends on when
    our thread got the CPU: both made 0.5 s rates swing by +/- 15 % on a busy 2-core PC."""
    opt = getattr(socket, "TCP_INFO", None)
    if opt is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, opt, 232)
    except OSError:
        return None
    off = _TCPI_BYTES_ACKED if upload else _TCPI_BYTES_RECEIVED
    if len(info) < off + 8:
        return None
    return struct.unpack_from("=Q", info, off)[0]


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

"""Host inventory with psutil: what this computer is (CPU, RAM, disk, OS, boot time) and
how its network cards are doing (link speed, errors, drops). Local reads only."""
from __future__ import annotations

import platform
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from linewatch.wire import format_time

from .probes import Result


def parse_os_release(text: str) -> dict[str, str]:
    """/etc/os-release (KEY="value" lines)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def parse_cpu_model(cpuinfo: str) -> str | None:
    """x86 says 'model name'; a Raspberry Pi says 'Model' (the board) or only 'Hardware'."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    for key in ("model name", "model", "hardware", "processor", "cpu model"):
        v = fields.get(key)
        if v and not v.isdigit():
            return v
    return None


def os_name_version() -> tuple[str, str]:
    system = platform.system()
    if system == "Linux":
        try:
            rel = parse_os_release(Path("/etc/os-release").read_text())
        except OSError:
            rel = {}
        return rel.get("PRETTY_NAME") or rel.get("NAME") or "Linux", f"Linux {platform.release()}"
    if system == "Windows":
        return f"Windows {platform.release()}", platform.version()
    return system or "unknown", platform.release()


def cpu_model() -> str | None:
    try:
        return parse_cpu_model(Path("/proc/cpuinfo").read_text())
    except OSError:
        return platform.processor() or None


def interfaces() -> list[dict[str, Any]]:
    import psutil

    stats = psutil.net_if_stats()
    addrs = psutil.net_if_addrs()
    io = psutil.net_io_counters(pernic=True)
    out = []
    for name in sorted(set(stats) | set(addrs)):
        st, c = stats.get(name), io.get(name)
        entry: dict[str, Any] = {"name": name[:64], "is_up": bool(st and st.isup)}
        mac = next((a.address for a in addrs.get(name, []) if a.family == psutil.AF_LINK), None)
        if mac and mac != "00:00:00:00:00:00":
            entry["mac"] = mac.lower().replace("-", ":")
        ipv4 = [a.address for a in addrs.get(name, []) if a.family == socket.AF_INET]
        if ipv4:
            entry["ipv4"] = ipv4[:16]
        if st:
            if st.speed > 0:  # 0: unknown (virtual, Wi-Fi, or cable unplugged)
                entry["link_speed_mbps"] = st.speed
            entry["mtu"] = st.mtu
        if c:
            entry.update(rx_bytes=c.bytes_recv, tx_bytes=c.bytes_sent, rx_errors=c.errin, tx_errors=c.errout,
                         rx_drops=c.dropin, tx_drops=c.dropout)
        out.append(entry)
    return out[:64]


def collect(disk_path: str = "/") -> Result:
    import psutil

    os_name, os_version = os_name_version()
    disk = psutil.disk_usage(disk_path)
    data: dict[str, Any] = {
        "hostname": socket.gethostname()[:128],
        "os_name": os_name[:128],
        "os_version": os_version[:256],
        "machine": platform.machine()[:32] or None,
        "cpu_model": (cpu_model() or "")[:256] or None,
        "cpu_cores": psutil.cpu_count(logical=False),
        "cpu_threads": psutil.cpu_count(logical=True),
        "ram_total_mb": round(psutil.virtual_memory().total / 2**20),
        "disk_mount": disk_path,
        "disk_total_gb": round(disk.total / 1e9, 2),
        "disk_free_gb": round(disk.free / 1e9, 2),
        "boot_time": format_time(datetime.fromtimestamp(psutil.boot_time(), timezone.utc)),
        "interfaces": interfaces(),
    }
    return Result("inventory", None, {k: v for k, v in data.items() if v is not None})

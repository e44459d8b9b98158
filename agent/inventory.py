"""Host inventory with psutil: what this computer is (CPU, RAM, disk, OS, boot time), whether
it counts as one of the office's computers, and how its network cards are doing (link speed,
errors, drops). Local reads only."""
from __future__ import annotations

import platform
import socket
from dataclasses import dataclass
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


ARM_MACHINES = ("aarch64", "arm64", "armv7l", "armv6l", "armhf", "arm")
# /sys/class/dmi/id/chassis_type (SMBIOS 3.x, 7.4.1)
LAPTOP_CHASSIS = frozenset({8, 9, 10, 11, 14, 30, 31, 32})
DESKTOP_CHASSIS = frozenset({3, 4, 5, 6, 7, 13, 15, 16, 24, 34, 35, 36})
SERVER_CHASSIS = frozenset({17, 23, 25, 28, 29})
VIRTUAL_PRODUCTS = ("virtualbox", "vmware", "kvm", "qemu", "bochs", "virtual machine", "hvm domu", "xen",
                    "standard pc (", "openstack", "google compute engine", "amazon ec2", "parallels")


@dataclass(frozen=True)
class HostFacts:
    """What this computer says about itself, read by :func:`host_facts`."""
    system: str                     # platform.system(): Linux, Windows, Darwin
    machine: str                    # platform.machine(): x86_64, AMD64, aarch64, ...
    board: str | None = None        # /proc/cpuinfo or device-tree model ("Raspberry Pi 4 Model B Rev 1.4")
    chassis_type: int | None = None  # DMI chassis type
    product: str | None = None      # DMI vendor + product name
    hypervisor: bool = False        # Linux: the CPU runs under a hypervisor (a guest)
    battery: bool | None = None     # a battery is fitted (None: cannot tell)


def judge_computer(f: HostFacts) -> tuple[bool, str, str]:
    """(counted as a computer, kind, why) -- the agent's own word on its computer, which the
    collector counts as one of the office's computers when it says so. Not counted: a
    single-board computer on ARM Linux (a Raspberry Pi is the probe box, not a staff PC), a
    virtual machine (its host PC answers the LAN sweep itself), a server."""
    arm = f.machine.lower() in ARM_MACHINES
    what = f"{f.machine} {f.system}".strip()
    if arm and f.system == "Linux":
        return False, "single_board", f"{f.board or 'ARM single-board computer'}: a probe box, not a staff computer"
    product = (f.product or "").lower()
    if any(v in product for v in VIRTUAL_PRODUCTS) or (f.system == "Linux" and f.hypervisor):
        return False, "virtual_machine", (f"virtual machine ({f.product or 'hypervisor flag'}): its host computer "
                                          f"answers the LAN sweep itself")
    if f.chassis_type in SERVER_CHASSIS:
        return False, "server", f"{what} server (chassis type {f.chassis_type}), not a staff computer"
    if f.chassis_type in LAPTOP_CHASSIS or (f.chassis_type not in DESKTOP_CHASSIS and f.battery):
        return True, "laptop", f"{what} laptop" + (f" (chassis type {f.chassis_type})" if f.chassis_type else
                                                     " (has a battery)")
    return True, "desktop", f"{what} desktop" + (f" (chassis type {f.chassis_type})" if f.chassis_type else "")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip("\x00 \n") or None
    except OSError:
        return None


def host_facts() -> HostFacts:
    system, machine = platform.system(), platform.machine()
    board = _read("/proc/device-tree/model") or (cpu_model() if machine.lower() in ARM_MACHINES else None)
    chassis = _read("/sys/class/dmi/id/chassis_type")
    product = " ".join(p for p in (_read("/sys/class/dmi/id/sys_vendor"), _read("/sys/class/dmi/id/product_name"))
                       if p) or None
    cpuinfo = _read("/proc/cpuinfo") or ""
    hypervisor = any(line.startswith("flags") and " hypervisor" in line for line in cpuinfo.splitlines())
    battery = None
    try:
        import psutil
        battery = psutil.sensors_battery() is not None if hasattr(psutil, "sensors_battery") else None
    except (ImportError, OSError, RuntimeError):
        pass
    return HostFacts(system, machine, board, int(chassis) if chassis and chassis.isdigit() else None, product,
                     hypervisor, battery)


def this_computer(override: bool | None = None) -> dict[str, Any]:
    """The fields both the inventory and the lan summary carry about this computer.
    ``override``: the admin's word ([agent] counted_as_computer), which wins over the judgement."""
    counted, kind, why = judge_computer(host_facts())
    if override is not None and override != counted:
        counted, why = override, f"set in agent.toml (counted_as_computer = {'yes' if override else 'no'}); " \
                                 f"the agent had judged: {why}"
    return {"counted_as_computer": counted, "computer_kind": kind, "computer_why": why[:200]}


def collect(disk_path: str = "/", counted_as_computer: bool | None = None) -> Result:
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
        **this_computer(counted_as_computer),
    }
    return Result("inventory", None, {k: v for k, v in data.items() if v is not None})

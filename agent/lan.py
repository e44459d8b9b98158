"""The agent's LAN discovery job: plan subnets, run one sweep in a child process (scapy
stays out of the idle agent), diff against the remembered hosts and publish a summary with
the changes only. The remembered hosts live in state_dir/lan-state.json, so a restart does
not announce the whole office again."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from linewatch.wire import Code, format_time, utc_now

from .config import LanConfig
from .discovery import state as sweep_state
from .discovery.subnets import IfAddr, SweepTarget, plan
from .inventory import this_computer
from .probes import Result

log = logging.getLogger("linewatch.agent.lan")


def local_addresses() -> list[IfAddr]:
    import psutil
    import socket

    stats = psutil.net_if_stats()
    out = []
    for name, addrs in psutil.net_if_addrs().items():
        st = stats.get(name)
        for a in addrs:
            if a.family == socket.AF_INET and a.netmask:
                out.append(IfAddr(name, a.address, a.netmask, is_up=bool(st and st.isup),
                                  is_loopback=name == "lo" or a.address.startswith("127.")))
    return out


def own_identity(addrs: list[IfAddr]) -> dict[str, list[str]]:
    """This computer's MACs and IPv4 addresses, which a sweep never reports as another host:
    this computer is counted once, as itself (``this_computer``). A guard: Linux does not
    answer an ARP request sent from its own address, even on a second card on the same LAN."""
    macs: list[str] = []
    try:
        import psutil

        for nic in psutil.net_if_addrs().values():
            macs += [a.address.lower().replace("-", ":") for a in nic if a.family == psutil.AF_LINK and a.address]
    except (ImportError, OSError):
        pass
    return {"macs": sorted(set(m for m in macs if m != "00:00:00:00:00:00")),
            "ips": sorted({a.address for a in addrs})}


def child_timeout(targets: list[SweepTarget], cfg: LanConfig) -> float:
    addresses = sum(t.network.num_addresses for t in targets)
    return addresses / cfg.rate_pps * 2 + cfg.timeout_s * len(targets) + 60


def sweep_child(spec: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    r = subprocess.run([sys.executable, "-m", "linewatch.agent.discovery.sweep", json.dumps(spec)],
                       capture_output=True, text=True, timeout=timeout_s)
    try:
        out = json.loads(r.stdout)
    except ValueError:
        raise RuntimeError(f"sweep process failed (exit {r.returncode}): {r.stderr.strip()[-400:]}") from None
    if "error" in out:
        raise RuntimeError(out["error"])
    return out


def run_sweep(targets: list[SweepTarget], cfg: LanConfig, own: dict[str, list[str]] | None = None,
              counted_as_computer: bool | None = None) -> dict[str, Any]:
    """One sweep in a child process; the result says, beside the hosts, what this computer is
    (``this_computer``: counted as a computer or not, and why) and a note saying it."""
    if own is None:
        own = own_identity(local_addresses())
    # "ports": the TCP port probe of unsure hosts (discovery/probe.py), off unless [lan]
    # probe_ports = true: connects to 445/3389 can look like a port scan to endpoint security.
    spec = {"targets": [{"cidr": t.cidr, "interface": t.interface, "source": t.source} for t in targets],
            "rate_pps": cfg.rate_pps, "timeout_s": cfg.timeout_s, "method": cfg.method, "names": cfg.names,
            "ports": cfg.probe_ports, "own": own}
    out = sweep_child(spec, child_timeout(targets, cfg))
    me = out["this_computer"] = this_computer(counted_as_computer)
    out["notes"] = [f"this computer: {'counted as a computer' if me['counted_as_computer'] else 'not counted'}"
                    f" -- {me['computer_why']}"] + list(out.get("notes") or [])
    return out


class LanJob:
    def __init__(self, cfg: LanConfig, state_dir: Path,
                 addresses: Callable[[], list[IfAddr]] = local_addresses, counted_as_computer: bool | None = None):
        self.cfg = cfg
        self.counted_as_computer = counted_as_computer
        self.addresses = addresses
        self.state_path = state_dir / "lan-state.json"
        state_dir.mkdir(parents=True, exist_ok=True)
        self.state = sweep_state.load(self.state_path)

    def __call__(self, record: Callable[[Result], object]) -> None:
        cfg = self.cfg
        addrs = self.addresses()
        targets, skipped = plan(addrs, list(cfg.subnets), max_prefix=cfg.max_prefix,
                                allow_wide=cfg.allow_wide, interfaces=list(cfg.interfaces) or None)
        base: dict[str, Any] = {"subnets": [{"cidr": t.cidr, "interface": t.interface} for t in targets],
                                "missed_sweeps_before_gone": cfg.missed_sweeps_before_gone}
        if skipped:
            base["skipped"] = [{"what": s.what[:64], "reason": s.reason[:200]} for s in skipped][:32]
        measured_at = utc_now()
        if not targets:
            record(Result("lan", None, {**base, "method": "none"}, ok=False, error_code=Code.NO_SUBNET,
                          error="no office subnet to sweep: " + "; ".join(f"{s.what}: {s.reason}" for s in skipped)[:900]
                          if skipped else "this computer has no IPv4 LAN address", measured_at=measured_at))
            return
        try:
            out = run_sweep(targets, cfg, own_identity(addrs), self.counted_as_computer)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            # Not a sweep that saw nobody: it must not count as a miss for any host.
            record(Result("lan", None, {**base, "method": "none"}, ok=False, error_code=Code.SWEEP_FAILED,
                          error=str(e)[:900], measured_at=measured_at))
            return
        new, changes = sweep_state.apply_sweep(self.state, out["hosts"], format_time(measured_at),
                                               cfg.missed_sweeps_before_gone)
        by_class = Counter(k.device_class for k in new.hosts.values())
        me = out["this_computer"]
        # computers: the hosts found that are surely computers, plus this one when it counts
        data = {**base, "method": out["method"], "sweep_no": new.sweeps, "sweep_s": out["sweep_s"],
                "hosts_seen": len(out["hosts"]), "hosts_known": len(new.hosts), "by_class": dict(by_class),
                "computers": by_class.get("computer", 0) + int(me["counted_as_computer"]), **me,
                "appeared": [k.wire() for k in changes.appeared] + [k.wire(update=True) for k in changes.updated],
                "gone": [k.wire() for k in changes.gone]}
        if missing := sorted(m for m, k in new.hosts.items() if k.missed):
            data["missing"] = missing  # lets the collector keep last_seen right for everyone else
        if out.get("notes"):
            data["notes"] = [n[:300] for n in out["notes"]][:20]
        # Recorded (durably, in the outbox) before the state is saved: a crash in between
        # re-announces some hosts, which the collector takes idempotently; never loses one.
        record(Result("lan", None, data, measured_at=measured_at))
        sweep_state.save(self.state_path, new)
        self.state = new
        log.info("LAN sweep %d (%s): %d hosts, %d appeared, %d updated, %d gone", new.sweeps, out["method"],
                 len(out["hosts"]), len(changes.appeared), len(changes.updated), len(changes.gone))


def agent_jobs(cfg) -> list[tuple[str, float, Callable[[Callable[[Result], object]], None]]]:
    """Per-agent jobs (not per line) for the runner's scheduler: (name, interval_s, job)."""
    jobs: list[tuple[str, float, Callable[[Callable[[Result], object]], None]]] = []
    if cfg.lan is not None:
        jobs.append(("lan", cfg.lan.interval_s,
                     LanJob(cfg.lan, cfg.state_dir, counted_as_computer=cfg.counted_as_computer)))
    if cfg.inventory is not None:
        from .inventory import collect
        jobs.append(("inventory", cfg.inventory.interval_s,
                     lambda record: record(collect(counted_as_computer=cfg.counted_as_computer))))
    return jobs

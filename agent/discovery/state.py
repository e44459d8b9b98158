"""What the agent remembers between sweeps (a JSON file in its state_dir), and the pure
diff that turns a new sweep into changes: a host *appears* the first time its MAC is seen,
and is *gone* after ``missed_before_gone`` sweeps in a row without it (one missed sweep
is normal: a PC asleep for a minute, a phone's Wi-Fi power saving).

The evidence about a host (names, TTL, NetBIOS answer, open ports) is kept across sweeps: a
later sweep in which a PC's name lookup timed out or its ping was lost does not make it less
certain. Its class is worked out again from everything known; when that (or its name)
changes, the host is *updated* -- announced again with ``update: true``, not a new device."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from . import classify, oui


@dataclass(frozen=True)
class Known:
    mac: str
    ip: str
    vendor: str | None
    name: str | None
    device_class: str
    first_seen: str  # ISO UTC
    last_seen: str
    missed: int = 0  # sweeps in a row without this host
    evidence: str | None = None
    netbios: str | None = None
    ttl: int | None = None
    ports: list[int] | None = None
    gateway: bool = False

    def wire(self, update: bool = False) -> dict[str, Any]:
        """The host entry of a lan message (see linewatch.wire.check_lan_host)."""
        d: dict[str, Any] = {"ip": self.ip, "mac": self.mac, "device_class": self.device_class,
                             "first_seen": self.first_seen, "last_seen": self.last_seen}
        if self.vendor:
            d["vendor"] = self.vendor[:128]
        if self.name:
            d["name"] = self.name[:255]
        if self.evidence:
            d["evidence"] = self.evidence[:classify.MAX_EVIDENCE]
        if update:
            d["update"] = True
        return d


def reclassify(k: Known) -> Known:
    vendor = k.vendor if k.vendor and not k.vendor.startswith("(") else None
    cls, evidence = classify.classify(classify.Evidence(
        vendor, tuple(n for n in (k.name, k.netbios) if n), oui.is_locally_administered(k.mac), k.gateway, k.ttl,
        k.netbios is not None, frozenset(k.ports or ())))
    return replace(k, device_class=cls, evidence=evidence)


@dataclass(frozen=True)
class SweepState:
    sweeps: int = 0
    hosts: dict[str, Known] = field(default_factory=dict)  # by MAC: addresses change with DHCP


@dataclass(frozen=True)
class Changes:
    appeared: list[Known]
    gone: list[Known]
    updated: list[Known] = field(default_factory=list)  # known hosts whose class or name changed


def apply_sweep(state: SweepState, found: list[dict[str, Any]], now: str, missed_before_gone: int
                ) -> tuple[SweepState, Changes]:
    """``found``: the hosts of one sweep (dicts with ip, mac, vendor, name and the evidence
    fields netbios, ttl, ports, gateway; see sweep.Host)."""
    hosts: dict[str, Known] = {}
    appeared: list[Known] = []
    updated: list[Known] = []
    gone: list[Known] = []
    seen = {h["mac"]: h for h in found}
    for mac, h in seen.items():
        old = state.hosts.get(mac)
        if old is None:
            k = reclassify(Known(mac, h["ip"], h.get("vendor"), h.get("name"), "unsure", now, now,
                                 netbios=h.get("netbios"), ttl=h.get("ttl"), ports=h.get("ports"),
                                 gateway=bool(h.get("gateway"))))
            appeared.append(k)
        else:
            # what was learnt once is kept when a later lookup times out or a ping is lost
            k = reclassify(replace(old, ip=h["ip"], vendor=h.get("vendor") or old.vendor,
                                   name=h.get("name") or old.name, netbios=h.get("netbios") or old.netbios,
                                   ttl=h.get("ttl") if h.get("ttl") is not None else old.ttl,
                                   ports=h.get("ports") if h.get("ports") is not None else old.ports,
                                   gateway=bool(h.get("gateway")), last_seen=now, missed=0))
            if (k.device_class, k.name) != (old.device_class, old.name):
                updated.append(k)
        hosts[mac] = k
    for mac, old in state.hosts.items():
        if mac in seen:
            continue
        k = replace(old, missed=old.missed + 1)
        if k.missed >= missed_before_gone:
            gone.append(k)
        else:
            hosts[mac] = k
    return SweepState(state.sweeps + 1, hosts), Changes(appeared, gone, updated)


def load(path: Path) -> SweepState:
    try:
        doc = json.loads(path.read_text())
        return SweepState(int(doc["sweeps"]), {m: Known(**h) for m, h in doc["hosts"].items()})
    except FileNotFoundError:
        return SweepState()
    except (ValueError, KeyError, TypeError):
        # A damaged file costs one round of "appeared" messages, never a crash loop.
        path.rename(path.with_suffix(".damaged"))
        return SweepState()


def save(path: Path, state: SweepState) -> None:
    """Atomic: write, fsync, rename -- a power cut leaves the old or the new file."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        json.dump({"sweeps": state.sweeps, "hosts": {m: asdict(k) for m, k in state.hosts.items()}}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)

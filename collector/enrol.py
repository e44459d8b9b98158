"""Enrolling a commune's agent: the complete agent.toml from the registry's site and lines, a
new broker password, the ACL and password file updated for the broker to reload. The config
written is checked by the agent's own ``check-config`` before anything is written."""
from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from linewatch import wire
from linewatch.config import ConfigError

from .registry import Registry, Site
from .security import CA_CERT, PASSWORD_FILE, TLS_PORT, PasswordFile, new_password, write_acl


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def agent_toml_text(site: Site, agent_id: str, broker_host: str, broker_port: int, install_dir: Path,
                    state_dir: str, binds: dict[str, str], targets: dict[str, list[str]]) -> str:
    """A complete agent config for one commune, from the registry's site and lines."""
    lines = [
        f"# linewatch agent config for {site.code} {site.name}",
        "# Made by `linewatch-collector enrol`. Install on the commune PC with:",
        "#   sudo deploy/agent/install.sh agent.toml   (ca.crt and agent.password next to it)",
        "",
        "[agent]",
        f"id = {_toml_str(agent_id)}",
        f"province = {_toml_str(site.province)}",
        f"site = {_toml_str(site.code)}",
        f"state_dir = {_toml_str(state_dir)}",
        "",
        "[mqtt]                      # the province's broker, over TLS",
        f"host = {_toml_str(broker_host)}",
        f"port = {broker_port}",
        f"username = {_toml_str(agent_id)}",
        f"password_file = {_toml_str(str(install_dir / 'agent.password'))}",
        "tls = true",
        f"ca_file = {_toml_str(str(install_dir / 'ca.crt'))}   # the provincial CA: only its broker is trusted",
        "keepalive_s = 30",
    ]
    for ln in site.lines:
        lines += ["", "[[line]]", f"id = {_toml_str(ln.id)}          # {ln.isp}, {ln.kind}"]
        bind = binds.get(ln.id)
        if bind:
            try:
                ipaddress.ip_address(bind)
                lines.append(f"source_address = {_toml_str(bind)}")
            except ValueError:
                lines.append(f"interface = {_toml_str(bind)}")
        t = targets.get(ln.id)
        if not t:
            t = (["1.1.1.1", "tcp:dichvucong.gov.vn:443"] if ln.kind == "internet"
                 else [f"tcp:{broker_host}:{broker_port}"])  # the provincial server is inside the TSLCD network
        lines += ["  [line.latency]",
                  f"  targets = [{', '.join(_toml_str(x) for x in t)}]",
                  "  interval_s = 300"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Enrolled:
    agent_id: str
    site: Site
    out_dir: Path
    agent_toml: Path
    password_file: Path
    ca_cert: Path
    acl_file: Path
    replaced: bool


def _parse_pairs(pairs: list[str], what: str, site: Site) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in pairs:
        line_id, sep, value = p.partition("=")
        if not sep or not value:
            raise ConfigError(f"--{what} {p!r}: write LINE=VALUE, e.g. --{what} {site.lines[0].id if site.lines else 'fiber'}=...")
        if site.line(line_id) is None:
            raise ConfigError(f"--{what} {p!r}: site {site.code} has no line {line_id!r} in the registry "
                              f"(lines: {', '.join(l.id for l in site.lines)})")
        out.setdefault(line_id, []).append(value)
    return out


def enrol(registry: Registry, *, site_code: str, agent_id: str, broker_host: str, broker_dir: Path,
          out_dir: Path, collector_user: str | None, broker_port: int = TLS_PORT,
          install_dir: Path = Path("/etc/linewatch"), state_dir: str = "/var/lib/linewatch-agent",
          bind: list[str] = (), target: list[str] = (), replace: bool = False) -> Enrolled:
    """Credentials, ACL and a ready config for one agent. Refuses (ConfigError with what to
    do) rather than guessing; nothing is written until every check has passed."""
    site = registry.site(site_code)
    if site is None:
        raise ConfigError(f"site {site_code} is not in the registry {registry.source}: add its [[site]] block "
                          f"(code, province, name, lines) first")
    if not wire.ID_RE.match(agent_id):
        raise ConfigError(f"agent id {agent_id!r} must be lower-case letters, digits, '-', '_' or '.', "
                          f"e.g. ag-{site_code}-01")
    if agent_id not in site.agents:
        owner = next((s.code for s in registry.sites.values() if agent_id in s.agents), None)
        if owner:
            raise ConfigError(f"agent {agent_id} is listed under site {owner} in {registry.source}, not {site_code}")
        listed = ", ".join(f'"{a}"' for a in (*site.agents, agent_id))
        raise ConfigError(
            f"agent {agent_id} is not listed for site {site_code} in {registry.source}.\n"
            f"  The registry decides which agent may write for which commune (Mosquitto ACL and collector), "
            f"so add it there first. In the [[site]] block with code = \"{site_code}\" write:\n"
            f"      agents = [{listed}]\n"
            f"  then check it (linewatch-collector check-config) and run this command again.\n"
            f"  (Thêm {agent_id} vào danh sách agents của đơn vị {site_code} trong registry.toml rồi chạy lại.)")
    binds = {k: v[-1] for k, v in _parse_pairs(list(bind), "bind", site).items()}
    targets = _parse_pairs(list(target), "target", site)
    unbound = [ln.id for ln in site.lines if ln.id not in binds]
    if len(site.lines) > 1 and unbound:
        raise ConfigError(
            f"site {site_code} has {len(site.lines)} lines, so the agent must know how each one leaves the "
            f"commune PC; missing for: {', '.join(unbound)}.\n"
            f"  Add --bind LINE=ADDRESS (the address the line's modem gave the PC) or --bind LINE=INTERFACE, e.g. "
            + " ".join(f"--bind {ln.id}={'192.168.1.10' if i == 0 else 'eth1'}" for i, ln in enumerate(site.lines))
            + "\n  (Ask the commune to run `ip -br addr` on the PC.)")
    if not wire.PROVINCE_RE.match(site.province) or not broker_host:
        raise ConfigError("--broker-host is required: the name agents use to reach this broker")
    broker_dir = Path(broker_dir)
    ca_cert = broker_dir / CA_CERT
    if not ca_cert.exists():
        raise ConfigError(f"{ca_cert} does not exist: create the provincial CA and the broker certificate "
                          f"first with `linewatch-collector init-ca --host {broker_host}`")
    pw = PasswordFile(broker_dir / PASSWORD_FILE)
    existed = agent_id in pw.users()
    if existed and not replace:
        raise ConfigError(f"agent {agent_id} already has a broker password in {pw.path}. Enrolling again gives it "
                          f"a new password and the PC running it now will be locked out until it gets the new "
                          f"files. If that is what you want (lost PC, leaked password), add --replace.")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not replace:
        raise ConfigError(f"{out_dir} exists and is not empty: choose a new --out folder")
    password = new_password()
    text = agent_toml_text(site, agent_id, broker_host, broker_port, Path(install_dir), state_dir, binds, targets)
    _check_agent_config(text, password, ca_cert)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out_dir, 0o700)
    (out_dir / "agent.toml").write_text(text)
    pwd_path = out_dir / "agent.password"
    fd = os.open(pwd_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    shutil.copyfile(ca_cert, out_dir / "ca.crt")
    pw.set(agent_id, password)
    pw.save()
    acl = write_acl(registry, broker_dir, collector_user)
    return Enrolled(agent_id, site, out_dir, out_dir / "agent.toml", pwd_path, out_dir / "ca.crt", acl, existed)


def _check_agent_config(text: str, password: str, ca_cert: Path) -> None:
    """Have the agent itself check the config this would write (``linewatch-agent check-config``,
    as a separate process: the collector does not import the agent's code -- each side of the
    wire owns its own)."""
    with tempfile.TemporaryDirectory(prefix="lw-enrol-check-") as d:
        folder = Path(d)
        (folder / "agent.password").write_text(password + "\n")
        shutil.copyfile(ca_cert, folder / "ca.crt")
        doc = tomllib.loads(text)
        path = folder / "agent.toml"
        path.write_text(_retarget(text, doc, folder))
        p = subprocess.run([sys.executable, "-m", "linewatch.agent.cli", "-c", str(path), "check-config"],
                           capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        why = (p.stderr.strip().splitlines() or ["(no reason given)"])[-1]
        why = why.removeprefix("linewatch-agent: config error: ").replace(str(path), "agent.toml")
        raise ConfigError(f"the agent config this would write is not valid: {why}")


def _retarget(text: str, doc: dict, folder: Path) -> str:
    """The same config with its password and CA files pointing into ``folder``."""
    for key, name in (("password_file", "agent.password"), ("ca_file", "ca.crt")):
        text = text.replace(f"{key} = {_toml_str(doc['mqtt'][key])}", f"{key} = {_toml_str(str(folder / name))}")
    return text
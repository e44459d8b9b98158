"""A province in network namespaces, every part real: the provincial data centre (``dc``:
mosquitto, the collector process, an SMTP server), an operator's network (``isp``, a router
we can blackhole or shape) and commune offices, each running the real agent.

    office i --fiber (10.N.(10+i).0/24)--> isp --uplink (10.N.1.0/24)--> dc (10.N.1.1)
    office i --tslcd (10.N.(100+i).0/24)-------------------------------> dc (optional)

An office with a TSLCD line talks MQTT over it (the DC is on the closed network), so when
its fiber dies the agent still reports; an office with fiber only goes silent with it.
A cut is an nftables rule in ``isp`` dropping what it would forward for that office: the
ISP's router still answers (it stands for the office's modem, the line's gateway).
"""
from __future__ import annotations

import email
import email.policy
import os
import pwd
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import MOSQUITTO, ROOT
from linklab import IP, Lab

SMTP_PORT, HTTP_PORT, MQTT_PORT, SPEED_PORT = 2525, 8470, 1883, 8090


@dataclass
class Office:
    i: int
    site: str
    ns: str
    fiber_if: str  # the isp side of the office's fiber veth
    broker: str
    tslcd: bool
    agent: subprocess.Popen | None = None
    isp: str = "VNPT"  # the fiber's operator: registry isp, operator "<isp> NOC" <noc@<isp>.example>


class ProvinceLab:
    def __init__(self, lab: Lab, *, contracted_down: float = 100, contracted_up: float = 100,
                 incidents: str = "", collector_extra: str = "", notify_extra: str = ""):
        self.lab, self.tmp = lab, lab.tmp
        self.dc, self.isp = lab.ns("dc"), lab.ns("isp")
        lab.link(self.isp, self.dc, 1, tag="u")
        lab.run(self.isp, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        lab.run(self.dc, IP, "route", "add", f"10.{lab.net}.0.0/16", "via", lab.addr(1, 2))
        self.offices: list[Office] = []
        self.contracted = (contracted_down, contracted_up)
        self.incidents_extra = incidents
        self.collector_extra = collector_extra
        self.notify_extra = notify_extra  # more keys of [notify], e.g. "max_per_hour = 100\n"
        self.mail_dir = self.tmp / "mail"
        self.collector: subprocess.Popen | None = None
        self.smtp: subprocess.Popen | None = None
        self._cuts: set[int] = set()

    @property
    def dc_addr(self) -> str:
        return self.lab.addr(1, 1)

    # -- building --------------------------------------------------------------------------
    def office(self, tslcd: bool = True, isp: str = "VNPT") -> Office:
        i = len(self.offices)
        ns = self.lab.ns(f"o{i}")
        _, isp_if = self.lab.link(ns, self.isp, 10 + i, tag=f"f{i}")
        self.lab.run(ns, IP, "route", "add", "default", "via", self.lab.addr(10 + i, 1))
        broker = self.dc_addr
        if tslcd:
            self.lab.link(ns, self.dc, 100 + i, tag=f"t{i}")
            broker = self.lab.addr(100 + i, 1)
        o = Office(i, f"{21583 + i}", ns, isp_if, broker, tslcd, isp=isp)
        self.offices.append(o)
        return o

    def registry(self) -> Path:
        down, up = self.contracted
        out = ['[it_office]\nname = "Sở KH&CN"\nemail = "it@tinh.example"\n']
        for o in self.offices:
            out.append(textwrap.dedent(f"""
                [[site]]
                code = "{o.site}"
                province = "52"
                name = "UBND xã Thử Nghiệm {o.i}"
                  [[site.line]]
                  id = "fiber"
                  isp = "{o.isp}"
                  kind = "internet"
                  contracted_down_mbps = {down}
                  contracted_up_mbps = {up}
                    [site.line.operator]
                    name = "{o.isp} NOC"
                    email = "noc@{o.isp.lower()}.example"
                """))
            if o.tslcd:
                out.append(textwrap.dedent("""\
                      [[site.line]]
                      id = "tslcd"
                      isp = "VNPT"
                      kind = "tslcd"
                      contracted_down_mbps = 200
                      contracted_up_mbps = 200
                        [site.line.operator]
                        email = "tslcd@vnpt.example"
                    """))
        path = self.tmp / "registry.toml"
        path.write_text("".join(out))
        return path

    def start_dc(self) -> None:
        conf = self.tmp / "mosquitto.conf"
        conf.write_text(textwrap.dedent(f"""\
            user {pwd.getpwuid(os.getuid()).pw_name}
            persistence true
            persistence_location {self.tmp}/
            log_dest stdout
            max_queued_messages 100000
            listener {MQTT_PORT} 0.0.0.0
            allow_anonymous true
            """))
        self.lab.spawn(self.dc, MOSQUITTO, "-c", str(conf), log="mosquitto.log")
        self.lab.wait_port(self.dc, "127.0.0.1", MQTT_PORT)
        self.start_smtp()
        (self.tmp / "collector.toml").write_text(textwrap.dedent(f"""\
            registry = "{self.registry()}"
            record = "{self.tmp / 'record.sqlite3'}"
            [mqtt]
            host = "127.0.0.1"
            port = {MQTT_PORT}
            client_id = "collector-lab"
            [status]
            offline_after_s = 30
            [incidents]
            resolve_hold_s = 15
            group_wait_s = 5
            refine_wait_s = 10
            it_office_copy = "none"
            """) + textwrap.dedent(self.incidents_extra) + textwrap.dedent(f"""\
            [notify]
            smtp_host = "127.0.0.1"
            smtp_port = {SMTP_PORT}
            from_addr = "linewatch@tinh.example"
            public_url = "http://127.0.0.1:{HTTP_PORT}"
            secret_file = "{self.tmp / 'notify.secret'}"
            """) + textwrap.dedent(self.notify_extra) + textwrap.dedent(f"""\
            [http]
            listen = "127.0.0.1"
            port = {HTTP_PORT}
            """) + textwrap.dedent(self.collector_extra))
        self.start_collector()

    def start_collector(self) -> None:
        self.collector = self.lab.spawn(self.dc, sys.executable, "-m", "linewatch.collector.cli", "-c",
                                        str(self.tmp / "collector.toml"), "run", log="collector.log")
        self.lab.wait_port(self.dc, "127.0.0.1", HTTP_PORT, timeout=20)

    def start_smtp(self) -> None:
        self.smtp = self.lab.spawn(self.dc, sys.executable, str(ROOT / "tests" / "smtpsink.py"), "127.0.0.1",
                                   str(SMTP_PORT), str(self.mail_dir), log="smtp.log")
        self.lab.wait_port(self.dc, "127.0.0.1", SMTP_PORT)

    def stop_smtp(self) -> None:
        if self.smtp and self.smtp.poll() is None:
            self.smtp.kill()
            self.smtp.wait()

    def agent_config(self, o: Office, *, bandwidth: bool = False, latency_s: float = 5,
                     bandwidth_every_s: float | None = None) -> Path:
        lab = self.lab
        text = textwrap.dedent(f"""\
            [agent]
            id = "ag-{o.site}"
            province = "52"
            site = "{o.site}"
            state_dir = "{self.tmp / ('state-' + o.site)}"
            [mqtt]
            host = "{o.broker}"
            port = {MQTT_PORT}
            keepalive_s = 5
            [schedule]
            heartbeat_s = 10
            [outbox]
            drain_rate_per_s = 0
            [inventory]
            enabled = false
            [[line]]
            id = "fiber"
            source_address = "{lab.addr(10 + o.i, 2)}"
            [line.reach]
            target = "{self.dc_addr}"
            interval_s = 1
            timeout_s = 0.8
            down_after = 3
            up_after = 2
            gateway = "{lab.addr(10 + o.i, 1)}"
            [line.latency]
            targets = ["{self.dc_addr}"]
            interval_s = {latency_s}
            count = 10
            spacing_ms = 20
            timeout_s = 1
            """)
        if bandwidth:
            text += textwrap.dedent(f"""\
                [line.bandwidth]
                method = "linewatch"
                target = "http://{self.dc_addr}:{SPEED_PORT}"
                window = "{'' if bandwidth_every_s else '00:00-00:01'}"
                interval_s = {bandwidth_every_s or 60}
                max_duration_s = 6
                warmup_s = 1
                monthly_budget_mb = 100000
                """)
        if o.tslcd:
            text += textwrap.dedent(f"""\
                [[line]]
                id = "tslcd"
                source_address = "{lab.addr(100 + o.i, 2)}"
                [line.reach]
                target = "{lab.addr(100 + o.i, 1)}"
                interval_s = 2
                gateway = "none"
                """)
        path = self.tmp / f"agent-{o.site}.toml"
        path.write_text(text)
        return path

    def start_agent(self, o: Office, **kw) -> None:
        cfg = self.agent_config(o, **kw)
        o.agent = self.lab.spawn(o.ns, sys.executable, "-m", "linewatch.agent.cli", "-c", str(cfg), "run",
                                 log=f"agent-{o.site}.log")

    # -- faults -----------------------------------------------------------------------------
    def cut(self, offices: list[Office]) -> None:
        """Blackhole the fiber of these offices inside the operator's network."""
        self._cuts |= {o.i for o in offices}
        self._apply_cuts()

    def heal(self, offices: list[Office] | None = None) -> None:
        self._cuts -= {o.i for o in (offices or self.offices)}
        self._apply_cuts()

    def _apply_cuts(self) -> None:
        self.lab.run(self.isp, "nft", "delete", "table", "inet", "lwcut", check=False)
        if not self._cuts:
            return
        ifs = ", ".join(f'"{self.offices[i].fiber_if}"' for i in sorted(self._cuts))
        self.lab.nft(self.isp, f"""\
            table inet lwcut {{
              chain blackhole {{ type filter hook forward priority 0; policy accept;
                iifname {{ {ifs} }} drop
                oifname {{ {ifs} }} drop
              }}
            }}
            """)

    def loss(self, o: Office, pct: int) -> None:
        """Random loss on the office's fiber, both ways, inside the operator's network."""
        self.lab.nft(self.isp, f"""\
            table inet lwloss{o.i} {{
              chain noise {{ type filter hook forward priority 10; policy accept;
                iifname "{o.fiber_if}" numgen random mod 100 < {pct} drop
                oifname "{o.fiber_if}" numgen random mod 100 < {pct} drop
              }}
            }}
            """)

    def shape(self, o: Office, mbit: float) -> None:
        """The fiber's speed in both directions (tc tbf on both ends)."""
        self.lab.shape(self.isp, o.fiber_if, mbit)
        self.lab.shape(o.ns, o.fiber_if[:-1] + "a", mbit)

    # -- what happened ----------------------------------------------------------------------
    def mails(self) -> list[email.message.EmailMessage]:
        out = []
        for p in sorted(self.mail_dir.glob("*.eml")):
            m = email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            out.append(m)
        return out

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.lab.run(self.dc, sys.executable, "-m", "linewatch.collector.cli", "-c",
                            str(self.tmp / "collector.toml"), *args, check=False)

    def record(self):
        from linewatch.collector.record import open_record
        return open_record(self.tmp / "record.sqlite3")

    def log(self, name: str = "collector.log") -> str:
        return (self.tmp / name).read_text(errors="replace")


def wait_mail(pl: ProvinceLab, pred, timeout: float = 60, what: str = "a mail"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in pl.mails() if pred(m)]
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"no {what} within {timeout} s; mails: {[m['Subject'] for m in pl.mails()]}\n"
                         f"collector log tail:\n{pl.log()[-3000:]}")

"""A province in a test: a registry with operator contacts, a real record (SQLite or
PostgreSQL), agent messages stored through the real ingest path, and the incident engine
driven by a clock the test moves."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from linewatch import wire
from linewatch.collector import registry as registry_mod
from linewatch.collector.incidents.engine import Engine
from linewatch.collector.incidents.rules import Policy
from linewatch.collector.ingest import Incoming, Ingestor
from linewatch.collector.record import open_record


def registry_text(n_sites: int = 3, isp: str = "VNPT") -> str:
    out = ['[it_office]\nname = "Sở KH&CN"\nemail = "it@tinh.example"\n']
    for i in range(n_sites):
        code = f"{21583 + i}"
        out.append(f'''
[[site]]
code = "{code}"
province = "52"
name = "UBND xã Thử {i}"
  [[site.line]]
  id = "fiber"
  isp = "{isp}"
  kind = "internet"
  contracted_down_mbps = 100
  contracted_up_mbps = 50
    [site.line.operator]
    name = "{isp} NOC"
    email = "noc@{isp.lower()}.example"
    escalation_email = "boss@{isp.lower()}.example"
  [[site.line]]
  id = "tslcd"
  isp = "VNPT"
  kind = "tslcd"
  contracted_down_mbps = 200
  contracted_up_mbps = 200
    [site.line.operator]
    email = "tslcd@vnpt.example"
''')
    return "".join(out)


class Province:
    def __init__(self, tmp: Path, record_url: str | None = None, n_sites: int = 3, policy: Policy = Policy(),
                 isp: str = "VNPT"):
        (tmp / "registry.toml").write_text(registry_text(n_sites, isp))
        self.registry = registry_mod.load(tmp / "registry.toml")
        self.record = open_record(record_url or tmp / "record.sqlite3")
        self.ingest = Ingestor(self.record, self.registry)
        # the test's "now", moving forward only: 01:00 Vietnam time (18:00 UTC) of a day at least
        # 8 h back, so a test's few hours never reach the IT office's 07:00 daily digest whatever
        # the wall clock says (they once did, and an escalation test saw a digest it did not expect)
        self.t = (time.time() - 26 * 3600) // 86400 * 86400 + 18 * 3600
        self.seq: dict[str, int] = {}
        self.sent: list[tuple[str, bytes]] = []
        self.engine = Engine(self.record, self.registry, policy, publish=self._publish, clock=lambda: self.t)

    def _publish(self, topic: str, payload: bytes) -> bool:
        self.sent.append((topic, payload))
        return True

    def advance(self, s: float) -> None:
        self.t += s

    def send(self, kind: str, data: dict, *, site: str = "21583", line: str | None = "fiber", ok: bool = True,
             error_code: str | None = None, at: float | None = None, received: float | None = None,
             agent: str | None = None) -> None:
        agent = agent or f"ag-{site}"
        self.seq[agent] = self.seq.get(agent, 0) + 1
        m = wire.build_message(kind=kind, agent_id=agent, province="52", site=site, line=line,
                               seq=self.seq[agent], stream="abcdef0123", ok=ok, error_code=error_code,
                               error="x" if error_code else None,
                               measured_at=datetime.fromtimestamp(at if at is not None else self.t, timezone.utc),
                               data=data)
        out = self.ingest.store([Incoming(m.topic, m.to_json(), received if received is not None else self.t)])
        assert out[0].status in ("stored", "status"), out

    def status(self, state: str, site: str = "21583", at: float | None = None) -> None:
        agent = f"ag-{site}"
        m = wire.build_message(kind="status", agent_id=agent, province="52", site=site, seq=0,
                               measured_at=datetime.fromtimestamp(at or self.t, timezone.utc),
                               data={"state": state})
        self.ingest.store([Incoming(m.topic, m.to_json(), at or self.t, retained=True)])

    # -- typical measurements -------------------------------------------------------------
    def reach(self, state: str, since: float | None = None, gateway_ok: bool | None = True, **kw) -> None:
        since = since if since is not None else kw.get("at", self.t)
        data = {"method": "icmp-dgram", "target": "10.0.0.1", "state": state, "change": True,
                "since": wire.format_time(datetime.fromtimestamp(since, timezone.utc)), "interval_s": 2,
                "sent": 10, "lost": 3 if state == "down" else 0}
        if gateway_ok is not None:
            data["gateway"], data["gateway_ok"] = "192.168.1.1", gateway_ok
        code = None if state == "up" else ("line_down" if gateway_ok is not False else "gateway_unreachable")
        self.send("reach", data, ok=state == "up", error_code=code, **kw)

    def speed(self, down: float, up: float, command_id: str | None = None, nic_busy: bool | None = None,
              **kw) -> None:
        data = {"method": "linewatch", "target": "speed.tinh.example", "streams": 4, "duration_s": 8.0,
                "bytes": 10**8, "download_mbps": down, "upload_mbps": up}
        if nic_busy is not None:
            data.update(nic="eth0", nic_busy=nic_busy, nic_other_mbps=30.0 if nic_busy else 0.1)
        if command_id:
            data["command_id"] = command_id
        self.send("bandwidth", data, **kw)

    def latency(self, rtt: float = 12.0, loss: float = 0.0, **kw) -> None:
        self.send("latency", {"method": "icmp-raw", "target": "1.1.1.1", "sent": 20,
                              "received": round(20 * (1 - loss / 100)), "loss_pct": loss, "rtt_avg_ms": rtt}, **kw)

    def run(self) -> None:
        self.engine.catch_up()
        self.engine.tick()
        self.engine.send_commands()

    def retest_ids(self) -> list[str]:
        return [wire.parse_command(t, p).id for t, p in self.sent]

    def incidents(self, **kw):
        return self.record.incidents(**kw)

    def notices(self, **kw):
        return self.record.notices(**kw)

"""A month of one province in a test: synthetic but realistic agent traffic for October 2026
(Vietnam time), sent through the real ingest path, and the ground truth it was made from.

    month = monthlab.generate()                 # cached: the same Month for every test
    registry = month.registry()                 # the registry the traffic belongs to
    month.ingest(record, registry)              # live traffic, rollups, then the late backlog
                                                # (under wire_clock(): the age checks' "now" is NOW)
    exp = month.truth.site("21584")             # figures recomputed from what was sent
    exp = month.truth.line("21584", "viettel-fiber")

The schedule is smaller than production (to stay fast): per line one latency round every
1800 s (one target), 2 bandwidth tests a day, a reach summary every 1800 s (sent = 900 probes
every 2 s) plus a reach message at every state change; per agent a heartbeat every 3600 s, a
LAN sweep a day and one inventory message. Traffic starts 36 h before the month and ends 12 h
after it, so every figure has to be clipped to the month.

The units (one agent ``ag-<code>-01`` each, province "52"):

    A 21583  compliant: 2 lines (VNPT internet 150/150, VNPT TSLCD 200/200); declares its devices;
             LAN of 20 computers (one leaves mid-month), printers, a phone, an unknown device;
             a 30-minute TSLCD outage across the month's first midnight (20 minutes inside), a
             2-hour fault of the office's own gateway on the internet line (not the operator's); its
             MQTT connection down from 22:00 on 31 October to 02:00 on 1 November (offline clipped)
    B 21584  slow evenings: Viettel 100/100 whose tests at 18:00-23:00 read ~0.5 x contracted and
             ~0.9 x otherwise, one evening test a day (download mean < 0.8 x: fails; upload fine);
             a 6-hour outage (reach down/up, latency rounds lost); the agent's MQTT goes through
             that line, so the broker publishes its last will and the messages measured during
             the outage arrive with the backlog when it comes back
    C 21585  no LAN: the sweep finds only the gateway; the agent is a Raspberry Pi (aarch64), offline
             from 22:00 on 30 September to 03:00 on 1 October (3 hours of it in the month);
             declares lan = true (the measured sweep wins); reinstalled on the month's last day (a
             new stream from seq 1: counting the two streams as one would show messages missing)
    D 21586  fewer computers than staff: staff 18, the sweep finds 3 computers + 1 printer (+ the
             gateway, an unknown device; a computer gone in September is not counted); FPT
             100/100 slow in both directions; declares lan = false (the measured sweep wins); its
             PC clock ran 25 minutes ahead until chrony stepped it back on 20 October (the hour of
             the step claims more reach coverage than it has seconds: capped at 3600)
    E 21587  sequence gaps: DROPPED_E messages of its stream never sent (seq numbers skipped), among
             them the reach summaries of the middle two hours of a 3-hour outage (the down time of
             those hours counts only as far as it was observed)
    F 21588  late backfill: nothing published for 2 days (MQTT down: last will, then online),
             the backlog of those days ingested at the very end, after the rollups of the rest
    G 21589  registered, no agent message at all
    H 21590  thin: the agent starts on 27 October (too little data for any verdict)
"""
from __future__ import annotations

import contextlib
import functools
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from linewatch import wire

VN = timezone(timedelta(hours=7))
MONTH = "2026-10"
PROVINCE = "52"
PROVINCE_NAME = "Gia Lai"
START = datetime(2026, 10, 1, tzinfo=VN).timestamp()     # 2026-09-30T17:00:00Z
END = datetime(2026, 11, 1, tzinfo=VN).timestamp()       # 2026-10-31T17:00:00Z
DAYS = 31
GEN_START = START - 36 * 3600
GEN_END = END + 12 * 3600
#: The collector's clock while the month is ingested (wire refuses measurements > 120 days old).
NOW = END + 23 * 86400

LATENCY_S = 1800
REACH_S = 1800
REACH_INTERVAL_S = 2
HEARTBEAT_S = 3600
BW_PER_DAY = 2
BATCH = 500
DROPPED_E = 37


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=VN).timestamp()


def ms(t: float) -> float:
    """A time as the wire carries it (milliseconds), so truth and record see the same float."""
    return math.floor(t * 1000) / 1000


def iso(t: float) -> str:
    return wire.format_time(datetime.fromtimestamp(t, timezone.utc))


@contextlib.contextmanager
def wire_clock(now: float = NOW) -> Iterator[None]:
    """The contract's age checks (``measured_at`` not older than 120 days, not in the future)
    against a fixed "now" after the month, so the test means the same on any day it runs."""
    saved = wire.utc_now
    wire.utc_now = lambda: datetime.fromtimestamp(now, timezone.utc)
    try:
        yield
    finally:
        wire.utc_now = saved


# ----------------------------------------------------------------------------- the units
@dataclass
class LineSpec:
    id: str
    isp: str
    kind: str                   # internet | tslcd
    down: float                 # contracted Mbit/s
    up: float
    cost: float | None
    base_rtt: float
    target: str
    ratio: Callable[[random.Random, float, str], float]    # (rnd, at, "down"|"up") -> x contracted
    outages: list[tuple[float, float, str]] = field(default_factory=list)  # [start, end), error_code
    evening_test: bool = False  # one test a day in 18:00-23:00 VN, the other outside it


@dataclass
class Host:
    mac: str
    ip: str
    cls: str
    vendor: str | None = None
    since: float | None = None          # first sweep that sees it (None: from the first sweep)
    until: float | None = None          # last sweep that sees it (None: to the end)
    gone_before: tuple[float, float] | None = None  # (first_seen, last_seen) of a host gone earlier


@dataclass
class Unit:
    letter: str
    code: str
    name: str
    staff: tuple[int, int, int]
    lines: list[LineSpec]
    hosts: list[Host] = field(default_factory=list)
    machine: str | None = "x86_64"
    active: tuple[float, float] | None = (GEN_START, GEN_END)   # None: never measures
    declared_lan: bool | None = None
    devices: tuple[int, int, int] | None = None     # laptops, desktops, scanners (declared)
    software: tuple[tuple[str, float | None], ...] = ()
    proposals: str | None = None
    #: (start, end, late): the agent cannot publish; the broker's last will says offline at
    #: start + 90 s, the agent is online at end; the messages measured in between arrive at
    #: end (late = False) or only after everything else (late = True, a slow backlog)
    mqtt_gaps: list[tuple[float, float, bool]] = field(default_factory=list)
    new_stream_at: float | None = None
    drop: int = 0
    #: [start, end): messages measured in it are lost first (they were in the outbox when it overflowed)
    drop_first: tuple[float, float] | None = None
    #: (until, seconds): the agent's clock ran ahead by ``seconds`` until ``until`` (real time), when
    #: chrony stepped it back: the hour of the step holds more reach coverage than it has seconds
    clock_ahead: tuple[float, float] | None = None

    @property
    def agent(self) -> str:
        return f"ag-{self.code}-01"


def _uniform(lo: float, hi: float) -> Callable[[random.Random, float, str], float]:
    return lambda r, at, d: r.uniform(lo, hi)


def _slow_evenings(r: random.Random, at: float, d: str) -> float:
    if d == "up":
        return r.uniform(0.85, 1.0)
    h = datetime.fromtimestamp(at, VN).hour
    return r.uniform(0.45, 0.55) if 18 <= h < 23 else r.uniform(0.85, 0.95)


def units() -> list[Unit]:
    ok = _uniform(0.85, 1.05)
    a_gw = vn(2026, 10, 12, 14)
    b_out = vn(2026, 10, 14, 2)
    f_gap = vn(2026, 10, 18, 10)
    e_out = vn(2026, 10, 22, 1)
    a_hosts = [Host("a4:91:b1:00:00:01", "192.168.1.1", "network", "Huawei")]
    a_hosts += [Host(f"3c:52:82:00:01:{i:02x}", f"192.168.1.{20 + i}", "computer", "Hewlett Packard",
                     until=vn(2026, 10, 9, 12) if i == 7 else None) for i in range(20)]
    a_hosts += [Host("00:80:77:00:02:01", "192.168.1.50", "printer", "Brother"),
                Host("00:80:77:00:02:02", "192.168.1.51", "printer", "Canon"),
                Host("f0:1f:af:00:03:01", "192.168.1.60", "phone", "Samsung"),
                Host("02:11:22:00:04:01", "192.168.1.70", "unknown"),
                # appears on 1 November: not this month's
                Host("00:80:77:00:02:03", "192.168.1.52", "printer", "Epson", since=END + 3600)]
    return [
        Unit("A", "21583", "UBND phường Hoài Nhơn Bắc", (12, 5, 3), [
            LineSpec("vnpt-fiber", "VNPT", "internet", 150, 150, 330000, 18, "1.1.1.1", ok,
                     outages=[(a_gw, a_gw + 7200, "gateway_unreachable")]),
            LineSpec("vnpt-tslcd", "VNPT", "tslcd", 200, 200, None, 6, "10.52.0.1", ok,
                     outages=[(START - 600, START + 1200, "line_down")]),
        ], a_hosts, declared_lan=True, devices=(6, 16, 2),
            mqtt_gaps=[(vn(2026, 10, 31, 22), vn(2026, 11, 1, 2), False)],
            software=(("Hệ thống quản lý văn bản và điều hành", 12_000_000), ("Phần mềm kế toán MISA", 3_500_000))),
        Unit("B", "21584", "UBND xã Hoài Châu", (10, 3, 2), [
            LineSpec("viettel-fiber", "Viettel", "internet", 100, 100, 250000, 24, "1.1.1.1", _slow_evenings,
                     outages=[(b_out, b_out + 6 * 3600, "line_down")], evening_test=True),
        ], [Host("b4:0f:3b:00:00:01", "192.168.1.1", "network", "Viettel")] +
            [Host(f"3c:52:82:10:01:{i:02x}", f"192.168.1.{20 + i}", "computer", "Dell") for i in range(16)] +
            [Host("00:80:77:10:02:01", "192.168.1.50", "printer", "Canon")],
            mqtt_gaps=[(b_out, b_out + 6 * 3600, False)],
            proposals="Đề nghị Viettel nâng cấp đường truyền: buổi tối tốc độ chỉ đạt khoảng một nửa cam kết"),
        Unit("C", "21585", "UBND xã Hoài Sơn", (6, 2, 0), [
            LineSpec("vnpt-fiber", "VNPT", "internet", 100, 100, 300000, 21, "1.1.1.1", ok),
        ], [Host("a4:91:b1:20:00:01", "192.168.1.1", "network", "Huawei")], machine="aarch64",
            mqtt_gaps=[(vn(2026, 9, 30, 22), vn(2026, 10, 1, 3), False)],
            declared_lan=True, new_stream_at=vn(2026, 10, 31, 3)),
        Unit("D", "21586", "UBND xã Tam Quan", (12, 4, 2), [
            LineSpec("fpt-fiber", "FPT", "internet", 100, 100, 280000, 27, "1.1.1.1", _uniform(0.55, 0.7)),
        ], [Host("a4:91:b1:30:00:01", "192.168.1.1", "network", "FPT"),
            Host("3c:52:82:30:01:01", "192.168.1.21", "computer", "Lenovo"),
            Host("3c:52:82:30:01:02", "192.168.1.22", "computer", "Lenovo"),
            Host("3c:52:82:30:01:03", "192.168.1.23", "computer", "Acer"),
            Host("00:80:77:30:02:01", "192.168.1.50", "printer", "HP"),
            Host("02:11:22:30:04:01", "192.168.1.70", "unknown"),
            Host("3c:52:82:30:01:09", "192.168.1.29", "computer", "Acer",
                 gone_before=(vn(2026, 8, 1, 9), vn(2026, 9, 20, 9)))],
            declared_lan=False, clock_ahead=(vn(2026, 10, 20, 10, 10), 1500)),
        Unit("E", "21587", "UBND xã Ân Hảo", (5, 1, 0), [
            LineSpec("vnpt-fiber", "VNPT", "internet", 100, 100, 300000, 19, "1.1.1.1", ok,
                     outages=[(e_out, e_out + 3 * 3600, "line_down")]),
        ], [Host("a4:91:b1:40:00:01", "192.168.1.1", "network", "Huawei")] +
            [Host(f"3c:52:82:40:01:{i:02x}", f"192.168.1.{20 + i}", "computer", "Asus") for i in range(7)] +
            [Host("00:80:77:40:02:01", "192.168.1.50", "printer", "Brother")], machine="armv7l", drop=DROPPED_E,
            drop_first=(e_out + 3600, e_out + 3 * 3600)),
        Unit("F", "21588", "UBND phường Bồng Sơn", (15, 5, 5), [
            LineSpec("viettel-fiber", "Viettel", "internet", 200, 200, 450000, 16, "1.1.1.1", ok),
            LineSpec("vnpt-tslcd", "VNPT", "tslcd", 200, 200, None, 7, "10.52.0.1", ok),
        ], [Host("b4:0f:3b:50:00:01", "192.168.1.1", "network", "Viettel")] +
            [Host(f"3c:52:82:50:01:{i:02x}", f"192.168.1.{20 + i}", "computer", "Dell") for i in range(26)] +
            [Host(f"00:80:77:50:02:{i:02x}", f"192.168.1.{60 + i}", "printer", "Canon") for i in range(3)],
            mqtt_gaps=[(f_gap, f_gap + 2 * 86400, True)]),
        Unit("G", "21589", "UBND xã Hoài Mỹ", (8, 2, 1), [
            LineSpec("vnpt-fiber", "VNPT", "internet", 50, 50, 220000, 20, "1.1.1.1", ok),
        ], active=None, declared_lan=True),
        Unit("H", "21590", "UBND xã Hoài Hải", (6, 2, 1), [
            LineSpec("vnpt-fiber", "VNPT", "internet", 100, 100, 300000, 22, "1.1.1.1", ok),
        ], [Host("a4:91:b1:70:00:01", "192.168.1.1", "network", "Huawei")] +
            [Host(f"3c:52:82:70:01:{i:02x}", f"192.168.1.{20 + i}", "computer", "HP") for i in range(9)] +
            [Host("00:80:77:70:02:01", "192.168.1.50", "printer", "HP")],
            active=(vn(2026, 10, 27, 9), GEN_END)),
    ]


def registry_toml(us: list[Unit]) -> str:
    out = [f'[provinces]\n"{PROVINCE}" = "{PROVINCE_NAME}"\n\n'
           '[it_office]\nname = "Sở KH&CN Gia Lai - Phòng Hạ tầng số"\nemail = "hatang@skhcn.example"\n']
    for u in us:
        out.append(f'\n[[site]]\ncode = "{u.code}"\nprovince = "{PROVINCE}"\nname = "{u.name}"\n'
                   f'agents = ["{u.agent}"]\n')
        if u.declared_lan is not None:
            out.append(f"lan = {'true' if u.declared_lan else 'false'}\n")
        if u.proposals:
            out.append(f'proposals = "{u.proposals}"\n')
        out.append(f"  [site.staff]\n  full_time = {u.staff[0]}\n  part_time = {u.staff[1]}\n"
                   f"  contract = {u.staff[2]}\n")
        if u.devices:
            out.append(f"  [site.devices]\n  laptops = {u.devices[0]}\n  desktops = {u.devices[1]}\n"
                       f"  scanners = {u.devices[2]}\n")
        for name, cost in u.software:
            out.append(f'  [[site.software]]\n  name = "{name}"\n' + (f"  cost_vnd = {cost}\n" if cost else ""))
        for ln in u.lines:
            out.append(f'  [[site.line]]\n  id = "{ln.id}"\n  isp = "{ln.isp}"\n  kind = "{ln.kind}"\n'
                       f"  contracted_down_mbps = {ln.down}\n  contracted_up_mbps = {ln.up}\n" +
                       (f"  monthly_cost_vnd = {ln.cost}\n" if ln.cost is not None else "") +
                       f'    [site.line.operator]\n    email = "noc@{ln.isp.lower()}.example"\n')
    return "".join(out)


# ----------------------------------------------------------------------------- traffic
@dataclass
class Sent:
    """One agent message as the agent built it (and the truth's view of it)."""

    unit: str          # site code
    agent: str
    stream: str
    seq: int
    kind: str
    line: str | None
    at: float
    ok: bool
    error_code: str | None
    data: dict[str, Any]
    received_at: float = 0.0
    late: bool = False       # ingested after everything else
    dropped: bool = False    # never sent (seq skipped)


@dataclass
class Status:
    unit: str
    agent: str
    state: str
    measured_at: float
    received_at: float


def peak(t: float) -> float:
    h = datetime.fromtimestamp(t, VN).hour + datetime.fromtimestamp(t, VN).minute / 60
    return 1.0 + 0.5 * math.exp(-((h - 20.5) / 1.6) ** 2)


class Generator:
    def __init__(self, seed: int = 1052):
        self.rnd = random.Random(seed)

    def unit(self, u: Unit) -> tuple[list[Sent], list[Status], list[Sent]]:
        """(messages sent, status messages, messages dropped in the agent's outbox)."""
        if u.active is None:
            return [], [], []
        a0, a1 = u.active
        r = self.rnd
        out: list[Sent] = []

        def msg(kind: str, line: str | None, at: float, data: dict, ok: bool = True, code: str | None = None):
            out.append(Sent(u.code, u.agent, "", 0, kind, line, ms(at), ok, code, data))

        for ln in u.lines:
            self.latency(u, ln, a0, a1, msg)
            self.reach(u, ln, a0, a1, msg)
            self.bandwidth(u, ln, a0, a1, msg)
        ph = r.uniform(0, HEARTBEAT_S)
        t = a0 + ph
        while t < a1:
            msg("heartbeat", None, t, {"version": "0.1.0", "uptime_s": round(t - a0 + 5000, 1), "queue_depth": 0,
                                       "queue_dropped": 0, "probe_errors": 0, "clock_utc": iso(ms(t + 0.2)),
                                       "hostname": f"ubnd-{u.code}-pc"})
            t += HEARTBEAT_S
        self.lan(u, a0, a1, msg)
        inv_at = max(a0, START) + 3 * 3600 + r.uniform(0, 600)
        msg("inventory", None, inv_at, self.inventory(u, a0))
        if u.new_stream_at is not None:   # reinstalled: the new agent sends its inventory again
            msg("inventory", None, u.new_stream_at + 120, self.inventory(u, u.new_stream_at))
        out.sort(key=lambda m: (m.at, m.kind))
        # sequence numbers per stream, in measured order (the outbox numbers them as they are made)
        streams = [f"{r.getrandbits(64):016x}"]
        if u.new_stream_at is not None:
            streams.append(f"{r.getrandbits(64):016x}")
        seq = {s: 0 for s in streams}
        for m in out:
            m.stream = streams[1] if u.new_stream_at is not None and m.at >= u.new_stream_at else streams[0]
            seq[m.stream] += 1
            m.seq = seq[m.stream]
        # lost in the agent's outbox: never sent (inside the month, not the first or last day)
        if u.drop:
            first = [m for m in out if u.drop_first and u.drop_first[0] <= m.at < u.drop_first[1]
                     and m.kind == "reach" and not m.data["change"]]
            pool = [m for m in out if START + 86400 <= m.at < END - 86400 and m.kind in
                    ("latency", "heartbeat", "reach", "bandwidth") and not m.data.get("change") and m not in first]
            for m in first + r.sample(pool, u.drop - len(first)):
                m.dropped = True
        # delivery
        statuses = [Status(u.code, u.agent, "online", ms(a0), ms(a0 + 1.5))]
        for m in out:
            m.received_at = ms(m.at + r.lognormvariate(math.log(0.3), 0.6))
        for g0, g1, late in u.mqtt_gaps:
            statuses.append(Status(u.code, u.agent, "offline", ms(a0), ms(g0 + 90)))   # the last will
            statuses.append(Status(u.code, u.agent, "online", ms(g1), ms(g1 + 2)))
            backlog = [m for m in out if g0 <= m.at < g1 + 2]
            for i, m in enumerate(backlog):
                if late:
                    m.late = True
                    m.received_at = ms(GEN_END + 600 + 0.05 * i)
                else:
                    m.received_at = ms(g1 + 2.5 + 0.05 * i)
        if u.clock_ahead:   # what the agent wrote: its own clock (sequence and delivery are real time)
            until, ahead = u.clock_ahead
            for m in out:
                if m.at < until:
                    m.at = ms(m.at + ahead)
                    if m.kind == "heartbeat":
                        m.data["clock_utc"] = iso(ms(m.at + 0.2))
        return [m for m in out if not m.dropped], statuses, [m for m in out if m.dropped]

    # -- line probes ------------------------------------------------------------------
    def latency(self, u: Unit, ln: LineSpec, a0: float, a1: float, msg) -> None:
        r = self.rnd
        t = a0 + r.uniform(0, LATENCY_S)
        while t < a1:
            at = t + r.uniform(0, 3)
            base = {"method": "icmp-raw", "target": ln.target, "source": "eth0"}
            if any(s <= at < e for s, e, _ in ln.outages) or r.random() < 0.003:
                msg("latency", ln.id, at, {**base, "sent": 20, "received": 0, "loss_pct": 100.0}, False,
                    "unreachable")
            else:
                u_ = r.random()
                lost = 0 if u_ < 0.92 else 1 if u_ < 0.98 else r.randint(2, 6)
                med = ln.base_rtt * peak(at) * r.lognormvariate(0, 0.2)
                p95 = med * r.uniform(1.1, 2.0)
                msg("latency", ln.id, at, {
                    **base, "sent": 20, "received": 20 - lost, "loss_pct": round(100 * lost / 20, 2),
                    "rtt_min_ms": round(med * r.uniform(0.7, 0.95), 3), "rtt_median_ms": round(med, 3),
                    "rtt_avg_ms": round(med * r.uniform(1.0, 1.15), 3), "rtt_p95_ms": round(p95, 3),
                    "rtt_max_ms": round(p95 * r.uniform(1.0, 1.5), 3),
                    "jitter_ms": round(med * r.uniform(0.03, 0.3), 3)})
            t += LATENCY_S

    def reach(self, u: Unit, ln: LineSpec, a0: float, a1: float, msg) -> None:
        r = self.rnd
        base = {"method": "icmp-dgram", "target": ln.target, "interval_s": REACH_INTERVAL_S, "source": "eth0"}
        events: list[tuple[float, str, Any]] = []
        t = a0 + r.uniform(0, REACH_S)
        while t < a1:
            events.append((ms(t + r.uniform(0, 1)), "summary", None))
            t += REACH_S
        for s, e, code in ln.outages:
            if a0 <= s and e + 4 < a1:
                events.append((ms(s + 3 * REACH_INTERVAL_S), "down", (ms(s), code)))
                events.append((ms(e + 2 * REACH_INTERVAL_S), "up", (ms(e), code)))
        events.sort(key=lambda x: x[0])
        prev = None
        state, since, code = "up", ms(a0), None
        down_since = 0.0
        for at, what, arg in events:
            sent = REACH_S // REACH_INTERVAL_S if prev is None else max(1, round((at - prev) / REACH_INTERVAL_S))
            prev = at
            if what == "down":
                state, (since, code) = "down", arg
                down_since = since
                d = {**base, "state": "down", "change": True, "since": iso(since), "sent": sent, "lost": 3}
                if code == "gateway_unreachable":
                    d.update(gateway="192.168.1.1", gateway_ok=False)
                else:
                    d.update(gateway="192.168.1.1", gateway_ok=True)
                msg("reach", ln.id, at, d, False, code)
            elif what == "up":
                state, since, code = "up", arg[0], None
                msg("reach", ln.id, at, {**base, "state": "up", "change": True, "since": iso(since), "sent": sent,
                                         "lost": max(0, sent - 2), "down_s": round(since - down_since, 3),
                                         "rtt_ms": round(ln.base_rtt * r.uniform(0.9, 1.3), 3)}, True)
            elif state == "down":
                msg("reach", ln.id, at, {**base, "state": "down", "change": False, "since": iso(since),
                                         "sent": sent, "lost": sent}, False, code)
            else:
                lost = 0 if r.random() < 0.9 else r.randint(1, 3)
                msg("reach", ln.id, at, {**base, "state": "up", "change": False, "since": iso(since), "sent": sent,
                                         "lost": min(lost, sent),
                                         "rtt_ms": round(ln.base_rtt * r.uniform(0.9, 1.3), 3)})

    def bandwidth(self, u: Unit, ln: LineSpec, a0: float, a1: float, msg) -> None:
        r = self.rnd
        day = vn(2026, 9, 29)
        while day < a1:
            if ln.evening_test:
                times = [day + r.uniform(18 * 3600, 23 * 3600), day + r.uniform(0, 17.5 * 3600)]
            else:
                times = [day + r.uniform(0, 86400) for _ in range(BW_PER_DAY)]
            for at in sorted(times):
                if not a0 <= at < a1:
                    continue
                base = {"method": "linewatch", "target": "http://10.52.0.5:8090", "streams": 4, "source": "eth0"}
                if any(s <= at < e for s, e, _ in ln.outages):
                    msg("bandwidth", ln.id, at, {**base, "duration_s": 5.0, "bytes": 0}, False, "unreachable")
                elif r.random() < 0.03:
                    msg("bandwidth", ln.id, at, {**base, "duration_s": 2.0, "bytes": 0}, False, "server_busy")
                else:
                    down = round(ln.down * ln.ratio(r, at, "down"), 2)
                    up = round(ln.up * ln.ratio(r, at, "up"), 2)
                    dur = round(r.uniform(6, 10), 2)
                    msg("bandwidth", ln.id, at, {**base, "duration_s": dur * 2,
                                                 "bytes": int((down + up) * 1e6 / 8 * dur),
                                                 "download_mbps": down, "upload_mbps": up, "warmup_s": 2.0,
                                                 "stopped_by": "stable/stable", "budget_left_mb": 4000.0})
            day += 86400

    # -- agent messages ---------------------------------------------------------------
    def lan(self, u: Unit, a0: float, a1: float, msg) -> None:
        r = self.rnd
        day = vn(2026, 9, 29, 9)
        known: dict[str, Host] = {}
        last_at: dict[str, float] = {}
        missing_count: dict[str, int] = {}
        no = 0
        first = True
        while day < a1:
            at = day + r.uniform(0, 900)
            day += 86400
            if at < a0:
                continue
            no += 1
            seen = [h for h in u.hosts if h.gone_before is None and (h.since is None or h.since <= at)
                    and (h.until is None or at <= h.until)]
            appeared = [h for h in seen if h.mac not in known]
            missing, gone = [], []
            for mac, h in list(known.items()):
                if h in seen:
                    missing_count.pop(mac, None)
                    continue
                missing_count[mac] = missing_count.get(mac, 0) + 1
                if missing_count[mac] >= 3:
                    gone.append(h)
                    del known[mac]
                else:
                    missing.append(mac)
            for h in appeared:
                known[h.mac] = h
            for h in seen:
                last_at[h.mac] = at
            gone_entries = [self._host(h, last_seen=last_at[h.mac]) for h in gone]
            if first:
                gone_entries += [self._host(h, first_seen=h.gone_before[0], last_seen=h.gone_before[1])
                                 for h in u.hosts if h.gone_before is not None]
                first = False
            by_class: dict[str, int] = defaultdict(int)
            for h in known.values():
                by_class[h.cls] += 1
            msg("lan", None, at, {
                "method": "arp-scapy", "subnets": [{"cidr": "192.168.1.0/24", "interface": "eth0"}],
                "missed_sweeps_before_gone": 3, "sweep_no": no, "sweep_s": round(r.uniform(4, 12), 2),
                "hosts_seen": len(seen), "hosts_known": len(known), "computers": by_class.get("computer", 0),
                "by_class": dict(by_class), "appeared": [self._host(h) for h in appeared], "gone": gone_entries,
                "missing": missing})

    @staticmethod
    def _host(h: Host, first_seen: float | None = None, last_seen: float | None = None) -> dict:
        d = {"ip": h.ip, "mac": h.mac, "device_class": h.cls}
        if h.vendor:
            d["vendor"] = h.vendor
        if first_seen is not None:
            d["first_seen"] = iso(ms(first_seen))
        if last_seen is not None:
            d["last_seen"] = iso(ms(last_seen))
        return d

    def inventory(self, u: Unit, booted: float) -> dict:
        return {"hostname": f"ubnd-{u.code}-pc", "os_name": "Linux", "os_version": "Debian GNU/Linux 12 (bookworm)",
                "machine": u.machine, "cpu_cores": 4, "cpu_threads": 4, "ram_total_mb": 3800, "disk_mount": "/",
                "disk_total_gb": 58.2, "disk_free_gb": 41.0, "boot_time": iso(ms(booted - 600)),
                "interfaces": [{"name": "eth0", "is_up": True, "mac": "dc:a6:32:00:00:01", "ipv4": ["192.168.1.10"],
                                "link_speed_mbps": 1000, "mtu": 1500, "rx_bytes": 1000, "tx_bytes": 1000,
                                "rx_errors": 0, "tx_errors": 0, "rx_drops": 0, "tx_drops": 0}]}


# ----------------------------------------------------------------------------- ground truth
def p95_exact(values: list[float]) -> float:
    """The order statistic at rank 0.95 x (n - 1), rounded down (rollup.quantile's definition)."""
    s = sorted(values)
    return s[math.floor(0.95 * (len(s) - 1))]


def _clip(a: float, b: float, lo: float = START, hi: float = END) -> tuple[float, float] | None:
    a, b = max(a, lo), min(b, hi)
    return (a, b) if b > a else None


@dataclass
class Params:
    """The report settings the truth is computed for (the test builds its ReportConfig from these)."""

    min_speed_ratio: float = 0.8
    min_availability_pct: float = 99.5
    max_latency_ms: float = 50.0
    min_tests: int = 5
    min_completeness_pct: float = 50
    latency_interval_s: float = LATENCY_S
    bandwidth_per_day: float = BW_PER_DAY
    reach_report_s: float = REACH_S
    dns_interval_s: float = 300
    http_interval_s: float = 300


@dataclass
class Truth:
    units: dict[str, Unit]               # by letter
    sent: list[Sent]                     # what reached the collector (dropped ones excluded)
    dropped: list[Sent]
    statuses: list[Status]
    params: Params = field(default_factory=Params)

    def unit(self, key: str) -> Unit:
        return self.units[key] if key in self.units else next(u for u in self.units.values() if u.code == key)

    def of(self, code: str, line: str | None = None, kind: str | None = None, in_month: bool = True) -> list[Sent]:
        return [m for m in self.sent if m.unit == code and (line is None or m.line == line)
                and (kind is None or m.kind == kind) and (not in_month or START <= m.at < END)]

    # -- one line ---------------------------------------------------------------------
    def line(self, code: str, line_id: str) -> dict[str, Any]:
        P = self.params
        u = self.unit(code)
        spec = next(ln for ln in u.lines if ln.id == line_id)
        out: dict[str, Any] = {"site": u.code, "line": line_id, "isp": spec.isp, "kind": spec.kind,
                               "monthly_cost_vnd": spec.cost}
        tests = self.of(u.code, line_id, "bandwidth")
        for d, attr, contracted in (("down", "download_mbps", spec.down), ("up", "upload_mbps", spec.up)):
            vals = [m.data[attr] for m in tests if m.ok and m.data.get(attr) is not None]
            out[d] = {"contracted_mbps": contracted, "tests": len(vals),
                      "mean_mbps": sum(vals) / len(vals) if vals else None,
                      "min_mbps": min(vals) if vals else None, "max_mbps": max(vals) if vals else None,
                      "tests_ok": sum(1 for v in vals if v >= P.min_speed_ratio * contracted)}
        need = max(P.min_tests, P.min_completeness_pct / 100 * P.bandwidth_per_day * DAYS)
        dn, upf = out["down"], out["up"]
        if not dn["tests"] and not upf["tests"]:
            out["speed_verdict"] = "none"
        elif min(dn["tests"], upf["tests"]) < need:
            out["speed_verdict"] = "insufficient"
        else:
            out["speed_verdict"] = "pass" if all(s["mean_mbps"] >= P.min_speed_ratio * s["contracted_mbps"]
                                                 for s in (dn, upf)) else "fail"
        out["failing_directions"] = [d for d in ("down", "up") if out["speed_verdict"] == "fail" and
                                     out[d]["mean_mbps"] < P.min_speed_ratio * out[d]["contracted_mbps"]]
        rounds = self.of(u.code, line_id, "latency")
        avgs = [m.data["rtt_avg_ms"] for m in rounds if "rtt_avg_ms" in m.data]
        meds = [m.data["rtt_median_ms"] for m in rounds if "rtt_median_ms" in m.data]
        out["latency_rounds"] = len(rounds)
        out["latency_mean_ms"] = sum(avgs) / len(avgs) if avgs else None
        out["latency_p95_ms"] = p95_exact(meds) if meds else None
        out["pings_sent"] = sum(m.data["sent"] for m in rounds)
        out["pings_lost"] = sum(m.data["sent"] - m.data["received"] for m in rounds)
        # availability: coverage per UTC hour, down intervals from the change messages' `since`
        reach = self.of(u.code, line_id, "reach")
        observed: dict[int, float] = defaultdict(float)
        for m in reach:
            observed[int(m.at // 3600) * 3600] += m.data["sent"] * m.data["interval_s"]
        observed = {h: min(3600.0, v) for h, v in observed.items()}
        down_iv, lan_iv = self.down_intervals(u.code, line_id)
        out["observed_s"] = sum(observed.values())
        out["down_s"] = self._capped(down_iv, observed)
        out["lan_down_s"] = self._capped(lan_iv, observed)
        out["availability_pct"] = (100 * (1 - out["down_s"] / out["observed_s"])) if out["observed_s"] else None
        if not out["observed_s"]:
            out["availability_verdict"] = "none"
        elif out["observed_s"] < P.min_completeness_pct / 100 * (END - START):
            out["availability_verdict"] = "insufficient"
        else:
            out["availability_verdict"] = "pass" if out["availability_pct"] >= P.min_availability_pct else "fail"
        # completeness
        comp = {}
        per_day = {"latency": 86400 / P.latency_interval_s, "reach": 86400 / P.reach_report_s,
                   "bandwidth": P.bandwidth_per_day, "dns": 86400 / P.dns_interval_s,
                   "http": 86400 / P.http_interval_s}
        for kind in ("latency", "bandwidth", "reach", "dns", "http"):
            ms_ = self.of(u.code, line_id, kind)
            if kind in ("dns", "http") and not ms_:
                continue   # a line that does not run this probe has no row for it
            if kind == "bandwidth":
                scheduled = round(per_day[kind] * DAYS)
            else:
                # targets seen this month; a line measures at least one latency/reach target even
                # when nothing arrived (the report's choice: a silent line is 0 % complete, not n/a)
                targets = len({m.data.get("target") or m.data.get("resolver") or m.data.get("url") for m in ms_})
                if kind in ("latency", "reach"):
                    targets = max(1, targets)
                scheduled = round(targets * per_day[kind] * DAYS)
            comp[kind] = {"scheduled": scheduled, "received": len(ms_), "failed": sum(1 for m in ms_ if not m.ok)}
        out["completeness"] = comp
        # latency verdict (not in the list; the report's rule): none without an RTT,
        # too little data below min_completeness_pct of the scheduled rounds, else mean <= max
        if not rounds or out["latency_mean_ms"] is None:
            out["latency_verdict"] = "none"
        elif len(rounds) < P.min_completeness_pct / 100 * comp["latency"]["scheduled"]:
            out["latency_verdict"] = "insufficient"
        else:
            out["latency_verdict"] = "pass" if out["latency_mean_ms"] <= P.max_latency_ms else "fail"
        out["insufficient"] = tuple(w for w, k in (("speed", "speed_verdict"), ("latency", "latency_verdict"),
                                                   ("availability", "availability_verdict"))
                                    if out[k] == "insufficient")
        return out

    def down_intervals(self, code: str, line_id: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """[since of a change:true down, since of the next change:true up), clipped to the month:
        (the line's, the office gateway's)."""
        changes = sorted((m for m in self.of(code, line_id, "reach", in_month=False) if m.data["change"]),
                         key=lambda m: wire.parse_time(m.data["since"]).timestamp())
        line_iv, lan_iv = [], []
        down: Sent | None = None
        for m in changes:
            since = wire.parse_time(m.data["since"]).timestamp()
            if m.data["state"] == "down":
                down = m
            elif down is not None:
                iv = _clip(wire.parse_time(down.data["since"]).timestamp(), since)
                if iv:
                    (lan_iv if down.error_code == "gateway_unreachable" else line_iv).append(iv)
                down = None
        assert down is None, "the generator closes every outage"
        return line_iv, lan_iv

    @staticmethod
    def _capped(intervals: list[tuple[float, float]], observed: dict[int, float]) -> float:
        per_hour: dict[int, float] = defaultdict(float)
        for a, b in intervals:
            h = int(a // 3600) * 3600
            while h < b:
                lo, hi = max(a, h), min(b, h + 3600)
                if hi > lo:
                    per_hour[h] += hi - lo
                h += 3600
        return sum(min(v, observed.get(h, 0.0)) for h, v in per_hour.items())

    # -- one site ---------------------------------------------------------------------
    def site(self, code: str) -> dict[str, Any]:
        u = self.unit(code)
        out: dict[str, Any] = {"code": u.code, "name": u.name, "staff_total": sum(u.staff),
                               "staff": u.staff, "lines": {ln.id: self.line(u.code, ln.id) for ln in u.lines}}
        msgs = self.of(u.code)
        out["messages"] = len(msgs)
        missing = 0
        for stream in {m.stream for m in msgs}:
            seqs = [m.seq for m in msgs if m.stream == stream]
            missing += max(seqs) - min(seqs) + 1 - len(seqs)
        out["seq_missing"] = missing
        out["dropped_in_month"] = sum(1 for m in self.dropped if m.unit == u.code and START <= m.at < END)
        # offline: from the last will (offline) to the next online, as the collector received them
        sts = sorted((s for s in self.statuses if s.unit == u.code), key=lambda s: s.received_at)
        off, t_off = 0.0, None
        for s in sts:
            if s.state == "offline" and t_off is None:
                t_off = s.received_at
            elif s.state == "online" and t_off is not None:
                iv = _clip(t_off, s.received_at)
                off += iv[1] - iv[0] if iv else 0.0
                t_off = None
        out["offline_s"] = off
        # LAN: hosts seen by a sweep made in the month (and the agent's own computer unless a Pi)
        sweeps = [m for m in self.of(u.code, kind="lan")]
        seen = set()
        for m in sweeps:
            for h in u.hosts:
                if h.gone_before is None and (h.since is None or h.since <= m.at) and (
                        h.until is None or m.at <= h.until):
                    seen.add(h.mac)
        hosts = [h for h in u.hosts if h.mac in seen]
        own = 1 if self.of(u.code, kind="inventory", in_month=False) and u.machine not in ("aarch64", "armv7l") else 0
        if sweeps:
            out["computers_measured"] = sum(1 for h in hosts if h.cls == "computer") + own
            out["printers_measured"] = sum(1 for h in hosts if h.cls == "printer")
            out["unsure_measured"] = sum(1 for h in hosts if h.cls == "unknown")
            out["lan"], out["lan_source"] = any(h.cls != "network" for h in hosts), "measured"
        else:
            out["computers_measured"] = own or None
            out["printers_measured"] = out["unsure_measured"] = None
            out["lan"], out["lan_source"] = ((u.declared_lan, "declared") if u.declared_lan is not None
                                             else (None, "unknown"))
        out["laptops"], out["desktops"], out["scanners"] = u.devices or (None, None, None)
        out["computers"] = (u.devices[0] + u.devices[1]) if u.devices else out["computers_measured"]
        costs = [ln.cost for ln in u.lines if ln.cost is not None]
        out["monthly_cost_vnd"] = sum(costs) if costs else None
        out["isps"] = tuple(dict.fromkeys(ln.isp for ln in u.lines))
        # shortfalls: (code, line)
        short = []
        if not msgs:
            short.append(("no_measurements", None))
        if out["computers"] is not None and out["computers"] < out["staff_total"]:
            short.append(("computers_fewer_than_staff", None))
        if out["lan"] is False:
            short.append(("no_lan", None))
        for ln_id, lf in out["lines"].items():
            short += [("line_below_minimum", ln_id)] * len(lf["failing_directions"])
            if lf["availability_verdict"] == "fail":
                short.append(("availability_below_minimum", ln_id))
        out["shortfalls"] = sorted(short, key=lambda s: (s[0], s[1] or ""))
        return out


# ----------------------------------------------------------------------------- the month
@dataclass(eq=False)
class Month:
    units: list[Unit]
    sent: list[Sent]
    dropped: list[Sent]
    statuses: list[Status]
    truth: Truth

    def registry_text(self) -> str:
        return registry_toml(self.units)

    def registry(self):
        import tomllib

        from linewatch.collector import registry as registry_mod

        return registry_mod.parse(tomllib.loads(self.registry_text()))

    def incoming(self) -> tuple[list, list]:
        """(live, late): Incoming messages in the order the collector receives them."""
        from linewatch.collector.ingest import Incoming

        def status_payload(s: Status) -> bytes:
            return wire.build_message(kind="status", agent_id=s.agent, province=PROVINCE, site=s.unit, seq=0,
                                      measured_at=datetime.fromtimestamp(s.measured_at, timezone.utc),
                                      data={"state": s.state, "version": "0.1.0"}).to_json()

        def payload(m: Sent) -> bytes:
            return wire.build_message(kind=m.kind, agent_id=m.agent, province=PROVINCE, site=m.unit, line=m.line,
                                      seq=m.seq, stream=m.stream, ok=m.ok, error_code=m.error_code,
                                      error=f"{m.error_code} ({m.kind})" if m.error_code else None,
                                      measured_at=datetime.fromtimestamp(m.at, timezone.utc),
                                      data=m.data).to_json()

        items = []
        for s in self.statuses:
            items.append((s.received_at, 0, Incoming(wire.agent_topic(PROVINCE, s.unit, s.agent, "status"),
                                                     status_payload(s), s.received_at)))
        for m in self.sent:
            if m.late:
                continue
            topic = (wire.line_topic(PROVINCE, m.unit, m.line, m.kind) if m.line else
                     wire.agent_topic(PROVINCE, m.unit, m.agent, m.kind))
            items.append((m.received_at, 1, Incoming(topic, payload(m), m.received_at)))
        items.sort(key=lambda x: (x[0], x[1]))
        late = []
        for m in sorted((m for m in self.sent if m.late), key=lambda m: m.received_at):
            topic = (wire.line_topic(PROVINCE, m.unit, m.line, m.kind) if m.line else
                     wire.agent_topic(PROVINCE, m.unit, m.agent, m.kind))
            late.append(Incoming(topic, payload(m), m.received_at))
        return [it for _, _, it in items], late

    def ingest(self, record, registry=None) -> dict[str, int]:
        """Everything through Ingestor.store in batches of 500, the rollup consumer run to the
        end, then the late backlog and the rollups again. Returns outcome counts."""
        from linewatch.collector.ingest import Ingestor

        live, late = _incoming(self)
        ing = Ingestor(record, registry or self.registry())
        counts: dict[str, int] = defaultdict(int)
        with wire_clock():
            for part in (live, late):
                for i in range(0, len(part), BATCH):
                    for o in ing.store(part[i:i + BATCH]):
                        counts[o.status] += 1
                while record.rollup() > 0:
                    pass
        return dict(counts)


@functools.lru_cache(maxsize=None)
def _incoming(month: "Month") -> tuple[list, list]:
    with wire_clock():
        return month.incoming()


@functools.lru_cache(maxsize=None)
def generate(seed: int = 1052) -> Month:
    us = units()
    g = Generator(seed)
    sent, dropped, statuses = [], [], []
    for u in us:
        if u.active is None:
            continue
        s, st, dr = g.unit(u)
        sent += s
        statuses += st
        dropped += dr
    truth = Truth({u.letter: u for u in us}, sent, dropped, statuses)
    return Month(us, sent, dropped, statuses, truth)


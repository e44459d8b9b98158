"""The rules that judge one line: pure functions over the record's events.

Each line keeps a small JSON-able state (windows of its last tests, its reach state, a
pending retest); ``judge`` folds one event into it and says what changed as ``Signal``s:
*raise* a problem of some kind, *clear* it, or ask for a *retest*. Whether that opens an
incident, who hears of it and when is lifecycle.py's business, not this module's.

What each kind means (thresholds come from the registry, per line):
  line_down            reach says the line is down (or, without reach, latency to every
                       target failed M of the last N rounds)
  lan_fault            reach says the office's own gateway did not answer either
  slow_line            a speed test below min_speed_ratio x contracted (down or up),
                       confirmed: M of the last N tests low AND the latest low one a retest
  high_latency         rtt_avg_ms above max_latency_ms in M of the last N rounds (any target)
  packet_loss          loss over the last N rounds together surely (95 %) above max_loss_pct,
                       with loss in at least M of them (one lost ping of 10 is not a lossy line)
  service_unreachable  a service (http url, dns name) failed M of the last N times while
                       the line itself is up
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from linewatch.wire import cause_of, parse_time

from ..record.types import Event
from ..registry import Line

LINE_KINDS = ("line_down", "lan_fault", "slow_line", "high_latency", "packet_loss", "service_unreachable")
SITE_KINDS = ("site_unreachable",)
KINDS = LINE_KINDS + SITE_KINDS + ("availability",)
#: Who can fix it.
ROUTE = {"line_down": "operator", "slow_line": "operator", "high_latency": "operator", "packet_loss": "operator",
         "availability": "operator", "lan_fault": "it_office", "service_unreachable": "it_office",
         "site_unreachable": "it_office"}
CAUSE = {"line_down": "line", "slow_line": "line", "high_latency": "line", "packet_loss": "line",
         "availability": "line", "lan_fault": "lan", "service_unreachable": "service", "site_unreachable": "unknown"}


@dataclass(frozen=True)
class Policy:
    """[incidents] of collector.toml."""

    slow_m: int = 2                # slow line: M of the last N speed tests below the ratio ...
    slow_n: int = 3
    retest: bool = True            # ... and the latest low one an immediate retest
    max_retests: int = 2           # retests per episode before M of N alone decides
    retest_ttl_s: float = 300      # a retest command expires after this
    latency_m: int = 3             # high latency / loss: M of the last N latency rounds
    latency_n: int = 5
    service_m: int = 2             # a service: M of the last N checks failed
    service_n: int = 3
    down_m: int = 3                # lines without reach: every latency target failed M of N rounds
    down_n: int = 3
    resolve_hold_s: float = 300    # recovery must hold this long before an incident closes
    escalate_after_s: float = 1800  # not acknowledged: second contact, then the IT office
    refine_wait_s: float = 90      # after a silent site is back: wait for its backlog, then refine
    group_wait_s: float = 10       # a notice waits this long for others to the same recipient
    notice_ttl_s: float = 72 * 3600
    it_office_copy: str = "digest"  # each | digest | none
    digest_hour: int = 7           # Vietnam time


@dataclass
class Signal:
    action: str  # raise | clear | retest
    kind: str
    at: float  # raise: when the problem began (measured); clear: when it was measured gone
    target: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    probe: str | None = None  # retest: which probe


def row(e: Event) -> dict[str, Any]:
    """An evidence row: the measurement, with the fields a person reads."""
    r: dict[str, Any] = {"pos": e.pos, "at": round(e.at, 3), "received_at": round(e.received_at, 3), "kind": e.kind,
                         "ok": e.ok, "error_code": e.error_code}
    for k in ("target", "url", "name", "method", "download_mbps", "upload_mbps", "rtt_avg_ms", "rtt_p95_ms",
              "jitter_ms", "loss_pct", "state", "down_s", "gateway", "gateway_ok", "status_code", "total_ms",
              "command_id"):
        if e.data.get(k) is not None:
            r[k] = e.data[k]
    return r


def wilson_lower(k: int, n: int, z: float = 1.96) -> float:
    """Lower bound of the 95 % Wilson interval of a proportion k/n (0 when n = 0)."""
    if n <= 0:
        return 0.0
    phat = k / n
    centre = phat + z * z / (2 * n)
    margin = z * ((phat * (1 - phat) + z * z / (4 * n)) / n) ** 0.5
    return max(0.0, (centre - margin) / (1 + z * z / n))


def _window(w: list, item: Any, n: int) -> list:
    w.append(item)
    del w[:-n]
    return w


def new_state() -> dict[str, Any]:
    return {"bw": [], "retest": None, "lat": {}, "svc": {}, "down": [], "reach": None, "verdict": {}}


def judge(st: dict[str, Any], e: Event, line: Line, p: Policy, now: float) -> list[Signal]:
    """Fold one event of this line into its state; what changed."""
    if e.kind == "reach":
        return _reach(st, e)
    if e.kind == "latency":
        return _latency(st, e, line, p)
    if e.kind == "bandwidth":
        return _bandwidth(st, e, line, p, now)
    if e.kind in ("http", "dns"):
        return _service(st, e, p)
    return []


def line_is_down(st: dict[str, Any]) -> bool:
    return bool(st.get("reach") and st["reach"]["state"] == "down") or st.get("verdict", {}).get("reach") == "down"


# -- reach: the agent already confirmed the change (down_after failures in a row) --------
def _reach(st: dict[str, Any], e: Event) -> list[Signal]:
    state = e.data.get("state")
    try:
        since = parse_time(e.data["since"]).timestamp()
    except (KeyError, ValueError, TypeError):
        since = e.at
    prev = st.get("reach")
    if prev and prev.get("at", 0) > e.at:
        return []  # an older reach message arriving after a newer one changes nothing
    st["reach"] = {"state": state, "since": since, "at": e.at}
    st["verdict"]["reach"] = state
    kind = "lan_fault" if e.error_code == "gateway_unreachable" else "line_down"
    other = "line_down" if kind == "lan_fault" else "lan_fault"
    if state == "down":
        sig = [Signal("raise", kind, since, summary={"target": e.data.get("target"), "gateway": e.data.get("gateway"),
                                                      "gateway_ok": e.data.get("gateway_ok")}, evidence=[row(e)])]
        return sig + [Signal("clear", other, e.at)]
    summary = {"down_s": e.data.get("down_s")} if e.data.get("down_s") is not None else {}
    return [Signal("clear", "line_down", since, summary=summary, evidence=[row(e)]),
            Signal("clear", "lan_fault", since, summary=summary, evidence=[row(e)])]


# -- latency rounds: high latency, loss, and line down for lines without reach -----------
def _latency(st: dict[str, Any], e: Event, line: Line, p: Policy) -> list[Signal]:
    th = line.thresholds
    target = str(e.data.get("target"))
    out: list[Signal] = []
    failed = not e.ok and cause_of(e.error_code) == "line"
    if st.get("reach") is None:  # no fast check on this line: latency rounds decide "down"
        w = _window(st["down"], [e.at, failed, target], p.down_n * 4)
        by_target: dict[str, list] = {}
        for x in w:
            by_target.setdefault(x[2], []).append(x)
        all_down = all(len(xs) >= p.down_m and all(x[1] for x in xs[-p.down_m:]) for xs in by_target.values())
        if failed and all_down:
            first = min(next(x[0] for x in xs[-p.down_m:]) for xs in by_target.values())
            out.append(Signal("raise", "line_down", first, summary={"via": "latency", "targets": sorted(by_target)},
                              evidence=[row(e)]))
        elif e.ok:
            out.append(Signal("clear", "line_down", e.at, evidence=[row(e)]))
    if not e.ok or e.data.get("rtt_avg_ms") is None:
        return out
    rtt = float(e.data["rtt_avg_ms"])
    sent = int(e.data.get("sent") or 0)
    lost = max(0, sent - int(e.data.get("received") or 0))
    high = rtt > th.max_latency_ms
    w = _window(st["lat"].setdefault(target, []), [e.at, high, lost > 0, lost, sent], p.latency_n)
    # Latency: M of the last N rounds above the limit. Loss: the last N rounds' pings together
    # (one lost ping of 10 is 10 % of a round, not of a line), raised only when we are 95 %
    # sure the loss is above the limit (Wilson lower bound): 1-2 % random loss never trips a
    # 5 % limit by chance, a line losing a fifth of its packets does within a few rounds.
    w_sent = sum(x[4] for x in w if len(x) > 4)
    w_lost = sum(x[3] for x in w if len(x) > 4)
    w_loss = 100.0 * w_lost / w_sent if w_sent else 0.0
    lossy_rounds = [x for x in w if x[2]]
    lossy = 100.0 * wilson_lower(w_lost, w_sent) > th.max_loss_pct and len(lossy_rounds) >= p.latency_m
    st["verdict"]["latency"] = "high" if high else "ok"
    st["verdict"]["loss"] = "high" if lossy else "ok"
    bad_rtt = [x for x in w if x[1]]
    summary = {"target": target, "rtt_avg_ms": rtt, "loss_pct": round(w_loss, 2), "rounds_seen": len(w),
               "max_latency_ms": th.max_latency_ms, "max_loss_pct": th.max_loss_pct}
    if high and len(bad_rtt) >= p.latency_m:
        out.append(Signal("raise", "high_latency", bad_rtt[0][0], summary={**summary, "rounds_bad": len(bad_rtt)},
                          evidence=[row(e)]))
    elif not high and not any(len([x for x in wt if x[1]]) >= p.latency_m for wt in st["lat"].values()):
        out.append(Signal("clear", "high_latency", e.at, summary=summary, evidence=[row(e)]))
    if lossy and lost:
        out.append(Signal("raise", "packet_loss", lossy_rounds[0][0],
                          summary={**summary, "rounds_bad": len(lossy_rounds)}, evidence=[row(e)]))
    elif not lossy and not lost:
        out.append(Signal("clear", "packet_loss", e.at, summary=summary, evidence=[row(e)]))
    return out


# -- speed tests against the contract ----------------------------------------------------
def speed_verdict(e: Event, line: Line) -> dict[str, Any]:
    """QCVN 34:2022: each direction against min_speed_ratio x contracted."""
    ratio = line.thresholds.min_speed_ratio
    v: dict[str, Any] = {"min_speed_ratio": ratio, "contracted_down_mbps": line.contracted_down_mbps,
                         "contracted_up_mbps": line.contracted_up_mbps,
                         "threshold_down_mbps": round(ratio * line.contracted_down_mbps, 3),
                         "threshold_up_mbps": round(ratio * line.contracted_up_mbps, 3)}
    for d, contracted in (("down", line.contracted_down_mbps), ("up", line.contracted_up_mbps)):
        m = e.data.get(f"{d}load_mbps")
        if m is not None:
            v[f"measured_{d}_mbps"] = m
            v[f"ratio_{d}"] = round(float(m) / contracted, 4)
            v[f"speed_{d}"] = "low" if float(m) < ratio * contracted else "ok"
    return v


def _bandwidth(st: dict[str, Any], e: Event, line: Line, p: Policy, now: float) -> list[Signal]:
    if not e.ok:
        return []  # a failed test (server busy, budget) says nothing about the speed
    if e.data.get("nic_busy"):
        return []  # the office's own traffic shared the line during the test: not the operator's figure
    v = speed_verdict(e, line)
    if "speed_down" not in v and "speed_up" not in v:
        return []
    low = "low" in (v.get("speed_down"), v.get("speed_up"))
    st["verdict"].update({k: v[k] for k in ("speed_down", "speed_up") if k in v})
    pending = st.get("retest")
    is_retest = bool(pending and e.data.get("command_id") == pending.get("id"))
    if is_retest:
        st["retest"] = None
    w = _window(st["bw"], [e.at, low, is_retest], p.slow_n)
    lows = [x for x in w if x[1]]
    summary = {**v, "tests_low": len(lows), "tests_seen": len(w), "retest": is_retest}
    if low:
        expired = bool(pending and pending.get("until", 0) <= now)
        retests_done = st.get("retests", 0)
        confirmed = len(lows) >= p.slow_m and (is_retest or not p.retest or retests_done >= p.max_retests or expired)
        if confirmed:
            st["retests"] = 0
            return [Signal("raise", "slow_line", lows[0][0], summary=summary, evidence=[row(e)])]
        if p.retest and (pending is None or expired) and retests_done < p.max_retests:
            st["retests"] = retests_done + 1
            return [Signal("retest", "slow_line", e.at, probe="bandwidth", summary=summary, evidence=[row(e)])]
        return []
    st["retests"] = 0
    if not is_retest and p.retest and (pending is None or pending.get("until", 0) <= now) and \
            any(x[1] for x in w[:-1]):
        # good after bad: confirm the recovery with a retest before clearing
        return [Signal("retest", "slow_line_recovery", e.at, probe="bandwidth", summary=summary)]
    return [Signal("clear", "slow_line", e.at, summary=summary, evidence=[row(e)])]


# -- services the office uses (http urls, dns names) ------------------------------------
def _service(st: dict[str, Any], e: Event, p: Policy) -> list[Signal]:
    if e.kind == "http":
        target = str(e.data.get("url"))
    else:
        target = f"{e.data.get('name')} @ {e.data.get('resolver')}"
    cause = cause_of(e.error_code)
    failed = not e.ok and cause in ("service", "line")
    if not e.ok and not failed:
        return []  # the agent's own trouble (unbound line, no tool) is not the service's
    w = _window(st["svc"].setdefault(target, []), [e.at, failed], p.service_n)
    bad = [x for x in w if x[1]]
    summary = {"target": target, "checks_failed": len(bad), "checks_seen": len(w)}
    if failed and len(bad) >= p.service_m:
        if line_is_down(st):
            return []  # the line's own incident says it
        return [Signal("raise", "service_unreachable", bad[0][0], target=target, summary=summary, evidence=[row(e)])]
    if not failed:
        return [Signal("clear", "service_unreachable", e.at, target=target, summary=summary, evidence=[row(e)])]
    return []

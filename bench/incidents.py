"""Benchmark (not a test): how fast an incident reaches the operator's mailbox, with every
part real (tests/provincelab.py: agents in network namespaces, mosquitto, the collector
process, an aiosmtpd SMTP server that stamps X-Received-At on every mail it accepts).

    ./dev bench incidents [--trials 10] [--sites 50] [--skip-slow] [--skip-storm] [--keep]

Longer than 400 lines on purpose: a benchmark script that builds, drives and measures a whole
province; each scenario is a function, run in order, printed as one table.

Three figures, each in a fresh province (root; builds its own namespaces):

1. Blackhole -> email at the operator's SMTP server. One office with fiber + TSLCD (the agent
   reports over TSLCD). Per trial: fiber reach up, blackhole the fiber at the operator's router,
   time from the cut to the incident mail at the SMTP server (X-Received-At - cut); heal, wait
   for the resolved mail and the incident to close (resolve_hold_s = 15), repeat. The columns
   "agent" and "rules" are the incident's opened_at (the agent's measured transition) and
   detected_at (the collector's rules) relative to the cut. Goal: p95 <= 30 s.
   [notify] max_per_hour is raised to 100 here: 2 mails per trial to one recipient would hit
   the default 12/hour after 6 trials and measure the rate limit instead of the path.
2. Slow line -> confirmed incident notified. Contracted 20/20 Mbit/s, fiber shaped to 12 Mbit/s
   (0.6x); `collector test --probe bandwidth` asks for the first test; the rules confirm with
   their own retest (M of N + retest) and mail the operator. Time from the command's start to
   the mail. Between trials the incident is closed by hand (`incidents resolve`) and the line
   re-shaped. Goal: <= 180 s.
3. Province-wide outage. --sites offices (60 % VNPT, 40 % Viettel, each operator's NOC is
   noc@<isp>.example), all with TSLCD so the agents keep reporting; every fiber blackholed at
   once. After 60 s: mails per operator (goal: ONE grouped notice each), how many sites each
   lists, time from the cut to the first and the last notice; the collector's RSS and CPU
   seconds (from /proc). Then everything healed: the resolved mails per operator. Default
   [notify] settings (max_per_hour 12, group_wait_s 5 from provincelab).

Percentiles are nearest-rank (p95 of 10 trials is the 10th value, i.e. the max).
"""
from __future__ import annotations

import argparse
import email
import email.policy
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

BLACKHOLE_GOAL_S = 30.0
SLOW_GOAL_S = 180.0


# -- helpers ------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def fmt(v: float | None, w: int = 7) -> str:
    return f"{v:>{w}.1f}" if v is not None else f"{'-':>{w}}"


def read_mails(pl) -> list:
    """Every mail the SMTP server kept, in arrival order, each with .to, .at, .path."""
    out = []
    for p in sorted(pl.mail_dir.glob("*.eml")):
        m = email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        m.path = p
        m.to = str(m["X-Envelope-To"] or "")
        m.at = float(m["X-Received-At"])
        out.append(m)
    return out


def body(m) -> str:
    part = m.get_body(("plain",))
    return part.get_content() if part is not None else ""


def is_resolved(m) -> bool:
    return "khắc phục" in str(m["Subject"]).lower()


def wait_until(pred, timeout: float, step: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def with_record(pl, fn):
    rec = pl.record()
    try:
        return fn(rec)
    finally:
        rec.close()


def reach_up(pl, offices) -> set[str]:
    """Sites whose newest fiber reach event says up."""
    def q(rec):
        up = set()
        for o in offices:
            ev = rec.latest_by_kind(o.site, "fiber").get("reach")
            if ev is not None and ev.data.get("state") == "up":
                up.add(o.site)
        return up
    return with_record(pl, q)


def incidents(pl, **kw):
    return with_record(pl, lambda rec: rec.incidents(**kw))


def detected_since(pl, t: float) -> list:
    """Incidents the rules opened at or after ``t`` (collector time), newest first."""
    return [i for i in incidents(pl) if i.detected_at >= t]


def proc_stats(pid: int) -> dict[str, float]:
    """RSS, peak RSS (MB) and CPU seconds (user + system) of a process, from /proc."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        tck = os.sysconf("SC_CLK_TCK")
        out["cpu"] = (int(fields[11]) + int(fields[12])) / tck
    except (OSError, ValueError, IndexError):
        pass
    return out


def log_problems(pl) -> list[str]:
    text = pl.log()
    return [ln for ln in text.splitlines() if re.search(r"\b(ERROR|CRITICAL)\b|Traceback", ln)]


def new_province(tmp: Path, name: str, **kw):
    from linklab import Lab
    from provincelab import ProvinceLab

    d = tmp / name
    d.mkdir()
    lab = Lab(d)
    return lab, ProvinceLab(lab, **kw)


# -- 1. blackhole -> email ---------------------------------------------------------------------
def bench_blackhole(tmp: Path, trials: int, summary: list) -> None:
    print(f"\n== 1. Blackhole -> email at the operator's SMTP server ({trials} trials; one office, "
          f"fiber + TSLCD; reach 1 s, down_after 3; group_wait_s 5, resolve_hold_s 15; max_per_hour 100)",
          flush=True)
    lab, pl = new_province(tmp, "blackhole", notify_extra="max_per_hour = 100\n")
    took: list[float] = []
    misses = 0
    try:
        o = pl.office(tslcd=True)
        pl.start_dc()
        pl.start_agent(o)
        noc = "noc@vnpt.example"
        print(f"{'trial':>5} {'agent s':>8} {'rules s':>8} {'mail s':>7} {'heal->resolved mail s':>22} "
              f"{'closed s':>9} {'incident':>9}", flush=True)
        for t in range(1, trials + 1):
            if not wait_until(lambda: o.site in reach_up(pl, [o]), 60):
                print(f"{t:>5} fiber reach never reported up within 60 s; stopping")
                misses += trials - t + 1
                break
            if incidents(pl, live_only=True):
                wait_until(lambda: not incidents(pl, live_only=True), 60)
            time.sleep(2)  # a few reach rounds of a settled line
            seen = {m.path for m in read_mails(pl)}
            t_cut = time.time()
            pl.cut([o])
            opened = wait_until(lambda: [m for m in read_mails(pl) if m.path not in seen and noc in m.to
                                         and not is_resolved(m)], 90)
            inc = next(iter(detected_since(pl, t_cut)), None)
            mail_s = opened[0].at - t_cut if opened else None
            if mail_s is None:
                misses += 1
            else:
                took.append(mail_s)
            t_heal = time.time()
            pl.heal([o])
            seen |= {m.path for m in (opened or [])}
            resolved = wait_until(lambda: [m for m in read_mails(pl) if m.path not in seen and noc in m.to
                                           and is_resolved(m)], 90)
            closed = wait_until(lambda: [i for i in detected_since(pl, t_cut) if i.state == "closed"]
                                and not incidents(pl, live_only=True), 30)
            inc = next(iter(detected_since(pl, t_cut)), inc)
            res_s = resolved[0].at - t_heal if resolved else None
            closed_s = (inc.closed_at - t_heal) if inc and inc.closed_at else None
            print(f"{t:>5} {fmt(inc.opened_at - t_cut if inc else None, 8)} "
                  f"{fmt(inc.detected_at - t_cut if inc else None, 8)} {fmt(mail_s)} {fmt(res_s, 22)} "
                  f"{fmt(closed_s, 9)} {('#' + str(inc.id) + ' ' + inc.kind) if inc else 'none':>9}"
                  + ("" if opened else "   <- no incident mail within 90 s")
                  + ("" if resolved else "   <- no resolved mail within 90 s")
                  + ("" if closed else "   <- incident not closed"), flush=True)
        incs = incidents(pl)
        kinds: dict[str, int] = {}
        for i in incs:
            kinds[i.kind] = kinds.get(i.kind, 0) + 1
        mails = [m for m in read_mails(pl)]
        per_to: dict[str, int] = {}
        for m in mails:
            per_to[m.to] = per_to.get(m.to, 0) + 1
        print(f"incidents: {kinds}; mails per recipient: {per_to}")
        if took:
            p50, p95, mx = statistics.median(took), pct(took, 0.95), max(took)
            print(f"cut -> mail at SMTP: n={len(took)}  min {min(took):.1f}  p50 {p50:.1f}  p95 {p95:.1f}  "
                  f"max {mx:.1f} s" + (f"  ({misses} trial(s) without a mail)" if misses else ""))
            summary.append(("blackhole -> operator mail, p95", f"{p95:.1f} s (p50 {p50:.1f}, max {mx:.1f}, "
                            f"n={len(took)}{', ' + str(misses) + ' missed' if misses else ''})",
                            f"<= {BLACKHOLE_GOAL_S:.0f} s", p95 <= BLACKHOLE_GOAL_S and not misses))
        else:
            summary.append(("blackhole -> operator mail, p95", "no mail", f"<= {BLACKHOLE_GOAL_S:.0f} s", False))
        probs = log_problems(pl)
        if probs:
            print(f"collector log: {len(probs)} ERROR/Traceback line(s), first: {probs[0][:200]}")
    finally:
        lab.close()


# -- 2. slow line -> confirmed incident ---------------------------------------------------------
def bench_slow(tmp: Path, trials: int, summary: list) -> None:
    from provincelab import SPEED_PORT

    print(f"\n== 2. Slow line -> confirmed incident notified ({trials} trial(s); contracted 20/20 Mbit/s, "
          f"fiber tbf 12 Mbit/s = 0.6x; threshold 0.8x; first test by `collector test`, then the rules' "
          f"retest; max_per_hour 100)", flush=True)
    lab, pl = new_province(tmp, "slow", contracted_down=20, contracted_up=20,
                           notify_extra="max_per_hour = 100\n")
    took: list[float] = []
    misses = 0
    try:
        o = pl.office(tslcd=True)
        pl.start_dc()
        lab.speedserver(pl.dc, SPEED_PORT)
        pl.shape(o, 12)
        pl.start_agent(o, bandwidth=True, latency_s=30)
        noc = "noc@vnpt.example"
        print(f"{'trial':>5} {'test cmd s':>10} {'rules s':>8} {'mail s':>7} {'measured down/up Mbit/s':>24} "
              f"{'retest':>7} {'incident':>9}", flush=True)
        for t in range(1, trials + 1):
            if not wait_until(lambda: o.site in reach_up(pl, [o]), 60):
                print(f"{t:>5} fiber reach never reported up within 60 s; stopping")
                misses += trials - t + 1
                break
            pl.shape(o, 12)
            time.sleep(1)
            seen = {m.path for m in read_mails(pl)}
            t0 = time.time()
            r = pl.cli("test", "--site", o.site, "--line", "fiber", "--probe", "bandwidth", "--wait", "90")
            cmd_s = time.time() - t0
            if r.returncode != 0:
                print(f"{t:>5} `collector test` failed (rc {r.returncode}): {(r.stdout + r.stderr).strip()[:300]}")
            mail = wait_until(lambda: [m for m in read_mails(pl) if m.path not in seen and noc in m.to
                                       and not is_resolved(m)], max(10.0, SLOW_GOAL_S + 60 - cmd_s))
            mail_s = mail[0].at - t0 if mail else None
            if mail_s is None:
                misses += 1
            else:
                took.append(mail_s)
            inc = next((i for i in detected_since(pl, t0) if i.kind == "slow_line"), None)
            s = inc.summary if inc else {}
            speeds = f"{s.get('measured_down_mbps', float('nan')):.2f}/{s.get('measured_up_mbps', float('nan')):.2f}"
            print(f"{t:>5} {cmd_s:>10.1f} {fmt(inc.detected_at - t0 if inc else None, 8)} {fmt(mail_s)} "
                  f"{speeds:>24} {str(s.get('retest', '-')):>7} "
                  f"{('#' + str(inc.id) + ' ' + inc.kind) if inc else 'none':>9}"
                  + ("" if mail else f"   <- no mail; collector log tail:\n{pl.log()[-1500:]}"), flush=True)
            if inc and t < trials:
                r = pl.cli("incidents", "resolve", str(inc.id), "--note", "bench")
                if r.returncode != 0:
                    print(f"      incidents resolve failed: {(r.stdout + r.stderr).strip()[:300]}")
                time.sleep(2)
        kinds: dict[str, int] = {}
        for i in incidents(pl):
            kinds[i.kind] = kinds.get(i.kind, 0) + 1
        tests = with_record(pl, lambda rec: rec.events(_event_filter(kind="bandwidth", site=o.site)))
        print(f"incidents: {kinds}; bandwidth tests recorded: {len(tests)} "
              f"({sum(1 for e in tests if e.ok)} ok)")
        if took:
            p50, mx = statistics.median(took), max(took)
            print(f"first test -> mail at SMTP: n={len(took)}  p50 {p50:.1f}  max {mx:.1f} s"
                  + (f"  ({misses} trial(s) without a mail)" if misses else ""))
            summary.append(("slow line -> confirmed, mailed, max", f"{mx:.1f} s (p50 {p50:.1f}, n={len(took)}"
                            f"{', ' + str(misses) + ' missed' if misses else ''})",
                            f"<= {SLOW_GOAL_S:.0f} s", mx <= SLOW_GOAL_S and not misses))
        else:
            summary.append(("slow line -> confirmed, mailed, max", "no mail", f"<= {SLOW_GOAL_S:.0f} s", False))
        probs = log_problems(pl)
        if probs:
            print(f"collector log: {len(probs)} ERROR/Traceback line(s), first: {probs[0][:200]}")
    finally:
        lab.close()


def _event_filter(**kw):
    from linewatch.collector.record import EventFilter
    return EventFilter(**kw)


# -- 3. province-wide outage ------------------------------------------------------------------
def bench_storm(tmp: Path, sites: int, wait_s: float, summary: list) -> None:
    n_vnpt = round(sites * 0.6)
    split = {"VNPT": n_vnpt, "Viettel": sites - n_vnpt}
    print(f"\n== 3. Province-wide outage: {sites} offices ({split['VNPT']} VNPT, {split['Viettel']} Viettel), "
          f"all with TSLCD, every fiber blackholed at once; mails counted {wait_s:.0f} s after the cut "
          f"(default [notify]: max_per_hour 12; group_wait_s 5)", flush=True)
    lab, pl = new_province(tmp, "storm")
    try:
        offices = [pl.office(tslcd=True, isp="VNPT" if i < n_vnpt else "Viettel") for i in range(sites)]
        pl.start_dc()
        t_start = time.time()
        for o in offices:
            pl.start_agent(o, latency_s=60)
            time.sleep(0.2)  # 2 cores: do not start 50 interpreters in the same second
        up = wait_until(lambda: len(reach_up(pl, offices)) == len(offices), 240, step=1)
        n_up = len(reach_up(pl, offices))
        print(f"agents started in {time.time() - t_start:.0f} s; fiber reach up at {n_up}/{len(offices)} sites",
              flush=True)
        if not up:
            print("not every office reported its fiber up within 240 s; cutting anyway")
        time.sleep(5)
        cpid = pl.collector.pid
        before = proc_stats(cpid)
        seen = {m.path for m in read_mails(pl)}
        t_cut = time.time()
        pl.cut(offices)
        time.sleep(wait_s)
        after = proc_stats(cpid)
        mails = [m for m in read_mails(pl) if m.path not in seen]
        incs = detected_since(pl, t_cut)
        line_down = [i for i in incs if i.kind == "line_down"]
        other = {}
        for i in incs:
            if i.kind != "line_down":
                other[i.kind] = other.get(i.kind, 0) + 1
        codes = {o.site: o for o in offices}
        print(f"incidents opened after the cut: {len(line_down)} line_down at {len({i.site for i in line_down})} "
              f"sites" + (f"; others: {other}" if other else ""))
        if line_down:
            det = sorted(i.detected_at - t_cut for i in line_down)
            print(f"  rules detected them {det[0]:.1f} .. {det[-1]:.1f} s after the cut "
                  f"(agents measured {min(i.opened_at for i in line_down) - t_cut:.1f} .. "
                  f"{max(i.opened_at for i in line_down) - t_cut:.1f} s)")
        print(f"mails in the {wait_s:.0f} s after the cut: {len(mails)}")
        print(f"{'recipient':<22} {'notice#':>7} {'at s':>6} {'sites listed':>12} {'notices':>7}  subject")
        per: dict[str, list] = {}
        for m in mails:
            per.setdefault(m.to, []).append(m)
            text = body(m)
            listed = sum(1 for c in codes if c in text)
            nids = len([x for x in str(m["X-Linewatch-Notices"] or "").split(",") if x.strip()])
            print(f"{m.to:<22} {len(per[m.to]):>7} {m.at - t_cut:>6.1f} {listed:>12} {nids:>7}  "
                  f"{str(m['Subject'])[:90]}")
        goal_ok = True
        for isp, n in split.items():
            if n == 0:
                continue
            to = f"noc@{isp.lower()}.example"
            got = per.get(to, [])
            ok = len(got) == 1
            goal_ok &= ok
            first = f"{got[0].at - t_cut:.1f}" if got else "-"
            last = f"{got[-1].at - t_cut:.1f}" if got else "-"
            listed = [sum(1 for c, o in codes.items() if c in body(m) and o.isp == isp) for m in got]
            print(f"notices per operator: {isp:<8} {len(got)} mail(s) to {to} for {n} sites; sites listed per "
                  f"mail {listed}; first at {first} s, last at {last} s after the cut")
            summary.append((f"outage of {n} {isp} sites: notices", f"{len(got)} (sites listed {listed}, first "
                            f"{first} s, last {last} s)", "1", ok))
        others = {k: len(v) for k, v in per.items() if not k.startswith("noc@")}
        if others:
            print(f"other recipients: {others}")
        if before and after:
            print(f"collector (pid {cpid}): RSS {after.get('VmRSS', 0):.1f} MB (peak {after.get('VmHWM', 0):.1f} MB); "
                  f"CPU {after['cpu'] - before['cpu']:.2f} s in the {wait_s:.0f} s after the cut, "
                  f"{after['cpu']:.2f} s in total since it started (the {sites} agents started "
                  f"{time.time() - t_start:.0f} s ago)")
            summary.append(("collector during the outage", f"RSS {after.get('VmRSS', 0):.0f} MB, "
                            f"CPU {after['cpu'] - before['cpu']:.1f} s / {wait_s:.0f} s", "-", None))
        # heal: what the operators hear when it is over
        seen |= {m.path for m in mails}
        t_heal = time.time()
        pl.heal()
        closed = wait_until(lambda: not [i for i in incidents(pl, live_only=True) if i.kind == "line_down"], 120,
                            step=1)
        time.sleep(10)
        res = [m for m in read_mails(pl) if m.path not in seen]
        rper: dict[str, list] = {}
        for m in res:
            rper.setdefault(m.to, []).append(m)
        print(f"after healing all: line_down incidents {'all closed' if closed else 'NOT all closed'} "
              f"{time.time() - t_heal - 10:.0f} s after the heal; mails then: "
              + ", ".join(f"{k}: {len(v)} (sites listed {[sum(1 for c in codes if c in body(m)) for m in v]})"
                          for k, v in rper.items()))
        for isp, n in split.items():
            if n:
                got = rper.get(f"noc@{isp.lower()}.example", [])
                summary.append((f"outage of {n} {isp} sites: resolved mails",
                                f"{len(got)} (sites listed {[sum(1 for c in codes if c in body(m)) for m in got]})",
                                "none set", None))
        probs = log_problems(pl)
        if probs:
            print(f"collector log: {len(probs)} ERROR/Traceback line(s), first: {probs[0][:200]}")
    finally:
        lab.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10, help="blackhole trials (default: %(default)s)")
    ap.add_argument("--slow-trials", type=int, default=3, help="slow-line trials (default: %(default)s)")
    ap.add_argument("--sites", type=int, default=50, help="offices in the province-wide outage (2..89, "
                                                          "default: %(default)s)")
    ap.add_argument("--storm-wait", type=float, default=60, help="seconds after the mass cut before the mails "
                                                                 "are counted (default: %(default)s)")
    ap.add_argument("--skip-blackhole", action="store_true")
    ap.add_argument("--skip-slow", action="store_true")
    ap.add_argument("--skip-storm", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, record, mails)")
    args = ap.parse_args()
    if not 2 <= args.sites <= 89:
        ap.error("--sites must be 2..89 (fiber subnets 10+i must stay below the TSLCD ones at 100+i)")
    if args.trials < 1 or args.slow_trials < 1:
        ap.error("--trials and --slow-trials must be >= 1")
    if os.geteuid() != 0:
        print("bench incidents: needs root (network namespaces)", file=sys.stderr)
        return 2
    for tool in ("ip", "tc", "nft", "mosquitto"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            print(f"bench incidents: {tool} is not installed", file=sys.stderr)
            return 2
    tmp = Path(tempfile.mkdtemp(prefix="lw-bench-incidents-"))
    print(f"incidents bench: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; tmp {tmp}", flush=True)
    summary: list[tuple[str, str, str, bool | None]] = []
    failed = False
    try:
        if not args.skip_blackhole:
            bench_blackhole(tmp, args.trials, summary)
        if not args.skip_slow:
            bench_slow(tmp, args.slow_trials, summary)
        if not args.skip_storm:
            bench_storm(tmp, args.sites, args.storm_wait, summary)
    except BaseException:
        failed = True
        traceback.print_exc()
    finally:
        if summary:
            print(f"\n== summary (load average now {os.getloadavg()[0]:.2f})")
            w = max(len(s[0]) for s in summary)
            wv = max(len(s[1]) for s in summary)
            wg = max(len(s[2]) for s in summary)
            print(f"{'figure':<{w}}  {'measured':<{wv}}  {'goal':<{wg}}  met")
            for name, val, goal, ok in summary:
                print(f"{name:<{w}}  {val:<{wv}}  {goal:<{wg}}  {'-' if ok is None else ('yes' if ok else 'NO')}")
        if args.keep or failed:
            print(f"kept {tmp}" + (" (after an error)" if failed and not args.keep else ""))
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

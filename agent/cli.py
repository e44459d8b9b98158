"""linewatch-agent: the command a commune PC or Raspberry Pi runs."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from linewatch import table
from linewatch.config import ConfigError
from linewatch.wire import format_time

from . import config as agent_config
from .probes import REGISTRY, Result

DESCRIPTION = """\
Measures each line of a commune office (latency, jitter, loss, ...) and sends the
results to the province's linewatch collector over MQTT. Results are kept on disk
while the line or the collector is down, and sent later with their original time.

Commands:
  run            run the agent (normally started by systemd)
  probe          measure one line once and print the result -- the first thing to run
                 when a commune calls ("is the line down?")
  lan            sweep the office LAN once and print what answers (needs a [lan] table;
                 does not change what the agent remembers or publishes)
  check-config   check the config file and say exactly what is wrong
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="linewatch-agent", description=DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", "--config", default="/etc/linewatch/agent.toml",
                    help=f"agent config file (default: %(default)s; commented example: {agent_config.EXAMPLE})")
    ap.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="run the agent until stopped (Ctrl-C / systemctl stop)")
    p = sub.add_parser("probe", help="measure one line once and print the result")
    p.add_argument("--line", help="line id from the config (default: every line)")
    p.add_argument("--probe", choices=sorted(REGISTRY), help="which probe (default: every probe of the line)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p = sub.add_parser("lan", help="sweep the LAN once and print the devices found")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sub.add_parser("check-config", help="validate the config file and exit")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = agent_config.load(args.config)
    except ConfigError as e:
        print(f"linewatch-agent: config error: {e}", file=sys.stderr)
        return 2
    if args.cmd == "check-config":
        print(f"{args.config}: OK -- agent {cfg.agent_id}, site {cfg.site}, lines: "
              f"{', '.join(l.id for l in cfg.lines)}")
        return 0
    if args.cmd == "probe":
        return one_shot(cfg, args.line, args.probe, args.json)
    if args.cmd == "lan":
        return lan_once(cfg, args.json)
    return run(cfg)


def run(cfg: agent_config.AgentConfig) -> int:
    from .runner import Agent

    stop = threading.Event()
    fatal: list[str] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        agent = Agent(cfg, on_fatal=lambda why: (fatal.append(why), stop.set()))
    except OSError as e:
        print(f"linewatch-agent: cannot open the state folder {cfg.state_dir}: {e.strerror} "
              f"(set [agent] state_dir to a folder this user can write)", file=sys.stderr)
        return 2
    try:
        agent.run(stop)
    except KeyboardInterrupt:
        pass
    if fatal:
        print(f"linewatch-agent: {fatal[0]}", file=sys.stderr)
        return 3
    return 0


def one_shot(cfg: agent_config.AgentConfig, line_id: str | None, probe: str | None, as_json: bool) -> int:
    try:
        lines = [cfg.line(line_id)] if line_id else list(cfg.lines)
    except ConfigError as e:
        print(f"linewatch-agent: {e}", file=sys.stderr)
        return 2
    results: list[Result] = []
    for ln in lines:
        for name, pcfg in ln.probes.items():
            if probe and name != probe:
                continue
            results.extend(REGISTRY[name].run(ln.binding, pcfg))
    if not results:
        print(f"linewatch-agent: no probe {probe!r} configured on the chosen line(s)", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps([{"kind": r.kind, "line": r.line, "measured_at": format_time(r.measured_at),
                           "ok": r.ok, "error_code": r.error_code, "error": r.error, "data": r.data}
                          for r in results], ensure_ascii=False, indent=2))
    else:
        print(format_table(results))
    return 0 if all(r.ok for r in results) else 1


def lan_once(cfg: agent_config.AgentConfig, as_json: bool) -> int:
    from .discovery.subnets import plan
    from .lan import local_addresses, run_sweep

    if cfg.lan is None:
        print("linewatch-agent: no [lan] table in the config: LAN discovery is off", file=sys.stderr)
        return 2
    targets, skipped = plan(local_addresses(), list(cfg.lan.subnets), max_prefix=cfg.lan.max_prefix,
                            allow_wide=cfg.lan.allow_wide, interfaces=list(cfg.lan.interfaces) or None)
    for s in skipped:
        print(f"not swept: {s.what}: {s.reason}", file=sys.stderr)
    if not targets:
        print("linewatch-agent: no LAN network to sweep", file=sys.stderr)
        return 1
    try:
        out = run_sweep(targets, cfg.lan, counted_as_computer=cfg.counted_as_computer)
    except Exception as e:  # noqa: BLE001 - shown to the technician as is
        print(f"linewatch-agent: sweep failed: {e}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    print(f"{', '.join(t.cidr + ' on ' + t.interface for t in targets)}: {len(out['hosts'])} devices "
          f"in {out['sweep_s']:.1f} s, method {out['method']}")
    for note in out["notes"]:
        print(f"  ({note})")
    rows = [[h["ip"], h["mac"], h["device_class"], h["vendor"] or "-", h["name"] or "-", h.get("evidence") or "-"]
            for h in out["hosts"]]
    print(table.render(["ip", "mac", "class", "vendor", "name", "why"], rows, rule=False))
    return 0


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def _figures(r: Result) -> str | None:
    """The probe's own headline figures, for the clerk reading the table."""
    probe = REGISTRY.get(r.kind)
    return probe.summary(r.data) if probe else None


def format_table(results: list[Result]) -> str:
    headers = ["line", "kind", "target", "method", "loss %", "median ms", "p95 ms", "jitter ms", "figures", "result"]
    rows = []
    for r in results:
        d = r.data
        verdict = "OK" if r.ok else f"FAIL {r.error_code}: {r.error}"
        target = d.get("target") or d.get("url") or (f"{d['name']} @ {d['resolver']}" if "resolver" in d else None)
        rows.append([r.line or "-", r.kind, target, d.get("method"), d.get("loss_pct"),
                     d.get("rtt_median_ms"), d.get("rtt_p95_ms"), d.get("jitter_ms"), _figures(r), verdict])
    return table.render(headers, [[_fmt(c) for c in row] for row in rows])


if __name__ == "__main__":
    sys.exit(main())

"""linewatch-collector: the province's side."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from linewatch.config import ConfigError

from . import config as collector_config
from . import registry as registry_mod
from . import status as status_mod

DESCRIPTION = """\
Receives what the commune agents measure (over MQTT), checks every message against the
wire contract and the site registry, and keeps the record (SQLite).

Commands:
  run            run the collector (normally started by systemd)
  status         every site and line: last measurement, its age, agent online/offline
  check-config   check the collector config and the site registry
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="linewatch-collector", description=DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", "--config", default="/etc/linewatch/collector.toml",
                    help=f"collector config (default: %(default)s; commented example: {collector_config.EXAMPLE})")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="run until stopped")
    p = sub.add_parser("status", help="show every site and line")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--lang", choices=("vi", "en"), default="vi", help="table language (default: vi)")
    sub.add_parser("check-config", help="validate config and registry, then exit")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = collector_config.load(args.config)
        registry = registry_mod.load(cfg.registry_path)
    except ConfigError as e:
        print(f"linewatch-collector: config error: {e}", file=sys.stderr)
        return 2
    if args.cmd == "check-config":
        n_lines = sum(len(s.lines) for s in registry.sites.values())
        print(f"OK -- {len(registry.sites)} sites, {n_lines} lines in {cfg.registry_path}")
        return 0
    from .store import Store

    try:
        store = Store(cfg.record_path)
    except Exception as e:  # sqlite3 / OS errors: say which file and what to do
        print(f"linewatch-collector: cannot open the record {cfg.record_path}: {e} "
              f"(check the folder exists and is writable, and the disk is not full)", file=sys.stderr)
        return 2
    if args.cmd == "status":
        rows = status_mod.build(registry, store, cfg.offline_after_s)
        if args.json:
            print(json.dumps({"sites": rows, "counters": store.counters()}, ensure_ascii=False, indent=2))
        else:
            print(status_mod.render(rows, args.lang))
        return 0
    return run(cfg, registry, store)


def run(cfg: collector_config.CollectorConfig, registry, store) -> int:
    from .ingest import Ingestor
    from .mqtt import Subscriber

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sub = Subscriber(cfg.mqtt, Ingestor(store, registry),
                     maintenance=lambda: store.rollup_and_prune(cfg.raw_days, cfg.rollup_days))
    sub.start()
    try:
        while not stop.wait(0.5):
            if sub.fatal:
                break
    except KeyboardInterrupt:
        pass
    sub.stop()
    store.close()
    if sub.fatal:
        print(f"linewatch-collector: {sub.fatal}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`linewatch up`: the whole system on one machine with nothing to install -- an embedded
MQTT broker, the collector with its SQLite record, and a local agent -- showing live status.

`linewatch agent ...` and `linewatch collector ...` are the same as linewatch-agent and
linewatch-collector.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from . import __version__
from .config import ConfigError

DEMO_FILES = Path(__file__).with_name("embedded")

DESCRIPTION = f"""\
linewatch {__version__} -- measured line quality for commune offices.

  linewatch up                  run broker + collector + a local agent here, with live status
  linewatch agent --help        the agent (commune PC / Raspberry Pi)
  linewatch collector --help    the collector (province server)
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "agent":
        from .agent.cli import main as agent_main
        return agent_main(argv[1:])
    if argv and argv[0] == "collector":
        from .collector.cli import main as collector_main
        return collector_main(argv[1:])
    ap = argparse.ArgumentParser(prog="linewatch", description=DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("agent", help="the agent's commands (see linewatch agent --help)")
    sub.add_parser("collector", help="the collector's commands (see linewatch collector --help)")
    up = sub.add_parser("up", help="run everything here on embedded defaults",
                        description="Runs an embedded MQTT broker, the collector (SQLite record) and a local "
                                    "agent in one process and prints live status. Ctrl-C stops everything. "
                                    "The config files are written to --dir on first run: edit them there.")
    up.add_argument("--dir", default=os.environ.get("LINEWATCH_HOME", "var/linewatch"),
                    help="folder for configs, record and agent state (default: %(default)s)")
    up.add_argument("--port", type=int, default=1883, help="MQTT port of the embedded broker (default: %(default)s)")
    up.add_argument("--no-agent", action="store_true", help="run broker and collector only (agents elsewhere)")
    up.add_argument("--refresh", type=float, default=5.0, help="seconds between status screens (default: %(default)s)")
    up.add_argument("--duration", type=float, default=0, help="stop by itself after this many seconds (0: never)")
    up.add_argument("--lang", choices=("vi", "en"), default="vi", help="status language (default: %(default)s)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return up_command(args)
    except ConfigError as e:
        print(f"linewatch: config error: {e}", file=sys.stderr)
        return 2


def prepare_dir(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    for name in ("registry.toml", "agent.toml", "collector.toml"):
        if not (home / name).exists():
            shutil.copy(DEMO_FILES / name, home / name)


def up_command(args: argparse.Namespace) -> int:
    from .agent import config as agent_config
    from .collector import config as collector_config
    from .collector import registry as registry_mod
    from .collector import status as status_mod
    from .collector.ingest import Ingestor
    from .collector.mqtt import Subscriber
    from .collector.maintenance import Maintenance
    from .collector.record import RecordConfigError, open_record
    from .embedded import BrokerError, EmbeddedBroker

    home = Path(args.dir).resolve()
    prepare_dir(home)
    ccfg = collector_config.load(home / "collector.toml")
    # the embedded broker (amqtt) speaks MQTT 3.1.1 only
    ccfg = dataclasses.replace(ccfg, mqtt=dataclasses.replace(ccfg.mqtt, host="127.0.0.1", port=args.port,
                                                              mqtt_version=3))
    registry = registry_mod.load(ccfg.registry_path)
    acfg = None
    if not args.no_agent:
        acfg = agent_config.load(home / "agent.toml")
        acfg = dataclasses.replace(acfg, mqtt=dataclasses.replace(acfg.mqtt, host="127.0.0.1", port=args.port))

    broker = EmbeddedBroker("127.0.0.1", args.port)
    try:
        broker.start()
    except BrokerError as e:
        print(f"linewatch: {e}", file=sys.stderr)
        return 2
    print(f"linewatch: embedded MQTT broker on 127.0.0.1:{args.port}; files in {home}", flush=True)
    try:
        store = open_record(ccfg.record)
    except RecordConfigError as e:
        broker.stop()
        print(f"linewatch: {e}", file=sys.stderr)
        return 2
    from .collector.commands import publisher
    from .collector.incidents.engine import Engine

    wake_rules = threading.Event()
    collector = Subscriber(ccfg.mqtt, Ingestor(store, registry), maintenance=Maintenance(store, ccfg),
                           on_stored=wake_rules.set)
    # the incident rules run here too (no mail server in the demo: notices wait in the record,
    # see `linewatch collector -c collector.toml incidents`)
    rules = Engine(store, registry, ccfg.incidents, publish=publisher(collector.client))
    collector.start()
    stop = threading.Event()
    threading.Thread(target=rules.run_forever, args=(stop, wake_rules), name="incident-rules", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    agent = agent_thread = None
    if acfg:
        from .agent.runner import Agent
        # the embedded broker (amqtt) speaks MQTT 3.1.1 only: no 15 s wait for a fall-back
        agent = Agent(acfg, on_fatal=lambda why: stop.set(), mqtt5=False)
        agent_thread = threading.Thread(target=agent.run, args=(stop,), name="agent", daemon=True)
        agent_thread.start()
    deadline = time.monotonic() + args.duration if args.duration else None
    try:
        while not stop.is_set() and not collector.died.is_set():
            if stop.wait(args.refresh):
                break
            rows = status_mod.build(registry, store, ccfg.offline_after_s)
            if sys.stdout.isatty():
                print("\033[2J\033[H", end="")
            c = collector.stats
            print(f"\n{time.strftime('%H:%M:%S')}  linewatch up -- stored {c['stored']}, rejected {c['rejected']}, "
                  f"duplicates {c['duplicate']}   (Ctrl-C to stop)")
            print(status_mod.render(rows, args.lang), flush=True)
            live = store.incidents(live_only=True)
            if live:
                from .collector.cli_incidents import render_list
                print(("Sự cố đang mở:" if args.lang == "vi" else "Open incidents:") + "\n" +
                      render_list(live, args.lang), flush=True)
            if deadline and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        pass
    print("linewatch: stopping ...", flush=True)
    stop.set()
    if agent_thread:
        agent_thread.join(15)
    collector.stop()
    store.close()
    broker.stop()
    if collector.fatal:
        print(f"linewatch: {collector.fatal}", file=sys.stderr)
        return 4
    print("linewatch: stopped cleanly", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

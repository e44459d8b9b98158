"""linewatch-collector: the province's side."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from linewatch.config import ConfigError, password_file_may_be_missing
from linewatch.text import json_for_terminal

from . import config as collector_config
from . import registry as registry_mod
from . import status as status_mod

DESCRIPTION = """\
Receives what the commune agents measure (over MQTT), checks every message against the
wire contract and the site registry, and keeps the record (`record =` in the config: an
SQLite file, or postgresql://... for province and national servers). A message that cannot
be stored is quarantined with its reason; it never stops the others.

Commands:
  run            run the collector (normally started by systemd). Exit codes: 2 bad config
                 or record unreachable, 3 broker refused the login, 4 the writer died
                 (systemd restarts it; nothing unacknowledged is lost)
  status         every site and line: the latest result of each probe kind and its age,
                 agents online/offline/silent and messages missing
  check-config   check the collector config and the site registry

Incidents (the rules open them; the operator of the line hears of it with the evidence):
  incidents      list them; `incidents show ID`, `incidents ack ID --by NAME`,
                 `incidents resolve ID --note TEXT`
  maintenance    planned works: `maintenance add|list|remove` (no notices meanwhile)
  test           run a line's probes now on the site's agent and print the result

Monthly reports ([report]; also written by the collector itself after each month closes):
  report         write a month's report: the XLSX form, operator sheets, units that fall
                 short, completeness, traceability, and the DOCX cover ready to sign

Time series ([export] url: VictoriaMetrics or InfluxDB; Grafana reads it):
  export         refill a new or wiped time-series server from the record (--since DATE)

Broker security (run as root on the province server; see README "Security"):
  init-ca        once: the provincial CA, the broker's TLS certificate, the collector's
                 broker login and the ACL
  enrol          one agent: its broker password, the ACL, and a folder (agent.toml,
                 agent.password, ca.crt) to hand to the commune
  acl            regenerate the broker's ACL after editing the registry
Then reload Mosquitto so it reads the new files: systemctl reload mosquitto (SIGHUP).
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
    from . import cli_incidents
    from .export import cli as export_cli

    cli_incidents.add_commands(sub)
    export_cli.add_command(sub)
    from .report import cli as report_cli

    report_cli.add_command(sub)
    _add_security_commands(sub)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        # the security commands do not log in to the broker, and init-ca creates the password file
        with password_file_may_be_missing(args.cmd in ("init-ca", "enrol", "acl")):
            cfg = collector_config.load(args.config)
        registry = registry_mod.load(cfg.registry_path)
    except ConfigError as e:
        print(f"linewatch-collector: config error: {e}", file=sys.stderr)
        return 2
    if args.cmd == "check-config":
        n_lines = sum(len(s.lines) for s in registry.sites.values())
        print(f"OK -- {len(registry.sites)} sites, {n_lines} lines in {cfg.registry_path}")
        return 0
    if args.cmd in ("init-ca", "enrol", "acl"):
        return security_command(args, cfg, registry)
    from .record import RecordConfigError, open_record

    try:
        record = open_record(cfg.record)
    except RecordConfigError as e:
        print(f"linewatch-collector: {e}", file=sys.stderr)
        return 2
    if record.migrated and record.migrated != [1, 2, 3, 4]:
        logging.getLogger("linewatch.collector").info("record %s upgraded to schema %s", record.where,
                                                      record.migrated[-1])
    if args.cmd == "status":
        rows = status_mod.build(registry, record, cfg.offline_after_s)
        if args.json:
            print(json_for_terminal(json.dumps({"sites": rows, "counters": record.counters()}, ensure_ascii=False,
                                               indent=2)))
        else:
            print(status_mod.render(rows, args.lang))
            live = record.incidents(live_only=True)
            if live:
                from .cli_incidents import render_list

                print("\n" + ("Sự cố đang mở:" if args.lang == "vi" else "Open incidents:"))
                print(render_list(live, args.lang))
        return 0
    if args.cmd == "export":
        from .export import cli as export_cli

        try:
            return export_cli.run(args, cfg, registry, record)
        finally:
            record.close()
    if args.cmd == "report":
        from .report import cli as report_cli

        try:
            return report_cli.run(args, cfg, registry, record)
        finally:
            record.close()
    if args.cmd in ("incidents", "maintenance", "test"):
        from . import cli_incidents

        try:
            return cli_incidents.run(args, cfg, registry, record)
        finally:
            record.close()
    return run(cfg, registry, record)


#: Exit codes of `run`: 3 = the broker refused our login (fix the config, do not loop);
#: 4 = the record writer died (the service manager restarts us).
EXIT_CREDENTIALS, EXIT_WRITER_DIED = 3, 4


def run(cfg: collector_config.CollectorConfig, registry, record) -> int:
    from .ingest import Ingestor
    from .maintenance import Maintenance
    from .mqtt import Subscriber

    from .commands import publisher
    from .incidents.engine import Engine
    from .notify.sender import Notifier

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    wake_rules = threading.Event()
    sub = Subscriber(cfg.mqtt, Ingestor(record, registry), maintenance=Maintenance(record, cfg),
                     on_stored=wake_rules.set)
    notifier = Notifier(record, registry, cfg.notify)
    engine = Engine(record, registry, cfg.incidents, publish=publisher(sub.client), on_change=notifier.wake)
    web = None
    if cfg.http.port:
        from .web import AckServer

        web = AckServer(record, notifier.links, cfg.http, registry=registry)
        from .metrics import registry_for, route

        web.add_route("/metrics", route(registry_for(record, cfg.offline_after_s, sub._q.qsize)))
        try:
            web.start()
        except OSError as e:  # measurements matter more than links: keep collecting, say what is missing
            logging.getLogger("linewatch.collector").error(
                "cannot listen on %s:%s for acknowledgement links (%s): links in notices will not work until "
                "[http] port is fixed; `linewatch-collector incidents ack` still does", cfg.http.listen,
                cfg.http.port, e.strerror or e)
            web = None
    sub.start()
    workers = [threading.Thread(target=engine.run_forever, args=(stop, wake_rules), name="incident-rules",
                                daemon=True),
               threading.Thread(target=notifier.run_forever, args=(stop,), name="notifier", daemon=True)]
    if cfg.report.auto:
        from .report.auto import MonthlyReports

        reports = MonthlyReports(record, registry, cfg.report, on_queued=notifier.wake)
        workers.append(threading.Thread(target=reports.run_forever, args=(stop,), name="monthly-reports",
                                        daemon=True))
    if cfg.export.enabled:
        from .export.exporter import Exporter

        exporter = Exporter(record, registry, cfg.export)
        workers.append(threading.Thread(target=exporter.run_forever, args=(stop,), name="tsdb-export", daemon=True))
    for w in workers:
        w.start()
    try:
        while not stop.wait(0.5) and not sub.died.is_set():
            pass
    except KeyboardInterrupt:
        pass
    stop.set()
    wake_rules.set()
    notifier.wake()
    for w in workers:
        w.join(10)
    if web:
        web.stop()
    sub.stop()
    record.close()
    if sub.fatal:
        print(f"linewatch-collector: {sub.fatal}", file=sys.stderr)
        return EXIT_CREDENTIALS if "credentials" in sub.fatal else EXIT_WRITER_DIED
    return 0


RELOAD_HINT = ("Now reload Mosquitto so it reads the new files (existing connections stay up):\n"
               "  systemctl reload mosquitto      (or: kill -HUP $(pidof mosquitto))\n"
               "  Nạp lại Mosquitto: systemctl reload mosquitto")


def _wrap(text: str) -> str:
    import textwrap

    return "\n\n".join(textwrap.fill(par, 78) for par in text.split("\n\n"))


def _add_security_commands(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "init-ca", formatter_class=fmt, help="create the provincial CA, the broker certificate and the ACL",
        description=_wrap("Run once on the province server, as root. Creates the provincial CA ([security] ca_dir; "
                    "its ca.key is secret and stays on this server), (re)issues the broker's TLS certificate "
                    "for the names agents use, gives the collector its own broker login and writes the ACL "
                    "from the registry into [security] broker_dir, where deploy/server/mosquitto.conf "
                    "expects them. Running it again keeps the CA (agents keep trusting it) and issues a "
                    "fresh server certificate, e.g. after the server's name changed."))
    p.add_argument("--host", action="append", default=[],
                   help="a DNS name or IP address agents use to reach this broker (repeat for several; "
                        "default: [security] broker_host)")
    p.add_argument("--days", type=int, default=3650, help="CA lifetime in days (server certificate: at most 825)")
    p = sub.add_parser(
        "enrol", formatter_class=fmt, help="credentials + ready config folder for one agent",
        description=_wrap("Enrol one agent of one commune, in one step: a random broker password (added to the "
                    "broker's password file), the ACL regenerated from the registry, and a folder with "
                    "agent.toml, agent.password and ca.crt to hand to the commune for "
                    "`sudo deploy/agent/install.sh agent.toml`.\n\n"
                    "The agent must already be listed in its site's `agents = [...]` in the registry: the "
                    "registry decides who may write for which commune, and this command does not rewrite "
                    "your hand-commented registry file (it tells you the exact line to add)."),
        epilog="example:\n  linewatch-collector enrol --site 21583 --agent-id ag-21583-01 \\\n"
               "      --broker-host linewatch.tinh.example --bind vnpt-fiber=192.168.1.10 \\\n"
               "      --bind vnpt-tslcd=eth1 --out /root/enrol/ag-21583-01")
    p.add_argument("--site", required=True, help="the site code in the registry, e.g. 21583")
    p.add_argument("--agent-id", required=True, help="the agent's id, also its broker user name, e.g. ag-21583-01")
    p.add_argument("--broker-host", help="the name agents use to reach the broker (must be in the server "
                                         "certificate; default: [security] broker_host)")
    p.add_argument("--broker-port", type=int, help="the broker's TLS port (default: [security] broker_port, 8883)")
    p.add_argument("--out", required=True, help="folder to write agent.toml, agent.password, ca.crt into")
    p.add_argument("--bind", action="append", default=[], metavar="LINE=ADDRESS|INTERFACE",
                   help="how a line leaves the commune PC: the address its modem gave the PC, or an "
                        "interface name (needed for every line when a site has more than one)")
    p.add_argument("--target", action="append", default=[], metavar="LINE=TARGET",
                   help="latency target of a line (repeat; default: 1.1.1.1 and dichvucong.gov.vn:443 for "
                        "internet lines, the broker for TSLCD lines)")
    p.add_argument("--install-dir", default="/etc/linewatch",
                   help="where the files will be on the commune PC (default: %(default)s, as install.sh puts them)")
    p.add_argument("--state-dir", default="/var/lib/linewatch-agent",
                   help="the agent's outbox folder on the commune PC (default: %(default)s)")
    p.add_argument("--replace", action="store_true",
                   help="the agent already has a password: give it a new one (the old one stops working)")
    sub.add_parser("acl", help="regenerate the broker's ACL from the registry",
                   description="Rewrite [security] broker_dir/acl from the registry's `agents = [...]` lists "
                               "(run after editing the registry), then reload Mosquitto.")


def security_command(args, cfg: collector_config.CollectorConfig, registry) -> int:
    import tomllib
    from pathlib import Path

    from . import enrol as enrolment, security

    sec = cfg.security
    collector_user = cfg.mqtt.username or "linewatch-collector"
    try:
        if args.cmd == "acl":
            path = security.write_acl(registry, sec.broker_dir, collector_user)
            n = sum(len(s.agents) for s in registry.sites.values())
            print(f"ACL written: {path} ({n} agents in {len(registry.sites)} sites)")
            print(RELOAD_HINT)
            return 0
        if args.cmd == "init-ca":
            hosts = args.host or ([sec.broker_host] if sec.broker_host else [])
            province = ",".join(sorted({s.province for s in registry.sites.values()}))
            res = security.init_ca(sec.ca_dir, sec.broker_dir, hosts, province=province, days=args.days)
            print(f"CA {'created' if res.ca_created else 'kept (already there)'}: {res.ca_cert} "
                  f"(its key {Path(sec.ca_dir) / security.CA_KEY} is secret: keep it on this server, back it up)")
            print(f"broker certificate for {', '.join(hosts)}: {res.server_cert}")
            # The collector logs in like everyone else (allow_anonymous false everywhere).
            doc = tomllib.loads(cfg.source.read_text()) if cfg.source else {}
            pf = doc.get("mqtt", {}).get("password_file") or "collector.password"
            pw_path = (cfg.source.parent if cfg.source else Path.cwd()) / pf
            if security.ensure_collector_login(sec.broker_dir, collector_user, pw_path):
                print(f"collector broker login {collector_user!r} created; its password is in {pw_path}")
            if not (cfg.mqtt.username and doc.get("mqtt", {}).get("password_file")):
                print(f"Add to [mqtt] of {cfg.source}:\n  username = \"{collector_user}\"\n"
                      f"  password_file = \"{pf}\"")
            print(f"ACL written: {security.write_acl(registry, sec.broker_dir, collector_user)}")
            print("Now restart Mosquitto so it loads the new certificate, logins and ACL:\n"
                  "  systemctl restart mosquitto\n  Khởi động lại Mosquitto: systemctl restart mosquitto")
            return 0
        host = args.broker_host or sec.broker_host
        if not host:
            raise ConfigError("say which name agents use to reach the broker: --broker-host NAME "
                              "(or set [security] broker_host in the collector config)")
        res = enrolment.enrol(registry, site_code=args.site, agent_id=args.agent_id, broker_host=host,
                             broker_port=args.broker_port or sec.broker_port, broker_dir=sec.broker_dir,
                             out_dir=Path(args.out), collector_user=collector_user,
                             install_dir=Path(args.install_dir), state_dir=args.state_dir,
                             bind=args.bind, target=args.target, replace=args.replace)
    except ConfigError as e:
        print(f"linewatch-collector {args.cmd}: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"linewatch-collector {args.cmd}: cannot write {e.filename}: {e.strerror} (run as root?)",
              file=sys.stderr)
        return 2
    print(f"agent {res.agent_id} of {res.site.code} {res.site.name}: "
          f"{'new password (the old one no longer works)' if res.replaced else 'enrolled'}")
    print(f"  password file: {Path(sec.broker_dir) / security.PASSWORD_FILE}")
    print(f"  ACL:           {res.acl_file}")
    print("Hand this folder to the commune (it holds a password: USB stick or encrypted mail, not chat):")
    print(f"  {res.out_dir}/  agent.toml  agent.password  ca.crt")
    print("On the commune PC: sudo deploy/agent/install.sh agent.toml   (run from that folder's copy)")
    print("  Gửi thư mục này cho xã; trên máy của xã chạy: sudo deploy/agent/install.sh agent.toml")
    print(RELOAD_HINT)
    return 0


if __name__ == "__main__":
    sys.exit(main())

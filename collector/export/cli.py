"""``linewatch-collector export --since DATE [--until DATE]``: refill a new or wiped
time-series server from the record. The collector's own export (feed position "export.tsdb")
is not touched; running both at once is harmless.

    from .export import cli as export_cli
    export_cli.add_command(sub)                      # in main(), beside the other commands
    if args.cmd == "export":
        return export_cli.run(args, cfg, registry, record)
"""
from __future__ import annotations

import argparse
import sys

from linewatch.config import ConfigError

from .config import ExportConfig
from .refill import parse_date, printer, refill
from .sink import ExportError

EXIT_CONFIG = 2
EXIT_FAILED = 1

HELP = """\
Write the points of every measurement taken in [--since, --until) to the time-series server of
[export] in the config again: after installing a new VictoriaMetrics/InfluxDB, or after it lost
its data. Progress goes to stderr. Points already there are overwritten, not doubled, so it is
safe to run it again or over a range the collector already exported. Dates: 2026-11-01 or
"2026-11-01 08:00" (Vietnam time), or 2026-11-01T01:00:00Z. The record keeps raw measurements
[retention] raw_days (default 62): older ones cannot be refilled.
"""


def add_command(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="refill the time-series server from the record (--since DATE)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--since", required=True, metavar="DATE", help="first day/time to write (Vietnam time)")
    p.add_argument("--until", metavar="DATE", help="write up to (not including) this time; default: now")
    return p


def run(args, cfg, registry, record) -> int:
    """``cfg``: the collector config (its ``export``) or an ExportConfig."""
    ex: ExportConfig | None = cfg if isinstance(cfg, ExportConfig) else getattr(cfg, "export", None)
    if ex is None or not ex.enabled:
        print("linewatch-collector export: [export] url is not set in the collector config: nothing to write to "
              "(see the [export] example in collector/example-collector.toml)", file=sys.stderr)
        return EXIT_CONFIG
    try:
        since = parse_date(args.since, "--since")
        until = parse_date(args.until, "--until") if args.until else None
    except ValueError as e:
        print(f"linewatch-collector export: {e}", file=sys.stderr)
        return EXIT_CONFIG
    if until is not None and until <= since:
        print(f"linewatch-collector export: --until {args.until} is not after --since {args.since}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"export: writing {args.since} .. {args.until or 'now'} to {ex.target}", file=sys.stderr, flush=True)
    try:
        st = refill(record, registry, ex, since, until, progress=printer(sys.stderr))
    except ConfigError as e:
        print(f"linewatch-collector export: config error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except ExportError as e:
        print(f"linewatch-collector export: {e}\nNothing is lost: run the same command again once the server "
              f"accepts writes.", file=sys.stderr)
        return EXIT_FAILED
    print(f"export: done: {st.exported} measurements, {st.points} points in {st.elapsed_s:.1f} s "
          f"({st.points_per_s:,.0f} points/s)", file=sys.stderr)
    return 0

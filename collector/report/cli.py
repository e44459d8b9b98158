"""``linewatch-collector report``: write a month's report now (the collector also does it by
itself after each month closes, see [report] in the config)."""
from __future__ import annotations

import argparse
import sys

from ..record import RecordError
from ..errors import ReportError

EXIT_BAD_REQUEST = 2
EXIT_FAILED = 1

HELP = """\
Write the monthly report of a past month from what linewatch measured, into --out DIR/<month>/:

  bao-cao-<month>-tong-hop.xlsx   the official form "BÁO CÁO SỐ LIỆU HẠ TẦNG CNTT" (one row per
                                  unit, the registry's figures beside the measured ones), the
                                  operators' lines (QCVN 34:2022: average speed against contracted,
                                  share of tests >= 0.8 x), units that fall short and why, how
                                  complete the data is, every incident, and where each figure comes
                                  from (the traceability sheet)
  bao-cao-<month>-tong-hop.docx   the cover report (Nghị định 30/2020/NĐ-CP), ready to sign
  bao-cao-<month>-<operator>.*    each operator's own part (to mail it before the 5th)

Times are Vietnam time. A figure resting on too little data says "Chưa đủ dữ liệu" and is never a
verdict. Running it again rewrites the files, except one changed since linewatch wrote it (e.g. a
signed copy): that one is kept and the new file is written beside it as "… (2).xlsx".
It works from the hourly rollups, so months whose raw measurements were pruned still report.
Exit status: 0 written; 2 bad month/province/site/operator or nothing measured; 1 failed.
"""


def add_command(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="write a month's report (XLSX form + operator sheets, DOCX cover)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--month", metavar="YYYY-MM", help="the month, e.g. 2026-10 (default: last month)")
    p.add_argument("--province", metavar="CODE", help="only this province (2-digit code)")
    p.add_argument("--site", metavar="CODE", help="only this unit (commune code)")
    p.add_argument("--operator", metavar="NAME", help="only this operator's lines (VNPT, Viettel, FPT, ...)")
    p.add_argument("--out", metavar="DIR", help="folder to write into (default: [report] out_dir)")
    p.add_argument("--no-operators", action="store_true", help="write the whole report only, not each operator's")
    return p


def run(args, cfg, registry, record) -> int:
    from .run import build, last_month, write

    rc = cfg.report
    month = args.month or last_month()
    say = lambda m: print(f"report: {m}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        say(f"lập báo cáo tháng {month} từ {record.where}")
        report = build(record, registry, rc, month, province=args.province, site=args.site,
                       operator=args.operator, progress=say)
        written = write(report, args.out or rc.out_dir, progress=say, operators=not args.no_operators)
    except ReportError as e:
        print(f"linewatch-collector report: {e}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    except RecordError as e:
        print(f"linewatch-collector report: the record cannot be read: {e}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:
        print(f"linewatch-collector report: cannot write into {args.out or rc.out_dir}: {e.strerror or e} "
              f"(check the folder exists, is writable, and the disk is not full)", file=sys.stderr)
        return EXIT_FAILED
    for changed, alt in written.kept:
        print(f"report: {changed.name} đã bị sửa sau khi linewatch ghi (bản đã ký?): giữ nguyên, bản mới ghi vào "
              f"{alt.name} (changed since written; kept)", file=sys.stderr)
    t = report.totals
    print(f"report: xong: {t.sites} đơn vị, {t.lines} đường truyền ({t.lines_speed_pass} đạt, {t.lines_speed_fail} "
          f"không đạt, {t.lines_insufficient} chưa đủ dữ liệu, {t.lines_no_data} chưa đo), {t.sites_short} đơn vị chưa đạt, {t.incidents} sự cố",
          file=sys.stderr)
    for p in written.files:
        print(p)
    return 0

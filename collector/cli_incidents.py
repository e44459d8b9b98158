"""`linewatch-collector incidents | maintenance | test`: the incident desk on the command line."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from linewatch import table as text_table
from linewatch import wire
from linewatch.config import ConfigError
from linewatch.text import json_for_terminal, printable

from .incidents.lifecycle import as_dict
from .notify import text as T

VN = timezone(timedelta(hours=7))
FMT = argparse.RawDescriptionHelpFormatter


def add_commands(sub) -> None:
    p = sub.add_parser("incidents", formatter_class=FMT, help="list, show, acknowledge and resolve incidents",
                       description="Incidents the rules opened: the newest first. Times in Vietnam time.\n\n"
                                   "  incidents [--open] [--site S] [--json]\n"
                                   "  incidents show ID\n"
                                   "  incidents ack ID --by NAME [--note TEXT]\n"
                                   "  incidents resolve ID --note TEXT [--by NAME]")
    p.add_argument("action", nargs="?", choices=("list", "show", "ack", "resolve"), default="list")
    p.add_argument("id", nargs="?", type=int, help="incident number (#)")
    p.add_argument("--open", action="store_true", help="only incidents not yet closed")
    p.add_argument("--site", help="only this site")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--by", help="who acknowledges or resolves (name, unit)")
    p.add_argument("--note", default="", help="a note kept with the acknowledgement or the resolution")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--lang", choices=("vi", "en"), default="vi")
    p = sub.add_parser("maintenance", formatter_class=FMT, help="planned works: no notices while they last",
                       description="Maintenance windows (planned works, bảo trì theo kế hoạch): incidents on the "
                                   "site or line are still recorded and reported, but nobody is notified.\n\n"
                                   "  maintenance add --site S [--line L] --from '2026-11-25 22:00' "
                                   "--to '2026-11-26 02:00' --reason TEXT [--by NAME]\n"
                                   "  maintenance list [--all]\n  maintenance remove ID\n\n"
                                   "Times are Vietnam time unless they carry a zone (e.g. 2026-11-25T15:00Z).")
    p.add_argument("action", choices=("add", "list", "remove"))
    p.add_argument("id", nargs="?", type=int)
    p.add_argument("--site")
    p.add_argument("--line", help="one line only (default: the whole site)")
    p.add_argument("--from", dest="start", help="start, Vietnam time: 'YYYY-MM-DD HH:MM'")
    p.add_argument("--to", dest="end", help="end, Vietnam time")
    p.add_argument("--reason", default="")
    p.add_argument("--by", default=os.environ.get("SUDO_USER") or os.environ.get("USER") or "admin")
    p.add_argument("--all", action="store_true", help="also windows that are over")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("test", formatter_class=FMT, help="run a line's probes now (đo đột xuất) and print the result",
                       description="Asks the site's agent, over its MQTT command topic, to run a line's probes now. "
                                   "The result comes back through the normal path (outbox -> broker -> the running "
                                   "collector -> record) and is printed here. The command expires after --ttl: an "
                                   "agent that is offline does not run it hours later.",
                       epilog="example: linewatch-collector test --site 21583 --line vnpt-fiber --probe bandwidth")
    p.add_argument("--site", required=True)
    p.add_argument("--line", required=True)
    p.add_argument("--probe", help="latency | bandwidth | dns | http | reach (default: every probe of the line)")
    p.add_argument("--agent", help="which agent of the site (default: the one heard from last)")
    p.add_argument("--wait", type=float, default=120, help="seconds to wait for the result (default: %(default)s)")
    p.add_argument("--ttl", type=float, default=300, help="seconds the command stays valid (default: %(default)s)")
    p.add_argument("--json", action="store_true")


def parse_when(text: str | None, what: str) -> float:
    if not text:
        raise ConfigError(f"say when the window {what}s: --{'from' if what == 'start' else 'to'} 'YYYY-MM-DD HH:MM'")
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{text!r} is not a time like '2026-11-25 22:00' (Vietnam time)") from None
    return (t if t.tzinfo else t.replace(tzinfo=VN)).timestamp()


def run(args, cfg, registry, record) -> int:
    try:
        if args.cmd == "incidents":
            return _incidents(args, record)
        if args.cmd == "maintenance":
            return _maintenance(args, registry, record)
        return _test(args, cfg, registry, record)
    except ConfigError as e:
        print(f"linewatch-collector {args.cmd}: {e}", file=sys.stderr)
        return 2


# -- incidents -------------------------------------------------------------------------------
def _incidents(args, record) -> int:
    from .record import NoSuchIncident

    lang = args.lang
    if args.action in ("show", "ack", "resolve") and args.id is None:
        raise ConfigError(f"incidents {args.action} needs the incident number, e.g. incidents {args.action} 12")
    try:
        if args.action == "ack":
            if not args.by:
                raise ConfigError("say who acknowledges: --by 'Nguyễn Văn A, VNPT'")
            inc, first = record.acknowledge(args.id, args.by, args.note, via="cli")
            print(f"#{inc.id} " + ("acknowledged / đã xác nhận tiếp nhận" if first else
                                   f"was already acknowledged by {printable(inc.acked_by or '')} "
                                   f"at {T.fmt_time(inc.acked_at, lang)} (kept) / đã được xác nhận trước đó"))
            return 0
        if args.action == "resolve":
            if not args.note:
                raise ConfigError("say what was done: --note 'thay cáp quang' (kept with the incident)")
            inc = record.close_incident(args.id, args.by or "admin", args.note)
            print(f"#{inc.id} closed / đã đóng ({T.kind_name(inc.kind, lang)})")
            return 0
        if args.action == "show":
            inc = record.incident(args.id)
            log = record.incident_log(inc.id)
            notices = record.notices(incident_id=inc.id)
            if args.json:
                print(json_for_terminal(json.dumps({"incident": as_dict(inc), "log": [e.__dict__ for e in log],
                                                    "notices": [{k: v for k, v in n.__dict__.items() if k != "body"}
                                                                for n in notices]},
                                                   ensure_ascii=False, indent=2, default=str)))
            else:
                print(_show(inc, log, notices, lang))
            return 0
    except NoSuchIncident as e:
        print(f"linewatch-collector incidents: {e}", file=sys.stderr)
        return 1
    incs = record.incidents(live_only=args.open, site=args.site, limit=args.limit)
    if args.json:
        print(json_for_terminal(json.dumps([as_dict(i) for i in incs], ensure_ascii=False, indent=2)))
        return 0
    print(render_list(incs, lang) if incs else ("Không có sự cố." if lang == "vi" else "No incidents."))
    return 0


def render_list(incs, lang: str = "vi") -> str:
    head = ("#", "Trạng thái", "Loại", "Điểm", "Đường", "Bắt đầu", "Kéo dài", "Tiếp nhận") if lang == "vi" else \
           ("#", "State", "Kind", "Site", "Line", "Began", "Lasted", "Acknowledged")
    rows = [head]
    now = time.time()
    for i in incs:
        end = i.resolved_at or now
        flags = (" [bảo trì]" if i.maintenance_id else "") + (f" [thuộc #{i.suppressed_by}]" if i.suppressed_by else "")
        rows.append((str(i.id), T.state_name(i.state, lang), T.kind_name(i.kind, lang) + flags, i.site,
                     i.line or "", T.fmt_time_short(i.opened_at), T.fmt_duration(end - i.opened_at, lang),
                     printable(i.acked_by or "")[:30]))
    return text_table.render(rows[0], rows[1:], rule=False)


def _show(inc, log, notices, lang: str) -> str:
    out = [f"Sự cố #{inc.id}: {T.kind_name(inc.kind, lang)} — {inc.site} {inc.line or ''} {inc.target or ''}".rstrip(),
           f"  trạng thái / state: {T.state_name(inc.state, lang)}; nguyên nhân / cause: {T.cause_name(inc.cause, lang)}"
           f"; gửi tới / routed to: {inc.route}",
           f"  bắt đầu / began:     {T.fmt_time(inc.opened_at, lang)}",
           f"  phát hiện / detected: {T.fmt_time(inc.detected_at, lang)}" + (" (dữ liệu gửi muộn / backfilled)"
                                                                              if inc.late else "")]
    if inc.acked_at:
        out.append(f"  tiếp nhận / acknowledged: {T.fmt_time(inc.acked_at, lang)} by {printable(inc.acked_by or '')} "
                   f"({inc.ack_via}) {printable(inc.ack_note or '')}".rstrip())
    if inc.resolved_at:
        out.append(f"  khắc phục / repaired:  {T.fmt_time(inc.resolved_at, lang)} "
                   f"(time to repair {T.fmt_duration(inc.time_to_repair_s, lang)})")
    if inc.closed_at:
        out.append(f"  đóng / closed:        {T.fmt_time(inc.closed_at, lang)} by {inc.closed_by} "
                   f"{printable(inc.close_note or '')}".rstrip())
    out.append("  số liệu / figures: " + json_for_terminal(json.dumps(inc.summary, ensure_ascii=False)))
    out.append(f"  bằng chứng / evidence ({len(inc.evidence)} measurements):")
    for r in inc.evidence[:20]:
        vals = " ".join(f"{k}={printable(str(v))}" for k, v in r.items() if k not in ("pos", "at", "received_at"))
        out.append(f"    {T.fmt_time_short(r.get('at'))}  {vals}")
    out.append("  diễn biến / log:")
    out += [f"    {T.fmt_time(e.at, lang)}  {e.what} {printable(e.by or '')} "
            f"{json_for_terminal(json.dumps(e.detail, ensure_ascii=False))}" for e in log]
    out.append("  thông báo / notices:")
    out += [f"    {n.event:<10} {n.channel:<7} {printable(n.recipient)[:60]:<40} {n.state}"
            f"{' ' + T.fmt_time_short(n.sent_at) if n.sent_at else ''}"
            f"{' (' + printable(n.last_error)[:80] + ')' if n.last_error and n.state != 'sent' else ''}"
            for n in notices]
    return "\n".join(out)


# -- maintenance -----------------------------------------------------------------------------
def _maintenance(args, registry, record) -> int:
    if args.action == "add":
        site = registry.site(args.site or "")
        if site is None:
            raise ConfigError(f"site {args.site!r} is not in the registry")
        if args.line and site.line(args.line) is None:
            raise ConfigError(f"site {site.code} has no line {args.line!r} "
                              f"(lines: {', '.join(ln.id for ln in site.lines)})")
        start, end = parse_when(args.start, "start"), parse_when(args.end, "end")
        if end <= start:
            raise ConfigError("the window must end after it starts")
        if not args.reason:
            raise ConfigError("say why: --reason 'VNPT nâng cấp tuyến cáp' (it appears in the monthly report)")
        w = record.add_maintenance(site.code, args.line, start, end, args.reason, args.by)
        print(f"maintenance #{w.id}: {site.code} {args.line or '(whole site)'} "
              f"{T.fmt_time(start)} → {T.fmt_time(end)}: {args.reason}")
        return 0
    if args.action == "remove":
        if args.id is None:
            raise ConfigError("maintenance remove needs the window number, e.g. maintenance remove 3")
        if not record.remove_maintenance(args.id):
            print(f"linewatch-collector maintenance: no window #{args.id}", file=sys.stderr)
            return 1
        print(f"maintenance #{args.id} removed")
        return 0
    ws = record.maintenance(include_past=args.all)
    if args.json:
        print(json.dumps([w.__dict__ for w in ws], ensure_ascii=False, indent=2))
    for w in ws if not args.json else []:
        print(f"#{w.id}  {w.site} {w.line or '(cả điểm)'}  {T.fmt_time(w.starts_at)} → {T.fmt_time(w.ends_at)}  "
              f"{printable(w.reason)}  ({printable(w.created_by)})")
    if not ws and not args.json:
        print("Không có lịch bảo trì. / No maintenance windows.")
    return 0


# -- test ------------------------------------------------------------------------------------
def _test(args, cfg, registry, record) -> int:
    site = registry.site(args.site)
    if site is None:
        raise ConfigError(f"site {args.site!r} is not in the registry")
    if site.line(args.line) is None:
        raise ConfigError(f"site {site.code} has no line {args.line!r} (lines: {', '.join(l.id for l in site.lines)})")
    agents = [a for a in record.agents() if a.site == site.code]
    if args.agent:
        agent_id = args.agent
    elif agents:
        agent_id = max(agents, key=lambda a: a.last_seen_at or 0).agent_id
    elif len(site.agents) == 1:
        agent_id = site.agents[0]
    else:
        raise ConfigError(f"no agent of site {site.code} has reported yet; say which with --agent")
    by = "cli:" + (os.environ.get("SUDO_USER") or os.environ.get("USER") or "admin")
    try:
        cmd = wire.build_command(agent_id=agent_id, province=site.province, site=site.code, line=args.line,
                                 probe=args.probe, ttl_s=args.ttl, by=by)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    record.add_command(cmd.id, cmd.agent_id, cmd.province, cmd.site, cmd.line, cmd.probe, by,
                       cmd.issued_at.timestamp(), cmd.expires_at.timestamp(), cmd.to_json().decode())
    from .commands import publish_once

    err = publish_once(cfg.mqtt, cmd.topic, cmd.to_json())
    if err:
        print(f"linewatch-collector test: {err}", file=sys.stderr)
        return 3
    record.command_sent(cmd.id)
    row = record.command(cmd.id)
    print(f"command {cmd.id} sent to {agent_id} ({site.code} {args.line}, {args.probe or 'every probe'}); "
          f"waiting up to {args.wait:g} s for the result ...", file=sys.stderr)
    deadline = time.monotonic() + args.wait
    results: list = []
    quiet_since = None
    while time.monotonic() < deadline:
        new = record.command_results(row)
        if len(new) > len(results):
            results, quiet_since = new, time.monotonic()
        if results and (args.probe or (quiet_since and time.monotonic() - quiet_since > 10)):
            break
        time.sleep(0.5)
    if not results:
        print(f"linewatch-collector test: no result within {args.wait:g} s. Is the agent online "
              f"(linewatch-collector status) and the collector running? The command expires at "
              f"{T.fmt_time(cmd.expires_at.timestamp())}.", file=sys.stderr)
        return 1
    if args.json:
        print(json_for_terminal(json.dumps([_result(e) for e in results], ensure_ascii=False, indent=2)))
    else:
        for e in results:
            r = _result(e)
            figures = " ".join(f"{k}={v}" for k, v in r["data"].items() if k not in ("command_id", "source"))
            state = "OK" if e.ok else f"LỖI {e.error_code}: {wire.describe(e.error_code)}"
            print(f"{e.kind:<10} {T.fmt_time_short(e.at)}  {state}  {printable(figures)}")
    return 0 if all(e.ok for e in results) else 1


def _result(e) -> dict[str, Any]:
    return {"kind": e.kind, "at": e.at, "ok": e.ok, "error_code": e.error_code, "error": e.error, "data": e.data}

"""The report as the office runs it: the command (exact messages for what cannot be reported),
files never overwriting a signed copy, and the monthly run by itself with its mails sent once
through a real SMTP server."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from incidentlab import Province
from linewatch.collector.notify.sender import Notifier
from linewatch.collector.report import auto
from linewatch.collector.report.config import ReportConfig
from linewatch.collector.report.run import build, write
from test_notify import SmtpServer, notify_cfg  # noqa: F401  (the smtp fixture's server)
from conftest import free_port

VN = timezone(timedelta(hours=7))
OCT = datetime(2026, 10, 1, tzinfo=VN).timestamp()
NOV_1_0800 = datetime(2026, 11, 1, 8, tzinfo=VN).timestamp()


@pytest.fixture
def province(tmp_path):
    p = Province(tmp_path, n_sites=2)
    for day in range(31):
        at = OCT + day * 86400 + 10 * 3600
        p.speed(90, 45, at=at, received=at + 1)
        p.latency(12.0, at=at + 60, received=at + 61)
        p.speed(150 if day < 20 else 100, 150, site="21584", line="tslcd", at=at, received=at + 1)
    yield p
    p.record.close()


def collector_toml(tmp_path: Path, registry: Path, record: Path) -> Path:
    c = tmp_path / "collector.toml"
    c.write_text(f'registry = "{registry}"\nrecord = "{record}"\n[report]\nout_dir = "{tmp_path / "out"}"\n'
                 f'place = "Quy Nhơn"\n')
    return c


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "linewatch.collector.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_the_report_command_writes_the_whole_report_and_each_operators_part(province, tmp_path):
    """`report --month` writes XLSX + DOCX for the whole and per operator, and prints their paths."""
    cfg = collector_toml(tmp_path, tmp_path / "registry.toml", tmp_path / "record.sqlite3")
    province.record.close()
    r = cli("-c", str(cfg), "report", "--month", "2026-10")
    assert r.returncode == 0, r.stderr
    names = sorted(Path(p).name for p in r.stdout.split())
    assert names == ["bao-cao-2026-10-tong-hop.docx", "bao-cao-2026-10-tong-hop.xlsx",
                     "bao-cao-2026-10-vnpt.docx", "bao-cao-2026-10-vnpt.xlsx"]
    assert "2 đơn vị, 4 đường truyền" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--month", "2026-13"], "--month '2026-13': viết theo dạng NĂM-THÁNG, ví dụ 2026-10 (month must be YYYY-MM)"),
    (["--month", "2099-01"], "Tháng 2099-01 chưa kết thúc: báo cáo tháng lập được từ ngày 01/02/2099 "
                             "(month 2099-01 has not ended yet)"),
    (["--month", "2026-10", "--province", "99"], "Không có tỉnh '99' trong danh mục"),
    (["--month", "2026-10", "--operator", "MobiFone"],
     "Không có nhà mạng 'MobiFone' trong danh mục; các nhà mạng có: VNPT (unknown operator)"),
    (["--month", "2026-09"], "Không có số liệu đo nào trong tháng 2026-09 (toàn bộ danh mục): các máy đo chưa gửi "
                             "số liệu của tháng này, hoặc số liệu đã quá hạn lưu giữ. Kiểm tra: linewatch-collector "
                             "status (nothing was measured in 2026-09)"),
])
def test_what_cannot_be_reported_gets_an_exact_message_and_exit_2(province, tmp_path, args, message):
    """A bad month, a month not over, an unknown province or operator, a month with no data: exit 2, one message."""
    cfg = collector_toml(tmp_path, tmp_path / "registry.toml", tmp_path / "record.sqlite3")
    province.record.close()
    r = cli("-c", str(cfg), "report", *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out" / "2026-10").exists() or args[1] == "2026-10"


def test_a_signed_copy_is_never_overwritten(province, tmp_path):
    """Re-running rewrites unchanged files; a file changed since (signed) is kept and the new one goes beside it."""
    report = build(province.record, province.registry, ReportConfig(), "2026-10")
    first = write(report, tmp_path / "out")
    again = write(report, tmp_path / "out")
    assert again.kept == [] and [p.name for p in again.files] == [p.name for p in first.files]
    signed = first.whole[1]
    signed.write_bytes(signed.read_bytes() + b"signed")
    third = write(report, tmp_path / "out")
    assert third.kept == [(signed, signed.with_name(signed.stem + " (2)" + signed.suffix))]
    assert signed.read_bytes().endswith(b"signed")
    assert third.whole[1].name.endswith(" (2).docx") and third.whole[1].exists()


def test_the_month_reports_itself_and_mails_each_operator_once(province, tmp_path):
    """On the 1st after 07:00 the collector writes last month's report and mails the operators and the IT office, once."""
    smtp = SmtpServer(free_port()).start()
    try:
        cfg = ReportConfig(out_dir=tmp_path / "out")
        job = auto.MonthlyReports(province.record, province.registry, cfg)
        assert job.run_once(NOV_1_0800 - 2 * 3600) is None  # 06:00: not yet
        assert job.run_once(NOV_1_0800) == "2026-10"
        assert job.run_once(NOV_1_0800 + 600) is None      # done once
        n = Notifier(province.record, province.registry, notify_cfg(tmp_path, smtp.port))
        res = n.run_once(NOV_1_0800 + 1)
        assert res.sent == 3 and not res.errors  # VNPT's two contacts (internet NOC, TSLCD) and the IT office
        assert n.run_once(NOV_1_0800 + 60).sent == 0
        msgs = {m["To"]: m for m in smtp.box.messages()}
        assert sorted(msgs) == ["it@tinh.example", "noc@vnpt.example", "tslcd@vnpt.example"]
        noc = msgs["noc@vnpt.example"]
        assert noc["Subject"] == "[linewatch] Báo cáo chất lượng đường truyền tháng 10/2026 - VNPT"
        files = sorted(p.get_filename() for p in noc.iter_attachments())
        assert files == ["bao-cao-2026-10-vnpt.docx", "bao-cao-2026-10-vnpt.xlsx"]
        assert noc["Message-ID"] == "<report-2026-10-vnpt-noc-vnpt-example@linewatch.invalid>"  # same on a resend
        body = noc.get_body(("plain",)).get_content()
        assert "trước ngày 05" in body
        whole = msgs["it@tinh.example"]
        assert sorted(p.get_filename() for p in whole.iter_attachments()) == [
            "bao-cao-2026-10-tong-hop.docx", "bao-cao-2026-10-tong-hop.xlsx"]
    finally:
        smtp.stop()


def test_mails_wait_in_the_record_while_the_mail_server_is_down(province, tmp_path):
    """SMTP down at the 1st: the report mails stay queued and go out once when it is back."""
    port = free_port()
    job = auto.MonthlyReports(province.record, province.registry, ReportConfig(out_dir=tmp_path / "out"))
    assert job.run_once(NOV_1_0800) == "2026-10"
    n = Notifier(province.record, province.registry, notify_cfg(tmp_path, port))
    down = n.run_once(NOV_1_0800 + 1)
    assert down.sent == 0 and down.failed >= 1
    smtp = SmtpServer(port).start()
    try:
        n.run_once(NOV_1_0800 + 3600)
        n.run_once(NOV_1_0800 + 7200)
        got = [m["To"] for m in smtp.box.messages()]
        assert sorted(got) == sorted(set(got)) and "it@tinh.example" in got
    finally:
        smtp.stop()


def fill_reach_and_latency(p: Province) -> None:
    """A day of reach summaries every 30 min and latency rounds, with a 2-hour outage."""
    t0 = OCT + 5 * 86400
    down_at, up_at = t0 + 6 * 3600, t0 + 8 * 3600
    for k in range(48):
        at = t0 + k * 1800
        state = "down" if down_at <= at < up_at else "up"
        p.send("reach", {"method": "icmp-dgram", "target": "10.0.0.1", "state": state, "change": False,
                         "since": "2026-10-06T00:00:00Z", "interval_s": 2, "sent": 900, "lost": 0},
               ok=state == "up", error_code=None if state == "up" else "line_down", at=at, received=at + 1)
        p.latency(10.0 + k % 5, at=at + 5, received=at + 6)
    p.reach("down", since=down_at, at=down_at + 6, received=up_at + 10)  # arrives late, with the backlog
    p.reach("up", since=up_at, at=up_at + 2, received=up_at + 10)


def test_postgresql_and_sqlite_give_the_same_report(tmp_path, pg_url):
    """The figures summed in the database (latency, reach coverage) agree on both backends."""
    figs = []
    for url in (None, pg_url):
        p = Province(_mk(tmp_path / ("pg" if url else "lite")), record_url=url, n_sites=1)
        fill_reach_and_latency(p)
        figs.append(build(p.record, p.registry, ReportConfig(), "2026-10").sites[0].lines[0])
        p.record.close()
    lite, pg = figs
    assert lite == pg
    assert lite.observed_s == 48 * 1800 and lite.down_s == 2 * 3600
    assert lite.latency_rounds == 48 and abs(lite.latency_mean_ms - sum(10.0 + k % 5 for k in range(48)) / 48) < 1e-9
    assert lite.availability_verdict == "insufficient"  # one day observed of 31


def _mk(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_upgrading_a_record_folds_its_past_into_the_report_tables(tmp_path):
    """A record from before schema step 4 gets its already-rolled feed folded into reach rollups,
    state changes and sequence spans on opening, so its past months report availability too."""
    import sqlite3

    p = Province(_mk(tmp_path / "old"), n_sites=1)
    fill_reach_and_latency(p)
    while p.record.rollup():
        pass
    before = build(p.record, p.registry, ReportConfig(), "2026-10", catch_up=False).sites[0]
    p.record.close()
    db = sqlite3.connect(tmp_path / "old" / "record.sqlite3")  # as linewatch before step 4 left it
    db.executescript("DROP TABLE state_changes; DROP TABLE seq_hours; DELETE FROM rollups WHERE kind = 'reach'; "
                     "DELETE FROM schema_version WHERE version = 4;")
    db.commit()
    db.close()
    from linewatch.collector.record import open_record

    rec = open_record(tmp_path / "old" / "record.sqlite3")
    assert rec.migrated == [4]
    after = build(rec, p.registry, ReportConfig(), "2026-10", catch_up=False).sites[0]
    rec.close()
    assert after.lines[0].observed_s == before.lines[0].observed_s == 48 * 1800
    assert after.lines[0].down_s == before.lines[0].down_s == 2 * 3600
    assert (after.messages, after.seq_missing) == (before.messages, before.seq_missing) and after.messages > 0

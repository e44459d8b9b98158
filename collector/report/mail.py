"""The e-mail that carries a monthly report (a notice of event "report"): who it is for, the
key figures, the files attached. Sent by the notifier like every notice."""
from __future__ import annotations

import mimetypes
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from ..errors import ReportMailError  # noqa: F401
from ..notify.text import VN_TZ, clean
from . import text

MAX_ATTACHMENTS_BYTES = 20 * 1024 * 1024  # most mail servers refuse more than ~25 MB


def render(body: dict[str, Any], recipient: str, from_addr: str, now: float, notice_key: str) -> EmailMessage:
    month = str(body.get("month", ""))
    op = body.get("operator")
    y, _, m = month.partition("-")
    totals = body.get("totals") or {}
    em = EmailMessage()
    em["Subject"] = clean(f"[linewatch] Báo cáo chất lượng đường truyền tháng {m}/{y}" +
                          (f" - {op}" if op else " - tổng hợp"), 300)
    em["From"] = from_addr
    em["To"] = recipient
    # the same for every try: a mail sent again after a crash (accepted, not yet marked sent) is
    # recognised as the same one by the receiving client
    em["Message-ID"] = f"<{text.ascii_slug(notice_key)[:120]}@linewatch.invalid>"
    em["Date"] = format_datetime(datetime.fromtimestamp(now, VN_TZ))
    em["Auto-Submitted"] = "auto-generated"
    em["Content-Language"] = "vi"
    lines = ["Kính gửi " + (f"{op}," if op else "Cơ quan quản lý CNTT,"), "",
             f"linewatch gửi kèm báo cáo tháng {m}/{y}, lập tự động từ số liệu đo tại các đơn vị "
             f"({text.time_(body.get('generated_at'))}, giờ Việt Nam):"]
    if totals:
        lines += [f"- Số đơn vị: {totals.get('sites')}, có số liệu đo: {totals.get('sites_measured')}",
                  f"- Số đường truyền: {totals.get('lines')}; đạt tốc độ (QCVN 34:2022/BTTTT): "
                  f"{totals.get('lines_speed_pass')}; không đạt: {totals.get('lines_speed_fail')}; "
                  f"chưa đủ dữ liệu: {totals.get('lines_insufficient')}; không có số liệu đo: "
                  f"{(totals.get('lines') or 0) - sum(totals.get(k) or 0 for k in ('lines_speed_pass', 'lines_speed_fail', 'lines_insufficient'))}",
                  f"- Sự cố trong tháng: {totals.get('incidents')} (còn mở: {totals.get('incidents_open')})"]
    if op:
        lines += ["", "Theo Thông tư 06/2026/TT-BKHCN Điều 9, doanh nghiệp gửi số liệu tháng trước ngày 05. "
                  "Bảng \"Truy vết số liệu\" trong tệp Excel nêu, cho từng con số, các lần đo và cách truy vấn "
                  "lại; nếu có số liệu chưa khớp, xin trả lời thư này."]
    else:
        lines += ["", "Tệp Word là dự thảo báo cáo theo Nghị định 30/2020/NĐ-CP, sẵn để trình ký; tệp Excel gồm "
                  "biểu số liệu hạ tầng CNTT, phần của từng nhà mạng, đơn vị chưa đạt, độ đầy đủ số liệu và "
                  "truy vết."]
    lines += ["", "Thư gửi tự động từ linewatch, xin không trả lời vào địa chỉ gửi."]
    em.set_content("\n".join(lines))
    total = 0
    for f in body.get("files") or []:
        p = Path(f)
        try:
            data = p.read_bytes()
        except OSError as e:
            raise ReportMailError(f"report file {p} cannot be read ({e.strerror}): write the report again with "
                                  f"linewatch-collector report --month {month}") from e
        total += len(data)
        if total > MAX_ATTACHMENTS_BYTES:
            raise ReportMailError(f"report files for {month} are over {MAX_ATTACHMENTS_BYTES >> 20} MB together: "
                                  f"too large to mail; send them from {p.parent}")
        ctype = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
        main, _, sub = ctype.partition("/")
        em.add_attachment(data, maintype=main, subtype=sub, filename=p.name)
    return em

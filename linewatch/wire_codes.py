"""Stable error codes: the ``error_code`` of a failed measurement (``ok = false``).

Part of the wire contract (re-exported by :mod:`linewatch.wire`). Rules match on these codes,
so a code never changes meaning; new codes may be added. Each has the sentence a clerk sees,
in Vietnamese and English, and the *cause class* the incident rules use to route it:

* ``line``    -- the line (or what is behind it) did not carry the traffic: the operator's;
* ``lan``     -- the office's own network or gateway: the IT office's;
* ``service`` -- one far service failed while others answered: its owner / the IT office;
* ``agent``   -- the measuring computer or its configuration: the IT office's;
* ``budget``  -- a test skipped on purpose (data budget): nobody's fault.

docs/wire.md lists the same table (tests/test_docs.py keeps them equal).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class ErrorCode:
    code: str
    cause: str  # line | lan | service | agent | budget
    vi: str
    en: str


class Code(StrEnum):
    """The enumeration agents write: ``Result(error_code=Code.DNS_FAILED)``. A ``StrEnum``, so it is
    the plain string on the wire; ``ERROR_CODES`` below has one entry per member (checked at import)."""

    UNREACHABLE = "unreachable"
    LINE_DOWN = "line_down"
    DNS_FAILED = "dns_failed"
    TIMEOUT = "timeout"
    TRANSFER_FAILED = "transfer_failed"
    TOO_SHORT = "too_short"
    GATEWAY_UNREACHABLE = "gateway_unreachable"
    REFUSED = "refused"
    TLS_FAILED = "tls_failed"
    HTTP_ERROR = "http_error"
    BAD_ANSWER = "bad_answer"
    DNS_ERROR = "dns_error"
    SERVER_BUSY = "server_busy"
    LINE_UNBOUND = "line_unbound"
    METHOD_UNAVAILABLE = "method_unavailable"
    CONFIG = "config"
    NO_SUBNET = "no_subnet"
    SWEEP_FAILED = "sweep_failed"
    PROBE_CRASHED = "probe_crashed"
    INVALID_RESULT = "invalid_result"
    COMMAND_EXPIRED = "command_expired"
    BUDGET_EXHAUSTED = "budget_exhausted"


_CODES = (
    ErrorCode("unreachable", "line", "Không tới được đích đo (đường truyền mất hoặc bị chặn)",
              "The target did not answer (line down or traffic blocked)"),
    ErrorCode("line_down", "line", "Đường truyền mất kết nối: không gói tin nào đi qua được",
              "The line is down: no packet gets through"),
    ErrorCode("dns_failed", "line", "Không phân giải được tên miền của đích đo",
              "The target's name could not be resolved"),
    ErrorCode("timeout", "line", "Đích đo nhận kết nối nhưng không trả lời kịp",
              "The target accepted the connection but did not answer in time"),
    ErrorCode("transfer_failed", "line", "Phép đo tốc độ bị ngắt giữa chừng",
              "The speed test broke off"),
    ErrorCode("too_short", "line", "Phép đo tốc độ quá ngắn để cho kết quả tin cậy",
              "The speed test was too short to give a reliable figure"),
    ErrorCode("gateway_unreachable", "lan", "Không tới được cổng mạng (modem/router) của cơ quan",
              "The office's own gateway (modem/router) did not answer"),
    ErrorCode("refused", "service", "Máy chủ dịch vụ từ chối kết nối (dịch vụ ngừng?)",
              "The service refused the connection (service down?)"),
    ErrorCode("tls_failed", "service", "Lỗi chứng thư số (TLS) của dịch vụ",
              "The service's TLS certificate or handshake failed"),
    ErrorCode("http_error", "service", "Dịch vụ trả lời lỗi HTTP",
              "The service answered with an HTTP error"),
    ErrorCode("bad_answer", "service", "Dịch vụ trả lời không đúng chuẩn",
              "The service's answer was broken"),
    ErrorCode("dns_error", "service", "Máy chủ DNS trả lời lỗi",
              "The DNS server answered with an error"),
    ErrorCode("server_busy", "service", "Máy chủ đo tốc độ đang bận, sẽ đo lại",
              "The speed server was busy; the test will be repeated"),
    ErrorCode("line_unbound", "agent", "Máy đo không gắn được vào đường truyền này (cáp/modem rút ra, sai địa chỉ)",
              "The agent could not bind to this line (cable or modem unplugged, address changed)"),
    ErrorCode("method_unavailable", "agent", "Máy đo thiếu công cụ hoặc quyền để đo theo cách này",
              "The agent lacks the tool or permission for this method"),
    ErrorCode("config", "agent", "Cấu hình đo sai", "The probe's configuration is wrong"),
    ErrorCode("no_subnet", "agent", "Không tìm thấy mạng LAN nào để dò", "No LAN network found to sweep"),
    ErrorCode("sweep_failed", "agent", "Dò mạng LAN thất bại", "The LAN sweep failed"),
    ErrorCode("probe_crashed", "agent", "Lỗi phần mềm đo (đã ghi nhật ký)", "The probe crashed (logged)"),
    ErrorCode("invalid_result", "agent", "Kết quả đo sai chuẩn dữ liệu nên được thay bằng báo lỗi này (lỗi phần mềm đo, đã ghi nhật ký)",
              "The measurement broke the wire contract and was replaced by this failure (an agent bug, logged)"),
    ErrorCode("command_expired", "agent", "Yêu cầu đo đột xuất đã hết hạn trước khi chạy",
              "The on-demand test request expired before it ran"),
    ErrorCode("budget_exhausted", "budget", "Đã dùng hết dung lượng đo tốc độ của tháng",
              "The month's data budget for speed tests is used up"),
)

ERROR_CODES: dict[str, ErrorCode] = {c.code: c for c in _CODES}
assert set(ERROR_CODES) == {c.value for c in Code}, "Code and _CODES must list the same codes"
CAUSES = ("line", "lan", "service", "agent", "budget")


def describe(code: str | None, lang: str = "vi") -> str:
    """The sentence for a code; an unknown code (newer agent) is shown as it is."""
    c = ERROR_CODES.get(code or "")
    if c is None:
        return code or ""
    return c.vi if lang == "vi" else c.en


def cause_of(code: str | None) -> str | None:
    c = ERROR_CODES.get(code or "")
    return c.cause if c else None

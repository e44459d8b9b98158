"""CI cannot pass by skipping: a pytest plugin (loaded by conftest.py).

Where the test command could have run a test -- as root with network namespaces available,
or under CI (``CI`` set), where ``./dev test`` installs every dependency -- a skipped test is
turned into a failure that names the skip's reason. Only tests marked ``may_skip`` (what
``./dev test`` deliberately does not install, e.g. LibreOffice for the PDF checks) may skip.
Elsewhere (a developer's laptop without root) skips stay skips, and the summary says loudly
which claims were not checked.
"""
from __future__ import annotations

import os

import pytest

from netlab import netns_unavailable

_capable: str | None = None  # why skipping is not allowed here; None: allowed


def pytest_configure(config: pytest.Config) -> None:
    global _capable
    config.addinivalue_line("markers", "may_skip: may skip even where the run could have run it "
                                       "(its dependency is deliberately not installed by ./dev test)")
    if os.environ.get("CI"):
        _capable = "this is a CI run, where ./dev test installs everything the tests need"
    elif os.geteuid() == 0 and netns_unavailable() is None:
        _capable = "this run is root and network namespaces work here"


def _refuse(report: pytest.TestReport | pytest.CollectReport, allowed: bool) -> None:
    if not report.skipped or _capable is None or allowed:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped although {_capable}: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    _refuse(outcome.get_result(), item.get_closest_marker("may_skip") is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _refuse(outcome.get_result(), False)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped and _capable is None:
        terminalreporter.write_sep("!", f"{len(skipped)} tests SKIPPED: what they check was NOT verified "
                                        f"(run ./dev test as root to check the network-namespace claims)",
                                   yellow=True, bold=True)

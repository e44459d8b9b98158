"""CI cannot pass by skipping (tests/skipguard.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parent

DEMO = textwrap.dedent("""
    import pytest

    def test_needs_a_namespace_tool():
        pytest.skip("ip netns does not work here")

    @pytest.mark.may_skip
    def test_needs_libreoffice():
        pytest.skip("LibreOffice is not installed")
""")


def run_demo(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_demo.py").write_text(DEMO)
    full = {k: v for k, v in os.environ.items() if k != "CI"} | env | {"PYTHONPATH": str(TESTS)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "skipguard", "-p", "no:cacheprovider",
                           "test_demo.py"], cwd=tmp_path, env=full, capture_output=True, text=True, timeout=120)


def test_under_ci_a_skipped_test_fails_with_its_reason_and_only_may_skip_tests_may_skip(tmp_path):
    r = run_demo(tmp_path, CI="true")
    assert r.returncode == 1, r.stdout
    assert "1 failed, 1 skipped" in r.stdout
    assert "skipped although this is a CI run" in r.stdout and "ip netns does not work here" in r.stdout


def test_as_root_with_namespaces_a_skip_fails_the_run(tmp_path):
    from netlab import netns_unavailable

    why = netns_unavailable()
    r = run_demo(tmp_path)
    if why is None:  # root with namespaces: this very run could have run it
        assert r.returncode == 1 and "skipped although this run is root" in r.stdout, r.stdout
    else:  # a developer's laptop: skips stay skips, and the summary says what was not checked
        assert r.returncode == 0 and "2 skipped" in r.stdout and "NOT verified" in r.stdout, r.stdout

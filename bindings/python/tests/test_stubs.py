"""The type stubs match the module (mypy's stubtest). mypy is a test
dependency: its absence fails this test rather than skipping it."""

from __future__ import annotations

import os
import subprocess
import sys

import mypy  # noqa: F401  (a hard requirement: ImportError fails the run)


def test_stubtest() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "pcp_rs", "--allowlist", os.path.join(here, "stubtest-allowlist.txt")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=os.path.dirname(here),  # not tests/: import the installed pcp_rs
    )
    assert r.returncode == 0, r.stdout + r.stderr

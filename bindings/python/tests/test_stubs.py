"""The type stubs match the module (mypy's stubtest)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def test_stubtest() -> None:
    pytest.importorskip("mypy")
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "pcp_rs", "--allowlist", os.path.join(here, "stubtest-allowlist.txt")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr

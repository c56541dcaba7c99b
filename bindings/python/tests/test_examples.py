"""examples/python/classic_map.py, as the interop suite runs it, on loopback."""

from __future__ import annotations

import os
import subprocess
import sys

from pcp_rs.testing import Server

from conftest import dead_udp_port

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "python", "classic_map.py")


def run(*args: str) -> "subprocess.CompletedProcess[str]":
    # The example runs verbatim, with default settings.
    return subprocess.run([sys.executable, EXAMPLE, *args], capture_output=True, text=True, timeout=60)


def test_classic_map_example(server: Server) -> None:
    r = run(server.address, "8080", "0.1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "MAPPED 203.0.113.7 20000 3600" and lines[1:] == ["DELETED"]
    assert server.mapping_count() == 0


def test_classic_map_example_errors() -> None:
    r = run(dead_udp_port(), "8080", "0")
    assert r.returncode != 0 and r.stdout == "" and "ServerUnreachable" in r.stderr
    r = run("127.0.0.1", "notaport", "0")
    assert r.returncode == 2

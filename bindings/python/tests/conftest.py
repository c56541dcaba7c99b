"""Shared fixtures: the core's test server on an ephemeral loopback port.

Every test talks only to loopback. Clients keep the default settings
(they listen on UDP 5350 with address reuse, which only receives; the test
server unicasts its ANNOUNCE to every client it has seen) unless a test
passes ``listen_announce=False``. Waits for events are bounded.
"""

from __future__ import annotations

import socket
from typing import Iterator, Optional

import pytest

import pcp_rs
from pcp_rs.testing import Server

#: Upper bound for any wait on an event in these tests (seconds).
EVENT_WAIT = 15.0


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as s:
        yield s


@pytest.fixture
def short_server() -> Iterator[Server]:
    """Grants at most 2 s, so that renewals come within about a second."""
    with Server(max_lifetime=2) as s:
        yield s


@pytest.fixture
def client(server: Server) -> Iterator[pcp_rs.Client]:
    with pcp_rs.Client(server.address, deadline=5) as c:
        yield c


def wait_event(events: pcp_rs.EventIterator, kind: str, timeout: float = EVENT_WAIT) -> pcp_rs.Event:
    """The next event of `kind` (others are skipped); fails after `timeout`."""
    import time

    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {kind!r} event within {timeout} s")
        ev: Optional[pcp_rs.Event] = events.get(timeout=left)
        if ev is not None and ev.kind == kind:
            return ev


def dead_udp_port() -> str:
    """A loopback UDP port nothing listens on (ICMP port unreachable)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}"


def has_ipv6_loopback() -> bool:
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False

"""The GIL is released while waiting on the network, and Ctrl-C interrupts
a blocking call. Faults come from the test server; no sleeps are timed."""

from __future__ import annotations

import _thread
import threading
import time

import pytest

import pcp_rs
from pcp_rs.testing import Server


def test_other_threads_run_during_a_slow_request(server: Server) -> None:
    server.set_delay(0.5)
    ticks = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1  # pure Python: needs the GIL

    t = threading.Thread(target=spin)
    with pcp_rs.PCPClient(server.address) as client:
        t.start()
        try:
            before = ticks
            client.create_mapping(8080)
            during = ticks - before
        finally:
            stop.set()
            t.join(10)
    # Had the call held the GIL for its 0.5 s, the spinner would have been
    # stuck on the GIL for the whole call, save a switch interval or two.
    assert during > 10_000


def test_ctrl_c_interrupts_a_blocking_call(server: Server) -> None:
    server.drop_next(1_000_000)  # the request is never answered
    with pcp_rs.Client(server.address, deadline=60) as c:
        timer = threading.Timer(0.3, _thread.interrupt_main)
        timer.start()
        start = time.monotonic()
        try:
            with pytest.raises(KeyboardInterrupt):
                c.map(6, 8080)
        finally:
            timer.cancel()
        # Far sooner than the 60 s deadline that would otherwise end it.
        assert time.monotonic() - start < 30
        server.drop_next(0)
        assert c.map(6, 8081).external_port > 0


def test_ctrl_c_interrupts_an_event_wait(server: Server) -> None:
    with pcp_rs.Client(server.address) as c:
        events = c.events()
        timer = threading.Timer(0.3, _thread.interrupt_main)
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                next(events)  # no event is coming
        finally:
            timer.cancel()

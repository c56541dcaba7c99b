"""The GIL is released while waiting on the network, Ctrl-C interrupts a
blocking call, and threads sharing a request never deadlock. Progress is
proved by causality (a call can only finish after another Python thread
acted), not by counting; the only time bound is the 1 s for Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Iterator, List, Optional

import pytest

import pcp_rs
from pcp_rs.testing import Server

from conftest import EVENT_WAIT


def wait_for_requests(server: Server, n: int = 1) -> None:
    """Until the server has received `n` requests (bounded)."""
    end = time.monotonic() + EVENT_WAIT
    while server.requests_received() < n:
        assert time.monotonic() < end, "the request never reached the server"
        threading.Event().wait(0.005)


def test_other_threads_run_during_a_blocking_call(server: Server) -> None:
    # The server drops everything until another Python thread tells it not
    # to; that thread needs the GIL, so the call can only finish if it
    # released the GIL while waiting. (The client's retransmission, about
    # 3 s in, is then answered.)
    server.drop_next(1_000_000)
    unblocked = threading.Event()

    def unblock() -> None:
        wait_for_requests(server)
        server.drop_next(0)
        unblocked.set()

    t = threading.Thread(target=unblock)
    with pcp_rs.PCPClient(server.address, deadline=EVENT_WAIT) as client:
        t.start()
        try:
            client.create_mapping(8080)
        finally:
            t.join(EVENT_WAIT)
    assert unblocked.is_set()


@pytest.fixture(autouse=True)
def _sigint_raises_keyboard_interrupt() -> Iterator[None]:
    # A shell starts background jobs with SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: these tests would wait forever
    # for an interrupt that never comes. Give them Python's own handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _sigint_when_requested(server: Server, sent: List[float], n: int = 1) -> threading.Thread:
    def run() -> None:
        wait_for_requests(server, n)
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_ctrl_c_interrupts_a_blocking_call(server: Server) -> None:
    server.drop_next(1_000_000)  # the request is never answered
    with pcp_rs.Client(server.address, deadline=60) as c:
        sent: List[float] = []
        t = _sigint_when_requested(server, sent)
        try:
            with pytest.raises(KeyboardInterrupt):
                c.map(6, 8080)
            caught = time.monotonic()
        finally:
            t.join(EVENT_WAIT)
        assert sent, "SIGINT was never sent"
        assert caught - sent[0] < 1.0
        server.drop_next(0)
        assert c.map(6, 8081).external_port > 0


def test_ctrl_c_interrupts_request_wait(server: Server) -> None:
    server.drop_next(1_000_000)
    with pcp_rs.Client(server.address, deadline=60) as c:
        req = c.start_map(6, 8080)
        sent: List[float] = []
        # The first request went out with start_map; the retransmission
        # (about 3 s later) comes while this thread is surely in wait().
        t = _sigint_when_requested(server, sent, 2)
        try:
            with pytest.raises(KeyboardInterrupt):
                req.wait()
            caught = time.monotonic()
        finally:
            t.join(EVENT_WAIT)
        assert sent and caught - sent[0] < 1.0
        # Ctrl-C cancelled the request, as it does a blocking call.
        with pytest.raises(pcp_rs.Cancelled):
            req.wait(EVENT_WAIT)


def test_ctrl_c_interrupts_an_event_wait(server: Server) -> None:
    with pcp_rs.Client(server.address) as c:
        events = c.events()
        sent: List[float] = []

        def run() -> None:
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

        timer = threading.Timer(0.2, run)
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                next(events)  # no event is coming
            caught = time.monotonic()
        finally:
            timer.cancel()
            timer.join(EVENT_WAIT)
        assert sent and caught - sent[0] < 1.0


def test_threads_share_a_request_without_deadlock(server: Server) -> None:
    # One thread waits on a request while this one (holding the GIL) polls
    # and cancels it, and another request completes with a Python callback
    # meanwhile: nothing may wait for the GIL while holding a lock that a
    # GIL holder wants.
    server.set_delay(60)  # r1 (and its retransmissions) get no answer in time
    with pcp_rs.Client(server.address, deadline=60) as c:
        r1 = c.start_map(6, 8080)
        outcome: List[BaseException] = []

        def waiter() -> None:
            try:
                r1.wait(EVENT_WAIT)
            except BaseException as e:
                outcome.append(e)

        t = threading.Thread(target=waiter)
        t.start()
        wait_for_requests(server)
        server.set_delay(0)
        fired = threading.Event()
        r2 = c.start_external_address()
        r2.add_done_callback(fired.set)
        end = time.monotonic() + EVENT_WAIT
        while not fired.is_set():
            assert time.monotonic() < end, "the second request never completed"
            r1.done()  # contends with the waiting thread for the request
        assert r2.result() == "203.0.113.7"
        r1.cancel()
        t.join(EVENT_WAIT)
        assert not t.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], pcp_rs.Cancelled)
        assert r1.done()
        with pytest.raises(pcp_rs.Cancelled):
            r1.result()


def test_done_callback_may_call_the_request(server: Server) -> None:
    with pcp_rs.Client(server.address) as c:
        req = c.start_map(6, 8080)
        seen: List[Optional[int]] = []
        done = threading.Event()

        def cb() -> None:
            seen.append(req.result().external_port)
            done.set()

        req.add_done_callback(cb)
        m = req.wait(EVENT_WAIT)
        assert done.wait(EVENT_WAIT)
        assert seen == [m.external_port]
        # Already finished: called at once, here.
        req.add_done_callback(lambda: seen.append(None))
        assert seen[-1] is None

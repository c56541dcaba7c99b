"""Events: renewals, server reboot, address change, lost mappings; as
callbacks and as an iterator. Waits are bounded; faults are injected."""

from __future__ import annotations

import queue
import sys
from typing import List

import pytest

import pcp_rs
from pcp_rs.testing import Server

from conftest import EVENT_WAIT, wait_event


def test_granted_and_deleted_events(client: pcp_rs.Client) -> None:
    events = client.events()
    m = client.map(6, 8080)
    ev = wait_event(events, "granted")
    assert ev.mapping is not None and ev.mapping.id == m.id and ev.mapping_id == m.id
    m.delete()
    ev = wait_event(events, "deleted")
    assert ev.mapping_id == m.id and ev.error is None
    assert "deleted" in repr(ev)


def test_renewed_callback(short_server: Server) -> None:
    got: "queue.Queue[pcp_rs.Event]" = queue.Queue()
    with pcp_rs.Client(short_server.address) as c:
        c.on_event(got.put)
        m = c.map(6, 8080)
        while True:
            ev = got.get(timeout=EVENT_WAIT)
            if ev.kind == "renewed":
                break
        assert ev.mapping is not None
        assert ev.mapping.id == m.id and ev.mapping.lifetime == 2
        assert ev.epoch is not None


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_callback_exceptions_do_not_break_the_client(short_server: Server) -> None:
    def bad(ev: pcp_rs.Event) -> None:
        raise RuntimeError("user callback bug")

    with pcp_rs.Client(short_server.address) as c:
        c.on_event(bad)
        events = c.events()
        c.map(6, 8080)
        wait_event(events, "renewed")
        assert c.map(6, 8081).external_port > 0


def test_server_reboot() -> None:
    # A gateway that has been up for an hour reboots: its epoch goes back to 0.
    with Server(initial_epoch=3600) as server, pcp_rs.Client(server.address, announce_delay_max=0.5) as c:
        events = c.events()
        m = c.map(6, 8080)
        c.map(17, 5000)
        server.reboot()
        ev = wait_event(events, "server_restarted")
        assert ev.epoch is not None and ev.epoch < 3600
        renewed = {wait_event(events, "renewed").mapping.internal_port for _ in range(2)}  # type: ignore[union-attr]
        assert renewed == {8080, 5000}
        assert server.mapping_count() == 2
        assert m.refresh() and m.active


def test_ip_changed(server: Server) -> None:
    with pcp_rs.Client(server.address, announce_delay_max=0.5) as c:
        events = c.events()
        c.map(6, 8080)
        server.set_external_ip("203.0.113.200")
        ev = wait_event(events, "ip_changed")
        assert (ev.old, ev.new) == ("203.0.113.7", "203.0.113.200")
        # The server told us with an unsolicited MAP response (RFC 6887 14.2).
        ev = wait_event(events, "updated")
        assert ev.mapping is not None and ev.mapping.external_ip == "203.0.113.200"
        ev = wait_event(events, "renewed")
        assert ev.mapping is not None and ev.mapping.external_ip == "203.0.113.200"


def test_lost_when_renewals_fail(short_server: Server) -> None:
    with pcp_rs.Client(short_server.address, deadline=1) as c:
        events = c.events()
        m = c.map(6, 8080)
        short_server.force_result(pcp_rs.NoResources, 1)
        ev = wait_event(events, "lost")
        assert ev.mapping_id == m.id
        assert isinstance(ev.error, pcp_rs.PcpError)
        assert not m.active


def test_failed_event(server: Server) -> None:
    with pcp_rs.Client(server.address) as c:
        kinds: List[str] = []
        events = c.events()
        server.force_result("NOT_AUTHORIZED")
        try:
            c.map(6, 8080)
        except pcp_rs.NotAuthorized:
            pass
        ev = wait_event(events, "failed")
        kinds.append(ev.kind)
        assert isinstance(ev.error, pcp_rs.NotAuthorized)


def test_iterator_ends_when_closed(server: Server) -> None:
    c = pcp_rs.Client(server.address)
    events = c.events()
    c.map(6, 8080)
    c.close()
    kinds = [ev.kind for ev in events]  # drains, then stops: the client is closed
    assert "granted" in kinds


@pytest.mark.skipif(sys.platform != "linux", reason="127.0.0.2 is a loopback address only on Linux")
def test_internal_address_changed(client: pcp_rs.Client, server: Server) -> None:
    # RFC 6887 section 11.5, on loopback: we now send from 127.0.0.2.
    events = client.events()
    m = client.map(6, 8086, lifetime=600)
    assert m.internal_ip == "127.0.0.1"
    assert client.set_local_address("127.0.0.1") is False
    assert client.set_local_address("127.0.0.2") is True
    ev = wait_event(events, "internal_ip_changed")
    assert (ev.old, ev.new) == ("127.0.0.1", "127.0.0.2")
    ev = wait_event(events, "renewed")
    assert ev.mapping is not None and ev.mapping.id == m.id and ev.mapping.internal_ip == "127.0.0.2"
    assert client.internal_address == "127.0.0.2"
    assert client.refresh_internal_address() is False  # named explicitly: not checked
    assert client.set_local_address(None) is True
    ev = wait_event(events, "internal_ip_changed")
    assert (ev.old, ev.new) == ("127.0.0.2", "127.0.0.1")
    with pytest.raises((ValueError, TypeError)):
        client.set_local_address("not an address")

"""The full API: Client, Mapping, options, requests, module functions."""

from __future__ import annotations

import ipaddress
import threading
from typing import Any

import pytest

import pcp_rs
from pcp_rs.testing import Server

from conftest import EVENT_WAIT, dead_udp_port, wait_event


def test_map_attributes(client: pcp_rs.Client, server: Server) -> None:
    m = client.map(pcp_rs.TCP, 8080, 8080, 1200)
    assert m.opcode == "MAP"
    assert m.protocol == 6
    assert m.internal_port == 8080
    assert m.internal_ip == "127.0.0.1"
    assert m.external_ip == server.external_ip == "203.0.113.7"
    assert m.external_port == 8080
    assert m.lifetime == 1200
    assert 0 < m.expires_in <= 1200
    assert isinstance(m.epoch, int)
    assert isinstance(m.nonce, bytes) and len(m.nonce) == 12
    assert m.nonce.hex() == m.nonce_hex
    assert m.peer_ip is None and m.peer_port is None
    assert m.active
    assert "MAP" in repr(m)
    m.delete()
    assert not m.active
    assert not m.refresh()
    assert server.mapping_count() == 0
    # Gone already: deleting it again succeeds and sends nothing (as in Node and C).
    received = server.requests_received()
    m.delete()
    assert server.requests_received() == received


def test_protocol_forms(client: pcp_rs.Client) -> None:
    assert client.map("udp", 5353).protocol == 17
    assert client.map("TCP", 5353).protocol == 6
    assert client.map(17, 5354, lifetime=60).lifetime == 60


def test_peer(client: pcp_rs.Client, server: Server) -> None:
    m = client.peer("tcp", 9000, "198.51.100.5", 443, lifetime=300)
    assert m.opcode == "PEER"
    assert (m.peer_ip, m.peer_port) == ("198.51.100.5", 443)
    assert m.lifetime == 300
    [s] = server.mappings()
    assert s["opcode"] == "PEER" and s["peer_ip"] == "198.51.100.5"
    client.delete(m)
    assert server.mapping_count() == 0


def test_ipaddress_objects(client: pcp_rs.Client) -> None:
    m = client.peer(6, 9000, ipaddress.ip_address("198.51.100.9"), 80)
    assert m.peer_ip == "198.51.100.9"


def test_find_and_list(client: pcp_rs.Client) -> None:
    a = client.map(6, 1000)
    b = client.map(17, 1000)
    assert client.find_mapping(6, 1000).id == a.id  # type: ignore[union-attr]
    assert client.find_mapping("udp", 1000).id == b.id  # type: ignore[union-attr]
    assert client.find_mapping(6, 1001) is None
    assert sorted(m.id for m in client.mappings()) == sorted([a.id, b.id])


def test_announce_and_addresses(client: pcp_rs.Client, server: Server) -> None:
    assert isinstance(client.announce(), int)
    assert client.external_address() == "203.0.113.7"
    assert client.gateway_address == ("127.0.0.1", server.port)
    assert client.internal_address == "127.0.0.1"
    assert client.server_epoch is not None
    assert isinstance(client.listens_for_announce, bool)  # True unless UDP 5350 is taken without reuse


def test_option_third_party(client: pcp_rs.Client, server: Server) -> None:
    m = client.map(6, 8080, third_party="127.0.0.9")
    assert m.internal_ip == "127.0.0.9"
    assert server.mappings()[0]["internal_ip"] == "127.0.0.9"


def test_option_prefer_failure(client: pcp_rs.Client) -> None:
    client.map(6, 8080, 30000)
    with pytest.raises(pcp_rs.CannotProvideExternal) as info:
        client.map(6, 8081, 30000, prefer_failure=True)
    assert info.value.code == 11
    # Without PREFER_FAILURE the server picks another port.
    assert client.map(6, 8082, 30000).external_port != 30000


def test_option_filter(client: pcp_rs.Client, server: Server) -> None:
    client.map(6, 8080, filters=[("198.51.100.0", 24, 0), ("2001:db8::1", 128, 443)])
    assert server.mappings()[0]["filters"] == 2


def test_nonce_reuse_and_delete_by_nonce(client: pcp_rs.Client, server: Server) -> None:
    nonce = bytes(range(12))
    m = client.map(6, 8080, nonce=nonce)
    assert m.nonce == nonce
    with pcp_rs.Client(server.address, delete_on_close=False) as other:
        other.delete_by_nonce(6, 8080, nonce.hex())
    assert server.mapping_count() == 0


def test_delete_by_nonce_of_a_third_party_mapping(client: pcp_rs.Client, server: Server) -> None:
    # A mapping another process made for another host (THIRD_PARTY), then
    # left on the server: only a delete naming that host removes it.
    with pcp_rs.Client(server.address, delete_on_close=False, listen_announce=False) as maker:
        third = maker.map(6, 8081, third_party="127.0.0.9")
        plain = maker.map(6, 8080)
    assert server.mapping_count() == 2
    client.delete_by_nonce(6, 8081, third.nonce)  # names a mapping of ours, which does not exist
    assert server.mapping_count() == 2
    client.delete_by_nonce("tcp", 8081, third.nonce.hex(), third_party="127.0.0.9")
    assert [m["internal_port"] for m in server.mappings()] == [8080]
    client.start_delete_by_nonce(6, 8080, plain.nonce).wait(EVENT_WAIT)
    assert server.mapping_count() == 0
    with pytest.raises(pcp_rs.InvalidArgument, match='third_party: "nope" is not an IPv4 or IPv6 address'):
        client.delete_by_nonce(6, 8080, plain.nonce, third_party="nope")


def test_address_arguments_follow_the_core_rule(client: pcp_rs.Client, server: Server) -> None:
    # The same text C, Node and the CLI accept (brackets, blanks), and the same message.
    server.set_external_ip(" [2001:db8::7] ")
    assert server.external_ip == "2001:db8::7"
    server.set_external_ip(ipaddress.ip_address("203.0.113.9"))
    assert server.external_ip == "203.0.113.9"
    with pytest.raises(pcp_rs.InvalidArgument) as info:
        client.map(6, 8080, external_ip="10.0.0")
    assert str(info.value) == 'invalid argument: external_ip: "10.0.0" is not an IPv4 or IPv6 address'
    with Server(host="[::1]") as v6, pcp_rs.Client(f"[::1]:{v6.port}", listen_announce=False) as c6:
        assert c6.peer(6, 8080, "[2001:db8::5]", 443).peer_ip == "2001:db8::5"
    with pytest.raises(pcp_rs.InvalidArgument, match="bad port"):
        pcp_rs.Client("[::1]:x")


def test_close_keep_leaves_mappings(server: Server) -> None:
    c = pcp_rs.Client(server.address)
    c.map(6, 8080)
    c.close_keep()
    assert c.closed
    assert server.mapping_count() == 1


def test_delete_on_close_false(server: Server) -> None:
    with pcp_rs.Client(server.address, delete_on_close=False) as c:
        c.map(6, 8080)
    assert server.mapping_count() == 1


def test_mapping_of_another_client(client: pcp_rs.Client, server: Server) -> None:
    with pcp_rs.Client(server.address) as other:
        m = other.map(6, 1)
        with pytest.raises(ValueError, match="another client"):
            client.delete(m)


def test_done_callbacks_run_where_the_request_completes_not_in_wait(server: Server) -> None:
    # A callback of a request someone waits on runs on the thread that
    # completes it (the driver thread), not inside wait(): one that closes
    # the client there would stall the wait (nobody reads the deletes' answers).
    c = pcp_rs.Client(server.address, listen_announce=False)
    c.map(6, 5000)  # something for close to delete
    closed = threading.Event()
    c.on_close(closed.set)
    seen = {}

    def on_done() -> None:
        seen["thread"] = threading.get_ident()
        seen["result"] = req.result()  # taking the result here leaves wait() its copy
        c.close()  # on the driver thread: done as the callback returns

    server.set_delay(0.2)  # the callback is registered before the answer comes
    req = c.start_map(6, 5001)
    req.add_done_callback(on_done)
    m = req.wait(timeout=10)
    # wait() may return before the callback has run (both follow the same
    # wake-up); the close it makes ends after it has.
    assert closed.wait(EVENT_WAIT) and c.closed
    assert isinstance(m, pcp_rs.Mapping) and seen["result"].id == m.id
    assert seen["thread"] != threading.get_ident()
    assert server.mapping_count() == 0


def test_blocking_calls_keep_their_documentation() -> None:
    # Made from start_*: their docstrings say what they return.
    assert "returns the server's epoch" in (pcp_rs.Client.announce.__doc__ or "")
    assert "returns the Mapping" in (pcp_rs.Client.map.__doc__ or "")
    assert "a Request" not in (pcp_rs.Client.delete.__doc__ or "")


def test_requests(client: pcp_rs.Client, server: Server) -> None:
    req = client.start_map(6, 8080)
    m = req.wait(timeout=10)
    assert isinstance(m, pcp_rs.Mapping) and req.done()
    assert req.result().id == m.id

    called = threading.Event()
    addr = client.start_external_address()
    addr.add_done_callback(called.set)
    assert called.wait(10)
    assert addr.result() == "203.0.113.7"

    assert isinstance(client.start_announce().wait(10), int)
    assert client.start_delete(m).wait(10) is None

    server.drop_next(1000)
    req = client.start_map(6, 8081)
    assert not req.done()
    with pytest.raises(RuntimeError):
        req.result()
    with pytest.raises(TimeoutError):
        req.wait(timeout=0.1)
    req.cancel()
    with pytest.raises(pcp_rs.Cancelled):
        req.wait(timeout=10)


def test_discover_and_module_functions(server: Server) -> None:
    d = pcp_rs.discover([dead_udp_port(), server.address])
    assert (d.server_ip, d.server_port) == ("127.0.0.1", server.port)
    assert d.address == server.address
    assert d.internal_ip == "127.0.0.1"
    assert d.epoch >= 0
    assert pcp_rs.get_gateway_address([server.address]) == ("127.0.0.1", server.port)
    assert pcp_rs.get_external_address(server.address) == "203.0.113.7"
    assert pcp_rs.get_external_address(candidates=[server.address]) == "203.0.113.7"
    assert pcp_rs.get_internal_address(server.address) == "127.0.0.1"
    assert pcp_rs.parse_server("[::1]:99") == ("::1", 99)
    assert pcp_rs.parse_server("10.0.0.1") == ("10.0.0.1", 5351)


def test_client_discovers(server: Server) -> None:
    with pcp_rs.Client(candidates=[server.address]) as c:
        assert c.gateway_address == ("127.0.0.1", server.port)
        assert c.map(6, 80).external_ip == "203.0.113.7"


def test_test_server_controls(server: Server) -> None:
    assert server.running and server.host == "127.0.0.1" and server.port > 0
    assert server.requests_received() == 0
    with pcp_rs.Client(server.address) as c:
        c.map(6, 80)
        assert server.requests_received() == 1
        server.set_external_ip("203.0.113.99")
        assert server.external_ip == "203.0.113.99"
        assert c.external_address() == "203.0.113.99"
    server.stop()
    assert not server.running
    with pytest.raises(pcp_rs.InvalidArgument, match="the test server is stopped"):
        server.mapping_count()
    assert "stopped" in repr(server)


def test_remove_event_handler(client: pcp_rs.Client) -> None:
    called: "list[pcp_rs.Event]" = []
    kept: "list[pcp_rs.Event]" = []
    handler = client.on_event(called.append)
    client.on_event(kept.append)
    assert client.remove_event_handler(handler)
    assert not client.remove_event_handler(handler)
    events = client.events()
    client.map(6, 8080)
    # Handlers run before the iterators get the same event, so had the
    # removed one still been registered it would have been called by now.
    wait_event(events, "granted")
    assert called == [] and any(ev.kind == "granted" for ev in kept)


def test_on_close(server: Server) -> None:
    c = pcp_rs.Client(server.address, listen_announce=False)
    assert not c.listens_for_announce
    closed: "list[str]" = []
    c.on_close(lambda: closed.append("first"))
    c.close_keep()
    assert closed == ["first"]
    c.close()
    assert closed == ["first"]  # once
    c.on_close(lambda: closed.append("late"))  # already closed: at once
    assert closed == ["first", "late"]


def test_request_is_generic() -> None:
    alias: Any = pcp_rs.Request[pcp_rs.Mapping]
    assert alias.__origin__ is pcp_rs.Request and alias.__args__ == (pcp_rs.Mapping,)

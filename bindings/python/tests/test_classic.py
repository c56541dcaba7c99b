"""The classic API, exactly as hand-rolled clients' users call it."""

from __future__ import annotations

import pytest

from pcp_rs import PCPClient
from pcp_rs.testing import Server

from conftest import has_ipv6_loopback, wait_event


def test_classic_api_verbatim(server: Server) -> None:
    server_ip = server.address
    client = PCPClient(server_ip)
    external_ip, external_port, lifetime = client.create_mapping(8080)
    assert external_ip == "203.0.113.7"
    assert isinstance(external_port, int) and external_port > 0
    assert lifetime == 3600

    result = client.create_mapping(5000, 5000, 17, 600)
    assert result == ("203.0.113.7", 5000, 600)

    peer = client.create_peer_mapping(9000, "198.51.100.5", 443)
    for key in ("external_ip", "external_port", "lifetime", "peer_ip", "peer_port"):
        assert key in peer
    assert peer["peer_ip"] == "198.51.100.5" and peer["peer_port"] == 443
    assert peer["external_ip"] == "203.0.113.7" and peer["lifetime"] == 3600

    peer = client.create_peer_mapping(9001, "198.51.100.6", 80, 17, 120)
    assert peer["lifetime"] == 120

    assert server.mapping_count() == 4
    client.delete_mapping(8080)
    client.delete_mapping(5000, 17)
    assert server.mapping_count() == 2
    client.close()
    assert server.mapping_count() == 0


def test_keyword_arguments(server: Server) -> None:
    with PCPClient(server.address) as client:
        ip, port, life = client.create_mapping(internal_port=8081, external_port=0, protocol=6, lifetime=100)
        assert (ip, life) == ("203.0.113.7", 100)
        client.delete_mapping(internal_port=8081, protocol=6)
        d = client.create_peer_mapping(internal_port=1, peer_ip="192.0.2.1", peer_port=2, protocol=17, lifetime=50)
        assert d["lifetime"] == 50


def test_delete_uses_the_mappings_nonce(server: Server) -> None:
    with PCPClient(server.address) as client:
        client.create_mapping(7000)
        nonce = client.client.find_mapping(6, 7000).nonce  # type: ignore[union-attr]
        [on_server] = server.mappings()
        assert on_server["nonce"] == nonce
        # The server refuses a delete with another nonce; this one is accepted.
        client.delete_mapping(7000)
        assert server.mapping_count() == 0
        # Deleting what this client does not hold is a no-op.
        client.delete_mapping(7000)


def test_mapping_again_replaces(server: Server) -> None:
    with PCPClient(server.address) as client:
        client.create_mapping(7001, lifetime=100)
        _, _, life = client.create_mapping(7001, lifetime=200)
        assert life == 200
        assert server.mapping_count() == 1
        client.delete_mapping(7001)
        assert server.mapping_count() == 0


def test_mapping_again_keeps_a_satisfying_mapping(server: Server) -> None:
    # The hand-rolled habit of calling create_mapping again to refresh: the
    # core already renews, so the mapping (and its external port) is kept.
    with PCPClient(server.address) as client:
        first = client.create_mapping(7002)
        before = server.requests_received()
        assert client.create_mapping(7002) == first
        assert client.create_mapping(7002, first[1]) == first
        assert server.requests_received() == before
        assert server.mapping_count() == 1


def test_context_manager_deletes(server: Server) -> None:
    with PCPClient(server.address) as client:
        client.create_mapping(1234)
        assert server.mapping_count() == 1
    assert server.mapping_count() == 0


def test_host_port_forms(server: Server) -> None:
    for form in (server.address, f" {server.address} ", (server.host, server.port)):
        with PCPClient(form) as client:  # type: ignore[arg-type]
            assert client.create_mapping(4000)[0] == "203.0.113.7"


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_server() -> None:
    with Server(host="::1") as server:
        assert server.address.startswith("[::1]:")
        with PCPClient(server.address) as client:
            ip, port, lifetime = client.create_mapping(8080)
            # An IPv6 request gets a pinhole: external = internal address and port.
            assert ip == "::1" and port == 8080 and lifetime == 3600
            client.delete_mapping(8080)
            assert server.mapping_count() == 0


def test_none_discovers(server: Server) -> None:
    with PCPClient(None, candidates=[server.address]) as client:
        assert client.server_ip == "127.0.0.1"
        assert client.create_mapping(8080)[0] == "203.0.113.7"


def test_mappings_are_renewed(short_server: Server) -> None:
    with PCPClient(short_server.address) as client:
        events = client.client.events()
        _, _, lifetime = client.create_mapping(8080)
        assert lifetime == 2
        for _ in range(2):
            ev = wait_event(events, "renewed")
            assert ev.mapping is not None and ev.mapping.internal_port == 8080
        assert short_server.mapping_count() == 1

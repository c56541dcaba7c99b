"""Against the test server as a NAT-PMP-only gateway: the classic API and
the full API fall back to NAT-PMP (RFC 6887 section 9) by themselves."""

from __future__ import annotations

from typing import Iterator

import pytest

import pcp_rs
from pcp_rs.testing import Server

from conftest import wait_event


@pytest.fixture
def natpmp_server() -> Iterator[Server]:
    with Server(mode="natpmp", initial_epoch=1000) as s:
        yield s


def test_classic_api_works_unchanged(natpmp_server: Server) -> None:
    with pcp_rs.PCPClient(natpmp_server.address) as client:
        ip, port, lifetime = client.create_mapping(8080, 8080, 6, 3600)
        assert (ip, port, lifetime) == ("203.0.113.7", 8080, 3600)
        ip, port, lifetime = client.create_mapping(9000, protocol=17, lifetime=600)
        assert ip == "203.0.113.7" and port != 0 and lifetime == 600
        assert natpmp_server.mapping_count() == 2
        client.delete_mapping(8080)
        assert natpmp_server.mapping_count() == 1
        with pytest.raises(pcp_rs.UnsupportedByNatPmp, match="PEER"):
            client.create_peer_mapping(7000, "198.51.100.1", 443)
    assert natpmp_server.mapping_count() == 0


def test_full_api_shows_the_protocol(natpmp_server: Server) -> None:
    with pcp_rs.Client(natpmp_server.address, deadline=5) as c:
        events = c.events()
        m = c.map(6, 4000)
        assert m.protocol_version == "natpmp"
        granted = wait_event(events, "granted")
        assert granted.mapping is not None and granted.mapping.protocol_version == "natpmp"
        assert c.external_address() == "203.0.113.7"
        err = pytest.raises(pcp_rs.UnsupportedByNatPmp, c.map, 0, 0)
        assert err.value.name == "UNSUPPORTED_BY_NATPMP"


def test_protocol_option(natpmp_server: Server) -> None:
    with pcp_rs.Client(natpmp_server.address, deadline=5, protocol="pcp") as c:
        with pytest.raises(pcp_rs.UnsuppVersion) as e:
            c.map(6, 4001)
        assert e.value.server_version == 0
    with Server() as both:
        with pcp_rs.Client(both.address, deadline=5, protocol="natpmp") as c:
            assert c.map(6, 4002).protocol_version == "natpmp"
        with pcp_rs.Client(both.address, deadline=5) as c:
            assert c.map(6, 4003).protocol_version == "pcp"
    with pytest.raises(ValueError, match="protocol"):
        pcp_rs.Client(natpmp_server.address, protocol="upnp")
    with pytest.raises(ValueError, match="mode"):
        Server(mode="upnp")

"""The classic API, exactly as hand-rolled clients' users call it."""

from __future__ import annotations

import pytest

from pcp_rs import InvalidArgument, PCPClient
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
    # Asked again: the same mapping (a new nonce would be refused), also
    # with a new lifetime, as in Node and the core.
    again = client.create_peer_mapping(9001, "198.51.100.6", 80, 17, 600)
    assert (again["nonce"], again["lifetime"]) == (peer["nonce"], 600)

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


def _classic_cases() -> list:
    """The shared table of tests/classic/cases.txt (one for every language)."""
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "classic", "cases.txt")
    with open(path) as f:
        lines = [line.strip() for line in f]
    return [tuple(line.split(":", 1)) for line in lines if line and not line.startswith("#")]


CASES = _classic_cases()


def test_the_case_table_is_there() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("name,steps", CASES, ids=[c[0] for c in CASES])
def test_shared_case(server: Server, name: str, steps: str) -> None:
    import pcp_rs

    nonces: dict = {}
    with PCPClient(server.address, listen_announce=False) as client:
        for step in (s.strip() for s in steps.split(";")):
            w = step.split()
            if w[0] == "map":
                port, external, life, expect = int(w[1]), int(w[2]), int(w[3]), w[4]
                try:
                    _, got_port, _ = client.create_mapping(port, external, 6, life)
                except pcp_rs.PcpError as e:
                    assert e.name == expect, f"{name}: {step}: {e}"
                    continue
                assert expect in ("new", "same"), f"{name}: {step}: succeeded"
                nonce = client.client.find_mapping(6, port).nonce  # type: ignore[union-attr]
                assert (nonces.get(port) == nonce) == (expect == "same"), f"{name}: {step}"
                nonces[port] = nonce
                if external and expect == "new":
                    assert got_port == external
            elif w[0] == "delete":
                try:
                    client.delete_mapping(int(w[1]), 6)
                    assert w[2] == "ok", f"{name}: {step}"
                except pcp_rs.PcpError as e:
                    assert e.name == w[2], f"{name}: {step}: {e}"
            elif w[0] == "server_mappings":
                assert server.mapping_count() == int(w[1]), f"{name}: {step}"
            elif w[0] == "refuse":
                server.force_result(None if w[1] == "none" else w[1], 0)
            else:
                raise AssertionError(f"{name}: unknown step {step}")


def test_concurrent_calls_share_one_mapping(server: Server) -> None:
    # 8 threads mapping one port: one request, one nonce, one mapping, and
    # every caller gets it (issue 13 defect 4).
    import threading

    results: list = []
    start = threading.Barrier(8)
    with PCPClient(server.address, listen_announce=False) as client:

        def call() -> None:
            start.wait()
            results.append(client.create_mapping(8090))

        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(results) == 8 and len(set(results)) == 1
        assert server.mapping_count() == 1


def test_mapping_times_come_from_the_core(server: Server) -> None:
    # Reading a mapping twice does not move its expiry.
    import time

    with PCPClient(server.address, listen_announce=False) as client:
        client.create_mapping(8091)
        m = client.client.find_mapping(6, 8091)
        assert m is not None
        first = m.expires_in
        time.sleep(0.05)
        again = client.client.find_mapping(6, 8091)
        assert again is not None and again.expires_in <= first
        assert m.refresh() and m.expires_in <= first


def test_zero_deadline_is_refused(server: Server) -> None:
    # One rule for every language, the core's: a deadline must be more than 0.
    import pcp_rs

    with pytest.raises(pcp_rs.InvalidArgument, match="the request deadline must be more than 0"):
        PCPClient(server.address, deadline=0)
    with pytest.raises(pcp_rs.InvalidArgument, match="the discovery deadline must be more than 0"):
        pcp_rs.discover([server.address], deadline=0)


def test_huge_int_says_the_range(server: Server) -> None:
    with PCPClient(server.address, listen_announce=False) as client:
        # The core's rule and words for a range (config::whole_number), as in Node.
        with pytest.raises(InvalidArgument, match="internal_port: \"1180591620717411303424\" is not a whole number") as info:
            client.create_mapping(2**70)
        assert info.value.name == "INVALID_ARGUMENT"
        assert "not int" not in str(info.value)
        with pytest.raises(InvalidArgument) as info:
            client.create_mapping(10**5000)
        assert len(str(info.value)) < 200

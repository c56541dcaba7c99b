"""Bad arguments: wrong types, out-of-range values, use after close, close
twice. Asserts exception classes (and the core's error names), never
message texts."""

from __future__ import annotations

from typing import Any, Callable

import pytest

import pcp_rs
from pcp_rs.testing import Server


def raises_invalid(f: Callable[[], Any]) -> None:
    """A bad value is pcp_rs.InvalidArgument (a ValueError, code INVALID_ARGUMENT
    as in Node and C), a wrong type a TypeError; never a plain ValueError."""
    with pytest.raises((pcp_rs.InvalidArgument, TypeError)) as info:
        f()
    if isinstance(info.value, pcp_rs.PcpError):
        assert info.value.name == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    "args",
    [
        ("tcp", -1),
        ("tcp", 65536),
        ("tcp", 2**70),
        (0, 80),  # a port with protocol 0 (all); TCP port 0 is "all ports" (RFC 6887 11.1)
        ("tcp", "80"),
        ("tcp", 80.5),
        ("tcp", None),
        ("icmpx", 80),
        (256, 80),
        (-1, 80),
        (None, 80),
        ("tcp", 80, -1),
        ("tcp", 80, 65536),
        ("tcp", 80, 0, 0),
        ("tcp", 80, 0, -5),
        ("tcp", 80, 0, 2**32),
    ],
)
def test_map_refuses_bad_arguments(args: Any) -> None:
    with Server() as server, pcp_rs.Client(server.address, deadline=2, listen_announce=False) as client:
        raises_invalid(lambda: client.map(*args))
        assert server.mapping_count() == 0, "a refused call sent nothing"


def test_peer_and_options_refuse_bad_arguments() -> None:
    with Server() as server, pcp_rs.Client(server.address, deadline=2, listen_announce=False) as client:
        raises_invalid(lambda: client.peer("tcp", 80, "not an ip", 443))
        raises_invalid(lambda: client.peer("tcp", 80, "0.0.0.0", 443))
        raises_invalid(lambda: client.peer("tcp", 80, "198.51.100.1", 0))
        raises_invalid(lambda: client.peer("tcp", 80, "198.51.100.1", 70000))
        raises_invalid(lambda: client.peer("tcp", 80, 12345, 443))
        raises_invalid(lambda: client.map("tcp", 80, external_ip="nope"))
        raises_invalid(lambda: client.map("tcp", 80, filters=[("198.51.100.0", 33, 0)]))
        raises_invalid(lambda: client.map("tcp", 80, third_party="nope"))
        raises_invalid(lambda: client.map("tcp", 80, nonce=b"short"))
        raises_invalid(lambda: client.map("tcp", 80, prefer_failure=True))  # needs a suggested port
        raises_invalid(lambda: client.delete_by_nonce("tcp", 80, b"x" * 13))
        assert server.mapping_count() == 0


@pytest.mark.parametrize("kwargs", [{"deadline": 0}, {"deadline": -1}, {"deadline": float("nan")}, {"deadline": "5"}])
def test_client_refuses_bad_settings(kwargs: Any) -> None:
    with Server() as server:
        raises_invalid(lambda: pcp_rs.Client(server.address, listen_announce=False, **kwargs))


@pytest.mark.parametrize("server_arg", ["", "not a host name!", "127.0.0.1:0", "127.0.0.1:70000", 5, None])
def test_client_refuses_bad_servers(server_arg: Any) -> None:
    with pytest.raises((pcp_rs.PcpError, TypeError, ValueError)):
        pcp_rs.Client(server_arg, listen_announce=False, deadline=1)


def test_servers_given_as_tuples_or_addresses_are_checked_as_text_is() -> None:
    import ipaddress

    for bad in [("127.0.0.1", 0), ("0.0.0.0", 5351), ("::", 5351), ipaddress.IPv4Address("0.0.0.0")]:
        raises_invalid(lambda: pcp_rs.Client(bad, listen_announce=False))
    raises_invalid(lambda: pcp_rs.discover([("127.0.0.1", 0)]))
    raises_invalid(lambda: pcp_rs.parse_server(("127.0.0.1", 0)))
    raises_invalid(lambda: pcp_rs.parse_server(("0.0.0.0", 5351)))


def test_out_of_range_ints_are_invalid_argument_not_overflow_error() -> None:
    # As in Node: the core's range error, a ValueError, where the int
    # conversion raised OverflowError.
    with Server() as server:
        raises_invalid(lambda: pcp_rs.Client(server.address, listen_announce=False, max_retransmissions=-1))
        raises_invalid(lambda: server.force_result(2, -1))
        raises_invalid(lambda: server.force_result(2, 2**32))
        raises_invalid(lambda: server.drop_next(-1))


def test_after_close_and_close_twice() -> None:
    with Server(initial_epoch=5000) as server:
        client = pcp_rs.Client(server.address, deadline=2, listen_announce=False)
        m = client.map("tcp", 8080)
        epoch, internal = client.server_epoch, client.internal_address
        client.close()
        client.close()  # twice is fine
        assert client.closed
        for call in (
            lambda: client.map("tcp", 8081),
            lambda: client.peer("tcp", 8081, "198.51.100.1", 443),
            lambda: client.announce(),
            lambda: client.external_address(),
            lambda: client.delete(m),
            lambda: m.delete(),
        ):
            with pytest.raises(pcp_rs.ClientClosed) as info:
                call()
            assert info.value.name == "CLOSED"
        assert m.internal_port == 8080, "the mapping's fields stay readable"
        # What the client knew stays readable (as in Node); it holds no mapping.
        assert epoch is not None and epoch >= 5000 and client.server_epoch == epoch
        assert client.internal_address == internal and client.mappings() == []
        assert client.find_mapping("tcp", 8080) is None and not m.active
        for change in (lambda: client.set_local_address(None), lambda: client.refresh_internal_address()):
            with pytest.raises(pcp_rs.ClientClosed):
                change()
        # A close whose deletes go unanswered lets go of the mapping all the same.
        silent = pcp_rs.Client(server.address, listen_announce=False, close_timeout=0.3)
        held = silent.map("tcp", 8090)
        server.drop_next(100)
        silent.close()
        assert not held.active and not held.refresh()



def test_after_close_the_epoch_is_the_last_seen_the_deletes_answers_included() -> None:
    """As in Node: the server reboots (counting from 0), and the delete's answer says so."""
    with Server(initial_epoch=5000) as server:
        client = pcp_rs.Client(server.address, deadline=2, listen_announce=False)
        client.map("tcp", 8080)
        assert (client.server_epoch or 0) >= 5000
        server.reboot()
        client.close()
        assert client.server_epoch is not None and client.server_epoch < 5000

def test_classic_client_bad_arguments_and_close_twice() -> None:
    with Server() as server:
        c = pcp_rs.PCPClient(server.address, deadline=2, listen_announce=False)
        raises_invalid(lambda: c.create_mapping(2**70))
        raises_invalid(lambda: c.create_mapping("80"))
        raises_invalid(lambda: c.create_mapping(80, lifetime=-1))
        raises_invalid(lambda: c.create_peer_mapping(80, "not an ip", 443))
        c.close()
        c.close()
        with pytest.raises(pcp_rs.ClientClosed):
            c.create_mapping(80)

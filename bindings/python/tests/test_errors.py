"""Every exception: one class per result code, timeouts, unreachable
servers, bad responses, no gateway, closed clients, bad arguments."""

from __future__ import annotations

import socket
import struct
import threading
from typing import Iterator, Type

import pytest

import pcp_rs
from pcp_rs import errors
from pcp_rs.testing import Server

from conftest import dead_udp_port

RESULT_CLASSES = [
    (1, pcp_rs.UnsuppVersion),
    (2, pcp_rs.NotAuthorized),
    (3, pcp_rs.MalformedRequest),
    (4, pcp_rs.UnsuppOpcode),
    (5, pcp_rs.UnsuppOption),
    (6, pcp_rs.MalformedOption),
    (7, pcp_rs.NetworkFailure),
    (8, pcp_rs.NoResources),
    (9, pcp_rs.UnsuppProtocol),
    (10, pcp_rs.UserExQuota),
    (11, pcp_rs.CannotProvideExternal),
    (12, pcp_rs.AddressMismatch),
    (13, pcp_rs.ExcessiveRemotePeers),
]


def test_result_code_table() -> None:
    names = {rc: name for name, rc, _, _ in pcp_rs._pcp_rs.error_codes() if rc is not None}
    assert set(pcp_rs.RESULT_CODES) == set(range(1, 14))
    for code, cls in RESULT_CLASSES:
        assert pcp_rs.RESULT_CODES[code] is cls
        assert cls.code == code and cls.name == names[code]
        assert issubclass(cls, pcp_rs.ResultCodeError) and issubclass(cls, pcp_rs.PcpError)


@pytest.mark.parametrize("code,cls", RESULT_CLASSES, ids=[c.__name__ for _, c in RESULT_CLASSES])
def test_each_result_code(server: Server, code: int, cls: Type[pcp_rs.ResultCodeError]) -> None:
    server.force_result(code)
    with pcp_rs.Client(server.address, deadline=5) as c:
        with pytest.raises(cls) as info:
            c.map(6, 8080)
        e = info.value
        assert isinstance(e, pcp_rs.PcpError)
        assert e.code == code and e.name == cls.name
        assert cls.name in str(e) or str(e)
        if cls is pcp_rs.UnsuppVersion:
            assert isinstance(e, pcp_rs.UnsuppVersion) and e.server_version is not None
        # The same code given by name and by class.
        server.force_result(cls.name)
        with pytest.raises(cls):
            c.peer(6, 8080, "192.0.2.1", 80)
        server.force_result(cls)
        with pytest.raises(cls):
            c.map(17, 8080)
        server.force_result(None)
        if cls is pcp_rs.UnsuppVersion:
            # Version negotiation, not a refusal: no retry_after.
            assert e.retry_after is None
            assert c.map(6, 8080).external_port > 0
            return
        # RFC 6887 section 8.3: the error's lifetime (30 s) is retry_after,
        # and the same request within it fails at once without reaching the
        # server (this test used to expect it to go through at once).
        assert e.retry_after == 30
        before = server.requests_received()
        with pytest.raises(cls) as again:
            c.map(6, 8080)
        assert again.value.retry_after is not None and 0 < again.value.retry_after <= 30
        assert server.requests_received() == before
        if cls is not pcp_rs.NoResources:  # NO_RESOURCES stops every new mapping
            assert c.map(6, 8090).external_port > 0


def test_timeout(server: Server) -> None:
    server.drop_next(1000)
    with pcp_rs.Client(server.address, deadline=0.5) as c:
        with pytest.raises(pcp_rs.PcpTimeout) as info:
            c.map(6, 8080)
    assert isinstance(info.value, TimeoutError)
    assert info.value.name == "TIMEOUT" and info.value.code is None


def test_server_unreachable() -> None:
    with pcp_rs.Client(dead_udp_port(), deadline=5) as c:
        with pytest.raises(pcp_rs.ServerUnreachable) as info:
            c.map(6, 8080)
    assert isinstance(info.value, ConnectionError)


@pytest.fixture
def garbage_server() -> Iterator[str]:
    """Answers every request with a well-formed PCP header carrying result
    code 99, which no RFC defines (bounded: at most 50 answers)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        answered = 0
        while not stop.is_set() and answered < 50:
            try:
                data, addr = sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 24:
                continue
            opcode = data[1] & 0x7F
            reply = bytearray(data)
            reply[1] = 0x80 | opcode
            reply[2] = 0
            reply[3] = 99
            reply[8:12] = struct.pack("!I", 0)
            reply[12:24] = b"\0" * 12
            sock.sendto(bytes(reply), addr)
            answered += 1

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield "127.0.0.1:%d" % sock.getsockname()[1]
    finally:
        stop.set()
        t.join(5)
        sock.close()


def test_invalid_answers_are_dropped(garbage_server: str) -> None:
    # RFC 6887: an invalid response is dropped silently and the client keeps
    # waiting, so the request ends with the deadline.
    with pcp_rs.Client(garbage_server, deadline=1) as c:
        with pytest.raises(pcp_rs.PcpTimeout):
            c.announce()


@pytest.mark.parametrize(
    "name,cls",
    [
        ("BAD_RESPONSE", pcp_rs.BadResponse),
        ("TIMEOUT", pcp_rs.PcpTimeout),
        ("SERVER_UNREACHABLE", pcp_rs.ServerUnreachable),
        ("NO_GATEWAY", pcp_rs.NoGateway),
        ("INVALID_ARGUMENT", pcp_rs.InvalidArgument),
        ("IO", pcp_rs.PcpIOError),
        ("CLOSED", pcp_rs.ClientClosed),
        ("CANCELLED", pcp_rs.Cancelled),
        ("UNSUPPORTED_BY_NATPMP", pcp_rs.UnsupportedByNatPmp),
    ]
    + [(cls.name, cls) for _, cls in RESULT_CLASSES],
)
def test_every_core_error_converts(name: str, cls: Type[pcp_rs.PcpError]) -> None:
    # The binding's conversion of each pcp_core::Error variant, including
    # those that no server can provoke over the wire (BAD_RESPONSE, IO).
    e = pcp_rs._pcp_rs._core_error(name)
    assert type(e) is cls and e.name == name and isinstance(e, pcp_rs.PcpError)
    assert e.message and str(e)
    if cls is pcp_rs.PcpIOError:
        assert isinstance(e, OSError) and e.errno == 13
    if cls is pcp_rs.InvalidArgument:
        assert isinstance(e, ValueError)
    if cls is pcp_rs.BadResponse:
        assert "made up" in str(e)


def test_classes_are_the_core_registry() -> None:
    # One class per code of the core's registry, in its order, with its
    # result code and short-term flag: nothing hand-kept can drift.
    core = pcp_rs._pcp_rs.error_codes()
    assert sorted(name for name, _, _, _ in core) == sorted(errors._BY_NAME)
    for name, result_code, summary, short_term in core:
        cls = errors._BY_NAME[name]
        assert cls.code == result_code and cls.__name__ in errors.__all__ and cls.__doc__
        # Exported by the package too, as the class itself.
        assert cls.__name__ in pcp_rs.__all__ and getattr(pcp_rs, cls.__name__) is cls
        if result_code is not None:
            assert issubclass(cls, pcp_rs.ResultCodeError) and cls.short_term == short_term
    assert [c.name for c in (pcp_rs.NetworkFailure, pcp_rs.NoResources, pcp_rs.UserExQuota)] == [
        name for name, rc, _, short in core if short and rc is not None
    ]


def test_core_error_hook_is_private() -> None:
    # A test hook of the extension module, exported nowhere.
    assert not hasattr(pcp_rs, "_core_error") and "_core_error" not in pcp_rs.__all__
    assert "_core_error" not in getattr(pcp_rs._pcp_rs, "__all__", [])


def test_no_gateway() -> None:
    with pytest.raises(pcp_rs.NoGateway):
        pcp_rs.discover([dead_udp_port()], deadline=1)
    with pytest.raises(pcp_rs.NoGateway):
        pcp_rs.Client(candidates=[], discovery_deadline=1)
    with pytest.raises(pcp_rs.NoGateway):
        pcp_rs.PCPClient(None, candidates=[dead_udp_port()], discovery_deadline=1)


def test_closed(server: Server) -> None:
    c = pcp_rs.Client(server.address)
    c.close()
    c.close()  # idempotent
    with pytest.raises(pcp_rs.ClientClosed):
        c.map(6, 8080)
    with pytest.raises(pcp_rs.ClientClosed):
        c.start_map(6, 8080).wait(10)



def test_closed_requests_in_flight_when_the_client_closes(server: Server) -> None:
    """As in Node and the core: CLOSED, not the CANCELLED of a caller's own cancel()."""
    c = pcp_rs.Client(server.address, listen_announce=False, close_timeout=0.1)
    server.drop_next(1000)
    req = c.start_map(6, 8080)
    c.close()
    with pytest.raises(pcp_rs.ClientClosed):
        req.wait(10)

def test_from_core_fallbacks() -> None:
    e = errors._from_core("IO", "boom", None, errno=13)
    assert isinstance(e, pcp_rs.PcpIOError) and isinstance(e, OSError) and e.errno == 13 and str(e) == "boom"
    assert isinstance(errors._from_core("CANCELLED", "x", None), pcp_rs.Cancelled)
    assert isinstance(errors._from_core("INVALID_ARGUMENT", "x", None), ValueError)
    assert type(errors._from_core("SOMETHING_NEW", "x", None)) is pcp_rs.PcpError


def test_bad_arguments(client: pcp_rs.Client, server: Server) -> None:
    with pytest.raises(pcp_rs.InvalidArgument, match="internal_port: 70000 is not a whole number from 0 to 65535"):
        client.map(6, 70000)
    with pytest.raises(ValueError, match="external_port"):
        client.map(6, 80, -1)
    with pytest.raises(ValueError, match="protocol"):
        client.map("sctpx", 80)
    with pytest.raises(ValueError, match="protocol"):
        client.map(300, 80)
    with pytest.raises(ValueError, match="lifetime"):
        client.map(6, 80, 0, -5)
    with pytest.raises(TypeError, match="internal_port must be an int"):
        client.map(6, "80")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.map(6, 80.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bool"):
        client.map(6, True)
    with pytest.raises(ValueError, match="peer_ip"):
        client.peer(6, 80, "not-an-ip", 80)
    with pytest.raises(TypeError, match="peer_ip"):
        client.peer(6, 80, 1234, 80)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nonce"):
        client.map(6, 80, nonce=b"short")
    with pytest.raises(ValueError, match="nonce"):
        client.map(6, 80, nonce="zz")
    with pytest.raises(TypeError, match="filter"):
        client.map(6, 80, filters=["198.51.100.1"])  # type: ignore[list-item]
    with pytest.raises(pcp_rs.InvalidArgument, match="FILTER prefix /33 is too long for 198.51.100.1"):
        client.map(6, 80, filters=[("198.51.100.1", 33, 0)])
    with pytest.raises(TypeError, match="server"):
        pcp_rs.Client(12345)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        pcp_rs.Client("")
    with pytest.raises(ValueError, match="deadline"):
        pcp_rs.Client(server.address, deadline=-1)
    with pytest.raises(ValueError, match="not both"):
        pcp_rs.Client(server.address, candidates=[server.address])
    with pytest.raises(TypeError, match="candidates"):
        pcp_rs.discover("127.0.0.1")
    with pytest.raises(TypeError, match="callable"):
        client.on_event(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Server(host="nope")
    with pytest.raises(ValueError, match="result code"):
        server.force_result(99)
    # The core's own argument checks arrive as ValueError too (InvalidArgument).
    with pytest.raises(ValueError):
        client.map(0, 80)  # a port with protocol 0 (all); TCP port 0 is legal (RFC 6887 11.1)
    # Nothing above reached the server.
    assert server.requests_received() == 0

"""pcp_rs: a Port Control Protocol (PCP, RFC 6887) client, backed by the Rust core.

The classic client, a drop-in for hand-rolled socket/struct code::

    from pcp_rs import PCPClient
    with PCPClient("192.168.1.1") as client:
        external_ip, external_port, lifetime = client.create_mapping(8080)
        ...
        client.delete_mapping(8080)

The full API (:class:`Client`, :class:`Mapping`, events), asyncio
(:mod:`pcp_rs.aio`), exceptions (:mod:`pcp_rs.errors`) and a test server
(:mod:`pcp_rs.testing`). Mappings are renewed by the core until deleted or
the client is closed; every blocking call releases the GIL and honours Ctrl-C.
"""

from __future__ import annotations

import atexit
import re
from typing import Any, Callable, Iterable, Optional, Tuple, Union

from . import _pcp_rs
from ._classic import PCPClient, ServerArg
from ._pcp_rs import Client, Discovered, Event, EventIterator, Mapping, Request, discover, parse_server
from .errors import *  # noqa: F403  (every exception class, and RESULT_CODES: listed below)

__version__: str = _pcp_rs.__version__

#: IANA protocol numbers accepted wherever a protocol is (so are "tcp", "udp", "all").
ALL: int = 0
TCP: int = 6
UDP: int = 17

__all__ = [
    "ALL",
    "TCP",
    "UDP",
    "PCPClient",
    "Client",
    "Mapping",
    "Event",
    "EventIterator",
    "Request",
    "Discovered",
    "discover",
    "parse_server",
    "get_external_address",
    "get_gateway_address",
    "get_internal_address",
    "PcpError",
    "ResultCodeError",
    "UnsuppVersion",
    "NotAuthorized",
    "MalformedRequest",
    "UnsuppOpcode",
    "UnsuppOption",
    "MalformedOption",
    "NetworkFailure",
    "NoResources",
    "UnsuppProtocol",
    "UserExQuota",
    "CannotProvideExternal",
    "AddressMismatch",
    "ExcessiveRemotePeers",
    "PcpTimeout",
    "ServerUnreachable",
    "BadResponse",
    "NoGateway",
    "InvalidArgument",
    "ClientClosed",
    "Cancelled",
    "PcpIOError",
    "UnsupportedByNatPmp",
    "RESULT_CODES",
]

Candidates = Optional[Iterable[Union[str, Tuple[str, int]]]]


def get_external_address(
    server: ServerArg = None, *, candidates: Candidates = None, deadline: Optional[float] = None
) -> str:
    """The gateway's external IP address (``server=None`` discovers it first)."""
    with Client(server, candidates=candidates, deadline=deadline, listen_announce=False, delete_on_close=False) as c:
        return c.external_address()


def get_gateway_address(candidates: Candidates = None, *, deadline: Optional[float] = None) -> Tuple[str, int]:
    """(ip, port) of the PCP server that discovery finds."""
    d = discover(candidates, deadline=deadline)
    return (d.server_ip, d.server_port)


def get_internal_address(server: ServerArg = None, *, candidates: Candidates = None) -> str:
    """Our address towards the PCP server (what goes in the Client IP field)."""
    with Client(server, candidates=candidates, listen_announce=False, delete_on_close=False) as c:
        return c.internal_address


def _derived(native: Any, name: str, method: Callable[..., Any], doc: str) -> Callable[..., Any]:
    """``method``, made from the native method ``native`` (here and in
    :mod:`pcp_rs.aio`): named ``name``, with ``doc`` and the native
    signature (``inspect.signature``, so help() and stubtest, follows
    ``__wrapped__``; computing it here would make importing slower)."""
    method.__name__ = name
    method.__qualname__ = native.__qualname__.rsplit(".", 1)[0] + "." + name
    method.__doc__ = doc
    setattr(method, "__wrapped__", native)
    return method


def _blocking(cls: type, name: str) -> None:
    """Makes ``cls.name``, the blocking call: ``cls.start_<name>``'s Request,
    waited on (see ``_pcp_rs._wait``). One definition: the arguments, their
    checks and the signature are those of ``start_<name>``."""
    start = getattr(cls, "start_" + name)

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _pcp_rs._wait(start, self, *args, **kwargs)

    # "...; a Request for the Mapping (`map` waits for it)." -> "...; returns the Mapping."
    doc = re.sub(r";\s+a\s+Request(?:\s+for\s+(.*?))?\s+\(`\w+` waits for it\)\.",
                 lambda m: f"; returns {m.group(1)}." if m.group(1) else ".", start.__doc__ or "", flags=re.S)
    setattr(cls, name, _derived(start, name, method, f"{doc} Blocks until done: ``{start.__name__}(...).wait()``."))


for _name in ("map", "peer", "map_port", "peer_port", "delete_port", "delete", "delete_by_nonce", "announce", "external_address"):
    _blocking(Client, _name)
_blocking(Mapping, "delete")


atexit.register(_pcp_rs._close_all)

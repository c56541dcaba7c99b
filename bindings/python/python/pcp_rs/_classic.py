"""The classic client: a drop-in for the hand-rolled socket/struct PCP clients."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Callable, Dict, Iterable, Optional, Tuple, Type, Union

from ._pcp_rs import Client, Mapping, _wait

#: A server as the clients accept it: "ip", "ip:port", "[v6]:port", (ip, port), or None to discover.
ServerArg = Union[str, Tuple[str, int], None]


class _Classic:
    """The classic calls, defined once for :class:`PCPClient` and
    :class:`pcp_rs.aio.PCPClient`: each names the ``start_*`` method of
    :class:`pcp_rs.Client` it makes and what it returns of the result;
    ``_call`` makes it (blocking in the one, awaited in the other)."""

    def _call(self, result: Callable[[Any], Any], start: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    def create_mapping(
        self, internal_port: int, external_port: int = 0, protocol: int = 6, lifetime: int = 3600
    ) -> Tuple[str, int, int]:
        """Maps ``internal_port`` inbound; returns (external_ip, external_port, lifetime).

        The rules are the core's (``Client.map_port``), the same in every
        language: mapping a port again refreshes its mapping (the one held
        is returned if it already is what is asked, else the new values are
        requested with its nonce); calls for one port from several threads
        share one mapping.
        """
        return self._call(_map_result, Client.start_map_port, protocol, internal_port, external_port, lifetime)

    def delete_mapping(self, internal_port: int, protocol: int = 6) -> None:
        """Deletes the mapping made earlier for ``internal_port`` (with its nonce).

        Does nothing if this client holds no such mapping.
        """
        return self._call(_none, Client.start_delete_port, protocol, internal_port)

    def create_peer_mapping(
        self, internal_port: int, peer_ip: str, peer_port: int, protocol: int = 6, lifetime: int = 3600
    ) -> Dict[str, Any]:
        """An outbound PEER mapping; returns a dict with external_ip,
        external_port, lifetime, peer_ip, peer_port (and internal_port,
        protocol, epoch, nonce). Asking again for the same peer refreshes
        its mapping, as :meth:`create_mapping` does (``Client.peer_port``)."""
        args = (protocol, internal_port, peer_ip, peer_port, lifetime)
        return self._call(_peer_result, Client.start_peer_port, *args)

    def get_external_address(self) -> str:
        return self._call(str, Client.start_external_address)


class PCPClient(_Classic):
    """The classic PCP client API, backed by the core.

    ``PCPClient(server_ip)`` takes "ip", "ip:port", an IPv6 address, "[v6]:port"
    or None to discover the gateway (``candidates=`` restricts discovery to a
    list). Mappings are renewed in the background until deleted or closed;
    closing deletes them unless ``delete_on_close=False``.

    The keywords after ``*`` are extensions: ``deadline`` (seconds before a
    request fails with PcpTimeout; default 10), ``listen_announce`` (listen on
    UDP 5350, with address reuse, for a rebooted gateway's ANNOUNCE; default
    True), and every other keyword of :class:`pcp_rs.Client`.

    The mappings are the core's: :meth:`delete_mapping` finds the one of a
    port there (``client.find_mapping``), so this object keeps no state of
    its own.
    """

    def __init__(
        self,
        server_ip: ServerArg = None,
        *,
        candidates: Optional[Iterable[Union[str, Tuple[str, int]]]] = None,
        deadline: Optional[float] = None,
        listen_announce: Optional[bool] = None,
        delete_on_close: bool = True,
        **options: Any,
    ) -> None:
        self._client = Client(
            server_ip,
            candidates=candidates,
            deadline=deadline,
            listen_announce=listen_announce,
            delete_on_close=delete_on_close,
            **options,
        )

    def _call(self, result: Callable[[Any], Any], start: Callable[..., Any], *args: Any) -> Any:
        return result(_wait(start, self._client, *args))

    @property
    def client(self) -> Client:
        """The full-API client underneath."""
        return self._client

    @property
    def server_ip(self) -> str:
        return self._client.gateway_address[0]

    def close(self) -> None:
        """Deletes this client's mappings (unless delete_on_close=False) and stops."""
        self._client.close()

    def __enter__(self) -> "PCPClient":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<pcp_rs.PCPClient {self._client!r}>"


def _map_result(m: Mapping) -> Tuple[str, int, int]:
    return (m.external_ip, m.external_port, m.lifetime)


def _none(_: None) -> None:
    return None


def _peer_result(m: Mapping) -> Dict[str, Any]:
    return {
        "external_ip": m.external_ip,
        "external_port": m.external_port,
        "lifetime": m.lifetime,
        "peer_ip": m.peer_ip,
        "peer_port": m.peer_port,
        "internal_port": m.internal_port,
        "protocol": m.protocol,
        "epoch": m.epoch,
        "nonce": m.nonce_hex,
    }

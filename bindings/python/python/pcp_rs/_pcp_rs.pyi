"""Type stubs of the extension module pcp_rs._pcp_rs (checked by mypy's stubtest)."""

import ipaddress
from types import TracebackType
from typing import Any, Callable, Generic, Iterable, Iterator, List, Literal, Optional, Tuple, Type, TypeVar, Union, final

from .errors import PcpError

__version__: str
__all__ = [
    "Client",
    "Mapping",
    "Event",
    "EventIterator",
    "Request",
    "Discovered",
    "Server",
    "discover",
    "parse_server",
    "error_codes",
    "__version__",
]

_T = TypeVar("_T")

_IP = Union[str, ipaddress.IPv4Address, ipaddress.IPv6Address]
_ServerArg = Union[str, Tuple[str, int], ipaddress.IPv4Address, ipaddress.IPv6Address]
_Protocol = Union[int, str]
_Nonce = Union[bytes, str]
_EventKind = Literal[
    "granted",
    "renewed",
    "updated",
    "internal_ip_changed",
    "failed",
    "lost",
    "deleted",
    "ip_changed",
    "server_restarted",
    "announced",
    "external_address",
]

@final
class Client:
    """A PCP client for one server. Renews its mappings in the background;
    closing (or the last reference going) deletes them unless
    ``delete_on_close=False``. Every blocking call releases the GIL and
    honours Ctrl-C (the request is cancelled); each is its ``start_*``
    method's Request waited on (made at import time, same arguments)."""

    def __new__(
        cls,
        server: Optional[_ServerArg] = None,
        *,
        candidates: Optional[Iterable[_ServerArg]] = None,
        deadline: Optional[float] = None,
        listen_announce: Optional[bool] = None,
        local_ip: Optional[_IP] = None,
        delete_on_close: bool = True,
        close_timeout: Optional[float] = None,
        discovery_deadline: Optional[float] = None,
        max_retransmissions: Optional[int] = None,
        announce_delay_max: Optional[float] = None,
        protocol: Literal["auto", "pcp", "natpmp"] = "auto",
    ) -> Client: ...
    @property
    def gateway_address(self) -> Tuple[str, int]: ...
    @property
    def internal_address(self) -> str: ...
    def set_local_address(self, addr: Optional[str], /) -> bool: ...
    def refresh_internal_address(self) -> bool: ...
    @property
    def server_epoch(self) -> Optional[int]: ...
    @property
    def listens_for_announce(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    def map(
        self,
        protocol: _Protocol,
        internal_port: int,
        external_port: Optional[int] = None,
        lifetime: Optional[int] = None,
        *,
        external_ip: Optional[_IP] = None,
        prefer_failure: bool = False,
        filters: Optional[Iterable[Tuple[_IP, int, int]]] = None,
        third_party: Optional[_IP] = None,
        nonce: Optional[_Nonce] = None,
    ) -> Mapping: ...
    def start_map(
        self,
        protocol: _Protocol,
        internal_port: int,
        external_port: Optional[int] = None,
        lifetime: Optional[int] = None,
        *,
        external_ip: Optional[_IP] = None,
        prefer_failure: bool = False,
        filters: Optional[Iterable[Tuple[_IP, int, int]]] = None,
        third_party: Optional[_IP] = None,
        nonce: Optional[_Nonce] = None,
    ) -> Request[Mapping]: ...
    def peer(
        self,
        protocol: _Protocol,
        internal_port: int,
        peer_ip: _IP,
        peer_port: int,
        external_port: Optional[int] = None,
        lifetime: Optional[int] = None,
        *,
        external_ip: Optional[_IP] = None,
        third_party: Optional[_IP] = None,
        nonce: Optional[_Nonce] = None,
    ) -> Mapping: ...
    def start_peer(
        self,
        protocol: _Protocol,
        internal_port: int,
        peer_ip: _IP,
        peer_port: int,
        external_port: Optional[int] = None,
        lifetime: Optional[int] = None,
        *,
        external_ip: Optional[_IP] = None,
        third_party: Optional[_IP] = None,
        nonce: Optional[_Nonce] = None,
    ) -> Request[Mapping]: ...
    def map_port(
        self, protocol: _Protocol, internal_port: int, external_port: Optional[int] = None, lifetime: Optional[int] = None
    ) -> Mapping: ...
    def start_map_port(
        self, protocol: _Protocol, internal_port: int, external_port: Optional[int] = None, lifetime: Optional[int] = None
    ) -> Request[Mapping]: ...
    def peer_port(
        self, protocol: _Protocol, internal_port: int, peer_ip: _IP, peer_port: int, lifetime: Optional[int] = None
    ) -> Mapping: ...
    def start_peer_port(
        self, protocol: _Protocol, internal_port: int, peer_ip: _IP, peer_port: int, lifetime: Optional[int] = None
    ) -> Request[Mapping]: ...
    def delete_port(self, protocol: _Protocol, internal_port: int) -> None: ...
    def start_delete_port(self, protocol: _Protocol, internal_port: int) -> Request[None]: ...
    def delete(self, mapping: Mapping) -> None: ...
    def start_delete(self, mapping: Mapping) -> Request[None]: ...
    def delete_by_nonce(
        self, protocol: _Protocol, internal_port: int, nonce: _Nonce, *, third_party: Optional[_IP] = None
    ) -> None: ...
    def start_delete_by_nonce(
        self, protocol: _Protocol, internal_port: int, nonce: _Nonce, *, third_party: Optional[_IP] = None
    ) -> Request[None]: ...
    def find_mapping(self, protocol: _Protocol, internal_port: int) -> Optional[Mapping]: ...
    def mappings(self) -> List[Mapping]: ...
    def announce(self) -> int: ...
    def start_announce(self) -> Request[int]: ...
    def external_address(self) -> str: ...
    def start_external_address(self) -> Request[str]: ...
    def on_event(self, callback: Callable[[Event], object]) -> int:
        """Calls ``callback(event)`` for every event, always on the client's
        driver thread (with the GIL), never on a thread that called the
        client. It may call the client, blocking calls included; while it
        runs no other event is delivered, so keep it short. Returns an id for
        :meth:`remove_event_handler`. An exception it raises is reported with
        ``sys.unraisablehook`` and does not stop the client."""
    def remove_event_handler(self, handler_id: int) -> bool:
        """Unregisters an ``on_event`` callback: once this returns it is not
        running on another thread and is never called again (a call running
        on the driver thread is waited for; from inside the callback itself
        it is not). False if unknown."""
    def on_close(self, callback: Callable[[], object]) -> None:
        """Calls ``callback()`` once the client is closed by whatever path
        (``close``, ``close_keep``, the last reference going, exit): at once
        if it already is, else on the thread that closes it."""
    def events(self) -> EventIterator: ...
    def close(self) -> None: ...
    def close_keep(self) -> None: ...
    def __enter__(self) -> Client: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
        /,
    ) -> None: ...

@final
class Mapping:
    """A mapping held by a client. Attributes are a snapshot as of when the
    object was made; :meth:`refresh` reads the current state."""

    @property
    def id(self) -> int: ...
    @property
    def opcode(self) -> Literal["MAP", "PEER"]: ...
    @property
    def protocol_version(self) -> Literal["pcp", "natpmp"]: ...
    @property
    def protocol(self) -> int: ...
    @property
    def internal_ip(self) -> str: ...
    @property
    def internal_port(self) -> int: ...
    @property
    def external_ip(self) -> str: ...
    @property
    def external_port(self) -> int: ...
    @property
    def lifetime(self) -> int: ...
    @property
    def expires_in(self) -> float: ...
    @property
    def epoch(self) -> int: ...
    @property
    def nonce(self) -> bytes: ...
    @property
    def nonce_hex(self) -> str: ...
    @property
    def peer_ip(self) -> Optional[str]: ...
    @property
    def peer_port(self) -> Optional[int]: ...
    @property
    def active(self) -> bool: ...
    def refresh(self) -> bool: ...
    def delete(self) -> None: ...
    def start_delete(self) -> Request[None]: ...

@final
class Event:
    """An event of a client; attributes that do not apply to ``kind`` are None.

    - granted / renewed: ``mapping`` (and ``mapping_id``, ``epoch``)
    - updated: ``mapping`` as the server changed it on its own (RFC 6887 14.2)
    - failed / lost: ``mapping_id``, ``error``
    - deleted: ``mapping_id``, ``error`` if the delete failed
    - ip_changed: ``old``, ``new`` external addresses
    - internal_ip_changed: ``old``, ``new`` addresses of this host (mappings recreated)
    - server_restarted: ``epoch``
    - announced: ``epoch`` or ``error``; external_address: ``new`` or ``error``
    """

    @property
    def kind(self) -> _EventKind: ...
    @property
    def mapping_id(self) -> Optional[int]: ...
    @property
    def mapping(self) -> Optional[Mapping]: ...
    @property
    def error(self) -> Optional[PcpError]: ...
    @property
    def old(self) -> Optional[str]: ...
    @property
    def new(self) -> Optional[str]: ...
    @property
    def epoch(self) -> Optional[int]: ...

@final
class EventIterator(Iterator[Event]):
    def __iter__(self) -> EventIterator: ...
    def __next__(self) -> Event: ...
    def get(self, timeout: Optional[float] = None) -> Optional[Event]: ...

@final
class Request(Generic[_T]):
    """A request in progress, from a ``start_*`` method: ``Request[Mapping]``
    (start_map, start_peer), ``Request[None]`` (start_delete),
    ``Request[int]`` (start_announce, the epoch), ``Request[str]``
    (start_external_address). Any thread may call any method at any time."""

    def done(self) -> bool: ...
    def result(self) -> _T:
        """The result, or the request's error raised; RuntimeError if it has not finished."""
    def wait(self, timeout: Optional[float] = None) -> _T:
        """Blocks (GIL released, Ctrl-C cancels the request) until it finishes;
        TimeoutError if ``timeout`` seconds pass first (the request goes on)."""
    def cancel(self) -> None: ...
    def add_done_callback(self, callback: Callable[[], object]) -> None:
        """Calls ``callback()`` once the request finishes: at once if it has,
        else on whichever thread completes it (the client's driver thread, or
        a thread blocked in a call of the same client), with the GIL held."""

@final
class Discovered:
    @property
    def server_ip(self) -> str: ...
    @property
    def server_port(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    @property
    def internal_ip(self) -> str: ...
    @property
    def address(self) -> str: ...

@final
class Server:
    """The core's PCP test server (``pcp_rs.testing.Server``)."""

    def __new__(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        external_ip: str = "203.0.113.7",
        min_lifetime: int = 1,
        max_lifetime: int = 86400,
        port_range: Tuple[int, int] = ...,  # (20000, 60000)
        allow_third_party: bool = True,
        announce_to_known_clients: bool = True,
        initial_epoch: int = 0,
        mode: Literal["both", "pcp", "natpmp"] = "both",
    ) -> Server: ...
    @property
    def address(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def external_ip(self) -> str: ...
    @property
    def epoch(self) -> int: ...
    @property
    def running(self) -> bool: ...
    def drop_next(self, n: int) -> None: ...
    def set_delay(self, seconds: float) -> None: ...
    def force_result(self, code: Union[int, str, Type[PcpError], PcpError, None], lifetime: int = 30) -> None: ...
    def set_hostile(self, name: Optional[str]) -> None: ...
    def set_loss(self, fraction: float) -> None: ...
    def reboot(self) -> None: ...
    def set_external_ip(self, ip: _IP) -> None: ...
    def mappings(self) -> List[dict[str, object]]: ...
    def mapping_count(self) -> int: ...
    def requests_received(self) -> int: ...
    def stop(self) -> None: ...
    def __enter__(self) -> Server: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
        /,
    ) -> None: ...

def discover(candidates: Optional[Iterable[_ServerArg]] = None, *, deadline: Optional[float] = None) -> Discovered: ...
def parse_server(server: _ServerArg) -> Tuple[str, int]: ...
def error_codes() -> List[Tuple[str, Optional[int], str, bool]]: ...
def _close_all() -> None: ...
def _core_error(name: str) -> PcpError: ...
def _wait(start: Callable[..., Request[_T]], /, *args: Any, **kwargs: Any) -> _T: ...

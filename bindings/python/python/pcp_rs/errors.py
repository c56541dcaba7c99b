"""The exceptions of pcp_rs.

Every error of the core becomes an instance of a subclass of :class:`PcpError`:

- a server's refusal: one class per PCP result code (RFC 6887 section 7.4),
  all subclasses of :class:`ResultCodeError`, with the result code as the
  ``code`` attribute (``NotAuthorized.code == 2``), its RFC name as ``name``
  and ``short_term`` (retrying later may succeed);
- :class:`PcpTimeout` (also a :class:`TimeoutError`): no answer before the deadline;
- :class:`ServerUnreachable` (also a :class:`ConnectionError`): ICMP port
  unreachable, nothing listens on the server's port;
- :class:`BadResponse`: the server answered something invalid;
- :class:`NoGateway`: discovery found no PCP server;
- :class:`InvalidArgument` (also a :class:`ValueError`), :class:`ClientClosed`,
  :class:`Cancelled`, :class:`PcpIOError` (also an :class:`OSError`);
- :class:`UnsupportedByNatPmp`: the gateway speaks only NAT-PMP, which
  cannot do what was asked (PEER, THIRD_PARTY, FILTER, PREFER_FAILURE, a
  suggested external address, protocols other than TCP/UDP, IPv6).

The list of codes is the core's (``pcp_core::ErrorCode``): ``code``,
``short_term`` and the docstrings are read from it when this module is
imported, and a code the core has but this module does not name gets a
class of its own (its name in CamelCase), so that it is never lost.

Bad arguments detected before anything is sent raise plain ``ValueError`` or
``TypeError``.
"""

from __future__ import annotations

from typing import ClassVar, Dict, Optional, Type

from ._pcp_rs import error_codes as _core_codes

__all__ = [
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


class PcpError(Exception):
    """Base class of every pcp_rs error.

    ``name`` is the core's stable upper-case name of the error (the RFC name
    for result codes, e.g. ``"NO_RESOURCES"``, else ``"TIMEOUT"``,
    ``"SERVER_UNREACHABLE"``, ...); ``code`` is the PCP result code for a
    server's refusal and None otherwise; ``message`` is the text.
    """

    name: ClassVar[str] = "PCP_ERROR"
    code: ClassVar[Optional[int]] = None
    #: For a server's refusal: the error's lifetime, how many seconds the
    #: server said it will keep refusing (RFC 6887 section 8.3; the same
    #: request within it fails at once without reaching the server). None
    #: for errors that are not a server's refusal.
    retry_after: Optional[int] = None

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.name)
        self.message = message or self.name


class ResultCodeError(PcpError):
    """The server refused the request with a PCP result code (``code``)."""

    short_term: ClassVar[bool] = False


class UnsuppVersion(ResultCodeError):
    """The server does not speak PCP version 2 (``server_version`` 0 is NAT-PMP)."""

    name = "UNSUPP_VERSION"

    def __init__(self, message: str = "", server_version: Optional[int] = None) -> None:
        super().__init__(message)
        self.server_version = server_version


# The classes named here keep their public names and extra base classes;
# `code`, `short_term` and the docstrings come from the core below.
class NotAuthorized(ResultCodeError):
    name = "NOT_AUTHORIZED"


class MalformedRequest(ResultCodeError):
    name = "MALFORMED_REQUEST"


class UnsuppOpcode(ResultCodeError):
    name = "UNSUPP_OPCODE"


class UnsuppOption(ResultCodeError):
    name = "UNSUPP_OPTION"


class MalformedOption(ResultCodeError):
    name = "MALFORMED_OPTION"


class NetworkFailure(ResultCodeError):
    name = "NETWORK_FAILURE"


class NoResources(ResultCodeError):
    name = "NO_RESOURCES"


class UnsuppProtocol(ResultCodeError):
    name = "UNSUPP_PROTOCOL"


class UserExQuota(ResultCodeError):
    name = "USER_EX_QUOTA"


class CannotProvideExternal(ResultCodeError):
    name = "CANNOT_PROVIDE_EXTERNAL"


class AddressMismatch(ResultCodeError):
    name = "ADDRESS_MISMATCH"


class ExcessiveRemotePeers(ResultCodeError):
    name = "EXCESSIVE_REMOTE_PEERS"


class PcpTimeout(PcpError, TimeoutError):
    name = "TIMEOUT"


class ServerUnreachable(PcpError, ConnectionError):
    name = "SERVER_UNREACHABLE"


class BadResponse(PcpError):
    name = "BAD_RESPONSE"


class NoGateway(PcpError):
    name = "NO_GATEWAY"


class InvalidArgument(PcpError, ValueError):
    name = "INVALID_ARGUMENT"


class ClientClosed(PcpError):
    name = "CLOSED"


class Cancelled(PcpError):
    name = "CANCELLED"


class UnsupportedByNatPmp(PcpError):
    """NAT-PMP (the gateway's only protocol, or the client's choice) cannot do this; the message names it."""

    name = "UNSUPPORTED_BY_NATPMP"


class PcpIOError(PcpError, OSError):
    """An operating-system error (socket, interface)."""

    name = "IO"

    def __init__(self, message: str = "", errno: Optional[int] = None) -> None:
        PcpError.__init__(self, message)
        self.errno = errno
        self.strerror = message

    def __str__(self) -> str:
        return self.message


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


_BY_NAME: Dict[str, Type[PcpError]] = {
    cls.name: cls
    for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, PcpError) and cls not in (PcpError, ResultCodeError)
}

#: result code -> exception class, for every refusal a server can answer.
RESULT_CODES: Dict[int, Type[ResultCodeError]] = {}

for _name, _result_code, _summary, _short_term in _core_codes():
    _cls = _BY_NAME.get(_name)
    if _cls is None:  # a code newer than this module: still its own class
        _base: Type[PcpError] = PcpError if _result_code is None else ResultCodeError
        _cls = type(_camel(_name), (_base,), {"name": _name, "__module__": __name__})
        _BY_NAME[_name] = _cls
        globals()[_cls.__name__] = _cls
        __all__.append(_cls.__name__)
    _cls.code = _result_code
    if _cls.__doc__ is None:
        _cls.__doc__ = _summary[:1].upper() + _summary[1:] + "."
    if _result_code is not None:
        _cls.short_term = _short_term  # type: ignore[attr-defined]
        RESULT_CODES[_result_code] = _cls  # type: ignore[assignment]


def _from_core(
    name: str, message: str, server_version: Optional[int], errno: Optional[int], retry_after: Optional[int] = None
) -> PcpError:
    """Called by the extension module: the exception for a core error."""
    cls = _BY_NAME.get(name, PcpError)
    e: PcpError
    if cls is UnsuppVersion:
        e = UnsuppVersion(message, server_version)
    elif cls is PcpIOError:
        e = PcpIOError(message, errno)
    else:
        e = cls(message)
    e.retry_after = retry_after
    return e

"""The exceptions of pcp_rs.

Every error of the core becomes an instance of a subclass of :class:`PcpError`:

- a server's refusal: one class per PCP result code (RFC 6887 section 7.4),
  all subclasses of :class:`ResultCodeError`, with the result code as the
  ``code`` attribute (``NotAuthorized.code == 2``) and its RFC name as ``name``;
- :class:`PcpTimeout` (also a :class:`TimeoutError`): no answer before the deadline;
- :class:`ServerUnreachable` (also a :class:`ConnectionError`): ICMP port
  unreachable, nothing listens on the server's port;
- :class:`BadResponse`: the server answered something invalid;
- :class:`NoGateway`: discovery found no PCP server;
- :class:`InvalidArgument` (also a :class:`ValueError`), :class:`ClientClosed`,
  :class:`Cancelled`, :class:`PcpIOError` (also an :class:`OSError`).

Bad arguments detected before anything is sent raise plain ``ValueError`` or
``TypeError``.
"""

from __future__ import annotations

from typing import ClassVar, Dict, Optional, Type

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

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.name)
        self.message = message or self.name


class ResultCodeError(PcpError):
    """The server refused the request with a PCP result code (``code``)."""

    short_term: ClassVar[bool] = False


class UnsuppVersion(ResultCodeError):
    """The server does not speak PCP version 2 (``server_version`` 0 is NAT-PMP)."""

    name = "UNSUPP_VERSION"
    code = 1

    def __init__(self, message: str = "", server_version: Optional[int] = None) -> None:
        super().__init__(message)
        self.server_version = server_version


class NotAuthorized(ResultCodeError):
    name = "NOT_AUTHORIZED"
    code = 2


class MalformedRequest(ResultCodeError):
    name = "MALFORMED_REQUEST"
    code = 3


class UnsuppOpcode(ResultCodeError):
    name = "UNSUPP_OPCODE"
    code = 4


class UnsuppOption(ResultCodeError):
    name = "UNSUPP_OPTION"
    code = 5


class MalformedOption(ResultCodeError):
    name = "MALFORMED_OPTION"
    code = 6


class NetworkFailure(ResultCodeError):
    name = "NETWORK_FAILURE"
    code = 7
    short_term = True


class NoResources(ResultCodeError):
    name = "NO_RESOURCES"
    code = 8
    short_term = True


class UnsuppProtocol(ResultCodeError):
    name = "UNSUPP_PROTOCOL"
    code = 9


class UserExQuota(ResultCodeError):
    name = "USER_EX_QUOTA"
    code = 10
    short_term = True


class CannotProvideExternal(ResultCodeError):
    name = "CANNOT_PROVIDE_EXTERNAL"
    code = 11


class AddressMismatch(ResultCodeError):
    name = "ADDRESS_MISMATCH"
    code = 12


class ExcessiveRemotePeers(ResultCodeError):
    name = "EXCESSIVE_REMOTE_PEERS"
    code = 13


class PcpTimeout(PcpError, TimeoutError):
    """No answer from the PCP server before the deadline."""

    name = "TIMEOUT"


class ServerUnreachable(PcpError, ConnectionError):
    """ICMP port unreachable: nothing listens on the server's PCP port."""

    name = "SERVER_UNREACHABLE"


class BadResponse(PcpError):
    """The server's answer was invalid."""

    name = "BAD_RESPONSE"


class NoGateway(PcpError):
    """Discovery found no PCP server."""

    name = "NO_GATEWAY"


class InvalidArgument(PcpError, ValueError):
    """The core rejected an argument (e.g. port 0 with TCP)."""

    name = "INVALID_ARGUMENT"


class ClientClosed(PcpError):
    """The client is closed."""

    name = "CLOSED"


class Cancelled(PcpError):
    """The request was cancelled."""

    name = "CANCELLED"


class PcpIOError(PcpError, OSError):
    """An operating-system error (socket, interface)."""

    name = "IO"

    def __init__(self, message: str = "", errno: Optional[int] = None) -> None:
        PcpError.__init__(self, message)
        self.errno = errno
        self.strerror = message

    def __str__(self) -> str:
        return self.message


#: result code -> exception class, for every refusal a server can answer.
RESULT_CODES: Dict[int, Type[ResultCodeError]] = {
    cls.code: cls
    for cls in (
        UnsuppVersion,
        NotAuthorized,
        MalformedRequest,
        UnsuppOpcode,
        UnsuppOption,
        MalformedOption,
        NetworkFailure,
        NoResources,
        UnsuppProtocol,
        UserExQuota,
        CannotProvideExternal,
        AddressMismatch,
        ExcessiveRemotePeers,
    )
    if cls.code is not None
}

_BY_NAME: Dict[str, Type[PcpError]] = {cls.name: cls for cls in RESULT_CODES.values()}
_BY_NAME.update(
    {
        cls.name: cls
        for cls in (PcpTimeout, ServerUnreachable, BadResponse, NoGateway, InvalidArgument, ClientClosed, Cancelled, PcpIOError)
    }
)


def _from_core(name: str, message: str, server_version: Optional[int], errno: Optional[int]) -> PcpError:
    """Called by the extension module: the exception for a core error."""
    cls = _BY_NAME.get(name, PcpError)
    if cls is UnsuppVersion:
        return UnsuppVersion(message, server_version)
    if cls is PcpIOError:
        return PcpIOError(message, errno)
    return cls(message)

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

The list of codes is the core's (``pcp_core::ErrorCode``): the classes are
made from it when this module is imported, with ``code``, ``short_term`` and
the docstrings it gives. A class is named after its code in CamelCase
(``NO_RESOURCES`` is ``NoResources``) unless ``_NAMED`` below names it
otherwise or gives it a standard exception as a second base; so a code the
core gains is never lost. The types are in ``errors.pyi``.

An argument of the wrong type raises ``TypeError``; a bad value (a port out
of range, a bad address, a negative deadline) :class:`InvalidArgument`, a
``ValueError``, with the words every language gives.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Optional, Tuple, Type

from ._pcp_rs import error_codes as _core_codes


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


class PcpIOError(PcpError, OSError):
    """An operating-system error (socket, interface)."""

    name = "IO"

    def __init__(self, message: str = "", errno: Optional[int] = None) -> None:
        PcpError.__init__(self, message)
        self.errno = errno
        self.strerror = message

    def __str__(self) -> str:
        return self.message


#: The codes whose class is not simply their name in CamelCase, or is also a
#: standard exception: name -> (class name, extra bases, docstring or None
#: for the core's summary).
_NAMED: Dict[str, Tuple[str, Tuple[type, ...], Optional[str]]] = {
    "TIMEOUT": ("PcpTimeout", (TimeoutError,), None),
    "SERVER_UNREACHABLE": ("ServerUnreachable", (ConnectionError,), None),
    "INVALID_ARGUMENT": ("InvalidArgument", (ValueError,), None),
    "CLOSED": ("ClientClosed", (), None),
    "UNSUPPORTED_BY_NATPMP": (
        "UnsupportedByNatPmp",
        (),
        "NAT-PMP (the gateway's only protocol, or the client's choice) cannot do this; the message names it.",
    ),
}

_BY_NAME: Dict[str, Type[PcpError]] = {"UNSUPP_VERSION": UnsuppVersion, "IO": PcpIOError}

#: result code -> exception class, for every refusal a server can answer.
RESULT_CODES: Dict[int, Type[ResultCodeError]] = {}

__all__: List[str] = ["PcpError", "ResultCodeError"]

for _name, _result_code, _summary, _short_term in _core_codes():
    _cls = _BY_NAME.get(_name)
    if _cls is None:
        _default = "".join(part.capitalize() for part in _name.split("_"))
        _cls_name, _extra, _doc = _NAMED.get(_name, (_default, (), None))
        _base: Type[PcpError] = PcpError if _result_code is None else ResultCodeError
        _attrs: Dict[str, Any] = {"name": _name, "__module__": __name__, "__doc__": _doc}
        _cls = type(_cls_name, (_base, *_extra), _attrs)
        _BY_NAME[_name] = _cls
    globals()[_cls.__name__] = _cls
    __all__.append(_cls.__name__)
    _cls.code = _result_code
    if _cls.__doc__ is None:
        _cls.__doc__ = _summary[:1].upper() + _summary[1:] + "."
    if _result_code is not None:
        _cls.short_term = _short_term  # type: ignore[attr-defined]
        RESULT_CODES[_result_code] = _cls  # type: ignore[assignment]

__all__.append("RESULT_CODES")


def _from_core(name: str, message: str, retry_after: Optional[int], **extra: Any) -> PcpError:
    """Called by the extension module: the exception for a core error
    (``extra``: ``server_version`` or ``errno``, for the classes that take them)."""
    e = _BY_NAME.get(name, PcpError)(message, **extra)
    e.retry_after = retry_after
    return e

"""pcp_rs for asyncio.

The same clients, with coroutines that never block the event loop: the core
runs the requests, and whichever thread completes one (the client's driver
thread, or a thread blocked in a call of the same client) hands the result to
the awaiting future through ``loop.call_soon_threadsafe``. Cancelling the awaiting task cancels the
request (a mapping that may have reached the server is deleted).
Constructing a client only stores its arguments; the blocking part (DNS
look-up of a host name, discovery, opening sockets) runs in the loop's
default executor on ``await client.connect()``, which ``async with`` and
every method do first::

    from pcp_rs import aio

    async with aio.PCPClient("192.168.1.1") as client:
        external_ip, external_port, lifetime = await client.create_mapping(8080)
        await client.delete_mapping(8080)

Mapping objects are the ones of :mod:`pcp_rs`; delete them with
``await client.delete(mapping)``. ``async for event in client.events()``
receives the client's events.

The request methods are made from the blocking client's ``start_*`` methods
(same arguments, same checks); the types are in ``aio.pyi``.
"""

from __future__ import annotations

import asyncio
import functools
from types import TracebackType
from typing import Any, AsyncGenerator, Callable, Optional, Set, Tuple, Type, TypeVar, cast

from . import _derived, _pcp_rs
from ._classic import ServerArg, _Classic
from ._pcp_rs import Event, Request

__all__ = ["Client", "PCPClient", "discover", "get_external_address"]

T = TypeVar("T")
_Self = TypeVar("_Self", bound="_Session")


def _soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> bool:
    """``loop.call_soon_threadsafe(fn, *args)`` from any thread; False if the
    loop is closed (nobody is waiting on it any more)."""
    try:
        loop.call_soon_threadsafe(fn, *args)
        return True
    except RuntimeError:
        return False


async def _await(req: Request[T]) -> T:
    """Awaits a core request; cancelling the await cancels the request."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle() -> None:
        if fut.done():
            return
        try:
            fut.set_result(req.result())
        except BaseException as e:  # the request's error, for the awaiter
            fut.set_exception(e)

    # On the thread that completes the request, or here if it is done.
    req.add_done_callback(functools.partial(_soon, loop, settle))
    try:
        return await fut
    except asyncio.CancelledError:
        req.cancel()
        raise


def _method(name: str, *, request: bool = True) -> Callable[..., Any]:
    """The coroutine method ``name`` of :class:`Client`: connects, then
    awaits the blocking client's ``start_<name>`` Request (or, with
    ``request=False``, returns what its non-blocking ``name`` gives), with the
    same arguments, checks and signature."""
    native = getattr(_pcp_rs.Client, "start_" + name if request else name)

    async def method(self: Client, *args: Any, **kwargs: Any) -> Any:
        result = native(await self.connect(), *args, **kwargs)
        return await _await(result) if request else result

    return _derived(native, name, method, f":meth:`pcp_rs.Client.{name}` without blocking the loop.")


async def discover(candidates: Any = None, *, deadline: Optional[float] = None) -> _pcp_rs.Discovered:
    """:func:`pcp_rs.discover` without blocking the loop (bounded by ``deadline``, default 2 s)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(_pcp_rs.discover, candidates, deadline=deadline))


class _Session:
    """``async with``: connects on entry, closes on exit."""

    async def connect(self) -> _pcp_rs.Client:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self: _Self) -> _Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()


class Client(_Session):
    """:class:`pcp_rs.Client` for asyncio. Construction only stores the
    arguments (nothing blocks, nothing is checked yet); the client is built
    off the loop by :meth:`connect`, which ``async with`` and every method
    call first. With ``server=None`` the gateway is discovered then.
    Keywords as for :class:`pcp_rs.Client`."""

    def __init__(self, server: ServerArg = None, **options: Any) -> None:
        self._server = server
        self._options = options
        self._sync: Optional[_pcp_rs.Client] = None
        self._connecting: Optional[asyncio.Future[_pcp_rs.Client]] = None
        self._queues: Set[asyncio.Queue[Optional[Event]]] = set()
        self._handler: Optional[int] = None
        self._close_hooked = False

    async def connect(self) -> _pcp_rs.Client:
        """The blocking client underneath, built (DNS look-up or discovery,
        sockets) in the loop's default executor on first use."""
        if self._sync is not None:
            return self._sync
        if self._connecting is None:
            loop = asyncio.get_running_loop()
            self._connecting = cast(
                "asyncio.Future[_pcp_rs.Client]",
                loop.run_in_executor(None, functools.partial(_pcp_rs.Client, self._server, **self._options)),
            )
        try:
            self._sync = await asyncio.shield(self._connecting)
        except BaseException:
            if self._connecting.done():
                self._connecting = None
            raise
        return self._sync

    @property
    def sync(self) -> _pcp_rs.Client:
        """The blocking client (after the first await if the server was discovered)."""
        if self._sync is None:
            raise RuntimeError("not connected yet: await client.connect() first")
        return self._sync

    map = _method("map")
    peer = _method("peer")
    delete = _method("delete")
    delete_by_nonce = _method("delete_by_nonce")
    announce = _method("announce")
    external_address = _method("external_address")
    find_mapping = _method("find_mapping", request=False)
    mappings = _method("mappings", request=False)

    async def gateway_address(self) -> Tuple[str, int]:
        return (await self.connect()).gateway_address

    async def internal_address(self) -> str:
        return (await self.connect()).internal_address

    async def events(self) -> AsyncGenerator[Event, None]:
        """Every event from now on. Ends when the client is closed, by
        whatever path (:meth:`close`, ``client.sync.close()``, exit)."""
        c = await self.connect()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Optional[Event]] = asyncio.Queue()
        queues = self._queues
        queues.add(queue)

        def end_all() -> None:  # on the loop
            for q in list(queues):
                q.put_nowait(None)

        if not self._close_hooked:
            self._close_hooked = True
            # On the thread that closed the client. Captures the queues and
            # the loop, not this object or the client (the client holds the
            # hook: no reference cycle through it).
            c.on_close(functools.partial(_soon, loop, end_all))
        if self._handler is None:

            def forward(ev: Event) -> None:  # on the client's driver thread
                for q in list(queues):
                    if not _soon(loop, q.put_nowait, ev):
                        queues.discard(q)

            self._handler = c.on_event(forward)
        try:
            while True:
                ev = await queue.get()
                if ev is None:
                    return
                yield ev
        finally:
            queues.discard(queue)
            if not queues and self._handler is not None:
                # The last iterator is done: the core stops copying events.
                c.remove_event_handler(self._handler)
                self._handler = None

    async def close(self) -> None:
        """Deletes the mappings (unless delete_on_close=False) and stops, off the loop."""
        await self._close(keep=False)

    async def close_keep(self) -> None:
        """Stops without deleting the mappings, off the loop."""
        await self._close(keep=True)

    async def _close(self, keep: bool) -> None:
        for q in list(self._queues):
            q.put_nowait(None)
        if self._sync is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._sync.close_keep if keep else self._sync.close)


class PCPClient(_Session, _Classic):
    """The classic API (:class:`pcp_rs.PCPClient`) with coroutines."""

    def __init__(self, server_ip: ServerArg = None, **options: Any) -> None:
        self.client = Client(server_ip, **options)

    async def _call(self, result: Callable[[Any], Any], start: Callable[..., Any], *args: Any) -> Any:
        return result(await _await(start(await self.client.connect(), *args)))

    async def connect(self) -> _pcp_rs.Client:
        """As :meth:`Client.connect`."""
        return await self.client.connect()

    async def close(self) -> None:
        await self.client.close()


def _coroutine(name: str) -> Callable[..., Any]:
    """``_Classic``'s method ``name`` as a coroutine function (what
    ``inspect`` and ``mock.create_autospec`` look for), same signature and doc."""
    shared = getattr(_Classic, name)

    async def method(self: PCPClient, *args: Any, **kwargs: Any) -> Any:
        return await shared(self, *args, **kwargs)

    return functools.wraps(shared)(method)


for _name in ("create_mapping", "delete_mapping", "create_peer_mapping", "get_external_address"):
    setattr(PCPClient, _name, _coroutine(_name))


async def get_external_address(
    server: ServerArg = None, *, candidates: Any = None, deadline: Optional[float] = None
) -> str:
    """The gateway's external IP address, without blocking the loop."""
    opts = {"candidates": candidates, "deadline": deadline, "listen_announce": False, "delete_on_close": False}
    async with Client(server, **opts) as c:
        return cast(str, await c.external_address())

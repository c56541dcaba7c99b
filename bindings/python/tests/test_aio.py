"""pcp_rs.aio: the same clients for asyncio, never blocking the loop, cancellable."""

from __future__ import annotations

import asyncio
from typing import List

import pytest

import pcp_rs
from pcp_rs import aio
from pcp_rs.testing import Server


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_classic_async(server: Server) -> None:
    async def main() -> None:
        async with aio.PCPClient(server.address) as client:
            external_ip, external_port, lifetime = await client.create_mapping(8080)
            assert (external_ip, lifetime) == ("203.0.113.7", 3600) and external_port > 0
            assert await client.create_mapping(5000, 5000, 17, 600) == ("203.0.113.7", 5000, 600)
            peer = await client.create_peer_mapping(9000, "198.51.100.5", 443)
            assert (peer["peer_ip"], peer["peer_port"]) == ("198.51.100.5", 443)
            assert server.mapping_count() == 3
            await client.delete_mapping(8080)
            await client.delete_mapping(5000, 17)
            assert server.mapping_count() == 1
            assert await client.get_external_address() == "203.0.113.7"
        assert server.mapping_count() == 0

    run(main())


def test_full_async_client(server: Server) -> None:
    async def main() -> None:
        async with aio.Client(server.address, deadline=5) as c:
            m = await c.map("tcp", 8080, 8080, 600)
            assert (m.external_port, m.lifetime) == (8080, 600)
            p = await c.peer(17, 9000, "198.51.100.1", 53)
            assert p.opcode == "PEER"
            assert isinstance(await c.announce(), int)
            assert await c.external_address() == "203.0.113.7"
            assert await c.gateway_address() == ("127.0.0.1", server.port)
            assert await c.internal_address() == "127.0.0.1"
            assert (await c.find_mapping(6, 8080)).id == m.id  # type: ignore[union-attr]
            assert len(await c.mappings()) == 2
            await c.delete(m)
            assert server.mapping_count() == 1
            # Concurrent requests on one client.
            ms = await asyncio.gather(*(c.map(6, 10000 + i) for i in range(20)))
            assert len({x.external_port for x in ms}) == 20

    run(main())


def test_async_delete_by_nonce_of_a_third_party_mapping(server: Server) -> None:
    with pcp_rs.Client(server.address, delete_on_close=False, listen_announce=False) as maker:
        third = maker.map(6, 8081, third_party="127.0.0.9")

    async def main() -> None:
        async with aio.Client(server.address, listen_announce=False) as c:
            await c.delete_by_nonce(6, 8081, third.nonce)  # without THIRD_PARTY: not that mapping
            assert server.mapping_count() == 1
            await c.delete_by_nonce(6, 8081, third.nonce, third_party="127.0.0.9")
            assert server.mapping_count() == 0

    run(main())


def test_async_discovery(server: Server) -> None:
    async def main() -> None:
        d = await aio.discover([server.address])
        assert d.server_port == server.port
        async with aio.PCPClient(None, candidates=[server.address]) as client:
            assert (await client.create_mapping(80))[0] == "203.0.113.7"
        assert await aio.get_external_address(candidates=[server.address]) == "203.0.113.7"

    run(main())


def test_loop_not_blocked(server: Server) -> None:
    # The server drops everything until a task on the same loop tells it not
    # to: the map can only finish if the loop kept running while it waited.
    server.drop_next(1_000_000)

    async def main() -> bool:
        unblocked = False

        async def unblock() -> None:
            nonlocal unblocked
            while server.requests_received() == 0:
                await asyncio.sleep(0.005)
            server.drop_next(0)
            unblocked = True

        async with aio.Client(server.address, deadline=30) as c:
            t = asyncio.ensure_future(unblock())
            await c.map(6, 8080)  # answered on the retransmission after the unblock
            await t
        return unblocked

    assert run(main())


def test_construction_does_not_block() -> None:
    # Construction only stores the arguments; the client is built (DNS,
    # sockets) by connect() in an executor, where its errors surface.
    c = aio.Client("127.0.0.1", deadline=-1)
    with pytest.raises(RuntimeError):
        c.sync

    async def main() -> None:
        with pytest.raises(ValueError):
            await c.connect()

    run(main())


def test_errors_propagate(server: Server) -> None:
    server.force_result(pcp_rs.NotAuthorized)

    async def main() -> None:
        async with aio.Client(server.address) as c:
            with pytest.raises(pcp_rs.NotAuthorized) as info:
                await c.map(6, 8080)
            assert info.value.code == 2
            server.force_result(None)
            server.drop_next(1000)
            with pytest.raises(pcp_rs.PcpTimeout):
                await aio.Client(server.address, deadline=0.3).map(6, 8081)

    run(main())


def test_cancellation(server: Server) -> None:
    server.drop_next(1_000_000)

    async def main() -> None:
        async with aio.Client(server.address, deadline=60) as c:
            task = asyncio.ensure_future(c.map(6, 8080))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # wait_for's timeout cancels the same way.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(c.external_address(), 0.2)
            assert await c.mappings() == []
            server.drop_next(0)
            assert (await c.map(6, 8081)).external_port > 0

    run(main())


def test_async_events(short_server: Server) -> None:
    async def main() -> List[str]:
        kinds: List[str] = []
        async with aio.Client(short_server.address) as c:
            events = c.events()
            first = asyncio.ensure_future(events.__anext__())
            await asyncio.sleep(0)
            await c.map(6, 8080)
            kinds.append((await first).kind)
            async for ev in events:
                kinds.append(ev.kind)
                if ev.kind == "renewed":
                    break
        return kinds

    kinds = run(main())
    assert kinds[0] == "granted" and kinds[-1] == "renewed"


def test_async_events_end_when_closed_by_any_path(server: Server) -> None:
    async def main() -> None:
        c = aio.Client(server.address)
        sync = await c.connect()
        got: List[str] = []

        async def consume() -> None:
            async for ev in c.events():
                got.append(ev.kind)

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0)  # the iterator registers its forwarder
        handler = c._handler
        assert handler is not None
        await c.map(6, 8080)
        # Closed underneath, not through aio.Client.close().
        await asyncio.get_running_loop().run_in_executor(None, sync.close)
        await asyncio.wait_for(task, 30)
        assert "granted" in got
        # The forwarder is unregistered once the last iterator ends.
        assert c._handler is None and not sync.remove_event_handler(handler)

    run(main())


def test_async_events_iterator_unregisters_when_left(server: Server) -> None:
    async def main() -> None:
        async with aio.Client(server.address) as c:
            events = c.events()
            first = asyncio.ensure_future(events.__anext__())
            await asyncio.sleep(0)
            handler = c._handler
            assert handler is not None
            await c.map(6, 8080)
            assert (await first).kind == "granted"
            await events.aclose()
            assert c._handler is None and not c.sync.remove_event_handler(handler)

    run(main())


def test_mapping_again_keeps_a_satisfying_mapping(server: Server) -> None:
    async def main() -> None:
        async with aio.PCPClient(server.address) as client:
            first = await client.create_mapping(8080)
            before = server.requests_received()
            assert await client.create_mapping(8080) == first
            assert server.requests_received() == before
            _, _, life = await client.create_mapping(8080, lifetime=100)
            assert life == 100 and server.mapping_count() == 1

    run(main())


def test_classic_async_methods_are_coroutine_functions() -> None:
    # As declared in aio.pyi: inspect, mock.create_autospec and the like rely on it.
    import inspect

    for name in ("create_mapping", "delete_mapping", "create_peer_mapping", "get_external_address"):
        assert inspect.iscoroutinefunction(getattr(aio.PCPClient, name)), name

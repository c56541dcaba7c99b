"""Eight threads on one client, a thousand requests each, mixing MAP,
delete and PEER on ports of their own and on one port they all share:
every call gets its own answer, nothing lost or crossed. The shared port
uses the non-classic map(): each call is its own mapping with its own
nonce, so the server grants it to one holder at a time and refuses the
others with NotAuthorized (the classic map_port joins them instead)."""

from __future__ import annotations

import threading
from typing import List

import pcp_rs
from pcp_rs.testing import Server

THREADS = 8
REQUESTS = 1000
SHARED_PORT = 9999


def test_eight_threads_a_thousand_requests_each() -> None:
    with Server() as server:
        with pcp_rs.Client(server.address, deadline=20, listen_announce=False) as client:
            errors: List[str] = []
            shared_granted = [0] * THREADS

            def worker(t: int) -> None:
                try:
                    for i in range(REQUESTS):
                        port = 10000 + t * 500 + i % 400
                        proto = "tcp" if i % 2 == 0 else "udp"
                        if i % 3 == 0:
                            m = client.map(proto, port, port)
                            assert (m.internal_port, m.external_port) == (port, port), "an answer for another request"
                            assert m.external_ip == server.external_ip
                            m.delete()
                        elif i % 3 == 1:
                            peer = f"198.51.100.{t + 1}"
                            m = client.peer(proto, port, peer, 1000 + i)
                            assert (m.internal_port, m.peer_ip, m.peer_port) == (port, peer, 1000 + i), "crossed"
                            m.delete()
                        else:
                            try:
                                m = client.map("tcp", SHARED_PORT)
                            except pcp_rs.NotAuthorized:
                                continue
                            assert m.internal_port == SHARED_PORT
                            shared_granted[t] += 1
                            m.delete()
                except BaseException as e:  # reported by the main thread
                    errors.append(f"thread {t}: {e!r}")

            threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(timeout=300)
            assert not any(th.is_alive() for th in threads), "a worker hung"
            assert errors == []
            assert sum(shared_granted) > 0
            assert client.mappings() == []
        assert server.mapping_count() == 0

"""Test your application without a router: the core's PCP test server.

::

    from pcp_rs import PCPClient
    from pcp_rs.testing import Server

    with Server() as server:                    # 127.0.0.1, ephemeral port
        with PCPClient(server.address) as client:
            ip, port, lifetime = client.create_mapping(8080)
        server.force_result("NO_RESOURCES")     # or pcp_rs.NoResources, or 8
        server.drop_next(3); server.set_delay(0.5); server.reboot()

The server only keeps books: it forwards no traffic. On reboot and address
change it unicasts ANNOUNCE to every client it has seen, so clients with
default settings work against it unchanged (``listen_announce=False`` only
keeps a client off UDP 5350).
"""

from __future__ import annotations

from ._pcp_rs import Server

__all__ = ["Server"]

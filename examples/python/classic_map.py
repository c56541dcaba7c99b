#!/usr/bin/env python3
"""Maps a TCP port with the classic PCPClient API, holds it, deletes it.

    python3 classic_map.py SERVER INTERNAL_PORT HOLD_SECONDS

Prints exactly one line `MAPPED <external_ip> <external_port> <lifetime>`,
holds the mapping HOLD_SECONDS (the core renews it as needed), deletes it
with delete_mapping, prints `DELETED` and exits 0. Errors go to stderr with a
non-zero exit status. SERVER is "ip", "ip:port" or "[v6]:port".
"""

import sys
import time

from pcp_rs import PCPClient, PcpError


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    server_ip = argv[1]
    try:
        internal_port = int(argv[2])
        hold = float(argv[3])
    except ValueError as e:
        print(f"classic_map: bad argument: {e}", file=sys.stderr)
        return 2
    try:
        client = PCPClient(server_ip)
        try:
            external_ip, external_port, lifetime = client.create_mapping(internal_port)
            print(f"MAPPED {external_ip} {external_port} {lifetime}", flush=True)
            time.sleep(hold)
            client.delete_mapping(internal_port)
            print("DELETED", flush=True)
        finally:
            client.close()
    except (PcpError, ValueError, TypeError, OSError) as e:
        print(f"classic_map: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("classic_map: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

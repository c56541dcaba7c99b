#!/usr/bin/env python3
"""Sequential create_mapping round trips: Python (PCPClient against
pcp_rs.testing.Server) versus the Rust reference loop
(`cargo run --release -p pcp-core --example map_rate -- N`), in the same run.

    bindings/python/.venv/bin/python bindings/python/bench.py [N] [--rounds R]

Prints both rates and the ratio python/rust (the target is >= 0.8). Both
loops map internal ports 10000+i (TCP, 3600 s) on a fresh loopback test
server after one warm-up mapping. Rust and Python runs alternate and the
ratio is of the medians, which damps the noise of a shared machine (the best
of each is printed too).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from pcp_rs import PCPClient
from pcp_rs.testing import Server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def python_rate(n: int) -> float:
    with Server() as server:
        # Off UDP 5350, as the Rust loop is (listen_announce = false).
        client = PCPClient(server.address, delete_on_close=False, listen_announce=False)
        try:
            client.create_mapping(9999, protocol=17)  # warm-up, as the Rust loop does
            start = time.perf_counter()
            for i in range(n):
                client.create_mapping(10000 + i)
            secs = time.perf_counter() - start
        finally:
            client.client.close_keep()
    return n / secs


def rust_rate(n: int) -> float:
    out = subprocess.run(
        ["cargo", "run", "-q", "--release", "-p", "pcp-core", "--example", "map_rate", "--", str(n)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for line in out.splitlines():
        if line.startswith("map_rate "):
            return float(line.split()[1])
    raise RuntimeError(f"no map_rate line in: {out!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=10000, help="round trips per run (default 10000)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating runs of each (default 5)")
    args = ap.parse_args()
    if not 1 <= args.n <= 50000:
        ap.error("n must be between 1 and 50000")
    if args.rounds < 1:
        ap.error("rounds must be at least 1")
    # Build the Rust reference first so that compiling is not timed.
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "pcp-core", "--example", "map_rate"], cwd=ROOT, check=True)
    rust, py = [], []
    for _ in range(args.rounds):
        rust.append(rust_rate(args.n))
        py.append(python_rate(args.n))
    r, p = statistics.median(rust), statistics.median(py)
    print(f"rust   map_rate {r:.0f}/s median  (runs: {', '.join(f'{x:.0f}' for x in rust)})")
    print(f"python map_rate {p:.0f}/s median  (runs: {', '.join(f'{x:.0f}' for x in py)})")
    print(f"ratio python/rust {p / r:.2f}  (best vs best {max(py) / max(rust):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

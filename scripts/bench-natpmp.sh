#!/usr/bin/env bash
# Benchmarks `pcp map` against the test server on loopback as a PCP
# gateway and as a NAT-PMP-only gateway (the fallback of RFC 6887 section
# 9: one PCP request refused with NAT-PMP's "unsupported version", then
# NAT-PMP's MAP and external-address request together), with hyperfine.
#
#   scripts/bench-natpmp.sh [RUNS]     # needs target/release/pcp and hyperfine
#
# Each timed run is one `pcp map` process (a fresh client: start-up, the
# first request and its answer); the delete between runs is not timed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pcp="$root/target/release/pcp"
runs="${1:-200}"
[ -x "$pcp" ] || { echo "build it first: cargo build --release -p pcp-cli" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "hyperfine is not installed (apt-get install hyperfine)" >&2; exit 1; }
state="$(mktemp -d)"
export XDG_STATE_HOME="$state"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$state"; }
trap cleanup EXIT
port_pcp=$((20000 + $$ % 10000))
port_nat=$((port_pcp + 1))
"$pcp" serve --listen "127.0.0.1:$port_pcp" --mode both >/dev/null & pids+=($!)
"$pcp" serve --listen "127.0.0.1:$port_nat" --mode natpmp >/dev/null & pids+=($!)
sleep 0.3
for mode in "pcp:$port_pcp" "natpmp-only:$port_nat"; do
    gw="127.0.0.1:${mode#*:}"
    # Show what is used, once.
    "$pcp" --gateway "$gw" --json map tcp 8080 --lifetime 60 | sed "s/^/${mode%%:*}: /"
    "$pcp" --gateway "$gw" delete tcp 8080
done
hyperfine -N --warmup 10 --runs "$runs" \
    --prepare "sh -c '$pcp --gateway 127.0.0.1:$port_pcp delete tcp 8080 >/dev/null 2>&1; true'" \
    -n "pcp map, PCP gateway" "$pcp --gateway 127.0.0.1:$port_pcp map tcp 8080 --lifetime 60" \
    --prepare "sh -c '$pcp --gateway 127.0.0.1:$port_nat delete tcp 8080 >/dev/null 2>&1; true'" \
    -n "pcp map, NAT-PMP-only gateway (auto)" "$pcp --gateway 127.0.0.1:$port_nat map tcp 8080 --lifetime 60" \
    --prepare "sh -c '$pcp --gateway 127.0.0.1:$port_nat delete tcp 8080 >/dev/null 2>&1; true'" \
    -n "pcp map --protocol natpmp, NAT-PMP-only gateway" "$pcp --gateway 127.0.0.1:$port_nat --protocol natpmp map tcp 8080 --lifetime 60"

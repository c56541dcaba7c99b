#!/usr/bin/env bash
# The start-up cost of a one-shot `pcp map`: the whole process against the
# floor, a minimal program that sends the same MAP on a plain UDP socket and
# waits for the answer (pcp-core/examples/raw_map.rs). Both against the test
# server on loopback (`pcp serve`), hyperfine, median of 20 runs each.
#
#   scripts/bench-startup.sh [PCP_BINARY]
#
# Each `pcp map` run is prepared by `pcp delete` of the same port (its nonce
# is in the state file), so that every run makes a fresh mapping; raw_map
# refreshes one (it reuses its nonce). Needs hyperfine (Debian package).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)"; exit 77; }
cargo build --release -q -p pcp-cli
cargo build --release -q -p pcp-core --example raw_map
pcp="${1:-$root/target/release/pcp}"
raw="$root/target/release/examples/raw_map"
work="$(mktemp -d)"
export XDG_STATE_HOME="$work/state"
port=$((20000 + $$ % 20000))
gw="127.0.0.1:$port"
"$root/target/release/pcp" serve --listen "$gw" >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.3
"$pcp" --gateway "$gw" map tcp 7400 >/dev/null
hyperfine -N -w 3 -r 20 --export-json "$work/t.json" \
    --prepare true --prepare "$pcp --gateway $gw delete tcp 7400" \
    -n "raw MAP on a UDP socket" "$raw $gw 7402" \
    -n "pcp map" "$pcp --gateway $gw map tcp 7400"
python3 - "$work/t.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
m = [x["median"] * 1000 for x in r]
print(f"median: raw {m[0]:.2f} ms, pcp map {m[1]:.2f} ms, difference {m[1] - m[0]:.2f} ms (target < 2 ms)")
PY

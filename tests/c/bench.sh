#!/usr/bin/env bash
# Map-rate benchmark of the C API against the same loop in Rust, in the same
# run: sequential MAP round trips to a test server on loopback.
#
#   tests/c/bench.sh [COUNT] [ROUNDS]
#
# Runs the Rust reference (pcp-core's map_rate example) and the C program
# (tests/c/bench_map.c) alternately ROUNDS times, and prints the median
# rate of each and `ratio C/Rust`. Not an assertion: just numbers.
set -euo pipefail
count=${1:-2000}
rounds=${2:-5}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
work=$(mktemp -d "${TMPDIR:-/tmp}/pcp-c-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
pcp-ffi/install.sh "$work/prefix" release >/dev/null 2>&1
cargo build --release -q -p pcp-core --example map_rate
target=${CARGO_TARGET_DIR:-$root/target}
rust_bin="$target/release/examples/map_rate"
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
# shellcheck disable=SC2046
cc -std=c99 -O2 tests/c/bench_map.c $(pkg-config --cflags --libs pcp_rs) -Wl,-rpath,"$work/prefix/lib" -o "$work/bench_map"
rust=() c=()
for _ in $(seq "$rounds"); do
    rust+=("$("$rust_bin" "$count" | awk '/^map_rate/ {print $2}')")
    c+=("$("$work/bench_map" "$count" | awk '/^map_rate/ {print $2}')")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
r=$(median "${rust[@]}")
cr=$(median "${c[@]}")
echo "rust map_rate: ${rust[*]} (median $r)"
echo "c    map_rate: ${c[*]} (median $cr)"
awk -v c="$cr" -v r="$r" 'BEGIN {printf "ratio C/Rust: %.3f\n", c / r}'

#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time each.
#
#   scripts/fuzz.sh                 # 30 s per target (what scripts/test-all.sh runs)
#   PCP_FUZZ_SECONDS=3600 scripts/fuzz.sh   # the long run
#   scripts/fuzz.sh engine_datagrams        # one target
#
# Needs the nightly toolchain (cargo-fuzz uses -Z sanitizer flags) and
# cargo-fuzz, which it installs if missing. Without nightly it says it
# skipped; under CI=true a skip is a failure. Each target starts from the
# committed seeds (fuzz/corpus/<target>, read only) plus a scratch corpus;
# a crash is saved under fuzz/artifacts/<target>/ and fails the run.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${PCP_FUZZ_SECONDS:-30}"

skip() {
    echo "fuzz: SKIPPED: $1"
    if [ "${CI:-}" = true ]; then
        echo "fuzz: under CI=true a skipped fuzz stage is a failure"
        exit 1
    fi
    exit 0
}

rustup toolchain list 2>/dev/null | grep -q '^nightly' || skip "no nightly toolchain (rustup toolchain install nightly)"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked 2>&1 | tail -2
    cargo +nightly fuzz --version >/dev/null 2>&1 || skip "cargo-fuzz could not be installed"
fi

cd "$root/fuzz"
build_log="$(mktemp "${TMPDIR:-/tmp}/pcp-rs-fuzz-build.XXXXXX")"
if ! cargo +nightly fuzz build -O >"$build_log" 2>&1; then
    # The compiler's own errors, not the tail of cargo-fuzz's backtrace.
    grep -E -A12 '^error' "$build_log" | head -60
    rm -f "$build_log"
    echo "fuzz: build failed"
    exit 1
fi
rm -f "$build_log"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)

scratch="$(mktemp -d "${TMPDIR:-/tmp}/pcp-rs-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
failed=0
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t"
    log="$scratch/$t.log"
    cargo +nightly fuzz run -O "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1
    rc=$?
    done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)"
    execs="$(echo "$done_line" | sed -E 's/^#([0-9]+).*/\1/')"
    cov="$(echo "$done_line" | grep -oE 'cov: [0-9]+' | head -1)"
    if [ "$rc" -eq 0 ] && [ -n "$done_line" ]; then
        echo "fuzz: $t: ${secs} s, ${execs} execs, ${cov}, no crash"
    else
        failed=1
        echo "fuzz: $t: FAILED (exit $rc)"
        grep -E "panicked|ERROR|SUMMARY|Test unit written" "$log" | head -8
        echo "  replay: cd fuzz && cargo +nightly fuzz run -O $t fuzz/artifacts/$t/<file>"
    fi
done
exit "$failed"

#!/usr/bin/env bash
# `cargo check --all-targets` of pcp-core, pcp-cli and pcp-ffi for every
# platform beside Linux: Windows (x86_64-pc-windows-gnu), macOS (x86_64 and
# aarch64-apple-darwin) and FreeBSD (x86_64-unknown-freebsd); and
# `cargo check` of the Python and Node bindings (pcp-rs-python,
# pcp-rs-node) for macOS and FreeBSD. Compiling only: linking for macOS and
# FreeBSD needs their SDKs, which these machines lack (Windows is linked and
# run under wine by test-windows.sh, the bindings included). PyO3's abi3
# build needs no Python of the target for a check; napi-rs needs no Node.
#
#   scripts/check-targets.sh
#
# Adds a missing target with rustup. A target that cannot be added is a
# skip, and under CI=true a failure. Ends with "targets: N checked, M failed, K skipped".
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
targets=(x86_64-pc-windows-gnu x86_64-apple-darwin aarch64-apple-darwin x86_64-unknown-freebsd)
installed="$(rustup target list --installed 2>/dev/null)"
ok=0; failed=0; skipped=0
for t in "${targets[@]}"; do
    if ! grep -qx "$t" <<<"$installed"; then
        echo "== rustup target add $t"
        if ! rustup target add "$t" 2>&1 | tail -1; then :; fi
        if ! rustup target list --installed 2>/dev/null | grep -qx "$t"; then
            echo "SKIP $t: cannot add the target"
            skipped=$((skipped + 1))
            continue
        fi
    fi
    # The bindings for Windows are built by test-windows.sh (napi-build wants a
    # node import library there, which that script makes).
    bindings=()
    [ "$t" = x86_64-pc-windows-gnu ] || bindings=(-p pcp-rs-python -p pcp-rs-node)
    echo "== cargo check --all-targets --target $t (pcp-core, pcp-cli, pcp-ffi${bindings[*]:+; cargo check of pcp-rs-python, pcp-rs-node})"
    log="$(mktemp)"
    # Warnings count as failures, as in the lint suite.
    if RUSTFLAGS="${RUSTFLAGS:-} -D warnings" cargo check -p pcp-core -p pcp-cli -p pcp-ffi --all-targets --target "$t" >"$log" 2>&1 &&
        { [ ${#bindings[@]} -eq 0 ] || RUSTFLAGS="${RUSTFLAGS:-} -D warnings" cargo check "${bindings[@]}" --target "$t" >>"$log" 2>&1; }; then
        tail -1 "$log"
        rm -f "$log"
        echo "ok   $t"
        ok=$((ok + 1))
    else
        grep -E "^(warning|error)" -A8 "$log" | head -60
        rm -f "$log"
        echo "FAIL $t"
        failed=$((failed + 1))
    fi
done
echo "targets: $ok checked, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || exit 1
if [ "$skipped" -gt 0 ] && [ "${CI:-}" = true ]; then
    echo "a skipped target is a failure under CI=true"
    exit 1
fi
exit 0

#!/usr/bin/env bash
# Runs every test suite of pcp-rs, installing what it needs first.
#
#   scripts/test-all.sh
#
# Suites: Rust (core, CLI, C ABI crate), C (under valgrind), Python,
# Node, the install test (tests/install/run.sh: scripts/package.sh, then the
# artifacts installed as users do), and the real-server interop suite (miniupnpd in network
# namespaces; needs root, otherwise it says it skipped, and under CI=true a
# skip is a failure). Every suite sends traffic only to loopback or to
# namespaces it creates. Ends with "suites: N passed, M failed".
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR=never
start=$(date +%s)

# --- system packages (Debian), only what is missing -----------------------
need=()
command -v miniupnpd >/dev/null || [ -x /usr/sbin/miniupnpd ] || need+=(miniupnpd-nftables)
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || need+=(nftables)
command -v tshark >/dev/null || need+=(tshark)
command -v valgrind >/dev/null || need+=(valgrind)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v natpmpc >/dev/null || need+=(natpmpc)
command -v ip >/dev/null || need+=(iproute2)
command -v node >/dev/null || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
        apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
            || echo "warning: could not install ${need[*]}"
    else
        echo "warning: missing ${need[*]} and not root: the suites that need them will say so"
    fi
fi
# The Debian package may start a miniupnpd service on the host: the
# interop suite runs its own inside namespaces only.
if command -v systemctl >/dev/null 2>&1; then systemctl stop miniupnpd >/dev/null 2>&1 || true; fi

results=()
suite() {
    local name="$1"; shift
    echo
    echo "################ $name"
    local t0=$(date +%s)
    if "$@"; then
        results+=("ok   $name ($(( $(date +%s) - t0 )) s)")
    else
        results+=("FAIL $name ($(( $(date +%s) - t0 )) s)")
    fi
}

lint_suite() {
    # The house habits: formatted (rustfmt.toml) and clippy-clean, warnings as errors.
    local c
    for c in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" 2>&1 | tail -1
    done
    cargo fmt --all --check 2>&1 | tail -20 && cargo clippy --workspace --all-targets -- -D warnings 2>&1 | tail -20 &&
        # Doc links that do not resolve are broken documentation (pcp.h's text comes from pcp-ffi's).
        RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --keep-going 2>&1 | tail -20
}

rust_suite() {
    cargo test -p pcp-core -p pcp-cli -p pcp-ffi 2>&1
}

build_release() {
    # Separate commands: a target filter such as --example applies to every -p.
    cargo build --release -p pcp-cli 2>&1 | tail -2 &&
        cargo build --release -p pcp-core --example map_rate 2>&1 | tail -2 &&
        [ -x target/release/pcp ]
}

examples_dir="$(mktemp -d "${TMPDIR:-/tmp}/pcp-rs-examples.XXXXXX")"
trap 'rm -rf "$examples_dir"' EXIT

interop_suite() {
    local c_example=""
    if bash examples/c/build.sh "$examples_dir" >/dev/null 2>&1; then c_example="$examples_dir/bin/map_keep"; fi
    PCP_BIN="$root/target/release/pcp" \
    PCP_C_EXAMPLE="$c_example" \
    PCP_PYTHON="$root/bindings/python/.venv/bin/python" \
    PCP_NODE_PACKAGE="$root/bindings/node" \
        bash tests/interop/run.sh
}

suite "lint (cargo fmt --check, cargo clippy -D warnings, cargo doc -D warnings)" lint_suite
suite "rust (pcp-core, pcp-cli, pcp-ffi)" rust_suite
suite "rust, portable driver (pcp-core --features portable-driver: the path Windows takes)" \
    cargo test -p pcp-core --features portable-driver
suite "release build" build_release
suite "c (tests/c/run.sh, valgrind)" bash tests/c/run.sh
suite "python (bindings/python/run-tests.sh)" bash bindings/python/run-tests.sh
suite "node (bindings/node/run-tests.sh)" bash bindings/node/run-tests.sh
suite "install (tests/install/run.sh: scripts/package.sh, then installed as users do)" bash tests/install/run.sh
suite "interop (miniupnpd in network namespaces)" interop_suite
windows_suite() {
    # 77: cannot run here (no wine or mingw, not installable): a skip, and
    # under CI=true a failure.
    bash scripts/test-windows.sh
    local rc=$?
    if [ $rc -eq 77 ]; then
        echo "SKIPPED: the Windows suite did not run"
        [ "${CI:-}" != true ]
        return
    fi
    return $rc
}

suite "targets (cargo check for Windows, macOS x86_64/aarch64, FreeBSD)" bash scripts/check-targets.sh
suite "windows under wine (pcp-core tests, pcp demo, C against pcp_rs.dll, Node tests in node.exe, Python .pyd built; skip without wine)" windows_suite
suite "fuzz (scripts/fuzz.sh, 30 s a target; skipped without nightly)" bash scripts/fuzz.sh

echo
echo "################ summary ($(( $(date +%s) - start )) s)"
p=0; f=0
for r in "${results[@]}"; do
    echo "$r"
    case "$r" in ok*) p=$((p + 1)) ;; *) f=$((f + 1)) ;; esac
done
echo "suites: $p passed, $f failed"
[ "$f" -eq 0 ]

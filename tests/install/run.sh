#!/usr/bin/env bash
# Installs pcp-rs the way its users do, in fresh folders outside the repository, and runs the
# classic example (create a mapping, then delete it) against the project's test server on loopback.
#
#   tests/install/run.sh
#
# Builds dist/ with scripts/package.sh (linux-x64-gnu; PCP_RS_PACKAGE_PLATFORMS to change), then:
#   without cargo or rustc on PATH:
#     wheel       the wheel into a new virtualenv (pip --no-index), examples/python/classic_map.py
#     npm         both tarballs into a new npm project with --ignore-scripts (the prebuilt needs no
#                 install script), examples/node/classic_map.js
#     c-archive   the archive unpacked, its examples/classic.c compiled with only
#                 `pkg-config --cflags --libs pcp_rs` (and once statically), run; its bin/pcp maps and deletes
#   with Rust (from source):
#     npm-dir     `npm install /path/to/bindings/node` from another project
#     npm-tarball `npm install --omit=optional` of the main tarball (no prebuilt: compiles its own sources)
#     sdist       `pip install` of the sdist into a new virtualenv (reusing target/'s compiled dependencies)
#   and checks that the artifacts carry the workspace version and no debug info.
# Ends with "install-tests: N passed, M failed". Traffic goes only to 127.0.0.1.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
dist="$root/dist"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/pcp-rs-install.XXXXXX")"
server_pid=""
cleanup() {
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

passed=0
failed=0
check() {
    local name="$1"; shift
    echo "-- $name"
    local t0=$SECONDS
    if "$@" >"$tmp/$name.log" 2>&1; then
        echo "ok   $name ($((SECONDS - t0)) s)"; passed=$((passed + 1))
    else
        echo "FAIL $name ($((SECONDS - t0)) s)"; sed 's/^/     | /' "$tmp/$name.log" | tail -40; failed=$((failed + 1))
    fi
}

if [ "${PCP_RS_REUSE_DIST:-}" = 1 ] && [ -f "$dist/SIZES" ]; then
    echo "== reusing dist/ (PCP_RS_REUSE_DIST=1)"
else
    echo "== scripts/package.sh ${PCP_RS_PACKAGE_PLATFORMS:-linux-x64-gnu}"
    # shellcheck disable=SC2086
    bash scripts/package.sh ${PCP_RS_PACKAGE_PLATFORMS:-linux-x64-gnu} || { echo "install-tests: 0 passed, 1 failed"; exit 1; }
fi
version=$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml)

echo "== the test server"
cargo build --release -p pcp-cli 2>&1 | tail -1
"$root/target/release/pcp" serve --listen 127.0.0.1:0 >"$tmp/server.log" 2>&1 &
server_pid=$!
server=""
for _ in $(seq 50); do
    server=$(sed -n 's/^PCP test server on \([0-9.]*:[0-9]*\).*/\1/p' "$tmp/server.log")
    [ -n "$server" ] && break
    sleep 0.1
done
[ -n "$server" ] || { cat "$tmp/server.log"; echo "install-tests: 0 passed, 1 failed"; exit 1; }
echo "test server on $server"

# PATH without any folder that holds cargo or rustc: what a user without Rust has.
no_rust_path=$(echo "$PATH" | tr ':' '\n' | while read -r d; do
    [ -n "$d" ] && [ ! -e "$d/cargo" ] && [ ! -e "$d/rustc" ] && echo "$d"
done | paste -sd: -)
no_rust() { env -u CARGO -u RUSTC PATH="$no_rust_path" "$@"; }

# The classic example's output: one MAPPED line for our port's mapping, then DELETED.
expect_classic() {
    local out="$1"
    cat "$out"
    grep -Eq '^MAPPED [0-9.]+ [0-9]+ [0-9]+$' "$out" && tail -1 "$out" | grep -qx DELETED
}

# ------------------------------------------------------------------ the artifacts themselves
artifacts_are_versioned_and_stripped() {
    local f
    for f in "python/pcp_rs-$version.tar.gz" "node/pcp-rs-$version.tgz" "node/pcp-rs-linux-x64-gnu-$version.tgz" \
        "c/pcp-rs-$version-x86_64-unknown-linux-gnu.tar.gz"; do
        [ -f "$dist/$f" ] || { echo "missing dist/$f"; return 1; }
    done
    local wheel
    wheel=$(ls "$dist"/python/pcp_rs-"$version"-cp39-abi3-manylinux*_x86_64.whl) || { echo "no abi3 manylinux wheel"; return 1; }
    mkdir -p "$tmp/inspect" && cd "$tmp/inspect" || return 1
    python3 -m zipfile -e "$wheel" wheel
    tar xzf "$dist/node/pcp-rs-linux-x64-gnu-$version.tgz"
    tar xzf "$dist/c/pcp-rs-$version-x86_64-unknown-linux-gnu.tar.gz"
    grep -q "\"version\": \"$version\"" package/package.json || { echo "platform package.json has another version"; return 1; }
    local c="pcp-rs-$version-x86_64-unknown-linux-gnu"
    for f in wheel/pcp_rs/_pcp_rs.abi3.so package/pcp-rs.linux-x64-gnu.node "$c/lib/libpcp_rs.so.$version" "$c/bin/pcp"; do
        if readelf -S "$f" | grep -Eq '\.debug_(info|line|str|abbrev|ranges|loc)'; then echo "$f has debug sections"; return 1; fi
        # manylinux2014: nothing newer than glibc 2.17.
        newest=$(objdump -T "$f" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
        echo "$f: stripped, needs $newest"
        [ "$(printf '%s\nGLIBC_2.17\n' "$newest" | sort -V | tail -1)" = GLIBC_2.17 ] || { echo "needs $newest > 2.17"; return 1; }
    done
    readelf -d "$c/lib/libpcp_rs.so.$version" | grep -q 'SONAME.*\[libpcp_rs\.so\.0\]' || { echo "no SONAME libpcp_rs.so.0"; return 1; }
    [ "$(readlink "$c/lib/libpcp_rs.so")" = libpcp_rs.so.0 ] && [ "$(readlink "$c/lib/libpcp_rs.so.0")" = "libpcp_rs.so.$version" ]
}

# ------------------------------------------------------------------ without Rust
wheel_without_rust() {
    ! no_rust sh -c 'command -v cargo || command -v rustc' || { echo "cargo or rustc still on PATH"; return 1; }
    local d="$tmp/py-wheel"
    mkdir -p "$d" && cd "$d" || return 1
    no_rust python3 -m venv venv &&
        no_rust venv/bin/pip install -q --no-index "$dist"/python/pcp_rs-"$version"-*.whl &&
        cp "$root/examples/python/classic_map.py" . &&
        no_rust venv/bin/python classic_map.py "$server" 7001 0 >out.txt &&
        expect_classic out.txt
}

npm_without_rust() {
    local d="$tmp/npm-app"
    mkdir -p "$d" && cd "$d" || return 1
    no_rust npm init -y >/dev/null &&
        no_rust npm install --no-audit --no-fund --ignore-scripts \
            "$dist/node/pcp-rs-linux-x64-gnu-$version.tgz" "$dist/node/pcp-rs-$version.tgz" || return 1
    [ ! -e node_modules/pcp-rs/pcp-rs.node ] || { echo "an addon was built, not the prebuilt one used"; return 1; }
    cp "$root/examples/node/classic_map.js" . &&
        no_rust node classic_map.js "$server" 7002 0 >out.txt &&
        expect_classic out.txt
}

c_archive_without_rust() {
    local d="$tmp/c-app" name="pcp-rs-$version-x86_64-unknown-linux-gnu"
    mkdir -p "$d" && cd "$d" || return 1
    tar xzf "$dist/c/$name.tar.gz" || return 1
    local pc="$d/$name/lib/pkgconfig"
    # shellcheck disable=SC2046
    no_rust cc -std=c99 -Wall -Wextra -Werror "$name/examples/classic.c" \
        $(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs pcp_rs) -o classic || return 1
    LD_LIBRARY_PATH="$d/$name/lib" no_rust ./classic "$server" 7003 >out.txt && expect_classic out.txt || return 1
    # Static: the archive's Libs.private are enough to link libpcp_rs.a.
    # shellcheck disable=SC2046
    no_rust cc -std=c99 "$name/examples/classic.c" $(PKG_CONFIG_PATH="$pc" pkg-config --cflags pcp_rs) \
        "$name/lib/libpcp_rs.a" $(PKG_CONFIG_PATH="$pc" pkg-config --static --libs-only-l pcp_rs | sed 's/-lpcp_rs//') \
        -o classic-static || return 1
    ! readelf -d classic-static | grep -q libpcp_rs || { echo "classic-static links libpcp_rs.so"; return 1; }
    no_rust ./classic-static "$server" 7004 >out-static.txt && expect_classic out-static.txt || return 1
    # The bundled CLI: map (records the nonce), then delete with it.
    XDG_STATE_HOME="$d/state" no_rust "$name/bin/pcp" --gateway "$server" map tcp 7005 &&
        XDG_STATE_HOME="$d/state" no_rust "$name/bin/pcp" --gateway "$server" delete tcp 7005 | grep "^deleted"
}

# ------------------------------------------------------------------ from source, with Rust
npm_from_directory() {
    local d="$tmp/npm-dir-app"
    mkdir -p "$d" && cd "$d" || return 1
    rm -f "$root/bindings/node/pcp-rs.node"
    npm init -y >/dev/null && npm install --no-audit --no-fund --foreground-scripts "$root/bindings/node" || return 1
    [ -f "$root/bindings/node/pcp-rs.node" ] || { echo "the install script built no addon"; return 1; }
    cp "$root/examples/node/classic_map.js" . && node classic_map.js "$server" 7006 0 >out.txt && expect_classic out.txt
}

npm_tarball_from_source() {
    local d="$tmp/npm-src-app"
    mkdir -p "$d" && cd "$d" || return 1
    # --omit=optional: no prebuilt package, so the install script compiles the tarball's own sources.
    npm init -y >/dev/null &&
        env -u CARGO_TARGET_DIR npm install --no-audit --no-fund --foreground-scripts --omit=optional \
            "$dist/node/pcp-rs-$version.tgz" || return 1
    [ -f node_modules/pcp-rs/pcp-rs.node ] || { echo "the install script built no addon"; return 1; }
    [ ! -e node_modules/pcp-rs/target ] || { echo "the build folder was left in node_modules"; return 1; }
    cp "$root/examples/node/classic_map.js" . && node classic_map.js "$server" 7007 0 >out.txt && expect_classic out.txt
}

sdist_from_source() {
    local d="$tmp/py-sdist"
    mkdir -p "$d" && cd "$d" || return 1
    # The crates.io dependencies compiled by the Python suite are reused (CI time); pcp-core and
    # the binding are compiled from the sdist's own copy.
    python3 -m venv venv && CARGO_TARGET_DIR="$root/target" venv/bin/pip install -q "$dist/python/pcp_rs-$version.tar.gz" &&
        cp "$root/examples/python/classic_map.py" . &&
        venv/bin/python classic_map.py "$server" 7008 0 >out.txt &&
        expect_classic out.txt
}

check artifacts artifacts_are_versioned_and_stripped
check wheel wheel_without_rust
check npm npm_without_rust
check c-archive c_archive_without_rust
check npm-dir npm_from_directory
check npm-tarball npm_tarball_from_source
check sdist sdist_from_source

echo
echo "== sizes (bytes)"
cat "$dist/SIZES"
echo "install-tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

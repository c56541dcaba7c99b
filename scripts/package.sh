#!/usr/bin/env bash
# Builds every artifact users download into dist/:
#
#   scripts/package.sh [PLATFORM...]
#
#   dist/python/  pcp_rs-V-cp39-abi3-<manylinux tag or platform>.whl (stripped), pcp_rs-V.tar.gz (sdist)
#   dist/node/    pcp-rs-V.tgz (JavaScript, types and the Rust sources for a from-source fallback)
#                 pcp-rs-<platform>-V.tgz (one prebuilt, stripped .node each), all made by `npm pack`
#   dist/c/       pcp-rs-V-<target>.tar.gz: bin/pcp, include/pcp.h, examples/classic.c, lib/ (shared library with its
#                 SONAME links, static library), lib/pkgconfig/pcp_rs.pc (relocatable), README, licences
#   dist/SHA256SUMS, dist/SIZES
#
# PLATFORM is napi-rs's name: linux-x64-gnu (Linux x86_64, glibc >= 2.17), win32-x64-gnu (Windows
# x86_64, mingw), darwin-x64, darwin-arm64 (macOS, linked by zig). Named platforms must build; with
# none, linux-x64-gnu must build and the others are tried, each reported as built or not and why.
#
# The version is the workspace's ([workspace.package] in Cargo.toml): the wheel and sdist take it
# through maturin, the staged package.json files are written with it, and the committed
# bindings/node/package.json must match it (checked here).
#
# Tools: maturin and zig (the `ziglang` PyPI package) in a virtualenv under target/package-tools
# (PCP_RS_PACKAGE_TOOLS), installed from PyPI on first use; npm; `rustup target add` for the
# cross targets; Debian's mingw-w64 for Windows. Linux artifacts link against glibc 2.17 through
# zig, so they meet manylinux2014 and load on old distributions too.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR=never
dist="$root/dist"
work="$root/target/package"
tools="${PCP_RS_PACKAGE_TOOLS:-$root/target/package-tools}"
maturin_version=1.16.0
ziglang_version=0.17.1

say() { echo "== $*"; }
die() { echo "package.sh: $*" >&2; exit 1; }

# ------------------------------------------------------------------ version, from one place
version=$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml)
[ -n "$version" ] || die "no version in [workspace.package] of Cargo.toml"
node_version=$(node -p "require('./bindings/node/package.json').version")
[ "$node_version" = "$version" ] ||
    die "bindings/node/package.json has version $node_version, the workspace $version: set it to $version"

all_platforms=(linux-x64-gnu win32-x64-gnu darwin-x64 darwin-arm64)
if [ $# -gt 0 ]; then requested=("$@"); required=("$@"); else requested=("${all_platforms[@]}"); required=(linux-x64-gnu); fi

# napi-rs platform name -> Rust target, zig's target, npm's os/cpu/libc fields.
platform_info() {
    case "$1" in
    linux-x64-gnu) echo "x86_64-unknown-linux-gnu x86_64-linux-gnu.2.17 linux x64 glibc" ;;
    win32-x64-gnu) echo "x86_64-pc-windows-gnu - win32 x64 -" ;;
    darwin-x64) echo "x86_64-apple-darwin x86_64-macos darwin x64 -" ;;
    darwin-arm64) echo "aarch64-apple-darwin aarch64-macos darwin arm64 -" ;;
    *) return 1 ;;
    esac
}
for p in "${requested[@]}"; do platform_info "$p" >/dev/null || die "unknown platform $p (one of ${all_platforms[*]})"; done

# ------------------------------------------------------------------ tools
ensure_tools() {
    if [ ! -x "$tools/bin/maturin" ] || ! "$tools/bin/python" -c "import ziglang" 2>/dev/null; then
        say "installing maturin $maturin_version and ziglang $ziglang_version into $tools"
        python3 -m venv "$tools"
        "$tools/bin/python" -m pip install -q "maturin==$maturin_version" "ziglang==$ziglang_version"
    fi
    export PATH="$tools/bin:$PATH"
}

# A linker for cargo that is zig targeting $1, through maturin's wrapper (the same one
# `maturin build --zig` uses, which drops the arguments zig does not take).
zig_linker() {
    local zt="$1" f="$tools/zigcc-$1.sh"
    cat >"$f" <<EOF
#!/bin/sh
export CARGO_ZIGBUILD_ZIG_COMMAND="$tools/bin/python" CARGO_ZIGBUILD_ZIG_COMMAND_ARGS='-m ziglang'
exec "$tools/bin/maturin" zig cc -- -fno-sanitize=all -target $zt "\$@"
EOF
    chmod +x "$f"
    echo "$f"
}

ensure_rust_target() {
    rustup target list --installed 2>/dev/null | grep -qx "$1" && return 0
    rustup target add "$1" >/dev/null 2>&1
}

# Exports the linker for cargo and maturin on a platform; on failure sets $why and returns 1.
linker_env() {
    local platform="$1" triple="$2" zt="$3" var
    var="CARGO_TARGET_$(echo "$triple" | tr 'a-z-' 'A-Z_')_LINKER"
    case "$platform" in
    win32-*)
        command -v x86_64-w64-mingw32-gcc >/dev/null || { why="x86_64-w64-mingw32-gcc not found (Debian: gcc-mingw-w64-x86-64)"; return 1; }
        export "$var=x86_64-w64-mingw32-gcc"
        ;;
    *) export "$var=$(zig_linker "$zt")" ;;
    esac
}

strip_tool() {
    case "$1" in
    linux-*) echo strip ;;
    win32-*) echo x86_64-w64-mingw32-strip ;;
    *) echo "" ;; # no Mach-O strip here: the build itself leaves the debug info out (see build_rust)
    esac
}

# Runs a packaging function in a subshell with errexit in force, so that any failing step fails
# it, and sets $step_ok to 1 or 0. Call it as a plain command: inside `if` or `||`, bash ignores
# errexit in everything the function runs.
checked() {
    set +e
    (set -e; "$@")
    local rc=$?
    set -e
    step_ok=$((rc == 0))
}

# ------------------------------------------------------------------ per-platform builds
# A release build of some of the crates for one target (full output in $work/logs/); on failure
# sets $why from the first errors.
build_rust() {
    local platform="$1" triple="$2" what="$3"; shift 3
    local log="$work/logs/$platform-$what.log"
    mkdir -p "$work/logs"
    case "$platform" in
    darwin-*)
        # rustc would run a Mach-O `strip`, which Linux lacks; without debug info there is little to strip.
        export CARGO_PROFILE_RELEASE_DEBUG=0
        ;;
    esac
    local rc=0
    cargo build --release --target "$triple" "$@" >"$log" 2>&1 || rc=$?
    unset CARGO_PROFILE_RELEASE_DEBUG
    tail -1 "$log"
    [ "$rc" -eq 0 ] && return 0
    if grep -q 'unable to find system framework\|unable to find dynamic system library' "$log"; then
        why="compiles, but linking needs the macOS SDK ($(grep -o 'system framework "[A-Za-z]*"\|system library "[a-z]*"' "$log" |
            sed 's/.*"\(.*\)"/\1/' | sort -u | paste -sd, -)), which zig does not ship and this machine cannot fetch"
    else
        why="cargo build --target $triple failed: $(grep -E '^error' "$log" | sort -u | head -3 | paste -sd';' -) (log: $log)"
    fi
    grep -E -m12 -A4 '^error' "$log" | sed 's/^/    | /' | head -30
    return 1
}

# Windows: napi-build wants a node import library for windows-gnu (LIBNODE_PATH). The N-API
# functions are looked up at load time (napi-rs's dyn-symbols, see bindings/node/Cargo.toml), so it
# only has to name the libuv functions the addon calls itself, which node.exe exports.
node_import_lib() {
    local dir="$work/libnode"
    mkdir -p "$dir"
    { echo "LIBRARY node.exe"; echo "EXPORTS"; grep -ho '\bfn uv_[a-z_0-9]*' bindings/node/src/*.rs | sed 's/^fn //' | sort -u; } >"$dir/node.def"
    x86_64-w64-mingw32-dlltool -d "$dir/node.def" -l "$dir/libnode.dll.a" || return 1
    : >"$dir/libnode.dll" # napi-build only checks that this file exists; the linker takes libnode.dll.a
    export LIBNODE_PATH="$dir"
}

# The system libraries the static archive needs, as rustc reports them for the target.
native_static_libs() {
    local triple="$1"
    cargo rustc --release --target "$triple" -p pcp-ffi --lib --crate-type staticlib -- --print native-static-libs 2>&1 |
        sed -n 's/.*native-static-libs: //p' | tail -1
}

package_c() {
    local platform="$1" triple="$2" out="$root/target/$2/release" st
    st=$(strip_tool "$platform")
    local name="pcp-rs-$version-$triple" stage="$work/c/pcp-rs-$version-$triple"
    rm -rf "$stage" && install -d "$stage/bin" "$stage/include" "$stage/lib/pkgconfig"
    local libs_private
    libs_private=$(native_static_libs "$triple")
    [ -n "$libs_private" ] || { echo "rustc reported no native-static-libs for $triple" >&2; return 1; }
    local major=${version%%.*}
    case "$platform" in
    linux-*)
        install -m 0755 "$out/libpcp_rs.so" "$stage/lib/libpcp_rs.so.$version"
        ln -s "libpcp_rs.so.$version" "$stage/lib/libpcp_rs.so.$major"
        ln -s "libpcp_rs.so.$major" "$stage/lib/libpcp_rs.so"
        install -m 0644 "$out/libpcp_rs.a" "$stage/lib/libpcp_rs.a"
        install -m 0755 "$out/pcp" "$stage/bin/pcp"
        $st --strip-unneeded "$stage/lib/libpcp_rs.so.$version"
        $st --strip-debug "$stage/lib/libpcp_rs.a"
        $st "$stage/bin/pcp"
        ;;
    win32-*)
        # The DLL beside the programs that load it, its import library and the static library in lib/.
        install -m 0755 "$out/pcp_rs.dll" "$stage/bin/pcp_rs.dll"
        install -m 0644 "$out/libpcp_rs.dll.a" "$stage/lib/libpcp_rs.dll.a"
        install -m 0644 "$out/libpcp_rs.a" "$stage/lib/libpcp_rs.a"
        install -m 0755 "$out/pcp.exe" "$stage/bin/pcp.exe"
        $st --strip-unneeded "$stage/bin/pcp_rs.dll"
        # mingw's strip refuses the archive's empty split-debug members: it then stays as built.
        $st --strip-debug "$stage/lib/libpcp_rs.a" 2>/dev/null || install -m 0644 "$out/libpcp_rs.a" "$stage/lib/libpcp_rs.a"
        $st "$stage/bin/pcp.exe"
        ;;
    darwin-*)
        install -m 0755 "$out/libpcp_rs.dylib" "$stage/lib/libpcp_rs.$major.dylib"
        ln -s "libpcp_rs.$major.dylib" "$stage/lib/libpcp_rs.dylib"
        install -m 0644 "$out/libpcp_rs.a" "$stage/lib/libpcp_rs.a"
        install -m 0755 "$out/pcp" "$stage/bin/pcp"
        ;;
    esac
    install -m 0644 include/pcp.h "$stage/include/pcp.h"
    install -d "$stage/examples" && install -m 0644 scripts/package/classic.c "$stage/examples/classic.c"
    # ${pcfiledir} is where pkg-config found the file: the archive works wherever it is unpacked.
    sed -e 's|@PREFIX@|${pcfiledir}/../..|' -e "s|@VERSION@|$version|" -e "s|@LIBS_PRIVATE@|$libs_private|" \
        pcp-ffi/pcp_rs.pc.in >"$stage/lib/pkgconfig/pcp_rs.pc"
    sed -e "s|@VERSION@|$version|g" -e "s|@TARGET@|$triple|g" scripts/package/c-README.md >"$stage/README.md"
    install -m 0644 LICENSE-MIT LICENSE-APACHE "$stage/"
    mkdir -p "$dist/c"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/c" -czf "$dist/c/$name.tar.gz" "$name"
}

# One npm package holding the prebuilt addon for the platform, in napi-rs's layout.
package_node_platform() {
    local platform="$1" triple="$2" os="$3" cpu="$4" libc="$5" out="$root/target/$2/release" st src
    st=$(strip_tool "$platform")
    case "$platform" in
    linux-*) src="$out/libpcp_rs_node.so" ;;
    win32-*) src="$out/pcp_rs_node.dll" ;;
    darwin-*) src="$out/libpcp_rs_node.dylib" ;;
    esac
    local pkg="pcp-rs-$platform" file="pcp-rs.$platform.node" stage="$work/node/pcp-rs-$platform"
    rm -rf "$stage" && mkdir -p "$stage"
    install -m 0755 "$src" "$stage/$file"
    [ -z "$st" ] || $st --strip-unneeded "$stage/$file"
    install -m 0644 LICENSE-MIT LICENSE-APACHE "$stage/"
    printf '# %s\n\nThe prebuilt native addon of [pcp-rs](https://www.npmjs.com/package/pcp-rs) for %s.\nInstall `pcp-rs`, not this package: it picks this one on %s.\n' \
        "$pkg" "$triple" "$platform" >"$stage/README.md"
    PKG="$pkg" VERSION="$version" FILE="$file" OS="$os" CPU="$cpu" LIBC="$libc" node -e '
        const e = process.env;
        const p = { name: e.PKG, version: e.VERSION,
          description: `The prebuilt native addon of pcp-rs for ${e.OS}-${e.CPU}`,
          license: "MIT OR Apache-2.0", main: e.FILE, files: [e.FILE], os: [e.OS], cpu: [e.CPU],
          engines: { node: ">=20" } };
        if (e.LIBC !== "-") p.libc = [e.LIBC];
        require("fs").writeFileSync(process.argv[1], JSON.stringify(p, null, 2) + "\n");' "$stage/package.json"
    mkdir -p "$dist/node"
    (cd "$stage" && npm pack --silent --pack-destination "$dist/node" >/dev/null)
}

package_python_wheel() {
    local platform="$1" triple="$2" log="$work/logs/$1-python.log" args=()
    case "$platform" in
    linux-*) args=(--strip --zig --compatibility manylinux2014) ;;
    darwin-*) args=(--zig) ;;
    win32-*) args=(--strip) ;;
    esac
    if maturin build --release "${args[@]}" --target "$triple" -m bindings/python/Cargo.toml -o "$dist/python" >"$log" 2>&1; then
        tail -1 "$log"
        return 0
    fi
    why="maturin build --target $triple failed: $(grep -m3 -E '^error|💥' "$log" | paste -sd';' -) (log: $log)"
    return 1
}

# ------------------------------------------------------------------ platform-independent artifacts
# The main npm package: JavaScript, types, the loader and install script, and the Rust sources of
# the addon with pcp-core as a Cargo workspace of their own, so that the tarball builds from
# source anywhere (outside this repository) when no prebuilt package fits.
package_node_main() {
    local stage="$work/node/pcp-rs"
    rm -rf "$stage" && mkdir -p "$stage/crates"
    # What package.json's "files" names, so that a file added there is never left out of the
    # tarball; Cargo.toml is written below.
    local f
    for f in $(node -p 'require("./bindings/node/package.json").files.join("\n")'); do
        [ "$f" = Cargo.toml ] || cp -r "bindings/node/$f" "$stage/"
    done
    git ls-files -z pcp-core | tar --null -T - -cf - | tar -xf - -C "$stage/crates"
    cp Cargo.lock LICENSE-MIT LICENSE-APACHE "$stage/"
    # The binding's manifest plus the workspace's shared settings, with pcp-core where it now is.
    # Release builds from source leave the debug info out: users get a small addon.
    {
        cat bindings/node/Cargo.toml
        printf '\n# Added by scripts/package.sh: this package is its own workspace, pcp-core included.\n'
        printf '[workspace]\nresolver = "2"\nmembers = ["crates/pcp-core"]\n\n'
        sed -n '/^\[workspace\.package\]/,/^\[/{/^\[workspace\.package\]/p;/^\[/!p}' Cargo.toml
        printf '[workspace.dependencies]\npcp-core = { path = "crates/pcp-core" }\n\n[profile.release]\nstrip = "debuginfo"\n'
    } >"$stage/Cargo.toml"
    # Every path dependency of the workspace must have been carried over.
    local deps
    deps=$(sed -n '/^\[workspace\.dependencies\]/,/^\[/{/^\[/!p}' Cargo.toml | grep -v '^pcp-core = { path = "pcp-core" }$' | grep -v '^ *$' || true)
    [ -z "$deps" ] || die "package.sh does not know how to carry these workspace dependencies: $deps"
    local optional=()
    for p in "${node_built[@]}"; do optional+=("pcp-rs-$p"); done
    VERSION="$version" OPTIONAL="${optional[*]}" node -e '
        const fs = require("fs"), e = process.env;
        const p = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
        p.version = e.VERSION;
        p.files = [...p.files, "crates", "Cargo.lock", "LICENSE-MIT", "LICENSE-APACHE"];
        p.optionalDependencies = {};
        for (const name of e.OPTIONAL.split(" ").filter(Boolean)) p.optionalDependencies[name] = e.VERSION;
        delete p.devDependencies;
        for (const s of ["typecheck", "test"]) delete p.scripts[s];
        fs.writeFileSync(process.argv[2], JSON.stringify(p, null, 2) + "\n");' bindings/node/package.json "$stage/package.json"
    mkdir -p "$dist/node"
    (cd "$stage" && npm pack --silent --pack-destination "$dist/node" >/dev/null)
}

# ------------------------------------------------------------------ main
rm -rf "$dist" "$work"
mkdir -p "$dist" "$work"
ensure_tools

built=()     # platforms with all three artifacts
node_built=() # platforms with a prebuilt npm package (the main package's optionalDependencies)
report=()
for platform in "${requested[@]}"; do
    read -r triple zt os cpu libc <<<"$(platform_info "$platform")"
    say "$platform ($triple)"
    why=""
    if ! ensure_rust_target "$triple"; then
        report+=("$platform: nothing built: rustup target add $triple failed")
        continue
    fi
    if ! linker_env "$platform" "$triple" "$zt"; then
        report+=("$platform: nothing built: $why")
        continue
    fi
    ok=()
    step_ok=0
    if build_rust "$platform" "$triple" c -p pcp-ffi -p pcp-cli; then checked package_c "$platform" "$triple"; fi
    if [ "$step_ok" = 1 ]; then
        ok+=(c)
    else
        report+=("$platform: C archive not built: ${why:-packaging failed (see above)}")
    fi
    why=""
    step_ok=0
    if case "$platform" in win32-*) node_import_lib ;; *) true ;; esac &&
        build_rust "$platform" "$triple" node -p pcp-rs-node; then
        checked package_node_platform "$platform" "$triple" "$os" "$cpu" "$libc"
    fi
    if [ "$step_ok" = 1 ]; then
        ok+=(node)
        node_built+=("$platform")
    else
        report+=("$platform: npm package not built: ${why:-packaging failed (see above)}")
    fi
    why=""
    if package_python_wheel "$platform" "$triple"; then
        ok+=(python)
    else
        report+=("$platform: wheel not built: $why")
    fi
    [ ${#ok[@]} -eq 3 ] && built+=("$platform")
    report+=("$platform: built: ${ok[*]:-nothing}")
done

say "sdist, main npm package"
maturin sdist -m bindings/python/Cargo.toml -o "$dist/python" 2>&1 | tail -1
checked package_node_main
[ "$step_ok" = 1 ] || die "the main npm package failed (see above)"

(cd "$dist" && find . -type f ! -name SHA256SUMS ! -name SIZES | sort | sed 's|^\./||' | xargs sha256sum >SHA256SUMS)
(cd "$dist" && find . -type f ! -name SHA256SUMS ! -name SIZES | sort | sed 's|^\./||' | xargs du -b | awk '{printf "%10d  %s\n", $1, $2}' >SIZES)
echo
say "dist/ (bytes)"
cat "$dist/SIZES"
for r in "${report[@]}"; do echo "$r"; done
status=0
for r in "${required[@]}"; do
    case " ${built[*]} " in *" $r "*) ;; *) echo "package.sh: required platform $r was not built" >&2; status=1 ;; esac
done
exit "$status"

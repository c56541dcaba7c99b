#!/usr/bin/env bash
# Builds libpcp_rs and installs the library, pcp.h and pcp_rs.pc into a prefix.
#
#   pcp-ffi/install.sh PREFIX [release|debug]
#
# Installs:
#   PREFIX/lib/libpcp_rs.so.VERSION, libpcp_rs.so.MAJOR -> it (the SONAME), libpcp_rs.so -> it
#   PREFIX/lib/libpcp_rs.a
#   PREFIX/include/pcp.h
#   PREFIX/lib/pkgconfig/pcp_rs.pc
# then:  PKG_CONFIG_PATH=PREFIX/lib/pkgconfig cc app.c $(pkg-config --cflags --libs pcp_rs)
# (and LD_LIBRARY_PATH=PREFIX/lib, or -Wl,-rpath,PREFIX/lib, unless PREFIX/lib is a system directory).
# Honours CARGO_TARGET_DIR (default: target/ at the top of the repository).
set -euo pipefail

prefix=${1:?usage: pcp-ffi/install.sh PREFIX [release|debug]}
profile=${2:-release}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)

case "$profile" in
release) profile_flag=--release ;;
debug) profile_flag= ;;
*) echo "install.sh: profile is release or debug, not $profile" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086
cargo build $profile_flag -p pcp-ffi
# The system libraries the static archive needs (Libs.private), as rustc
# reports them for this target and toolchain. Cargo replays the note when
# the archive is already built, so this costs nothing on a second run.
# shellcheck disable=SC2086
libs_private=$(cargo rustc $profile_flag -p pcp-ffi --lib --crate-type staticlib -- --print native-static-libs 2>&1 |
    sed -n 's/.*native-static-libs: //p' | tail -1)
if [ -z "$libs_private" ]; then
    libs_private="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
    echo "install.sh: rustc did not report native-static-libs; using the Linux default: $libs_private" >&2
fi
target=${CARGO_TARGET_DIR:-$root/target}
libdir_build="$target/$profile"

version=$(cargo pkgid -p pcp-ffi | sed 's/.*[#@]//')
major=${version%%.*}

install -d "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0755 "$libdir_build/libpcp_rs.so" "$prefix/lib/libpcp_rs.so.$version"
ln -sf "libpcp_rs.so.$version" "$prefix/lib/libpcp_rs.so.$major"
ln -sf "libpcp_rs.so.$major" "$prefix/lib/libpcp_rs.so"
install -m 0644 "$libdir_build/libpcp_rs.a" "$prefix/lib/libpcp_rs.a"
install -m 0644 include/pcp.h "$prefix/include/pcp.h"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" -e "s|@LIBS_PRIVATE@|$libs_private|" pcp-ffi/pcp_rs.pc.in >"$prefix/lib/pkgconfig/pcp_rs.pc"
echo "installed pcp_rs $version into $prefix"

#!/usr/bin/env bash
# Builds libpcp_rs, installs it into OUT/prefix and builds the C examples
# into OUT/bin with the pkg-config line (plus an rpath, so that they run
# without LD_LIBRARY_PATH).
#
#   examples/c/build.sh OUT [release|debug]
#   OUT/bin/map_keep SERVER INTERNAL_PORT HOLD_SECONDS [LIFETIME]
#   OUT/bin/discover CANDIDATE...
set -euo pipefail
out=${1:?usage: examples/c/build.sh OUT [release|debug]}
profile=${2:-release}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$out/bin"
out=$(cd "$out" && pwd)
"$here/../../pcp-ffi/install.sh" "$out/prefix" "$profile"
export PKG_CONFIG_PATH="$out/prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
for ex in map_keep peer poll_loop discover; do
    # shellcheck disable=SC2046
    cc -std=c99 -O2 -Wall -Wextra -Werror "$here/$ex.c" $(pkg-config --cflags --libs pcp_rs) \
        -Wl,-rpath,"$out/prefix/lib" -o "$out/bin/$ex"
done
echo "built: $out/bin/map_keep $out/bin/peer $out/bin/poll_loop $out/bin/discover"

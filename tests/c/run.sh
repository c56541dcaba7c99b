#!/usr/bin/env bash
# The C ABI's test suite: builds libpcp_rs, checks the exported symbols and
# the SONAME, checks that include/pcp.h is what cbindgen generates, compiles
# the header as C99 and C++ with strict flags, installs into a temporary
# prefix, builds the examples and the tests with the pkg-config line, runs
# the examples against the in-process test server, and runs the C tests
# under valgrind (zero errors, zero leaks). Only loopback traffic.
#
#   tests/c/run.sh          (honours CARGO_TARGET_DIR; default target/)
#
# Ends with `c-tests: N passed, M failed` (plus `, K skipped` when a test
# could not run here, e.g. without IPv6 loopback); exits non-zero on any failure.
set -uo pipefail

CBINDGEN_VERSION=0.29.0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
work=$(mktemp -d "${TMPDIR:-/tmp}/pcp-c-tests.XXXXXX")
trap 'rm -rf "$work"' EXIT
step_failures=0

step() { printf '== %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    step_failures=$((step_failures + 1))
}
abort() {
    printf 'FAIL: %s\n' "$*" >&2
    echo "c-tests: 0 passed, $((step_failures + 1)) failed"
    exit 1
}

# ---- tools
step "tools"
if ! command -v pkg-config >/dev/null || ! command -v valgrind >/dev/null || ! command -v c++ >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        (apt-get update -qq && apt-get install -y -qq pkg-config valgrind g++) >/dev/null 2>&1
    fi
fi
for t in cc c++ pkg-config valgrind nm readelf; do
    command -v "$t" >/dev/null || abort "$t is missing (apt-get install pkg-config valgrind g++ binutils)"
done
if [ "$(cbindgen --version 2>/dev/null)" != "cbindgen $CBINDGEN_VERSION" ]; then
    cargo install cbindgen --version "$CBINDGEN_VERSION" --locked >"$work/cbindgen-install.log" 2>&1 ||
        { cat "$work/cbindgen-install.log" >&2; abort "cannot install cbindgen $CBINDGEN_VERSION"; }
fi
cbindgen=$(command -v cbindgen || echo "${CARGO_HOME:-$HOME/.cargo}/bin/cbindgen")

# ---- build and install
step "build and install into a temporary prefix"
prefix="$work/prefix"
pcp-ffi/install.sh "$prefix" release >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; abort "building libpcp_rs failed"; }
tail -1 "$work/build.log"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
export LD_LIBRARY_PATH="$prefix/lib"
so="$prefix/lib/libpcp_rs.so"

step "exported symbols and SONAME"
version=$(cargo pkgid -p pcp-ffi | sed 's/.*[#@]//')
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[ "$soname" = "libpcp_rs.so.${version%%.*}" ] || fail "SONAME is '$soname', want libpcp_rs.so.${version%%.*}"
others=$(nm -D --defined-only "$so" | awk '{print $NF}' | grep -v '^pcp_' || true)
[ -z "$others" ] || fail "exported symbols without the pcp_ prefix: $others"
nexp=$(nm -D --defined-only "$so" | awk '{print $NF}' | grep -c '^pcp_')
echo "SONAME $soname; $nexp exported symbols, all pcp_*"
# Every function the header declares is exported.
missing=$(grep -oE '\bpcp_[a-z0-9_]+\(' include/pcp.h | tr -d '(' | sort -u | while read -r f; do
    nm -D --defined-only "$so" | awk '{print $NF}' | grep -qx "$f" || echo "$f"
done)
[ -z "$missing" ] || fail "declared in pcp.h but not exported: $missing"

step "header drift (cbindgen $CBINDGEN_VERSION)"
"$cbindgen" --quiet --config pcp-ffi/cbindgen.toml --crate pcp-ffi --output "$work/pcp.h" 2>"$work/cbindgen.log" ||
    { cat "$work/cbindgen.log" >&2; fail "cbindgen failed"; }
if ! diff -u include/pcp.h "$work/pcp.h" >"$work/drift.diff"; then
    head -40 "$work/drift.diff" >&2
    fail "include/pcp.h differs from what cbindgen generates: run cbindgen --config pcp-ffi/cbindgen.toml --crate pcp-ffi --output include/pcp.h"
fi

step "header compiles as C99 and C++ (-Wall -Wextra -Werror -pedantic)"
cat >"$work/hdr.c" <<'C'
#include <pcp.h>
#include <pcp.h> /* include guard */
int main(void) {
    pcp_status s = PCP_OK;
    pcp_event ev;
    ev.kind = PCP_EVENT_RENEWED;
    (void)ev;
    return (int)s + (pcp_status_message(s) == 0);
}
C
cp "$work/hdr.c" "$work/hdr.cpp"
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Werror -pedantic "$work/hdr.c" $(pkg-config --cflags --libs pcp_rs) -o "$work/hdr_c" || fail "pcp.h as C99"
# shellcheck disable=SC2046
c++ -std=c++11 -Wall -Wextra -Werror -pedantic "$work/hdr.cpp" $(pkg-config --cflags --libs pcp_rs) -o "$work/hdr_cpp" || fail "pcp.h as C++"
"$work/hdr_c" && "$work/hdr_cpp" || fail "header programs did not run"

step "examples, built with the pkg-config line"
for ex in map_keep peer poll_loop discover; do
    # shellcheck disable=SC2046
    cc -std=c99 -Wall -Wextra -Werror "examples/c/$ex.c" $(pkg-config --cflags --libs pcp_rs) -o "$work/$ex" || fail "building $ex"
done
# shellcheck disable=SC2046
cc -std=c99 -O2 -Wall -Wextra -Werror tests/c/bench_map.c $(pkg-config --cflags --libs pcp_rs) -o "$work/bench_map" || fail "building bench_map"
# Static linking with the archive.
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Werror examples/c/peer.c $(pkg-config --cflags pcp_rs) "$prefix/lib/libpcp_rs.a" \
    $(pkg-config --static --libs-only-l pcp_rs | sed 's/-lpcp_rs//') -o "$work/peer_static" || fail "static link"

step "examples against the in-process test server"
out=$(timeout 60 "$work/map_keep" test 8080 0) || fail "map_keep exited non-zero"
printf '%s\n' "$out"
printf '%s\n' "$out" | grep -qE '^MAPPED 203\.0\.113\.7 [0-9]+ 3600$' || fail "map_keep: no MAPPED line"
[ "$(printf '%s\n' "$out" | tail -1)" = "DELETED" ] || fail "map_keep: no DELETED line"
out=$(timeout 60 "$work/map_keep" test 8080 3 2) || fail "map_keep with renewals exited non-zero"
printf '%s\n' "$out"
printf '%s\n' "$out" | grep -q '^RENEWED ' || fail "map_keep: no renewal printed in 3 s of a 2 s mapping"
timeout 60 "$work/map_keep" 127.0.0.1:1 8080 0 >"$work/err.out" 2>"$work/err.log"
rc=$?
[ $rc -ne 0 ] && [ ! -s "$work/err.out" ] && grep -q 'map_keep: map:' "$work/err.log" || fail "map_keep against a dead port: rc $rc"
timeout 60 "$work/peer" test 6000 198.51.100.7 443 || fail "peer"
timeout 60 "$work/peer_static" test 6000 198.51.100.7 443 >/dev/null || fail "peer (static)"
timeout 60 "$work/poll_loop" test 5000 3 2 >"$work/poll.out" || fail "poll_loop"
# A dead candidate first: discovery must still find the test server.
out=$(timeout 60 "$work/discover" 127.0.0.1:1 test) || fail "discover exited non-zero"
printf '%s\n' "$out"
printf '%s\n' "$out" | grep -qE '^SERVER 127\.0\.0\.1 [0-9]+$' && printf '%s\n' "$out" | grep -qx 'EXTERNAL 203.0.113.7' &&
    printf '%s\n' "$out" | grep -qE '^EPOCH [0-9]+$' || fail "discover: want SERVER, EXTERNAL and EPOCH lines"
timeout 60 "$work/discover" 127.0.0.1:1 >/dev/null 2>"$work/err.log" && fail "discover with only a dead candidate succeeded"
grep -q 'NO_GATEWAY' "$work/err.log" || fail "discover with only a dead candidate: want NO_GATEWAY"
cat "$work/poll.out"
grep -q '^GRANTED ' "$work/poll.out" && grep -q '^RENEWED ' "$work/poll.out" && grep -q '^DELETED OK' "$work/poll.out" ||
    fail "poll_loop: want GRANTED, RENEWED, DELETED OK"

step "C tests under valgrind"
# shellcheck disable=SC2046
cc -std=c99 -g -Wall -Wextra -Werror tests/c/test_pcp.c $(pkg-config --cflags --libs pcp_rs) -lpthread -o "$work/test_pcp" ||
    abort "building the C tests failed"
timeout 1200 valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
    --suppressions=tests/c/valgrind.supp --log-file="$work/valgrind.log" "$work/test_pcp" | tee "$work/tests.out"
vg=${PIPESTATUS[0]}
summary=$(grep -E '^c-tests: [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$work/tests.out" | tail -1)
if [ -s "$work/valgrind.log" ]; then
    cat "$work/valgrind.log" >&2
fi
[ $vg -eq 0 ] || fail "C tests under valgrind exited $vg (test failures, memory errors or leaks: see above)"
[ -n "$summary" ] || abort "the C tests printed no summary"
echo "valgrind: exit $vg, $(grep -c . "$work/valgrind.log" || true) lines of reports"
step "bad arguments to every exported function, under valgrind"
# Every function pcp.h declares must be exercised by test_bad_args.c.
uncovered=$(grep -oE '\bpcp_[a-z0-9_]+\(' include/pcp.h | tr -d '(' | sort -u | while read -r f; do
    grep -qE "\\b$f\\(" tests/c/test_bad_args.c || echo "$f"
done)
[ -z "$uncovered" ] || fail "functions without bad-argument calls in tests/c/test_bad_args.c: $uncovered"
# shellcheck disable=SC2046
if cc -std=c99 -g -Wall -Wextra -Werror tests/c/test_bad_args.c $(pkg-config --cflags --libs pcp_rs) -o "$work/test_bad_args"; then
    timeout 600 valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
        --suppressions=tests/c/valgrind.supp --log-file="$work/valgrind-bad-args.log" "$work/test_bad_args" 2>"$work/bad-args.err"
    brc=$?
    cat "$work/bad-args.err" | grep -v "^thread\|^note:\|panicked" || true
    [ -s "$work/valgrind-bad-args.log" ] && cat "$work/valgrind-bad-args.log" >&2
    [ $brc -eq 0 ] || fail "bad-argument calls (exit $brc: failed checks, memory errors or leaks: see above)"
else
    fail "building tests/c/test_bad_args.c"
fi

step "8 threads x 1000 mixed requests on one client (natively: too slow under valgrind)"
# shellcheck disable=SC2046
if cc -std=c99 -O1 -g -Wall -Wextra -Werror tests/c/test_concurrency.c $(pkg-config --cflags --libs pcp_rs) -lpthread \
    -o "$work/test_concurrency"; then
    timeout 120 "$work/test_concurrency" || fail "concurrency (exit $?: wrong answers, or a hang past 120 s)"
else
    fail "building tests/c/test_concurrency.c"
fi

step "hostile-answer table (tests/hostile/cases.json) under valgrind"
# shellcheck disable=SC2046
if cc -std=c99 -g -Wall -Wextra -Werror tests/c/test_hostile.c $(pkg-config --cflags --libs pcp_rs) -o "$work/test_hostile"; then
    timeout 600 valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
        --suppressions=tests/c/valgrind.supp --log-file="$work/valgrind-hostile.log" \
        "$work/test_hostile" tests/hostile/cases.json >"$work/hostile.out"
    hrc=$?
    grep -vE '^ok ' "$work/hostile.out"
    [ -s "$work/valgrind-hostile.log" ] && cat "$work/valgrind-hostile.log" >&2
    [ $hrc -eq 0 ] || fail "hostile table in C (exit $hrc: failed cases, memory errors or leaks: see above)"
else
    fail "building tests/c/test_hostile.c"
fi
passed=$(echo "$summary" | sed -E 's/c-tests: ([0-9]+) passed.*/\1/')
failed=$(echo "$summary" | sed -E 's/.* ([0-9]+) failed.*/\1/')
skipped=0
case "$summary" in *skipped) skipped=$(echo "$summary" | sed -E 's/.* ([0-9]+) skipped/\1/') ;; esac
if [ "$step_failures" -gt 0 ] && [ "$failed" -eq 0 ]; then
    echo "($step_failures build/header/example checks failed)"
fi
echo "c-tests: $passed passed, $((failed + step_failures)) failed$([ "$skipped" -gt 0 ] && echo ", $skipped skipped")"
[ "$failed" -eq 0 ] && [ "$step_failures" -eq 0 ]

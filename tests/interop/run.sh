#!/usr/bin/env bash
# Real-server interop suite: pcp-rs against miniupnpd (Debian's
# miniupnpd-nftables) in network namespaces this script creates.
#
#   sudo tests/interop/run.sh            # uses target/release/pcp
#
# Env: PCP_BIN (the pcp binary), PCP_C_EXAMPLE (C map_keep), PCP_PYTHON
# (a python with pcp_rs installed), PCP_NODE_PACKAGE (bindings/node dir).
# An example whose variable is unset is reported as a failure, not skipped:
# the top-level test command builds them all first.
#
# Ends with "interop: N passed, M failed". Without root, namespaces or
# miniupnpd it prints why it skipped; with CI=true a skip is a failure.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=netns.sh
. "$here/netns.sh"

if ! interop_require; then
    if [ "${CI:-}" = "true" ]; then
        echo "interop: 0 passed, 1 failed (prerequisites missing in CI)"
        exit 1
    fi
    echo "interop: skipped (see the reason above); this is not a pass"
    exit 0
fi

PCP_BIN="${PCP_BIN:-$root/target/release/pcp}"
[ -x "$PCP_BIN" ] || { echo "interop: $PCP_BIN not built (cargo build --release -p pcp-cli)"; exit 1; }

passed=0
failed=0
# Waits for a background pid for at most SECS, then kills it; returns its status.
wait_bounded() {
    local pid="$1" secs="$2" i
    for i in $(seq 1 $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}
ok()   { passed=$((passed + 1)); echo "ok   - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/       /'; }

trap interop_down EXIT
interop_up || { echo "interop: 0 passed, 1 failed (namespace setup)"; exit 1; }

# The whole suite is captured in the client namespace (eth0: client and
# miniupnpd; lo: client and the test server) and checked by capture.sh at
# the end. Started before miniupnpd, so that its start-up ANNOUNCE is in it.
capture_on=""
if command -v tshark >/dev/null 2>&1; then
    if interop_capture_start "$CLIENT_NS" "$CLIENT_IF" lo; then capture_on=1; else fail "tshark capture did not start" "$(cat "$INTEROP_TMP"/tshark-*.log)"; fi
elif [ "${CI:-}" = "true" ]; then
    fail "tshark is missing (apt-get install tshark): the capture checks cannot run"
else
    echo "SKIPPED: the tshark capture checks (no tshark: apt-get install tshark); this is not a pass"
fi
# capture_window NAME ... capture_window_end: a time span capture.sh looks at.
capture_window() { capture_window_name="$1" capture_window_t0=$(date +%s.%N); }
capture_window_end() { echo "$capture_window_name $capture_window_t0 $(date +%s.%N)" >>"$INTEROP_TMP/capture-windows"; }

miniupnpd_start "min_lifetime=60" "max_lifetime=86400" || {
    miniupnpd_log | tail -20
    echo "interop: 0 passed, 1 failed (miniupnpd did not start)"; exit 1; }

export XDG_STATE_HOME="$INTEROP_TMP/state"
pcp() { client_exec "$PCP_BIN" --timeout 5 "$@"; }
gw4="$GW_LAN_IP4"
gw6="[$GW_LAN_IP6]"
# jq-free JSON field reader for one-line objects.
field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }

# --- ANNOUNCE and discovery -------------------------------------------------
out=$(pcp --gateway "$gw4" --json announce 2>&1)
if echo "$out" | grep -q '"epoch"'; then ok "ANNOUNCE answered by miniupnpd"; else fail "ANNOUNCE" "$out"; fi

# shellcheck source=anycast.sh
. "$here/anycast.sh"

out=$(pcp --gateway "$gw4" --json external-address 2>&1)
if [ "$(echo "$out" | field external_ip 2>/dev/null)" = "$GW_EXT_IP4" ]; then ok "external address is $GW_EXT_IP4"; else fail "external address" "$out"; fi

# --- MAP TCP: a connection from outside reaches the client --------------------
client_tcp_listen 8080 60 hello-map >/dev/null
out=$(pcp --gateway "$gw4" --json map tcp 8080 --external-port 8080 --lifetime 600 2>&1)
port=$(echo "$out" | field external_port 2>/dev/null)
if [ "$(echo "$out" | field external_ip 2>/dev/null)" = "$GW_EXT_IP4" ] && [ -n "$port" ]; then
    ok "MAP TCP 8080 -> $GW_EXT_IP4:$port"
else
    fail "MAP TCP" "$out"; port=8080
fi
if nft_rules_for_port "$port" >/dev/null; then ok "miniupnpd installed a DNAT rule for $port"; else fail "DNAT rule for $port" "$(nft_ruleset)"; fi
reply=$(outside_tcp_connect "$GW_EXT_IP4" "$port" 2>&1)
if echo "$reply" | grep -q "hello-map"; then ok "outside TCP connection reached the client through the mapping"; else fail "outside connection through MAP" "$reply"; fi
out=$(pcp --gateway "$gw4" delete tcp 8080 2>&1)
if [ $? -eq 0 ] && ! nft_rules_for_port "$port" >/dev/null; then ok "delete (same nonce) removed the nftables rule"; else fail "delete" "$out"; fi
if ! outside_tcp_connect "$GW_EXT_IP4" "$port" >/dev/null 2>&1; then ok "after delete the port is closed"; else fail "port still open after delete"; fi

# --- MAP UDP with a dynamic port, and PEER ----------------------------------
out=$(pcp --gateway "$gw4" --json map udp 5353 --lifetime 600 2>&1)
uport=$(echo "$out" | field external_port 2>/dev/null)
if [ -n "$uport" ] && [ "$uport" != 0 ] && nft_rules_for_port "$uport" >/dev/null; then ok "MAP UDP with suggested port 0 got port $uport"; else fail "MAP UDP dynamic" "$out"; fi
pcp --gateway "$gw4" delete udp 5353 >/dev/null 2>&1 || fail "delete UDP"

out=$(pcp --gateway "$gw4" --json peer tcp 9000 "$OUT_IP4" 443 --lifetime 600 2>&1)
if [ "$(echo "$out" | field peer_ip 2>/dev/null)" = "$OUT_IP4" ] && [ "$(echo "$out" | field external_ip 2>/dev/null)" = "$GW_EXT_IP4" ]; then
    ok "PEER TCP 9000 -> $OUT_IP4:443 via $(echo "$out" | field external_port)"
else
    fail "PEER" "$out"
fi

# --- IPv6: MAP opens a pinhole ------------------------------------------------
client_tcp_listen 8081 60 hello-v6 >/dev/null
out=$(pcp --gateway "$gw6" --json map tcp 8081 --lifetime 600 2>&1)
if [ "$(echo "$out" | field external_ip 2>/dev/null)" = "$CLIENT_IP6" ]; then ok "IPv6 MAP opened a pinhole for $CLIENT_IP6:8081"; else fail "IPv6 MAP" "$out"; fi
reply=$(outside_tcp_connect "$CLIENT_IP6" 8081 2>&1)
if echo "$reply" | grep -q "hello-v6"; then ok "outside IPv6 connection reached the client through the pinhole"; else fail "IPv6 connection through pinhole" "$reply"; fi
pcp --gateway "$gw6" delete tcp 8081 >/dev/null 2>&1 && ok "IPv6 pinhole deleted" || fail "IPv6 delete"
out=$(pcp --gateway "$gw6" --json map udp 5354 --lifetime 600 2>&1)
if [ "$(echo "$out" | field external_ip 2>/dev/null)" = "$CLIENT_IP6" ] && nft_filter_rules_for_port 5354 >/dev/null \
   && pcp --gateway "$gw6" delete udp 5354 >/dev/null 2>&1 && ! nft_filter_rules_for_port 5354 >/dev/null; then
    ok "IPv6 MAP UDP 5354: pinhole opened and deleted"
else
    fail "IPv6 MAP UDP" "$out"
fi

# --- Options (THIRD_PARTY, PREFER_FAILURE, FILTER) and refusals ----------------
# shellcheck source=options.sh
. "$here/options.sh"

# --- A rebooted gateway: the client recreates its mapping by itself -----------
client_tcp_listen 8082 90 hello-again >/dev/null
keep_log="$INTEROP_TMP/keep.log"
# `ip netns exec` execs the command, so $! is pcp itself (not a subshell).
ip netns exec "$CLIENT_NS" "$PCP_BIN" --gateway "$gw4" --json map tcp 8082 --external-port 8082 --lifetime 600 --keep >"$keep_log" 2>&1 &
keep_pid=$!
_interop_add_helper "$keep_pid"
for _ in $(seq 1 50); do grep -q '"mapped"' "$keep_log" && break; sleep 0.1; done
if nft_rules_for_port 8082 >/dev/null; then ok "--keep holds MAP TCP 8082"; else fail "--keep mapping" "$(cat "$keep_log")"; fi
sleep 3   # let the epoch move on from the gateway's first seconds
miniupnpd_reboot "min_lifetime=60" "max_lifetime=86400" >/dev/null
t0=$(date +%s.%N)
recreated=""
for _ in $(seq 1 100); do   # <= 10 s
    if nft_rules_for_port 8082 >/dev/null; then recreated=1; break; fi
    sleep 0.1
done
took=$(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)")
if [ -n "$recreated" ]; then ok "after a gateway reboot the client recreated the mapping within ${took} s"; else fail "recreate after reboot (10 s)" "$(cat "$keep_log")"; fi
if grep -q '"renewed"' "$keep_log"; then ok "the recreation was reported as an event"; else fail "event after reboot" "$(cat "$keep_log")"; fi
reply=$(outside_tcp_connect "$GW_EXT_IP4" 8082 2>&1)
if echo "$reply" | grep -q "hello-again"; then ok "the recreated mapping carries traffic"; else fail "traffic after reboot" "$reply"; fi
kill -INT "$keep_pid" 2>/dev/null
wait_bounded "$keep_pid" 10
if grep -q '"deleted"' "$keep_log" && ! nft_rules_for_port 8082 >/dev/null; then ok "Ctrl-C on --keep deleted the mapping"; else fail "--keep cleanup" "$(tail -5 "$keep_log")"; fi

# --- NAT-PMP: forced, and the fallback on a NAT-PMP-only gateway --------------
# shellcheck source=natpmp.sh
. "$here/natpmp.sh"

# --- The test server's answers (for the capture check) -------------------------
# shellcheck source=testserver.sh
. "$here/testserver.sh"

# --- The classic example of every language, through a real mapping ----------
# Each prints "MAPPED ip port lifetime", holds, deletes, prints "DELETED".
check_example() {
    local name="$1" port="$2"; shift 2
    client_tcp_listen "$port" 60 "hello-$name" >/dev/null
    local log="$INTEROP_TMP/example-$name.log"
    ip netns exec "$CLIENT_NS" "$@" "$GW_LAN_IP4" "$port" 6 >"$log" 2>&1 &
    local pid=$!
    _interop_add_helper "$pid"
    local line=""
    for _ in $(seq 1 100); do line=$(grep -m1 '^MAPPED ' "$log"); [ -n "$line" ] && break; sleep 0.1; done
    if [ -z "$line" ]; then fail "$name example got no mapping" "$(cat "$log")"; kill "$pid" 2>/dev/null; return; fi
    local ip eport
    ip=$(echo "$line" | awk '{print $2}'); eport=$(echo "$line" | awk '{print $3}')
    local reply
    reply=$(outside_tcp_connect "$ip" "$eport" 2>&1)
    if echo "$reply" | grep -q "hello-$name"; then
        ok "$name classic example: outside connection to $ip:$eport reached the client"
    else
        fail "$name classic example: connection through its mapping" "$reply"
    fi
    wait_bounded "$pid" 20; local rc=$?
    if [ $rc -eq 0 ] && grep -q '^DELETED' "$log" && ! nft_rules_for_port "$eport" >/dev/null; then
        ok "$name classic example deleted its mapping and exited cleanly"
    else
        fail "$name classic example cleanup (exit $rc)" "$(cat "$log")"
    fi
}
if [ -n "${PCP_C_EXAMPLE:-}" ]; then check_example c 8090 "$PCP_C_EXAMPLE"; else fail "C example: PCP_C_EXAMPLE not set"; fi
if [ -n "${PCP_PYTHON:-}" ]; then check_example python 8091 "$PCP_PYTHON" "$root/examples/python/classic_map.py"; else fail "Python example: PCP_PYTHON not set"; fi
if [ -n "${PCP_NODE_PACKAGE:-}" ]; then check_example node 8092 env NODE_PATH="$(dirname "$PCP_NODE_PACKAGE")" node "$root/examples/node/classic_map.js"; else fail "Node example: PCP_NODE_PACKAGE not set"; fi

# --- Our own address: link-local gateway, renumbering (address.sh) ----------
# After the others: it restarts miniupnpd (short lifetimes).
# shellcheck source=address.sh
. "$here/address.sh"

# --- Every packet of the suite clean in tshark -----------------------------------
# shellcheck source=capture.sh
. "$here/capture.sh"

echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

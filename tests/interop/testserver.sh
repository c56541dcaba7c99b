# The test server's packets, for the capture check (capture.sh): `pcp serve`
# on the client namespace's own loopback (127.0.0.1 and ::1, port 5351),
# sourced by run.sh (it uses run.sh's ok/fail/field). Each kind of answer
# it can give once: MAP TCP/UDP, IPv4/IPv6, PEER, delete, ANNOUNCE, the
# options echoed, NOT_AUTHORIZED, CANNOT_PROVIDE_EXTERNAL, NAT-PMP.

serve_log4="$INTEROP_TMP/serve4.log" serve_log6="$INTEROP_TMP/serve6.log"
ip netns exec "$CLIENT_NS" timeout 60 "$PCP_BIN" --json serve --listen 127.0.0.1:5351 >"$serve_log4" 2>&1 &
serve_pids="$!"
ip netns exec "$CLIENT_NS" timeout 60 "$PCP_BIN" --json serve --listen '[::1]:5351' >"$serve_log6" 2>&1 &
serve_pids="$serve_pids $!"
for p in $serve_pids; do _interop_add_helper "$p"; done
for _ in $(seq 1 50); do   # <= 5 s
    grep -q serving "$serve_log4" && grep -q serving "$serve_log6" && break
    sleep 0.1
done
ts() { XDG_STATE_HOME="$INTEROP_TMP/state-ts" pcp --json "$@" 2>&1; }
ts_problems=""
expect() {   # expect WHAT JSON-OUTPUT PATTERN
    echo "$2" | grep -q "$3" || ts_problems="$ts_problems
$1: $2"
}
expect "MAP TCP, PREFER_FAILURE" "$(ts --gateway 127.0.0.1 map tcp 8200 --external-port 8200 --prefer-failure --lifetime 600)" '"external_port":8200'
expect "PREFER_FAILURE, port taken" "$(ts --gateway 127.0.0.1 map tcp 8201 --external-port 8200 --prefer-failure --lifetime 600)" '"CANNOT_PROVIDE_EXTERNAL"'
expect "MAP UDP, FILTER + THIRD_PARTY" "$(ts --gateway 127.0.0.1 map udp 8202 --filter 198.51.100.0/24:0 --third-party 127.0.0.5 --lifetime 600)" '"internal_ip":"127.0.0.5"'
expect "MAP TCP IPv6" "$(ts --gateway '[::1]' map tcp 8203 --lifetime 600)" '"mapped"'
expect "PEER IPv6" "$(ts --gateway '[::1]' peer udp 8204 2001:db8::9 443 --lifetime 600)" '"peer"'
expect "PEER IPv4" "$(ts --gateway 127.0.0.1 peer tcp 8205 198.51.100.9 443 --lifetime 600)" '"peer"'
expect "MAP with another nonce" "$(XDG_STATE_HOME="$INTEROP_TMP/state-ts2" pcp --json --gateway 127.0.0.1 map tcp 8200 --lifetime 600 2>&1)" '"NOT_AUTHORIZED"'
expect "delete" "$(ts --gateway 127.0.0.1 delete tcp 8200)" '"deleted"'
expect "ANNOUNCE" "$(ts --gateway 127.0.0.1 announce)" '"announce"'
expect "NAT-PMP" "$(ts --gateway 127.0.0.1 --protocol natpmp map tcp 8206 --lifetime 600)" '"natpmp"'
if [ -z "$ts_problems" ]; then
    ok "the test server answered each kind of request (MAP, PEER, delete, ANNOUNCE, options, 2 refusals, NAT-PMP; v4 and v6)"
else
    fail "requests to the test server" "$ts_problems
$(tail -5 "$serve_log4" "$serve_log6")"
fi
# Stop the servers: SIGTERM to each `pcp serve` (the child of its
# `timeout`), so that `timeout` exits by itself and nothing is SIGKILLed
# at teardown.
for p in $serve_pids; do
    # shellcheck disable=SC2046
    kill $(pgrep -P "$p") 2>/dev/null
    wait_bounded "$p" 3
done

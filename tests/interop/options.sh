# PCP options and refusals against miniupnpd, sourced by run.sh (it uses
# run.sh's ok/fail/pcp/field and netns.sh). Each option is also decoded in
# the capture (capture.sh). A check named "miniupnpd quirk" asserts what
# miniupnpd 2.3.1 does differently from RFC 6887 (and from our test server);
# if miniupnpd changes, the check fails and says so: then update the quirk
# list (tests/interop/README.md) rather than the client.

# --- THIRD_PARTY (section 13.1): a mapping for another host of the LAN ------------
# Its delete must carry the same THIRD_PARTY option: without it miniupnpd
# looks for a mapping of the client's own address and answers NO_RESOURCES.
out=$(pcp --gateway "$gw4" --json map tcp 8096 --third-party 192.168.77.50 --lifetime 600 2>&1)
tp_port=$(echo "$out" | field external_port 2>/dev/null)
if [ "$(echo "$out" | field internal_ip 2>/dev/null)" = 192.168.77.50 ] \
   && nft_rules_for_port "$tp_port" | grep -q "192.168.77.50:8096"; then
    ok "THIRD_PARTY over IPv4: miniupnpd forwards TCP 8096 to 192.168.77.50"
else
    fail "THIRD_PARTY IPv4" "$out"
fi
out=$(pcp --gateway "$gw4" delete --third-party 192.168.77.50 tcp 8096 2>&1)
if [ $? -eq 0 ] && ! nft_rules_for_port "${tp_port:-8096}" >/dev/null; then ok "delete --third-party removed the IPv4 third-party mapping"; else fail "delete of the IPv4 THIRD_PARTY mapping" "$out"; fi
out=$(pcp --gateway "$gw6" --json map tcp 8097 --third-party 2001:db8:77::50 --lifetime 600 2>&1)
if [ "$(echo "$out" | field internal_ip 2>/dev/null)" = 2001:db8:77::50 ] \
   && nft_filter_rules_for_port 8097 | grep -q 0x20010db8007700000000000000000050; then
    ok "THIRD_PARTY over IPv6: the pinhole is for 2001:db8:77::50"
else
    fail "THIRD_PARTY IPv6" "$out
$(nft_filter_rules_for_port 8097)"
fi
out=$(pcp --gateway "$gw6" delete --third-party 2001:db8:77::50 tcp 8097 2>&1)
if [ $? -eq 0 ] && ! nft_filter_rules_for_port 8097 >/dev/null; then ok "delete --third-party removed the IPv6 third-party pinhole"; else fail "delete of the IPv6 THIRD_PARTY pinhole" "$out"; fi

# --- PREFER_FAILURE (section 13.2) --------------------------------------------------
# miniupnpd quirk: for a taken suggested port it answers SUCCESS with another
# port instead of CANNOT_PROVIDE_EXTERNAL. pcp must fail with BAD_RESPONSE
# naming both ports, and delete the mapping miniupnpd made (engine/unwanted.rs):
# afterwards no rule of miniupnpd forwards to internal port 8099.
out=$(pcp --gateway "$gw4" --json map tcp 8098 --external-port 8098 --prefer-failure --lifetime 600 2>&1)
if [ "$(echo "$out" | field external_port 2>/dev/null)" = 8098 ]; then ok "PREFER_FAILURE with a free port: got 8098"; else fail "PREFER_FAILURE, free port" "$out"; fi
out=$(pcp --gateway "$gw4" --json map tcp 8099 --external-port 8098 --prefer-failure --lifetime 600 2>&1)
rc=$?
err=$(echo "$out" | grep '"event":"error"' | head -n 1)
code=$(echo "$err" | field error 2>/dev/null)
msg=$(echo "$err" | field message 2>/dev/null)
pf_port=$(echo "$msg" | sed -n 's/.*granted external port \([0-9]*\) instead of the suggested 8098.*/\1/p')
leftover=$(nft_ruleset | grep -E "192\.168\.77\.2:8099|dport 8099 " || true)
if [ "$rc" -ne 0 ] && [ "$code" = BAD_RESPONSE ] && [ -n "$pf_port" ] && [ "$pf_port" != 8098 ]; then
    ok "miniupnpd quirk: PREFER_FAILURE for a taken port 8098 answered SUCCESS with port $pf_port; pcp map --prefer-failure failed with BAD_RESPONSE naming both"
    if [ -z "$leftover" ] && ! nft_rules_for_port "$pf_port" >/dev/null; then
        ok "the mapping miniupnpd made against PREFER_FAILURE (port $pf_port) was deleted by the client: no nft rule left"
    else
        fail "the unwanted PREFER_FAILURE mapping (port $pf_port) is still on miniupnpd" "$leftover
$(nft_rules_for_port "$pf_port")"
    fi
elif [ "$rc" -ne 0 ] && [ "$code" = CANNOT_PROVIDE_EXTERNAL ]; then
    fail "miniupnpd quirk PREFER_FAILURE ignored: no longer seen, it answered CANNOT_PROVIDE_EXTERNAL (update the quirk list)" "$out"
else
    fail "pcp map --prefer-failure of a taken port: want BAD_RESPONSE naming the other port (rc $rc)" "$out
$leftover"
fi
pcp --gateway "$gw4" delete tcp 8098 >/dev/null 2>&1 || fail "delete TCP 8098"

# --- FILTER (section 13.3) ------------------------------------------------------------
client_tcp_listen 8100 30 hello-filter >/dev/null
out=$(pcp --gateway "$gw4" --json map tcp 8100 --external-port 8100 --filter 11.0.0.3/32:0 --lifetime 600 2>&1)
if [ "$(echo "$out" | field external_port 2>/dev/null)" = 8100 ]; then
    reply=$(outside_tcp_connect "$GW_EXT_IP4" 8100 2>&1)
    if echo "$reply" | grep -q hello-filter; then
        ok "miniupnpd quirk: MAP with FILTER 11.0.0.3/32 answered SUCCESS, yet $OUT_IP4 (outside the filter) still connects"
    else
        fail "miniupnpd quirk FILTER not enforced: no longer seen (update the quirk list)" "$reply"
    fi
    pcp --gateway "$gw4" delete tcp 8100 >/dev/null 2>&1 || fail "delete TCP 8100"
else
    fail "MAP with FILTER" "$out"
fi

# --- refusals ---------------------------------------------------------------------------
out=$(pcp --gateway "$gw6" --json peer udp 9001 "$OUT_IP6" 443 --lifetime 600 2>&1)
if echo "$out" | grep -q '"UNSUPP_OPCODE"'; then ok "miniupnpd quirk: PEER over IPv6 is answered UNSUPP_OPCODE, which pcp reports"; else fail "IPv6 PEER on miniupnpd" "$out"; fi

# Two owners of one mapping: another nonce takes it over (quirk), the first
# owner's delete is refused, and a delete of a mapping that is gone gets
# NO_RESOURCES (quirk: our test server answers SUCCESS).
st_a="$INTEROP_TMP/state-a" st_b="$INTEROP_TMP/state-b"
XDG_STATE_HOME="$st_a" pcp --gateway "$gw4" map tcp 8101 --lifetime 600 >/dev/null 2>&1
out=$(XDG_STATE_HOME="$st_b" pcp --gateway "$gw4" --json map tcp 8101 --lifetime 600 2>&1)
if [ "$(echo "$out" | field internal_port 2>/dev/null)" = 8101 ]; then ok "miniupnpd quirk: a MAP with another nonce takes an existing mapping over"; else fail "MAP with a second nonce" "$out"; fi
out=$(XDG_STATE_HOME="$st_a" pcp --gateway "$gw4" --json delete tcp 8101 2>&1)
if echo "$out" | grep -q '"NOT_AUTHORIZED"' && nft_rules_for_port 8101 >/dev/null; then ok "delete with the old nonce: NOT_AUTHORIZED, the mapping stays"; else fail "delete with a stale nonce" "$out"; fi
out=$(XDG_STATE_HOME="$st_b" pcp --gateway "$gw4" delete tcp 8101 2>&1)
if [ $? -eq 0 ] && ! nft_rules_for_port 8101 >/dev/null; then ok "delete with the current nonce removed it"; else fail "delete with the current nonce" "$out"; fi
out=$(XDG_STATE_HOME="$st_a" pcp --gateway "$gw4" --json delete tcp 8101 2>&1)
if echo "$out" | grep -q '"NO_RESOURCES"'; then ok "miniupnpd quirk: deleting a mapping that is gone answers NO_RESOURCES, which pcp reports"; else fail "delete of a deleted mapping" "$out"; fi

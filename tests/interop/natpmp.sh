# NAT-PMP (RFC 6886) against miniupnpd (enable_natpmp=yes), sourced by
# run.sh after the PCP checks (it uses run.sh's ok/fail/pcp and netns.sh).
#
# 1. The client forced to NAT-PMP maps TCP and UDP through miniupnpd; an
#    outside connection reaches it; delete removes the nftables rule.
# 2. The gateway made NAT-PMP-only: PCP packets (first payload byte not 0)
#    are rewritten statelessly to a small responder that answers NAT-PMP's
#    "unsupported version", while NAT-PMP packets still reach miniupnpd. The
#    client in automatic mode then gets its mapping through miniupnpd.

# --- forced NAT-PMP -------------------------------------------------------------
client_tcp_listen 8083 60 hello-natpmp >/dev/null
out=$(pcp --gateway "$gw4" --protocol natpmp --json map tcp 8083 --external-port 8083 --lifetime 600 2>&1)
nport=$(echo "$out" | field external_port 2>/dev/null)
if [ "$(echo "$out" | field protocol_version 2>/dev/null)" = natpmp ] \
   && [ "$(echo "$out" | field external_ip 2>/dev/null)" = "$GW_EXT_IP4" ] && [ -n "$nport" ]; then
    ok "NAT-PMP MAP TCP 8083 -> $GW_EXT_IP4:$nport (miniupnpd)"
else
    fail "NAT-PMP MAP TCP" "$out"; nport=8083
fi
if nft_rules_for_port "$nport" >/dev/null; then ok "miniupnpd installed a DNAT rule for the NAT-PMP mapping"; else fail "NAT-PMP DNAT rule" "$(nft_ruleset)"; fi
reply=$(outside_tcp_connect "$GW_EXT_IP4" "$nport" 2>&1)
if echo "$reply" | grep -q "hello-natpmp"; then ok "outside TCP connection reached the client through the NAT-PMP mapping"; else fail "outside connection through NAT-PMP" "$reply"; fi
out=$(pcp --gateway "$gw4" --protocol natpmp delete tcp 8083 2>&1)
if [ $? -eq 0 ] && ! nft_rules_for_port "$nport" >/dev/null; then ok "NAT-PMP delete (lifetime 0) removed the nftables rule"; else fail "NAT-PMP delete" "$out"; fi

out=$(pcp --gateway "$gw4" --protocol natpmp --json map udp 5355 --lifetime 600 2>&1)
nuport=$(echo "$out" | field external_port 2>/dev/null)
if [ -n "$nuport" ] && [ "$nuport" != 0 ] && nft_rules_for_port "$nuport" >/dev/null; then ok "NAT-PMP MAP UDP 5355 got port $nuport with a rule"; else fail "NAT-PMP MAP UDP" "$out"; fi
out=$(pcp --gateway "$gw4" --protocol natpmp delete udp 5355 2>&1)
if [ $? -eq 0 ] && ! nft_rules_for_port "$nuport" >/dev/null; then ok "NAT-PMP UDP delete removed its rule"; else fail "NAT-PMP UDP delete" "$out"; fi

# --- a NAT-PMP-only gateway ------------------------------------------------------
# The responder: answers every datagram with version 0, opcode 128+op,
# result 1 (unsupported version), the seconds it has been up. Bounded in
# time and count; it logs one line per answer.
responder_log="$INTEROP_TMP/natpmp-only.log"
gw_exec python3 - "$GW_LAN_IP4" 5399 >"$responder_log" 2>&1 <<'PY' &
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(1.0)
start = time.monotonic()
answered = 0
while time.monotonic() - start < 120 and answered < 200:
    try:
        data, peer = s.recvfrom(2048)
    except socket.timeout:
        continue
    if len(data) < 2 or data[0] == 0 or data[1] & 0x80:
        continue
    up = int(time.monotonic() - start)
    s.sendto(struct.pack("!BBHI", 0, 0x80 | (data[1] & 0x7F), 1, up), peer)
    answered += 1
    print("answered version %d opcode %d from %s" % (data[0], data[1] & 0x7F, peer[0]), flush=True)
PY
responder_pid=$!
_interop_add_helper "$responder_pid"
# Stateless (notrack) rewrite per packet, so that a PCP packet and a
# NAT-PMP one from the same client socket go different ways: @th,64,8 is
# the first byte of the UDP payload (the version).
gw_exec nft -f - <<EOF
table ip natpmp_only {
    chain pre {
        type filter hook prerouting priority raw; policy accept;
        iifname "$GW_LAN_IF" ip daddr $GW_LAN_IP4 udp dport 5351 @th,64,8 != 0 notrack udp dport set 5399
    }
    chain out {
        type filter hook output priority raw; policy accept;
        ip saddr $GW_LAN_IP4 udp sport 5399 notrack udp sport set 5351
    }
}
EOF
sleep 0.3
client_tcp_listen 8084 60 hello-fallback >/dev/null
out=$(pcp --gateway "$gw4" --json map tcp 8084 --external-port 8084 --lifetime 600 2>&1)
fport=$(echo "$out" | field external_port 2>/dev/null)
if [ "$(echo "$out" | field protocol_version 2>/dev/null)" = natpmp ] && [ -n "$fport" ] \
   && grep -q "answered version 2" "$responder_log"; then
    ok "auto mode on a NAT-PMP-only gateway: PCP refused, MAP TCP 8084 -> $GW_EXT_IP4:$fport over NAT-PMP"
else
    fail "auto fallback to NAT-PMP" "$out
$(cat "$responder_log")"; fport=8084
fi
reply=$(outside_tcp_connect "$GW_EXT_IP4" "$fport" 2>&1)
if echo "$reply" | grep -q "hello-fallback"; then ok "outside TCP connection reached the client through the fallback mapping"; else fail "traffic through the fallback mapping" "$reply"; fi
out=$(pcp --gateway "$gw4" --json --protocol pcp map tcp 8085 2>&1)
if echo "$out" | grep -q "UNSUPP_VERSION"; then ok "forced PCP on the NAT-PMP-only gateway reports UNSUPP_VERSION (version 0)"; else fail "forced PCP on NAT-PMP-only" "$out"; fi
out=$(pcp --gateway "$gw4" delete tcp 8084 2>&1)
if [ $? -eq 0 ] && ! nft_rules_for_port "$fport" >/dev/null; then ok "auto-mode delete on the NAT-PMP-only gateway removed the rule"; else fail "delete after fallback" "$out"; fi
gw_exec nft delete table ip natpmp_only
kill "$responder_pid" 2>/dev/null

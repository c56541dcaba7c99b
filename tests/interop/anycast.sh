# Discovery and the RFC 7723 anycast addresses, sourced by run.sh (it uses
# run.sh's ok/fail/pcp/field/capture_window and netns.sh). Discovery runs
# only inside the client namespace this suite created, never on the host's
# routing table.
#
# The gateway holds 192.0.0.9/32 and 2001:1::1/128 on its LAN interface and
# miniupnpd listens there too (netns.sh). The client's candidates are the
# routing table's default gateways, then the anycast addresses (RFC 6887
# section 8.1, RFC 7723 section 2).
#
# 1. The default gateway answers: `pcp discover`, a `pcp map` and a
#    `pcp delete` with no --gateway land on it, not on the anycast address.
#    capture.sh checks in the capture that the gateway probes left before
#    the anycast probes, and that the delete discovered only once.
# 2. The gateway's own addresses drop PCP (gw_pcp_block), only the IPv4
#    anycast address answers: `pcp map` with no --gateway discovers
#    192.0.0.9 and maps through it (DNAT rule, an outside connection gets
#    in). Then the same with only 2001:1::1 answering (a pinhole).

# --- 1. the default gateway answers: it wins -----------------------------------
capture_window discover-gateway-first
out=$(pcp --json discover 2>&1)
capture_window_end
gw=$(echo "$out" | field gateway 2>/dev/null)
case "$gw" in
    "$GW_LAN_IP4:5351"|"[$GW_LAN_IP6]:5351") ok "discovery from the client namespace's routing table found the default gateway $gw (not anycast)" ;;
    *) fail "discovery from the routing table (expected the default gateway)" "$out" ;;
esac

out=$(pcp --json map tcp 8093 --lifetime 600 2>&1)
mgw=$(echo "$out" | field gateway 2>/dev/null)
case "$mgw" in
    "$GW_LAN_IP4:5351"|"[$GW_LAN_IP6]:5351")
        ok "MAP with no server configured landed on the default gateway $mgw"
        # Without --gateway, delete discovers the server once (capture.sh
        # counts the probes), and it is the one the mapping was made on.
        capture_window delete-discovers-once
        out=$(pcp --json delete tcp 8093 2>&1)
        capture_window_end
        [ "$(echo "$out" | field gateway 2>/dev/null)" = "$mgw" ] && [ "$(echo "$out" | field event 2>/dev/null)" = deleted ] && ok "delete with no server configured found $mgw again and deleted TCP 8093" \
            || fail "delete TCP 8093 with no server configured" "$out" ;;
    *) fail "MAP with no server configured (expected the default gateway)" "$out" ;;
esac

# --- 2. only the anycast address answers ----------------------------------------
anycast_map() {
    local family="$1" answering="$2" port="$3" expect_ip="$4"; shift 4
    gw_pcp_block "$@" || { fail "gw_pcp_block $*"; return; }
    client_tcp_listen "$port" 30 "hello-anycast$family" >/dev/null
    capture_window "anycast-only-$family"
    local out
    out=$(pcp --json map tcp "$port" --external-port "$port" --lifetime 600 2>&1)
    capture_window_end
    local server="$answering:5351"
    [ "$family" = 6 ] && server="[$answering]:5351"
    if [ "$(echo "$out" | field gateway 2>/dev/null)" = "$server" ] \
       && [ "$(echo "$out" | field external_ip 2>/dev/null)" = "$expect_ip" ]; then
        ok "gateway silent, no server configured: pcp map discovered the IPv$family anycast $server and mapped TCP $port"
    else
        fail "IPv$family anycast discovery and MAP (expected $server)" "$out"
    fi
    local target="$GW_EXT_IP4" rule=nft_rules_for_port
    [ "$family" = 6 ] && { target="$CLIENT_IP6"; rule=nft_filter_rules_for_port; }
    local reply
    reply=$(outside_tcp_connect "$target" "$port" 2>&1)
    if $rule "$port" >/dev/null && echo "$reply" | grep -q "hello-anycast$family"; then
        ok "the IPv$family anycast mapping is real: rule in nftables, an outside connection reached the client"
    else
        fail "IPv$family anycast mapping carries traffic" "$reply
$(nft_ruleset | grep -n "$port")"
    fi
    out=$(pcp --gateway "$server" delete tcp "$port" 2>&1)
    if [ $? -eq 0 ] && ! $rule "$port" >/dev/null; then ok "delete via the IPv$family anycast address removed the rule"; else fail "delete via $server" "$out"; fi
}
anycast_map 4 "$ANYCAST_IP4" 8094 "$GW_EXT_IP4" "$GW_LAN_IP4" "$GW_LAN_IP6" "$ANYCAST_IP6"
anycast_map 6 "$ANYCAST_IP6" 8095 "$CLIENT_IP6" "$GW_LAN_IP4" "$GW_LAN_IP6" "$ANYCAST_IP4"
gw_pcp_unblock

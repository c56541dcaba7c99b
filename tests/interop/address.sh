# Our own address, against miniupnpd; sourced by run.sh (it uses run.sh's
# ok/fail/pcp/field/wait_bounded and netns.sh). RFC 6887 sections 8, 11.5.
#
# 1. Link-local gateway: the client namespace's IPv6 default route goes via
#    the gateway's link-local address, and the client has, besides its
#    global address, a ULA, a deprecated global address and a temporary
#    one (which the kernel itself would prefer). A MAP to the
#    link-local server (fe80::...%eth0), and one found by discovery, make a
#    pinhole for the stable global address: never the link-local source
#    the kernel would pick, not the ULA, the deprecated or the temporary one.
# 2. Renumbering: `pcp map --keep` holds a mapping; the client namespace's
#    IPv4 address changes (ip addr add/del); before its next renewal the
#    client notices, reports internal_ip_changed, and miniupnpd's DNAT
#    rule then points at the new address.
# 3. IPv6 renumbering under the link-local server: the chosen global
#    address goes, another comes; the socket is bound to the new choice
#    and the pinhole is made for it.
#
# miniupnpd (which netns.sh starts without ipv6_listening_ip, so bound to
# [::]:5351 and hearing its link-local address too) is restarted for this
# block with short lifetimes: renewals within seconds. The addresses and
# routes are put back at the end.

address_ula6="fd77::2"
address_deprecated6="2001:db8:77::99"
address_new4="192.168.77.3"
# has_event FILE EVENT KEY=VALUE...: a JSON line of FILE is that event with those fields.
has_event() {
    python3 - "$@" <<'PY'
import json, sys
path, kind, want = sys.argv[1], sys.argv[2], dict(a.split("=", 1) for a in sys.argv[3:])
for line in open(path):
    try:
        ev = json.loads(line)
    except ValueError:
        continue
    if ev.get("event") == kind and all(str(ev.get(k)) == v for k, v in want.items()):
        sys.exit(0)
sys.exit(1)
PY
}

miniupnpd_stop
if ! miniupnpd_start "min_lifetime=4" "max_lifetime=86400"; then
    fail "miniupnpd restart for the address checks" "$(miniupnpd_log | tail -20)"
fi

# --- 1. link-local gateway ------------------------------------------------------
ip -n "$CLIENT_NS" -6 addr add "$address_ula6/64" dev "$CLIENT_IF" nodad
ip -n "$CLIENT_NS" -6 addr add "$address_deprecated6/64" dev "$CLIENT_IF" nodad preferred_lft 0
ip -n "$CLIENT_NS" -6 route replace default via "$GW_LAN_LL6" dev "$CLIENT_IF"
# The premise: a UDP socket connected to the link-local server (what the
# client did before) gets a link-local source from the kernel (RFC 6724
# rule 2), once the client's own link-local address has passed duplicate
# address detection (until then it is no candidate: wait, bounded).
for _ in $(seq 1 50); do
    [ -n "$(ip -n "$CLIENT_NS" -6 -o addr show dev "$CLIENT_IF" scope link -tentative 2>/dev/null)" ] && break
    sleep 0.1
done
ll_src=$(client_exec python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.connect((sys.argv[1], 5351, 0, socket.if_nametoindex(sys.argv[2]))); print(s.getsockname()[0])' "$GW_LAN_LL6" "$CLIENT_IF" 2>&1)
# A temporary (privacy, RFC 8981) address too: the kernel makes one from an
# address flagged mngtmpaddr when use_tempaddr > 0 (2: and prefers it as a
# source); accept_dad=0 so that it is usable at once.
ip netns exec "$CLIENT_NS" sysctl -qw "net.ipv6.conf.$CLIENT_IF.accept_dad=0" "net.ipv6.conf.$CLIENT_IF.use_tempaddr=2"
ip -n "$CLIENT_NS" -6 addr change "$CLIENT_IP6/64" dev "$CLIENT_IF" nodad mngtmpaddr
temporary6=""
for _ in $(seq 1 30); do
    temporary6=$(ip -n "$CLIENT_NS" -6 -o addr show dev "$CLIENT_IF" temporary -tentative 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -1)
    [ -n "$temporary6" ] && break
    sleep 0.1
done
kernel_src=$(ip -n "$CLIENT_NS" -6 route get 2001:db8:11::2 2>/dev/null | grep -o 'src [^ ]*' | cut -d' ' -f2)
if [ -n "$temporary6" ] && [ "$kernel_src" = "$temporary6" ]; then
    ok "the client has a temporary address $temporary6, which the kernel itself prefers as a source"
else
    fail "temporary address for the stable-over-temporary check (temporary '$temporary6', kernel source '$kernel_src')" \
        "$(ip -n "$CLIENT_NS" -6 addr show dev "$CLIENT_IF")"
fi
route=$(ip -n "$CLIENT_NS" -6 route get 2001:db8:11::2 2>&1)
case "$route" in
    *"via $GW_LAN_LL6"*)
        case "$ll_src" in
            fe80:*) ok "client IPv6 default route via the gateway's link-local $GW_LAN_LL6 (the kernel's source towards it: $ll_src)" ;;
            *) fail "the kernel's source towards the link-local gateway is not link-local" "$ll_src" ;;
        esac ;;
    *) fail "IPv6 default route via link-local" "$route" ;;
esac

ll_server="[$GW_LAN_LL6%$CLIENT_IF]"
client_tcp_listen 8095 60 hello-linklocal >/dev/null
out=$(pcp --gateway "$ll_server" --json map tcp 8095 --lifetime 600 2>&1)
internal=$(echo "$out" | field internal_ip 2>/dev/null)
if [ "$internal" = "$CLIENT_IP6" ]; then
    ok "MAP via the link-local server $ll_server names the stable global $CLIENT_IP6 (not link-local, ULA, deprecated or temporary)"
else
    fail "MAP via the link-local server: internal address $internal, want $CLIENT_IP6" "$out"
fi
# miniupnpd prints the pinhole's internal address in its rule as hex.
hex6=$(python3 -c 'import ipaddress,sys; print("0x" + ipaddress.ip_address(sys.argv[1]).packed.hex())' "$CLIENT_IP6")
rules=$(nft_filter_rules_for_port 8095 2>&1)
if echo "$rules" | grep -q "$hex6\|$CLIENT_IP6"; then
    ok "miniupnpd's pinhole for port 8095 is for $CLIENT_IP6"
else
    fail "pinhole rule for $CLIENT_IP6" "$rules"
fi
reply=$(outside_tcp_connect "$CLIENT_IP6" 8095 2>&1)
if echo "$reply" | grep -q hello-linklocal; then ok "outside TCP connection reached [$CLIENT_IP6]:8095 through that pinhole"; else fail "connection through the link-local-made pinhole" "$reply"; fi
out=$(pcp --gateway "$ll_server" delete tcp 8095 2>&1) && echo "$out" | grep -q "^deleted" || fail "delete via the link-local server" "$out"

# Discovery with only the IPv6 default route (no IPv4 default, no routes to
# the RFC 7723 anycast addresses): the routing table's link-local gateway.
ip -n "$CLIENT_NS" -4 route del default 2>/dev/null
ip -n "$CLIENT_NS" -4 route del "$ANYCAST_IP4/32" 2>/dev/null
ip -n "$CLIENT_NS" -6 route del "$ANYCAST_IP6/128" 2>/dev/null
out=$(pcp --json map tcp 8096 --lifetime 600 2>&1)
internal=$(echo "$out" | field internal_ip 2>/dev/null)
gateway=$(echo "$out" | field gateway 2>/dev/null)
case "$gateway" in
    "[$GW_LAN_LL6%"*) gw_ok=1 ;;
    *) gw_ok="" ;;
esac
if [ -n "$gw_ok" ] && [ "$internal" = "$CLIENT_IP6" ]; then
    ok "discovered link-local server $gateway: MAP names $CLIENT_IP6"
else
    fail "MAP through discovery of the link-local gateway (gateway $gateway, internal $internal)" "$out"
fi
out=$(pcp delete tcp 8096 2>&1) && echo "$out" | grep -q "^deleted" || fail "delete through discovery" "$out"
ip -n "$CLIENT_NS" -4 route replace default via "$GW_LAN_IP4" dev "$CLIENT_IF"
ip -n "$CLIENT_NS" -6 route replace default via "$GW_LAN_IP6" dev "$CLIENT_IF"
ip -n "$CLIENT_NS" -4 route replace "$ANYCAST_IP4/32" via "$GW_LAN_IP4" dev "$CLIENT_IF"
ip -n "$CLIENT_NS" -6 route replace "$ANYCAST_IP6/128" via "$GW_LAN_IP6" dev "$CLIENT_IF"
ip -n "$CLIENT_NS" -6 addr del "$address_ula6/64" dev "$CLIENT_IF"
ip -n "$CLIENT_NS" -6 addr del "$address_deprecated6/64" dev "$CLIENT_IF"
ip netns exec "$CLIENT_NS" sysctl -qw "net.ipv6.conf.$CLIENT_IF.use_tempaddr=0"
ip -n "$CLIENT_NS" -6 addr change "$CLIENT_IP6/64" dev "$CLIENT_IF" nodad
[ -n "$temporary6" ] && ip -n "$CLIENT_NS" -6 addr del "$temporary6/64" dev "$CLIENT_IF" 2>/dev/null

# --- 2. renumbering -------------------------------------------------------------
renum_log="$INTEROP_TMP/renumber.log"
ip netns exec "$CLIENT_NS" "$PCP_BIN" --gateway "$gw4" --json map tcp 8097 --lifetime 6 --keep >"$renum_log" 2>&1 &
renum_pid=$!
_interop_add_helper "$renum_pid"
for _ in $(seq 1 50); do grep -q '"mapped"' "$renum_log" && break; sleep 0.1; done
if nft_rules_for_port 8097 | grep -q "$CLIENT_IP4:8097"; then ok "--keep holds MAP TCP 8097 for $CLIENT_IP4"; else fail "--keep mapping 8097" "$(cat "$renum_log")"; fi
# The new address first (kept when the old one goes: promote_secondaries).
ip netns exec "$CLIENT_NS" sysctl -qw "net.ipv4.conf.$CLIENT_IF.promote_secondaries=1"
ip -n "$CLIENT_NS" addr add "$address_new4/24" dev "$CLIENT_IF"
ip -n "$CLIENT_NS" addr del "$CLIENT_IP4/24" dev "$CLIENT_IF"
ip -n "$CLIENT_NS" -4 route replace default via "$GW_LAN_IP4" dev "$CLIENT_IF"
# Lifetime 6: the renewal is due within 3.75 s; allow 15 s.
moved=""
for _ in $(seq 1 150); do
    # (Its external port may differ: the old address's mapping holds 8097
    # at miniupnpd until it expires.)
    if has_event "$renum_log" internal_ip_changed "new=$address_new4" \
       && nft_ruleset | grep -q "dnat ip to $address_new4:8097"; then moved=1; break; fi
    sleep 0.1
done
if has_event "$renum_log" internal_ip_changed "old=$CLIENT_IP4" "new=$address_new4"; then
    ok "after renumbering the client reported internal_ip_changed $CLIENT_IP4 -> $address_new4"
else
    fail "internal_ip_changed event after renumbering (15 s)" "$(cat "$renum_log")"
fi
if [ -n "$moved" ]; then
    ok "miniupnpd has a DNAT rule to $address_new4:8097 (the mapping made again from the new address)"
else
    fail "mapping recreated from $address_new4" "$(nft_ruleset 2>&1 | grep dnat; tail -5 "$renum_log")"
fi
kill -INT "$renum_pid" 2>/dev/null
wait_bounded "$renum_pid" 10
if ! nft_ruleset | grep -q "dnat ip to $address_new4:8097"; then ok "Ctrl-C deleted the renumbered mapping"; else fail "delete after renumbering" "$(tail -5 "$renum_log")"; fi
ip -n "$CLIENT_NS" addr add "$CLIENT_IP4/24" dev "$CLIENT_IF"
ip -n "$CLIENT_NS" addr del "$address_new4/24" dev "$CLIENT_IF"
ip -n "$CLIENT_NS" -4 route replace default via "$GW_LAN_IP4" dev "$CLIENT_IF"

# --- 3. IPv6 renumbering towards the link-local server ----------------------------
# The stable global address the client chose goes away and another comes:
# the socket is bound anew to the new choice, and the pinhole follows.
address_new6="2001:db8:77::5"
renum6_log="$INTEROP_TMP/renumber6.log"
ip netns exec "$CLIENT_NS" "$PCP_BIN" --gateway "$ll_server" --json map tcp 8098 --lifetime 6 --keep >"$renum6_log" 2>&1 &
renum6_pid=$!
_interop_add_helper "$renum6_pid"
for _ in $(seq 1 50); do grep -q '"mapped"' "$renum6_log" && break; sleep 0.1; done
if has_event "$renum6_log" mapped "internal_ip=$CLIENT_IP6"; then ok "--keep via $ll_server holds MAP TCP 8098 for $CLIENT_IP6"; else fail "--keep via the link-local server" "$(cat "$renum6_log")"; fi
ip -n "$CLIENT_NS" -6 addr add "$address_new6/64" dev "$CLIENT_IF" nodad
ip -n "$CLIENT_NS" -6 addr del "$CLIENT_IP6/64" dev "$CLIENT_IF"
new_hex6=$(python3 -c 'import ipaddress,sys; print("0x" + ipaddress.ip_address(sys.argv[1]).packed.hex())' "$address_new6")
moved6=""
for _ in $(seq 1 150); do
    if has_event "$renum6_log" internal_ip_changed "old=$CLIENT_IP6" "new=$address_new6" \
       && nft_filter_rules_for_port 8098 2>/dev/null | grep -q "$new_hex6\|$address_new6"; then moved6=1; break; fi
    sleep 0.1
done
if [ -n "$moved6" ]; then
    ok "IPv6 renumbering ($CLIENT_IP6 -> $address_new6) under a link-local server: event reported, pinhole made for the new address"
else
    fail "IPv6 renumbering under the link-local server (15 s)" "$(nft_filter_rules_for_port 8098 2>&1; cat "$renum6_log")"
fi
kill -INT "$renum6_pid" 2>/dev/null
wait_bounded "$renum6_pid" 10
if has_event "$renum6_log" deleted; then ok "Ctrl-C deleted the renumbered IPv6 mapping"; else fail "delete after IPv6 renumbering" "$(tail -5 "$renum6_log")"; fi
ip -n "$CLIENT_NS" -6 addr add "$CLIENT_IP6/64" dev "$CLIENT_IF" nodad
ip -n "$CLIENT_NS" -6 addr del "$address_new6/64" dev "$CLIENT_IF"
ip -n "$CLIENT_NS" -6 route replace default via "$GW_LAN_IP6" dev "$CLIENT_IF"

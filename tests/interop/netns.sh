# shellcheck shell=bash
# tests/interop/netns.sh -- network-namespace harness for the real-server
# (miniupnpd) PCP interop suite.  Meant to be `source`d by bash scripts; it
# does not change shell options of the caller.
#
# NETWORK RULE: everything here happens inside three network namespaces this
# file creates (veth pairs are created directly inside them); nothing is added
# to the root namespace and no packet is sent to the host's real network.
#
# Usage:
#     . tests/interop/netns.sh
#     interop_require || exit 0        # prints "SKIPPED: <reason>"
#     trap interop_down EXIT
#     interop_up
#     miniupnpd_start
#     client_exec some-pcp-client --server "$GW_LAN_IP4" ...
#
# Functions
#   interop_require            root, ip netns, nft, miniupnpd, python3, ss present?
#                              On failure prints "SKIPPED: <reason>", returns 1.
#   interop_up                 create namespaces, veths, addresses, routes,
#                              forwarding and the gateway's nftables ruleset.
#   interop_down               stop miniupnpd and helpers, delete namespaces and
#                              the temp dir.  Idempotent; use `trap interop_down EXIT`.
#   miniupnpd_start [EXTRA_CONF_LINE...]
#                              write the config, run `miniupnpd -d` in the
#                              gateway namespace, wait (<=5 s) for UDP 5351.
#                              Extra arguments are appended to the config file
#                              verbatim (e.g. "min_lifetime=60").
#   miniupnpd_stop             SIGTERM (then SIGKILL after 3 s) miniupnpd.
#   miniupnpd_restart [...]    stop + start: the epoch goes back to 0 and it
#                              multicasts an unsolicited ANNOUNCE; mappings come
#                              back from the lease file, nft rules stay (see
#                              README for a v6-pinhole reload bug).
#   miniupnpd_reboot [...]     stop, flush miniupnpd's nft chains, delete the
#                              lease files, start: a router that lost all state.
#   nft_flush_miniupnpd        empty chains miniupnpd, prerouting_miniupnpd,
#                              postrouting_miniupnpd.
#   miniupnpd_log              print miniupnpd's log (stdout+stderr of -d).
#   nft_ruleset                print the gateway's whole nftables ruleset.
#   nft_rules_for_port PORT    print the DNAT rule(s) for external PORT in the
#                              gateway's nat chain; returns 0 iff there is one.
#   nft_filter_rules_for_port PORT
#                              print the forward-filter accept rule(s) that
#                              mention PORT (IPv4 mappings and IPv6 pinholes
#                              both land in chain `miniupnpd`); 0 iff found.
#   client_exec CMD... / gw_exec CMD... / outside_exec CMD...
#                              run CMD inside that namespace.
#   client_tcp_listen PORT [SECONDS] [BANNER]
#                              background dual-stack (v4+v6) TCP listener in the
#                              client namespace; each accepted connection gets
#                              "BANNER from <peer>\n".  Exits after SECONDS
#                              (default 30) or 20 connections.  Waits until it
#                              is listening.  Pid tracked, killed by interop_down.
#   outside_tcp_connect IP PORT [DATA]
#                              from the outside namespace: TCP connect (3 s
#                              timeout), send DATA if given, print what comes
#                              back (<=3 s).  Returns 0 iff connected.
#                              IP may be IPv4 or IPv6.
#   gw_pcp_block ADDR...       the gateway drops PCP (UDP 5351) sent to these of
#                              its addresses (nft table inet pcp_block, input);
#                              miniupnpd keeps running and still answers the
#                              others.  gw_pcp_unblock removes the table.
#   interop_capture_start [NS] [IFACE...]  tshark capture of udp 5350/5351
#                              (default: gateway namespace, LAN interface) to
#                              $INTEROP_TMP/pcp-<ns>.pcap (several interfaces:
#                              one pcapng).
#   interop_capture_stop       stop it; then `tshark -r FILE -V` to decode.
#
# Exported variables (after interop_up)
#   INTEROP_TMP                per-run temp dir (config, log, lease files, pcaps)
#   CLIENT_NS GW_NS OUT_NS     namespace names (pcprs<pid><rand>c / g / o)
#   CLIENT_IF                  client's LAN interface (eth0)
#   GW_LAN_IF GW_WAN_IF        gateway's interfaces (lan0, wan0)
#   OUT_IF                     outside's interface (eth0)
#   CLIENT_IP4  GW_LAN_IP4     192.168.77.2  192.168.77.1      (LAN /24)
#   GW_WAN_IP4  OUT_IP4        11.0.0.1      11.0.0.2          (WAN /24)
#   CLIENT_IP6  GW_LAN_IP6     2001:db8:77::2  2001:db8:77::1  (LAN /64)
#   GW_WAN_IP6  OUT_IP6        2001:db8:11::1  2001:db8:11::2  (WAN /64)
#   GW_LAN_LL6                 gateway's link-local address on the LAN
#   ANYCAST_IP4 ANYCAST_IP6    192.0.0.9  2001:1::1: the RFC 7723 PCP anycast
#                              addresses, on the gateway's LAN interface (/32,
#                              /128), routed to it from the client namespace
#   GW_EXT_IP4                 = GW_WAN_IP4, the external address miniupnpd uses
#   MINIUPNPD_CONF MINIUPNPD_LOG MINIUPNPD_PID
#
# Routing: client default routes (v4 and v6) go via the gateway's LAN address;
# gateway forwards v4 and v6 and masquerades LAN->WAN IPv4; outside has no
# route to 192.168.77.0/24 (only DNAT mappings reach the client over IPv4) but
# has a route to 2001:db8:77::/64 via the gateway (IPv6 is not NATed; only a
# pinhole lets a new inbound connection through the forward chain, whose
# policy is drop).

INTEROP_NS_PREFIX_DEFAULT="pcprs"

interop_require() {
    local missing=""
    if [ "$(id -u)" != "0" ]; then
        echo "SKIPPED: interop tests need root (network namespaces, nftables)"
        return 1
    fi
    command -v ip >/dev/null 2>&1 || missing="$missing ip(iproute2)"
    command -v nft >/dev/null 2>&1 || missing="$missing nft(nftables)"
    command -v ss >/dev/null 2>&1 || missing="$missing ss(iproute2)"
    command -v python3 >/dev/null 2>&1 || missing="$missing python3"
    if ! command -v miniupnpd >/dev/null 2>&1 && [ ! -x /usr/sbin/miniupnpd ]; then
        missing="$missing miniupnpd(apt-get install miniupnpd-nftables)"
    fi
    if [ -n "$missing" ]; then
        echo "SKIPPED: missing tools:$missing"
        return 1
    fi
    if ! ip netns list >/dev/null 2>&1; then
        echo "SKIPPED: 'ip netns' does not work here"
        return 1
    fi
    if ! _interop_miniupnpd --version 2>&1 | grep -q nftables; then
        echo "SKIPPED: miniupnpd is not the nftables build (need miniupnpd-nftables)"
        return 1
    fi
    # Probe that we may actually create a namespace (containers may forbid it).
    local probe="pcprsprobe$$"
    if ! ip netns add "$probe" 2>/dev/null; then
        echo "SKIPPED: cannot create network namespaces (no CAP_SYS_ADMIN?)"
        return 1
    fi
    ip netns del "$probe" 2>/dev/null
    return 0
}

_interop_miniupnpd() {
    if command -v miniupnpd >/dev/null 2>&1; then
        miniupnpd "$@"
    else
        /usr/sbin/miniupnpd "$@"
    fi
}

_interop_python() {
    # Resolve a real interpreter path once (pyenv shims work too, but resolving
    # avoids surprises inside `ip netns exec`).
    if [ -z "${INTEROP_PYTHON:-}" ]; then
        INTEROP_PYTHON="$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)"
        [ -n "$INTEROP_PYTHON" ] || INTEROP_PYTHON=python3
        export INTEROP_PYTHON
    fi
    echo "$INTEROP_PYTHON"
}

client_exec()  { ip netns exec "$CLIENT_NS" "$@"; }
gw_exec()      { ip netns exec "$GW_NS" "$@"; }
outside_exec() { ip netns exec "$OUT_NS" "$@"; }

interop_up() {
    if [ -n "${INTEROP_UP:-}" ]; then
        echo "interop_up: already up ($GW_NS)" >&2
        return 0
    fi
    local pfx="${INTEROP_NS_PREFIX:-$INTEROP_NS_PREFIX_DEFAULT}$$$((RANDOM % 1000))"
    export CLIENT_NS="${pfx}c" GW_NS="${pfx}g" OUT_NS="${pfx}o"
    export CLIENT_IF=eth0 GW_LAN_IF=lan0 GW_WAN_IF=wan0 OUT_IF=eth0
    export CLIENT_IP4=192.168.77.2 GW_LAN_IP4=192.168.77.1
    export GW_WAN_IP4=11.0.0.1 OUT_IP4=11.0.0.2 GW_EXT_IP4=11.0.0.1
    export CLIENT_IP6=2001:db8:77::2 GW_LAN_IP6=2001:db8:77::1
    export GW_WAN_IP6=2001:db8:11::1 OUT_IP6=2001:db8:11::2
    export LAN_NET4=192.168.77.0/24 LAN_NET6=2001:db8:77::/64
    export ANYCAST_IP4=192.0.0.9 ANYCAST_IP6=2001:1::1
    INTEROP_TMP="$(mktemp -d "/tmp/pcprs-interop.XXXXXX")" || return 1
    export INTEROP_TMP
    export MINIUPNPD_CONF="$INTEROP_TMP/miniupnpd.conf"
    export MINIUPNPD_LOG="$INTEROP_TMP/miniupnpd.log"
    export MINIUPNPD_PID=""
    INTEROP_HELPER_PIDS=""
    INTEROP_UP=1

    _interop_up_inner || {
        echo "interop_up: setup failed, tearing down" >&2
        interop_down
        return 1
    }
}

_interop_up_inner() {
    local ns
    for ns in "$CLIENT_NS" "$GW_NS" "$OUT_NS"; do
        ip netns add "$ns" || return 1
        ip -n "$ns" link set lo up || return 1
    done

    # veth pairs created inside the gateway namespace, peer moved straight to
    # the other namespace: nothing ever exists in the root namespace.
    ip -n "$GW_NS" link add "$GW_LAN_IF" type veth peer name "$CLIENT_IF" netns "$CLIENT_NS" || return 1
    ip -n "$GW_NS" link add "$GW_WAN_IF" type veth peer name "$OUT_IF" netns "$OUT_NS" || return 1

    # sysctls are per network namespace.
    gw_exec sysctl -qw net.ipv4.ip_forward=1 || return 1
    gw_exec sysctl -qw net.ipv6.conf.all.forwarding=1 || return 1
    for ns in "$CLIENT_NS" "$OUT_NS"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_ra=0
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_ra=0
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.accept_ra=0
    done

    ip -n "$CLIENT_NS" addr add "$CLIENT_IP4/24" dev "$CLIENT_IF" || return 1
    ip -n "$CLIENT_NS" addr add "$CLIENT_IP6/64" dev "$CLIENT_IF" nodad || return 1
    ip -n "$GW_NS" addr add "$GW_LAN_IP4/24" dev "$GW_LAN_IF" || return 1
    ip -n "$GW_NS" addr add "$GW_LAN_IP6/64" dev "$GW_LAN_IF" nodad || return 1
    ip -n "$GW_NS" addr add "$GW_WAN_IP4/24" dev "$GW_WAN_IF" || return 1
    ip -n "$GW_NS" addr add "$GW_WAN_IP6/64" dev "$GW_WAN_IF" nodad || return 1
    ip -n "$OUT_NS" addr add "$OUT_IP4/24" dev "$OUT_IF" || return 1
    ip -n "$OUT_NS" addr add "$OUT_IP6/64" dev "$OUT_IF" nodad || return 1

    ip -n "$CLIENT_NS" link set "$CLIENT_IF" up || return 1
    ip -n "$GW_NS" link set "$GW_LAN_IF" up || return 1
    ip -n "$GW_NS" link set "$GW_WAN_IF" up || return 1
    ip -n "$OUT_NS" link set "$OUT_IF" up || return 1

    ip -n "$CLIENT_NS" route add default via "$GW_LAN_IP4" dev "$CLIENT_IF" || return 1
    ip -n "$CLIENT_NS" -6 route add default via "$GW_LAN_IP6" dev "$CLIENT_IF" || return 1
    # RFC 7723 anycast: the gateway holds 192.0.0.9 and 2001:1::1 itself (it
    # is the nearest PCP-aware middlebox), and the client has host routes to
    # it, as an operator's network routes the anycast prefixes to its NAT.
    ip -n "$GW_NS" addr add "$ANYCAST_IP4/32" dev "$GW_LAN_IF" || return 1
    ip -n "$GW_NS" addr add "$ANYCAST_IP6/128" dev "$GW_LAN_IF" nodad || return 1
    ip -n "$CLIENT_NS" route add "$ANYCAST_IP4/32" via "$GW_LAN_IP4" dev "$CLIENT_IF" || return 1
    ip -n "$CLIENT_NS" -6 route add "$ANYCAST_IP6/128" via "$GW_LAN_IP6" dev "$CLIENT_IF" || return 1
    # Gateway's upstream is the outside namespace (all inside our namespaces).
    ip -n "$GW_NS" route add default via "$OUT_IP4" dev "$GW_WAN_IF" || return 1
    ip -n "$GW_NS" -6 route add default via "$OUT_IP6" dev "$GW_WAN_IF" || return 1
    # IPv6 is routed, not NATed: the outside knows the LAN prefix.
    ip -n "$OUT_NS" -6 route add "$LAN_NET6" via "$GW_WAN_IP6" dev "$OUT_IF" || return 1

    # Link-local address of the gateway's LAN side (bounded wait: <=3 s).
    local i
    GW_LAN_LL6=""
    for i in $(seq 1 30); do
        GW_LAN_LL6="$(ip -n "$GW_NS" -6 -o addr show dev "$GW_LAN_IF" scope link 2>/dev/null \
            | awk '{print $4}' | cut -d/ -f1 | head -n1)"
        [ -n "$GW_LAN_LL6" ] && break
        sleep 0.1
    done
    export GW_LAN_LL6

    _interop_nft_init || return 1
    return 0
}

_interop_nft_init() {
    # Ruleset layout expected by miniupnpd-nftables 2.3.1 defaults:
    # upnp_table_name=filter, upnp_nat_table_name=filter (family inet),
    # upnp_forward_chain=miniupnpd, upnp_nat_chain=prerouting_miniupnpd,
    # upnp_nat_postrouting_chain=postrouting_miniupnpd.
    gw_exec nft -f - <<EOF
table inet filter {
    chain forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        ct state invalid drop
        meta l4proto { icmp, ipv6-icmp } accept
        iifname "$GW_LAN_IF" oifname "$GW_WAN_IF" accept
        jump miniupnpd
    }
    chain miniupnpd {
    }
    chain prerouting {
        type nat hook prerouting priority -100; policy accept;
        jump prerouting_miniupnpd
    }
    chain postrouting {
        type nat hook postrouting priority 100; policy accept;
        jump postrouting_miniupnpd
        oifname "$GW_WAN_IF" ip saddr $LAN_NET4 masquerade
    }
    chain prerouting_miniupnpd {
    }
    chain postrouting_miniupnpd {
    }
}
EOF
}

interop_down() {
    [ -n "${INTEROP_UP:-}" ] || return 0
    interop_capture_stop 2>/dev/null
    miniupnpd_stop 2>/dev/null
    local p ns
    for p in ${INTEROP_HELPER_PIDS:-}; do
        kill "$p" 2>/dev/null
    done
    # Anything still running inside our own namespaces was started by us.
    for ns in "$CLIENT_NS" "$GW_NS" "$OUT_NS"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do
            kill -9 "$p" 2>/dev/null
        done
    done
    for p in ${INTEROP_HELPER_PIDS:-}; do
        wait "$p" 2>/dev/null
    done
    INTEROP_HELPER_PIDS=""
    for ns in "$CLIENT_NS" "$GW_NS" "$OUT_NS"; do
        ip netns del "$ns" 2>/dev/null
    done
    if [ -n "${INTEROP_KEEP_TMP:-}" ]; then
        echo "interop_down: kept $INTEROP_TMP" >&2
    elif [ -n "${INTEROP_TMP:-}" ] && [ -d "$INTEROP_TMP" ]; then
        rm -rf "$INTEROP_TMP"
    fi
    INTEROP_UP=""
    return 0
}

_interop_add_helper() { INTEROP_HELPER_PIDS="${INTEROP_HELPER_PIDS:-} $1"; }

# listening_ip: one IPv4 socket per line, bound to that address (so the
# answer to a request sent to 192.0.0.9 comes from 192.0.0.9). No
# ipv6_listening_ip: with one, miniupnpd binds only that address; without,
# it binds [::]:5351 and answers from the address each request was sent to
# (IPV6_PKTINFO), which covers 2001:db8:77::1, the anycast 2001:1::1 and the
# link-local address alike.
_miniupnpd_write_conf() {
    local uuid
    uuid="$(cat /proc/sys/kernel/random/uuid 2>/dev/null || echo 3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b)"
    cat >"$MINIUPNPD_CONF" <<EOF
# generated by tests/interop/netns.sh
ext_ifname=$GW_WAN_IF
ext_ifname6=$GW_WAN_IF
ext_ip=$GW_EXT_IP4
listening_ip=$GW_LAN_IF
listening_ip=$ANYCAST_IP4/32
enable_natpmp=yes
enable_upnp=no
secure_mode=yes
pcp_allow_thirdparty=yes
min_lifetime=${MINIUPNPD_MIN_LIFETIME:-120}
max_lifetime=${MINIUPNPD_MAX_LIFETIME:-86400}
lease_file=$INTEROP_TMP/miniupnpd.leases
lease_file6=$INTEROP_TMP/miniupnpd.leases6
uuid=$uuid
system_uptime=no
clean_ruleset_interval=600
allow 1024-65535 $LAN_NET4 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
    local line
    for line in "$@"; do
        printf '%s\n' "$line" >>"$MINIUPNPD_CONF"
    done
}

_miniupnpd_listening() {
    # UDP 5351 bound in the gateway namespace?
    gw_exec ss -Hlun 'sport = :5351' 2>/dev/null | grep -q .
}

miniupnpd_start() {
    [ -n "${INTEROP_UP:-}" ] || { echo "miniupnpd_start: run interop_up first" >&2; return 1; }
    if [ -n "${MINIUPNPD_PID:-}" ] && kill -0 "$MINIUPNPD_PID" 2>/dev/null; then
        echo "miniupnpd_start: already running (pid $MINIUPNPD_PID)" >&2
        return 0
    fi
    _miniupnpd_write_conf "$@"
    {
        echo "===== miniupnpd start $(date '+%F %T.%N') ====="
    } >>"$MINIUPNPD_LOG"
    local bin
    bin="$(command -v miniupnpd || echo /usr/sbin/miniupnpd)"
    # `ip netns exec` execs the program, so $! is miniupnpd itself.
    ip netns exec "$GW_NS" "$bin" -f "$MINIUPNPD_CONF" -d \
        -P "$INTEROP_TMP/miniupnpd.pid" >>"$MINIUPNPD_LOG" 2>&1 </dev/null &
    MINIUPNPD_PID=$!
    export MINIUPNPD_PID
    local i
    for i in $(seq 1 50); do   # <= 5 s
        if _miniupnpd_listening; then
            return 0
        fi
        if ! kill -0 "$MINIUPNPD_PID" 2>/dev/null; then
            echo "miniupnpd_start: miniupnpd exited; log:" >&2
            tail -n 30 "$MINIUPNPD_LOG" >&2
            MINIUPNPD_PID=""
            return 1
        fi
        sleep 0.1
    done
    echo "miniupnpd_start: not listening on UDP 5351 after 5 s; log:" >&2
    tail -n 30 "$MINIUPNPD_LOG" >&2
    return 1
}

miniupnpd_stop() {
    [ -n "${MINIUPNPD_PID:-}" ] || return 0
    local i
    if kill -0 "$MINIUPNPD_PID" 2>/dev/null; then
        kill -TERM "$MINIUPNPD_PID" 2>/dev/null
        for i in $(seq 1 30); do   # <= 3 s
            kill -0 "$MINIUPNPD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$MINIUPNPD_PID" 2>/dev/null && kill -KILL "$MINIUPNPD_PID" 2>/dev/null
    fi
    wait "$MINIUPNPD_PID" 2>/dev/null
    MINIUPNPD_PID=""
    export MINIUPNPD_PID
    # It must really be gone from 5351 before a restart (<= 2 s).
    for i in $(seq 1 20); do
        _miniupnpd_listening || break
        sleep 0.1
    done
    return 0
}

miniupnpd_restart() {
    miniupnpd_stop
    miniupnpd_start "$@"
}

# A router reboot: all mapping state is lost (lease files removed, the
# miniupnpd chains flushed) and the epoch restarts at 0.
miniupnpd_reboot() {
    miniupnpd_stop
    nft_flush_miniupnpd
    rm -f "$INTEROP_TMP/miniupnpd.leases" "$INTEROP_TMP/miniupnpd.leases6"
    miniupnpd_start "$@"
}

# Empty the three chains miniupnpd manages (it does NOT do this itself on exit).
nft_flush_miniupnpd() {
    local c
    for c in miniupnpd prerouting_miniupnpd postrouting_miniupnpd; do
        gw_exec nft flush chain inet filter "$c" || return 1
    done
}

miniupnpd_log() { cat "$MINIUPNPD_LOG"; }

nft_ruleset() { gw_exec nft list ruleset; }

nft_rules_for_port() {
    local port="$1"
    [ -n "$port" ] || { echo "usage: nft_rules_for_port PORT" >&2; return 2; }
    gw_exec nft list chain inet filter prerouting_miniupnpd 2>/dev/null \
        | grep -E "dport $port( |\$)" | grep -E "dnat"
}

nft_filter_rules_for_port() {
    local port="$1"
    [ -n "$port" ] || { echo "usage: nft_filter_rules_for_port PORT" >&2; return 2; }
    gw_exec nft list chain inet filter miniupnpd 2>/dev/null \
        | grep -E "dport $port( |\$)"
}

client_tcp_listen() {
    local port="$1" secs="${2:-30}" banner="${3:-hello-from-client}"
    [ -n "$port" ] || { echo "usage: client_tcp_listen PORT [SECONDS] [BANNER]" >&2; return 2; }
    local py ready="$INTEROP_TMP/listen-$port.ready"
    py="$(_interop_python)"
    rm -f "$ready"
    timeout "$((secs + 2))" ip netns exec "$CLIENT_NS" "$py" - "$port" "$secs" "$banner" "$ready" \
        >>"$INTEROP_TMP/listen-$port.log" 2>&1 <<'PYEOF' &
import socket, sys, time
port, secs, banner, ready = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", port))
s.listen(8)
open(ready, "w").close()
deadline = time.monotonic() + secs
for _ in range(20):
    left = deadline - time.monotonic()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        c, peer = s.accept()
    except socket.timeout:
        break
    print("accepted", peer, flush=True)
    try:
        c.sendall(("%s from %s\n" % (banner, peer[0])).encode())
    finally:
        c.close()
PYEOF
    local pid=$!
    _interop_add_helper "$pid"
    local i
    for i in $(seq 1 50); do   # <= 5 s
        [ -e "$ready" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "client_tcp_listen: listener on $port did not come up" >&2
    return 1
}

outside_tcp_connect() {
    local ip="$1" port="$2" data="${3:-}"
    [ -n "$ip" ] && [ -n "$port" ] || { echo "usage: outside_tcp_connect IP PORT [DATA]" >&2; return 2; }
    local py
    py="$(_interop_python)"
    timeout 8 ip netns exec "$OUT_NS" "$py" - "$ip" "$port" "$data" <<'PYEOF'
import socket, sys
ip, port, data = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.connect((ip, port))
except OSError as e:
    print("connect failed: %s" % e, file=sys.stderr)
    sys.exit(1)
if data:
    s.sendall(data.encode())
out = b""
try:
    while len(out) < 65536:
        b = s.recv(4096)
        if not b:
            break
        out += b
except socket.timeout:
    pass
sys.stdout.write(out.decode(errors="replace"))
sys.exit(0)
PYEOF
}

gw_pcp_block() {
    local a rules=""
    for a in "$@"; do
        case "$a" in
            *:*) rules="$rules
        ip6 daddr $a udp dport 5351 drop" ;;
            *) rules="$rules
        ip daddr $a udp dport 5351 drop" ;;
        esac
    done
    gw_pcp_unblock
    gw_exec nft -f - <<EOF
table inet pcp_block {
    chain input {
        type filter hook input priority -10; policy accept;$rules
    }
}
EOF
}

gw_pcp_unblock() { gw_exec nft delete table inet pcp_block 2>/dev/null; return 0; }

interop_capture_start() {
    local ns="${1:-$GW_NS}"
    [ $# -gt 0 ] && shift
    local ifc args=()
    if [ $# -eq 0 ]; then
        if [ "$ns" = "$GW_NS" ]; then set -- "$GW_LAN_IF"; else set -- eth0; fi
    fi
    # -f before the first -i is every interface's filter (after one, only that one's).
    args=(-f "udp port 5350 or udp port 5351")
    for ifc in "$@"; do args+=(-i "$ifc"); done
    command -v tshark >/dev/null 2>&1 || { echo "interop_capture_start: no tshark" >&2; return 1; }
    INTEROP_PCAP="$INTEROP_TMP/pcp-$ns.pcap"
    export INTEROP_PCAP
    timeout 300 ip netns exec "$ns" tshark -q "${args[@]}" \
        -w "$INTEROP_PCAP" >"$INTEROP_TMP/tshark-$ns.log" 2>&1 &
    INTEROP_CAPTURE_PID=$!
    _interop_add_helper "$INTEROP_CAPTURE_PID"
    local i
    for i in $(seq 1 50); do   # <= 5 s, until tshark has opened the file
        [ -s "$INTEROP_PCAP" ] && { sleep 0.2; return 0; }
        sleep 0.1
    done
    echo "interop_capture_start: capture did not start" >&2
    return 1
}

interop_capture_stop() {
    [ -n "${INTEROP_CAPTURE_PID:-}" ] || return 0
    sleep 0.3
    kill -INT "$INTEROP_CAPTURE_PID" 2>/dev/null
    local i
    for i in $(seq 1 30); do
        kill -0 "$INTEROP_CAPTURE_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$INTEROP_CAPTURE_PID" 2>/dev/null
    wait "$INTEROP_CAPTURE_PID" 2>/dev/null
    INTEROP_CAPTURE_PID=""
    return 0
}

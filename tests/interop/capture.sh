# Every packet clean in tshark (issue 10 item 14), sourced by run.sh at the
# end. run.sh captured the whole suite in the client namespace (eth0: the
# client and miniupnpd; lo: the client and `pcp serve`), UDP 5350/5351.
#
# 1. The checks can fail: a pcap of three bad MAP requests (pcap_check.py
#    selftest-pcap) is flagged, the first two by the tshark filter below,
#    the third (an option length running past the datagram, which tshark
#    does not flag) by pcap_check.py lengths.
# 2. No frame of the capture matches `_ws.malformed || _ws.expert.severity
#    >= warning` (field names as in `tshark -G fields` of tshark 4.0).
# 3. Every PCP datagram's size agrees with its opcode and option lengths.
# 4. Every captured datagram decoded as PCP or NAT-PMP, and the decode shows
#    each kind the suite sent (pcap_check.py analyze: opcodes, protocols,
#    IPv4/IPv6, deletes, unsolicited ANNOUNCE, options, error codes), to
#    miniupnpd and to the test server.
# 5. Discovery order in the capture (the windows anycast.sh recorded).
#
# A flagged frame is printed with who sent it: fix our encoder if it is the
# client or `pcp serve`; if it is miniupnpd, find whose bug it is (never
# filter a warning out to pass).

bad_filter='_ws.malformed || _ws.expert.severity >= warning'
checker="$here/pcap_check.py"
report_checker() {   # turns pcap_check.py's lines into ok/fail
    local verdict text detail
    while IFS=$'\t' read -r verdict text detail; do
        if [ "$verdict" = ok ]; then ok "$text"; else fail "$text" "$(printf '%b' "$detail")"; fi
    done
}

interop_capture_stop >/dev/null 2>&1
if [ -z "${capture_on:-}" ]; then
    : # run.sh already reported why there is no capture
elif [ ! -s "${INTEROP_PCAP:-}" ]; then
    fail "capture of the suite" "$(cat "$INTEROP_TMP"/tshark-*.log 2>/dev/null)"
else
    selftest="$INTEROP_TMP/selftest.pcap"
    python3 "$checker" selftest-pcap "$selftest"
    flagged=$(tshark -r "$selftest" -Y "$bad_filter" -T fields -e frame.number 2>/dev/null | tr '\n' ' ')
    # shellcheck disable=SC2046
    lengths=$(tshark -r "$selftest" -T fields -E occurrence=a -E aggregator=, $(python3 "$checker" fields) 2>/dev/null \
        | python3 "$checker" lengths)
    if [ "$flagged" = "1 2 " ] && echo "$lengths" | grep -q "^fail.*frame 3 "; then
        ok "the capture checks can fail: tshark flags a cut MAP and an unknown option, the length check a FILTER overrunning its datagram"
    else
        fail "capture checks self-test (tshark flagged frames: '$flagged', want '1 2 ')" "$lengths"
    fi

    # shellcheck disable=SC2046
    flagged_rows=$(tshark -r "$INTEROP_PCAP" -Y "$bad_filter" -T fields -E occurrence=a -E aggregator='|' \
        $(python3 "$checker" flagged-fields) 2>/dev/null)
    report_checker < <(echo "$flagged_rows" | python3 "$checker" flagged)
    if echo "$flagged_rows" | grep -q .; then   # the decode of the first few, to see why
        first=$(echo "$flagged_rows" | head -3 | cut -f1 | tr '\n' ' ')
        tshark -r "$INTEROP_PCAP" -Y "frame.number in {$first}" -O portcontrol,nat-pmp 2>/dev/null \
            | grep -A12 -E '^(Port Control|NAT Port)' | sed 's/^/       /' | head -40
    fi

    # shellcheck disable=SC2046
    rows=$(tshark -r "$INTEROP_PCAP" -T fields -E occurrence=a -E aggregator=, $(python3 "$checker" fields) 2>/dev/null)
    # Process substitution, not a pipe: ok/fail must count in this shell.
    report_checker < <(echo "$rows" | python3 "$checker" lengths)
    report_checker < <(echo "$rows" | python3 "$checker" analyze "$INTEROP_TMP/capture-windows")
fi

#!/usr/bin/env python3
"""Checks on the interop suite's capture, used by capture.sh.

    pcap_check.py selftest-pcap OUT   write a pcap of three bad PCP packets
    pcap_check.py lengths             stdin: `tshark -T fields` rows (FIELDS)
    pcap_check.py analyze WINDOWS     stdin: the same rows; WINDOWS: lines
                                      "name t0 t1" written by run.sh
    pcap_check.py flagged             stdin: FLAGGED_FIELDS rows of the frames
                                      tshark calls malformed or warns about

`lengths` and `analyze` print one line per check, "ok<TAB>text" or
"fail<TAB>text<TAB>detail", for run.sh's ok/fail. Addresses come from the
environment netns.sh exports.
"""
import os
import struct
import sys

# The tshark fields capture.sh asks for, in this order.
FIELDS = [
    "frame.number", "frame.time_epoch", "frame.interface_name",
    "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "udp.srcport", "udp.dstport", "udp.length",
    "portcontrol.version", "portcontrol.r", "portcontrol.opcode", "portcontrol.result_code",
    "portcontrol.lifetime_req", "portcontrol.map.protocol", "portcontrol.peer.protocol",
    "portcontrol.map.internal_port", "portcontrol.option.code", "portcontrol.option.length",
    "nat-pmp.version", "nat-pmp.opcode", "nat-pmp.result_code",
]

# The fields capture.sh asks for about a frame tshark flags.
FLAGGED_FIELDS = [
    "frame.number", "frame.interface_name", "ip.src", "ipv6.src", "udp.srcport", "udp.length",
    "nat-pmp.version", "nat-pmp.opcode", "nat-pmp.result_code", "portcontrol.version", "_ws.expert.message",
]

# RFC 6887 section 7: opcode-specific body sizes (ANNOUNCE none, MAP 36, PEER 56).
BODY = {0: 0, 1: 36, 2: 56}


class Frame:
    def __init__(self, line):
        cols = line.rstrip("\n").split("\t")
        cols += [""] * (len(FIELDS) - len(cols))
        self.f = dict(zip(FIELDS, cols))
        g = self.f.get
        self.no = int(g("frame.number"))
        self.time = float(g("frame.time_epoch"))
        self.iface = g("frame.interface_name")
        self.src = g("ip.src") or g("ipv6.src")
        self.dst = g("ip.dst") or g("ipv6.dst")
        self.v6 = bool(g("ipv6.src"))
        self.sport = int(g("udp.srcport") or 0)
        self.dport = int(g("udp.dstport") or 0)
        self.udp_len = int(g("udp.length") or 0)
        self.pcp = g("portcontrol.version") != ""
        self.natpmp = g("nat-pmp.version") != ""
        self.response = g("portcontrol.r") == "1"
        self.opcode = int(g("portcontrol.opcode") or -1)
        self.result = int(g("portcontrol.result_code") or 0)
        self.lifetime_req = g("portcontrol.lifetime_req")
        self.protocol = int(g("portcontrol.map.protocol") or g("portcontrol.peer.protocol") or -1)
        self.internal_port = g("portcontrol.map.internal_port")
        self.options = [int(c) for c in g("portcontrol.option.code").split(",") if c]
        self.option_lengths = [int(c) for c in g("portcontrol.option.length").split(",") if c]

    def sender(self):
        """Who sent it, for a failure message."""
        env = os.environ.get
        if self.iface == "lo":
            return "pcp serve (our test server)" if self.sport == 5351 else "pcp-rs client"
        if self.src in (env("CLIENT_IP4"), env("CLIENT_IP6")):
            return "pcp-rs client"
        if self.natpmp and self.f.get("nat-pmp.result_code") == "1":
            return "the suite's NAT-PMP-only responder (natpmp.sh) or miniupnpd"
        return "miniupnpd"

    def __str__(self):
        kind = "PCP" if self.pcp else "NAT-PMP" if self.natpmp else "?"
        return "frame %d (%s, %s %s:%d -> %s:%d, sent by %s)" % (
            self.no, self.iface, kind, self.src, self.sport, self.dst, self.dport, self.sender())


def read_frames():
    return [Frame(line) for line in sys.stdin if line.strip()]


def length_problem(fr):
    """Why the PCP datagram's size disagrees with its own fields, or None.

    tshark decodes an option by its code and does not flag a length field
    that runs past the datagram, so this is checked here."""
    size = fr.udp_len - 8
    if size > 1100 or size % 4:
        return "size %d: not a multiple of 4 of at most 1100 (RFC 6887 section 7)" % size
    if size == 24 and fr.response and fr.result != 0:
        return None  # an error answer may carry the header only (section 7.2)
    body = BODY.get(fr.opcode)
    if body is None:
        return None
    if len(fr.option_lengths) != len(fr.options):
        return "options %s with lengths %s" % (fr.options, fr.option_lengths)
    want = 24 + body + sum(4 + ((n + 3) & ~3) for n in fr.option_lengths)
    if want != size:
        return "size %d, but header + body + options add up to %d" % (size, want)
    return None


def cmd_lengths():
    frames = read_frames()
    bad = [(fr, length_problem(fr)) for fr in frames if fr.pcp]
    bad = [(fr, why) for fr, why in bad if why]
    n = sum(1 for fr in frames if fr.pcp)
    if bad:
        detail = "\n".join("%s: %s" % (fr, why) for fr, why in bad[:20])
        print("fail\tevery PCP datagram's size agrees with its opcode and option lengths (%d of %d do not)\t%s"
              % (len(bad), n, detail.replace("\n", "\\n")))
    else:
        print("ok\tevery one of %d PCP datagrams has the size its opcode and option lengths give" % n)


def is_request(fr, opcode):
    return fr.pcp and not fr.response and fr.opcode == opcode


def is_answer(fr, opcode, result=0):
    return fr.pcp and fr.response and fr.opcode == opcode and fr.result == result


def kinds_miniupnpd():
    """What the suite sends over the LAN (to miniupnpd), with a predicate each."""
    env = os.environ.get
    lan = lambda fr: fr.iface != "lo"
    return [
        ("MAP TCP IPv4 request+answer", lambda fr: lan(fr) and not fr.v6 and fr.pcp and fr.opcode == 1 and fr.protocol == 6, 2),
        ("MAP UDP IPv4", lambda fr: lan(fr) and not fr.v6 and fr.pcp and fr.opcode == 1 and fr.protocol == 17, 2),
        ("MAP TCP IPv6", lambda fr: lan(fr) and fr.v6 and fr.pcp and fr.opcode == 1 and fr.protocol == 6, 2),
        ("MAP UDP IPv6", lambda fr: lan(fr) and fr.v6 and fr.pcp and fr.opcode == 1 and fr.protocol == 17, 2),
        ("MAP request for internal port 8080", lambda fr: lan(fr) and is_request(fr, 1) and fr.internal_port == "8080", 1),
        ("MAP answered SUCCESS", lambda fr: lan(fr) and is_answer(fr, 1), 1),
        ("delete (MAP, lifetime 0)", lambda fr: lan(fr) and is_request(fr, 1) and fr.lifetime_req == "0", 1),
        ("PEER IPv4 answered SUCCESS", lambda fr: lan(fr) and not fr.v6 and is_answer(fr, 2), 1),
        ("PEER IPv6 request", lambda fr: lan(fr) and fr.v6 and is_request(fr, 2), 1),
        ("ANNOUNCE request", lambda fr: lan(fr) and is_request(fr, 0), 1),
        ("ANNOUNCE answer", lambda fr: lan(fr) and is_answer(fr, 0) and fr.dst != "224.0.0.1", 1),
        ("unsolicited ANNOUNCE to 224.0.0.1:5350", lambda fr: lan(fr) and is_answer(fr, 0) and fr.dst == "224.0.0.1" and fr.dport == 5350, 2),
        ("THIRD_PARTY IPv4", lambda fr: lan(fr) and not fr.v6 and 1 in fr.options and not fr.response, 1),
        ("THIRD_PARTY IPv6", lambda fr: lan(fr) and fr.v6 and 1 in fr.options and not fr.response, 1),
        ("delete with THIRD_PARTY", lambda fr: lan(fr) and is_request(fr, 1) and fr.lifetime_req == "0" and 1 in fr.options, 2),
        ("PREFER_FAILURE", lambda fr: lan(fr) and 2 in fr.options and not fr.response, 1),
        ("FILTER", lambda fr: lan(fr) and 3 in fr.options and not fr.response, 1),
        ("error NOT_AUTHORIZED (2)", lambda fr: lan(fr) and fr.pcp and fr.response and fr.result == 2, 1),
        ("error UNSUPP_OPCODE (4)", lambda fr: lan(fr) and fr.pcp and fr.response and fr.result == 4, 1),
        ("error NO_RESOURCES (8)", lambda fr: lan(fr) and fr.pcp and fr.response and fr.result == 8, 1),
        ("anycast 192.0.0.9 answers", lambda fr: lan(fr) and fr.pcp and fr.response and fr.src == env("ANYCAST_IP4"), 1),
        ("anycast 2001:1::1 answers", lambda fr: lan(fr) and fr.pcp and fr.response and fr.src == env("ANYCAST_IP6"), 1),
        ("NAT-PMP request+answer", lambda fr: lan(fr) and fr.natpmp, 2),
        ("NAT-PMP unsupported-version answer to PCP", lambda fr: lan(fr) and fr.natpmp and fr.f.get("nat-pmp.result_code") == "1", 1),
    ]


def kinds_test_server():
    """What the suite sends to `pcp serve` on the client namespace's loopback."""
    lo = lambda fr: fr.iface == "lo"
    return [
        ("MAP TCP IPv4 answered", lambda fr: lo(fr) and not fr.v6 and is_answer(fr, 1) and fr.protocol == 6, 1),
        ("MAP UDP IPv4 answered", lambda fr: lo(fr) and not fr.v6 and is_answer(fr, 1) and fr.protocol == 17, 1),
        ("MAP TCP IPv6 answered", lambda fr: lo(fr) and fr.v6 and is_answer(fr, 1), 1),
        ("PEER IPv4 answered", lambda fr: lo(fr) and not fr.v6 and is_answer(fr, 2), 1),
        ("PEER IPv6 answered", lambda fr: lo(fr) and fr.v6 and is_answer(fr, 2), 1),
        ("delete answered", lambda fr: lo(fr) and is_request(fr, 1) and fr.lifetime_req == "0", 1),
        ("ANNOUNCE answered", lambda fr: lo(fr) and is_answer(fr, 0), 1),
        ("THIRD_PARTY echoed", lambda fr: lo(fr) and fr.response and 1 in fr.options, 1),
        ("PREFER_FAILURE echoed", lambda fr: lo(fr) and fr.response and 2 in fr.options, 1),
        ("FILTER echoed", lambda fr: lo(fr) and fr.response and 3 in fr.options, 1),
        ("error NOT_AUTHORIZED (2)", lambda fr: lo(fr) and fr.pcp and fr.response and fr.result == 2, 1),
        ("error CANNOT_PROVIDE_EXTERNAL (11)", lambda fr: lo(fr) and fr.pcp and fr.response and fr.result == 11, 1),
        ("NAT-PMP answered", lambda fr: lo(fr) and fr.natpmp and fr.sport == 5351, 1),
    ]


def report_kinds(frames, title, kinds):
    counts = [(name, sum(1 for fr in frames if pred(fr)), least) for name, pred, least in kinds]
    missing = ["%s: %d (want >= %d)" % (n, c, least) for n, c, least in counts if c < least]
    summary = ", ".join("%s %d" % (n, c) for n, c, _ in counts)
    if missing:
        print("fail\ttshark decoded what the suite sent %s\t%s" % (title, "\\n".join(missing)))
    else:
        print("ok\ttshark decoded what the suite sent %s: %s" % (title, summary))


def check_window(frames, name, t0, t1):
    """RFC 6887 section 8.1 / RFC 7723: every default gateway is probed
    before any anycast address; in an anycast-only window the gateways got
    no answer and the anycast address did."""
    env = os.environ.get
    gateways = {env("GW_LAN_IP4"), env("GW_LAN_IP6")}
    anycast = {env("ANYCAST_IP4"), env("ANYCAST_IP6")}
    inside = [fr for fr in frames if t0 <= fr.time <= t1 and fr.iface != "lo"]
    probes = [fr for fr in inside if is_request(fr, 0)]
    first = {}
    for fr in probes:
        first.setdefault(fr.dst, fr.no)
    order = " ".join("%s@%d" % (a, n) for a, n in sorted(first.items(), key=lambda x: x[1]))
    gw_first = [n for a, n in first.items() if a in gateways]
    any_first = [n for a, n in first.items() if a in anycast]
    if not gw_first:
        print("fail\t%s: the default gateways were probed\tprobes: %s" % (name, order or "none"))
        return
    if any_first and max(gw_first) > min(any_first):
        print("fail\t%s: the anycast probes come after every default gateway's\tfirst probe per address: %s" % (name, order))
        return
    if name == "delete-discovers-once":
        again = [a for a in first if sum(1 for fr in probes if fr.dst == a) != 1]
        if again:
            print("fail\t%s: one ANNOUNCE per candidate (one discovery)\tprobed more than once: %s; all probes: %s"
                  % (name, " ".join(again), " ".join("%s@%d" % (fr.dst, fr.no) for fr in probes)))
        else:
            print("ok\t%s: pcp delete discovered the server once (one ANNOUNCE per candidate): %s" % (name, order))
        return
    if name == "discover-gateway-first":
        print("ok\t%s: gateway probes first, anycast after (or not at all): %s" % (name, order))
        return
    family = name.rsplit("-", 1)[1]
    target = env("ANYCAST_IP4") if family == "4" else env("ANYCAST_IP6")
    gw_answers = [fr for fr in inside if is_answer(fr, 0) and fr.src in gateways]
    any_answers = [fr for fr in inside if is_answer(fr, 0) and fr.src == target]
    if target not in first or gw_answers or not any_answers:
        print("fail\t%s: gateways silent, %s probed last and answering\tprobes: %s; gateway answers %d, %s answers %d"
              % (name, target, order, len(gw_answers), target, len(any_answers)))
        return
    print("ok\t%s: the silent gateways were probed first, then %s, which answered: %s" % (name, target, order))


def cmd_analyze(windows_path):
    frames = read_frames()
    undecoded = [fr for fr in frames if not fr.pcp and not fr.natpmp]
    if undecoded:
        print("fail\tevery captured datagram decodes as PCP or NAT-PMP\t%s"
              % "\\n".join(str(fr) for fr in undecoded[:20]))
    else:
        print("ok\tall %d captured datagrams decode as PCP or NAT-PMP" % len(frames))
    report_kinds(frames, "to miniupnpd", kinds_miniupnpd())
    report_kinds(frames, "to the test server", kinds_test_server())
    try:
        windows = [l.split() for l in open(windows_path) if l.strip()]
    except OSError:
        windows = []
    if not windows:
        print("fail\tdiscovery windows recorded\tno %s" % windows_path)
    for name, t0, t1 in windows:
        check_window(frames, name, float(t0), float(t1))


def unsupported_version_answer(f):
    """RFC 6886 section 3.5: a NAT-PMP server answers a request of another
    version (a PCP request) with 8 bytes: version 0, opcode 128 + the
    request's opcode, result 1, epoch. Wireshark 4.0's NAT-PMP dissector
    (epan/dissectors/packet-nat-pmp.c, dissect_nat_pmp) reads the full
    body of the opcode's success answer whatever the result code, so it
    calls this correct packet malformed. True for exactly that packet, and
    only if the malformed exception is tshark's one complaint."""
    return (f["nat-pmp.version"] == "0" and f["portcontrol.version"] == ""
            and f["udp.length"] == "16" and f["nat-pmp.opcode"] in ("128", "129", "130")
            and f["nat-pmp.result_code"] == "1"
            and f["_ws.expert.message"] == "Malformed Packet (Exception occurred)")


def cmd_flagged():
    rows = []
    for line in sys.stdin:
        if not line.strip():
            continue
        cols = line.rstrip("\n").split("\t")
        cols += [""] * (len(FLAGGED_FIELDS) - len(cols))
        rows.append(dict(zip(FLAGGED_FIELDS, cols)))
    explained = [r for r in rows if unsupported_version_answer(r)]
    bad = [r for r in rows if not unsupported_version_answer(r)]
    if bad:
        detail = "\\n".join("frame %s (%s, from %s:%s, %s bytes): %s" % (
            r["frame.number"], r["frame.interface_name"], r["ip.src"] or r["ipv6.src"], r["udp.srcport"],
            int(r["udp.length"] or 8) - 8, r["_ws.expert.message"]) for r in bad[:20])
        print("fail\ttshark: %d frame(s) malformed or with an expert warning/error\t%s" % (len(bad), detail))
    else:
        print("ok\ttshark: no captured frame is malformed or has an expert warning/error%s" % (
            "" if not explained else " other than the %d below" % len(explained)))
    if explained:
        print("ok\ttshark bug, not ours: %d RFC 6886 section 3.5 'unsupported version' answers (8 bytes, frames %s) "
              "are called malformed by Wireshark's NAT-PMP dissector, which expects a full Map body; "
              "their fields were checked here instead" % (len(explained), ",".join(r["frame.number"] for r in explained)))


def cmd_selftest_pcap(out_path):
    """Three bad MAP requests: cut after the header (tshark: malformed), an
    unknown mandatory option (tshark: expert warning), and a FILTER whose
    length field claims more than the datagram holds (tshark: nothing;
    `lengths` must catch it)."""
    def csum(b):
        if len(b) % 2:
            b += b"\0"
        s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        s = (s >> 16) + (s & 0xFFFF)
        s += s >> 16
        return ~s & 0xFFFF

    def frame(payload):
        udp = struct.pack("!HHHH", 40000, 5351, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                         bytes([192, 168, 77, 2]), bytes([192, 168, 77, 1]))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + udp

    header = struct.pack("!BBHI", 2, 1, 0, 600) + bytes(10) + b"\xff\xff" + bytes([192, 168, 77, 2])
    body = bytes(12) + struct.pack("!B3xHH", 6, 8080, 0) + bytes(10) + b"\xff\xff" + bytes(4)
    packets = [
        header,
        header + body + struct.pack("!BBH", 99, 0, 4) + bytes(4),
        header + body + struct.pack("!BBH", 3, 0, 40) + bytes(20),
    ]
    with open(out_path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, p in enumerate(packets):
            f = frame(p)
            out.write(struct.pack("<IIII", i + 1, 0, len(f), len(f)) + f)


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "fields":
        print(" ".join("-e " + f for f in FIELDS))
    elif len(sys.argv) == 2 and sys.argv[1] == "flagged-fields":
        print(" ".join("-e " + f for f in FLAGGED_FIELDS))
    elif len(sys.argv) == 2 and sys.argv[1] == "flagged":
        cmd_flagged()
    elif len(sys.argv) == 3 and sys.argv[1] == "selftest-pcap":
        cmd_selftest_pcap(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "lengths":
        cmd_lengths()
    elif len(sys.argv) == 3 and sys.argv[1] == "analyze":
        cmd_analyze(sys.argv[2])
    else:
        sys.exit(__doc__)

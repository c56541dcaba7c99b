#!/usr/bin/env python3
"""Writes the committed seed corpus (fuzz/corpus/<target>/): well-formed
messages for the decoders and short scripts for the engine target that walk
a mapping through every phase. Run it again after changing a script format;
libFuzzer grows its own corpus from these in fuzz/corpus during runs."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def v4(a, b, c, d):
    return bytes(10) + b"\xff\xff" + bytes([a, b, c, d])


CLIENT = v4(192, 0, 2, 100)
EXT = v4(203, 0, 113, 7)
NONCE = bytes(range(1, 13))


def map_payload(port=8080, ext_port=0, ext=v4(0, 0, 0, 0), proto=6):
    return NONCE + bytes([proto, 0, 0, 0]) + struct.pack(">HH", port, ext_port) + ext


def peer_payload():
    return map_payload(6000, 0) + struct.pack(">HH", 443, 0) + v4(198, 51, 100, 7)


def option(code, data):
    pad = (-len(data)) % 4
    return bytes([code, 0]) + struct.pack(">H", len(data)) + data + bytes(pad)


def request(opcode, lifetime, payload=b"", options=b""):
    return bytes([2, opcode, 0, 0]) + struct.pack(">I", lifetime) + CLIENT + payload + options


def response(opcode, result, lifetime, epoch, payload=b"", options=b""):
    return bytes([2, 0x80 | opcode, 0, result]) + struct.pack(">II", lifetime, epoch) + bytes(12) + payload + options


THIRD_PARTY = option(1, v4(192, 0, 2, 5))
PREFER_FAILURE = option(2, b"")
FILTER = option(3, bytes([0, 24]) + struct.pack(">H", 443) + v4(198, 51, 100, 0))

requests = {
    "announce": request(0, 0),
    "map": request(1, 3600, map_payload()),
    "map-options": request(1, 3600, map_payload(ext_port=8080), THIRD_PARTY + PREFER_FAILURE + FILTER),
    "map-delete": request(1, 0, map_payload()),
    "map-all": request(1, 60, map_payload(port=0, proto=0)),
    "peer": request(2, 600, peer_payload(), THIRD_PARTY),
    "optional-unknown": request(1, 60, map_payload(), option(200, b"abc")),
}
responses = {
    "announce": response(0, 0, 0, 1000),
    "map": response(1, 0, 3600, 1000, map_payload(ext_port=20000, ext=EXT)),
    "map-options": response(1, 0, 3600, 1000, map_payload(ext_port=8080, ext=EXT), THIRD_PARTY + FILTER),
    "map-error": response(1, 2, 30, 1000, map_payload()),
    "header-only-error": response(1, 1, 30, 1000),
    "peer": response(2, 0, 600, 1000, peer_payload()),
    "unknown-optional": response(1, 0, 60, 5, map_payload(ext_port=1, ext=EXT), option(129, b"xy")),
}

# Engine scripts (see src/engine.rs): seed, max_in_flight, epoch, then steps.
HEAD = bytes([7, 3]) + struct.pack(">I", 0x0001_0000)
MAP = bytes([0, 0]) + struct.pack(">HI", 8080, 3600) + bytes([0, 0, 0])
PEER = bytes([1]) + struct.pack(">H", 6000) + bytes([1]) + struct.pack(">HI", 443, 600)
OK = bytes([3, 0, 0, 0, 2, 200, 0, 0, 200, 200])
OK_DELETE = bytes([3, 0, 0, 2, 2, 200, 0, 0, 200, 200])
REFUSED = bytes([3, 0, 182, 0, 2, 200, 0, 0, 200, 200])
RESTART = bytes([3, 0, 0, 0, 0, 200, 0, 0, 200, 200])
TO_NEXT_TIMER = bytes([8])
DELETE_FIRST = bytes([2, 0])
GARBAGE = bytes([6]) + struct.pack(">H", 28) + bytes([2, 0x81, 0, 1] + [0] * 24) + bytes([200])
engine = {
    "map-renew-delete": HEAD + MAP + OK + TO_NEXT_TIMER + OK + DELETE_FIRST + OK_DELETE,
    "peer-refused": HEAD + PEER + REFUSED,
    "map-restart": HEAD + MAP + OK + PEER + OK + RESTART + OK + OK,
    "garbage-then-answer": HEAD + MAP + GARBAGE + OK + TO_NEXT_TIMER + TO_NEXT_TIMER,
    "announce-and-probe": HEAD + bytes([9, 0]) + OK + bytes([9, 1]) + OK + OK_DELETE + bytes([10, 0]),
    "renewal-refused-until-lost": HEAD + MAP + OK + TO_NEXT_TIMER + REFUSED + TO_NEXT_TIMER * 6,
}

# NAT-PMP (RFC 6886): version 0; requests and responses in one corpus.
natpmp = {
    "external-address-request": bytes([0, 0]),
    "map-request": bytes([0, 2, 0, 0]) + struct.pack(">HHI", 8080, 8080, 7200),
    "external-address-response": bytes([0, 128, 0, 0]) + struct.pack(">I", 9) + bytes([203, 0, 113, 7]),
    "map-response": bytes([0, 130, 0, 0]) + struct.pack(">IHHI", 9, 8080, 20000, 7200),
    "unsupported-version": bytes([0, 129, 0, 1]) + struct.pack(">I", 9),
    "unsupported-opcode": bytes([0, 133, 0, 5]) + struct.pack(">I", 9),
}

for target, seeds in [("natpmp_decode", natpmp), ("request_decode", requests), ("response_decode", responses), ("engine_datagrams", engine)]:
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)

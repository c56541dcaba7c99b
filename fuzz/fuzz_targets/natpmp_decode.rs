//! The NAT-PMP (RFC 6886) request and response decoders: never panic, and
//! whatever they accept re-encodes to a message that decodes to the same value.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pcp_fuzz::wire::natpmp_round_trip(data));

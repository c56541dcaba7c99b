//! The server's request decoder: never panics, and whatever it accepts
//! re-encodes to a message it decodes to the same value.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pcp_fuzz::wire::request_round_trip(data));

//! The client's response decoder: never panics, and whatever it accepts
//! re-encodes to a message it decodes to the same value.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pcp_fuzz::wire::response_round_trip(data));

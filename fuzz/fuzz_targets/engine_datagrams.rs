//! The sans-IO engine driven by a fuzzer-chosen script: requests, answers
//! crafted from what it sent, arbitrary datagrams, deletes and time jumps,
//! with its invariants checked after every step.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pcp_fuzz::engine::run_script(data));

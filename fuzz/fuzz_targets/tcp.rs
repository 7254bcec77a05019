//! A TCP segment (options included) from arbitrary bytes: parsing never panics, what parses re-encodes and parses back.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| utcp_wire_fuzz::tcp(data));

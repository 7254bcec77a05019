//! An IPv4 packet from arbitrary bytes: parsing never panics, what parses re-encodes and parses back.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| utcp_wire_fuzz::ipv4(data));

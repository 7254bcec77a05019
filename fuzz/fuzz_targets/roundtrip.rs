//! Structure-aware: an arbitrary valid segment, emitted and parsed back at every layer, is unchanged.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| utcp_wire_fuzz::roundtrip(data));

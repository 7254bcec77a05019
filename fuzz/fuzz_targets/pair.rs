//! Two connections over a seeded lossy link with a fake clock (no tokio): every byte exactly once and in order, and the run ends.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| utcp_wire_fuzz::pair(data));

//! One Endpoint and its connections driven by arbitrary segments, floods, timeouts and user calls: every emitted segment parses, sequence variables stay ordered, memory stays within its limits.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| utcp_wire_fuzz::endpoint(data));

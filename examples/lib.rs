//! Helpers shared by utcp's examples.
#![deny(missing_docs)]

pub mod device;
pub mod kernel;
pub mod ladder;
pub mod pcap_ladder;
pub mod signals;

//! End-to-end tests of utcp through its public API on the in-memory network.

mod handshake;
mod loss;
mod shutdown;
mod transfer;

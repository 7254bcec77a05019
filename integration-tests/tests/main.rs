//! End-to-end tests of utcp through its public API on the in-memory network.

mod loss;
mod transfer;

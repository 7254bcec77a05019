//! End-to-end tests of utcp through its public API on the in-memory network.

mod ack_policy;
mod api;
mod cli;
mod concurrency;
mod congestion;
mod handshake;
mod http;
mod idle;
mod kernel;
mod listener;
mod load;
mod loss;
mod malformed;
mod mss;
mod recovery;
mod review;
mod shutdown;
mod stream_api;
mod tcp_socket;
mod timewait;
mod timewait_records;
mod transfer;

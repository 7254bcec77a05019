//! # utcp-proto: sans-IO TCP
//!
//! The segment codec ([`wire`]) and the RFC 9293 state machine ([`Connection`],
//! [`Endpoint`]) of utcp. This crate never reads a clock, never blocks, never does
//! I/O and does not depend on tokio: time and segments are passed in, segments,
//! deadlines and events come out. The runtime crate (`utcp-runtime`) drives it.
//!
//! - [`Endpoint`]: the connection table; routes each segment to a connection,
//!   a listener, or answers it with RST.
//! - [`Connection`]: one connection; `handle_segment`, `handle_timeout` and user
//!   calls in; `poll_transmit`, `poll_timeout`, `poll_event` out.
//! - [`TimeWait`]: what remains of a connection in TIME_WAIT, kept in the
//!   endpoint's table.
#![deny(missing_docs)]

pub mod config;
mod congestion;
pub mod connection;
pub mod endpoint;
pub mod error;
mod listen;
pub mod pending;
pub mod seq;
mod syncookie;
pub mod time;
pub mod timewait;
pub mod wire;

pub use config::{Config, ConfigError, TxOffload};
pub use congestion::{CongestionAlgorithm, SlowStartExit};
pub use connection::{
    CaState, CongestionCause, CongestionEvent, Connection, Event, MemoryPressure, Segment, State,
    Stats, Transmit,
};
pub use endpoint::{
    ConnHandle, DropReason, Endpoint, EndpointConfig, FourTuple, ListenerId, ListenerSummary, Route,
};
pub use error::Error;
pub use listen::ListenStats;
pub use pending::{IncomingSyn, PendingId, SynVerdict};
pub use seq::SeqNum;
pub use time::{Duration, Instant};
pub use timewait::{TimeWait, TimeWaitAction, TimeWaitEnd, TimeWaitId, TimeWaitStats};

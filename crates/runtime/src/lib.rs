//! # utcp-runtime: the Tokio driver of utcp
//!
//! Drives the sans-IO state machine of `utcp-proto` over a [`Device`]: the
//! [`Stack`] owns one device and its device task (receive a batch, parse,
//! route through the endpoint, hand segments to connection inboxes, end
//! TIME_WAIT records at their 2·MSL), and every connection runs in its own
//! task with one timer until it closes or enters TIME_WAIT, where the
//! endpoint's record takes over. Time is tokio's, so under
//! `tokio::time::pause()` a whole stack runs in virtual time.
//!
//! Applications normally use the `utcp` crate's `TcpListener` / `TcpStream`,
//! built on [`ConnRef`] and [`ListenerRef`] here.
#![deny(missing_docs)]

mod ambient;
mod clock;
mod config_check;
mod conn;
mod conn_task;
pub mod device;
mod idle;
mod inbox;
mod listener;
mod observe;
mod rmem;
mod socket;
mod stack;
mod verdict;

pub use ambient::{EnterGuard, Scope};
pub use clock::Clock;
pub use conn::{CONGESTION_EVENTS_KEPT, ConnRef, Readiness};
pub use device::sim;
pub use device::{Device, DeviceAddrs, Medium, Offload, RxPacket, TxPacket};
pub use listener::ListenerRef;
pub use observe::{ConnectionInfo, DropCounts, ListenerInfo, TcpMib};
pub use socket::SocketOpts;
pub use stack::{Stack, StackConfig, StackCounters, StackStats};
pub use utcp_proto as proto;
pub use verdict::{PendingSyn, SynInfo, Verdict};

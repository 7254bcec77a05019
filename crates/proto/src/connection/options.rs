//! What the handshake negotiated (RFC 9293 §3.7.1 MSS; window scale,
//! timestamps and SACK-permitted join here once they are negotiated).

use super::Connection;
use crate::wire::TcpRepr;
use std::net::SocketAddr;

/// The options in force on a connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Negotiated {
    /// The MSS we advertise: the configured cap and this family's MTU room.
    pub(crate) adv_mss: u16,
    /// The send MSS: the peer's option (or the RFC default) within ours.
    pub(crate) smss: u32,
}

impl Connection {
    pub(super) fn apply_syn_options(&mut self, syn: &TcpRepr) {
        // RFC 9293 §3.7.1: without the option, 536 (IPv4) / 1220 (IPv6).
        let peer = syn
            .options
            .mss
            .map(u32::from)
            .unwrap_or_else(|| default_mss(&self.remote));
        self.opts.smss = peer.min(self.opts.adv_mss as u32).max(64);
        self.cc.set_mss(self.opts.smss);
        self.recovery.set_mss(self.opts.smss);
    }
}

/// RFC 9293 §3.7.1: the send MSS without the option, 536 (IPv4) / 1220 (IPv6).
pub(super) fn default_mss(remote: &SocketAddr) -> u32 {
    if remote.is_ipv4() { 536 } else { 1220 }
}

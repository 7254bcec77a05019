//! ICMP errors about the segments a connection sent (RFC 1122 §4.2.3.9,
//! RFC 5927, Linux's `tcp_v4_err` / `tcp_v6_err`), and path MTU discovery
//! (RFC 1191, RFC 8201).
//!
//! An error whose quoted sequence number lies outside SND.UNA..SND.MAX is
//! ignored (RFC 5927 §4.1: a blind attacker does not know it). Destination
//! unreachable is a hard error while our SYN or SYN-ACK is unacknowledged:
//! the connection fails with `HostUnreachable`, `NetworkUnreachable` or
//! `ConnectionRefused`. On a synchronized connection it is soft: recorded,
//! and reported only if the connection later times out (Linux's
//! `sk_err_soft`), so a spoofed ICMP cannot kill an established flow.
//! "Fragmentation needed" / "packet too big" lowers the MSS to what the
//! reported MTU leaves (never below 536 bytes over IPv4, 1,220 over IPv6,
//! RFC 8201 §5.1's 1,280-byte minimum MTU) and resends what is in flight
//! at the new size (Linux's `tcp_simple_retransmit`).

use super::sent::Lost;
use super::{Connection, State};
use crate::error::Error;
use crate::seq::SeqNum;
use crate::wire::icmp::IcmpError;

/// The smallest MSS path MTU discovery lowers to: IPv4 (RFC 1191's 576-byte
/// MTU less 40) and IPv6 (1,280 less 60).
const MIN_PMTU_MSS: [u32; 2] = [536, 1220];

impl Connection {
    /// An ICMP error about a segment this connection sent, quoting `seq`
    /// (see [`parse_icmp_error`](crate::wire::icmp::parse_icmp_error)).
    /// Returns whether it was taken: `false` for a quoted sequence number
    /// outside SND.UNA..SND.MAX (counted in `Stats::icmp_ignored`), or for
    /// a packet-too-big that would not lower the MSS.
    pub fn handle_icmp(&mut self, error: IcmpError, seq: SeqNum) -> bool {
        if matches!(self.state, State::Closed | State::Listen | State::TimeWait)
            || seq.before(self.snd.una)
            || !seq.before(self.snd.max)
        {
            self.stats.icmp_ignored += 1;
            tracing::debug!(parent: &self.span, ?error, seq = seq.get(), "ICMP error ignored: quoted SEQ outside SND.UNA..SND.MAX");
            return false;
        }
        self.stats.icmp_errors += 1;
        let hard = match error {
            IcmpError::PacketTooBig { mtu } => return self.lower_pmtu(mtu),
            IcmpError::NetUnreachable => Error::NetworkUnreachable,
            IcmpError::HostUnreachable => Error::HostUnreachable,
            IcmpError::PortUnreachable => Error::ConnectionRefused,
        };
        if !self.snd.syn_acked {
            // RFC 1122 §4.2.3.9 leaves it to the implementation; Linux
            // aborts a connection in SYN_SENT / SYN_RECEIVED.
            tracing::debug!(parent: &self.span, ?error, "ICMP error in the handshake: hard");
            self.fail(hard, "ICMP destination unreachable");
        } else {
            tracing::debug!(parent: &self.span, ?error, "ICMP error: soft, kept for a timeout");
            self.soft_error = Some(hard);
        }
        true
    }

    /// The error a connection that timed out reports: the last soft ICMP
    /// error if one came, else `TimedOut` (Linux's `tcp_write_err`).
    pub(super) fn timeout_error(&self) -> Error {
        self.soft_error.unwrap_or(Error::TimedOut)
    }

    /// RFC 1191 §6.3 / RFC 8201 §5.2: the path's MTU is `mtu`; a smaller
    /// MSS, and what is in flight resent at it.
    fn lower_pmtu(&mut self, mtu: u32) -> bool {
        let v6 = self.local.is_ipv6();
        let overhead = if v6 { 60 } else { 40 };
        let floor = MIN_PMTU_MSS[usize::from(v6)];
        // RFC 1191 §5: a router that does not say (0) — take the floor.
        let mss = mtu.saturating_sub(overhead).max(floor);
        let payload = if self.opts.ts.on {
            mss.saturating_sub(12)
        } else {
            mss
        };
        if payload >= self.opts.smss {
            return false;
        }
        tracing::debug!(parent: &self.span, mtu, from = self.opts.smss, to = payload, "path MTU lowered");
        self.opts.smss = payload.max(64);
        self.cc.set_mss(self.opts.smss);
        self.recovery.set_mss(self.opts.smss);
        self.stats.pmtu_lowered += 1;
        if self.sent.outstanding() {
            // Everything in flight was too big: resend it in order at the
            // new size, without a congestion response (the path dropped
            // it for its size, not for congestion).
            self.sent.mark_all_lost(Lost::Timeout);
        }
        true
    }
}

//! TIME_WAIT as a record: what remains of a connection once its buffers are
//! freed (4-tuple, SND.NXT, RCV.NXT), for 2·MSL.
//!
//! It re-ACKs a retransmitted FIN (restarting 2·MSL), closes on an exact RST
//! (RFC 9293 §3.10.7.4), and lets a new SYN reopen the 4-tuple when its sequence
//! number is above the old RCV.NXT (RFC 1122 §4.2.2.13), with an ISS above the
//! old SND.NXT.

use crate::connection::Transmit;
use crate::seq::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::{self, TcpFlags, TcpOptions, TcpRepr};
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;

/// A connection in TIME_WAIT, reduced to a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeWait {
    /// Local address.
    pub local: SocketAddr,
    /// Remote address.
    pub remote: SocketAddr,
    /// Our SND.NXT (after our FIN).
    pub snd_nxt: SeqNum,
    /// Our RCV.NXT (after the peer's FIN).
    pub rcv_nxt: SeqNum,
    /// Window to advertise in re-ACKs.
    pub window: u16,
    /// When 2·MSL ends.
    pub deadline: Instant,
    /// Hop limit of re-ACKs.
    pub hop_limit: u8,
    /// 2·MSL, to restart the deadline.
    pub time_wait: Duration,
}

/// What a segment arriving in TIME_WAIT calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeWaitAction {
    /// Drop it.
    Ignore,
    /// Send an ACK (see [`TimeWait::ack`]).
    Ack,
    /// An acceptable new SYN: hand it to the listener as a new connection whose
    /// ISS must be after `iss_above`.
    Reopen {
        /// The old SND.NXT.
        iss_above: SeqNum,
    },
    /// The record is done (RST): CLOSED.
    Close,
}

impl TimeWait {
    /// Handles a segment for this 4-tuple.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        repr: &TcpRepr,
        payload_len: usize,
    ) -> TimeWaitAction {
        let f = repr.flags;
        if f.rst() {
            // RFC 9293 §3.10.7.4 second step, with RFC 5961's exact match.
            return if repr.seq == self.rcv_nxt {
                TimeWaitAction::Close
            } else {
                TimeWaitAction::Ignore
            };
        }
        if f.syn() && !f.ack() {
            // RFC 1122 §4.2.2.13: a new incarnation may start above the old RCV.NXT.
            if repr.seq.after(self.rcv_nxt) {
                return TimeWaitAction::Reopen {
                    iss_above: self.snd_nxt,
                };
            }
            return TimeWaitAction::Ack;
        }
        if f.fin() {
            // The peer did not get our ACK of its FIN: ACK again, restart 2·MSL.
            self.deadline = now + self.time_wait;
            return TimeWaitAction::Ack;
        }
        if payload_len > 0 || f.syn() {
            return TimeWaitAction::Ack;
        }
        TimeWaitAction::Ignore
    }

    /// Whether 2·MSL has passed.
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.deadline
    }

    /// The ACK <SEQ=SND.NXT><ACK=RCV.NXT>, headers appended to `buf`.
    pub fn ack(&self, buf: &mut BytesMut) -> Transmit {
        let repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: self.snd_nxt,
            ack: self.rcv_nxt,
            flags: TcpFlags::ACK,
            window: self.window,
            urgent: 0,
            options: TcpOptions::default(),
        };
        let start = buf.len();
        wire::emit_ip_tcp(
            buf,
            self.local.ip(),
            self.remote.ip(),
            self.hop_limit,
            &repr,
            &[],
        );
        Transmit {
            src: self.local.ip(),
            dst: self.remote.ip(),
            header_len: buf.len() - start,
            repr,
            payload: Bytes::new(),
        }
    }
}

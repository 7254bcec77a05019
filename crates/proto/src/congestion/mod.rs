//! Congestion control behind a small trait: how the congestion window grows
//! with ACKs and shrinks on a congestion event or a timeout. Loss *detection*
//! (duplicate ACKs, the recovery point) and the window arithmetic of a
//! recovery episode live with the connection's recovery state
//! (`connection/recovery.rs`), not here, so a new controller (CUBIC, later)
//! only says how the window grows and by how much it backs off.

mod reno;

use crate::seq::SeqNum;
use crate::time::{Duration, Instant};
use core::fmt;

pub(crate) use reno::Reno;

/// What an ACK that advanced SND.UNA tells the controller.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AckSample {
    /// When it arrived.
    #[allow(dead_code)]
    pub(crate) now: Instant,
    /// SEG.ACK: the new SND.UNA.
    #[allow(dead_code)]
    pub(crate) ack: SeqNum,
    /// SND.NXT when it arrived (the highest sequence number sent).
    #[allow(dead_code)]
    pub(crate) snd_nxt: SeqNum,
    /// Bytes it newly acknowledged.
    pub(crate) newly_acked: u32,
    /// Bytes outstanding before it.
    pub(crate) flight_before: u32,
    /// The RTT it measured, if any (Karn).
    #[allow(dead_code)]
    pub(crate) rtt_sample: Option<Duration>,
}

/// A congestion controller (the role of Linux's `tcp_congestion_ops` and
/// quinn's `Controller`).
pub(crate) trait CongestionControl: fmt::Debug + Send {
    /// An ACK outside a recovery episode newly acknowledged data.
    fn on_ack(&mut self, ack: &AckSample);

    /// Loss was detected with `flight` bytes outstanding (RFC 5681 §3.2 step
    /// 2): ssthresh and cwnd back off to the controller's reduced window.
    fn on_congestion_event(&mut self, now: Instant, flight: u32);

    /// The retransmission timer fired with `flight` bytes outstanding
    /// (RFC 5681 §3.1): ssthresh backs off, cwnd is the loss window.
    fn on_rto(&mut self, now: Instant, flight: u32);

    /// The last reduction was spurious (the retransmitted data had arrived):
    /// cwnd and ssthresh go back to what they were before it. Nothing detects
    /// spurious retransmissions yet (timestamps, D-SACK and F-RTO come with
    /// loss recovery); the controllers implement it and are tested for it.
    #[allow(dead_code)]
    fn on_spurious_undo(&mut self);

    /// The congestion window in bytes.
    fn cwnd(&self) -> u32;

    /// The slow-start threshold in bytes (`u32::MAX` until the first loss).
    fn ssthresh(&self) -> u32;

    /// Sets cwnd: the recovery episode's window arithmetic (inflation and
    /// deflation, RFC 6582) and the initial window after a retransmitted
    /// handshake.
    fn set_cwnd(&mut self, cwnd: u32);

    /// The sender MSS changed (the handshake's option): an untouched initial
    /// window follows it.
    fn set_mss(&mut self, mss: u32);
}

/// RFC 6928: IW = min(10·MSS, max(2·MSS, 14600)).
pub(crate) fn initial_window(mss: u32) -> u32 {
    (10 * mss).min((2 * mss).max(14_600))
}

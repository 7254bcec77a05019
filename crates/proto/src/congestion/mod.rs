//! Congestion control behind a small trait: how the congestion window grows
//! with ACKs and shrinks on a congestion event or a timeout. Loss *detection*
//! (duplicate ACKs, the recovery point) and the window arithmetic of a
//! recovery episode live with the connection's recovery state
//! (`connection/recovery.rs`), not here, so a controller only says how the
//! window grows and by how much it backs off.
//!
//! Two controllers: CUBIC (RFC 9438, the default, `cubic.rs`) and Reno /
//! NewReno (RFC 5681 with RFC 6582's recovery, `reno.rs`). Both run
//! HyStart++ (RFC 9406, `hystart.rs`) in their initial slow start and
//! restart from the initial window after an idle period (RFC 5681 §4.1).

mod cubic;
mod hystart;
mod reno;

use crate::seq::SeqNum;
use crate::time::{Duration, Instant};
use core::fmt;

pub(crate) use cubic::Cubic;
pub(crate) use reno::Reno;

/// Which congestion controller a connection runs ([`Config::congestion`](crate::Config::congestion),
/// or per connection with `Connection::set_congestion`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CongestionAlgorithm {
    /// CUBIC (RFC 9438): a cubic window growth in time since the last
    /// congestion event, β = 0.7 on loss. The default, as on Linux.
    #[default]
    Cubic,
    /// NewReno (RFC 5681, RFC 6582): one SMSS per RTT in congestion
    /// avoidance, halving on loss.
    NewReno,
}

impl fmt::Display for CongestionAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CongestionAlgorithm::Cubic => "cubic",
            CongestionAlgorithm::NewReno => "newreno",
        })
    }
}

/// Why the connection's initial slow start ended (in
/// [`Stats::slow_start_exit`](crate::Stats::slow_start_exit)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SlowStartExit {
    /// Still in the initial slow start (or back in it: HyStart++'s
    /// conservative slow start saw the RTT fall again, RFC 9406 §4.3).
    #[default]
    None,
    /// HyStart++ saw a round's minimum RTT rise by its threshold (RFC 9406
    /// §4.2) and left standard slow start for conservative slow start, then
    /// congestion avoidance. A loss during conservative slow start ends it
    /// early and does not change the reason.
    HyStartDelay,
    /// A loss was detected during slow start (fast retransmit or SACK).
    Loss,
    /// The retransmission timer fired during slow start.
    Rto,
}

/// What an ACK that advanced SND.UNA tells the controller.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AckSample {
    /// When it arrived.
    pub(crate) now: Instant,
    /// SEG.ACK: the new SND.UNA.
    pub(crate) ack: SeqNum,
    /// SND.NXT when it arrived (the highest sequence number sent): where
    /// HyStart++'s next round ends (RFC 9406 §4.2, windowEnd).
    pub(crate) snd_nxt: SeqNum,
    /// Bytes it newly acknowledged.
    pub(crate) newly_acked: u32,
    /// Bytes outstanding before it.
    pub(crate) flight_before: u32,
    /// The RTT it measured, if any (Karn).
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

    /// New data is about to leave with `flight` bytes outstanding; `rto` is
    /// the current retransmission timeout. RFC 5681 §4.1: after an idle
    /// period longer than the RTO, cwnd restarts from min(cwnd, IW).
    fn on_data_sent(&mut self, now: Instant, flight: u32, rto: Duration);

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

    /// Which algorithm this is.
    fn algorithm(&self) -> CongestionAlgorithm;

    /// Why the initial slow start ended, so far.
    fn slow_start_exit(&self) -> SlowStartExit;
}

/// A new controller of `algorithm` for a sender MSS of `mss`.
pub(crate) fn new_controller(
    algorithm: CongestionAlgorithm,
    mss: u32,
) -> Box<dyn CongestionControl> {
    match algorithm {
        CongestionAlgorithm::Cubic => Box::new(Cubic::new(mss)),
        CongestionAlgorithm::NewReno => Box::new(Reno::new(mss)),
    }
}

/// RFC 6928: IW = min(10·MSS, max(2·MSS, 14600)).
pub(crate) fn initial_window(mss: u32) -> u32 {
    (10 * mss).min((2 * mss).max(14_600))
}

/// RFC 5681 §4.1 restart after idle, the state both controllers keep: when
/// the last new data left.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdleRestart {
    last_send: Option<Instant>,
}

impl IdleRestart {
    /// New data leaves at `now` with `flight` outstanding: whether the
    /// connection was idle (nothing in flight, nothing sent for more than
    /// `rto`) so that cwnd must restart from min(cwnd, IW). As Linux's
    /// `tcp_cwnd_restart`, but with RFC 5681's restart window, not Linux's
    /// halving per idle RTO.
    pub(crate) fn on_send(&mut self, now: Instant, flight: u32, rto: Duration) -> bool {
        let idle = flight == 0
            && self
                .last_send
                .is_some_and(|t| now.saturating_duration_since(t) > rto);
        self.last_send = Some(now);
        idle
    }
}

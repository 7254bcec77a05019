//! When in-order data is acknowledged (RFC 9293 §3.8.6.3, RFC 5681 §4.2,
//! RFC 1122 §4.2.3.2), as Linux's `__tcp_ack_snd_check`, quickack mode and
//! delayed-ACK timer:
//!
//! - a batch that leaves more than one full-sized segment unacknowledged
//!   is acknowledged at once (one cumulative ACK per batch); less waits for
//!   the delayed-ACK timer (`Config::delayed_ack`, 40 ms), for data to
//!   carry the ACK, or for a read that needs it;
//! - in quickack mode every batch is acknowledged at once: for a
//!   connection's first segments (up to 16 ACKs), after a duplicate or
//!   out-of-order segment, after a silence longer than the RTO, and on
//!   `set_quickack(true)`;
//! - a connection that answers data within the delayed-ACK time is
//!   interactive (Linux's pingpong mode): quick ACKs are off, since its
//!   responses carry them; a delayed-ACK timer that fires ends that;
//! - out-of-order, duplicate and hole-filling segments keep their own
//!   immediate ACKs (`pending.rs`), whatever the mode.

use super::{Connection, Timer};
use crate::time::Instant;

/// Most quick ACKs a connection owes at once (Linux's `TCP_MAX_QUICKACKS`).
const MAX_QUICKACKS: u32 = 16;
/// The receive MSS guessed before the peer's first segment (Linux's
/// `TCP_MSS_DEFAULT`, as `tcp_initialize_rcv_mss`).
const RCV_MSS_INITIAL: u32 = 536;

/// The ACK policy's state (Linux's `icsk_ack`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AckPolicy {
    /// Quick ACKs left (Linux's `icsk_ack.quick`).
    quick: u32,
    /// The connection answers data within the delayed-ACK time (Linux's
    /// pingpong mode).
    pingpong: bool,
    /// The largest segment the peer sent so far, at most our MSS (Linux's
    /// `icsk_ack.rcv_mss`): "full-sized".
    rcv_mss: u32,
    /// When in-order data last arrived (Linux's `lrcvtime`); `None` before
    /// the first.
    last_rcv: Option<Instant>,
    /// A segment smaller than `rcv_mss` arrived since the last ACK (Linux's
    /// `ICSK_ACK_PUSHED`): a read that empties the buffer ACKs it at once.
    pushed: bool,
}

impl AckPolicy {
    pub(crate) fn new() -> Self {
        AckPolicy {
            quick: 0,
            pingpong: false,
            rcv_mss: RCV_MSS_INITIAL,
            last_rcv: None,
            pushed: false,
        }
    }
}

impl Connection {
    /// Quick ACKs granted now (Linux's `tcp_incr_quickack`): half the
    /// receive window in full-sized segments, at least 2, at most 16.
    fn incr_quickack(&mut self) {
        let wnd = self
            .rcv
            .buf
            .limit()
            .min(self.opts.max_rcv_window() as usize) as u32;
        let n = (wnd / (2 * self.ack_policy.rcv_mss.max(1))).clamp(2, MAX_QUICKACKS);
        self.ack_policy.quick = self.ack_policy.quick.max(n);
    }

    /// Quickack mode (Linux's `tcp_enter_quickack_mode`): after a duplicate
    /// or out-of-order segment the next batches are ACKed at once, so the
    /// sender's recovery has its ACK clock.
    pub(super) fn enter_quickack(&mut self) {
        self.incr_quickack();
        self.ack_policy.pingpong = false;
    }

    /// In quickack mode (Linux's `tcp_in_quickack_mode`).
    fn in_quickack(&self) -> bool {
        self.ack_policy.quick > 0 && !self.ack_policy.pingpong
    }

    /// In-order text of `len` bytes arrived (Linux's `tcp_measure_rcv_mss`
    /// and `tcp_event_data_recv`): a cumulative ACK is owed, which may wait.
    pub(super) fn ack_policy_on_data(&mut self, now: Instant, len: u32) {
        // A full segment's payload: our MSS, less the timestamps option in
        // force (a super-segment from receive offload counts as full).
        let full = u32::from(self.opts.adv_mss) - if self.opts.ts.on { 12 } else { 0 };
        let p = &mut self.ack_policy;
        if len >= p.rcv_mss {
            p.rcv_mss = len.min(full);
        } else {
            p.pushed = true;
        }
        match p.last_rcv {
            // The first data: the delayed-ACK engine starts in quickack mode.
            None => self.incr_quickack(),
            // A silence longer than the RTO: the sender is restarting its
            // window, so ACK it quickly.
            Some(t) if now.saturating_duration_since(t) > self.rtt.rto() => self.incr_quickack(),
            Some(_) => {}
        }
        self.ack_policy.last_rcv = Some(now);
        self.pending.data_ack = true;
    }

    /// Whether the cumulative ACK owed for in-order data goes now (Linux's
    /// `__tcp_ack_snd_check`), called once the batch is in (from
    /// `poll_transmit`); if not, the delayed-ACK timer runs.
    pub(super) fn data_ack_due(&mut self, now: Instant) -> bool {
        let delay = self.cfg.delayed_ack;
        if delay.is_zero() {
            return true;
        }
        // RFC 5681 §4.2: an ACK at least for every second full-sized segment.
        if self.more_than_a_segment_unacked() {
            return true;
        }
        if self.in_quickack() {
            self.stats.quick_acks += 1;
            return true;
        }
        if !self.timers.is_set(Timer::DelayedAck) {
            self.timers.set(Timer::DelayedAck, now + delay);
        }
        false
    }

    /// More than one full-sized segment received since the last ACK sent
    /// (Linux's `rcv_nxt - rcv_wup > rcv_mss`).
    fn more_than_a_segment_unacked(&self) -> bool {
        let unacked = self.rcv.nxt.diff(self.opts.ts.last_ack_sent).max(0) as u32;
        unacked > self.ack_policy.rcv_mss
    }

    /// A segment acknowledging RCV.NXT is being sent: nothing is owed any
    /// more (Linux's `tcp_event_ack_sent`, which counts a quick ACK down).
    pub(super) fn ack_policy_on_ack_sent(&mut self) {
        if self.pending.data_ack {
            self.ack_policy.quick = self.ack_policy.quick.saturating_sub(1);
        }
        self.pending.data_ack = false;
        self.ack_policy.pushed = false;
        self.timers.stop(Timer::DelayedAck);
    }

    /// New data is leaving: sent within the delayed-ACK time of the last
    /// data received, it answers it, and the connection is interactive
    /// (Linux's `tcp_event_data_sent`).
    pub(super) fn ack_policy_on_data_sent(&mut self, now: Instant) {
        if let Some(t) = self.ack_policy.last_rcv
            && now.saturating_duration_since(t) < self.cfg.delayed_ack
        {
            self.ack_policy.pingpong = true;
        }
    }

    /// The delayed-ACK timer fired (Linux's `tcp_delack_timer_handler`):
    /// the owed ACK goes; an interactive connection whose answer did not
    /// come in time is interactive no more.
    pub(super) fn on_delayed_ack_timeout(&mut self) {
        if !self.pending.data_ack {
            return;
        }
        self.pending.ack = true;
        self.stats.delayed_acks += 1;
        self.ack_policy.pingpong = false;
    }

    /// The application read: an ACK still owed goes now if more than one
    /// full-sized segment waits for it, or if a small segment did and the
    /// read emptied the buffer (not when interactive: the answer will
    /// carry it). A window update goes when the window the peer sees is at
    /// most half what we would offer now and would at least double
    /// (Linux's `tcp_cleanup_rbuf`), so a read does not add an ACK per
    /// batch; otherwise the next ACK carries the larger window.
    pub(super) fn ack_policy_after_read(&mut self) {
        let mut now = false;
        if self.pending.data_ack {
            let pushed =
                self.ack_policy.pushed && !self.ack_policy.pingpong && self.rcv.buf.readable() == 0;
            now = self.more_than_a_segment_unacked() || pushed;
        }
        let max = self.opts.max_rcv_window();
        let seen = self.rcv.adv.diff(self.rcv.nxt).max(0) as u32;
        let clamp = (self.rcv.buf.limit() as u32).min(max);
        if seen.saturating_mul(2) <= clamp {
            let offer = self.rcv.buf.space().min(max as usize) as u32;
            if offer >= self.sws_step() && offer >= seen.saturating_mul(2) && offer > seen {
                now = true;
            }
        }
        if now {
            self.pending.ack = true;
            self.pending.flush_hint = true;
        }
    }

    /// Whether quick ACKs are on (`TCP_QUICKACK` as Linux reads it: quick
    /// ACKs left and the connection not interactive).
    pub fn quickack(&self) -> bool {
        self.in_quickack()
    }

    /// `TCP_QUICKACK`, as Linux: `true` enters quickack mode (the next
    /// batches are ACKed at once, an ACK owed now goes at the next
    /// `poll_transmit`); `false` makes the connection interactive (ACKs
    /// wait for data or the delayed-ACK timer). Not permanent: the policy
    /// goes on adapting afterwards.
    ///
    /// ```
    /// use utcp_proto::{Config, Connection, Instant, SeqNum};
    /// let mut c = Connection::connect(
    ///     Config::default(),
    ///     "10.0.0.1:40000".parse().unwrap(),
    ///     "10.0.0.2:80".parse().unwrap(),
    ///     SeqNum::new(1),
    ///     Instant::ZERO,
    /// )?;
    /// c.set_quickack(true);
    /// assert!(c.quickack());
    /// c.set_quickack(false);
    /// assert!(!c.quickack());
    /// # Ok::<(), utcp_proto::Error>(())
    /// ```
    pub fn set_quickack(&mut self, quickack: bool) {
        if quickack {
            self.ack_policy.quick = MAX_QUICKACKS;
            self.ack_policy.pingpong = false;
            if self.pending.data_ack {
                self.pending.ack = true;
                self.pending.flush_hint = true;
            }
        } else {
            self.ack_policy.pingpong = true;
        }
    }
}

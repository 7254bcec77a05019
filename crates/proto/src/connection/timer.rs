//! The connection's timers: a fixed table of optional deadlines, the next
//! deadline being their minimum (the shape of quinn's `TimerTable`).

use crate::time::Instant;

/// A connection timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Retransmission timeout (RFC 6298), also for SYN, SYN-ACK and FIN.
    Rto = 0,
    /// Zero-window probe (RFC 9293 §3.8.6.1).
    Persist = 1,
    /// Orphaned FIN_WAIT_2 timeout.
    FinWait2 = 2,
    /// TIME_WAIT's 2·MSL.
    TimeWait = 3,
    /// RACK's reordering timer (RFC 8985 §6.2 step 5): a segment becomes
    /// lost when its reordering window has passed.
    Reorder = 4,
    /// The tail loss probe's timeout, PTO (RFC 8985 §7.2).
    Probe = 5,
    /// The pacing clock lets the next segment of new data go (Linux's
    /// `pacing_timer`, `tcp_pace_kick`).
    Pace = 6,
    /// The keepalive timer (RFC 1122 §4.2.3.6, Linux's
    /// `tcp_keepalive_timer`): the idle time, then the probe interval.
    Keepalive = 7,
    /// The user timeout (RFC 9293 §3.10.8, Linux `TCP_USER_TIMEOUT`): the
    /// oldest unacknowledged data has waited too long.
    UserTimeout = 8,
    /// The delayed-ACK timer (RFC 1122 §4.2.3.2, RFC 5681 §4.2; Linux's
    /// `tcp_delack_timer`): in-order data waited this long for its ACK.
    DelayedAck = 9,
}

const COUNT: usize = 10;
/// The order in which timers due at once fire: the user timeout first (a
/// connection it ends sends nothing more), then a probe clamped to the
/// retransmission timer's deadline goes first (RFC 8985 §7.2), and RACK's
/// marks before the timeout would mark everything; pacing last (it only
/// lets the next poll send).
const ALL: [Timer; COUNT] = [
    Timer::UserTimeout,
    Timer::Probe,
    Timer::Reorder,
    Timer::Rto,
    Timer::Persist,
    Timer::FinWait2,
    Timer::TimeWait,
    Timer::Keepalive,
    Timer::DelayedAck,
    Timer::Pace,
];

/// One deadline per [`Timer`], and the counters of the timers that back off.
#[derive(Clone, Debug, Default)]
pub(crate) struct TimerTable {
    at: [Option<Instant>; COUNT],
    /// Consecutive retransmission timeouts (SYN, SYN-ACK or data).
    pub(crate) retries: u32,
    /// Persist timer backoff exponent (RFC 9293 §3.8.6.1).
    pub(crate) persist_backoff: u32,
    /// Unanswered zero-window probes (RFC 1122 §4.2.2.17); reset by any
    /// acceptable ACK.
    pub(crate) probes_out: u32,
}

impl TimerTable {
    pub(crate) fn set(&mut self, t: Timer, at: Instant) {
        self.at[t as usize] = Some(at);
    }

    pub(crate) fn stop(&mut self, t: Timer) {
        self.at[t as usize] = None;
    }

    pub(crate) fn is_set(&self, t: Timer) -> bool {
        self.at[t as usize].is_some()
    }

    /// When timer `t` fires, if it is set.
    pub(crate) fn deadline(&self, t: Timer) -> Option<Instant> {
        self.at[t as usize]
    }

    pub(crate) fn stop_all(&mut self) {
        self.at = [None; COUNT];
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// Takes the first timer due at `now`, clearing it.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        for t in ALL {
            if let Some(at) = self.at[t as usize]
                && at <= now
            {
                self.at[t as usize] = None;
                return Some(t);
            }
        }
        None
    }
}

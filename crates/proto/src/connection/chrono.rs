//! What held the sender back, over time (Linux's `tcp_chrono_*`, shown as
//! `tcpi_rwnd_limited`, `tcpi_sndbuf_limited` and, here, cwnd-limited time),
//! and the delivery rate (bytes delivered per round trip, Linux's
//! `tcpi_delivery_rate` in spirit).

use super::Connection;
use crate::time::Instant;

/// What limits the sender now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Limit {
    /// Sending, or nothing to send.
    #[default]
    None,
    /// The congestion window is full.
    Cwnd,
    /// The peer's receive window is full.
    Rwnd,
    /// Everything queued is in flight and the send buffer is full: the
    /// application cannot queue more.
    Sndbuf,
}

/// Time per [`Limit`], and the delivery-rate round in progress.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Chrono {
    cur: Limit,
    since: Instant,
    /// µs spent in each limit (indexed by `Limit as usize`).
    us: [u64; 4],
    /// Bytes delivered in all, and the round's start: (delivered, when).
    delivered: u64,
    round: Option<(u64, Instant)>,
    /// The last round's rate, bytes per second.
    pub(crate) rate: u64,
}

impl Chrono {
    fn set(&mut self, now: Instant, l: Limit) {
        if l == self.cur {
            return;
        }
        self.us[self.cur as usize] += now.as_micros().saturating_sub(self.since.as_micros());
        self.cur = l;
        self.since = now;
    }

    /// µs spent limited by `l` (up to the last change of limit).
    pub(crate) fn time(&self, l: Limit) -> u64 {
        self.us[l as usize]
    }
}

impl Connection {
    /// The sender is limited by `l` from `now` on.
    #[inline]
    pub(super) fn note_limit(&mut self, now: Instant, l: Limit) {
        self.chrono.set(now, l);
    }

    /// `bytes` were delivered (acknowledged or SACKed) at `now`: once per
    /// smoothed RTT the delivery rate is taken over the round.
    pub(super) fn note_delivered(&mut self, now: Instant, bytes: u32) {
        let c = &mut self.chrono;
        c.delivered += u64::from(bytes);
        let Some(srtt) = self.rtt.srtt() else {
            return;
        };
        let (d0, t0) = *c.round.get_or_insert((c.delivered, now));
        let span = now.as_micros().saturating_sub(t0.as_micros());
        if span >= srtt.as_micros() as u64 && span > 0 {
            c.rate = (c.delivered - d0) * 1_000_000 / span;
            c.round = Some((c.delivered, now));
        }
    }
}

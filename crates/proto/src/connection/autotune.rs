//! Buffer auto-tuning, as Linux does it: the receive buffer grows toward
//! twice what the application read in the last round trip (dynamic
//! right-sizing, `tcp_rcv_space_adjust`), from the configured start to
//! `recv_buffer_max`; the send buffer grows with cwnd (`tcp_sndbuf_expand`)
//! to `send_buffer_max`. Both are limits, not allocations. A size the
//! application sets on the socket fixes that direction.
//!
//! The round trip a receiver sees is its own estimate (`tcp_rcv_rtt_*`):
//! from the echoed timestamp of arriving data when timestamps are in force,
//! otherwise from the time a window's worth of data takes to arrive.

use super::Connection;
use crate::seq::SeqNum;
use crate::time::{Duration, Instant};

/// The auto-tuning state of one connection.
#[derive(Clone, Debug)]
pub(crate) struct AutoTune {
    /// The receive buffer may still grow (to `rcv_max`).
    rcv_on: bool,
    rcv_max: usize,
    /// The send buffer may still grow (to `snd_max`).
    snd_on: bool,
    snd_max: usize,
    /// The receiver's RTT estimate in µs (0: none yet).
    rcv_rtt_us: u64,
    /// Without timestamps: RCV.NXT to reach, and when the measurement began.
    rtt_mark: Option<(SeqNum, Instant)>,
    /// Bytes the application has read, in all.
    copied: u64,
    /// The current measurement: `copied` and the time when it began.
    start: Option<(u64, Instant)>,
    /// rcvq_space.space: what was read in the last measured round trip.
    space: usize,
}

impl AutoTune {
    pub(crate) fn new(rcv: usize, rcv_max: usize, snd: usize, snd_max: usize, mss: u32) -> Self {
        AutoTune {
            rcv_on: rcv_max > rcv,
            rcv_max,
            snd_on: snd_max > snd,
            snd_max,
            rcv_rtt_us: 0,
            rtt_mark: None,
            copied: 0,
            start: None,
            space: rcv.min(10 * mss as usize),
        }
    }

    /// The application read `n` bytes.
    #[inline]
    pub(crate) fn on_read(&mut self, n: usize) {
        self.copied += n as u64;
    }

    /// A fixed receive buffer was set: no more growth.
    pub(crate) fn fix_rcv(&mut self) {
        self.rcv_on = false;
    }

    /// A fixed send buffer was set: no more growth.
    pub(crate) fn fix_snd(&mut self) {
        self.snd_on = false;
    }

    /// The receiver's RTT estimate (for the stats).
    pub(crate) fn rcv_rtt(&self) -> Option<Duration> {
        (self.rcv_rtt_us > 0).then(|| Duration::from_micros(self.rcv_rtt_us))
    }

    /// rcvq_space.space (for the stats).
    pub(crate) fn rcv_space(&self) -> usize {
        self.space
    }

    /// Linux's tcp_rcv_rtt_update: a timestamp sample is smoothed (gain
    /// 1/8); a window sample only lowers the estimate (it is an upper
    /// bound: the sender may not have filled the window).
    fn rtt_sample(&mut self, sample_us: u64, from_window: bool) {
        let sample = sample_us.max(1);
        let m = self.rcv_rtt_us;
        self.rcv_rtt_us = if m == 0 {
            sample
        } else if from_window {
            m.min(sample)
        } else {
            (m * 7 + sample) / 8
        };
    }
}

impl Connection {
    /// In-order data arrived at `now` (`tsecr`: the segment's echoed
    /// timestamp): measure the receiver's RTT and, once per round trip,
    /// grow the receive buffer.
    pub(super) fn autotune_on_data(&mut self, now: Instant, tsecr: Option<u32>) {
        let at = &mut self.autotune;
        if !at.rcv_on {
            return;
        }
        // Within a measured round nothing is due (the common case, kept
        // cheap): the estimate is refreshed once per round, at its end.
        let now_us = now.as_micros();
        if at.rcv_rtt_us != 0
            && let Some((_, t0)) = at.start
            && now_us.saturating_sub(t0.as_micros()) < at.rcv_rtt_us
        {
            return;
        }
        // tcp_rcv_rtt_measure_ts / tcp_rcv_rtt_measure.
        match tsecr.filter(|&e| self.opts.ts.on && e != 0) {
            Some(e) => {
                let ms = self.opts.ts.val(now).wrapping_sub(e) as i32;
                if ms >= 0 {
                    at.rtt_sample(ms as u64 * 1000, false);
                }
            }
            None => match at.rtt_mark {
                Some((seq, t0)) if !self.rcv.nxt.before(seq) => {
                    at.rtt_sample(now_us.saturating_sub(t0.as_micros()), true);
                    at.rtt_mark = None;
                }
                Some(_) => {}
                None => {
                    let wnd = self.rcv.adv.diff(self.rcv.nxt).max(1) as u32;
                    at.rtt_mark = Some((self.rcv.nxt + wnd, now));
                }
            },
        }
        if at.rcv_rtt_us == 0 {
            return;
        }
        let (copied0, t0) = *at.start.get_or_insert((at.copied, now));
        if now_us.saturating_sub(t0.as_micros()) < at.rcv_rtt_us {
            return;
        }
        // tcp_rcv_space_adjust: what the application read in a round trip.
        let copied = (at.copied - copied0) as usize;
        at.start = Some((at.copied, now));
        if copied <= at.space {
            return;
        }
        let mss = self.opts.smss as usize;
        let mut rcvwin = 2 * copied + 16 * mss;
        // Growing faster than the sender's slow start doubles it would
        // leave the window behind: add the growth seen, twice.
        let grow = rcvwin.saturating_mul(copied - at.space) / at.space.max(1);
        rcvwin = rcvwin.saturating_add(grow.saturating_mul(2));
        at.space = copied;
        let limit = rcvwin.min(at.rcv_max);
        if limit > self.rcv.buf.limit() {
            tracing::trace!(parent: &self.span, from = self.rcv.buf.limit(), to = limit, "receive buffer grows");
            self.rcv.buf.set_limit(limit);
        }
    }

    /// After an ACK: the send buffer follows the congestion window (twice
    /// cwnd: one window in flight, one queued behind it).
    pub(super) fn autotune_send_buffer(&mut self) {
        let at = &self.autotune;
        if !at.snd_on {
            return;
        }
        let want = (2 * self.cc.cwnd() as usize).min(at.snd_max);
        if want > self.snd.buf.limit() {
            self.snd.buf.set_limit(want);
        }
    }
}

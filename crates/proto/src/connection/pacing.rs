//! Sender pacing, as Linux's internal TCP pacing (`tcp_update_pacing_rate`,
//! `tcp_pacing_check`, `tcp_update_skb_after_send`, with the burst size of
//! `tcp_tso_autosize`).
//!
//! The rate is cwnd / SRTT scaled by 200 % in slow start (while cwnd <
//! ssthresh / 2: `tcp_pacing_ss_ratio`) and by 120 % after
//! (`tcp_pacing_ca_ratio`), so that slow start sends each round spread
//! over the round trip instead of as one line-rate burst: the queue then
//! builds up gradually and HyStart++ (RFC 9406 §4.2) sees the RTT rise
//! before the queue overflows.
//!
//! A pacing clock (`tcp_wstamp_ns`) says when the next segment of new data
//! may leave; each data segment sent moves it on by its length at the rate.
//! A segment may leave while the clock is less than a burst ahead of now:
//! the burst is what Linux sends as one TSO packet of `tcp_tso_autosize`'s
//! size (about 1 ms at the rate, at least two segments), so that the sends
//! an ACK releases are not chopped into single segments at high rates, and
//! a driver whose timers tick once a millisecond still keeps the rate.
//! Retransmissions and pure ACKs are never held back (what they send still
//! moves the clock), nothing is paced before an RTT is known, and the clock
//! starts with the tenth data segment (sch_fq and Linux leave the first 10
//! MSS unpaced, `data_segs_out >= 10`): the initial window leaves at once.
//! Nor is a window of ten segments or fewer (a departure from Linux's
//! internal pacing, which Linux uses only with BBR or the fq qdisc: with
//! CUBIC it does not pace at all): after losses cwnd is a few segments,
//! and paced over an SRTT that the peer's delayed ACKs stretch, such a
//! window went out one segment per delayed ACK.
//!
//! Times are proto's microsecond [`Instant`]; the clock itself counts
//! nanoseconds, so that at high rates a segment's share (about 1 µs per
//! 1448 bytes at 10 Gbit/s) is not rounded away. Integer math only.

use super::{Connection, Timer};
use crate::time::Instant;

/// Linux's `tcp_pacing_ss_ratio`: 200 % of cwnd / SRTT in slow start.
const SS_RATIO_PERCENT: u64 = 200;
/// Linux's `tcp_pacing_ca_ratio`: 120 % of cwnd / SRTT otherwise.
const CA_RATIO_PERCENT: u64 = 120;
/// Data segments that leave before the clock starts (sch_fq's and
/// `tcp_update_skb_after_send`'s first 10 MSS).
const UNPACED_SEGMENTS: u64 = 10;
/// Linux's `sk_pacing_shift`: a burst is rate >> 10 bytes.
const PACING_SHIFT: u32 = 10;
/// So a burst lasts 1 s >> `sk_pacing_shift`, in ns (about 1 ms).
const BURST_NS: u64 = 1_000_000_000 >> PACING_SHIFT;
/// Linux's `tcp_min_tso_segs`: a burst is at least two segments.
const MIN_BURST_SEGMENTS: u64 = 2;

/// The pacing clock and its counters.
#[derive(Clone, Debug, Default)]
pub(super) struct Pacer {
    /// When the next data segment may leave, in ns of proto's clock
    /// (`tcp_wstamp_ns`).
    next_ns: u64,
    /// How far ahead of now the clock may be for a segment to leave: a
    /// burst at the rate of the last segment sent, in ns; 0 while nothing
    /// is paced (pacing off, no RTT yet, the first ten segments).
    burst_ns: u64,
    /// Data segments sent, retransmissions included (`data_segs_out`).
    segs_out: u64,
    /// Times the clock held a segment of new data back.
    pub(super) held: u64,
}

impl Connection {
    /// The pacing rate in payload bytes per second (Linux's
    /// `tcp_update_pacing_rate`): max(cwnd, in flight) / SRTT × 200 % in slow
    /// start (cwnd < ssthresh / 2), × 120 % otherwise. `None` when pacing is
    /// off or no RTT is known yet.
    pub(super) fn pacing_rate(&self) -> Option<u64> {
        let (window_pct, srtt_us) = self.pacing_terms()?;
        Some((window_pct * 10_000 / srtt_us).max(1))
    }

    /// The rate's terms: the window in bytes × the ratio in percent, and
    /// SRTT in µs (the rate is their quotient × 10 000), so that a
    /// segment's share of the clock takes one division.
    fn pacing_terms(&self) -> Option<(u64, u64)> {
        if !self.cfg.pacing {
            return None;
        }
        self.rate_terms()
    }

    /// The terms of the rate Linux computes whether or not it paces
    /// (`sk_pacing_rate`, which also sizes TSO bursts).
    fn rate_terms(&self) -> Option<(u64, u64)> {
        let srtt = self.rtt.srtt()?;
        let srtt_us = (srtt.as_secs() * 1_000_000 + u64::from(srtt.subsec_micros())).max(1);
        let cwnd = self.cc.cwnd();
        let ratio = if cwnd < self.cc.ssthresh() / 2 {
            SS_RATIO_PERCENT
        } else {
            CA_RATIO_PERCENT
        };
        let window = u64::from(cwnd.max(self.snd.flight())).max(1);
        Some((window * ratio, srtt_us))
    }

    /// How many segments of `room` payload bytes one super-segment of new
    /// data may carry (Linux's `tcp_tso_autosize`): about 1 ms at the rate
    /// (rate >> `sk_pacing_shift` bytes), at least two segments, and no
    /// more than the device's largest packet holds (headers with the most
    /// options counted). 1 when the device does not segment, or its packet
    /// holds fewer than two segments. Before an RTT is known, the device's
    /// limit alone (as Linux, whose rate is then unbounded).
    pub(super) fn tso_segments(&self, room: u32) -> u32 {
        let off = self.cfg.tx_offload;
        if !off.segments() || room == 0 {
            return 1;
        }
        let ip = if self.local.is_ipv4() { 20 } else { 40 };
        let by_device = (off.max_packet.min(65_535).saturating_sub(ip + 60) / room as usize) as u32;
        if by_device < 2 {
            return 1;
        }
        let by_rate = match self.rate_terms() {
            Some((window_pct, srtt_us)) => {
                let burst = (window_pct * 10_000 / srtt_us) >> PACING_SHIFT;
                (burst / u64::from(room)).clamp(MIN_BURST_SEGMENTS, u64::from(u32::MAX)) as u32
            }
            None => by_device,
        };
        by_device.min(by_rate)
    }

    /// Linux's `tcp_pacing_check`: whether the pacing clock holds back a
    /// segment of new data now. A segment may leave while the clock is less
    /// than a burst ahead of `now` (the burst of `tcp_tso_autosize`: rate >>
    /// `sk_pacing_shift`, about 1 ms, two segments at least). When the clock
    /// holds, the [`Timer::Pace`] deadline is when half a burst may leave
    /// again (Linux's `pacing_timer`), so that a wake sends half a burst or
    /// more, not one segment.
    pub(super) fn pacing_holds(&mut self, now: Instant) -> bool {
        let now_ns = now.as_micros().saturating_mul(1000);
        let p = &mut self.pacer;
        if p.burst_ns == 0 || p.next_ns < now_ns.saturating_add(p.burst_ns) {
            self.timers.stop(Timer::Pace);
            return false;
        }
        p.held += 1;
        let wake = Instant::from_micros((p.next_ns - p.burst_ns / 2).div_ceil(1000));
        tracing::trace!(parent: &self.span, wake_us = wake.as_micros(), "pacing holds");
        self.timers.set(Timer::Pace, wake);
        true
    }

    /// Linux's `tcp_update_skb_after_send`: a data segment of `len` bytes
    /// (new or retransmitted) left at `now`; the clock moves on by its
    /// length at the rate, less up to half of that for the time the clock
    /// was behind `now` (Linux's allowance for the OS's jitter).
    pub(super) fn pacing_on_send(&mut self, now: Instant, len: u32) {
        let now_ns = now.as_micros().saturating_mul(1000);
        // A super-segment counts as the segments the device cuts.
        let segs = u64::from(len.div_ceil(self.opts.smss.max(1)).max(1));
        let p = &mut self.pacer;
        p.segs_out += segs;
        let prior = p.next_ns;
        p.next_ns = p.next_ns.max(now_ns);
        // A window of at most ten segments is not paced either: it may
        // leave as the initial window does (RFC 6928), and spreading it over
        // an SRTT the peer's delayed ACKs stretch (a lone segment waits up
        // to 40 ms for its ACK) lets the ACK clock run at a segment or two
        // per delayed ACK, which is what a small window after losses hit.
        let small = u64::from(self.cc.cwnd()) <= UNPACED_SEGMENTS * u64::from(self.opts.smss);
        let terms = if p.segs_out >= UNPACED_SEGMENTS && !small {
            self.pacing_terms()
        } else {
            None
        };
        let p = &mut self.pacer;
        let Some((window_pct, srtt_us)) = terms else {
            p.burst_ns = 0;
            return;
        };
        // len / rate in ns, rate = window_pct × 10 000 / srtt_us.
        let ns_for = |bytes: u64| bytes * srtt_us * 100_000 / window_pct;
        // The burst of tcp_tso_autosize: rate >> sk_pacing_shift bytes
        // (1 ms), or two segments where that is more.
        let min_burst = MIN_BURST_SEGMENTS * u64::from(self.opts.smss);
        p.burst_ns = if window_pct * 10_000 >= (min_burst << PACING_SHIFT) * srtt_us {
            BURST_NS
        } else {
            ns_for(min_burst)
        };
        let mut gap = ns_for(u64::from(len));
        let credit = p.next_ns - prior;
        gap -= (gap / 2).min(credit);
        p.next_ns += gap;
    }
}

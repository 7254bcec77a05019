//! What the handshake negotiated: the MSS (RFC 9293 §3.7.1), window scaling
//! and timestamps (RFC 7323), and the one place windows are scaled.

use super::Connection;
use crate::config::Config;
use crate::seq::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::{TcpFlags, TcpOptions, TcpRepr};
use std::net::SocketAddr;

/// RFC 7323 §2.3: the largest shift.
pub(crate) const MAX_WSCALE: u8 = 14;

/// Bytes the timestamps option takes in every segment (10, padded to 12).
pub(crate) const TS_OPTION_LEN: u32 = 12;

/// RFC 7323 §5.5: TS.Recent is invalid after 24 days of idleness.
const TS_RECENT_VALID: Duration = Duration::from_secs(24 * 24 * 3600);

/// The options in force on a connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Negotiated {
    /// The MSS we advertise: the configured cap and this family's MTU room.
    pub(crate) adv_mss: u16,
    /// The send MSS: the peer's option (or the RFC default) within ours,
    /// less the timestamps option when in force (the payload per segment).
    pub(crate) smss: u32,
    /// The shift we offer (RFC 7323 §2.2): what fits the receive-buffer
    /// limit. In force only when the peer offered its own.
    pub(crate) rcv_wscale: u8,
    /// The peer's shift, applied to SEG.WND of every non-SYN segment.
    pub(crate) snd_wscale: u8,
    /// Window scaling is in force (both SYNs carried the option).
    pub(crate) ws: bool,
    /// Timestamps: offered, then in force if both SYNs carried them.
    pub(crate) ts: Timestamps,
    /// SACK is in force (both SYNs carried SACK-permitted, RFC 2018 §2).
    pub(crate) sack: bool,
}

/// RFC 7323 §3–5: the timestamps clock and TS.Recent.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timestamps {
    /// Both SYNs carried the option: every segment but an RST carries it.
    pub(crate) on: bool,
    /// TSval = offset + proto time in ms (a per-connection random offset).
    pub(crate) offset: u32,
    /// TS.Recent: the peer's TSval to echo.
    pub(crate) recent: u32,
    /// When TS.Recent was taken.
    pub(crate) recent_at: Instant,
    /// Last.ACK.sent: the ACK number of the last segment we sent.
    pub(crate) last_ack_sent: SeqNum,
}

impl Timestamps {
    /// Our TSval now: a 1 ms clock from proto time, offset per connection.
    pub(crate) fn val(&self, now: Instant) -> u32 {
        self.offset.wrapping_add(now.as_millis() as u32)
    }

    /// RFC 7323 §5.3 R1: a segment whose TSval is older than a valid
    /// TS.Recent fails PAWS.
    pub(crate) fn paws_rejects(&self, now: Instant, tsval: u32) -> bool {
        self.on
            && (self.recent.wrapping_sub(tsval) as i32) > 0
            && now.saturating_duration_since(self.recent_at) < TS_RECENT_VALID
    }

    /// RFC 7323 §4.3 (2): "If SEG.TSval ≥ TS.Recent and SEG.SEQ ≤
    /// Last.ACK.sent, then SEG.TSval is copied to TS.Recent".
    pub(crate) fn update_recent(&mut self, now: Instant, seq: SeqNum, tsval: u32) {
        if self.on
            && !seq.after(self.last_ack_sent)
            && (tsval.wrapping_sub(self.recent) as i32) >= 0
        {
            self.recent = tsval;
            self.recent_at = now;
        }
    }

    /// RFC 7323 §4.1: the RTT a TSecr tells (our TSval echoed), if sane.
    pub(crate) fn rtt(&self, now: Instant, tsecr: u32, max: Duration) -> Option<Duration> {
        if !self.on || tsecr == 0 {
            return None;
        }
        let ms = self.val(now).wrapping_sub(tsecr) as i32;
        let d = Duration::from_millis(u64::try_from(ms).ok()?);
        (d <= max).then_some(d)
    }
}

/// The smallest shift that lets the window reach the receive-buffer limit.
pub(crate) fn wscale_for(limit: usize) -> u8 {
    let mut s = 0;
    while s < MAX_WSCALE && (limit >> s) > 65_535 {
        s += 1;
    }
    s
}

impl Negotiated {
    pub(crate) fn new(cfg: &Config, remote: &SocketAddr) -> Self {
        let adv_mss = cfg.mss_for(remote.is_ipv6());
        Negotiated {
            adv_mss,
            smss: default_mss(remote).min(adv_mss as u32),
            rcv_wscale: wscale_for(cfg.recv_buffer.max(cfg.recv_buffer_max)),
            snd_wscale: 0,
            ws: false,
            ts: Timestamps::default(),
            sack: false,
        }
    }

    /// SACK blocks that fit beside the other options (RFC 2018 §3: 4, or 3
    /// with timestamps).
    pub(crate) fn max_sack_blocks(&self) -> usize {
        if self.ts.on { 3 } else { 4 }
    }

    /// Our shift in force (0 without window scaling).
    pub(crate) fn rcv_shift(&self) -> u8 {
        if self.ws { self.rcv_wscale } else { 0 }
    }

    /// The largest window we can advertise.
    pub(crate) fn max_rcv_window(&self) -> u32 {
        65_535 << self.rcv_shift()
    }

    /// SEG.WND in bytes: scaled in every segment but a SYN (RFC 7323 §2.2:
    /// "the window field in a SYN … is never scaled").
    pub(crate) fn seg_wnd(&self, r: &TcpRepr) -> u32 {
        if r.flags.syn() || !self.ws {
            u32::from(r.window)
        } else {
            u32::from(r.window) << self.snd_wscale
        }
    }

    /// The window field for `wnd` bytes (rounded down to the shift: the
    /// right edge the peer sees may then lie a little left of what we
    /// accept, RFC 7323 §2.4).
    pub(crate) fn window_field(&self, wnd: u32) -> u16 {
        (wnd >> self.rcv_shift()).min(65_535) as u16
    }
}

impl Connection {
    /// The peer's SYN (passive open) or SYN-ACK (active open): the MSS, and
    /// window scaling and timestamps when both sides offer them.
    pub(super) fn apply_syn_options(&mut self, now: Instant, syn: &TcpRepr) {
        let o = &syn.options;
        // RFC 9293 §3.7.1: without the option, 536 (IPv4) / 1220 (IPv6).
        let peer = o
            .mss
            .map(u32::from)
            .unwrap_or_else(|| default_mss(&self.remote));
        // RFC 7323 §2.2: scaling is in force only if both SYNs carry the
        // option; otherwise both shifts are 0.
        match o.window_scale {
            Some(s) if self.cfg.window_scaling => {
                if s > MAX_WSCALE {
                    // §2.3: "use 14 instead of the value received".
                    tracing::debug!(parent: &self.span, shift = s, "window scale above 14 clamped");
                }
                self.opts.ws = true;
                self.opts.snd_wscale = s.min(MAX_WSCALE);
            }
            _ => {
                self.opts.ws = false;
                self.opts.snd_wscale = 0;
            }
        }
        // RFC 7323 §3.2: timestamps are in force if both SYNs carry them.
        self.opts.ts.on = false;
        if self.cfg.timestamps
            && let Some((tsval, _)) = o.timestamps
        {
            self.opts.ts.on = true;
            self.opts.ts.recent = tsval;
            self.opts.ts.recent_at = now;
        }
        // RFC 2018 §2: SACK-permitted in both SYNs.
        self.opts.sack = self.cfg.sack && o.sack_permitted;
        self.recovery.set_sack(self.opts.sack);
        let mut smss = peer.min(self.opts.adv_mss as u32);
        if self.opts.ts.on {
            // The option rides in every segment: the payload is 12 bytes less.
            smss -= TS_OPTION_LEN.min(smss);
        }
        self.opts.smss = smss.max(64);
        self.cc.set_mss(self.opts.smss);
        self.recovery.set_mss(self.opts.smss);
    }

    /// The options of a segment we send: on a SYN the MSS, window scale and
    /// timestamps we offer (on a SYN-ACK only those the peer offered); on
    /// every other segment but an RST the timestamps when in force.
    pub(super) fn segment_options(&self, now: Instant, flags: TcpFlags) -> TcpOptions {
        let mut options = TcpOptions::default();
        let tsval = self.opts.ts.val(now);
        if flags.syn() {
            options.mss = Some(self.opts.adv_mss);
            let syn_ack = flags.ack();
            if self.cfg.window_scaling && (!syn_ack || self.opts.ws) {
                options.window_scale = Some(self.opts.rcv_wscale);
            }
            if self.cfg.sack && (!syn_ack || self.opts.sack) {
                options.sack_permitted = true;
            }
            if self.cfg.timestamps && !syn_ack {
                options.timestamps = Some((tsval, 0));
            } else if self.opts.ts.on {
                options.timestamps = Some((tsval, self.opts.ts.recent));
            }
        } else if !flags.rst() {
            if self.opts.ts.on {
                options.timestamps = Some((tsval, self.opts.ts.recent));
            }
            // RFC 2018 §4: every ACK while out-of-order data is held carries
            // the blocks (an owed ACK the ones it was owed with).
            if self.opts.sack && flags.ack() {
                if let Some(blocks) = self.pending.sack_override {
                    options.sack = blocks;
                } else if self.rcv.buf.has_ooo() {
                    options.sack = self.rcv.buf.sack_blocks(self.opts.max_sack_blocks(), None);
                }
            }
        }
        options
    }
}

/// RFC 9293 §3.7.1: the send MSS without the option, 536 (IPv4) / 1220 (IPv6).
pub(super) fn default_mss(remote: &SocketAddr) -> u32 {
    if remote.is_ipv4() { 536 } else { 1220 }
}

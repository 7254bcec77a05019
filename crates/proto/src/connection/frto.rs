//! F-RTO (RFC 5682 §2, the basic algorithm): telling a spurious
//! retransmission timeout from a real one without timestamps (with them,
//! Eifel does it, `recovery.rs`). After the timeout only the first segment
//! is resent; if the next ACK advances SND.UNA, two new segments go instead
//! of the rest of the window, and if the ACK after that advances SND.UNA
//! too, the original segments were arriving all along: the timeout was
//! spurious and is undone. A duplicate ACK at either step means the
//! timeout was real, and the conventional go-back-N goes on.

use super::Connection;
use super::sent::Lost;
use crate::seq::SeqNum;
use crate::time::Instant;

/// Where F-RTO stands after a timeout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Frto {
    /// Not judging a timeout.
    #[default]
    Off,
    /// The first segment was resent; waiting for the first ACK (step 2).
    First,
    /// Two new segments may go (`left` bytes of allowance); waiting for
    /// the second ACK (step 3).
    Second { left: u32 },
}

impl Connection {
    /// A first timeout on a connection without timestamps starts F-RTO
    /// (RFC 5682 §2.1, step 1).
    pub(super) fn frto_on_rto(&mut self, repeat: bool) {
        self.frto = if !repeat && !self.opts.ts.on {
            Frto::First
        } else {
            Frto::Off
        };
    }

    /// An ACK after a timeout: `advanced` says whether it moved SND.UNA
    /// (to `ack`).
    pub(super) fn frto_on_ack(&mut self, now: Instant, ack: SeqNum, advanced: bool) {
        match self.frto {
            Frto::Off => {}
            Frto::First => {
                // Step 2: a duplicate ACK, or one that acknowledges the whole
                // flight, leaves nothing to judge (step 2a).
                let unsent =
                    self.snd.buf.len() > self.snd.max.diff(self.snd.data_seq0()).max(0) as usize;
                if !advanced || !ack.before(self.snd.max) || !unsent {
                    self.frto = Frto::Off;
                    return;
                }
                // Step 2b: hold the rest of the go-back-N and let two new
                // segments out instead.
                self.sent.clear_lost_marks();
                self.frto = Frto::Second {
                    left: 2 * self.opts.smss,
                };
            }
            Frto::Second { .. } => {
                self.frto = Frto::Off;
                if advanced {
                    // Step 3b: the timeout was spurious.
                    self.spurious_timeout(now);
                } else {
                    // Step 3a: it was real; resend what is outstanding.
                    self.sent.mark_all_lost(Lost::Timeout);
                }
            }
        }
    }

    /// The new data F-RTO lets out beyond the windows (RFC 5682 §2.1 step
    /// 2b), in bytes.
    pub(super) fn frto_allowance(&self) -> u32 {
        match self.frto {
            Frto::Second { left } => left,
            _ => 0,
        }
    }

    /// `len` bytes of new data left under F-RTO's allowance.
    pub(super) fn frto_sent(&mut self, len: u32) {
        if let Frto::Second { left } = &mut self.frto {
            *left = left.saturating_sub(len);
        }
    }
}

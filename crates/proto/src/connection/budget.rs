//! The per-connection budget of unsolicited replies (RFC 5961 §7).

use crate::time::{Duration, Instant};

/// The per-connection budget of unsolicited replies: challenge ACKs,
/// out-of-window ACKs and SYN-ACKs for repeated SYNs (RFC 5961 §7), so many
/// a second.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReplyBudget {
    window: Instant,
    count: u32,
}

impl ReplyBudget {
    pub(crate) fn new(now: Instant) -> Self {
        ReplyBudget {
            window: now,
            count: 0,
        }
    }

    /// Takes one reply if fewer than `per_sec` went out in this second.
    pub(crate) fn take(&mut self, now: Instant, per_sec: u32) -> bool {
        if now.saturating_duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.count = 0;
        }
        if self.count < per_sec {
            self.count += 1;
            true
        } else {
            false
        }
    }
}

//! Nagle's algorithm (RFC 896, RFC 1122 §4.2.3.4) with Minshall's
//! refinement, as Linux's `tcp_nagle_check` / `tcp_minshall_check`: a
//! segment smaller than the MSS at the tail of the queue waits while an
//! earlier small segment is unacknowledged. Full segments, the FIN's
//! segment and retransmissions never wait. `TCP_NODELAY` turns it off.

use super::Connection;
use crate::seq::SeqNum;

/// What Nagle's algorithm remembers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Nagle {
    /// The end of the last segment of new data sent smaller than the MSS
    /// (Linux's `snd_sml`).
    pub(crate) snd_sml: SeqNum,
}

impl Nagle {
    pub(crate) fn new(iss: SeqNum) -> Self {
        Nagle { snd_sml: iss }
    }
}

impl Connection {
    /// Whether a segment of `len` new bytes from `nxt`, the last of what
    /// is queued, waits (RFC 1122 §4.2.3.4: "if there is unacknowledged
    /// data, buffer the user data until an ACK arrives or a full segment
    /// can be sent"; Minshall: only unacknowledged *small* data holds it).
    pub(super) fn nagle_holds(&mut self, nxt: SeqNum, len: u32, room: u32) -> bool {
        if self.sock.nodelay || len >= room {
            return false;
        }
        // The segment that carries the FIN goes at once (Linux's tcp_nagle_test).
        if self.snd.fin_queued && nxt + len == self.snd.fin_seq {
            return false;
        }
        let sml = self.nagle.snd_sml;
        let small_out = sml.after(self.snd.una) && sml.before_eq(self.snd.max);
        if small_out {
            self.stats.nagle_held += 1;
        }
        small_out
    }

    /// A segment of new data left: a small one is remembered (Linux's
    /// `tcp_minshall_update`).
    pub(super) fn nagle_on_send(&mut self, len: u32, end: SeqNum) {
        if len < self.data_room() {
            self.nagle.snd_sml = end;
        }
    }

    /// Whether Nagle's algorithm is off (`TCP_NODELAY`).
    pub fn nodelay(&self) -> bool {
        self.sock.nodelay
    }

    /// Turns Nagle's algorithm off (`true`, `TCP_NODELAY`) or on. Turning it
    /// off lets a held segment go at the next `poll_transmit` (as Linux
    /// pushes pending frames).
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
    /// assert!(!c.nodelay()); // Nagle on by default
    /// c.set_nodelay(true);
    /// assert!(c.nodelay());
    /// # Ok::<(), utcp_proto::Error>(())
    /// ```
    pub fn set_nodelay(&mut self, nodelay: bool) {
        if nodelay && !self.sock.nodelay && self.snd.buf.len() > 0 {
            self.pending.flush_hint = true;
        }
        self.sock.nodelay = nodelay;
    }
}

//! Keepalive (RFC 1122 §4.2.3.6, as Linux's `tcp_keepalive_timer`) and the
//! per-connection settings of it and of the user timeout (RFC 9293
//! §3.10.8, Linux `TCP_USER_TIMEOUT`).
//!
//! With keepalive on, a connection that received nothing for
//! `keepalive_time` while it had nothing to send or in flight sends a probe
//! (SEQ = SND.UNA − 1, no data: the peer answers it with an ACK), then one
//! every `keepalive_interval` while none is answered; one interval after
//! the `keepalive_retries`-th, the connection fails with `TimedOut` (and an
//! RST, as Linux). Any acceptable ACK answers the probes.

use super::{Connection, State, Timer};
use crate::error::Error;
use crate::time::{Duration, Instant};

/// What keepalive remembers between its timer's firings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Keepalive {
    /// When the last acceptable ACK arrived (the handshake's included):
    /// the idle time is counted from it (Linux's `rcv_tstamp`).
    pub(crate) last_rcv: Instant,
    /// Probes sent and not answered (Linux's `icsk_probes_out`).
    pub(crate) probes_out: u32,
}

impl Keepalive {
    pub(crate) fn new(now: Instant) -> Self {
        Keepalive {
            last_rcv: now,
            probes_out: 0,
        }
    }
}

impl Connection {
    /// An acceptable ACK arrived: the peer is alive, the idle time starts
    /// again and any keepalive probe is answered. Arms the keepalive timer
    /// the first time (establishment); later firings re-arm it themselves.
    pub(super) fn peer_alive(&mut self, now: Instant) {
        self.keepalive.last_rcv = now;
        self.keepalive.probes_out = 0;
        if self.sock.keepalive && !self.timers.is_set(Timer::Keepalive) {
            self.timers
                .set(Timer::Keepalive, now + self.sock.keepalive_time);
        }
    }

    /// The states keepalive probes: synchronized, not TIME_WAIT (Linux
    /// probes from ESTABLISHED to LAST_ACK).
    fn keepalive_state(&self) -> bool {
        self.snd.syn_acked
            && matches!(
                self.state,
                State::Established
                    | State::FinWait1
                    | State::FinWait2
                    | State::CloseWait
                    | State::Closing
                    | State::LastAck
            )
    }

    /// The keepalive timer fired (Linux's `tcp_keepalive_timer`).
    pub(super) fn on_keepalive(&mut self, now: Instant) {
        if !self.sock.keepalive || !self.keepalive_state() {
            return;
        }
        let time = self.sock.keepalive_time;
        // Data queued or in flight: the retransmission and persist timers
        // watch the peer ("alive without keepalive"); look again later.
        if self.sent.outstanding() || self.snd.buf.len() > 0 || self.fin_unsent() {
            self.timers.set(Timer::Keepalive, now + time);
            return;
        }
        let elapsed = now - self.keepalive.last_rcv;
        if elapsed < time {
            self.timers
                .set(Timer::Keepalive, self.keepalive.last_rcv + time);
            return;
        }
        // RFC 1122 §4.2.3.6: the connection is dropped when probes go
        // unanswered; with a user timeout, once it has passed with a probe
        // out (Linux), otherwise after `keepalive_retries` probes.
        let expired = match self.sock.user_timeout {
            Some(ut) => elapsed >= ut && self.keepalive.probes_out > 0,
            None => self.keepalive.probes_out >= self.sock.keepalive_retries,
        };
        if expired {
            tracing::debug!(parent: &self.span, probes = self.keepalive.probes_out, "keepalive probes unanswered");
            self.abort_with(now, Error::TimedOut, "keepalive timeout");
            return;
        }
        self.keepalive.probes_out += 1;
        self.stats.keepalive_probes += 1;
        self.pending.keepalive = true;
        tracing::trace!(parent: &self.span, probe = self.keepalive.probes_out, "keepalive probe");
        self.timers
            .set(Timer::Keepalive, now + self.sock.keepalive_interval);
    }

    /// Whether keepalive probes are on (`SO_KEEPALIVE`).
    pub fn keepalive(&self) -> bool {
        self.sock.keepalive
    }

    /// Turns keepalive probes on or off (`SO_KEEPALIVE`). Turned on in a
    /// synchronized state, the first probe is due `keepalive_time` from
    /// `now` at the earliest (as Linux's `tcp_set_keepalive`); before the
    /// handshake completes, from its end.
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
    /// assert!(!c.keepalive());
    /// c.set_keepalive(Instant::ZERO, true);
    /// c.set_keepalive_time(Instant::ZERO, utcp_proto::Duration::from_secs(60))?;
    /// assert!(c.keepalive());
    /// # Ok::<(), utcp_proto::Error>(())
    /// ```
    pub fn set_keepalive(&mut self, now: Instant, on: bool) {
        if on == self.sock.keepalive {
            return;
        }
        self.sock.keepalive = on;
        self.keepalive.probes_out = 0;
        if on && self.keepalive_state() {
            self.timers
                .set(Timer::Keepalive, now + self.sock.keepalive_time);
        } else {
            self.timers.stop(Timer::Keepalive);
        }
    }

    /// The idle time before the first keepalive probe (`TCP_KEEPIDLE`).
    pub fn keepalive_time(&self) -> Duration {
        self.sock.keepalive_time
    }

    /// Sets the idle time before the first keepalive probe (`TCP_KEEPIDLE`).
    /// With keepalive on, the timer moves at once: the probe is due that
    /// long after the last ACK received, or now if that has passed (as
    /// Linux).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for zero.
    pub fn set_keepalive_time(&mut self, now: Instant, time: Duration) -> Result<(), Error> {
        if time.is_zero() {
            return Err(Error::InvalidInput("a keepalive idle time of 0"));
        }
        self.sock.keepalive_time = time;
        if self.sock.keepalive && self.keepalive_state() {
            let at = (self.keepalive.last_rcv + time).max(now);
            self.timers.set(Timer::Keepalive, at);
        }
        Ok(())
    }

    /// The time between unanswered keepalive probes (`TCP_KEEPINTVL`).
    pub fn keepalive_interval(&self) -> Duration {
        self.sock.keepalive_interval
    }

    /// Sets the time between unanswered keepalive probes (`TCP_KEEPINTVL`),
    /// from the next probe on.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for zero.
    pub fn set_keepalive_interval(&mut self, interval: Duration) -> Result<(), Error> {
        if interval.is_zero() {
            return Err(Error::InvalidInput("a keepalive interval of 0"));
        }
        self.sock.keepalive_interval = interval;
        Ok(())
    }

    /// Unanswered keepalive probes before the connection fails
    /// (`TCP_KEEPCNT`).
    pub fn keepalive_retries(&self) -> u32 {
        self.sock.keepalive_retries
    }

    /// Sets how many unanswered keepalive probes fail the connection
    /// (`TCP_KEEPCNT`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for zero.
    pub fn set_keepalive_retries(&mut self, retries: u32) -> Result<(), Error> {
        if retries == 0 {
            return Err(Error::InvalidInput("zero keepalive probes"));
        }
        self.sock.keepalive_retries = retries;
        Ok(())
    }

    /// The user timeout (`TCP_USER_TIMEOUT`), if set.
    pub fn user_timeout(&self) -> Option<Duration> {
        self.sock.user_timeout
    }

    /// Sets the user timeout (RFC 9293 §3.10.8, `TCP_USER_TIMEOUT`): data
    /// unacknowledged this long fails the connection with
    /// [`Error::TimedOut`] (the retransmission count no longer does);
    /// `None` turns it off. Data already in flight is timed from `now`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for `Some(0)` (Linux's 0 means "off": say
    /// `None`).
    pub fn set_user_timeout(
        &mut self,
        now: Instant,
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        if timeout.is_some_and(|d| d.is_zero()) {
            return Err(Error::InvalidInput(
                "a user timeout of 0 (None turns it off)",
            ));
        }
        self.sock.user_timeout = timeout;
        match timeout {
            Some(ut) if self.sent.outstanding() => self.timers.set(Timer::UserTimeout, now + ut),
            _ => self.timers.stop(Timer::UserTimeout),
        }
        Ok(())
    }
}

//! State transitions that end or close a connection, and the one place a
//! transition is made and logged (RFC 9293 §3.3.2; one debug event each, on
//! the connection's span).

use super::{Connection, Event, State, Timer};
use crate::error::Error;
use crate::time::Instant;
use crate::timewait::TwState;

impl Connection {
    pub(super) fn abort_with(&mut self, _now: Instant, err: Error, cause: &str) {
        match self.state {
            State::Closed => return,
            // RFC 9293 §3.10.5: ABORT in TIME_WAIT deletes the TCB; nothing is
            // sent (the connection is already closed on both sides).
            State::TimeWait => {
                self.enter_closed(cause);
                return;
            }
            // RFC 9293 §3.10.5: ABORT in CLOSING or LAST_ACK responds "ok" and
            // deletes the TCB without an RST (both FINs were sent; Linux's
            // `tcp_need_reset` is false there too).
            State::Closing | State::LastAck => {
                self.fail(err, cause);
                return;
            }
            _ => {}
        }
        if !matches!(self.state, State::SynSent | State::Listen) {
            // Inside the peer's window, or it is ignored (Linux's
            // tcp_send_active_reset takes tcp_acceptable_seq too).
            self.pending.rst = Some((self.ack_seq(), Some(self.rcv.nxt)));
        }
        self.fail(err, cause);
    }

    /// Moves to CLOSED with `err`, freeing buffers.
    pub(super) fn fail(&mut self, err: Error, cause: &str) {
        if self.error.is_none() {
            self.error = Some(err);
            self.events.push_back(Event::Error(err));
        }
        self.snd.buf.clear();
        self.enter_closed(cause);
    }

    pub(super) fn enter_closed(&mut self, cause: &str) {
        self.timers.stop_all();
        self.handshake.syn_pending = false;
        self.sent.clear();
        self.pending.probe = false;
        self.pending.ack = false;
        self.pending.data_ack = false;
        self.pending.owed_acks.clear();
        self.set_state(State::Closed, cause);
        self.notify(Event::Readable);
        self.notify(Event::Writable);
        self.events.push_back(Event::Closed);
    }

    pub(super) fn set_state(&mut self, to: State, cause: &str) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        match self.cur_seg {
            Some((flags, seq, ack, len)) => tracing::debug!(
                parent: &self.span, from = %from, to = %to, cause,
                seg.flags = %flags, seg.seq = seq.get(), seg.ack = ack.get(), seg.len = len, "state"
            ),
            None => tracing::debug!(parent: &self.span, from = %from, to = %to, cause, "state"),
        }
        self.events.push_back(Event::StateChanged { from, to });
    }

    pub(super) fn enter_time_wait(&mut self, now: Instant, cause: &str) {
        self.timers.stop_all();
        let deadline = now + self.cfg.time_wait();
        self.timers.set(Timer::TimeWait, deadline);
        self.snd.buf.clear();
        self.sent.clear();
        let ts = self.opts.ts;
        self.tw = Some(TwState {
            snd_nxt: self.snd.max,
            rcv_nxt: self.rcv.nxt,
            deadline,
            last_ack: now,
            window: self
                .opts
                .window_field(self.rcv.adv.diff(self.rcv.nxt).max(0) as u32),
            hop_limit: self.sock.hop_limit,
            acked: false,
            ts: ts.on,
            ts_offset: ts.offset,
            ts_recent: ts.recent,
            ts_recent_secs: crate::timewait::secs(ts.recent_at),
        });
        self.set_state(State::TimeWait, cause);
    }
}

//! The eleven states of RFC 9293 §3.3.2.
//!
//! Read alongside: RFC 9293 (TCP), RFC 6298 (RTO), RFC 7323 (window scale and
//! timestamps), RFC 5681 (congestion control), RFC 2018 (SACK), RFC 5961 (blind
//! in-window attacks), RFC 6528 (initial sequence numbers).
//!
//! Today the TCB is one flat struct (`Connection`): the send sequence
//! variables (SND.UNA, SND.NXT, SND.WND, …), the receive ones (RCV.NXT, the
//! advertised edge) and the control state sit side by side, and fields that
//! mean something only after the handshake hold placeholders before it.
//! Splitting them into parts with one job each is the next redesign step.

use core::fmt;

/// A connection state (RFC 9293 §3.3.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum State {
    /// No connection: never opened, or fully closed.
    #[default]
    Closed,
    /// Waiting for a SYN (listeners only; kept by the endpoint).
    Listen,
    /// SYN sent, waiting for the peer's SYN and the ACK of ours.
    SynSent,
    /// SYN received and SYN-ACK sent, waiting for the ACK of ours.
    SynReceived,
    /// Open: data flows both ways.
    Established,
    /// We sent FIN; waiting for its ACK or the peer's FIN. We may still receive.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's FIN. We may still receive.
    FinWait2,
    /// The peer sent FIN; we may still send until the application closes.
    CloseWait,
    /// Both sent FIN (simultaneous close); waiting for the ACK of ours.
    Closing,
    /// The peer closed first and we sent our FIN; waiting for its ACK.
    LastAck,
    /// Both FINs acknowledged; waiting 2·MSL so late segments die out.
    TimeWait,
}

impl State {
    /// Whether the handshake completed (RFC 9293's "synchronized" states).
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }

    /// Whether the application may still queue data in this state.
    pub fn can_send(self) -> bool {
        matches!(
            self,
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        )
    }

    /// Whether data from the peer is still accepted (RFC 9293 §3.10.7.4, seventh).
    pub fn can_receive(self) -> bool {
        matches!(
            self,
            State::SynReceived | State::Established | State::FinWait1 | State::FinWait2
        )
    }

    /// Whether we have sent (or queued) our FIN.
    pub fn fin_queued(self) -> bool {
        matches!(
            self,
            State::FinWait1 | State::FinWait2 | State::Closing | State::LastAck | State::TimeWait
        )
    }

    /// The RFC's upper-case name, as `ss` and the RFC print it.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN_SENT",
            State::SynReceived => "SYN_RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN_WAIT_1",
            State::FinWait2 => "FIN_WAIT_2",
            State::CloseWait => "CLOSE_WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST_ACK",
            State::TimeWait => "TIME_WAIT",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

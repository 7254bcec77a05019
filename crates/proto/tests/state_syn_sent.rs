//! SYN_SENT (RFC 9293 §3.10.7.3).
mod common;
use common::*;
use utcp_proto::{Error, Event, State};

#[test]
fn syn_sent_syn_ack_establishes() {
    let mut t = TestConn::syn_sent();
    t.inject(100, SYN_ACK.seq(R).ack(L + 1).mss(1460));
    t.expect_sent(100, [ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::Established);
    t.expect_event(Event::Connected);
    t.expect_error(None);
    let _ = Error::TimedOut;
}

//! CLOSING (simultaneous close): RFC 9293 §3.6 and §3.10.7.4. Our FIN <SEQ=L+1>
//! left at 100 ms (RTO deadline 400); the peer's FIN <SEQ=R+1> crossed it and
//! was ACKed at 200 ms.

mod common;

use common::*;
use utcp_proto::{Error, Event, State};

#[test]
fn closing_ack_of_fin_enters_time_wait() {
    let mut t = TestConn::closing();
    t.expect_deadline(400);
    t.inject(300, ACK.seq(R + 2).ack(L + 2));
    t.expect_nothing(300);
    t.expect_state(State::TimeWait);
    t.expect_event(Event::StateChanged {
        from: State::Closing,
        to: State::TimeWait,
    });
    t.expect_deadline(60_300);
}

#[test]
fn closing_rto_retransmits_fin() {
    let mut t = TestConn::closing();
    t.expect_sent(400, [FIN_ACK.seq(L + 1).ack(R + 2)]);
    t.expect_deadline(1_000);
    t.inject(1_100, ACK.seq(R + 2).ack(L + 2));
    t.expect_state(State::TimeWait);
}

#[test]
fn closing_retransmitted_fin_gets_ack() {
    let mut t = TestConn::closing();
    t.inject(300, FIN_ACK.seq(R + 1).ack(L + 1));
    t.expect_sent(300, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_state(State::Closing);
}

#[test]
fn closing_duplicate_ack_stays() {
    let mut t = TestConn::closing();
    t.inject(300, ACK.seq(R + 2).ack(L + 1));
    t.expect_nothing(300);
    t.expect_state(State::Closing);
}

#[test]
fn closing_rst_exact_closes() {
    let mut t = TestConn::closing();
    t.inject(300, RST.seq(R + 2));
    t.expect_nothing(300);
    t.expect_state(State::Closed);
    t.expect_no_deadline();
}

#[test]
fn closing_rst_in_window_gets_challenge_ack() {
    let mut t = TestConn::closing();
    t.inject(300, RST.seq(R + 20));
    t.expect_sent(300, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_state(State::Closing);
}

#[test]
fn closing_syn_gets_challenge_ack() {
    let mut t = TestConn::closing();
    t.inject(300, SYN.seq(R + 2));
    t.expect_sent(300, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_state(State::Closing);
}

#[test]
fn closing_abort_sends_nothing() {
    // RFC 9293 §3.10.5: ABORT in CLOSING responds "ok" and deletes the TCB;
    // no RST (Linux's tcp_need_reset is false in CLOSING and LAST_ACK).
    let mut t = TestConn::closing();
    t.abort(300);
    t.expect_nothing(300);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionAborted));
}

#[test]
fn closing_rst_out_of_window_is_ignored() {
    let mut t = TestConn::closing();
    t.inject(300, RST.seq(R + 1));
    t.expect_nothing(300);
    t.expect_state(State::Closing);
}

#[test]
fn closing_ack_above_snd_nxt_gets_ack() {
    let mut t = TestConn::closing();
    t.inject(300, ACK.seq(R + 2).ack(L + 5));
    t.expect_sent(300, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_state(State::Closing);
}

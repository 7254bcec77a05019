//! LAST_ACK: RFC 9293 §3.10.7.4. The peer's FIN came at 200 ms (RCV.NXT = R+2);
//! our FIN <SEQ=L+1> left at 300 ms (RTO deadline 600).

mod common;

use common::*;
use utcp_proto::{Config, Error, Event, State};

#[test]
fn last_ack_ack_of_fin_closes() {
    let mut t = TestConn::last_ack();
    t.expect_deadline(600);
    t.inject(400, ACK.seq(R + 2).ack(L + 2));
    t.expect_nothing(400);
    t.expect_state(State::Closed);
    t.expect_event(Event::StateChanged {
        from: State::LastAck,
        to: State::Closed,
    });
    t.expect_event(Event::Closed);
    t.expect_error(None);
    t.expect_no_deadline();
    assert!(t.conn.is_closed());
}

#[test]
fn last_ack_ack_not_covering_the_fin_stays() {
    let mut t = TestConn::last_ack();
    t.inject(400, ACK.seq(R + 2).ack(L + 1));
    t.expect_nothing(400);
    t.expect_state(State::LastAck);
    t.expect_deadline(600);
}

#[test]
fn last_ack_rto_retransmits_fin_with_backoff() {
    let mut t = TestConn::last_ack();
    t.expect_sent(600, [FIN_ACK.seq(L + 1).ack(R + 2)]);
    t.expect_deadline(1_200);
    t.expect_sent(1_200, [FIN_ACK.seq(L + 1).ack(R + 2)]);
    t.expect_deadline(2_400);
    t.inject(2_500, ACK.seq(R + 2).ack(L + 2));
    t.expect_state(State::Closed);
}

#[test]
fn last_ack_retries_exhausted_times_out() {
    let cfg = Config {
        data_retries: 2,
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        ..Opts::default()
    }
    .last_ack();
    t.expect_sent(600, [FIN_ACK.seq(L + 1).ack(R + 2)]);
    t.expect_sent(1_200, [FIN_ACK.seq(L + 1).ack(R + 2)]);
    t.expect_sent(2_400, []); // timed out: no RST (RFC 9293 §3.10.8, as Linux)
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::TimedOut));
}

#[test]
fn last_ack_retransmitted_fin_gets_ack() {
    let mut t = TestConn::last_ack();
    t.inject(400, FIN_ACK.seq(R + 1).ack(L + 1));
    t.expect_sent(400, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_state(State::LastAck);
}

#[test]
fn last_ack_rst_exact_closes() {
    let mut t = TestConn::last_ack();
    t.inject(400, RST.seq(R + 2));
    t.expect_nothing(400);
    t.expect_state(State::Closed);
    t.expect_no_deadline();
}

#[test]
fn last_ack_rst_in_window_gets_challenge_ack() {
    let mut t = TestConn::last_ack();
    t.inject(400, RST.seq(R + 3));
    t.expect_sent(400, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_state(State::LastAck);
}

#[test]
fn last_ack_syn_gets_challenge_ack() {
    let mut t = TestConn::last_ack();
    t.inject(400, SYN.seq(R + 2));
    t.expect_sent(400, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_state(State::LastAck);
}

#[test]
fn last_ack_ack_above_snd_nxt_gets_ack() {
    let mut t = TestConn::last_ack();
    t.inject(400, ACK.seq(R + 2).ack(L + 3));
    t.expect_sent(400, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_state(State::LastAck);
}

#[test]
fn last_ack_rst_out_of_window_is_ignored() {
    let mut t = TestConn::last_ack();
    t.inject(400, RST.seq(R + 100_000));
    t.expect_nothing(400);
    t.expect_state(State::LastAck);
}

#[test]
fn last_ack_abort_sends_nothing() {
    // RFC 9293 §3.10.5: ABORT in LAST_ACK responds "ok" and deletes the TCB
    // without an RST (Linux's tcp_need_reset).
    let mut t = TestConn::last_ack();
    t.abort(400);
    t.expect_nothing(400);
    t.expect_state(State::Closed);
    t.expect_no_deadline();
}

//! FIN_WAIT_2: RFC 9293 §3.10.7.4. The fixture's FIN <SEQ=L+1> was ACKed at
//! 200 ms; the peer's next sequence number is R+1. Not orphaned unless a test
//! closes it.

mod common;

use common::*;
use utcp_proto::{Config, Duration, Error, Event, State};

#[test]
fn fin_wait_2_fin_enters_time_wait() {
    let mut t = TestConn::fin_wait_2();
    t.inject(300, FIN_ACK.seq(R + 1).ack(L + 2));
    t.expect_sent(300, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_state(State::TimeWait);
    t.expect_event(Event::StateChanged {
        from: State::FinWait2,
        to: State::TimeWait,
    });
    // 2·MSL = 60 s.
    t.expect_deadline(60_300);
}

#[test]
fn fin_wait_2_data_is_still_received() {
    // Half-close: FIN_WAIT_2 keeps receiving until the peer's FIN.
    let mut t = TestConn::fin_wait_2();
    t.inject(300, PSH_ACK.seq(R + 1).ack(L + 2).data(b"more"));
    t.expect_sent(300, [ACK.seq(L + 2).ack(R + 5)]);
    t.expect_state(State::FinWait2);
    t.expect_event(Event::Readable);
    assert_eq!(t.recv_all(), b"more");
    t.inject(400, FIN_PSH_ACK.seq(R + 5).ack(L + 2).data(b"end"));
    t.expect_sent(400, [ACK.seq(L + 2).ack(R + 9)]);
    t.expect_state(State::TimeWait);
    assert_eq!(t.recv_all(), b"end");
}

#[test]
fn fin_wait_2_out_of_order_fin_waits_for_the_hole() {
    let mut t = TestConn::fin_wait_2();
    t.inject(300, FIN_PSH_ACK.seq(R + 4).ack(L + 2).data(b"def"));
    t.expect_sent(300, [ACK.seq(L + 2).ack(R + 1)]);
    t.expect_state(State::FinWait2);
    t.inject(310, PSH_ACK.seq(R + 1).ack(L + 2).data(b"abc"));
    t.expect_sent(310, [ACK.seq(L + 2).ack(R + 8)]);
    t.expect_state(State::TimeWait);
    assert_eq!(t.recv_all(), b"abcdef");
}

#[test]
fn fin_wait_2_data_beyond_the_window_gets_ack() {
    let mut t = TestConn::fin_wait_2();
    t.inject(300, PSH_ACK.seq(R + 80_000).ack(L + 2).data(b"far"));
    t.expect_sent(300, [ACK.seq(L + 2).ack(R + 1)]);
}

#[test]
fn fin_wait_2_duplicate_ack_is_ignored() {
    let mut t = TestConn::fin_wait_2();
    t.inject(300, ACK.seq(R + 1).ack(L + 2));
    t.expect_nothing(300);
    t.expect_state(State::FinWait2);
}

#[test]
fn fin_wait_2_rst_exact_resets() {
    let mut t = TestConn::fin_wait_2();
    t.inject(300, RST.seq(R + 1));
    t.expect_nothing(300);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionReset));
}

#[test]
fn fin_wait_2_rst_in_window_gets_challenge_ack() {
    let mut t = TestConn::fin_wait_2();
    t.inject(300, RST.seq(R + 2));
    t.expect_sent(300, [ACK.seq(L + 2).ack(R + 1)]);
    t.expect_state(State::FinWait2);
}

#[test]
fn fin_wait_2_syn_gets_challenge_ack() {
    let mut t = TestConn::fin_wait_2();
    t.inject(300, SYN.seq(R + 1));
    t.expect_sent(300, [ACK.seq(L + 2).ack(R + 1)]);
    t.expect_state(State::FinWait2);
}

#[test]
fn fin_wait_2_not_orphaned_waits_forever() {
    let mut t = TestConn::fin_wait_2();
    t.expect_no_deadline();
    t.expect_nothing(10_000_000);
    t.expect_state(State::FinWait2);
}

#[test]
fn fin_wait_2_orphaned_times_out() {
    // Linux's tcp_fin_timeout: an orphan does not wait for the FIN forever.
    let mut t = TestConn::fin_wait_2();
    t.close(300);
    t.expect_nothing(300);
    t.expect_deadline(60_300);
    t.expect_nothing(60_299);
    t.expect_state(State::FinWait2);
    t.expect_nothing(60_300);
    t.expect_state(State::Closed);
    t.expect_event(Event::Closed);
    t.expect_no_deadline();
    assert!(t.conn.is_closed());
}

#[test]
fn fin_wait_2_orphan_timeout_is_configurable() {
    let cfg = Config {
        fin_wait2_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        ..Opts::default()
    }
    .established();
    t.close(100);
    t.expect_sent(100, [FIN_ACK.seq(L + 1).ack(R + 1)]);
    t.inject(200, ACK.seq(R + 1).ack(L + 2));
    t.expect_deadline(5_200);
    t.expect_nothing(5_200);
    t.expect_state(State::Closed);
}

#[test]
fn fin_wait_2_orphaned_fin_before_the_timeout_enters_time_wait() {
    let mut t = TestConn::fin_wait_2();
    t.close(300);
    t.inject(1_000, FIN_ACK.seq(R + 1).ack(L + 2));
    t.expect_sent(1_000, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_state(State::TimeWait);
    t.expect_deadline(61_000);
}

#[test]
fn fin_wait_2_close_with_unread_data_resets() {
    let mut t = TestConn::fin_wait_2();
    t.inject(300, PSH_ACK.seq(R + 1).ack(L + 2).data(b"unread"));
    t.expect_sent(300, [ACK.seq(L + 2).ack(R + 7)]);
    t.close(400);
    t.expect_sent(400, [RST_ACK.seq(L + 2).ack(R + 7)]);
    t.expect_state(State::Closed);
}

#[test]
fn fin_wait_2_rst_out_of_window_is_ignored() {
    let mut t = TestConn::fin_wait_2();
    t.inject(300, RST.seq(R + 90_000));
    t.expect_nothing(300);
    t.expect_state(State::FinWait2);
}

#[test]
fn fin_wait_2_ack_above_snd_nxt_gets_ack() {
    let mut t = TestConn::fin_wait_2();
    t.inject(300, PSH_ACK.seq(R + 1).ack(L + 9).data(b"x"));
    t.expect_sent(300, [ACK.seq(L + 2).ack(R + 1)]);
    assert_eq!(t.conn.readable(), 0);
}

//! FIN_WAIT_1: RFC 9293 §3.10.7.4. The fixture sent its FIN <SEQ=L+1> at 100 ms
//! (RTO deadline 400); the peer's next sequence number is R+1.

mod common;

use common::*;
use utcp_proto::{Config, Error, Event, State};

#[test]
fn fin_wait_1_ack_of_fin_enters_fin_wait_2() {
    let mut t = TestConn::fin_wait_1();
    t.expect_deadline(400);
    t.inject(200, ACK.seq(R + 1).ack(L + 2));
    t.expect_nothing(200);
    t.expect_state(State::FinWait2);
    t.expect_event(Event::StateChanged {
        from: State::FinWait1,
        to: State::FinWait2,
    });
    // Not orphaned: no FIN_WAIT_2 timer, no RTO.
    t.expect_no_deadline();
}

#[test]
fn fin_wait_1_ack_of_data_but_not_fin_stays() {
    let mut t = TestConn::established();
    t.send(200, b"data");
    t.expect_sent(200, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"data")]);
    t.shutdown(200);
    t.expect_sent(200, [FIN_ACK.seq(L + 5).ack(R + 1)]);
    t.expect_state(State::FinWait1);
    t.inject(300, ACK.seq(R + 1).ack(L + 5));
    t.expect_nothing(300);
    t.expect_state(State::FinWait1);
    // RTO restarted at 300 ms: 300 ms (100 ms SRTT + the 200 ms floor).
    t.expect_deadline(600);
    t.inject(310, ACK.seq(R + 1).ack(L + 6));
    t.expect_state(State::FinWait2);
}

#[test]
fn fin_wait_1_fin_enters_closing() {
    // Simultaneous close (RFC 9293 §3.6, Figure 13).
    let mut t = TestConn::fin_wait_1();
    t.inject(200, FIN_ACK.seq(R + 1).ack(L + 1));
    t.expect_sent(200, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_state(State::Closing);
    assert!(t.conn.peer_closed());
}

#[test]
fn fin_wait_1_fin_with_ack_of_our_fin_enters_time_wait() {
    let mut t = TestConn::fin_wait_1();
    t.inject(200, FIN_ACK.seq(R + 1).ack(L + 2));
    t.expect_sent(200, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_state(State::TimeWait);
    t.expect_deadline(60_200);
}

#[test]
fn fin_wait_1_data_is_still_received() {
    // Half-close: we stopped sending, the peer did not.
    let mut t = TestConn::fin_wait_1();
    t.inject(200, PSH_ACK.seq(R + 1).ack(L + 1).data(b"late"));
    t.expect_sent(200, [ACK.seq(L + 2).ack(R + 5)]);
    t.expect_state(State::FinWait1);
    assert_eq!(t.recv_all(), b"late");
}

#[test]
fn fin_wait_1_out_of_order_data_is_acked_and_held() {
    let mut t = TestConn::fin_wait_1();
    t.inject(200, PSH_ACK.seq(R + 3).ack(L + 2).data(b"cd"));
    t.expect_sent(200, [ACK.seq(L + 2).ack(R + 1)]);
    t.expect_state(State::FinWait2);
    t.inject(210, PSH_ACK.seq(R + 1).ack(L + 2).data(b"ab"));
    t.expect_sent(210, [ACK.seq(L + 2).ack(R + 5)]);
    assert_eq!(t.recv_all(), b"abcd");
}

#[test]
fn fin_wait_1_rto_retransmits_fin_with_backoff() {
    let mut t = TestConn::fin_wait_1();
    t.expect_sent(400, [FIN_ACK.seq(L + 1).ack(R + 1)]);
    t.expect_deadline(1_000);
    t.expect_sent(1_000, [FIN_ACK.seq(L + 1).ack(R + 1)]);
    t.expect_deadline(2_200);
    t.inject(2_300, ACK.seq(R + 1).ack(L + 2));
    t.expect_state(State::FinWait2);
    t.expect_no_deadline();
}

#[test]
fn fin_wait_1_retries_exhausted_times_out() {
    let cfg = Config {
        data_retries: 2,
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        ..Opts::default()
    }
    .fin_wait_1();
    t.expect_sent(400, [FIN_ACK.seq(L + 1).ack(R + 1)]);
    t.expect_sent(1_000, [FIN_ACK.seq(L + 1).ack(R + 1)]);
    t.expect_sent(2_200, []); // timed out: no RST (RFC 9293 §3.10.8, as Linux)
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::TimedOut));
}

#[test]
fn fin_wait_1_rst_exact_resets() {
    let mut t = TestConn::fin_wait_1();
    t.inject(200, RST.seq(R + 1));
    t.expect_nothing(200);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionReset));
    t.expect_no_deadline();
}

#[test]
fn fin_wait_1_rst_in_window_gets_challenge_ack() {
    let mut t = TestConn::fin_wait_1();
    t.inject(200, RST.seq(R + 50));
    t.expect_sent(200, [ACK.seq(L + 2).ack(R + 1)]);
    t.expect_state(State::FinWait1);
}

#[test]
fn fin_wait_1_rst_out_of_window_is_ignored() {
    let mut t = TestConn::fin_wait_1();
    t.inject(200, RST.seq(R + 90_000));
    t.expect_nothing(200);
    t.expect_state(State::FinWait1);
}

#[test]
fn fin_wait_1_syn_gets_challenge_ack() {
    let mut t = TestConn::fin_wait_1();
    t.inject(200, SYN.seq(R + 1));
    t.expect_sent(200, [ACK.seq(L + 2).ack(R + 1)]);
    t.expect_state(State::FinWait1);
}

#[test]
fn fin_wait_1_ack_above_snd_nxt_gets_ack() {
    let mut t = TestConn::fin_wait_1();
    t.inject(200, ACK.seq(R + 1).ack(L + 10));
    t.expect_sent(200, [ACK.seq(L + 2).ack(R + 1)]);
    t.expect_state(State::FinWait1);
}

#[test]
fn fin_wait_1_send_is_a_broken_pipe() {
    let mut t = TestConn::fin_wait_1();
    assert_eq!(t.conn.send(b"x"), Err(Error::BrokenPipe));
    assert_eq!(t.conn.send_space(), 0);
}

#[test]
fn fin_wait_1_orphaned_data_arrival_resets() {
    // The application closed: data can never be read (as Linux: RST).
    let mut t = TestConn::established();
    t.close(100);
    t.expect_sent(100, [FIN_ACK.seq(L + 1).ack(R + 1)]);
    t.inject(200, PSH_ACK.seq(R + 1).ack(L + 1).data(b"x"));
    t.expect_sent(200, [RST_ACK.seq(L + 2).ack(R + 1)]);
    t.expect_state(State::Closed);
}

#[test]
fn fin_wait_1_orphaned_ack_of_fin_arms_the_fin_wait_2_timer() {
    let mut t = TestConn::established();
    t.close(100);
    t.expect_sent(100, [FIN_ACK.seq(L + 1).ack(R + 1)]);
    t.inject(200, ACK.seq(R + 1).ack(L + 2));
    t.expect_state(State::FinWait2);
    t.expect_deadline(60_200);
}

#[test]
fn fin_wait_1_abort_sends_rst() {
    let mut t = TestConn::fin_wait_1();
    t.abort(200);
    t.expect_sent(200, [RST_ACK.seq(L + 2).ack(R + 1)]);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionAborted));
}

#[test]
fn fin_wait_1_data_beyond_the_window_gets_ack() {
    let mut t = TestConn::fin_wait_1();
    t.inject(200, PSH_ACK.seq(R + 70_000).ack(L + 1).data(b"far"));
    t.expect_sent(200, [ACK.seq(L + 2).ack(R + 1)]);
    assert_eq!(t.conn.readable(), 0);
    t.expect_state(State::FinWait1);
}

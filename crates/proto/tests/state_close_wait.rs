//! CLOSE_WAIT: RFC 9293 §3.10.7.4. The fixture received the peer's FIN <SEQ=R+1>
//! at 200 ms (RCV.NXT = R+2); our next sequence number is L+1.

mod common;

use common::*;
use utcp_proto::{Error, Event, State};

#[test]
fn close_wait_retransmitted_fin_gets_ack() {
    let mut t = TestConn::close_wait();
    t.inject(300, FIN_ACK.seq(R + 1).ack(L + 1));
    t.expect_sent(300, [ACK.seq(L + 1).ack(R + 2)]);
    t.expect_state(State::CloseWait);
}

#[test]
fn close_wait_data_after_the_fin_is_ignored() {
    // Seventh step: "this should not occur since a FIN has been received".
    let mut t = TestConn::close_wait();
    t.inject(300, PSH_ACK.seq(R + 2).ack(L + 1).data(b"x"));
    t.expect_sent(300, [ACK.seq(L + 1).ack(R + 2)]);
    assert_eq!(t.conn.readable(), 0);
    t.expect_state(State::CloseWait);
}

#[test]
fn close_wait_recv_returns_eof() {
    let mut t = TestConn::close_wait();
    let mut buf = [0u8; 8];
    assert_eq!(t.conn.recv(&mut buf), Ok(Some(0)));
    assert!(t.conn.peer_closed());
    t.expect_nothing(300);
}

#[test]
fn close_wait_send_still_works() {
    let mut t = TestConn::close_wait();
    t.send(300, b"reply");
    t.expect_sent(300, [PSH_ACK.seq(L + 1).ack(R + 2).data(b"reply")]);
    t.expect_deadline(600);
    t.inject(400, ACK.seq(R + 2).ack(L + 6));
    t.expect_nothing(400);
    t.expect_event(Event::Writable);
    t.expect_no_deadline();
}

#[test]
fn close_wait_rto_retransmits_data() {
    let mut t = TestConn::close_wait();
    t.send(300, b"reply");
    t.expect_sent(300, [PSH_ACK.seq(L + 1).ack(R + 2).data(b"reply")]);
    t.expect_sent(600, [PSH_ACK.seq(L + 1).ack(R + 2).data(b"reply")]);
    t.expect_deadline(1_200);
}

#[test]
fn close_wait_shutdown_enters_last_ack() {
    let mut t = TestConn::close_wait();
    t.shutdown(300);
    t.expect_sent(300, [FIN_ACK.seq(L + 1).ack(R + 2)]);
    t.expect_state(State::LastAck);
    t.expect_deadline(600);
}

#[test]
fn close_wait_close_sends_data_then_fin() {
    let mut t = TestConn::close_wait();
    t.send(300, b"last words");
    t.expect_sent(300, [PSH_ACK.seq(L + 1).ack(R + 2).data(b"last words")]);
    t.close(300);
    t.expect_sent(300, [FIN_ACK.seq(L + 11).ack(R + 2)]);
    t.expect_state(State::LastAck);
}

#[test]
fn close_wait_close_with_unread_data_resets() {
    let mut t = TestConn::established();
    t.inject(200, FIN_PSH_ACK.seq(R + 1).ack(L + 1).data(b"bye"));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 5)]);
    t.expect_state(State::CloseWait);
    t.close(300);
    t.expect_sent(300, [RST_ACK.seq(L + 1).ack(R + 5)]);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionAborted));
}

#[test]
fn close_wait_rst_exact_resets() {
    let mut t = TestConn::close_wait();
    t.inject(300, RST.seq(R + 2));
    t.expect_nothing(300);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionReset));
}

#[test]
fn close_wait_rst_in_window_gets_challenge_ack() {
    let mut t = TestConn::close_wait();
    t.inject(300, RST.seq(R + 30));
    t.expect_sent(300, [ACK.seq(L + 1).ack(R + 2)]);
    t.expect_state(State::CloseWait);
}

#[test]
fn close_wait_rst_out_of_window_is_ignored() {
    let mut t = TestConn::close_wait();
    t.inject(300, RST.seq(R + 1));
    t.expect_nothing(300);
    t.expect_state(State::CloseWait);
}

#[test]
fn close_wait_syn_gets_challenge_ack() {
    let mut t = TestConn::close_wait();
    t.inject(300, SYN.seq(R + 2));
    t.expect_sent(300, [ACK.seq(L + 1).ack(R + 2)]);
    t.expect_state(State::CloseWait);
}

#[test]
fn close_wait_ack_above_snd_nxt_gets_ack() {
    let mut t = TestConn::close_wait();
    t.inject(300, ACK.seq(R + 2).ack(L + 5));
    t.expect_sent(300, [ACK.seq(L + 1).ack(R + 2)]);
}

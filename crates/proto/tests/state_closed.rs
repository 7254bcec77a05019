//! CLOSED: RFC 9293 §3.10.7.1. A connection that reached CLOSED ignores
//! segments and timers (the endpoint answers for its 4-tuple once the runtime
//! removes it) and reports its end to the application.

mod common;

use common::*;
use utcp_proto::{Error, State};

fn reset() -> TestConn {
    let mut t = TestConn::established();
    t.inject(200, RST.seq(R + 1));
    t.expect_nothing(200);
    t.expect_state(State::Closed);
    t.take_events();
    t
}

#[test]
fn closed_segments_are_ignored() {
    let mut t = reset();
    t.inject(300, PSH_ACK.seq(R + 1).ack(L + 1).data(b"late"));
    t.expect_nothing(300);
    t.inject(310, SYN.seq(R + 1));
    t.expect_nothing(310);
    t.inject(320, FIN_ACK.seq(R + 1).ack(L + 1));
    t.expect_nothing(320);
    t.expect_state(State::Closed);
    assert!(t.take_events().is_empty());
}

#[test]
fn closed_has_no_timers_and_a_late_timeout_does_nothing() {
    let mut t = reset();
    t.expect_no_deadline();
    t.conn
        .handle_timeout(utcp_proto::Instant::from_millis(1_000_000));
    t.expect_nothing(1_000_000);
    t.expect_state(State::Closed);
}

#[test]
fn closed_user_calls_report_the_end() {
    let mut t = reset();
    assert!(t.conn.is_closed());
    assert_eq!(t.conn.send(b"x"), Err(Error::ConnectionReset));
    let mut buf = [0u8; 4];
    assert_eq!(t.conn.recv(&mut buf), Err(Error::ConnectionReset));
    assert_eq!(t.conn.send_space(), 0);
    // Closing or aborting again sends nothing.
    t.close(300);
    t.abort(300);
    t.shutdown(300);
    t.expect_nothing(300);
    t.expect_state(State::Closed);
}

#[test]
fn closed_after_a_clean_close_reads_eof() {
    let mut t = TestConn::last_ack();
    t.inject(400, ACK.seq(R + 2).ack(L + 2));
    t.expect_state(State::Closed);
    let mut buf = [0u8; 4];
    assert_eq!(t.conn.recv(&mut buf), Ok(Some(0)));
    assert_eq!(t.conn.send(b"x"), Err(Error::BrokenPipe));
    t.expect_error(None);
}

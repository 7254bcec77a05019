//! The user timeout (RFC 9293 §3.10.8, RFC 5482, Linux `TCP_USER_TIMEOUT`):
//! data left unacknowledged that long fails the connection with `TimedOut`,
//! whatever the retransmission count; without it, `data_retries` decides.
//!
//! The fixture is ESTABLISHED at 100 ms, RTO 300 ms; our next sequence
//! number is L+1, the peer's R+1.

mod common;

use common::*;
use utcp_proto::{Config, Duration, Error, Event, Instant, State};

fn with_timeout(ut: Duration) -> TestConn {
    Opts {
        cfg: Config {
            user_timeout: Some(ut),
            ..Config::default()
        },
        ..Opts::default()
    }
    .established()
}

#[test]
fn established_user_timeout_aborts_when_the_peer_stops_acknowledging() {
    let mut t = with_timeout(Duration::from_secs(5));
    t.send(1_000, b"hello");
    t.expect_sent(1_000, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"hello")]);
    // Retransmissions (and a tail loss probe) go on meanwhile.
    let sent = t.take_sent(5_999);
    assert!(
        sent.len() >= 3,
        "retransmissions before the timeout: {sent:?}"
    );
    t.expect_state(State::Established);
    // Exactly 5 s after the data left: CLOSED, TimedOut, no RST (the peer
    // is presumably unreachable, as Linux's tcp_write_err).
    t.expect_nothing(6_000);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::TimedOut));
    t.expect_event(Event::Error(Error::TimedOut));
    assert!(t.stats().rto_count < 15);
}

#[test]
fn established_user_timeout_restarts_when_the_peer_acknowledges() {
    let mut t = with_timeout(Duration::from_secs(5));
    t.send(1_000, &pattern(0, 2000));
    t.discard_sent();
    t.expect_deadline(1_300);
    // The first segment is acknowledged at 1.2 s: what is left is timed
    // from then (progress), so the connection lives past 6 s.
    t.inject(1_200, ACK.seq(R + 1).ack(L + 1461));
    let _ = t.take_sent(6_199);
    t.expect_state(State::Established);
    let _ = t.take_sent(6_200);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::TimedOut));
}

#[test]
fn established_user_timeout_not_armed_when_all_is_acknowledged() {
    let mut t = with_timeout(Duration::from_secs(5));
    t.send(1_000, b"hello");
    t.discard_sent();
    t.inject(1_100, ACK.seq(R + 1).ack(L + 6));
    t.expect_no_deadline();
    t.expect_nothing(100_000);
    t.expect_state(State::Established);
}

#[test]
fn established_user_timeout_outlasts_the_retransmission_count() {
    // 15 retransmissions (data_retries) back off to about 993 s; with a
    // user timeout of 1500 s, time decides, not the count (as Linux).
    let mut t = with_timeout(Duration::from_secs(1_500));
    t.send(1_000, b"hello");
    let _ = t.take_sent(1_200_000);
    t.expect_state(State::Established);
    assert!(t.stats().rto_count > 15, "{}", t.stats().rto_count);
    let _ = t.take_sent(1_500_999);
    t.expect_state(State::Established);
    let _ = t.take_sent(1_501_000);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::TimedOut));
}

#[test]
fn established_without_user_timeout_fails_after_the_retransmission_count() {
    let mut t = TestConn::established();
    t.send(1_000, b"hello");
    let _ = t.take_sent(1_200_000);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::TimedOut));
    assert_eq!(t.stats().rto_count, 15);
}

#[test]
fn established_user_timeout_set_per_connection() {
    let mut t = TestConn::established();
    t.send(1_000, b"hello");
    t.discard_sent();
    t.conn
        .set_user_timeout(Instant::from_millis(1_000), Some(Duration::from_secs(2)))
        .unwrap();
    assert_eq!(t.conn.user_timeout(), Some(Duration::from_secs(2)));
    let _ = t.take_sent(2_999);
    t.expect_state(State::Established);
    let _ = t.take_sent(3_000);
    t.expect_error(Some(Error::TimedOut));
    assert!(matches!(
        TestConn::established()
            .conn
            .set_user_timeout(Instant::ZERO, Some(Duration::ZERO)),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn syn_sent_user_timeout_ends_the_handshake() {
    let mut t = Opts {
        cfg: Config {
            user_timeout: Some(Duration::from_secs(4)),
            ..Config::default()
        },
        ..Opts::default()
    }
    .syn_sent();
    // SYN at 0, retransmitted at 1 s and 3 s; the user timeout at 4 s.
    let sent = t.take_sent(3_999);
    assert_eq!(sent.len(), 2, "{sent:?}");
    t.expect_state(State::SynSent);
    t.expect_nothing(4_000);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::TimedOut));
}

//! Keepalive (RFC 1122 §4.2.3.6, Linux's `tcp_keepalive_timer`) and the
//! user timeout (RFC 9293 §3.10.8, Linux `TCP_USER_TIMEOUT`), with exact
//! virtual times.
//!
//! The fixture is ESTABLISHED at 100 ms (the SYN-ACK's arrival, the last
//! segment received), RTO 300 ms; our next sequence number is L+1, the
//! peer's R+1. A keepalive probe is <SEQ=SND.UNA−1=L><ACK=R+1>, no data.

mod common;

use common::*;
use utcp_proto::{Config, Duration, Error, Event, Instant, State};

const S: u64 = 1000;

fn with(cfg: Config) -> TestConn {
    Opts {
        cfg,
        ..Opts::default()
    }
    .established()
}

fn probe() -> Seg {
    ACK.seq(L).ack(R + 1)
}

#[test]
fn established_keepalive_is_off_by_default() {
    let mut t = TestConn::established();
    assert!(!t.conn.keepalive());
    t.expect_no_deadline();
    t.expect_nothing(3 * 7200 * S);
    t.expect_state(State::Established);
    assert_eq!(t.stats().keepalive_probes, 0);
}

#[test]
fn established_keepalive_linux_defaults_probe_nine_times_then_time_out() {
    let mut t = with(Config {
        keepalive: true,
        ..Config::default()
    });
    // Idle 7200 s after the last segment received (100 ms), then every 75 s.
    t.expect_deadline(100 + 7200 * S);
    t.expect_nothing(100 + 7200 * S - 1);
    for k in 0..9 {
        t.expect_sent(100 + 7200 * S + k * 75 * S, [probe().no_sack()]);
        t.expect_state(State::Established);
    }
    assert_eq!(t.stats().keepalive_probes, 9);
    t.expect_nothing(100 + 7200 * S + 9 * 75 * S - 1);
    t.expect_state(State::Established);
    // idle + interval × count: the connection fails, with an RST (as Linux).
    t.expect_sent(100 + 7200 * S + 9 * 75 * S, [RST_ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::TimedOut));
    t.expect_event(Event::Error(Error::TimedOut));
}

#[test]
fn established_keepalive_answered_probe_keeps_the_connection() {
    let mut t = with(Config {
        keepalive: true,
        ..Config::default()
    });
    let first = 100 + 7200 * S;
    t.expect_sent(first, [probe()]);
    // The peer answers the probe (an ACK of SND.NXT, RFC 9293 §3.10.7.4:
    // SEG.SEQ below the window gets an ACK).
    t.inject(first + 40, ACK.seq(R + 1).ack(L + 1));
    t.expect_nothing(first + 40);
    // No second probe one interval later: the idle time starts again.
    t.expect_nothing(first + 40 + 7200 * S - 1);
    t.expect_sent(first + 40 + 7200 * S, [probe()]);
    t.expect_state(State::Established);
    assert_eq!(t.stats().keepalive_probes, 2);
}

#[test]
fn established_keepalive_set_per_connection_counts_idle_from_last_segment() {
    let mut t = TestConn::established();
    t.conn.set_keepalive(Instant::from_millis(100), true);
    t.conn
        .set_keepalive_time(Instant::from_millis(100), Duration::from_secs(10))
        .unwrap();
    t.conn
        .set_keepalive_interval(Duration::from_secs(2))
        .unwrap();
    t.conn.set_keepalive_retries(3).unwrap();
    t.expect_deadline(10_100);
    // Data at 3 s: idle counts from it.
    t.inject(3_000, PSH_ACK.seq(R + 1).ack(L + 1).data(b"ping"));
    t.expect_sent(3_000, [ACK.seq(L + 1).ack(R + 5)]);
    assert_eq!(t.recv_all(), b"ping");
    t.expect_nothing(12_999);
    let probe = ACK.seq(L).ack(R + 5);
    t.expect_sent(13_000, [probe.clone()]);
    t.expect_sent(15_000, [probe.clone()]);
    t.expect_sent(17_000, [probe]);
    t.expect_nothing(18_999);
    t.expect_sent(19_000, [RST_ACK.seq(L + 1).ack(R + 5)]);
    t.expect_error(Some(Error::TimedOut));
}

#[test]
fn established_keepalive_waits_while_data_is_in_flight() {
    let mut t = with(Config {
        keepalive: true,
        keepalive_time: Duration::from_secs(10),
        keepalive_interval: Duration::from_secs(1),
        keepalive_retries: 2,
        ..Config::default()
    });
    // Data unacknowledged from 9 s on: the retransmission timer watches the
    // peer, and no keepalive probe goes at 10.1 s.
    t.send(9_000, b"data");
    t.expect_sent(9_000, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"data")]);
    let sent = t.take_sent(10_499);
    assert!(
        !sent.is_empty() && sent.iter().all(|s| !s.payload.is_empty()),
        "only retransmissions, no probe: {sent:?}"
    );
    // Acknowledged at 10.5 s: idle from then.
    t.inject(10_500, ACK.seq(R + 1).ack(L + 5));
    t.expect_nothing(20_499);
    t.expect_sent(20_500, [ACK.seq(L + 4).ack(R + 1)]);
}

#[test]
fn established_keepalive_turned_off_stops_probing() {
    let mut t = with(Config {
        keepalive: true,
        keepalive_time: Duration::from_secs(10),
        ..Config::default()
    });
    t.expect_sent(10_100, [probe()]);
    t.conn.set_keepalive(Instant::from_millis(10_200), false);
    t.expect_no_deadline();
    t.expect_nothing(1_000 * S);
    t.expect_state(State::Established);
}

#[test]
fn keepalive_settings_reject_zero() {
    let mut t = TestConn::established();
    let now = Instant::from_millis(100);
    assert!(matches!(
        t.conn.set_keepalive_time(now, Duration::ZERO),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        t.conn.set_keepalive_interval(Duration::ZERO),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        t.conn.set_keepalive_retries(0),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(t.conn.keepalive_time(), Duration::from_secs(7200));
    assert_eq!(t.conn.keepalive_interval(), Duration::from_secs(75));
    assert_eq!(t.conn.keepalive_retries(), 9);
    let bad = Config {
        keepalive_retries: 0,
        ..Config::default()
    };
    assert!(bad.validate().is_err());
}

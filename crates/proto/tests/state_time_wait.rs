//! TIME_WAIT as a `Connection`: RFC 9293 §3.10.7.4 and §3.6. The fixture
//! entered it at 300 ms (both FINs ACKed: SND.NXT = L+2, RCV.NXT = R+2); 2·MSL
//! ends at 60 300 ms. A connection in TIME_WAIT applies its record's rules
//! (the same code as the endpoint's TIME_WAIT table, which `timewait.rs`
//! tests).

mod common;

use common::*;
use utcp_proto::{Config, Duration, Event, Instant, State};

#[test]
fn time_wait_expires_after_2msl() {
    let mut t = TestConn::time_wait();
    t.expect_deadline(60_300);
    t.expect_nothing(60_299);
    t.expect_state(State::TimeWait);
    t.expect_nothing(60_300);
    t.expect_state(State::Closed);
    t.expect_event(Event::StateChanged {
        from: State::TimeWait,
        to: State::Closed,
    });
    t.expect_event(Event::Closed);
    t.expect_error(None);
    t.expect_no_deadline();
    assert!(t.conn.is_closed());
}

#[test]
fn time_wait_retransmitted_fin_is_acked_and_restarts_2msl() {
    let mut t = TestConn::time_wait();
    t.inject(10_000, FIN_ACK.seq(R + 1).ack(L + 2));
    t.expect_sent(10_000, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_state(State::TimeWait);
    t.expect_deadline(70_000);
}

#[test]
fn time_wait_msl_is_configurable() {
    let cfg = Config {
        msl: Duration::from_secs(1),
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        ..Opts::default()
    }
    .time_wait();
    t.expect_deadline(2_300);
    t.expect_nothing(2_300);
    t.expect_state(State::Closed);
}

#[test]
fn time_wait_rst_exact_closes() {
    let mut t = TestConn::time_wait();
    t.inject(1_000, RST.seq(R + 2));
    t.expect_nothing(1_000);
    t.expect_state(State::Closed);
    t.expect_no_deadline();
}

#[test]
fn time_wait_rst_not_exact_is_ignored() {
    // RFC 5961 §3.2 would challenge an in-window RST; in TIME_WAIT Linux
    // (`tcp_timewait_state_process`) drops it silently, and so do we.
    let mut t = TestConn::time_wait();
    t.inject(1_000, RST.seq(R + 9));
    t.expect_nothing(1_000);
    t.expect_state(State::TimeWait);
}

#[test]
fn time_wait_unsolicited_acks_are_rate_limited_but_fin_reacks_are_not() {
    // At most one ACK per `time_wait_ack_interval` (500 ms) for segments
    // other than the retransmitted FIN.
    let mut t = TestConn::time_wait();
    t.inject(1_000, PSH_ACK.seq(R + 2).ack(L + 2).data(b"a"));
    t.expect_sent(1_000, [ACK.seq(L + 2).ack(R + 2)]);
    t.inject(1_100, PSH_ACK.seq(R + 2).ack(L + 2).data(b"b"));
    t.inject(1_200, SYN.seq(R + 1));
    t.expect_nothing(1_200);
    t.inject(1_300, FIN_ACK.seq(R + 1).ack(L + 2));
    t.expect_sent(1_300, [ACK.seq(L + 2).ack(R + 2)]);
    t.inject(1_500, PSH_ACK.seq(R + 2).ack(L + 2).data(b"c"));
    t.expect_sent(1_500, [ACK.seq(L + 2).ack(R + 2)]);
}

#[test]
fn time_wait_syn_gets_challenge_ack() {
    // The connection itself never reopens; the runtime's record decides that.
    let mut t = TestConn::time_wait();
    t.inject(1_000, SYN.seq(R + 2));
    t.expect_sent(1_000, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_state(State::TimeWait);
    t.expect_deadline(60_300);
}

#[test]
fn time_wait_data_gets_ack() {
    let mut t = TestConn::time_wait();
    t.inject(1_000, PSH_ACK.seq(R + 2).ack(L + 2).data(b"zombie"));
    t.expect_sent(1_000, [ACK.seq(L + 2).ack(R + 2)]);
    assert_eq!(t.conn.readable(), 0);
    t.expect_state(State::TimeWait);
}

#[test]
fn time_wait_duplicate_ack_is_ignored() {
    let mut t = TestConn::time_wait();
    t.inject(1_000, ACK.seq(R + 2).ack(L + 2));
    t.expect_nothing(1_000);
    t.expect_state(State::TimeWait);
    t.expect_deadline(60_300);
}

#[test]
fn time_wait_reached_by_simultaneous_close() {
    let mut t = TestConn::closing();
    t.inject(300, ACK.seq(R + 2).ack(L + 2));
    t.expect_state(State::TimeWait);
    t.inject(400, FIN_ACK.seq(R + 1).ack(L + 2));
    t.expect_sent(400, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_deadline(60_400);
}

#[test]
fn time_wait_record_matches_the_connection() {
    let t = TestConn::time_wait();
    let rec = t.conn.time_wait_record().expect("in TIME_WAIT");
    assert_eq!(rec.snd_nxt(), L + 2);
    assert_eq!(rec.rcv_nxt(), R + 2);
    assert_eq!(rec.deadline(), Instant::from_millis(60_300));
    assert_eq!(rec.ts_recent(), None, "no timestamps negotiated");
    assert_eq!((rec.local, rec.remote), (t.local, t.remote));
    assert!(TestConn::established().conn.time_wait_record().is_none());
}

#[test]
fn time_wait_send_and_recv_report_closed() {
    let mut t = TestConn::time_wait();
    assert_eq!(t.conn.send(b"x"), Err(utcp_proto::Error::BrokenPipe));
    let mut buf = [0u8; 4];
    assert_eq!(t.conn.recv(&mut buf), Ok(Some(0)));
}

#[test]
fn time_wait_rst_out_of_window_is_ignored() {
    let mut t = TestConn::time_wait();
    t.inject(1_000, RST.seq(R + 1));
    t.expect_nothing(1_000);
    t.expect_state(State::TimeWait);
}

#[test]
fn time_wait_ack_above_snd_nxt_gets_ack() {
    let mut t = TestConn::time_wait();
    t.inject(1_000, ACK.seq(R + 2).ack(L + 50));
    t.expect_sent(1_000, [ACK.seq(L + 2).ack(R + 2)]);
    t.expect_state(State::TimeWait);
}

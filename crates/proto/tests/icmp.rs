//! ICMP errors about our segments (RFC 1122 §4.2.3.9, RFC 5927) and path
//! MTU discovery (RFC 1191, RFC 8201), at the segment level. The fixture
//! is SYN_SENT at 0 ms or ESTABLISHED at 100 ms with RTO 300 ms and MSS
//! 1460 (see `state_established.rs`).

mod common;

use common::*;
use utcp_proto::wire::icmp::IcmpError;
use utcp_proto::{Config, Error, State};

/// RFC 1122 §4.2.3.9 / Linux: destination unreachable for our SYN is a
/// hard error — the connect fails with the matching error at once.
#[test]
fn syn_sent_unreachable_fails_the_connect_with_its_error() {
    for (icmp, err) in [
        (IcmpError::HostUnreachable, Error::HostUnreachable),
        (IcmpError::NetUnreachable, Error::NetworkUnreachable),
        (IcmpError::PortUnreachable, Error::ConnectionRefused),
    ] {
        let mut t = TestConn::syn_sent();
        t.act(10, |c| assert!(c.handle_icmp(icmp, L)));
        t.expect_nothing(10);
        t.expect_state(State::Closed);
        assert_eq!(t.conn.error(), Some(err));
        assert_eq!(t.stats().icmp_errors, 1);
    }
}

/// RFC 5927 §4.1: an ICMP error quoting a sequence number we never sent
/// (outside SND.UNA..SND.MAX) is ignored and counted.
#[test]
fn an_icmp_error_quoting_a_foreign_sequence_number_is_ignored() {
    let mut t = TestConn::syn_sent();
    t.act(10, |c| {
        assert!(!c.handle_icmp(IcmpError::HostUnreachable, L + 1))
    });
    t.act(11, |c| {
        assert!(!c.handle_icmp(IcmpError::HostUnreachable, L + u32::MAX))
    });
    t.expect_state(State::SynSent);
    assert_eq!((t.stats().icmp_errors, t.stats().icmp_ignored), (0, 2));

    let mut t = TestConn::established();
    t.send(200, &pattern(0, 1000));
    t.discard_sent();
    // SND.MAX = L + 1001: L + 1001 itself lies outside.
    t.act(210, |c| {
        assert!(!c.handle_icmp(IcmpError::HostUnreachable, L + 1001))
    });
    t.act(211, |c| {
        assert!(!c.handle_icmp(IcmpError::HostUnreachable, L))
    });
    assert_eq!(t.stats().icmp_ignored, 2);
}

fn retries_2() -> Opts {
    Opts {
        cfg: Config {
            data_retries: 2,
            ..Config::default()
        },
        ..Opts::default()
    }
}

/// On a synchronized connection an unreachable is soft: the connection
/// goes on, and only when it times out is the ICMP error what it reports
/// instead of `TimedOut`.
#[test]
fn established_unreachable_is_soft_and_reported_by_a_later_timeout() {
    let mut t = retries_2().established();
    t.send(200, &pattern(0, 1000));
    t.discard_sent();
    t.act(250, |c| {
        assert!(c.handle_icmp(IcmpError::HostUnreachable, L + 1))
    });
    t.expect_state(State::Established);
    assert_eq!(t.conn.error(), None, "nothing reported yet");
    // The peer stays silent: retransmissions run out.
    t.advance(60_000);
    t.discard_sent();
    t.expect_state(State::Closed);
    assert_eq!(t.conn.error(), Some(Error::HostUnreachable));
}

/// An ACK of new data after the ICMP error shows the path works: the soft
/// error is forgotten (Linux's `tcp_ack`), and a later timeout is
/// `TimedOut`.
#[test]
fn an_ack_after_a_soft_icmp_error_forgets_it() {
    let mut t = retries_2().established();
    t.send(200, &pattern(0, 1000));
    t.discard_sent();
    t.act(250, |c| {
        assert!(c.handle_icmp(IcmpError::HostUnreachable, L + 1))
    });
    t.inject(260, ACK.seq(R + 1).ack(L + 1001));
    t.send(300, &pattern(1000, 500));
    t.discard_sent();
    t.advance(60_000);
    t.discard_sent();
    assert_eq!(t.conn.error(), Some(Error::TimedOut));
}

/// Without an ICMP error, the same silence is `TimedOut`.
#[test]
fn without_an_icmp_error_a_timeout_is_timed_out() {
    let mut t = retries_2().established();
    t.send(200, &pattern(0, 1000));
    t.discard_sent();
    t.advance(60_000);
    t.discard_sent();
    assert_eq!(t.conn.error(), Some(Error::TimedOut));
}

/// RFC 1191 / RFC 8201: "packet too big" with MTU 1,280 lowers the MSS
/// to 1,240 and what is in flight is resent at once at the new size, in
/// order; a report that would not lower it, or one below the floor, does
/// not go under 536.
#[test]
fn packet_too_big_lowers_the_mss_and_resends_in_flight_data_smaller() {
    let mut t = Opts::unpaced().established();
    let data = pattern(0, 4 * 1460);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 4);
    t.act(210, |c| {
        assert!(c.handle_icmp(IcmpError::PacketTooBig { mtu: 1280 }, L + 1))
    });
    assert_eq!(t.stats().mss, 1240);
    assert_eq!(t.stats().pmtu_lowered, 1);
    let sent = t.take_sent(210);
    assert!(!sent.is_empty(), "resent at once");
    let mut at = 0;
    for s in &sent {
        assert_eq!(s.seq, L + 1 + at as u32, "in order from SND.UNA");
        assert!(s.payload.len() <= 1240, "{} bytes", s.payload.len());
        assert!(s.payload[..] == data[at..at + s.payload.len()]);
        at += s.payload.len();
    }
    // Not lowering: ignored; below the floor: the floor.
    t.act(220, |c| {
        assert!(!c.handle_icmp(IcmpError::PacketTooBig { mtu: 1400 }, L + 1))
    });
    t.act(221, |c| {
        assert!(c.handle_icmp(IcmpError::PacketTooBig { mtu: 300 }, L + 1))
    });
    assert_eq!(t.stats().mss, 536);
    t.discard_sent();
}

//! The endpoint: the 4-tuple table, listeners and backlogs, the RST for segments
//! nobody wants (RFC 9293 §3.10.7.1 and §3.10.7.2), ISNs (RFC 6528) and
//! ephemeral ports (RFC 6056).

mod common;

use common::*;
use std::net::{IpAddr, SocketAddr};
use utcp_proto::{
    Connection, DropReason, Duration, EndpointConfig, Error, FourTuple, Instant, Route, SeqNum,
    State,
};

const SERVER: &str = "10.0.0.2:80";
const CLIENT: &str = "10.0.0.1:5555";

fn server() -> TestEndpoint {
    TestEndpoint::new(
        EndpointConfig {
            secret: [7; 16],
            ..EndpointConfig::default()
        },
        &["10.0.0.2"],
    )
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn is_reset(r: &Route) -> bool {
    matches!(r, Route::Reset)
}

// ---- RST for segments nobody wants (§3.10.7.1) --------------------------------

#[test]
fn endpoint_syn_to_closed_port_gets_rst_ack() {
    let mut e = server();
    let r = e.inject(10, CLIENT, SERVER, SYN.seq(R).mss(1460));
    assert!(is_reset(&r), "{r:?}");
    // No ACK on the SYN: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    e.expect_sent(
        10,
        SERVER,
        CLIENT,
        [RST_ACK.seq(SeqNum::new(0)).ack(R + 1).win(0)],
    );
}

#[test]
fn endpoint_syn_with_data_and_fin_to_closed_port_acks_all_of_it() {
    let mut e = server();
    e.inject(10, CLIENT, SERVER, SYN.seq(R).data(b"abc"));
    e.expect_sent(10, SERVER, CLIENT, [RST_ACK.seq(SeqNum::new(0)).ack(R + 4)]);
    e.inject(
        20,
        CLIENT,
        SERVER,
        SYN.with(utcp_proto::wire::TcpFlags::FIN).seq(R),
    );
    e.expect_sent(20, SERVER, CLIENT, [RST_ACK.seq(SeqNum::new(0)).ack(R + 2)]);
}

#[test]
fn endpoint_fin_without_ack_to_closed_port_gets_rst_ack() {
    let mut e = server();
    e.inject(10, CLIENT, SERVER, FIN.seq(R).data(b"xy"));
    e.expect_sent(10, SERVER, CLIENT, [RST_ACK.seq(SeqNum::new(0)).ack(R + 3)]);
}

#[test]
fn endpoint_ack_to_unknown_tuple_gets_rst_with_its_ack_as_seq() {
    // With ACK: <SEQ=SEG.ACK><CTL=RST>.
    let mut e = server();
    let r = e.inject(10, CLIENT, SERVER, ACK.seq(R).ack(L + 77));
    assert!(is_reset(&r));
    e.expect_sent(10, SERVER, CLIENT, [RST.seq(L + 77)]);
    e.inject(
        20,
        CLIENT,
        SERVER,
        FIN_PSH_ACK.seq(R).ack(L + 5).data(b"data"),
    );
    e.expect_sent(20, SERVER, CLIENT, [RST.seq(L + 5)]);
}

#[test]
fn endpoint_rst_to_unknown_tuple_is_never_answered() {
    let mut e = server();
    let r = e.inject(10, CLIENT, SERVER, RST.seq(R));
    assert!(matches!(r, Route::Drop(DropReason::UnmatchedRst)), "{r:?}");
    let r = e.inject(20, CLIENT, SERVER, RST_ACK.seq(R).ack(L));
    assert!(matches!(r, Route::Drop(DropReason::UnmatchedRst)), "{r:?}");
    e.ep.listen(addr(SERVER), 4).unwrap();
    let r = e.inject(30, CLIENT, SERVER, RST.seq(R));
    assert!(matches!(r, Route::Drop(DropReason::UnmatchedRst)), "{r:?}");
    e.expect_nothing(30);
}

#[test]
fn endpoint_segment_to_foreign_address_is_dropped() {
    let mut e = server();
    let r = e.inject(10, CLIENT, "10.0.0.99:80", SYN.seq(R));
    assert!(matches!(r, Route::Drop(DropReason::NotLocal)), "{r:?}");
    e.expect_nothing(10);
}

// ---- Listeners (§3.10.7.2) --------------------------------------------------------

#[test]
fn endpoint_remove_releases_backlog_and_invalidates_the_handle() {
    let mut e = server();
    e.ep.listen(addr(SERVER), 1).unwrap();
    let (h, _c) = incoming(e.inject(10, CLIENT, SERVER, SYN.seq(R)));
    e.ep.attach(h, ());
    assert!(e.ep.get(h).is_some());
    assert_eq!(e.ep.remove(h), Some(()));
    assert!(e.ep.get(h).is_none());
    assert_eq!(e.ep.remove(h), None);
    assert_eq!(e.ep.connection_count(), 0);
    // The 4-tuple is unknown again: an ACK gets an RST.
    e.inject(20, CLIENT, SERVER, ACK.seq(R + 1).ack(L));
    e.expect_sent(20, SERVER, CLIENT, [RST.seq(L)]);
    // The backlog slot was freed; the reused slot has a new generation.
    let (h2, _c2) = incoming(e.inject(30, CLIENT, SERVER, SYN.seq(R + 100)));
    assert_eq!(h2.index(), h.index());
    assert_ne!(h2, h);
    assert!(e.ep.get(h).is_none());
}

#[test]
fn endpoint_listen_errors() {
    let mut e = server();
    e.ep.listen(addr(SERVER), 4).unwrap();
    assert_eq!(e.ep.listen(addr(SERVER), 4).unwrap_err(), Error::AddrInUse);
    assert_eq!(
        e.ep.listen(addr("0.0.0.0:80"), 4).unwrap_err(),
        Error::AddrInUse
    );
    assert_eq!(
        e.ep.listen(addr("10.9.9.9:80"), 4).unwrap_err(),
        Error::AddrNotAvailable
    );
}

#[test]
fn endpoint_listen_on_unspecified_address_covers_every_local_address() {
    let mut e = TestEndpoint::new(
        EndpointConfig::default(),
        &["10.0.0.2", "10.0.0.3", "fd00::2"],
    );
    e.ep.listen(addr("0.0.0.0:80"), 4).unwrap();
    assert!(matches!(
        e.inject(10, CLIENT, "10.0.0.3:80", SYN.seq(R)),
        Route::Incoming { .. }
    ));
    assert!(matches!(
        e.inject(10, CLIENT, "10.0.0.2:80", SYN.seq(R)),
        Route::Incoming { .. }
    ));
    // Not the IPv6 address.
    assert!(is_reset(&e.inject(
        10,
        "[fd00::1]:5555",
        "[fd00::2]:80",
        SYN.seq(R)
    )));
}

#[test]
fn endpoint_listen_on_port_zero_picks_an_ephemeral_port() {
    let mut e = server();
    let (_, bound) = e.ep.listen(addr("10.0.0.2:0"), 4).unwrap();
    assert!((49152..=65535).contains(&bound.port()), "{bound}");
}

#[test]
fn endpoint_unlisten_makes_the_port_closed() {
    let mut e = server();
    let (id, _) = e.ep.listen(addr(SERVER), 4).unwrap();
    e.ep.unlisten(id);
    assert!(!e.ep.has_listener(id));
    e.inject(10, CLIENT, SERVER, SYN.seq(R));
    e.expect_sent(10, SERVER, CLIENT, [RST_ACK.seq(SeqNum::new(0)).ack(R + 1)]);
}

#[test]
fn endpoint_listen_any_accepts_any_destination() {
    let mut e = server();
    e.ep.listen_any(8).unwrap();
    let (_, conn) = incoming(e.inject(10, CLIENT, "192.0.2.7:443", SYN.seq(R)));
    // The original destination becomes the local address.
    assert_eq!(conn.local_addr(), addr("192.0.2.7:443"));
    assert_eq!(e.ep.listen_any(8).unwrap_err(), Error::AddrInUse);
    // Segments for unknown tuples still get the RST of §3.10.7.
    e.inject(20, CLIENT, "192.0.2.7:444", ACK.seq(R).ack(L));
    e.expect_sent(20, "192.0.2.7:444", CLIENT, [RST.seq(L)]);
}

// ---- Active opens: ephemeral ports (RFC 6056) ----------------------------------------

#[test]
fn endpoint_ephemeral_port_exhaustion_is_addr_not_available() {
    let cfg = EndpointConfig {
        ephemeral_ports: 50_000..=50_003,
        ..EndpointConfig::default()
    };
    let mut e = TestEndpoint::new(cfg, &["10.0.0.1"]);
    let remote = addr("10.0.0.2:80");
    let mut conns = Vec::new();
    for _ in 0..4 {
        let (h, c) = e.ep.connect(e.now(), remote, None).expect("a free port");
        assert_eq!(c.state(), State::SynSent);
        assert_eq!(c.local_addr().ip(), "10.0.0.1".parse::<IpAddr>().unwrap());
        conns.push((h, c.local_addr().port()));
    }
    let mut ports: Vec<u16> = conns.iter().map(|c| c.1).collect();
    ports.sort();
    assert_eq!(ports, vec![50_000, 50_001, 50_002, 50_003]);
    assert_eq!(
        e.ep.connect(e.now(), remote, None).unwrap_err(),
        Error::AddrNotAvailable
    );
    // Another destination is another 4-tuple.
    assert!(e.ep.connect(e.now(), addr("10.0.0.2:81"), None).is_ok());
    // A removed connection frees its port.
    e.ep.remove(conns[2].0);
    let (_, c) = e.ep.connect(e.now(), remote, None).unwrap();
    assert_eq!(c.local_addr().port(), conns[2].1);
    assert_eq!(
        e.ep.connect(e.now(), remote, None).unwrap_err(),
        Error::AddrNotAvailable
    );
}

#[test]
fn endpoint_connect_skips_listening_ports() {
    let cfg = EndpointConfig {
        ephemeral_ports: 50_000..=50_001,
        ..EndpointConfig::default()
    };
    let mut e = TestEndpoint::new(cfg, &["10.0.0.1"]);
    e.ep.listen(addr("10.0.0.1:50000"), 4).unwrap();
    let (_, c) = e.ep.connect(e.now(), addr("10.0.0.2:80"), None).unwrap();
    assert_eq!(c.local_addr().port(), 50_001);
    assert_eq!(
        e.ep.connect(e.now(), addr("10.0.0.2:80"), None)
            .unwrap_err(),
        Error::AddrNotAvailable
    );
}

#[test]
fn endpoint_connect_errors() {
    let mut e = TestEndpoint::new(EndpointConfig::default(), &["10.0.0.1"]);
    let now = e.now();
    assert!(matches!(
        e.ep.connect(now, addr("10.0.0.2:0"), None),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        e.ep.connect(now, addr("0.0.0.0:80"), None),
        Err(Error::InvalidInput(_))
    ));
    // No IPv6 address of ours.
    assert_eq!(
        e.ep.connect(now, addr("[fd00::2]:80"), None).unwrap_err(),
        Error::AddrNotAvailable
    );
    // A local address that is not ours.
    assert_eq!(
        e.ep.connect(now, addr("10.0.0.2:80"), Some("10.0.0.9".parse().unwrap()))
            .unwrap_err(),
        Error::AddrNotAvailable
    );
}

#[test]
fn endpoint_connect_from_a_fixed_port() {
    let mut e = TestEndpoint::new(EndpointConfig::default(), &["10.0.0.1"]);
    let now = e.now();
    let (_, c) =
        e.ep.connect_from(now, addr("10.0.0.1:7000"), addr("10.0.0.2:80"))
            .unwrap();
    assert_eq!(c.local_addr(), addr("10.0.0.1:7000"));
    assert_eq!(
        e.ep.connect_from(now, addr("10.0.0.1:7000"), addr("10.0.0.2:80"))
            .unwrap_err(),
        Error::AddrInUse
    );
}

// ---- ISNs (RFC 6528) -----------------------------------------------------------

#[test]
fn endpoint_isn_differs_per_tuple_and_moves_with_the_clock() {
    let e = server();
    let t1 = FourTuple {
        local: addr(SERVER),
        remote: addr(CLIENT),
    };
    let t2 = FourTuple {
        local: addr(SERVER),
        remote: addr("10.0.0.1:5556"),
    };
    let t0 = Instant::from_millis(1_000);
    assert_ne!(e.ep.isn(t0, &t1), e.ep.isn(t0, &t2));
    // M is a 4 µs timer: 4 ms later the ISN moved by 1000.
    let later = t0 + Duration::from_millis(4);
    assert_eq!(e.ep.isn(later, &t1) - e.ep.isn(t0, &t1), 1000);
    assert_eq!(e.ep.isn(t0, &t1), e.ep.isn(t0, &t1));
    // Another secret, another offset.
    let other = TestEndpoint::new(
        EndpointConfig {
            secret: [8; 16],
            ..EndpointConfig::default()
        },
        &["10.0.0.2"],
    );
    assert_ne!(other.ep.isn(t0, &t1), e.ep.isn(t0, &t1));
}

#[test]
fn endpoint_accepted_connection_uses_the_isn() {
    let mut e = server();
    e.ep.listen(addr(SERVER), 4).unwrap();
    let (_, conn) = incoming(e.inject(10, CLIENT, SERVER, SYN.seq(R)));
    let tuple = FourTuple {
        local: addr(SERVER),
        remote: addr(CLIENT),
    };
    assert_eq!(conn.iss(), e.ep.isn(Instant::from_millis(10), &tuple));
}

// ---- IPv6 ----------------------------------------------------------------

#[test]
fn endpoint_ipv6_tuples() {
    let mut e = TestEndpoint::new(EndpointConfig::default(), &["10.0.0.2", "fd00::2"]);
    e.inject(10, "[fd00::1]:5555", "[fd00::2]:80", SYN.seq(R));
    e.expect_sent(
        10,
        "[fd00::2]:80",
        "[fd00::1]:5555",
        [RST_ACK.seq(SeqNum::new(0)).ack(R + 1)],
    );
    e.ep.listen(addr("[fd00::2]:80"), 4).unwrap();
    let (h, mut conn) = incoming(e.inject(20, "[fd00::1]:5555", "[fd00::2]:80", SYN.seq(R)));
    let syn_ack = first_segment(&mut conn, Instant::from_millis(20));
    assert_eq!((syn_ack.flags, syn_ack.ack), (SYN_ACK.flags, R + 1));
    // The IPv4 twin of the port is not a match.
    assert!(is_reset(&e.inject(
        30,
        "10.0.0.1:5555",
        "10.0.0.2:80",
        SYN.seq(R)
    )));
    let r = e.inject(
        40,
        "[fd00::1]:5555",
        "[fd00::2]:80",
        ACK.seq(R + 1).ack(conn.iss() + 1),
    );
    assert!(matches!(r, Route::Connection(x) if x == h));
    // Active open over IPv6 picks the IPv6 address.
    let (_, c) = e.ep.connect(e.now(), addr("[fd00::9]:443"), None).unwrap();
    assert_eq!(c.local_addr().ip(), "fd00::2".parse::<IpAddr>().unwrap());
}

// ---- TIME_WAIT: see timewait.rs (records, their rules, reopening) -------------

#[test]
fn endpoint_handshake_between_two_endpoints() {
    // Client and server endpoints, the real handshake through the codec.
    let mut client = TestEndpoint::new(
        EndpointConfig {
            secret: [1; 16],
            ..EndpointConfig::default()
        },
        &["10.0.0.1"],
    );
    let mut srv = server();
    srv.ep.listen(addr(SERVER), 4).unwrap();
    let (_, mut c) = client
        .ep
        .connect(Instant::ZERO, addr(SERVER), None)
        .unwrap();
    let syn = first_segment(&mut c, Instant::ZERO);
    let from = c.local_addr().to_string();
    let (_, mut s) = incoming(srv.inject(0, &from, SERVER, syn));
    let syn_ack = first_segment(&mut s, Instant::ZERO);
    let deliver = |conn: &mut Connection, seg: Seg, src: SocketAddr, dst: SocketAddr| {
        let repr = utcp_proto::wire::TcpRepr {
            src_port: src.port(),
            dst_port: dst.port(),
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            window: seg.window.unwrap_or(65_535),
            urgent: 0,
            options: utcp_proto::wire::TcpOptions {
                mss: seg.mss,
                ..Default::default()
            },
        };
        let (repr, payload) = through_wire(src.ip(), dst.ip(), &repr, &seg.payload);
        conn.handle_segment(
            Instant::from_millis(1),
            utcp_proto::Segment { repr, payload },
        );
    };
    deliver(&mut c, syn_ack, addr(SERVER), addr(&from));
    assert_eq!(c.state(), State::Established);
    let ack = first_segment(&mut c, Instant::from_millis(1));
    deliver(&mut s, ack, addr(&from), addr(SERVER));
    assert_eq!(s.state(), State::Established);
}

//! LISTEN (RFC 9293 §3.10.7.2): listeners live in the endpoint, so these
//! tests drive an `Endpoint` with a listener. First an RST is ignored, second
//! an ACK gets <SEQ=SEG.ACK><CTL=RST>, third a SYN makes a connection in
//! SYN_RECEIVED (bounded by the backlog), fourth anything else is dropped.

mod common;

use common::*;
use std::net::SocketAddr;
use utcp_proto::{DropReason, Instant, Route, State};

const SERVER: &str = "10.0.0.2:80";
const CLIENT: &str = "10.0.0.1:5555";

fn server() -> TestEndpoint {
    TestEndpoint::new(
        utcp_proto::EndpointConfig {
            secret: [7; 16],
            ..utcp_proto::EndpointConfig::default()
        },
        &["10.0.0.2"],
    )
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn listen_rst_is_ignored() {
    // LISTEN, first: an incoming RST is ignored (never answered).
    let mut e = server();
    e.ep.listen(addr(SERVER), 4).unwrap();
    let r = e.inject(10, CLIENT, SERVER, RST.seq(R));
    assert!(matches!(r, Route::Drop(DropReason::UnmatchedRst)), "{r:?}");
    let r = e.inject(20, CLIENT, SERVER, RST_ACK.seq(R).ack(L));
    assert!(matches!(r, Route::Drop(DropReason::UnmatchedRst)), "{r:?}");
    e.expect_nothing(20);
    assert_eq!(e.ep.connection_count(), 0);
}

#[test]
fn listen_syn_with_data_acks_only_the_syn() {
    // LISTEN, third: data on a SYN is not taken before the handshake completes
    // (as Linux without TCP Fast Open); the SYN-ACK acknowledges the SYN only
    // and the peer sends the data again.
    let mut e = server();
    e.ep.listen(addr(SERVER), 4).unwrap();
    let (_h, mut conn) = incoming(e.inject(10, CLIENT, SERVER, SYN.seq(R).data(b"early")));
    let syn_ack = first_segment(&mut conn, Instant::from_millis(10));
    let iss = conn.iss();
    assert_seg(&syn_ack, &SYN_ACK.seq(iss).ack(R + 1));
    assert_eq!(conn.state(), State::SynReceived);
    assert_eq!(conn.readable(), 0);
}

#[test]
fn listen_syn_creates_a_connection_in_syn_received() {
    let mut e = server();
    let (id, bound) = e.ep.listen(addr(SERVER), 4).unwrap();
    assert_eq!(bound, addr(SERVER));
    let r = e.inject(10, CLIENT, SERVER, SYN.seq(R).mss(1400));
    let listener = match &r {
        Route::Incoming { listener, .. } => *listener,
        other => panic!("{other:?}"),
    };
    assert_eq!(listener, id);
    let (h, mut conn) = incoming(r);
    e.expect_nothing(10);
    assert_eq!(conn.state(), State::SynReceived);
    assert_eq!(
        (conn.local_addr(), conn.remote_addr()),
        (addr(SERVER), addr(CLIENT))
    );
    assert!(conn.is_passive());
    let syn_ack = first_segment(&mut conn, Instant::from_millis(10));
    let iss = conn.iss();
    assert_seg(&syn_ack, &SYN_ACK.seq(iss).ack(R + 1).mss(1460));
    // Later segments of the 4-tuple go to it.
    let r = e.inject(20, CLIENT, SERVER, ACK.seq(R + 1).ack(iss + 1));
    assert!(matches!(r, Route::Connection(x) if x == h), "{r:?}");
    assert_eq!(e.ep.connection_count(), 1);
}

#[test]
fn listen_ack_gets_rst_with_seq_seg_ack() {
    // LISTEN, second: any acknowledgment is bad: <SEQ=SEG.ACK><CTL=RST>.
    let mut e = server();
    e.ep.listen(addr(SERVER), 4).unwrap();
    e.inject(10, CLIENT, SERVER, ACK.seq(R).ack(L + 9));
    e.expect_sent(10, SERVER, CLIENT, [RST.seq(L + 9)]);
    e.inject(20, CLIENT, SERVER, SYN_ACK.seq(R).ack(L + 3));
    e.expect_sent(20, SERVER, CLIENT, [RST.seq(L + 3)]);
    assert_eq!(e.ep.connection_count(), 0);
}

#[test]
fn listen_segment_without_syn_or_ack_is_dropped() {
    // LISTEN, fourth: other text or control without ACK: drop it.
    let mut e = server();
    e.ep.listen(addr(SERVER), 4).unwrap();
    let r = e.inject(10, CLIENT, SERVER, FIN.seq(R).data(b"x"));
    assert!(matches!(r, Route::Drop(_)), "{r:?}");
    e.expect_nothing(10);
}

#[test]
fn listen_full_backlog_drops_syn_until_released() {
    let mut e = server();
    e.ep.listen(addr(SERVER), 1).unwrap();
    let (h1, _c1) = incoming(e.inject(10, CLIENT, SERVER, SYN.seq(R)));
    let r = e.inject(20, "10.0.0.1:5556", SERVER, SYN.seq(R));
    assert!(matches!(r, Route::Drop(DropReason::BacklogFull)), "{r:?}");
    e.expect_nothing(20);
    // Accepted (or dead): the slot in the backlog is free again.
    e.ep.release_backlog(h1);
    let (h2, _c2) = incoming(e.inject(30, "10.0.0.1:5556", SERVER, SYN.seq(R)));
    let r = e.inject(40, "10.0.0.1:5557", SERVER, SYN.seq(R));
    assert!(matches!(r, Route::Drop(DropReason::BacklogFull)), "{r:?}");
    // Removing an unaccepted connection frees its backlog slot too.
    e.ep.remove(h2);
    let _ = incoming(e.inject(50, "10.0.0.1:5557", SERVER, SYN.seq(R)));
}

//! LISTEN (RFC 9293 §3.10.7.2): listeners live in the endpoint, so these
//! tests drive an `Endpoint` with a listener. First an RST is ignored, second
//! an ACK gets <SEQ=SEG.ACK><CTL=RST>, third a SYN makes a connection in
//! SYN_RECEIVED (bounded by the SYN queue; the backlog bounds the accept
//! queue), fourth anything else is dropped.

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
fn listen_full_accept_queue_drops_syn_until_released() {
    // The backlog bounds the accept queue (established, not accepted), as
    // Linux's sk_acceptq_is_full: a SYN then finds no room and is dropped.
    let mut e = server();
    e.ep.listen(addr(SERVER), 1).unwrap();
    let (h1, c1) = incoming(e.inject(10, CLIENT, SERVER, SYN.seq(R)));
    let r = e.inject(11, CLIENT, SERVER, ACK.seq(R + 1).ack(c1.iss() + 1));
    assert!(matches!(r, Route::Connection(x) if x == h1), "{r:?}");
    let r = e.inject(20, "10.0.0.1:5556", SERVER, SYN.seq(R));
    assert!(matches!(r, Route::Drop(DropReason::BacklogFull)), "{r:?}");
    e.expect_nothing(20);
    assert_eq!(e.ep.listen_stats().accept_queue_syn_drops, 1);
    // Accepted: the slot in the accept queue is free again.
    e.ep.release_backlog(h1);
    let (h2, c2) = incoming(e.inject(30, "10.0.0.1:5556", SERVER, SYN.seq(R)));
    e.inject(
        31,
        "10.0.0.1:5556",
        SERVER,
        ACK.seq(R + 1).ack(c2.iss() + 1),
    );
    let r = e.inject(40, "10.0.0.1:5557", SERVER, SYN.seq(R));
    assert!(matches!(r, Route::Drop(DropReason::BacklogFull)), "{r:?}");
    // Removing an unaccepted connection frees its place too.
    e.ep.remove(h2);
    let _ = incoming(e.inject(50, "10.0.0.1:5557", SERVER, SYN.seq(R)));
}

#[test]
fn listen_half_open_connections_do_not_count_against_the_backlog() {
    // Two queues, as Linux: SYN_RECEIVED connections fill the SYN queue
    // (EndpointConfig::syn_queue), not the backlog.
    let mut e = server();
    let (id, _) = e.ep.listen(addr(SERVER), 1).unwrap();
    for port in 5000..5010 {
        let _ = incoming(e.inject(10, &format!("10.0.0.1:{port}"), SERVER, SYN.seq(R)));
    }
    assert_eq!(e.ep.listener_queues(id), Some((10, 0)));
    let s = e.ep.listen_stats();
    assert_eq!((s.half_open, s.half_open_peak, s.unaccepted), (10, 10, 0));
}

#[test]
fn listen_final_ack_on_full_accept_queue_is_dropped_and_admitted_later() {
    // Linux's tcp_check_req with tcp_abort_on_overflow off: the ACK that
    // completes a handshake while the accept queue is full is dropped and
    // the connection stays half-open (its SYN-ACK timer re-sends, the
    // peer's answer comes back as the same ACK); once the application
    // accepts, the next such ACK admits it.
    let mut e = server();
    let (id, _) = e.ep.listen(addr(SERVER), 1).unwrap();
    let (h1, c1) = incoming(e.inject(10, CLIENT, SERVER, SYN.seq(R)));
    let (h2, c2) = incoming(e.inject(10, "10.0.0.1:5556", SERVER, SYN.seq(R)));
    assert_eq!(e.ep.listener_queues(id), Some((2, 0)));
    let r = e.inject(11, CLIENT, SERVER, ACK.seq(R + 1).ack(c1.iss() + 1));
    assert!(matches!(r, Route::Connection(x) if x == h1), "{r:?}");
    assert_eq!(e.ep.listener_queues(id), Some((1, 1)));
    // The second handshake's ACK, and data after it: dropped, not answered.
    let ack2 = ACK.seq(R + 1).ack(c2.iss() + 1);
    let r = e.inject(12, "10.0.0.1:5556", SERVER, ack2.clone());
    assert!(
        matches!(r, Route::Drop(DropReason::AcceptQueueFull)),
        "{r:?}"
    );
    let r = e.inject(
        13,
        "10.0.0.1:5556",
        SERVER,
        PSH_ACK.seq(R + 1).ack(c2.iss() + 1).data(b"GET"),
    );
    assert!(
        matches!(r, Route::Drop(DropReason::AcceptQueueFull)),
        "{r:?}"
    );
    e.expect_nothing(13);
    assert_eq!(e.ep.listener_queues(id), Some((1, 1)));
    assert_eq!(e.ep.listen_stats().accept_queue_ack_drops, 2);
    // An ACK that does not acknowledge our SYN goes to the connection (which
    // answers it as SYN_RECEIVED does) and moves nothing.
    let r = e.inject(
        14,
        "10.0.0.1:5556",
        SERVER,
        ACK.seq(R + 1).ack(c2.iss() + 7),
    );
    assert!(matches!(r, Route::Connection(x) if x == h2), "{r:?}");
    // The application accepts the first: room for the second.
    e.ep.release_backlog(h1);
    assert_eq!(e.ep.listener_queues(id), Some((1, 0)));
    let r = e.inject(1_012, "10.0.0.1:5556", SERVER, ack2);
    assert!(matches!(r, Route::Connection(x) if x == h2), "{r:?}");
    assert_eq!(e.ep.listener_queues(id), Some((0, 1)));
    let s = e.ep.listen_stats();
    assert_eq!((s.half_open, s.unaccepted), (0, 1));
}

#[test]
fn listen_full_syn_queue_drops_syns_with_cookies_off() {
    let mut e = TestEndpoint::new(
        utcp_proto::EndpointConfig {
            secret: [7; 16],
            syn_queue: 2,
            syn_cookies: false,
            ..utcp_proto::EndpointConfig::default()
        },
        &["10.0.0.2"],
    );
    let (id, _) = e.ep.listen(addr(SERVER), 16).unwrap();
    let (h1, _) = incoming(e.inject(10, "10.0.0.1:5000", SERVER, SYN.seq(R)));
    let _ = incoming(e.inject(10, "10.0.0.1:5001", SERVER, SYN.seq(R)));
    let r = e.inject(10, "10.0.0.1:5002", SERVER, SYN.seq(R));
    assert!(matches!(r, Route::Drop(DropReason::SynQueueFull)), "{r:?}");
    e.expect_nothing(10);
    assert_eq!(e.ep.listener_queues(id), Some((2, 0)));
    let s = e.ep.listen_stats();
    assert_eq!(
        (s.syn_queue_overflows, s.syn_queue_drops, s.cookies_sent),
        (1, 1, 0)
    );
    // A half-open connection that dies leaves the SYN queue.
    e.ep.remove(h1);
    let _ = incoming(e.inject(20, "10.0.0.1:5002", SERVER, SYN.seq(R)));
}

#[test]
fn listen_connection_limit_drops_syns_and_refuses_connects() {
    let mut e = TestEndpoint::new(
        utcp_proto::EndpointConfig {
            secret: [7; 16],
            max_connections: 1,
            ..utcp_proto::EndpointConfig::default()
        },
        &["10.0.0.2"],
    );
    e.ep.listen(addr(SERVER), 16).unwrap();
    let (h1, _) = incoming(e.inject(10, "10.0.0.1:5000", SERVER, SYN.seq(R)));
    let r = e.inject(10, "10.0.0.1:5001", SERVER, SYN.seq(R));
    assert!(
        matches!(r, Route::Drop(DropReason::ConnectionLimit)),
        "{r:?}"
    );
    e.expect_nothing(10);
    let now = e.now();
    let err = e.ep.connect(now, addr("10.0.0.9:80"), None).unwrap_err();
    assert_eq!(err, utcp_proto::Error::AddrNotAvailable);
    let s = e.ep.listen_stats();
    assert_eq!(
        (s.connection_limit_syn_drops, s.connection_limit_connects),
        (1, 1)
    );
    e.ep.remove(h1);
    assert!(e.ep.connect(now, addr("10.0.0.9:80"), None).is_ok());
}

#[test]
fn listen_syn_fin_is_dropped() {
    // As Linux's LISTEN processing: a SYN with FIN is discarded, no
    // connection, no reply.
    let mut e = server();
    e.ep.listen(addr(SERVER), 4).unwrap();
    let r = e.inject(
        10,
        CLIENT,
        SERVER,
        SYN.with(utcp_proto::wire::TcpFlags::FIN).seq(R),
    );
    assert!(matches!(r, Route::Drop(DropReason::SynFin)), "{r:?}");
    e.expect_nothing(10);
    assert_eq!(e.ep.connection_count(), 0);
}

#[test]
fn listen_any_drops_syns_to_broadcast_and_multicast() {
    // RFC 1122 §4.2.3.10: an accept-any listener takes any destination, but
    // never a broadcast or multicast one; no RST either. (A multicast or
    // broadcast source never gets this far: the codec refuses it.)
    let mut e = server();
    e.ep.listen_any(4).unwrap();
    for (from, to) in [
        (CLIENT, "255.255.255.255:80"),
        (CLIENT, "224.0.0.1:80"),
        ("[fd00::1]:5555", "[ff02::1]:80"),
    ] {
        let r = e.inject(10, from, to, SYN.seq(R));
        assert!(
            matches!(r, Route::Drop(DropReason::NotUnicast)),
            "{to}: {r:?}"
        );
        let r = e.inject(10, from, to, ACK.seq(R).ack(L));
        assert!(
            matches!(r, Route::Drop(DropReason::NotUnicast)),
            "{to}: {r:?}"
        );
    }
    e.expect_nothing(10);
    assert_eq!(e.ep.connection_count(), 0);
    // A unicast destination is still accepted.
    let _ = incoming(e.inject(20, CLIENT, "10.9.9.9:443", SYN.seq(R)));
}

#[test]
fn listen_syn_with_malformed_options_is_answered() {
    // As Linux's tcp_parse_options: a window scale of length 4 is skipped and
    // an MSS of 0 counts as absent; the SYN still gets its SYN-ACK, and the
    // send MSS is the IPv4 default, 536.
    use utcp_proto::wire;
    let mut e = server();
    e.ep.listen(addr(SERVER), 4).unwrap();
    let (src, dst) = (addr(CLIENT).ip(), addr(SERVER).ip());
    let repr = wire::TcpRepr {
        src_port: 5555,
        dst_port: 80,
        seq: R,
        ack: utcp_proto::SeqNum::new(0),
        flags: wire::TcpFlags::SYN,
        window: 65_535,
        urgent: 0,
        options: Default::default(),
    };
    let mut buf = bytes::BytesMut::new();
    wire::emit_ip_tcp(&mut buf, src, dst, 64, &repr, &[]);
    // Replace the header with one carrying options: MSS 0, then WS length 4.
    let mut packet = buf.to_vec();
    let opts = [2u8, 4, 0, 0, 3, 4, 7, 0];
    packet.extend_from_slice(&opts);
    let total = packet.len() as u16;
    packet[2..4].copy_from_slice(&total.to_be_bytes());
    packet[20 + 12] = (((20 + opts.len()) / 4) << 4) as u8;
    // Checksums over the new bytes.
    packet[10..12].copy_from_slice(&[0, 0]);
    let ip_sum = wire::checksum::checksum(&packet[..20]);
    packet[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    packet[20 + 16..20 + 18].copy_from_slice(&[0, 0]);
    let mut c = wire::checksum::Checksum::pseudo_header(src, dst, 6, (packet.len() - 20) as u32);
    c.add_bytes(&packet[20..]);
    let tcp_sum = c.finish();
    packet[20 + 16..20 + 18].copy_from_slice(&tcp_sum.to_be_bytes());
    let parsed = wire::parse_ip_tcp(&packet, true).expect("parses leniently");
    assert_eq!(parsed.tcp.options.mss, None);
    assert_eq!(parsed.tcp.options.window_scale, None);
    let route = e.ep.handle(e.now(), src, dst, &parsed.tcp, 0);
    let (_h, mut conn) = incoming(route);
    let syn_ack = first_segment(&mut conn, e.now());
    assert_seg(&syn_ack, &SYN_ACK.seq(conn.iss()).ack(R + 1));
    assert_eq!(conn.stats().mss, 536);
}

// SYN cookies (RFC 4987 §3.6, Linux's encoding) while the SYN queue is full.

fn cookie_server(syn_queue: usize, backlog: usize) -> (TestEndpoint, utcp_proto::ListenerId) {
    let mut e = TestEndpoint::new(
        utcp_proto::EndpointConfig {
            secret: [7; 16],
            syn_queue,
            ..utcp_proto::EndpointConfig::default()
        },
        &["10.0.0.2"],
    );
    let (id, _) = e.ep.listen(addr(SERVER), backlog).unwrap();
    (e, id)
}

/// The SYN every cookie test sends: MSS 1460, WS 7, SACK-permitted, TS.
fn full_syn() -> Seg {
    SYN.seq(R).mss(1460).ws(7).sack_perm(true).ts(100, 0)
}

/// The one reply sent, from the server.
#[track_caller]
fn one_reply(e: &mut TestEndpoint) -> Seg {
    let mut sent = e.take_sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    sent.pop().unwrap().2
}

#[test]
fn listen_full_syn_queue_answers_with_a_cookie_syn_ack() {
    let (mut e, id) = cookie_server(1, 16);
    // The one half-open connection the queue holds, for comparison.
    let (_h, mut c1) = incoming(e.inject(10, "10.0.0.1:5000", SERVER, full_syn()));
    let regular = first_segment(&mut c1, e.now());
    let r = e.inject(10, CLIENT, SERVER, full_syn());
    assert!(matches!(r, Route::SynCookie), "{r:?}");
    let cookie = one_reply(&mut e);
    // The options a connection's SYN-ACK carries, the window too.
    assert_seg(
        &cookie,
        &SYN_ACK
            .seq(cookie.seq)
            .ack(R + 1)
            .mss(1460)
            .ws(regular.ws.unwrap().unwrap())
            .sack_perm(true)
            .win(regular.window.unwrap()),
    );
    let (tsval, tsecr) = cookie.ts.unwrap().unwrap();
    assert_eq!(tsecr, 100);
    // The peer's shift and SACK-permitted ride in the low TSval bits (the
    // offset removed), as Linux's cookie_init_timestamp: 7 | 1 << 4.
    let offset = e.ep.ts_offset(&utcp_proto::FourTuple {
        local: addr(SERVER),
        remote: addr(CLIENT),
    });
    assert_eq!(tsval.wrapping_sub(offset) & 63, 7 | 16);
    // No state: the SYN queue stays at its limit.
    assert_eq!(e.ep.listener_queues(id), Some((1, 0)));
    assert_eq!(e.ep.connection_count(), 1);
    let s = e.ep.listen_stats();
    assert_eq!(
        (s.syn_queue_overflows, s.cookies_sent, s.syn_queue_drops),
        (1, 1, 0)
    );
}

#[test]
fn listen_cookie_ack_becomes_an_established_connection_with_ws_sack_and_ts() {
    let (mut e, id) = cookie_server(1, 16);
    let _ = incoming(e.inject(10, "10.0.0.1:5000", SERVER, full_syn()));
    e.inject(10, CLIENT, SERVER, full_syn());
    let cookie = one_reply(&mut e);
    let (tsval, _) = cookie.ts.unwrap().unwrap();
    let ack = ACK.seq(R + 1).ack(cookie.seq + 1).win(1000).ts(101, tsval);
    let (h, mut conn) = incoming(e.inject(14, CLIENT, SERVER, ack));
    e.expect_nothing(14);
    assert_eq!(conn.state(), State::Established);
    assert_eq!(conn.iss(), cookie.seq);
    let st = conn.stats();
    assert_eq!(
        (st.snd_wscale, st.sack, st.timestamps),
        (Some(7), true, true)
    );
    assert_eq!(st.rcv_wscale, cookie.ws.unwrap());
    // The MSS less the timestamps option; the ACK's window, scaled by 7.
    assert_eq!(st.mss, 1448);
    assert_eq!(st.send_window, 1000 << 7);
    // In the accept queue; the 4-tuple now routes to it.
    assert_eq!(e.ep.listener_queues(id), Some((1, 1)));
    let r = e.inject(
        15,
        CLIENT,
        SERVER,
        ACK.seq(R + 1).ack(cookie.seq + 1).ts(102, tsval),
    );
    assert!(matches!(r, Route::Connection(x) if x == h), "{r:?}");
    // Its first data segment echoes the peer's TSval and carries its own,
    // which never runs behind the cookie's.
    conn.send(b"hello").unwrap();
    let seg = first_segment(&mut conn, Instant::from_millis(20));
    assert_seg(&seg, &PSH_ACK.seq(cookie.seq + 1).ack(R + 1).data(b"hello"));
    let (our, echo) = seg.ts.unwrap().unwrap();
    assert_eq!(echo, 101);
    assert!(our.wrapping_sub(tsval) as i32 >= 0);
    let s = e.ep.listen_stats();
    assert_eq!(
        (s.cookies_validated, s.cookies_refused, s.unaccepted),
        (1, 0, 1)
    );
}

#[test]
fn listen_cookie_without_timestamps_keeps_the_mss_only() {
    // No timestamps: no bits for WS and SACK, so the SYN-ACK offers
    // neither (as Linux); the MSS comes back from the table, rounded down.
    let (mut e, _) = cookie_server(1, 16);
    let _ = incoming(e.inject(10, "10.0.0.1:5000", SERVER, SYN.seq(R)));
    e.inject(
        10,
        CLIENT,
        SERVER,
        SYN.seq(R).mss(1400).ws(7).sack_perm(true),
    );
    let cookie = one_reply(&mut e);
    assert_seg(
        &cookie,
        &SYN_ACK
            .seq(cookie.seq)
            .ack(R + 1)
            .mss(1460)
            .no_ws()
            .no_ts()
            .sack_perm(false),
    );
    let (_h, conn) = incoming(e.inject(14, CLIENT, SERVER, ACK.seq(R + 1).ack(cookie.seq + 1)));
    assert_eq!(conn.state(), State::Established);
    let st = conn.stats();
    assert_eq!(
        (st.mss, st.snd_wscale, st.sack, st.timestamps),
        (1300, None, false, false)
    );
}

#[test]
fn listen_cookie_ack_with_data_establishes_and_leaves_the_data_to_the_connection() {
    // The handshake's ACK lost, the first data segment is the cookie ACK:
    // the endpoint takes its acknowledgment; the runtime then hands the
    // whole segment to the new connection, which takes the data.
    let (mut e, _) = cookie_server(1, 16);
    let _ = incoming(e.inject(10, "10.0.0.1:5000", SERVER, SYN.seq(R)));
    e.inject(10, CLIENT, SERVER, SYN.seq(R));
    let cookie = one_reply(&mut e);
    let data = PSH_ACK.seq(R + 1).ack(cookie.seq + 1).data(b"GET /");
    let (_h, mut conn) = incoming(e.inject(14, CLIENT, SERVER, data.clone()));
    assert_eq!(conn.state(), State::Established);
    assert_eq!(conn.readable(), 0);
    let repr = data.to_repr(5555, 80);
    conn.handle_segment(
        Instant::from_millis(14),
        utcp_proto::Segment {
            repr,
            payload: data.payload.clone(),
        },
    );
    assert_eq!(conn.readable(), 5);
}

#[test]
fn listen_random_acks_while_cookies_are_active_create_no_connection() {
    // 100,000 ACKs with random sequence and acknowledgment numbers (fixed
    // seed) while cookies are active: every one refused and answered with
    // its RST, none a connection.
    let (mut e, _) = cookie_server(1, 16);
    let _ = incoming(e.inject(10, "10.0.0.1:5000", SERVER, SYN.seq(R)));
    e.inject(10, CLIENT, SERVER, SYN.seq(R));
    e.take_sent();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    };
    let mut resets = 0;
    for i in 0..100_000u32 {
        let port = 10_000 + (i % 50_000) as u16;
        let (seq, ack) = (next(), next());
        let r = e.inject(
            20,
            &format!("10.0.0.1:{port}"),
            SERVER,
            ACK.seq(utcp_proto::SeqNum::new(seq))
                .ack(utcp_proto::SeqNum::new(ack)),
        );
        assert!(matches!(r, Route::Reset), "ACK {i}: {r:?}");
        resets += e.take_sent().len();
    }
    assert_eq!(resets, 100_000);
    assert_eq!(e.ep.connection_count(), 1);
    let s = e.ep.listen_stats();
    assert_eq!((s.cookies_refused, s.cookies_validated), (100_000, 0));
}

#[test]
fn listen_cookie_older_than_two_periods_is_refused() {
    let (mut e, _) = cookie_server(1, 16);
    let _ = incoming(e.inject(10, "10.0.0.1:5000", SERVER, SYN.seq(R)));
    // Made in the first 60 s period.
    e.inject(10_000, CLIENT, SERVER, SYN.seq(R));
    let old = one_reply(&mut e);
    // Still valid in the next period (and a fresh cookie keeps cookies
    // active).
    e.inject(110_000, "10.0.0.1:6000", SERVER, SYN.seq(R));
    e.take_sent();
    // Two periods later: refused, answered with RST.
    let r = e.inject(120_000, CLIENT, SERVER, ACK.seq(R + 1).ack(old.seq + 1));
    assert!(matches!(r, Route::Reset), "{r:?}");
    e.expect_sent(120_000, SERVER, CLIENT, [RST.seq(old.seq + 1)]);
    assert_eq!(e.ep.listen_stats().cookies_refused, 1);
    // One period later it would still have been good.
    let (mut e2, _) = cookie_server(1, 16);
    let _ = incoming(e2.inject(10, "10.0.0.1:5000", SERVER, SYN.seq(R)));
    e2.inject(10_000, CLIENT, SERVER, SYN.seq(R));
    let c = one_reply(&mut e2);
    let (_h, conn) = incoming(e2.inject(119_999, CLIENT, SERVER, ACK.seq(R + 1).ack(c.seq + 1)));
    assert_eq!(conn.state(), State::Established);
}

#[test]
fn listen_cookie_ack_on_full_accept_queue_is_dropped() {
    // As Linux: no room in the accept queue, the cookie ACK is dropped
    // without reply; the peer's retransmission finds room later.
    let (mut e, id) = cookie_server(1, 1);
    let (h1, c1) = incoming(e.inject(10, "10.0.0.1:5000", SERVER, SYN.seq(R)));
    e.inject(11, CLIENT, SERVER, SYN.seq(R));
    let cookie = one_reply(&mut e);
    e.inject(
        12,
        "10.0.0.1:5000",
        SERVER,
        ACK.seq(R + 1).ack(c1.iss() + 1),
    );
    assert_eq!(e.ep.listener_queues(id), Some((0, 1)));
    let ack = ACK.seq(R + 1).ack(cookie.seq + 1);
    let r = e.inject(14, CLIENT, SERVER, ack.clone());
    assert!(
        matches!(r, Route::Drop(DropReason::AcceptQueueFull)),
        "{r:?}"
    );
    e.expect_nothing(14);
    assert_eq!(e.ep.listen_stats().accept_queue_ack_drops, 1);
    e.ep.release_backlog(h1);
    let (_h2, c2) = incoming(e.inject(300, CLIENT, SERVER, ack));
    assert_eq!(c2.state(), State::Established);
    assert_eq!(e.ep.listener_queues(id), Some((0, 1)));
}

#[test]
fn listen_cookies_answer_only_while_the_syn_queue_is_full() {
    // With room in the SYN queue an ACK is never taken for a cookie: it gets
    // its RST, and nothing counts as refused.
    let (mut e, _) = cookie_server(4, 16);
    let r = e.inject(10, CLIENT, SERVER, ACK.seq(R + 1).ack(L + 1));
    assert!(matches!(r, Route::Reset), "{r:?}");
    let _ = incoming(e.inject(10, CLIENT, SERVER, SYN.seq(R)));
    assert_eq!(e.ep.listen_stats().cookies_refused, 0);
}

#[test]
fn listen_cookie_offers_the_listeners_receive_buffer() {
    // A listener with a fixed receive buffer (SO_RCVBUF): its cookie
    // SYN-ACKs offer that window and shift, as its connections' SYN-ACKs.
    let (mut e, id) = cookie_server(1, 16);
    e.ep.set_listener_recv_buffer(id, Some(1 << 20)).unwrap();
    assert!(e.ep.set_listener_recv_buffer(id, Some(0)).is_err());
    let _ = incoming(e.inject(10, "10.0.0.1:5000", SERVER, full_syn()));
    e.inject(10, CLIENT, SERVER, full_syn());
    let cookie = one_reply(&mut e);
    assert_seg(
        &cookie,
        &SYN_ACK.seq(cookie.seq).ack(R + 1).ws(5).win(65_535),
    );
    let (tsval, _) = cookie.ts.unwrap().unwrap();
    let ack = ACK.seq(R + 1).ack(cookie.seq + 1).ts(101, tsval);
    let (_h, conn) = incoming(e.inject(14, CLIENT, SERVER, ack));
    assert_eq!(conn.recv_buffer_size(), 1 << 20);
    assert_eq!(conn.stats().rcv_wscale, Some(5));
}

#[test]
fn listen_stack_wide_half_open_limit_answers_with_cookies() {
    // EndpointConfig::max_half_open bounds every listener's SYN queue
    // together: at 2 half-open connections, a SYN to another listener with
    // room gets a cookie.
    let mut e = TestEndpoint::new(
        utcp_proto::EndpointConfig {
            secret: [7; 16],
            max_half_open: 2,
            ..utcp_proto::EndpointConfig::default()
        },
        &["10.0.0.2"],
    );
    e.ep.listen(addr(SERVER), 16).unwrap();
    let (other, _) = e.ep.listen(addr("10.0.0.2:81"), 16).unwrap();
    let _ = incoming(e.inject(10, "10.0.0.1:5000", SERVER, SYN.seq(R)));
    let _ = incoming(e.inject(10, "10.0.0.1:5001", SERVER, SYN.seq(R)));
    let r = e.inject(10, CLIENT, "10.0.0.2:81", SYN.seq(R));
    assert!(matches!(r, Route::SynCookie), "{r:?}");
    assert_eq!(e.ep.listener_queues(other), Some((0, 0)));
    assert_eq!(e.ep.listen_stats().syn_queue_overflows, 1);
}

// Accept-any with a verdict (`crate::pending`): a listener that decides per
// SYN answers nothing until the application chose.

/// Where the client's SYN is addressed: any destination, for accept-any.
const ORIG_DST: &str = "203.0.113.7:443";

fn deciding_server(syn_queue: usize) -> (TestEndpoint, utcp_proto::ListenerId) {
    let mut e = TestEndpoint::new(
        utcp_proto::EndpointConfig {
            secret: [7; 16],
            syn_queue,
            ..utcp_proto::EndpointConfig::default()
        },
        &["10.0.0.2"],
    );
    let id = e.ep.listen_any_deciding(16).unwrap();
    (e, id)
}

/// Unwraps a [`Route::Ask`].
#[track_caller]
fn asked(route: Route) -> (utcp_proto::PendingId, utcp_proto::IncomingSyn) {
    match route {
        Route::Ask { id, syn, .. } => (id, syn),
        other => panic!("expected Route::Ask, got {other:?}"),
    }
}

#[test]
fn listen_deciding_asks_before_answering_and_accepts_a_deferred_syn() {
    use utcp_proto::SynVerdict;
    let (mut e, id) = deciding_server(8);
    let r = e.inject(10, CLIENT, ORIG_DST, full_syn().mss(1400));
    let listener = match &r {
        Route::Ask { listener, .. } => *listener,
        other => panic!("{other:?}"),
    };
    assert_eq!(listener, id);
    let (pid, syn) = asked(r);
    assert_eq!(
        syn,
        utcp_proto::IncomingSyn {
            local: addr(ORIG_DST),
            remote: addr(CLIENT),
            mss: Some(1400),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: true,
        }
    );
    // Nothing is answered yet, and the SYN holds a SYN-queue slot.
    e.expect_nothing(10);
    assert_eq!(e.ep.listener_queues(id), Some((1, 0)));
    assert_eq!(e.ep.connection_count(), 0);
    let r = e.decide(pid, SynVerdict::Defer);
    assert!(matches!(r, Some(Route::Deferred)), "{r:?}");
    // The client's retransmissions are absorbed, not asked again.
    for at in [1_010, 3_010] {
        let r = e.inject(at, CLIENT, ORIG_DST, full_syn().mss(1400));
        assert!(matches!(r, Route::Drop(DropReason::Pending)), "{r:?}");
        e.expect_nothing(at);
    }
    // The upstream answered after 3.5 s: the connection is created and its
    // SYN-ACK answers the first SYN, from the original destination.
    e.advance(3_510);
    let (h, mut conn) = incoming(e.decide(pid, SynVerdict::Accept).unwrap());
    assert_eq!(conn.state(), State::SynReceived);
    assert_eq!(
        (conn.local_addr(), conn.remote_addr()),
        (addr(ORIG_DST), addr(CLIENT))
    );
    let syn_ack = first_segment(&mut conn, e.now());
    assert_seg(&syn_ack, &SYN_ACK.seq(conn.iss()).ack(R + 1).mss(1460));
    // The slot passed to the connection; a second verdict finds nothing.
    assert_eq!(e.ep.listener_queues(id), Some((1, 0)));
    assert!(e.decide(pid, SynVerdict::Reset).is_none());
    e.expect_nothing(3_510);
    assert_eq!(e.ep.tuple(h).unwrap().local, addr(ORIG_DST));
    let s = e.ep.listen_stats();
    assert_eq!(
        (s.syns_asked, s.syns_deferred, s.pending_syn_retransmits),
        (1, 1, 2)
    );
    assert_eq!(e.ep.pending_syns(), 0);
}

#[test]
fn listen_deciding_reset_answers_with_rst_and_creates_nothing() {
    use utcp_proto::SynVerdict;
    let (mut e, id) = deciding_server(8);
    let (pid, _) = asked(e.inject(10, CLIENT, ORIG_DST, SYN.seq(R)));
    let r = e.decide(pid, SynVerdict::Reset);
    assert!(matches!(r, Some(Route::Reset)), "{r:?}");
    // RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    e.expect_sent(
        10,
        ORIG_DST,
        CLIENT,
        [RST_ACK.seq(utcp_proto::SeqNum::new(0)).ack(R + 1)],
    );
    assert_eq!(e.ep.connection_count(), 0);
    assert_eq!(e.ep.listener_queues(id), Some((0, 0)));
    assert_eq!(e.ep.listen_stats().verdict_resets, 1);
    // A new SYN of the 4-tuple is asked again.
    let _ = asked(e.inject(20, CLIENT, ORIG_DST, SYN.seq(R)));
}

#[test]
fn listen_deciding_drop_sends_nothing_and_the_retransmission_is_asked_again() {
    use utcp_proto::SynVerdict;
    let (mut e, id) = deciding_server(8);
    let (pid, _) = asked(e.inject(10, CLIENT, ORIG_DST, SYN.seq(R)));
    let r = e.decide(pid, SynVerdict::Drop);
    assert!(matches!(r, Some(Route::Drop(DropReason::Refused))), "{r:?}");
    e.expect_nothing(10);
    assert_eq!(e.ep.connection_count(), 0);
    assert_eq!(e.ep.listener_queues(id), Some((0, 0)));
    let (pid2, _) = asked(e.inject(1_010, CLIENT, ORIG_DST, SYN.seq(R)));
    assert_ne!(pid, pid2);
    // The first SYN's late verdict does not reach the second.
    assert!(e.decide(pid, SynVerdict::Accept).is_none());
    assert_eq!(e.ep.pending_syns(), 1);
    assert_eq!(e.ep.listen_stats().verdict_drops, 1);
}

#[test]
fn listen_deferred_syn_is_dropped_when_its_synack_budget_ends() {
    use utcp_proto::SynVerdict;
    let (mut e, id) = deciding_server(8);
    let (pid, _) = asked(e.inject(10, CLIENT, ORIG_DST, SYN.seq(R)));
    assert!(e.ep.poll_timeout().is_none());
    e.decide(pid, SynVerdict::Defer).unwrap();
    // 1 + 2 + 4 + 8 + 16 + 32 s: the SYN-ACK and its 5 retransmissions.
    assert_eq!(e.ep.poll_timeout(), Some(Instant::from_millis(63_010)));
    e.advance(63_009);
    e.ep.handle_timeout(e.now());
    assert_eq!(e.ep.pending_syns(), 1);
    e.advance(63_010);
    e.ep.handle_timeout(e.now());
    assert_eq!(e.ep.pending_syns(), 0);
    assert_eq!(e.ep.listener_queues(id), Some((0, 0)));
    assert_eq!(e.ep.listen_stats().deferred_expired, 1);
    assert_eq!(e.ep.listen_stats().half_open, 0);
    assert!(e.ep.poll_timeout().is_none());
    e.expect_nothing(63_010);
    assert!(e.decide(pid, SynVerdict::Accept).is_none());
}

#[test]
fn listen_deciding_with_a_full_syn_queue_cookies_only_accepted_syns() {
    use utcp_proto::SynVerdict;
    let (mut e, id) = deciding_server(1);
    // The one slot: a deferred SYN.
    let (held, _) = asked(e.inject(10, "10.0.0.1:5000", ORIG_DST, full_syn()));
    e.decide(held, SynVerdict::Defer).unwrap();
    assert_eq!(e.ep.listener_queues(id), Some((1, 0)));
    // With the queue full a SYN is still asked; accepted, it gets a cookie.
    let (p, _) = asked(e.inject(20, "10.0.0.1:5001", ORIG_DST, full_syn()));
    let r = e.decide(p, SynVerdict::Accept);
    assert!(matches!(r, Some(Route::SynCookie)), "{r:?}");
    let cookie = one_reply(&mut e);
    assert_seg(&cookie, &SYN_ACK.seq(cookie.seq).ack(R + 1).mss(1460));
    // Deferred, it is dropped: no slot to hold it.
    let (p, _) = asked(e.inject(30, "10.0.0.1:5002", ORIG_DST, full_syn()));
    let r = e.decide(p, SynVerdict::Defer);
    assert!(
        matches!(r, Some(Route::Drop(DropReason::SynQueueFull))),
        "{r:?}"
    );
    e.expect_nothing(30);
    let s = e.ep.listen_stats();
    assert_eq!(
        (
            s.cookies_sent,
            s.syn_queue_drops,
            s.syns_deferred,
            s.half_open
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(e.ep.pending_syns(), 1);
}

#[test]
fn listen_deciding_listener_that_stops_forgets_its_pending_syns() {
    use utcp_proto::SynVerdict;
    let (mut e, id) = deciding_server(8);
    let (a, _) = asked(e.inject(10, "10.0.0.1:5000", ORIG_DST, SYN.seq(R)));
    let (b, _) = asked(e.inject(10, "10.0.0.1:5001", ORIG_DST, SYN.seq(R)));
    e.decide(a, SynVerdict::Defer).unwrap();
    assert_eq!(e.ep.listen_stats().half_open, 2);
    e.ep.unlisten(id);
    assert_eq!(e.ep.pending_syns(), 0);
    assert_eq!(e.ep.listen_stats().half_open, 0);
    assert!(e.ep.poll_timeout().is_none());
    assert!(e.decide(a, SynVerdict::Accept).is_none());
    assert!(e.decide(b, SynVerdict::Accept).is_none());
    // No listener now: a SYN gets the RST of a closed port.
    let r = e.inject(20, "10.0.0.1:5002", "10.0.0.2:443", SYN.seq(R));
    assert!(matches!(r, Route::Reset), "{r:?}");
}

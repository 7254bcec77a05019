//! SYN_RECEIVED: RFC 9293 §3.10.7.4 (and §3.10.7.2 for how we got here), with
//! RFC 5961 for SYN and RST.

mod common;

use common::*;
use utcp_proto::{Duration, Error, Event, SeqNum, State};

#[test]
fn syn_received_ack_establishes() {
    let mut t = TestConn::syn_received();
    t.inject(100, ACK.seq(R + 1).ack(L + 1));
    t.expect_nothing(100);
    t.expect_state(State::Established);
    t.expect_event(Event::StateChanged {
        from: State::SynReceived,
        to: State::Established,
    });
    t.expect_event(Event::Connected);
    t.expect_no_deadline();
    assert_eq!(t.stats().srtt, Some(Duration::from_millis(100)));
}

#[test]
fn syn_received_ack_with_data_establishes_and_delivers() {
    let mut t = TestConn::syn_received();
    t.inject(100, PSH_ACK.seq(R + 1).ack(L + 1).data(b"GET /"));
    t.expect_sent(100, [ACK.seq(L + 1).ack(R + 6)]);
    t.expect_state(State::Established);
    assert_eq!(t.recv_all(), b"GET /");
}

#[test]
fn syn_received_ack_with_fin_enters_close_wait() {
    let mut t = TestConn::syn_received();
    t.inject(100, FIN_ACK.seq(R + 1).ack(L + 1));
    t.expect_sent(100, [ACK.seq(L + 1).ack(R + 2)]);
    t.expect_state(State::CloseWait);
    assert!(t.conn.peer_closed());
}

#[test]
fn syn_received_ack_above_snd_nxt_sends_rst() {
    // Fifth step: an unacceptable ACK gets <SEQ=SEG.ACK><CTL=RST>; we stay.
    let mut t = TestConn::syn_received();
    t.inject(100, ACK.seq(R + 1).ack(L + 10));
    t.expect_sent(100, [RST.seq(L + 10)]);
    t.expect_state(State::SynReceived);
    t.inject(150, ACK.seq(R + 1).ack(L + 1));
    t.expect_state(State::Established);
}

#[test]
fn syn_received_ack_of_iss_sends_rst() {
    let mut t = TestConn::syn_received();
    t.inject(100, ACK.seq(R + 1).ack(L));
    t.expect_sent(100, [RST.seq(L)]);
    t.expect_state(State::SynReceived);
}

#[test]
fn syn_received_segment_without_ack_is_dropped() {
    let mut t = TestConn::syn_received();
    t.inject(100, NO_FLAGS.seq(R + 1).data(b"x"));
    t.expect_nothing(100);
    t.expect_state(State::SynReceived);
    assert_eq!(t.conn.readable(), 0);
}

#[test]
fn syn_received_retransmitted_syn_resends_syn_ack() {
    let mut t = TestConn::syn_received();
    t.inject(300, SYN.seq(R).mss(1460));
    t.expect_sent(300, [SYN_ACK.seq(L).ack(R + 1).mss(1460)]);
    t.expect_state(State::SynReceived);
}

#[test]
fn syn_received_syn_with_other_seq_gets_challenge_ack() {
    // RFC 5961 §4: a SYN that is not a retransmission gets a challenge ACK.
    let mut t = TestConn::syn_received();
    t.inject(100, SYN.seq(R + 500));
    t.expect_sent(100, [ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::SynReceived);
}

#[test]
fn syn_received_rst_exact_closes_quietly() {
    // Passive open: back to LISTEN, i.e. this embryonic connection goes away.
    let mut t = TestConn::syn_received();
    t.inject(100, RST.seq(R + 1));
    t.expect_nothing(100);
    t.expect_state(State::Closed);
    t.expect_event(Event::Closed);
    t.expect_no_deadline();
    assert!(t.conn.is_closed());
}

#[test]
fn syn_received_rst_in_window_gets_challenge_ack() {
    // RFC 5961 §3.2: in the window but not RCV.NXT.
    let mut t = TestConn::syn_received();
    t.inject(100, RST.seq(R + 100));
    t.expect_sent(100, [ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::SynReceived);
}

#[test]
fn syn_received_rst_out_of_window_is_ignored() {
    let mut t = TestConn::syn_received();
    t.inject(100, RST.seq(R + 200_000));
    t.expect_nothing(100);
    t.expect_state(State::SynReceived);
}

#[test]
fn syn_received_data_outside_window_gets_ack() {
    let mut t = TestConn::syn_received();
    t.inject(100, PSH_ACK.seq(R + 100_000).ack(L + 1).data(b"far"));
    t.expect_sent(100, [ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::SynReceived);
}

#[test]
fn syn_received_timeout_retransmits_syn_ack_with_backoff_then_times_out() {
    // synack_retries = 5 (Linux tcp_synack_retries): 1 + 2 + 4 + 8 + 16 s of
    // retransmissions, then 32 s more.
    let mut t = TestConn::syn_received();
    let mut at = 0;
    let mut rto = 1_000;
    for _ in 0..5 {
        at += rto;
        t.expect_deadline(at);
        t.expect_sent(at, [SYN_ACK.seq(L).ack(R + 1).mss(1460)]);
        rto *= 2;
    }
    t.expect_deadline(63_000);
    t.expect_sent(63_000, []); // timed out: no RST (RFC 9293 §3.10.8, as Linux)
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::TimedOut));
    t.expect_no_deadline();
}

#[test]
fn syn_received_ack_after_retransmitted_syn_ack_starts_with_3s_rto() {
    // RFC 6298 §5.7.
    let mut t = TestConn::syn_received();
    t.expect_sent(1_000, [SYN_ACK.seq(L).ack(R + 1)]);
    t.inject(1_100, ACK.seq(R + 1).ack(L + 1));
    t.expect_state(State::Established);
    assert_eq!(t.stats().srtt, None);
    t.send(1_200, b"x");
    t.expect_sent(1_200, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"x")]);
    t.expect_deadline(4_200);
}

#[test]
fn syn_received_close_sends_fin() {
    // RFC 9293 §3.10.4: CLOSE in SYN_RECEIVED with nothing queued forms a FIN,
    // sends it and enters FIN_WAIT_1 (Linux tcp_close_state).
    let mut t = TestConn::syn_received();
    t.shutdown(50);
    t.expect_sent(50, [FIN_ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::FinWait1);
    // The peer's ACK covers our SYN and the FIN.
    t.inject(100, ACK.seq(R + 1).ack(L + 2));
    t.expect_nothing(100);
    t.expect_state(State::FinWait2);
    t.expect_event(Event::Connected);
}

#[test]
fn syn_received_close_then_ack_of_syn_only_stays_in_fin_wait_1() {
    let mut t = TestConn::syn_received();
    t.shutdown(50);
    t.expect_sent(50, [FIN_ACK.seq(L + 1).ack(R + 1)]);
    // The ACK covers our SYN, not the FIN: still FIN_WAIT_1, the FIN's timer runs.
    t.inject(100, ACK.seq(R + 1).ack(L + 1));
    t.expect_nothing(100);
    t.expect_state(State::FinWait1);
    t.inject(150, ACK.seq(R + 1).ack(L + 2));
    t.expect_state(State::FinWait2);
}

#[test]
fn syn_received_close_with_syn_ack_lost_retransmits_both() {
    // The SYN-ACK and FIN are lost: the RTO re-sends the SYN-ACK (the SYN is
    // what is unacknowledged) and the FIN after it.
    let mut t = TestConn::syn_received();
    t.shutdown(50);
    t.expect_sent(50, [FIN_ACK.seq(L + 1).ack(R + 1)]);
    t.expect_deadline(1_000);
    t.expect_sent(
        1_000,
        [SYN_ACK.seq(L).ack(R + 1), FIN_ACK.seq(L + 1).ack(R + 1)],
    );
    t.expect_state(State::FinWait1);
    t.inject(1_100, ACK.seq(R + 1).ack(L + 2));
    t.expect_state(State::FinWait2);
}

#[test]
fn syn_received_shutdown_with_data_queued_sends_fin_once_established() {
    // RFC 9293 §3.10.4: with data queued, the FIN waits for ESTABLISHED and
    // goes after the data.
    let mut t = TestConn::syn_received();
    assert_eq!(t.send(40, b"hi"), 2);
    t.shutdown(50);
    t.expect_nothing(50);
    t.expect_state(State::SynReceived);
    t.inject(100, ACK.seq(R + 1).ack(L + 1));
    t.expect_sent(100, [FIN_PSH_ACK.seq(L + 1).ack(R + 1).data(b"hi")]);
    t.expect_state(State::FinWait1);
}

#[test]
fn syn_received_data_queued_goes_out_once_established() {
    let mut t = TestConn::syn_received();
    assert_eq!(t.send(50, b"banner"), 6);
    t.expect_nothing(50);
    t.inject(100, ACK.seq(R + 1).ack(L + 1));
    t.expect_sent(100, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"banner")]);
}

#[test]
fn syn_received_abort_sends_rst() {
    let mut t = TestConn::syn_received();
    t.abort(50);
    t.expect_sent(50, [RST_ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionAborted));
}

#[test]
fn syn_received_simultaneous_open_rst_is_refused() {
    // Reached from SYN_SENT, an RST means the peer refused.
    let mut t = TestConn::syn_sent();
    t.inject(100, SYN.seq(R));
    t.expect_sent(100, [SYN_ACK.seq(L).ack(R + 1)]);
    t.inject(150, RST.seq(R + 1));
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionRefused));
    t.expect_event(Event::Error(Error::ConnectionRefused));
}

#[test]
fn syn_received_simultaneous_open_syn_ack_with_bad_ack_sends_rst() {
    let mut t = TestConn::syn_sent();
    t.inject(100, SYN.seq(R));
    t.expect_sent(100, [SYN_ACK.seq(L).ack(R + 1)]);
    t.inject(150, SYN_ACK.seq(R).ack(L + 7));
    t.expect_sent(150, [RST.seq(L + 7)]);
    t.expect_state(State::SynReceived);
}

#[test]
fn syn_received_ipv6_handshake_completes() {
    let mut t = Opts {
        ipv6: true,
        ..Opts::default()
    }
    .syn_received();
    t.inject(100, ACK.seq(R + 1).ack(L + 1));
    t.expect_state(State::Established);
    t.send(200, b"v6");
    t.expect_sent(200, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"v6")]);
}

#[test]
fn syn_received_syn_ack_resent_for_a_repeated_syn_gives_no_rtt_sample() {
    // Karn: the SYN-ACK re-sent at 900 for the peer's repeated SYN cannot be
    // told from the first; the ACK at 950 must not yield a 950 ms sample.
    let mut t = TestConn::syn_received();
    t.inject(900, SYN.seq(R).mss(1460));
    t.expect_sent(900, [SYN_ACK.seq(L).ack(R + 1)]);
    t.inject(950, ACK.seq(R + 1).ack(L + 1));
    t.expect_state(State::Established);
    assert_eq!(t.stats().srtt, None);
    assert_eq!(t.stats().cwnd, 14_600);
}

#[test]
fn syn_received_repeated_syns_get_rate_limited_syn_acks() {
    // A flood of repeated SYNs: SYN-ACKs within the per-connection reply
    // budget (challenge_ack_per_sec, default 10), not one per SYN.
    let mut t = TestConn::syn_received();
    let mut sent = 0;
    for i in 0..50 {
        t.inject(100 + i, SYN.seq(R).mss(1460));
        sent += t.take_sent(100 + i).len();
    }
    assert_eq!(sent, 10);
    // The retransmission timer is not limited; the budget refills a second
    // after it was opened.
    t.expect_sent(1_000, [SYN_ACK.seq(L).ack(R + 1)]);
    t.inject(1_150, SYN.seq(R).mss(1460));
    t.expect_sent(1_150, [SYN_ACK.seq(L).ack(R + 1)]);
}

#[test]
fn syn_received_two_syn_ack_retransmissions_start_with_one_segment() {
    let mut t = TestConn::syn_received();
    t.expect_sent(1_000, [SYN_ACK.seq(L).ack(R + 1)]);
    t.expect_sent(3_000, [SYN_ACK.seq(L).ack(R + 1)]);
    t.inject(3_100, ACK.seq(R + 1).ack(L + 1));
    t.expect_state(State::Established);
    assert_eq!(t.stats().cwnd, 1460);
}

// ---- RFC 7323: the SYN-ACK answers the options the SYN offered ------------------

fn accept(syn: Seg) -> TestConn {
    let (local, remote): (std::net::SocketAddr, std::net::SocketAddr) = (
        "10.0.0.1:40000".parse().unwrap(),
        "10.0.0.2:80".parse().unwrap(),
    );
    let (repr, _) = through_wire(
        remote.ip(),
        local.ip(),
        &utcp_proto::wire::TcpRepr {
            src_port: remote.port(),
            dst_port: local.port(),
            seq: syn.seq,
            ack: SeqNum::new(0),
            flags: syn.flags,
            window: 65_535,
            urgent: 0,
            options: utcp_proto::wire::TcpOptions {
                mss: syn.mss,
                window_scale: syn.ws.flatten(),
                timestamps: syn.ts.flatten(),
                sack_permitted: syn.sack_perm.unwrap_or(false),
                ..Default::default()
            },
        },
        &[],
    );
    let mut conn = utcp_proto::Connection::accept(
        utcp_proto::Config::default(),
        local,
        remote,
        L,
        utcp_proto::Instant::ZERO,
        &repr,
    )
    .unwrap();
    conn.set_timestamp_offset(TS_OFFSET);
    TestConn::wrap(conn, Opts::default())
}

#[test]
fn syn_received_syn_ack_carries_ws_and_ts_when_the_syn_did() {
    // RFC 7323 §2.2: WS in a SYN-ACK only if the SYN had it; §3.2: TS with
    // TSecr = the SYN's TSval. Our shift fits the auto-tuning limit (6 MiB:
    // 7, RFC 7323 §2.3).
    let mut t = accept(SYN.seq(R).mss(1460).ws(2).ts(777, 0));
    t.expect_sent(
        0,
        [SYN_ACK
            .seq(L)
            .ack(R + 1)
            .mss(1460)
            .ws(7)
            .ts(TS_OFFSET, 777)
            .win(65_535)],
    );
    // The ACK completing the handshake: its window is scaled (by 2).
    t.inject(100, ACK.seq(R + 1).ack(L + 1).win(1_000).ts(800, TS_OFFSET));
    t.expect_state(State::Established);
    let s = t.stats();
    assert_eq!(
        (s.snd_wscale, s.rcv_wscale, s.timestamps),
        (Some(2), Some(7), true)
    );
    assert_eq!(s.send_window, 4_000);
    assert_eq!(s.srtt, Some(utcp_proto::Duration::from_millis(100)));
}

#[test]
fn syn_received_syn_ack_without_options_when_the_syn_had_none() {
    let mut t = accept(SYN.seq(R).mss(1460));
    t.expect_sent(0, [SYN_ACK.seq(L).ack(R + 1).mss(1460).no_ws().no_ts()]);
}

#[test]
fn syn_received_syn_ack_carries_sack_permitted_only_when_the_syn_did() {
    // RFC 2018 §2: SACK-permitted in a SYN-ACK only in answer to one.
    let mut syn = SYN.seq(R).mss(1460);
    syn.sack_perm = Some(true);
    let mut t = accept(syn);
    t.expect_sent(0, [SYN_ACK.seq(L).ack(R + 1).sack_perm(true)]);
    let mut t = accept(SYN.seq(R).mss(1460));
    t.expect_sent(0, [SYN_ACK.seq(L).ack(R + 1).sack_perm(false)]);
}

#[test]
fn syn_received_a_retransmitted_syn_refreshes_ts_recent_for_the_syn_ack() {
    // RFC 7323 §4.3 (as Linux's tcp_check_req): the SYN-ACK answering a
    // retransmitted SYN echoes that SYN's TSval. Echoing the first SYN's
    // would give the peer an RTT sample spanning all its SYN
    // retransmissions (a fuzz finding: a first SRTT of 31 s after five).
    let local: std::net::SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let remote: std::net::SocketAddr = "10.0.0.2:80".parse().unwrap();
    let syn = SYN.seq(R).win(PEER_WINDOW).mss(1460).ts(100, 0);
    let (repr, _) = through_wire(
        remote.ip(),
        local.ip(),
        &syn.to_repr(remote.port(), local.port()),
        &[],
    );
    let conn = utcp_proto::Connection::accept(
        utcp_proto::Config::default(),
        local,
        remote,
        L,
        utcp_proto::Instant::ZERO,
        &repr,
    )
    .expect("accept");
    let mut t = TestConn::wrap(conn, Opts::default());
    let first = t.take_sent(0);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].ts.flatten().map(|(_, e)| e), Some(100));
    // Our retransmission timer re-sends the SYN-ACK at 1 s and 3 s (still
    // echoing 100); then the peer's SYN again, just after 3 s.
    t.advance(3_000);
    assert_eq!(t.take_sent(3_000).len(), 2);
    t.inject(3_010, SYN.seq(R).win(PEER_WINDOW).mss(1460).ts(3_100, 0));
    let again = t.take_sent(3_010);
    assert_eq!(again.len(), 1, "the SYN-ACK answers the SYN: {again:?}");
    assert_eq!(
        again[0].ts.flatten().map(|(_, e)| e),
        Some(3_100),
        "{again:?}"
    );
}

//! SYN_SENT: RFC 9293 §3.10.7.3, with RFC 6298 for the SYN's retransmission.

mod common;

use common::*;
use utcp_proto::{Config, Error, Event, SeqNum, State};

#[test]
fn syn_sent_connect_sends_syn_with_mss_and_window() {
    // The fixture checked <SEQ=L><CTL=SYN> with MSS 1460; look at the window too.
    let (local, remote) = (
        "10.0.0.1:40000".parse().unwrap(),
        "10.0.0.2:80".parse().unwrap(),
    );
    let conn = utcp_proto::Connection::connect(
        Config::default(),
        local,
        remote,
        L,
        utcp_proto::Instant::ZERO,
    )
    .expect("connect");
    let mut t = TestConn::wrap(conn, Opts::default());
    t.expect_sent(0, [SYN.seq(L).mss(1460).win(65_535)]);
    t.expect_state(State::SynSent);
    t.expect_deadline(1_000);
}

#[test]
fn syn_sent_syn_ack_establishes() {
    let mut t = TestConn::syn_sent();
    t.inject(100, SYN_ACK.seq(R).ack(L + 1).mss(1460));
    t.expect_sent(100, [ACK.seq(L + 1).ack(R + 1).win(65_535)]);
    t.expect_state(State::Established);
    t.expect_event(Event::StateChanged {
        from: State::SynSent,
        to: State::Established,
    });
    t.expect_event(Event::Connected);
    t.expect_error(None);
    // Nothing outstanding: no timer.
    t.expect_no_deadline();
    // RFC 6298 §2.2: the first sample (100 ms) gives RTO = 100 + 4·50 ms.
    let s = t.stats();
    assert_eq!(s.srtt, Some(utcp_proto::Duration::from_millis(100)));
    assert_eq!(s.rto, utcp_proto::Duration::from_millis(300));
}

#[test]
fn syn_sent_syn_ack_with_ack_above_snd_nxt_sends_rst() {
    let mut t = TestConn::syn_sent();
    // Third check of §3.10.7.3 first step: SEG.ACK > SND.NXT → <SEQ=SEG.ACK><CTL=RST>.
    t.inject(100, SYN_ACK.seq(R).ack(L + 5));
    t.expect_sent(100, [RST.seq(L + 5)]);
    t.expect_state(State::SynSent);
    // The real SYN-ACK still completes the handshake.
    t.inject(150, SYN_ACK.seq(R).ack(L + 1));
    t.expect_sent(150, [ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::Established);
}

#[test]
fn syn_sent_ack_of_iss_sends_rst() {
    let mut t = TestConn::syn_sent();
    // SEG.ACK ≤ ISS is unacceptable.
    t.inject(100, ACK.seq(R).ack(L));
    t.expect_sent(100, [RST.seq(L)]);
    t.expect_state(State::SynSent);
}

#[test]
fn syn_sent_ack_without_syn_is_dropped() {
    let mut t = TestConn::syn_sent();
    // An acceptable ACK without SYN or RST: fifth step, drop.
    t.inject(100, ACK.seq(R).ack(L + 1));
    t.expect_nothing(100);
    t.expect_state(State::SynSent);
    t.expect_deadline(1_000);
}

#[test]
fn syn_sent_rst_with_ack_is_refused() {
    let mut t = TestConn::syn_sent();
    t.inject(100, RST_ACK.seq(SeqNum::new(0)).ack(L + 1));
    t.expect_nothing(100);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionRefused));
    t.expect_event(Event::Error(Error::ConnectionRefused));
    t.expect_event(Event::Closed);
    t.expect_no_deadline();
    assert!(t.conn.is_closed());
}

#[test]
fn syn_sent_rst_with_unacceptable_ack_is_ignored() {
    let mut t = TestConn::syn_sent();
    t.inject(100, RST_ACK.seq(R).ack(L + 9));
    t.expect_nothing(100);
    t.expect_state(State::SynSent);
    t.expect_error(None);
}

#[test]
fn syn_sent_rst_without_ack_is_ignored() {
    let mut t = TestConn::syn_sent();
    t.inject(100, RST.seq(R));
    t.expect_nothing(100);
    t.expect_state(State::SynSent);
    t.expect_deadline(1_000);
}

#[test]
fn syn_sent_fin_without_syn_is_dropped() {
    let mut t = TestConn::syn_sent();
    t.inject(100, FIN.seq(R));
    t.expect_nothing(100);
    t.expect_state(State::SynSent);
}

#[test]
fn syn_sent_syn_enters_syn_received_and_sends_syn_ack() {
    // Simultaneous open (RFC 9293 §3.5, Figure 8).
    let mut t = TestConn::syn_sent();
    t.inject(100, SYN.seq(R).mss(1460));
    t.expect_sent(100, [SYN_ACK.seq(L).ack(R + 1).mss(1460)]);
    t.expect_state(State::SynReceived);
    t.expect_event(Event::StateChanged {
        from: State::SynSent,
        to: State::SynReceived,
    });
}

#[test]
fn syn_sent_syn_then_syn_ack_establishes() {
    // Figure 8, line 6: the peer's SYN-ACK reaches us in SYN_RECEIVED.
    let mut t = TestConn::syn_sent();
    t.inject(100, SYN.seq(R).mss(1460));
    t.expect_sent(100, [SYN_ACK.seq(L).ack(R + 1)]);
    t.inject(200, SYN_ACK.seq(R).ack(L + 1).mss(1460));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::Established);
    t.expect_event(Event::Connected);
}

#[test]
fn syn_sent_syn_then_ack_establishes() {
    // The peer in SYN_RECEIVED acknowledges our SYN-ACK with a plain ACK.
    let mut t = TestConn::syn_sent();
    t.inject(100, SYN.seq(R));
    t.expect_sent(100, [SYN_ACK.seq(L).ack(R + 1)]);
    t.inject(200, ACK.seq(R + 1).ack(L + 1));
    t.expect_nothing(200);
    t.expect_state(State::Established);
    t.expect_event(Event::Connected);
}

#[test]
fn syn_sent_syn_then_rst_is_refused() {
    // An active open that went through SYN_RECEIVED: an RST means refused.
    let mut t = TestConn::syn_sent();
    t.inject(100, SYN.seq(R));
    t.expect_sent(100, [SYN_ACK.seq(L).ack(R + 1)]);
    t.inject(200, RST.seq(R + 1));
    t.expect_nothing(200);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionRefused));
}

#[test]
fn syn_sent_syn_ack_with_data_delivers_it() {
    let mut t = TestConn::syn_sent();
    t.inject(100, SYN_ACK.seq(R).ack(L + 1).data(b"hello"));
    t.expect_sent(100, [ACK.seq(L + 1).ack(R + 6)]);
    t.expect_state(State::Established);
    t.expect_event(Event::Readable);
    assert_eq!(t.recv_all(), b"hello");
}

#[test]
fn syn_sent_syn_ack_with_fin_enters_close_wait() {
    let mut t = TestConn::syn_sent();
    t.inject(
        100,
        SYN_ACK
            .with(utcp_proto::wire::TcpFlags::FIN)
            .seq(R)
            .ack(L + 1),
    );
    t.expect_sent(100, [ACK.seq(L + 1).ack(R + 2)]);
    t.expect_state(State::CloseWait);
    assert!(t.conn.peer_closed());
}

#[test]
fn syn_sent_timeout_retransmits_syn_with_backoff_then_times_out() {
    // RFC 6298 §5.5: 1 s, 2 s, 4 s, … ; six retries, then give up at 127 s.
    let mut t = TestConn::syn_sent();
    let mut at = 0;
    let mut rto = 1_000;
    for _ in 0..6 {
        at += rto;
        t.expect_deadline(at);
        t.expect_sent(at, [SYN.seq(L).mss(1460)]);
        t.expect_state(State::SynSent);
        rto *= 2;
    }
    assert_eq!(at + rto, 127_000);
    t.expect_deadline(127_000);
    t.expect_nothing(126_999);
    // Not synchronized: no RST, just the error.
    t.expect_nothing(127_000);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::TimedOut));
    t.expect_event(Event::Error(Error::TimedOut));
    t.expect_event(Event::Closed);
    t.expect_no_deadline();
    assert_eq!(t.stats().segments_retransmitted, 6);
}

#[test]
fn syn_sent_syn_ack_after_retransmitted_syn_starts_with_3s_rto() {
    // RFC 6298 §5.7: after a SYN timeout, data starts with RTO = 3 s; and no
    // RTT sample from the ambiguous SYN-ACK (Karn).
    let mut t = TestConn::syn_sent();
    t.expect_sent(1_000, [SYN.seq(L)]);
    t.inject(1_100, SYN_ACK.seq(R).ack(L + 1).mss(1460));
    t.expect_sent(1_100, [ACK.seq(L + 1).ack(R + 1)]);
    assert_eq!(t.stats().srtt, None);
    assert_eq!(t.stats().rto, utcp_proto::Duration::from_secs(3));
    t.send(2_000, b"data");
    t.expect_sent(2_000, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"data")]);
    t.expect_deadline(5_000);
}

#[test]
fn syn_sent_peer_without_mss_option_uses_536() {
    // RFC 9293 §3.7.1: no MSS option means 536 for IPv4.
    let mut t = Opts {
        peer_mss: None,
        ..Opts::default()
    }
    .established();
    assert_eq!(t.stats().mss, 536);
    let data = pattern(0, 600);
    t.send(200, &data);
    t.expect_sent(
        200,
        [
            ACK.seq(L + 1).ack(R + 1).data(&data[..536]),
            PSH_ACK.seq(L + 537).ack(R + 1).data(&data[536..]),
        ],
    );
}

#[test]
fn syn_sent_ipv6_peer_without_mss_option_uses_1220() {
    let mut t = Opts {
        peer_mss: None,
        ipv6: true,
        ..Opts::default()
    }
    .established();
    assert_eq!(t.stats().mss, 1220);
    let data = pattern(0, 1300);
    t.send(200, &data);
    t.expect_sent(
        200,
        [
            ACK.seq(L + 1).ack(R + 1).data(&data[..1220]),
            PSH_ACK.seq(L + 1221).ack(R + 1).data(&data[1220..]),
        ],
    );
}

#[test]
fn syn_sent_peer_mss_above_ours_is_capped() {
    let t = Opts {
        peer_mss: Some(9000),
        ..Opts::default()
    }
    .established();
    assert_eq!(t.stats().mss, 1460);
}

#[test]
fn syn_sent_data_queued_goes_out_with_the_handshake_ack() {
    let mut t = TestConn::syn_sent();
    assert_eq!(t.send(10, b"early"), 5);
    t.expect_nothing(10);
    t.inject(100, SYN_ACK.seq(R).ack(L + 1).mss(1460));
    // The data segment carries the ACK of the SYN: no separate pure ACK.
    t.expect_sent(100, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"early")]);
    t.expect_deadline(400);
}

#[test]
fn syn_sent_shutdown_closes_without_sending() {
    let mut t = TestConn::syn_sent();
    t.shutdown(10);
    t.expect_nothing(10);
    t.expect_state(State::Closed);
    t.expect_event(Event::Closed);
    t.expect_no_deadline();
    // A late SYN-ACK finds nothing (the endpoint answers it).
    t.inject(100, SYN_ACK.seq(R).ack(L + 1));
    t.expect_nothing(100);
}

#[test]
fn syn_sent_abort_closes_without_rst() {
    // RFC 9293 §3.10.5, ABORT in SYN_SENT: delete the TCB, nothing sent.
    let mut t = TestConn::syn_sent();
    t.abort(10);
    t.expect_nothing(10);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionAborted));
    assert_eq!(t.conn.send(b"x"), Err(Error::BrokenPipe));
}

#[test]
fn syn_sent_initial_window_is_ten_segments() {
    // RFC 6928: IW = min(10·MSS, max(2·MSS, 14 600)) = 14 600 for MSS 1460.
    let mut t = TestConn::established();
    assert_eq!(t.stats().cwnd, 14_600);
    let data = pattern(0, 20_000);
    assert_eq!(t.send(200, &data), 20_000);
    let sent = t.take_sent(200);
    assert_eq!(sent.len(), 10);
    assert!(sent.iter().all(|s| s.payload.len() == 1460));
}

#[test]
fn syn_sent_initial_window_with_jumbo_mss_is_two_segments() {
    let cfg = Config {
        mss: 9000,
        mtu: 9040,
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        peer_mss: Some(9000),
        ..Opts::default()
    }
    .established();
    assert_eq!(t.stats().cwnd, 18_000);
    let data = pattern(0, 40_000);
    t.send(200, &data);
    let sent = t.take_sent(200);
    assert_eq!(
        sent.iter().map(|s| s.payload.len()).collect::<Vec<_>>(),
        vec![9000, 9000]
    );
}

#[test]
fn syn_sent_syn_ack_data_is_trimmed_to_the_offered_window() {
    // Our SYN offered a 1000-byte window: of 1500 bytes on the SYN-ACK only
    // 1000 are taken, and the FIN after them (beyond the window) is not.
    let cfg = Config {
        recv_buffer: 1000,
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        ..Opts::default()
    }
    .syn_sent();
    t.inject(
        100,
        SYN_ACK
            .with(utcp_proto::wire::TcpFlags::FIN)
            .seq(R)
            .ack(L + 1)
            .mss(1460)
            .data(&pattern(0, 1500)),
    );
    t.expect_sent(100, [ACK.seq(L + 1).ack(R + 1001).win(0)]);
    t.expect_state(State::Established);
    assert_eq!(t.recv_all(), pattern(0, 1000));
    assert!(!t.conn.peer_closed());
}

#[test]
fn syn_sent_one_syn_retransmission_keeps_the_initial_window() {
    let mut t = TestConn::syn_sent();
    t.expect_sent(1_000, [SYN.seq(L)]);
    t.inject(1_100, SYN_ACK.seq(R).ack(L + 1).mss(1460));
    t.expect_sent(1_100, [ACK.seq(L + 1).ack(R + 1)]);
    assert_eq!(t.stats().cwnd, 14_600);
}

#[test]
fn syn_sent_two_syn_retransmissions_start_with_one_segment() {
    // RFC 5681 §3.1: the initial window is one segment after a retransmitted
    // SYN; as Linux's tcp_init_transfer, after more than one.
    let mut t = TestConn::syn_sent();
    t.expect_sent(1_000, [SYN.seq(L)]);
    t.expect_sent(3_000, [SYN.seq(L)]);
    t.inject(3_100, SYN_ACK.seq(R).ack(L + 1).mss(1460));
    t.expect_sent(3_100, [ACK.seq(L + 1).ack(R + 1)]);
    assert_eq!(t.stats().cwnd, 1460);
    t.send(3_200, &pattern(0, 5000));
    assert_eq!(t.take_sent(3_200).len(), 1);
}

// ---- RFC 7323: window scaling and timestamps ---------------------------------------

#[test]
fn syn_sent_syn_offers_window_scale_and_timestamps() {
    // RFC 7323 §2.2, §3.2: WS with the smallest shift that fits the receive
    // buffer's auto-tuning limit (6 MiB: 7), TS <TSval=offset+clock,
    // TSecr=0>; the SYN's window itself is never scaled.
    let mut conn = utcp_proto::Connection::connect(
        Config::default(),
        "10.0.0.1:40000".parse().unwrap(),
        "10.0.0.2:80".parse().unwrap(),
        L,
        utcp_proto::Instant::ZERO,
    )
    .unwrap();
    conn.set_timestamp_offset(77);
    let mut t = TestConn::wrap(conn, Opts::default());
    t.expect_sent(
        0,
        [SYN.seq(L)
            .mss(1460)
            .ws(7)
            .ts(77, 0)
            .sack_perm(true)
            .win(65_535)],
    );
    // The retransmitted SYN offers the same, with the clock moved on.
    t.expect_sent(1_000, [SYN.seq(L).ws(7).ts(1_077, 0)]);
}

#[test]
fn syn_sent_syn_ack_with_both_options_puts_them_in_force() {
    // A 1 MiB receive buffer needs shift 5 (2^20 >> 5 = 32,768 ≤ 65,535).
    let cfg = Config {
        recv_buffer: 1 << 20,
        recv_buffer_max: 1 << 20,
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        ..Opts::default()
    }
    .established_ts();
    let s = t.stats();
    assert_eq!(
        (s.snd_wscale, s.rcv_wscale, s.timestamps),
        (Some(7), Some(5), true)
    );
    // RFC 7323 §4.1: the echoed TSval timed the handshake (100 ms).
    assert_eq!(s.srtt, Some(utcp_proto::Duration::from_millis(100)));
    // The option takes 12 bytes of every segment: 1460 − 12.
    assert_eq!(s.mss, 1448);
    // §2.3: the peer's windows are scaled by its shift from now on, ours by
    // ours: 2^20 bytes of room advertise as 2^20 >> 5.
    t.inject(200, ACK.seq(R + 1).ack(L + 1).win(100).ts(5_100, 1_100));
    assert_eq!(t.stats().send_window, 100 << 7);
    t.send(300, b"x");
    t.expect_sent(
        300,
        [PSH_ACK
            .seq(L + 1)
            .ack(R + 1)
            .data(b"x")
            .win(32_768)
            .ts(1_300, 5_100)],
    );
}

#[test]
fn syn_sent_syn_ack_without_options_leaves_both_off() {
    // RFC 7323 §2.2: no WS in the SYN-ACK, both shifts 0; §3.2: no TS in the
    // SYN-ACK, no TS in any later segment.
    let cfg = Config {
        recv_buffer: 1 << 20,
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        ..Opts::default()
    }
    .syn_sent();
    t.inject(100, SYN_ACK.seq(R).ack(L + 1).mss(1460));
    t.expect_sent(100, [ACK.seq(L + 1).ack(R + 1).no_ts().win(65_535)]);
    let s = t.stats();
    assert_eq!(
        (s.snd_wscale, s.rcv_wscale, s.timestamps, s.mss),
        (None, None, false, 1460)
    );
    t.inject(200, ACK.seq(R + 1).ack(L + 1).win(100));
    assert_eq!(t.stats().send_window, 100, "unscaled");
}

#[test]
fn syn_sent_only_the_options_the_peer_offers_are_in_force() {
    let mut t = TestConn::syn_sent();
    t.inject(100, SYN_ACK.seq(R).ack(L + 1).mss(1460).ws(3));
    t.expect_sent(100, [ACK.seq(L + 1).ack(R + 1).no_ts()]);
    let s = t.stats();
    assert_eq!((s.snd_wscale, s.timestamps), (Some(3), false));
}

#[test]
fn syn_sent_window_scale_above_14_is_taken_as_14() {
    // RFC 7323 §2.3: "use 14 instead of the value received".
    let mut t = TestConn::syn_sent();
    t.inject(100, SYN_ACK.seq(R).ack(L + 1).mss(1460).ws(15));
    t.discard_sent();
    assert_eq!(t.stats().snd_wscale, Some(14));
}

#[test]
fn syn_sent_options_can_be_turned_off() {
    let cfg = Config {
        window_scaling: false,
        timestamps: false,
        ..Config::default()
    };
    let mut t = TestConn::wrap(
        utcp_proto::Connection::connect(
            cfg.clone(),
            "10.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
            L,
            utcp_proto::Instant::ZERO,
        )
        .unwrap(),
        Opts {
            cfg,
            ..Opts::default()
        },
    );
    t.expect_sent(0, [SYN.seq(L).mss(1460).no_ws().no_ts()]);
    // A peer offering both anyway gets neither.
    t.inject(100, SYN_ACK.seq(R).ack(L + 1).mss(1460).ws(7).ts(5, 0));
    t.expect_sent(100, [ACK.seq(L + 1).ack(R + 1).no_ts()]);
    assert_eq!(t.stats().snd_wscale, None);
}

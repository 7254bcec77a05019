//! ESTABLISHED: RFC 9293 §3.10.7.4 (segment arrival), §3.8.6 (windows), RFC
//! 5961 (blind in-window attacks), RFC 6298 (RTO), RFC 5681 / 6582 / 3042
//! (congestion control, NewReno, limited transmit), RFC 6928 (initial window).
//!
//! The fixture is ESTABLISHED at 100 ms with RTO 300 ms, MSS 1460, the peer's
//! window 65 535 and ours 65 535; our next sequence number is L+1, the peer's R+1.

mod common;

use common::*;
use utcp_proto::{Config, CongestionAlgorithm, Duration, Error, Event, SeqNum, State};

const MSS: usize = 1460;

/// ESTABLISHED with NewReno selected (RFC 5681's halving), for the tests of
/// Reno's arithmetic; CUBIC, the default, has its own in `congestion.rs`.
/// Pacing off: these tests count what the window lets out at one instant.
fn newreno() -> TestConn {
    Opts {
        cfg: Config {
            congestion: CongestionAlgorithm::NewReno,
            pacing: false,
            ..Config::default()
        },
        ..Opts::default()
    }
    .established()
}

fn small_rcvbuf() -> TestConn {
    Opts {
        cfg: Config {
            recv_buffer: 4096,
            ..Config::default()
        },
        ..Opts::default()
    }
    .established()
}

// ---- SYN -------------------------------------------------------------------

#[test]
fn established_syn_in_window_gets_challenge_ack() {
    // RFC 5961 §4.2 (RFC 9293 §3.10.7.4 fourth): challenge ACK, stay.
    let mut t = TestConn::established();
    t.inject(200, SYN.seq(R + 1));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::Established);
    t.expect_error(None);
}

#[test]
fn established_syn_out_of_window_gets_ack() {
    let mut t = TestConn::established();
    t.inject(200, SYN.seq(R + 3_000_000));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::Established);
}

// ---- RST -------------------------------------------------------------------

#[test]
fn established_rst_exact_resets() {
    let mut t = TestConn::established();
    t.inject(200, RST.seq(R + 1));
    t.expect_nothing(200);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionReset));
    t.expect_event(Event::Error(Error::ConnectionReset));
    t.expect_event(Event::Closed);
    t.expect_no_deadline();
    let mut buf = [0u8; 8];
    assert_eq!(t.conn.recv(&mut buf), Err(Error::ConnectionReset));
    assert_eq!(t.conn.send(b"x"), Err(Error::ConnectionReset));
}

#[test]
fn established_rst_ack_exact_resets() {
    let mut t = TestConn::established();
    t.inject(200, RST_ACK.seq(R + 1).ack(L + 1));
    t.expect_nothing(200);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionReset));
}

#[test]
fn established_rst_in_window_gets_challenge_ack() {
    // RFC 5961 §3.2: in the window but not exactly RCV.NXT.
    let mut t = TestConn::established();
    t.inject(200, RST.seq(R + 10));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::Established);
}

#[test]
fn established_rst_out_of_window_is_ignored() {
    let mut t = TestConn::established();
    t.inject(200, RST.seq(R + 100_000));
    t.expect_nothing(200);
    t.inject(210, RST.seq(R));
    t.expect_nothing(210);
    t.expect_state(State::Established);
}

#[test]
fn established_challenge_acks_are_rate_limited_per_connection() {
    // RFC 5961 §7: at most `challenge_ack_per_sec` (10) per second.
    let mut t = TestConn::established();
    for i in 0..10 {
        t.inject(200, RST.seq(R + 10 + i));
        t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1)]);
    }
    t.inject(200, RST.seq(R + 50));
    t.expect_nothing(200);
    t.inject(900, SYN.seq(R + 1));
    t.expect_nothing(900);
    // A new second.
    t.inject(1_200, RST.seq(R + 50));
    t.expect_sent(1_200, [ACK.seq(L + 1).ack(R + 1)]);
    // Another connection has its own budget.
    let mut other = TestConn::established();
    other.inject(200, RST.seq(R + 10));
    other.expect_sent(200, [ACK.seq(L + 1).ack(R + 1)]);
}

// ---- ACK -------------------------------------------------------------------

#[test]
fn established_ack_of_data_stops_rto_and_frees_the_buffer() {
    let mut t = TestConn::established();
    t.send(200, b"hello");
    t.expect_sent(200, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"hello")]);
    t.expect_deadline(500);
    assert_eq!(t.conn.send_queued(), 5);
    t.inject(300, ACK.seq(R + 1).ack(L + 6));
    t.expect_nothing(300);
    t.expect_no_deadline();
    t.expect_event(Event::Writable);
    assert_eq!(t.conn.send_queued(), 0);
    // RFC 6298 §2.3 with a 100 ms sample: RTTVAR 37.5 ms, so 4·RTTVAR is
    // 150 ms, below the 200 ms floor on that term (as Linux): RTO 300 ms.
    assert_eq!(t.stats().rto, Duration::from_millis(300));
}

#[test]
fn established_partial_ack_restarts_rto() {
    let mut t = TestConn::established();
    let data = pattern(0, 2 * MSS);
    t.send(200, &data);
    t.expect_sent(
        200,
        [
            ACK.seq(L + 1).ack(R + 1).data(&data[..MSS]),
            PSH_ACK
                .seq(L + 1 + MSS as u32)
                .ack(R + 1)
                .data(&data[MSS..]),
        ],
    );
    t.expect_deadline(500);
    // RFC 6298 §5.3: restart the timer on an ACK of new data; RTO now 300 ms.
    t.inject(300, ACK.seq(R + 1).ack(L + 1 + MSS as u32));
    t.expect_nothing(300);
    t.expect_deadline(600);
}

#[test]
fn established_duplicate_ack_without_outstanding_data_is_ignored() {
    let mut t = TestConn::established();
    t.inject(200, ACK.seq(R + 1).ack(L + 1));
    t.expect_nothing(200);
    t.expect_no_deadline();
    t.expect_state(State::Established);
}

#[test]
fn established_ack_above_snd_nxt_gets_ack_and_drops_the_segment() {
    // RFC 9293 §3.10.7.4 fifth: SEG.ACK > SND.NXT → send an ACK, drop, return.
    let mut t = TestConn::established();
    t.inject(200, PSH_ACK.seq(R + 1).ack(L + 100).data(b"evil"));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1)]);
    assert_eq!(t.conn.readable(), 0);
    t.expect_state(State::Established);
}

#[test]
fn established_ack_too_old_gets_challenge_ack_and_drops_the_segment() {
    // RFC 5961 §5.2: SEG.ACK < SND.UNA − MAX.SND.WND is unacceptable.
    let mut t = TestConn::established();
    t.inject(
        200,
        PSH_ACK
            .seq(R + 1)
            .ack(L + 1 + (u32::MAX - 70_000 + 1))
            .data(b"old"),
    );
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1)]);
    assert_eq!(t.conn.readable(), 0);
}

#[test]
fn established_old_ack_within_window_still_delivers_data() {
    // SEG.ACK < SND.UNA but within MAX.SND.WND: the ACK is ignored, the text is not.
    let mut t = TestConn::established();
    t.inject(200, PSH_ACK.seq(R + 1).ack(L).data(b"abc"));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 4)]);
    assert_eq!(t.recv_all(), b"abc");
}

// ---- Data --------------------------------------------------------------------

#[test]
fn established_data_in_order_is_delivered_and_acked() {
    let mut t = TestConn::established();
    t.inject(200, PSH_ACK.seq(R + 1).ack(L + 1).data(b"hello"));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 6).win(65_531)]);
    t.expect_event(Event::Readable);
    assert_eq!(t.recv_all(), b"hello");
    // Reading 5 bytes moves the window by less than an MSS: no update.
    t.expect_nothing(200);
    assert_eq!(t.stats().bytes_received, 5);
}

#[test]
fn established_out_of_order_data_is_acked_at_once_and_delivered_when_the_hole_fills() {
    // RFC 5681 §4.2 / RFC 9293 §3.10.7.4 seventh.
    let mut t = TestConn::established();
    t.inject(200, PSH_ACK.seq(R + 6).ack(L + 1).data(b"world"));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1)]);
    assert_eq!(t.conn.readable(), 0);
    t.expect_no_event(|e| *e == Event::Readable);
    t.inject(210, ACK.seq(R + 11).ack(L + 1).data(b"!"));
    t.expect_sent(210, [ACK.seq(L + 1).ack(R + 1)]);
    t.inject(220, ACK.seq(R + 1).ack(L + 1).data(b"hello"));
    t.expect_sent(220, [ACK.seq(L + 1).ack(R + 12)]);
    t.expect_event(Event::Readable);
    assert_eq!(t.recv_all(), b"helloworld!");
}

#[test]
fn established_overlapping_retransmission_is_trimmed() {
    let mut t = TestConn::established();
    t.inject(200, PSH_ACK.seq(R + 1).ack(L + 1).data(b"hello"));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 6)]);
    t.inject(210, PSH_ACK.seq(R + 3).ack(L + 1).data(b"lloworld"));
    t.expect_sent(210, [ACK.seq(L + 1).ack(R + 11)]);
    assert_eq!(t.recv_all(), b"helloworld");
}

#[test]
fn established_duplicate_data_gets_ack_and_is_not_delivered_twice() {
    let mut t = TestConn::established();
    t.inject(200, PSH_ACK.seq(R + 1).ack(L + 1).data(b"hello"));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 6)]);
    t.inject(210, PSH_ACK.seq(R + 1).ack(L + 1).data(b"hello"));
    t.expect_sent(210, [ACK.seq(L + 1).ack(R + 6)]);
    assert_eq!(t.recv_all(), b"hello");
}

#[test]
fn established_data_beyond_the_window_gets_ack_and_is_dropped() {
    let mut t = TestConn::established();
    t.inject(200, PSH_ACK.seq(R + 1 + 70_000).ack(L + 1).data(b"far"));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1)]);
    assert_eq!(t.conn.readable(), 0);
}

#[test]
fn established_data_straddling_the_right_edge_is_trimmed() {
    let mut t = small_rcvbuf();
    let data = pattern(0, 5000);
    t.inject(200, PSH_ACK.seq(R + 1).ack(L + 1).data(&data));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 4097).win(0)]);
    assert_eq!(t.recv_all(), &data[..4096]);
}

#[test]
fn established_zero_window_drops_data_but_processes_its_ack() {
    let mut t = small_rcvbuf();
    t.send(200, b"ping");
    t.expect_sent(200, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"ping")]);
    t.inject(250, PSH_ACK.seq(R + 1).ack(L + 1).data(&pattern(0, 4096)));
    t.expect_sent(250, [ACK.seq(L + 5).ack(R + 4097).win(0)]);
    // At RCV.NXT with a zero window: the ACK field counts, the text does not.
    t.inject(300, PSH_ACK.seq(R + 4097).ack(L + 5).data(b"more"));
    t.expect_sent(300, [ACK.seq(L + 5).ack(R + 4097).win(0)]);
    t.expect_no_deadline();
    assert_eq!(t.conn.readable(), 4096);
}

#[test]
fn established_window_update_after_read_follows_receiver_sws_avoidance() {
    // RFC 9293 §3.8.6.2.2: announce more window only in steps of
    // min(RCV.BUFF/2, MSS) = 1460 here.
    let mut t = small_rcvbuf();
    t.inject(200, PSH_ACK.seq(R + 1).ack(L + 1).data(&pattern(0, 4096)));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 4097).win(0)]);
    assert_eq!(t.recv_n(100).len(), 100);
    t.expect_nothing(200);
    assert_eq!(t.recv_n(1400).len(), 1400);
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 4097).win(1500)]);
    // The peer fills the new window.
    t.inject(
        300,
        PSH_ACK.seq(R + 4097).ack(L + 1).data(&pattern(4096, 2000)),
    );
    t.expect_sent(300, [ACK.seq(L + 1).ack(R + 5597).win(0)]);
}

#[test]
fn established_segment_without_ack_is_dropped() {
    let mut t = TestConn::established();
    t.inject(200, NO_FLAGS.seq(R + 1).data(b"noack"));
    t.expect_nothing(200);
    assert_eq!(t.conn.readable(), 0);
}

// ---- FIN -------------------------------------------------------------------

#[test]
fn established_fin_enters_close_wait() {
    let mut t = TestConn::established();
    t.inject(200, FIN_ACK.seq(R + 1).ack(L + 1));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 2)]);
    t.expect_state(State::CloseWait);
    t.expect_event(Event::Readable);
    t.expect_event(Event::StateChanged {
        from: State::Established,
        to: State::CloseWait,
    });
    let mut buf = [0u8; 4];
    assert_eq!(t.conn.recv(&mut buf), Ok(Some(0)));
}

#[test]
fn established_fin_with_data_delivers_then_eof() {
    let mut t = TestConn::established();
    t.inject(200, FIN_PSH_ACK.seq(R + 1).ack(L + 1).data(b"bye"));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 5)]);
    t.expect_state(State::CloseWait);
    assert_eq!(t.recv_all(), b"bye");
    let mut buf = [0u8; 4];
    assert_eq!(t.conn.recv(&mut buf), Ok(Some(0)));
}

#[test]
fn established_out_of_order_fin_waits_for_the_hole() {
    let mut t = TestConn::established();
    t.inject(200, FIN_PSH_ACK.seq(R + 6).ack(L + 1).data(b"world"));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::Established);
    t.inject(210, PSH_ACK.seq(R + 1).ack(L + 1).data(b"hello"));
    t.expect_sent(210, [ACK.seq(L + 1).ack(R + 12)]);
    t.expect_state(State::CloseWait);
    assert_eq!(t.recv_all(), b"helloworld");
}

// ---- Retransmission timeout ------------------------------------------------------

#[test]
fn established_rto_retransmits_with_exponential_backoff() {
    let mut t = TestConn::established();
    t.send(200, b"hello");
    t.expect_sent(200, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"hello")]);
    t.expect_deadline(500);
    t.expect_sent(500, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"hello")]);
    t.expect_deadline(1_100);
    t.expect_sent(1_100, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"hello")]);
    t.expect_deadline(2_300);
    let s = t.stats();
    assert_eq!(s.rto_count, 2);
    assert_eq!(s.segments_retransmitted, 2);
    // No RTT sample from an ACK of a retransmission (Karn).
    t.inject(2_400, ACK.seq(R + 1).ack(L + 6));
    assert_eq!(t.stats().srtt, Some(Duration::from_millis(100)));
    t.expect_no_deadline();
}

#[test]
fn established_rto_sets_cwnd_to_one_segment_and_goes_back_n() {
    let mut t = newreno();
    let data = pattern(0, 3 * MSS);
    let seg = |i: usize| &data[i * MSS..(i + 1) * MSS];
    let seq = |i: usize| L + 1 + (i * MSS) as u32;
    t.send(200, &data);
    t.expect_sent(
        200,
        [
            ACK.seq(seq(0)).ack(R + 1).data(seg(0)),
            ACK.seq(seq(1)).ack(R + 1).data(seg(1)),
            PSH_ACK.seq(seq(2)).ack(R + 1).data(seg(2)),
        ],
    );
    // RFC 5681 §3.1: after an RTO, cwnd = 1 segment, ssthresh = max(flight/2, 2·SMSS).
    t.expect_sent(500, [ACK.seq(seq(0)).ack(R + 1).data(seg(0))]);
    assert_eq!(t.stats().cwnd, MSS as u32);
    assert_eq!(t.stats().ssthresh, 2 * MSS as u32);
    t.expect_deadline(1_100);
    // Slow start again: the ACK of the first segment lets two go (go-back-N).
    t.inject(600, ACK.seq(R + 1).ack(seq(1)));
    t.expect_sent(
        600,
        [
            ACK.seq(seq(1)).ack(R + 1).data(seg(1)),
            PSH_ACK.seq(seq(2)).ack(R + 1).data(seg(2)),
        ],
    );
    assert_eq!(t.stats().cwnd, 2 * MSS as u32);
    // The backed-off RTO stays until a new sample.
    t.expect_deadline(1_200);
    t.inject(700, ACK.seq(R + 1).ack(seq(3)));
    t.expect_nothing(700);
    t.expect_no_deadline();
}

#[test]
fn established_rto_go_back_n_skips_what_the_peer_already_has() {
    let mut t = TestConn::established();
    let data = pattern(0, 3 * MSS);
    t.send(200, &data);
    let _ = t.take_sent(200);
    t.expect_sent(500, [ACK.seq(L + 1).ack(R + 1).data(&data[..MSS])]);
    // The peer had the rest: its cumulative ACK covers everything.
    t.inject(600, ACK.seq(R + 1).ack(L + 1 + 3 * MSS as u32));
    t.expect_nothing(600);
    t.expect_no_deadline();
    assert_eq!(t.conn.send_queued(), 0);
}

#[test]
fn established_rto_backoff_is_capped_at_rto_max() {
    // RFC 6298 §5.5 doubles the RTO; §2.5 allows a ceiling (120 s here).
    let mut t = TestConn::established();
    t.send(200, b"x");
    t.expect_sent(200, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"x")]);
    let mut at = 200;
    let mut rto = 300;
    for _ in 0..11 {
        at += rto;
        t.expect_deadline(at);
        t.expect_sent(at, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"x")]);
        rto = (rto * 2).min(120_000);
    }
    assert_eq!(t.stats().rto, Duration::from_secs(120));
    t.expect_deadline(at + 120_000);
}

#[test]
fn established_data_retries_exhausted_times_out_without_rst() {
    let cfg = Config {
        data_retries: 3,
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        ..Opts::default()
    }
    .established();
    t.send(200, b"hello");
    t.expect_sent(200, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"hello")]);
    for at in [500, 1_100, 2_300] {
        t.expect_sent(at, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"hello")]);
    }
    t.expect_deadline(4_700);
    // RFC 9293 §3.10.8: the user timeout flushes and closes; no RST (as Linux).
    t.expect_sent(4_700, []);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::TimedOut));
    t.expect_event(Event::Error(Error::TimedOut));
}

// ---- Fast retransmit, NewReno, limited transmit ----------------------------------

#[test]
fn established_three_dupacks_fast_retransmit_and_newreno_recovery() {
    let mut t = newreno();
    let data = pattern(0, 12 * MSS);
    let seg = |i: usize| &data[i * MSS..(i + 1) * MSS];
    let seq = |i: usize| L + 1 + (i * MSS) as u32;
    t.send(200, &data);
    // RFC 6928: ten segments in the initial window.
    let first: Vec<Seg> = (0..10)
        .map(|i| ACK.seq(seq(i)).ack(R + 1).data(seg(i)))
        .collect();
    t.expect_sent_vec(200, first);
    // Segment 0 is lost. RFC 3042: the first two duplicate ACKs each release
    // one new segment.
    t.inject(300, ACK.seq(R + 1).ack(seq(0)));
    t.expect_sent(300, [ACK.seq(seq(10)).ack(R + 1).data(seg(10))]);
    t.inject(301, ACK.seq(R + 1).ack(seq(0)));
    t.expect_sent(301, [PSH_ACK.seq(seq(11)).ack(R + 1).data(seg(11))]);
    // RFC 5681 §3.2 / RFC 6582: the third retransmits; ssthresh =
    // FlightSize / 2, the two limited-transmit segments not counted (step
    // 2): 10 / 2 segments.
    t.inject(302, ACK.seq(R + 1).ack(seq(0)));
    t.expect_sent(302, [ACK.seq(seq(0)).ack(R + 1).data(seg(0))]);
    let s = t.stats();
    assert_eq!(s.fast_retransmits, 1);
    assert_eq!(s.ssthresh, 5 * MSS as u32);
    assert_eq!(s.cwnd, 8 * MSS as u32);
    // Further duplicates inflate cwnd; nothing new to send.
    t.inject(303, ACK.seq(R + 1).ack(seq(0)));
    t.expect_nothing(303);
    assert_eq!(t.stats().cwnd, 9 * MSS as u32);
    // A partial ACK (segments 0..5): retransmit the next hole at once.
    t.inject(400, ACK.seq(R + 1).ack(seq(5)));
    t.expect_sent(400, [ACK.seq(seq(5)).ack(R + 1).data(seg(5))]);
    assert_eq!(t.stats().cwnd, 5 * MSS as u32);
    t.expect_deadline(700);
    // The full ACK ends recovery: cwnd = min(ssthresh, flight + MSS).
    t.inject(500, ACK.seq(R + 1).ack(seq(12)));
    t.expect_nothing(500);
    assert_eq!(t.stats().cwnd, 2 * MSS as u32);
    t.expect_no_deadline();
}

#[test]
fn established_dupacks_that_change_the_window_are_not_duplicates() {
    let mut t = TestConn::established();
    let data = pattern(0, 4 * MSS);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 4);
    for (i, w) in [60_000u16, 50_000, 40_000, 30_000].into_iter().enumerate() {
        t.inject(300 + i as u64, ACK.seq(R + 1).ack(L + 1).win(w));
        t.expect_nothing(300 + i as u64);
    }
    assert_eq!(t.stats().fast_retransmits, 0);
}

#[test]
fn established_dupacks_carrying_data_are_not_duplicates() {
    let mut t = TestConn::established();
    t.send(200, &pattern(0, 4 * MSS));
    assert_eq!(t.take_sent(200).len(), 4);
    for i in 0..4u32 {
        t.inject(300, PSH_ACK.seq(R + 1 + i).ack(L + 1).data(b"x"));
        t.expect_sent(300, [ACK.seq(L + 1 + 4 * MSS as u32).ack(R + 2 + i)]);
    }
    assert_eq!(t.stats().fast_retransmits, 0);
}

// ---- Windows: persist, SWS -------------------------------------------------

#[test]
fn established_sends_no_more_than_the_peer_window() {
    let mut t = Opts {
        peer_window: 3000,
        ..Opts::default()
    }
    .established();
    let data = pattern(0, 10_000);
    t.send(200, &data);
    // Two full segments; the 80 bytes left of the window wait (sender SWS).
    t.expect_sent(
        200,
        [
            ACK.seq(L + 1).ack(R + 1).data(&data[..MSS]),
            ACK.seq(L + 1461).ack(R + 1).data(&data[MSS..2 * MSS]),
        ],
    );
    t.inject(300, ACK.seq(R + 1).ack(L + 1461).win(3000));
    t.expect_sent(
        300,
        [ACK.seq(L + 2921).ack(R + 1).data(&data[2 * MSS..3 * MSS])],
    );
}

#[test]
fn established_zero_window_probes_back_off_to_60_s_then_resume() {
    let mut t = TestConn::established();
    let data = pattern(0, 1000);
    t.send(200, &data);
    t.expect_sent(200, [PSH_ACK.seq(L + 1).ack(R + 1).data(&data)]);
    // All acknowledged, window closed (RTO now 300 ms).
    t.inject(300, ACK.seq(R + 1).ack(L + 1001).win(0));
    t.expect_nothing(300);
    t.expect_no_deadline();
    t.send(400, b"abc");
    t.expect_nothing(400);
    // RFC 9293 §3.8.6.1: probe on the persist timer, backing off, at most 60 s apart.
    let mut at = 400;
    let mut interval = 300;
    for _ in 0..11 {
        at += interval;
        t.expect_deadline(at);
        t.expect_sent(at, [ACK.seq(L + 1001).ack(R + 1).data(b"a")]);
        t.inject(at + 10, ACK.seq(R + 1).ack(L + 1001).win(0));
        t.expect_nothing(at + 10);
        interval = (interval * 2).min(60_000);
    }
    assert_eq!(interval, 60_000);
    // Probe ACKs are not duplicate ACKs.
    assert_eq!(t.stats().fast_retransmits, 0);
    // The window opens: everything from SND.UNA goes (the probe byte was refused).
    t.inject(at + 100, ACK.seq(R + 1).ack(L + 1001).win(65_535));
    t.expect_sent(at + 100, [PSH_ACK.seq(L + 1001).ack(R + 1).data(b"abc")]);
}

/// The peer closed its window with "abc" queued: at 500 the persist timer
/// sends one byte as the zero-window probe (SND.MAX = its right edge + 1).
fn probing_a_closed_window() -> TestConn {
    let mut t = TestConn::established();
    t.inject(150, ACK.seq(R + 1).ack(L + 1).win(0));
    t.send(200, b"abc");
    t.expect_nothing(200);
    t.expect_deadline(500);
    t.expect_sent(500, [ACK.seq(L + 1).ack(R + 1).data(b"a")]);
    t
}

#[test]
fn established_acks_after_a_zero_window_probe_stay_inside_the_peer_window() {
    // The probe byte went past the peer's closed window (SND.MAX = its right
    // edge + 1). An ACK with SEG.SEQ = SND.MAX would be out of that window:
    // the peer drops it without reading its ACK field (RFC 9293 §3.10.7.4;
    // Linux answers it with a duplicate ACK only), so what we ACK never
    // reaches it. Linux's tcp_acceptable_seq: a pure ACK carries the right
    // edge, SND.UNA + SND.WND, when SND.NXT is past it.
    let mut t = probing_a_closed_window();
    t.inject(510, ACK.seq(R + 1).ack(L + 1).win(0));
    t.expect_nothing(510);
    // Out-of-order data from the peer: its immediate ACK (with the hole).
    t.inject(600, PSH_ACK.seq(R + 101).ack(L + 1).win(0).data(b"later"));
    t.expect_sent(600, [ACK.seq(L + 1).ack(R + 1)]);
    // The hole fills: the ACK of the data, at once.
    t.inject(610, ACK.seq(R + 1).ack(L + 1).win(0).data(&[b'x'; 100]));
    t.expect_sent(610, [ACK.seq(L + 1).ack(R + 106)]);
    // The window reopens: everything from SND.UNA goes.
    t.inject(700, ACK.seq(R + 106).ack(L + 1).win(65_535));
    t.expect_sent(700, [PSH_ACK.seq(L + 1).ack(R + 106).data(b"abc")]);
}

#[test]
fn established_zero_window_probe_accepted_when_the_window_reopened() {
    let mut t = probing_a_closed_window();
    // The window update was lost; the probe finds the window open.
    t.inject(600, ACK.seq(R + 1).ack(L + 2).win(65_535));
    t.expect_sent(600, [PSH_ACK.seq(L + 2).ack(R + 1).data(b"bc")]);
}

#[test]
fn established_small_window_is_used_after_the_sws_override_timeout() {
    // RFC 9293 §3.8.6.2.1: a window below the sender's SWS threshold holds the
    // data, but an override timeout must force it out (a lost window update
    // would otherwise deadlock).
    let mut t = TestConn::established();
    t.inject(200, ACK.seq(R + 1).ack(L + 1).win(1000));
    let data = pattern(0, 5000);
    t.send(300, &data);
    t.expect_nothing(300);
    t.expect_deadline(600);
    t.expect_sent(600, [ACK.seq(L + 1).ack(R + 1).data(&data[..1000])]);
    t.expect_deadline(900);
}

// ---- User calls ------------------------------------------------------------

#[test]
fn established_abort_sends_rst() {
    let mut t = TestConn::established();
    t.abort(200);
    t.expect_sent(200, [RST_ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionAborted));
    assert_eq!(t.conn.send(b"x"), Err(Error::BrokenPipe));
    // Segments after the abort are the endpoint's business: nothing here.
    t.inject(300, PSH_ACK.seq(R + 1).ack(L + 1).data(b"late"));
    t.expect_nothing(300);
}

#[test]
fn established_close_with_unread_data_sends_rst() {
    let mut t = TestConn::established();
    t.inject(200, PSH_ACK.seq(R + 1).ack(L + 1).data(b"unread"));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 7)]);
    t.close(300);
    t.expect_sent(300, [RST_ACK.seq(L + 1).ack(R + 7)]);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionAborted));
}

#[test]
fn established_close_sends_fin() {
    let mut t = TestConn::established();
    t.close(200);
    t.expect_sent(200, [FIN_ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::FinWait1);
    t.expect_deadline(500);
}

#[test]
fn established_shutdown_sends_fin_after_queued_data() {
    let mut t = TestConn::established();
    let data = pattern(0, 12 * MSS);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 10);
    t.shutdown(200);
    t.expect_nothing(200);
    t.expect_state(State::FinWait1);
    assert_eq!(t.conn.send(b"more"), Err(Error::BrokenPipe));
    // The window opens: the last segment carries the FIN.
    t.inject(300, ACK.seq(R + 1).ack(L + 1 + 10 * MSS as u32));
    t.expect_sent(
        300,
        [
            ACK.seq(L + 1 + 10 * MSS as u32)
                .ack(R + 1)
                .data(&data[10 * MSS..11 * MSS]),
            FIN_PSH_ACK
                .seq(L + 1 + 11 * MSS as u32)
                .ack(R + 1)
                .data(&data[11 * MSS..]),
        ],
    );
}

#[test]
fn established_send_buffer_limit_applies() {
    // A fixed limit (no auto-tuning: the maximum is the start).
    let cfg = Config {
        send_buffer: 1000,
        send_buffer_max: 1000,
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        ..Opts::default()
    }
    .established();
    assert_eq!(t.send(200, &pattern(0, 1500)), 1000);
    let _ = t.take_sent(200);
    assert_eq!(t.conn.send_space(), 0);
    t.inject(300, ACK.seq(R + 1).ack(L + 1001));
    t.expect_event(Event::Writable);
    assert_eq!(t.conn.send_space(), 1000);
}

// ---- Other -------------------------------------------------------------------

#[test]
fn established_ipv6_data_both_ways() {
    let mut t = Opts {
        ipv6: true,
        ..Opts::default()
    }
    .established();
    t.send(200, b"over v6");
    t.expect_sent(200, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"over v6")]);
    t.inject(300, PSH_ACK.seq(R + 1).ack(L + 8).data(b"reply"));
    t.expect_sent(300, [ACK.seq(L + 8).ack(R + 6)]);
    assert_eq!(t.recv_all(), b"reply");
    assert_eq!(t.conn.local_addr().to_string(), "[fd00::1]:40000");
}

#[test]
fn established_sequence_numbers_wrap() {
    // ISS just below 2^32: data crosses zero.
    let iss = SeqNum::new(u32::MAX - 2);
    let (local, remote) = (
        "10.0.0.1:40000".parse().unwrap(),
        "10.0.0.2:80".parse().unwrap(),
    );
    let conn = utcp_proto::Connection::connect(
        Config::default(),
        local,
        remote,
        iss,
        utcp_proto::Instant::ZERO,
    )
    .unwrap();
    let mut t = TestConn::wrap(conn, Opts::default());
    t.expect_sent(0, [SYN.seq(iss)]);
    let peer = SeqNum::new(u32::MAX);
    t.inject(100, SYN_ACK.seq(peer).ack(iss + 1).mss(1460));
    t.expect_sent(100, [ACK.seq(iss + 1).ack(peer + 1)]);
    t.send(200, b"wrapping");
    t.expect_sent(200, [PSH_ACK.seq(iss + 1).ack(peer + 1).data(b"wrapping")]);
    t.inject(300, PSH_ACK.seq(peer + 1).ack(iss + 9).data(b"around"));
    t.expect_sent(300, [ACK.seq(iss + 9).ack(peer + 7)]);
    assert_eq!((iss + 9).get(), 6);
    assert_eq!(t.recv_all(), b"around");
    t.expect_no_deadline();
}

#[test]
fn established_retransmitted_syn_ack_gets_ack() {
    // Our handshake ACK was lost: the peer's SYN-ACK again, below RCV.NXT.
    let mut t = TestConn::established();
    t.inject(1_100, SYN_ACK.seq(R).ack(L + 1).mss(1460));
    t.expect_sent(1_100, [ACK.seq(L + 1).ack(R + 1)]);
    t.expect_state(State::Established);
}

#[test]
fn established_ack_in_the_middle_of_a_segment_retransmits_the_rest() {
    let mut t = TestConn::established();
    let data = pattern(0, 1000);
    t.send(200, &data);
    t.expect_sent(200, [PSH_ACK.seq(L + 1).ack(R + 1).data(&data)]);
    t.inject(300, ACK.seq(R + 1).ack(L + 501));
    t.expect_nothing(300);
    assert_eq!(t.conn.send_queued(), 500);
    // No sample (the timed segment is not fully acknowledged): RTO 300 ms
    // from the ACK, then the unacknowledged half goes again.
    t.expect_deadline(600);
    t.expect_sent(600, [PSH_ACK.seq(L + 501).ack(R + 1).data(&data[500..])]);
}

#[test]
fn established_peer_zero_window_from_the_handshake_is_probed() {
    let mut t = Opts {
        peer_window: 0,
        ..Opts::default()
    }
    .established();
    t.send(200, b"hi");
    t.expect_nothing(200);
    t.expect_deadline(500);
    t.expect_sent(500, [ACK.seq(L + 1).ack(R + 1).data(b"h")]);
    t.inject(510, ACK.seq(R + 1).ack(L + 1).win(1000));
    t.expect_sent(510, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"hi")]);
}

#[test]
fn established_orphan_behind_a_zero_window_is_dropped_after_orphan_retries() {
    let cfg = Config {
        orphan_retries: 3,
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        ..Opts::default()
    }
    .established();
    let data = pattern(0, 1000);
    t.send(200, &data);
    t.expect_sent(200, [PSH_ACK.seq(L + 1).ack(R + 1).data(&data)]);
    t.inject(300, ACK.seq(R + 1).ack(L + 1001).win(0));
    t.send(400, b"abc");
    // The application closes: FIN is queued behind the unsent bytes.
    t.close(400);
    t.expect_state(State::FinWait1);
    t.expect_nothing(400);
    let mut at = 400;
    let mut interval = 300;
    for _ in 0..3 {
        at += interval;
        t.expect_sent(at, [ACK.seq(L + 1001).ack(R + 1).data(b"a")]);
        t.inject(at + 10, ACK.seq(R + 1).ack(L + 1001).win(0));
        interval *= 2;
    }
    // The peer keeps the window shut: after orphan_retries probes, the orphan goes.
    at += interval;
    t.expect_deadline(at);
    t.expect_nothing(at);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::TimedOut));
}

// ---- ACKs per segment in a batch (RFC 5681 §4.2; DESIGN "Transmit") ---------

#[test]
fn established_four_ooo_segments_in_one_batch_get_four_dupacks() {
    // R+1..R+101 is lost; the next four arrive in one batch. Each owes its own
    // immediate duplicate ACK, so a peer without SACK sees three duplicates.
    let mut t = TestConn::established();
    t.inject_batch(
        200,
        [
            ACK.seq(R + 101).ack(L + 1).data(&pattern(100, 100)),
            ACK.seq(R + 201).ack(L + 1).data(&pattern(200, 100)),
            ACK.seq(R + 301).ack(L + 1).data(&pattern(300, 100)),
            ACK.seq(R + 401).ack(L + 1).data(&pattern(400, 100)),
        ],
    );
    let dup = ACK.seq(L + 1).ack(R + 1).win(65_535);
    t.expect_sent(200, [dup.clone(), dup.clone(), dup.clone(), dup]);
    // The hole fills: one ACK for everything.
    t.inject(210, ACK.seq(R + 1).ack(L + 1).data(&pattern(0, 100)));
    t.expect_sent(210, [ACK.seq(L + 1).ack(R + 501)]);
    assert_eq!(t.recv_all(), pattern(0, 500));
}

#[test]
fn established_four_in_order_segments_in_one_batch_get_one_ack() {
    let mut t = TestConn::established();
    t.inject_batch(
        200,
        [
            ACK.seq(R + 1).ack(L + 1).data(&pattern(0, 100)),
            ACK.seq(R + 101).ack(L + 1).data(&pattern(100, 100)),
            ACK.seq(R + 201).ack(L + 1).data(&pattern(200, 100)),
            ACK.seq(R + 301).ack(L + 1).data(&pattern(300, 100)),
        ],
    );
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 401)]);
}

#[test]
fn established_batch_acks_each_disorder_segment_in_arrival_order() {
    // In order, out of order, a duplicate, then the hole filled, in one batch:
    // the in-order data's ACK is covered by the first owed ACK; every other
    // segment gets its own, acknowledging RCV.NXT as it stood after it.
    let mut t = TestConn::established();
    t.inject_batch(
        200,
        [
            ACK.seq(R + 1).ack(L + 1).data(&pattern(0, 100)),
            ACK.seq(R + 201).ack(L + 1).data(&pattern(200, 100)),
            ACK.seq(R + 1).ack(L + 1).data(&pattern(0, 100)),
            ACK.seq(R + 101).ack(L + 1).data(&pattern(100, 100)),
            ACK.seq(R + 301).ack(L + 1).data(&pattern(300, 100)),
        ],
    );
    t.expect_sent(
        200,
        [
            ACK.seq(L + 1).ack(R + 101),
            ACK.seq(L + 1).ack(R + 101),
            ACK.seq(L + 1).ack(R + 301),
            ACK.seq(L + 1).ack(R + 401),
        ],
    );
    assert_eq!(t.recv_all(), pattern(0, 400));
}

// ---- Retransmission timer (RFC 6298) -----------------------------------------

#[test]
fn established_fast_retransmit_restarts_the_rto() {
    let mut t = TestConn::established();
    let data = pattern(0, 5 * MSS);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 5);
    t.expect_deadline(500);
    // Three duplicate ACKs at 400, 420, 440: the third retransmits, and the
    // timer restarts from it (RTO 300 ms) instead of firing at 500.
    for at in [400, 420] {
        t.inject(at, ACK.seq(R + 1).ack(L + 1));
        t.expect_nothing(at);
    }
    t.inject(440, ACK.seq(R + 1).ack(L + 1));
    t.expect_sent(440, [ACK.seq(L + 1).ack(R + 1).data(&data[..MSS])]);
    t.expect_deadline(740);
    assert_eq!(t.stats().fast_retransmits, 1);
}

// ---- Congestion window -------------------------------------------------------

#[test]
fn established_slow_start_counts_every_byte_of_a_stretch_ack() {
    // One ACK for the whole initial window (ten segments) grows cwnd by ten
    // segments, not one (Linux tcp_slow_start). Pacing off: all twenty
    // leave at the ACK's instant.
    let mut t = Opts::unpaced().established();
    let data = pattern(0, 40 * MSS);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 10);
    assert_eq!(t.stats().cwnd, 14_600);
    t.inject(300, ACK.seq(R + 1).ack(L + 1 + 10 * MSS as u32));
    assert_eq!(t.stats().cwnd, 29_200);
    assert_eq!(t.take_sent(300).len(), 20);
}

// ---- Send window update (RFC 9293 §3.10.7.4, fifth) ------------------------

#[test]
fn established_old_ack_does_not_update_the_window() {
    let mut t = TestConn::established();
    t.send(200, &pattern(0, 1000));
    t.discard_sent();
    t.inject(300, ACK.seq(R + 1).ack(L + 1001).data(b"0123456789"));
    t.expect_sent(300, [ACK.seq(L + 1001).ack(R + 11)]);
    // A reordered segment: newer SEQ, but an ACK below SND.UNA, closing the
    // window. SND.UNA > SEG.ACK: the window must not move.
    t.inject(310, ACK.seq(R + 11).ack(L + 1).win(0).data(b"ab"));
    t.expect_sent(310, [ACK.seq(L + 1001).ack(R + 13)]);
    assert_eq!(t.stats().send_window, 65_535);
    t.send(400, b"more");
    t.expect_sent(400, [PSH_ACK.seq(L + 1001).ack(R + 13).data(b"more")]);
}

// ---- Acceptability (RFC 9293 §3.4, as Linux's tcp_sequence) -----------------

#[test]
fn established_pure_ack_at_the_right_window_edge_is_acceptable() {
    // A pure ACK whose SEQ equals RCV.NXT + RCV.WND (a peer's SND.MAX after it
    // filled our window): its ACK is processed, not answered with a challenge.
    let mut t = TestConn::established();
    t.send(200, b"hello");
    t.discard_sent();
    t.inject(300, ACK.seq(R + 1 + 65_535).ack(L + 6));
    t.expect_nothing(300);
    assert_eq!(t.conn.send_queued(), 0);
    t.expect_no_deadline();
}

#[test]
fn established_segment_covering_the_whole_window_is_acceptable() {
    // Starts before RCV.NXT and ends beyond the right edge: acceptable; the
    // part inside the window is taken and the segment is ACKed at once.
    let cfg = Config {
        recv_buffer: 1000,
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        ..Opts::default()
    }
    .established();
    t.inject(200, ACK.seq(R + 1).ack(L + 1).data(&pattern(0, 10)));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 11)]);
    t.inject(300, ACK.seq(R + 1).ack(L + 1).data(&pattern(0, 1500)));
    t.expect_sent(300, [ACK.seq(L + 1).ack(R + 1001).win(0)]);
    assert_eq!(t.recv_all(), pattern(0, 1000));
}

// ---- Zero-window probes (RFC 1122 §4.2.2.17) -----------------------------------

#[test]
fn established_unanswered_zero_window_probes_time_out() {
    let cfg = Config {
        data_retries: 3,
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        ..Opts::default()
    }
    .established();
    t.inject(150, ACK.seq(R + 1).ack(L + 1).win(0));
    t.send(200, b"abc");
    t.expect_nothing(200);
    // Probes at 500, 1100, 2300 (RTO 300 ms, doubling), none answered.
    let mut at = 200;
    let mut interval = 300;
    for _ in 0..3 {
        at += interval;
        t.expect_sent(at, [ACK.seq(L + 1).ack(R + 1).data(b"a")]);
        interval *= 2;
    }
    at += interval;
    t.expect_deadline(at);
    t.expect_nothing(at);
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::TimedOut));
}

#[test]
fn established_answered_zero_window_probes_keep_the_connection() {
    let cfg = Config {
        data_retries: 3,
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        ..Opts::default()
    }
    .established();
    t.inject(150, ACK.seq(R + 1).ack(L + 1).win(0));
    t.send(200, b"abc");
    t.expect_nothing(200);
    // Ten probes, each answered (window still shut): far more than
    // data_retries, and the connection stays.
    for _ in 0..10 {
        let at = t.conn.poll_timeout().expect("persist timer").as_millis();
        t.expect_sent(at, [ACK.seq(L + 1).ack(R + 1).data(b"a")]);
        t.inject(at + 10, ACK.seq(R + 1).ack(L + 1).win(0));
        t.expect_nothing(at + 10);
    }
    t.expect_state(State::Established);
    t.inject(200_000, ACK.seq(R + 1).ack(L + 1).win(1000));
    t.expect_sent(200_000, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"abc")]);
}

// ---- RFC 7323: timestamps and scaled windows in force ----------------------------
// The `established_ts` fixture: TSval = 1000 + ms, TS.Recent = 5000, the peer's
// shift 7, ours 1 (64 KiB buffer), SRTT 100 ms.

#[test]
fn established_ts_every_segment_carries_timestamps_and_data_is_mss_minus_12() {
    let mut t = TestConn::established_ts();
    let data = pattern(0, 3_000);
    t.send(200, &data);
    t.expect_sent(
        200,
        [
            ACK.seq(L + 1)
                .ack(R + 1)
                .data(&data[..1448])
                .ts(1_200, 5_000),
            ACK.seq(L + 1449)
                .ack(R + 1)
                .data(&data[1448..2896])
                .ts(1_200, 5_000),
            PSH_ACK
                .seq(L + 2897)
                .ack(R + 1)
                .data(&data[2896..])
                .ts(1_200, 5_000),
        ],
    );
}

#[test]
fn established_ts_paws_drops_an_older_tsval_with_an_ack() {
    // RFC 7323 §5.3 R1: SEG.TSval < TS.Recent → not acceptable: ACK, drop.
    let mut t = TestConn::established_ts();
    t.inject(
        200,
        PSH_ACK.seq(R + 1).ack(L + 1).data(b"old").ts(4_999, 1_100),
    );
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1).ts(1_200, 5_000)]);
    assert!(t.recv_all().is_empty(), "PAWS dropped the data");
    assert_eq!(t.stats().paws_rejected, 1);
    // The same bytes with a current TSval are taken.
    t.inject(
        300,
        PSH_ACK.seq(R + 1).ack(L + 1).data(b"new").ts(5_001, 1_100),
    );
    t.expect_sent(300, [ACK.seq(L + 1).ack(R + 4).ts(1_300, 5_001)]);
    assert_eq!(t.recv_all(), b"new");
}

#[test]
fn established_ts_paws_rejected_old_data_gets_a_dsack_block() {
    // RFC 7323 §5.3 R1 drops it; RFC 2883 §4 reports every duplicate: a
    // late original behind its retransmission (reordering) carries an
    // older TSval and bytes received already. It is ACKed at once with a
    // D-SACK block and counted (Linux's tcp_send_dupack; data segments are
    // not rate-limited as out-of-window ACKs are).
    let mut t = TestConn::established_ts_sack();
    t.inject(
        200,
        PSH_ACK.seq(R + 1).ack(L + 1).data(b"abc").ts(5_010, 1_100),
    );
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 4).ts(1_200, 5_010).no_sack()]);
    for k in 0..3u32 {
        t.inject(
            210 + u64::from(k),
            PSH_ACK.seq(R + 1).ack(L + 1).data(b"abc").ts(5_005, 1_100),
        );
        t.expect_sent(
            210 + u64::from(k),
            [ACK.seq(L + 1)
                .ack(R + 4)
                .ts(1_210 + k, 5_010)
                .sack(&[(R + 1, R + 4)])],
        );
    }
    assert_eq!(t.stats().paws_rejected, 3);
    assert_eq!(t.stats().rcv_dup_packets, 3);
    assert_eq!(t.recv_all(), b"abc");
}

#[test]
fn established_ts_an_rst_is_taken_even_with_an_old_tsval() {
    // As Linux (tcp_validate_incoming): PAWS does not stop an RST; its
    // sequence number decides (RFC 5961 §3.2).
    let mut t = TestConn::established_ts();
    t.inject(200, RST.seq(R + 1).ts(1, 0));
    t.expect_state(State::Closed);
    t.expect_error(Some(Error::ConnectionReset));
}

#[test]
fn established_ts_recent_is_taken_only_from_segments_at_or_below_last_ack_sent() {
    // RFC 7323 §4.3 (2): "If SEG.TSval ≥ TS.Recent and SEG.SEQ ≤
    // Last.ACK.sent, SEG.TSval is copied to TS.Recent". An out-of-order
    // segment (SEQ above Last.ACK.sent = R+1) does not move it.
    let mut t = TestConn::established_ts();
    t.inject(
        200,
        ACK.seq(R + 101)
            .ack(L + 1)
            .data(&pattern(100, 50))
            .ts(9_000, 1_100),
    );
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1).ts(1_200, 5_000)]);
    // The in-order segment at R+1 does, and its ACK echoes it.
    t.inject(
        300,
        ACK.seq(R + 1)
            .ack(L + 1)
            .data(&pattern(0, 100))
            .ts(6_000, 1_100),
    );
    t.expect_sent(300, [ACK.seq(L + 1).ack(R + 151).ts(1_300, 6_000)]);
}

#[test]
fn established_ts_rtt_comes_from_tsecr_even_for_a_retransmission() {
    // RFC 7323 §4.1: the echoed TSval times the segment that was ACKed —
    // the retransmission here, which Karn's rule would not time.
    let mut t = TestConn::established_ts();
    assert_eq!(t.stats().srtt, Some(Duration::from_millis(100)));
    t.send(200, b"x");
    t.expect_sent(
        200,
        [PSH_ACK.seq(L + 1).ack(R + 1).data(b"x").ts(1_200, 5_000)],
    );
    // RTO = 100 + max(200, 4·50) = 300 ms: the retransmission at 500.
    t.expect_sent(
        500,
        [PSH_ACK.seq(L + 1).ack(R + 1).data(b"x").ts(1_500, 5_000)],
    );
    t.inject(550, ACK.seq(R + 1).ack(L + 2).ts(5_100, 1_500));
    // SRTT = 7/8 · 100 + 1/8 · 50 ms.
    assert_eq!(t.stats().srtt, Some(Duration::from_micros(93_750)));
}

#[test]
fn established_ts_windows_we_advertise_are_scaled_by_our_shift() {
    // 1 MiB of room, shift 5: the window field is 2^20 >> 5; the peer's
    // window field 100 means 100 << 7 bytes. After 1,000 bytes the room is
    // 2^20 − 1000, rounded up (RFC 7323 §2.3): rounding down would move the
    // right edge advertised before to the left.
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
    t.inject(
        200,
        PSH_ACK
            .seq(R + 1)
            .ack(L + 1)
            .win(100)
            .data(&pattern(0, 1_000))
            .ts(5_100, 1_100),
    );
    t.expect_sent(
        200,
        [ACK.seq(L + 1)
            .ack(R + 1_001)
            .win(((1u32 << 20) - 1_000).div_ceil(32) as u16)],
    );
    assert_eq!(t.stats().send_window, 12_800);
    assert!(
        t.stats().recv_window > 65_535,
        "{:?}",
        t.stats().recv_window
    );
}

// ---- RFC 2018 / RFC 2883: SACK and D-SACK in force -------------------------------
// The `established_sack` fixture: SACK-permitted in both SYNs, no timestamps
// (up to 4 blocks per ACK).

#[test]
fn established_sack_a_hole_filler_overlapping_held_data_gets_a_dsack_for_the_overlap() {
    // RFC 2883 §4: R+101..R+151 is held out of order; the retransmission
    // that fills the hole covers R+1..R+121, so R+101..R+121 came twice.
    // Its ACK reports that part as a D-SACK block (as Linux's
    // tcp_ofo_queue), and the duplicate is counted.
    let mut t = TestConn::established_sack();
    t.inject(200, ACK.seq(R + 101).ack(L + 1).data(&pattern(100, 50)));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1).sack(&[(R + 101, R + 151)])]);
    t.inject(300, ACK.seq(R + 1).ack(L + 1).data(&pattern(0, 120)));
    t.expect_sent(
        300,
        [ACK.seq(L + 1).ack(R + 151).sack(&[(R + 101, R + 121)])],
    );
    assert_eq!(t.stats().rcv_dup_packets, 1);
    assert_eq!(t.recv_all(), pattern(0, 150));
}

#[test]
fn established_sack_each_out_of_order_segment_of_a_batch_gets_its_blocks() {
    // RFC 2018 §4: the first block holds the segment that triggered the
    // ACK, then the most recently reported others; each ACK of a batch
    // carries the blocks as they stood after its own segment.
    let mut t = TestConn::established_sack();
    let s = |off: u32| ACK.seq(R + off).ack(L + 1).data(&pattern(off as usize, 50));
    t.inject_batch(200, [s(101), s(201), s(301)]);
    let b = |off: u32| (R + off, R + off + 50);
    t.expect_sent(
        200,
        [
            ACK.seq(L + 1).ack(R + 1).sack(&[b(101)]),
            ACK.seq(L + 1).ack(R + 1).sack(&[b(201), b(101)]),
            ACK.seq(L + 1).ack(R + 1).sack(&[b(301), b(201), b(101)]),
        ],
    );
    // A segment adjacent to a block merges with it, and that block comes
    // first; the hole at R+1 filled, no block is left.
    t.inject(300, s(151));
    t.expect_sent(
        300,
        [ACK.seq(L + 1)
            .ack(R + 1)
            .sack(&[(R + 101, R + 251), b(301)])],
    );
    t.inject(400, ACK.seq(R + 1).ack(L + 1).data(&pattern(1, 100)));
    t.expect_sent(400, [ACK.seq(L + 1).ack(R + 251).sack(&[b(301)])]);
    // Each of them was counted (Linux's tcpi_rcv_ooopack); the hole filler not.
    assert!(
        t.stats().rcv_ooo_packets >= 3,
        "{}",
        t.stats().rcv_ooo_packets
    );
}

#[test]
fn established_sack_blocks_beyond_four_are_the_oldest_left_out() {
    let mut t = TestConn::established_sack();
    let s = |off: u32| ACK.seq(R + off).ack(L + 1).data(&pattern(off as usize, 10));
    t.inject_batch(200, [s(101), s(201), s(301), s(401), s(501)]);
    let segs = t.take_sent(200);
    let b = |off: u32| (R + off, R + off + 10);
    assert_eq!(segs.len(), 5);
    assert_eq!(
        segs[4].sack.as_deref(),
        Some(&[b(501), b(401), b(301), b(201)][..])
    );
}

#[test]
fn established_sack_hundreds_of_holes_are_all_held() {
    // RFC 2018 §8 lets a receiver discard SACKed data, but one that keeps
    // only a few dozen holes makes a large window's sender resend data it
    // already delivered (a slow-start overshoot of a 1 Gbit/s, 50 ms path
    // leaves thousands of holes in one round). By default 300 holes are
    // held: filling each hole in turn moves RCV.NXT over every segment.
    let mut t = TestConn::established_sack();
    const HOLES: u32 = 300;
    let seg = |off: u32| {
        ACK.seq(R + off)
            .ack(L + 1)
            .data(&pattern(off as usize - 1, 100))
    };
    let mut acks = Vec::new();
    for k in 0..HOLES {
        t.inject(200, seg(1 + 200 * k + 100));
        acks.extend(t.take_sent(200));
    }
    assert_eq!(acks.len(), HOLES as usize);
    assert!(acks.iter().all(|a| a.ack == R + 1));
    // The last ACK reports the last segment first: it was held.
    let last = acks.last().unwrap().sack.clone().unwrap();
    assert_eq!(last[0], (R + (200 * HOLES - 99), R + (200 * HOLES + 1)));
    let mut acks = Vec::new();
    for k in 0..HOLES {
        t.inject(300, seg(1 + 200 * k));
        acks.extend(t.take_sent(300));
    }
    assert_eq!(
        acks.last().unwrap().ack,
        R + 1 + 200 * HOLES,
        "every held segment counted"
    );
    assert_eq!(t.recv_all(), pattern(0, (200 * HOLES) as usize));
}

#[test]
fn established_dsack_reports_a_duplicate_first() {
    // RFC 2883 §4: the first block of the ACK for a duplicate segment is
    // the duplicate; for one inside a block, that block comes second.
    let mut t = TestConn::established_sack();
    t.inject(200, PSH_ACK.seq(R + 1).ack(L + 1).data(&pattern(0, 50)));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 51).no_sack()]);
    t.inject(300, PSH_ACK.seq(R + 1).ack(L + 1).data(&pattern(0, 50)));
    t.expect_sent(300, [ACK.seq(L + 1).ack(R + 51).sack(&[(R + 1, R + 51)])]);
    // A duplicate of held out-of-order data.
    t.inject(400, ACK.seq(R + 101).ack(L + 1).data(&pattern(100, 50)));
    t.expect_sent(
        400,
        [ACK.seq(L + 1).ack(R + 51).sack(&[(R + 101, R + 151)])],
    );
    t.inject(500, ACK.seq(R + 101).ack(L + 1).data(&pattern(100, 50)));
    t.expect_sent(
        500,
        [ACK.seq(L + 1)
            .ack(R + 51)
            .sack(&[(R + 101, R + 151), (R + 101, R + 151)])],
    );
    // A segment partly below RCV.NXT: the part already received.
    t.inject(600, ACK.seq(R + 41).ack(L + 1).data(&pattern(40, 20)));
    t.expect_sent(
        600,
        [ACK.seq(L + 1)
            .ack(R + 61)
            .sack(&[(R + 41, R + 51), (R + 101, R + 151)])],
    );
    // One duplicate counted per segment: the whole, the held and the partial.
    assert_eq!(t.stats().rcv_dup_packets, 3);
}

#[test]
fn established_sack_rack_resends_the_hole_and_the_timeout_only_what_was_not_sacked() {
    // RFC 8985 §6.2: the first segment is lost and the peer SACKs the other
    // two (fewer than DupThresh: the reordering window is min_RTT/4). RFC
    // 2018 §3 / RFC 6675 §5.1: SACKed ranges are never sent again.
    let mut t = TestConn::established_sack();
    let data = pattern(0, 4_000);
    t.send(200, &data);
    t.expect_sent(
        200,
        [
            ACK.seq(L + 1).ack(R + 1).data(&data[..1460]),
            ACK.seq(L + 1461).ack(R + 1).data(&data[1460..2920]),
            PSH_ACK.seq(L + 2921).ack(R + 1).data(&data[2920..]),
        ],
    );
    t.inject(250, ACK.seq(R + 1).ack(L + 1).sack(&[(L + 1461, L + 4001)]));
    assert_eq!(t.stats().sacked_bytes, 2_540);
    // Sent at 200, RACK.rtt 50 ms, reo_wnd = min_RTT (100 ms, the
    // handshake) / 4: lost at 275.
    t.expect_deadline(275);
    t.expect_nothing(274);
    assert_eq!(t.stats().retrans_bytes, 0);
    t.expect_sent(275, [ACK.seq(L + 1).ack(R + 1).data(&data[..1460])]);
    assert_eq!(t.stats().recovery_episodes, 1);
    assert_eq!(t.stats().rack_lost_bytes, 1460);
    // The retransmission is outstanding (Linux's tcpi_retrans).
    assert_eq!(t.stats().retrans_bytes, 1460);
    // That retransmission is lost too: nothing sent after it can show it,
    // so the timeout (restarted with it: 275 + 300) resends it, and only it.
    t.expect_nothing(574);
    t.expect_sent(575, [ACK.seq(L + 1).ack(R + 1).data(&data[..1460])]);
    t.expect_nothing(800);
    t.inject(850, ACK.seq(R + 1).ack(L + 4001));
    assert_eq!(t.stats().sacked_bytes, 0);
    assert_eq!(t.stats().retrans_bytes, 0);
    assert_eq!(t.stats().segments_retransmitted, 2);
    assert_eq!(t.stats().rto_count, 1);
    // A loss is no reordering: the degree stays at DupThresh.
    assert!(!t.stats().reordering_seen);
    assert_eq!(t.stats().reordering, 3);
}

#[test]
fn established_sack_reordering_degree_is_the_distance_a_segment_was_overtaken() {
    // RFC 8985 §6.2 step 2: a segment never retransmitted delivered below
    // RACK.fack is reordering; its degree (Linux's tcpi_reordering) is the
    // distance to RACK.fack in segments.
    let mut t = TestConn::established_sack();
    // First, segment 1 of 3 overtaken by the other two (fewer than
    // DupThresh SACKed: RACK waits min_RTT/4 = 25 ms, the ACK comes first).
    let data = pattern(0, 3 * 1460);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 3);
    t.inject(
        210,
        ACK.seq(R + 1)
            .ack(L + 1)
            .sack(&[(L + 1461, L + 1 + 3 * 1460)]),
    );
    t.inject(212, ACK.seq(R + 1).ack(L + 1 + 3 * 1460));
    let st = t.stats();
    assert!(st.reordering_seen);
    assert_eq!(st.reordering, 3);
    // Then one of 6 overtaken by five: with reordering seen, the window
    // waits, and the degree becomes 6.
    let base = L + 1 + 3 * 1460;
    t.send(300, &pattern(0, 6 * 1460));
    assert_eq!(t.take_sent(300).len(), 6);
    t.inject(
        310,
        ACK.seq(R + 1)
            .ack(base)
            .sack(&[(base + 1460, base + 6 * 1460)]),
    );
    t.inject(312, ACK.seq(R + 1).ack(base + 6 * 1460));
    let st = t.stats();
    assert_eq!(st.segments_retransmitted, 0);
    assert_eq!(st.reordering, 6);
    assert_eq!(st.retrans_bytes, 0);
}

#[test]
fn established_sack_blocks_outside_the_window_are_ignored_and_dsack_counted() {
    let mut t = TestConn::established_sack();
    t.send(200, &pattern(0, 100));
    t.discard_sent();
    // Below SND.UNA (a D-SACK of nothing outstanding) and above SND.MAX.
    t.inject(
        250,
        ACK.seq(R + 1)
            .ack(L + 1)
            .sack(&[(SeqNum::new(L.get() - 100), L), (L + 50, L + 500)]),
    );
    assert_eq!(t.stats().sacked_bytes, 0);
    assert_eq!(t.stats().dsack_received, 1);
}

#[test]
fn established_sack_data_segments_make_room_for_their_blocks() {
    // A data segment carrying SACK blocks holds that much less payload, so
    // that the packet stays within the MTU (Linux's tcp_current_mss).
    let mut t = TestConn::established_sack();
    t.inject(200, ACK.seq(R + 101).ack(L + 1).data(&pattern(100, 50)));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1).sack(&[(R + 101, R + 151)])]);
    let data = pattern(0, 2_000);
    t.send(300, &data);
    t.expect_sent(
        300,
        [
            ACK.seq(L + 1)
                .ack(R + 1)
                .data(&data[..1448])
                .sack(&[(R + 101, R + 151)]),
            PSH_ACK
                .seq(L + 1449)
                .ack(R + 1)
                .data(&data[1448..])
                .sack(&[(R + 101, R + 151)]),
        ],
    );
}

#[test]
fn established_sack_recovery_repairs_every_hole_the_blocks_show_in_one_episode() {
    // RFC 6675: two segments of a window lost; the duplicate ACKs' blocks
    // show both holes, and both are resent before any timeout, paced by the
    // pipe (cwnd = ssthresh during the episode, no inflation).
    let mut t = TestConn::established_sack();
    let data = pattern(0, 10 * 1460);
    t.send(200, &data);
    let sent = t.take_sent(200);
    assert_eq!(sent.len(), 10, "the initial window: {sent:?}");
    let seg = |i: u32| (L + 1 + i * 1460, L + 1 + (i + 1) * 1460);
    // Segments 0 and 2 are lost; 1, then 3..9 arrive, each SACKed.
    let mut blocks: Vec<(SeqNum, SeqNum)> = vec![seg(1)];
    let mut retransmitted = Vec::new();
    for (k, i) in (3..10).enumerate() {
        let at = 250 + k as u64;
        let mut b = vec![(seg(3).0, seg(i).1)];
        b.extend_from_slice(&blocks[..1]);
        t.inject(at, ACK.seq(R + 1).ack(L + 1).sack(&b));
        retransmitted.extend(t.take_sent(at).into_iter().map(|s| s.seq));
        blocks = vec![seg(1)];
    }
    assert_eq!(retransmitted, vec![seg(0).0, seg(2).0], "both holes resent");
    assert!(t.stats().in_recovery);
    assert_eq!(t.stats().rto_count, 0);
    assert_eq!(
        t.stats().cwnd,
        t.stats().ssthresh,
        "RFC 6675: cwnd = ssthresh"
    );
    // The ACK of everything ends the episode.
    t.inject(300, ACK.seq(R + 1).ack(L + 1 + 10 * 1460));
    assert!(!t.stats().in_recovery);
}

#[test]
fn established_sack_blocks_do_not_open_the_window_past_snd_una_plus_snd_wnd() {
    // RFC 9293 §3.8.6: the peer's window bounds the sequence space, from
    // SND.UNA; SACKed bytes leave the pipe (RFC 6675, for cwnd) but not the
    // window. Ten segments sent, the first lost, the other nine SACKed by
    // an ACK whose window ends where the flight does (a receiver whose
    // buffer fills, as Linux's does under memory pressure): only the hole
    // may go, no new data (Linux drops it as TcpExtBeyondWindow).
    let (mut t, _) = sack_flight(20);
    let right = nth(10).0;
    t.inject(
        250,
        ACK.seq(R + 1)
            .ack(L + 1)
            .win(10 * MSS as u16)
            .sack(&[(nth(1).0, nth(9).1)]),
    );
    for at in [250, 300, 400, 600] {
        for s in t.take_sent(at) {
            let end = s.seq + s.payload.len() as u32;
            assert!(
                end.before_eq(right),
                "sent past SND.UNA + SND.WND at {at} ms: {s:?}"
            );
        }
    }
}

// ---- RACK-TLP, PRR, undo (RFC 8985, RFC 6937, RFC 2883 §5, RFC 3522) -------

/// The `i`th full segment from L+1.
fn nth(i: u32) -> (SeqNum, SeqNum) {
    (L + 1 + i * MSS as u32, L + 1 + (i + 1) * MSS as u32)
}

/// ESTABLISHED with SACK, `n` full segments sent at 200 ms (checked).
fn sack_flight(n: usize) -> (TestConn, Vec<u8>) {
    let mut t = TestConn::established_sack();
    let data = pattern(0, n * MSS);
    t.send(200, &data);
    let sent = t.take_sent(200);
    assert_eq!(sent.len(), n.min(10), "the initial window: {sent:?}");
    (t, data)
}

#[test]
fn established_tlp_two_lost_at_the_tail_probe_then_rack_repairs_the_other() {
    // RFC 8985 §7: ten segments, the last two lost; ACKs of 1..8 come back.
    // The probe leaves 2·SRTT + 2 ms after the last ACK (SRTT 100 ms; Linux's
    // TCP_TIMEOUT_MIN), resending the last segment (no new data); no RTO,
    // cwnd unchanged by it. Its ACK SACKs it, and RACK marks the ninth lost
    // (§6.2): recovery repairs it.
    let (mut t, data) = sack_flight(10);
    for i in 0..8u32 {
        t.inject(300, ACK.seq(R + 1).ack(nth(i).1));
    }
    let cwnd = t.stats().cwnd;
    t.expect_deadline(502);
    t.expect_nothing(501);
    t.expect_sent(
        502,
        [PSH_ACK.seq(nth(9).0).ack(R + 1).data(&data[9 * MSS..])],
    );
    assert_eq!(t.stats().tlp_probes, 1);
    assert_eq!(t.stats().rto_count, 0);
    assert_eq!(t.stats().cwnd, cwnd, "a probe does not touch cwnd");
    // The probe's ACK, a round trip later: SACK of the tenth; the ninth
    // (sent at 200) is lost.
    t.inject(602, ACK.seq(R + 1).ack(nth(7).1).sack(&[nth(9)]));
    t.expect_sent(
        602,
        [ACK.seq(nth(8).0).ack(R + 1).data(&data[8 * MSS..9 * MSS])],
    );
    assert_eq!(t.stats().recovery_episodes, 1);
    t.inject(702, ACK.seq(R + 1).ack(nth(9).1));
    assert_eq!(t.stats().rto_count, 0);
    assert_eq!(t.stats().segments_retransmitted, 2);
    assert!(!t.stats().in_recovery);
}

#[test]
fn established_tlp_one_lost_at_the_tail_probe_waits_for_a_delayed_ack() {
    // RFC 8985 §7.2: with one segment outstanding the PTO adds the
    // worst-case delayed ACK: min(2·SRTT + 200 ms, RTO) after the last ACK
    // = min(400, 300) = 300 ms. Counted as a probe, not a timeout; its ACK
    // (exactly the probe's end) repairs the loss without a reduction.
    let (mut t, data) = sack_flight(10);
    for i in 0..9u32 {
        t.inject(300, ACK.seq(R + 1).ack(nth(i).1));
    }
    let (cwnd, ssthresh) = (t.stats().cwnd, t.stats().ssthresh);
    t.expect_nothing(599);
    t.expect_sent(
        600,
        [PSH_ACK.seq(nth(9).0).ack(R + 1).data(&data[9 * MSS..])],
    );
    assert_eq!(t.stats().tlp_probes, 1);
    assert_eq!(t.stats().rto_count, 0);
    // The timeout now guards the probe: RTO after it, no second probe.
    t.expect_deadline(900);
    t.inject(700, ACK.seq(R + 1).ack(nth(9).1));
    let s = t.stats();
    assert_eq!((s.cwnd, s.ssthresh), (cwnd, ssthresh), "cwnd not reset");
    assert_eq!((s.rto_count, s.tlp_recoveries), (0, 0));
    t.expect_no_deadline();
}

#[test]
fn established_tlp_sends_new_data_when_it_can() {
    // RFC 8985 §7.3: a probe is a new segment if the receive window allows
    // one (cwnd does not hold it back).
    let (mut t, data) = sack_flight(11);
    // No ACK comes: 2·SRTT + 2 ms after the flight left (the handshake's
    // SRTT, 100 ms), before the RTO at 500, the eleventh segment goes out.
    t.expect_nothing(401);
    t.expect_sent(
        402,
        [PSH_ACK.seq(nth(10).0).ack(R + 1).data(&data[10 * MSS..])],
    );
    assert_eq!(t.stats().tlp_probes, 1);
    t.expect_deadline(702);
}

#[test]
fn established_rack_finds_a_lost_retransmission_without_a_timeout() {
    // RFC 8985 §6: the first segment is lost, RACK resends it, and that
    // retransmission is lost too. Segments sent after it are SACKed a round
    // trip later: RACK marks it lost again (no RTO, unlike DupThresh).
    // Pacing off: PRR's sends leave at the ACKs' instants.
    let mut t = Opts::unpaced().established_sack();
    let data = pattern(0, 30 * MSS);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 10);
    let mut first_sends = Vec::new();
    let mut later = Vec::new();
    for i in 1..10u32 {
        let at = 300 + u64::from(i);
        t.inject(at, ACK.seq(R + 1).ack(L + 1).sack(&[(nth(1).0, nth(i).1)]));
        for s in t.take_sent(at) {
            if s.seq == L + 1 {
                first_sends.push(at);
            } else {
                later.push((at, s.seq));
            }
        }
    }
    assert_eq!(first_sends.len(), 1, "resent once by RACK: {first_sends:?}");
    assert!(!later.is_empty(), "PRR let new data out: {later:?}");
    // The new segments are SACKed 100 ms after they left; the resent first
    // segment is not: RACK (reo_wnd 0 in recovery) marks it lost again.
    let top = SeqNum::new(later.iter().map(|&(_, s)| s.get()).max().unwrap()) + MSS as u32;
    let at = later[0].0 + 100;
    t.inject(at, ACK.seq(R + 1).ack(L + 1).sack(&[(nth(1).0, top)]));
    let again: Vec<_> = t
        .take_sent(at)
        .into_iter()
        .filter(|s| s.seq == L + 1)
        .collect();
    assert_eq!(again.len(), 1, "the lost retransmission is resent");
    assert_eq!(t.stats().rto_count, 0);
    assert_eq!(t.stats().recovery_episodes, 1);
}

#[test]
fn established_prr_spreads_the_reduction_over_the_episode() {
    // RFC 6937: while the pipe is above ssthresh, sending follows
    // ssthresh / RecoverFS of what is delivered, so the flight falls to
    // ssthresh over one round trip instead of stopping, then bursting.
    // Pacing off: what PRR allows leaves at each ACK's instant.
    let mut t = Opts::unpaced().established_sack();
    let data = pattern(0, 60 * MSS);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 10);
    // A loss-free round trip doubles the window: 20 segments out.
    let mut out = 0;
    for i in 0..10u32 {
        t.inject(300, ACK.seq(R + 1).ack(nth(i).1));
        out += t.take_sent(300).len();
    }
    assert_eq!(out, 20);
    // The first of those 20 (segment 10) is lost; the other 19 are SACKed
    // one by one.
    let mut sent_per_ack = Vec::new();
    for i in 11..30u32 {
        let at = 400 + u64::from(i);
        t.inject(
            at,
            ACK.seq(R + 1).ack(nth(10).0).sack(&[(nth(11).0, nth(i).1)]),
        );
        sent_per_ack.push(t.take_sent(at).len());
    }
    let s = t.stats();
    assert!(s.in_recovery);
    let total: usize = sent_per_ack.iter().sum();
    // RecoverFS = 20 segments, 19 delivered: about 19·ssthresh/20 segments
    // (the retransmission among them), never a burst.
    let expect = (19 * s.ssthresh as usize).div_ceil(20 * MSS);
    assert!(
        total.abs_diff(expect) <= 1,
        "sent {total} over the episode, expected ~{expect}: {sent_per_ack:?}"
    );
    assert!(sent_per_ack.iter().all(|&n| n <= 2), "{sent_per_ack:?}");
    assert_eq!(s.rto_count, 0);
}

#[test]
fn established_dsack_of_every_retransmission_undoes_the_episode() {
    // RFC 2883 §5 / RFC 8985 §6.2: segment 0 was only delayed. RACK resends
    // it; the peer then reports it twice (a D-SACK below SND.UNA): the
    // reduction is undone and the reordering window widens.
    let (mut t, _) = sack_flight(10);
    let before = (t.stats().cwnd, t.stats().ssthresh);
    let mut resent = Vec::new();
    for i in 1..10u32 {
        t.inject(300, ACK.seq(R + 1).ack(L + 1).sack(&[(nth(1).0, nth(i).1)]));
        resent.extend(t.take_sent(300).into_iter().map(|s| s.seq));
    }
    assert_eq!(resent, vec![L + 1]);
    assert!(t.stats().in_recovery);
    assert!(t.stats().cwnd < before.0);
    // The original arrives, then the retransmission: ACK of all, D-SACK.
    t.inject(350, ACK.seq(R + 1).ack(nth(9).1));
    t.inject(400, ACK.seq(R + 1).ack(nth(9).1).sack(&[nth(0)]));
    let s = t.stats();
    assert_eq!(s.spurious_undos, 1);
    assert_eq!(s.ssthresh, before.1, "ssthresh restored");
    assert!(
        s.cwnd >= before.0,
        "cwnd restored: {} < {}",
        s.cwnd,
        before.0
    );
    assert_eq!(s.ca_state, utcp_proto::CaState::Open);
    assert_eq!(s.reo_wnd_mult, 2);
}

#[test]
fn established_ts_eifel_undoes_a_spurious_timeout() {
    // RFC 3522: after an RTO the ACK echoes the TSval of the original
    // transmission (sent at 200: TSval 1200), not of the retransmission
    // (at 500: 1500): the original arrived, the timeout was spurious.
    // cwnd and ssthresh come back and go-back-N stops.
    let mut t = TestConn::established_ts();
    let data = pattern(0, 3 * 1448);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 3);
    let before = (t.stats().cwnd, t.stats().ssthresh);
    let sent = t.take_sent(500);
    assert_eq!(sent.len(), 1, "RTO: one segment (cwnd = 1 MSS): {sent:?}");
    assert_eq!(t.stats().cwnd, 1448);
    t.inject(
        520,
        ACK.seq(R + 1).ack(L + 1 + 1448).ts(5_100, TS_OFFSET + 200),
    );
    let s = t.stats();
    assert_eq!(s.spurious_undos, 1);
    assert_eq!((s.cwnd, s.ssthresh), before);
    assert_eq!(s.lost_bytes, 0, "no more go-back-N");
    assert_eq!(s.ca_state, utcp_proto::CaState::Open);
}

#[test]
fn established_fin_against_a_zero_window_is_held_then_probed() {
    // RFC 9293 §3.8.6.1: the FIN takes one byte of sequence space, so a
    // shut window holds it (as Linux's tcp_snd_wnd_test); the persist
    // timer sends it as the probe, and its ACK moves us on.
    let mut t = TestConn::established();
    t.inject(150, ACK.seq(R + 1).ack(L + 1).win(0));
    t.shutdown(200);
    t.expect_state(State::FinWait1);
    t.expect_nothing(200);
    // Persist timer: max(RTO, rto_min) = 300 ms after the FIN was held.
    t.expect_deadline(500);
    t.expect_sent(500, [FIN_ACK.seq(L + 1).ack(R + 1)]);
    t.inject(550, ACK.seq(R + 1).ack(L + 2).win(0));
    t.expect_state(State::FinWait2);
    assert_eq!(t.stats().rto_count, 0);
}

// ---- Pacing (Linux's tcp_update_pacing_rate / tcp_pacing_check) -------------
//
// The fixture's SRTT is 100 ms (the handshake's) and cwnd the initial
// window, 10 segments: in slow start the rate is 2 · cwnd / SRTT. The
// initial window leaves at once (the clock starts with the tenth data
// segment, as Linux's data_segs_out >= 10); a segment may then leave while
// the clock is less than a burst (1 ms at the rate, at least 2 segments)
// ahead of now.

/// The fixture with `n` segments queued at 200 ms, the initial window of
/// ten sent (checked) and acknowledged at 300 ms by one stretch ACK: cwnd
/// is then 20 segments and the rate 2 · 29 200 B / 100 ms = 584 000 B/s,
/// 2.5 ms per segment, a burst of two segments (5 ms).
fn paced_after_initial_window(opts: Opts, n: usize) -> (TestConn, Vec<u8>) {
    let mut t = opts.established();
    let data = pattern(0, n * MSS);
    t.send(200, &data);
    assert_eq!(
        t.take_sent(200).len(),
        10,
        "the initial window is not paced"
    );
    if t.opts.cfg.pacing {
        assert_eq!(t.stats().pacing_rate, 14_600 * 2 * 10);
    }
    t.inject(300, ACK.seq(R + 1).ack(nth(10).0));
    (t, data)
}

#[test]
fn established_pacing_spreads_a_window_at_the_rate() {
    let (mut t, data) = paced_after_initial_window(Opts::default(), 40);
    assert_eq!(t.stats().cwnd, 20 * MSS as u32);
    assert_eq!(t.stats().pacing_rate, 584_000);
    // At 300: the clock (205 ms, moved by the tenth segment) is behind, so
    // the first segment's 2.5 ms counts half (Linux's credit for a late
    // clock): 301.25; the next two leave within the burst (303.75, 306.25
    // ≥ 305: held). Then the Pace timer lets one segment go each 2.5 ms,
    // half a burst before the clock.
    let sent = t.take_sent_timed(300);
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|&(at, _)| at == 300_000));
    t.expect_deadline_us(303_750);
    assert!(t.stats().pacing_held > 0);
    let rest = t.take_sent_timed(400);
    let times: Vec<u64> = rest.iter().map(|&(at, _)| at).collect();
    let want: Vec<u64> = (0..17).map(|k| 303_750 + 2_500 * k).collect();
    assert_eq!(times, want, "one segment each 2.5 ms");
    // In order, and every byte of the grown window (20 segments) sent.
    for (i, (_, s)) in sent.iter().chain(rest.iter()).enumerate() {
        assert_eq!(s.seq, nth(10 + i as u32).0);
        assert_eq!(&s.payload[..], &data[(10 + i) * MSS..(11 + i) * MSS]);
    }
}

#[test]
fn established_pacing_timer_is_the_deadline() {
    let (mut t, _) = paced_after_initial_window(Opts::default(), 40);
    assert_eq!(t.take_sent(300).len(), 3);
    // Before the RTO (600) and the probe timeout (500): the Pace timer.
    t.expect_deadline_us(303_750);
    // The segment leaves at the deadline, not before; the next deadline is
    // the clock's next half burst.
    let at = t.take_sent_timed(304);
    assert_eq!(at.iter().map(|&(w, _)| w).collect::<Vec<_>>(), [303_750]);
    t.expect_deadline_us(306_250);
}

#[test]
fn established_pacing_rate_is_twice_cwnd_in_slow_start_and_1_2_times_after() {
    // No RTT, no pacing.
    let t = TestConn::syn_sent();
    assert_eq!(t.stats().pacing_rate, 0);
    // Slow start (cwnd < ssthresh / 2): 200 % of cwnd / SRTT.
    let t = TestConn::established_sack();
    let s = t.stats();
    assert_eq!(s.srtt, Some(Duration::from_millis(100)));
    assert_eq!(s.pacing_rate, 2 * 14_600 * 10);
    // A SACK recovery episode: cwnd = ssthresh (0.7 of the flight of ten,
    // RFC 9438 §4.6), so 120 % of max(cwnd, in flight) / SRTT.
    let (mut t, _) = sack_flight(10);
    for i in 1..=3 {
        t.inject(
            300 + u64::from(i),
            ACK.seq(R + 1).ack(nth(0).0).sack(&[(nth(1).0, nth(i).1)]),
        );
    }
    t.discard_sent();
    let s = t.stats();
    assert_eq!(s.fast_retransmits, 1);
    assert_eq!(s.cwnd, s.ssthresh);
    let srtt_us = s.srtt.unwrap().as_micros() as u64;
    let window = u64::from(s.cwnd.max(s.unacked));
    assert_eq!(s.pacing_rate, window * 120 * 10_000 / srtt_us);
}

#[test]
fn established_pacing_never_delays_a_retransmission() {
    // Ten out at 200 (the clock at 205 after the tenth); five ACKed at 300:
    // cwnd 15 segments, 438 000 B/s, 3.33 ms per segment, a burst of
    // 6.67 ms: three new segments leave, the clock is then at 308.33.
    let mut t = TestConn::established();
    let data = pattern(0, 40 * MSS);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 10);
    t.inject(300, ACK.seq(R + 1).ack(nth(5).0));
    assert_eq!(t.take_sent(300).len(), 3);
    let held = t.stats().pacing_held;
    // Segment 5 was lost; three duplicate ACKs at 301. Limited transmit
    // (RFC 3042) would send new data: the clock holds it; the fast
    // retransmission leaves at once.
    let dup = ACK.seq(R + 1).ack(nth(5).0);
    t.inject(301, dup.clone());
    t.expect_nothing(301);
    assert!(
        t.stats().pacing_held > held,
        "limited transmit waits for the clock"
    );
    t.inject(301, dup.clone());
    t.expect_nothing(301);
    t.inject(301, dup);
    t.expect_sent(
        301,
        [ACK.seq(nth(5).0).ack(R + 1).data(&data[5 * MSS..6 * MSS])],
    );
    assert_eq!(t.stats().fast_retransmits, 1);
}

#[test]
fn established_pacing_leaves_a_window_of_ten_segments_or_fewer_unpaced() {
    // Segment 0 of ten is lost; three SACKs start recovery, and cwnd ends at
    // ssthresh = 0.7 of the flight (RFC 9438 §4.6): seven segments. A
    // window of ten segments or fewer is not paced (it may leave as the
    // initial window does, RFC 6928), so once the repair and the rest are
    // acknowledged the whole window leaves at once. Paced at 120 % of
    // cwnd / SRTT (a segment each 11.9 ms here), three left and the clock
    // held the rest; over a path whose SRTT the peer's delayed ACKs
    // stretch, such a window went out a segment or two per delayed ACK.
    let (mut t, data) = sack_flight(40);
    let mut early = Vec::new();
    for i in 1..=3 {
        t.inject(
            300 + u64::from(i),
            ACK.seq(R + 1).ack(nth(0).0).sack(&[(nth(1).0, nth(i).1)]),
        );
        early.extend(t.take_sent(300 + u64::from(i)));
    }
    assert_eq!(t.stats().fast_retransmits, 1);
    let new = early.iter().filter(|s| s.seq != nth(0).0).count();
    let held = t.stats().pacing_held;
    let next = nth(10).0 + (new * MSS) as u32;
    t.inject(400, ACK.seq(R + 1).ack(next));
    let s = t.stats();
    assert_eq!(s.cwnd, s.ssthresh);
    assert!(s.cwnd <= 10 * MSS as u32, "cwnd {}", s.cwnd);
    let sent = t.take_sent_timed(400);
    assert_eq!(sent.len(), s.cwnd as usize / MSS, "the whole window");
    assert!(sent.iter().all(|&(at, _)| at == 400_000), "{sent:?}");
    assert_eq!(t.stats().pacing_held, held, "nothing held by the clock");
    for (i, (_, seg)) in sent.iter().enumerate() {
        let k = (next - nth(0).0) as usize / MSS + i;
        assert_eq!(&seg.payload[..], &data[k * MSS..(k + 1) * MSS]);
    }
}

#[test]
fn established_pacing_off_sends_the_whole_window_at_once() {
    let (mut t, _) = paced_after_initial_window(Opts::unpaced(), 40);
    let sent = t.take_sent_timed(300);
    assert_eq!(sent.len(), 20);
    assert!(sent.iter().all(|&(at, _)| at == 300_000));
    let s = t.stats();
    assert_eq!((s.pacing_rate, s.pacing_held), (0, 0));
}

#[test]
fn established_frto_finds_a_spurious_timeout_without_timestamps() {
    // RFC 5682 §2.1: the RTO resends the first segment only (cwnd 1 MSS);
    // its ACK advances SND.UNA, so two new segments go instead of the rest
    // of the window (step 2b); the next ACK advances SND.UNA again: the
    // originals were arriving, the timeout was spurious (step 3b), undone.
    let mut t = Opts::unpaced().established();
    let data = pattern(0, 14 * MSS);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 10);
    let before = (t.stats().cwnd, t.stats().ssthresh);
    // RTO at 500: the first segment again.
    t.expect_sent(500, [ACK.seq(L + 1).ack(R + 1).data(&data[..MSS])]);
    // The ACK of the first two originals (delayed, not lost).
    t.inject(510, ACK.seq(R + 1).ack(nth(1).1));
    let sent = t.take_sent(510);
    let seqs: Vec<_> = sent.iter().map(|s| s.seq).collect();
    assert_eq!(
        seqs,
        vec![nth(10).0, nth(11).0],
        "two new segments, no go-back-N"
    );
    t.inject(520, ACK.seq(R + 1).ack(nth(4).1));
    let s = t.stats();
    assert_eq!(s.spurious_undos, 1);
    assert_eq!((s.cwnd.max(before.0), s.ssthresh), (s.cwnd, before.1));
    assert_eq!(s.lost_bytes, 0);
    let resent = t
        .take_sent(520)
        .into_iter()
        .filter(|s| s.seq.before(nth(10).0))
        .count();
    assert_eq!(resent, 0, "nothing of the old window resent");
}

#[test]
fn established_frto_a_duplicate_ack_means_the_timeout_was_real() {
    // RFC 5682 §2.1 step 3a: after the two new segments a duplicate ACK
    // arrives: go-back-N resumes.
    let mut t = Opts::unpaced().established();
    let data = pattern(0, 14 * MSS);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 10);
    t.expect_sent(500, [ACK.seq(L + 1).ack(R + 1).data(&data[..MSS])]);
    t.inject(510, ACK.seq(R + 1).ack(nth(0).1));
    assert_eq!(t.take_sent(510).len(), 2);
    t.inject(520, ACK.seq(R + 1).ack(nth(0).1));
    assert_eq!(t.stats().spurious_undos, 0);
    // The old window is resent from SND.UNA, as cwnd allows.
    let resent: Vec<_> = t.take_sent(520).into_iter().map(|s| s.seq).collect();
    assert_eq!(resent.first(), Some(&nth(1).0), "{resent:?}");
}

// ---- RFC 9293 §3.10.7.4 fifth step: the send window ----------------------------------

#[test]
fn established_an_ack_on_an_old_segment_moves_the_window_with_snd_una() {
    // The peer's data segment R+101 arrived (R+1..R+101 lost) with a window
    // of 2,920: SND.WL1 = R+101. Its retransmission of R+1 (SEG.SEQ below
    // SND.WL1) acknowledges our first segment, with the window to the same
    // right edge. RFC 9293's WL1 rule alone would keep SND.WND = 2,920
    // while SND.UNA moves: SND.UNA + SND.WND would lie 1,460 bytes past
    // the edge the peer advertised. The window moves with any ACK that
    // moves SND.UNA (Linux's tcp_may_update_window).
    let mut t = Opts {
        peer_window: 2_920,
        ..Opts::unpaced()
    }
    .established();
    t.inject(
        150,
        PSH_ACK
            .seq(R + 101)
            .ack(L + 1)
            .win(2_920)
            .data(&pattern(100, 100)),
    );
    t.expect_sent(150, [ACK.seq(L + 1).ack(R + 1)]);
    let data = pattern(0, 3 * 1460);
    t.send(200, &data);
    t.expect_sent(
        200,
        [
            ACK.seq(L + 1).ack(R + 1).data(&data[..1460]),
            ACK.seq(L + 1461).ack(R + 1).data(&data[1460..2920]),
        ],
    );
    t.inject(
        250,
        PSH_ACK
            .seq(R + 1)
            .ack(L + 1461)
            .win(1_460)
            .data(&pattern(0, 100)),
    );
    let sent = t.take_sent(250);
    assert!(
        sent.iter().all(|s| s.payload.is_empty()),
        "sent beyond the peer's window: {sent:?}"
    );
    assert_eq!(sent.last().map(|s| s.ack), Some(R + 201));
    assert_eq!(t.stats().send_window, 1_460);
    // The window opens: the third segment goes.
    t.inject(300, ACK.seq(R + 201).ack(L + 2921).win(2_920));
    t.expect_sent(
        300,
        [PSH_ACK.seq(L + 2921).ack(R + 201).data(&data[2920..])],
    );
}

#[test]
fn established_sack_after_a_timeout_no_sliver_of_cwnd_is_resent() {
    // We hold the peer's out-of-order data, so our data segments carry a
    // SACK block and have 1,448 bytes of room, not SMSS (1,460). After the
    // timeout cwnd is 1 SMSS: the first retransmission takes 1,448 of it;
    // the 12 bytes left are no room for a segment (RFC 9293 §3.8.6.2.1,
    // and Linux counts cwnd in packets): nothing more leaves until the ACK.
    let mut t = Opts::unpaced().established_sack();
    t.inject(
        150,
        PSH_ACK.seq(R + 101).ack(L + 1).data(&pattern(100, 100)),
    );
    let _ = t.take_sent(150);
    let data = pattern(0, 4 * 1448);
    t.send(200, &data);
    let first = t.take_sent(200);
    assert_eq!(first.len(), 4);
    assert!(first.iter().all(|s| s.payload.len() == 1448), "{first:?}");
    // The peer SACKs the last segment; RACK resends the others, all lost.
    t.inject(
        210,
        ACK.seq(R + 1)
            .ack(L + 1)
            .sack(&[(L + 1 + 3 * 1448, L + 1 + 4 * 1448)]),
    );
    let mut later = Vec::new();
    for at in (220..3000).step_by(10) {
        later.extend(t.take_sent(at));
        if t.stats().rto_count > 0 && !later.is_empty() {
            break;
        }
    }
    assert!(t.stats().rto_count >= 1, "{:?}", t.stats());
    let data_segs: Vec<_> = later.iter().filter(|s| !s.payload.is_empty()).collect();
    assert!(!data_segs.is_empty());
    assert!(
        data_segs.iter().all(|s| s.payload.len() >= 1000),
        "a sliver was sent: {data_segs:?}"
    );
}

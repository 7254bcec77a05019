//! When in-order data is acknowledged (RFC 9293 §3.8.6.3, RFC 5681 §4.2,
//! RFC 1122 §4.2.3.2), as Linux: quick ACKs for a connection's first
//! segments and after out-of-order data, then one ACK for every second
//! full-sized segment (one per batch), the delayed-ACK timer (40 ms) for
//! less, a reply or a read carrying the owed ACK, and interactive
//! (pingpong) mode for a connection that answers within the timer.
//!
//! The fixture is ESTABLISHED at 100 ms (active open, RTT 100 ms, no
//! timestamps), MSS 1460, pacing off; our next sequence number is L+1, the
//! peer's R+1.

mod common;

use common::*;
use std::time::Duration;
use utcp_proto::{Config, ConfigError};

const MSS: usize = 1460;

fn est() -> TestConn {
    Opts::unpaced().established()
}

/// The peer's full-sized segment number `i` (from R+1).
fn full(i: usize) -> Seg {
    ACK.seq(R + 1 + (i * MSS) as u32)
        .ack(L + 1)
        .data(&pattern(i * MSS, MSS))
}

/// Sends the peer's segments 0..16 one at a time, each ACKed at once in
/// quickack mode, and reads them: the quick ACKs are spent. Returns the
/// next segment number; the clock stands at 300 ms.
fn spend_quickacks(t: &mut TestConn) -> usize {
    for i in 0..16 {
        t.inject(200 + i as u64, full(i));
        t.expect_sent(
            200 + i as u64,
            [ACK.seq(L + 1).ack(R + 1 + ((i + 1) * MSS) as u32)],
        );
    }
    assert_eq!(t.recv_all().len(), 16 * MSS);
    t.expect_nothing(300);
    assert_eq!(t.stats().quick_acks, 16);
    assert!(!t.conn.quickack(), "the quick ACKs are spent");
    16
}

#[test]
fn ack_policy_first_segments_are_acked_at_once_then_one_waits_for_the_timer() {
    let mut t = est();
    let next = spend_quickacks(&mut t);
    // One full segment: at most one unacknowledged, so the ACK waits.
    t.inject(300, full(next));
    t.expect_nothing(339);
    let end = R + 1 + ((next + 1) * MSS) as u32;
    t.expect_sent(340, [ACK.seq(L + 1).ack(end)]);
    assert_eq!(t.stats().delayed_acks, 1);
}

#[test]
fn ack_policy_every_second_full_segment_is_acked_at_once() {
    let mut t = est();
    let next = spend_quickacks(&mut t);
    t.inject(300, full(next));
    t.expect_nothing(301);
    // The second full segment: two unacknowledged, the ACK goes now.
    t.inject(302, full(next + 1));
    let end = R + 1 + ((next + 2) * MSS) as u32;
    t.expect_sent(302, [ACK.seq(L + 1).ack(end)]);
    // The timer was stopped by that ACK.
    t.expect_nothing(400);
    assert_eq!(t.stats().delayed_acks, 0);
}

#[test]
fn ack_policy_four_in_order_full_segments_in_one_batch_get_exactly_one_ack() {
    let mut t = est();
    let n = spend_quickacks(&mut t);
    t.inject_batch(300, [full(n), full(n + 1), full(n + 2), full(n + 3)]);
    t.expect_sent(300, [ACK.seq(L + 1).ack(R + 1 + ((n + 4) * MSS) as u32)]);
    t.expect_nothing(400);
}

#[test]
fn ack_policy_four_out_of_order_segments_in_one_batch_still_get_four_acks() {
    let mut t = est();
    let n = spend_quickacks(&mut t);
    // Segment n is lost; the next four arrive in one batch.
    t.inject_batch(300, [full(n + 1), full(n + 2), full(n + 3), full(n + 4)]);
    let dup = ACK.seq(L + 1).ack(R + 1 + (n * MSS) as u32);
    t.expect_sent(300, [dup.clone(), dup.clone(), dup.clone(), dup]);
    // The hole fills: its own immediate ACK.
    t.inject(310, full(n));
    t.expect_sent(310, [ACK.seq(L + 1).ack(R + 1 + ((n + 5) * MSS) as u32)]);
}

#[test]
fn ack_policy_out_of_order_data_puts_the_connection_in_quickack_mode() {
    let mut t = est();
    let n = spend_quickacks(&mut t);
    t.inject(300, full(n + 1));
    t.expect_sent(300, [ACK.seq(L + 1).ack(R + 1 + (n * MSS) as u32)]);
    assert!(t.conn.quickack(), "quickack mode after out-of-order data");
    t.inject(310, full(n));
    t.expect_sent(310, [ACK.seq(L + 1).ack(R + 1 + ((n + 2) * MSS) as u32)]);
    // A single in-order segment after it is ACKed at once, not delayed.
    let quick = t.stats().quick_acks;
    t.inject(320, full(n + 2));
    t.expect_sent(320, [ACK.seq(L + 1).ack(R + 1 + ((n + 3) * MSS) as u32)]);
    assert_eq!(t.stats().quick_acks, quick + 1);
}

#[test]
fn ack_policy_a_duplicate_puts_the_connection_in_quickack_mode() {
    let mut t = est();
    let n = spend_quickacks(&mut t);
    // A retransmission of data already acknowledged: its own ACK at once.
    t.inject(300, full(n - 1));
    t.expect_sent(300, [ACK.seq(L + 1).ack(R + 1 + (n * MSS) as u32)]);
    assert!(t.conn.quickack());
    t.inject(310, full(n));
    t.expect_sent(310, [ACK.seq(L + 1).ack(R + 1 + ((n + 1) * MSS) as u32)]);
}

#[test]
fn ack_policy_a_reply_within_the_timer_carries_the_ack() {
    let mut t = est();
    // The first request is ACKed at once (quickack mode); its reply, within
    // the timer, makes the connection interactive.
    t.inject(200, PSH_ACK.seq(R + 1).ack(L + 1).data(b"request"));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 8)]);
    assert_eq!(t.recv_all(), b"request");
    t.send(202, b"response");
    t.expect_sent(202, [PSH_ACK.seq(L + 1).ack(R + 8).data(b"response")]);
    // The next request: no pure ACK, on arrival or on the read; the reply
    // written 5 ms later carries it.
    t.inject(300, PSH_ACK.seq(R + 8).ack(L + 9).data(b"request"));
    t.expect_nothing(301);
    assert_eq!(t.recv_all(), b"request");
    t.expect_nothing(305);
    t.send(305, b"response");
    t.expect_sent(305, [PSH_ACK.seq(L + 9).ack(R + 15).data(b"response")]);
    t.expect_nothing(500);
    assert_eq!(t.stats().delayed_acks, 0);
}

#[test]
fn ack_policy_a_read_that_empties_the_buffer_of_a_small_segment_acks_it() {
    let mut t = est();
    let n = spend_quickacks(&mut t);
    t.inject(
        300,
        PSH_ACK
            .seq(R + 1 + (n * MSS) as u32)
            .ack(L + 1)
            .data(b"hello"),
    );
    t.expect_nothing(310);
    // Not interactive: the read that drains the small segment sends its ACK
    // (Linux's ICSK_ACK_PUSHED in tcp_cleanup_rbuf).
    assert_eq!(t.recv_all(), b"hello");
    t.expect_sent(310, [ACK.seq(L + 1).ack(R + 6 + (n * MSS) as u32)]);
    assert_eq!(t.stats().delayed_acks, 0);
}

#[test]
fn ack_policy_interactive_mode_ends_when_the_timer_fires() {
    let mut t = est();
    // A reply within the timer makes the connection interactive: even with
    // quick ACKs left, an ACK waits for data.
    t.inject(200, PSH_ACK.seq(R + 1).ack(L + 1).data(b"ping"));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 5)]);
    t.send(201, b"pong");
    t.expect_sent(201, [PSH_ACK.seq(L + 1).ack(R + 5).data(b"pong")]);
    t.inject(300, PSH_ACK.seq(R + 5).ack(L + 5).data(b"ping"));
    t.expect_nothing(339);
    assert!(!t.conn.quickack(), "interactive: no quick ACKs");
    // No reply came: the timer sends the ACK and ends interactive mode.
    t.expect_sent(340, [ACK.seq(L + 5).ack(R + 9)]);
    assert_eq!(t.stats().delayed_acks, 1);
    assert!(t.conn.quickack(), "quick ACKs are back");
    t.inject(400, PSH_ACK.seq(R + 9).ack(L + 5).data(b"ping"));
    t.expect_sent(400, [ACK.seq(L + 5).ack(R + 13)]);
}

#[test]
fn ack_policy_a_read_adds_no_ack_per_batch() {
    let mut t = est();
    let n = spend_quickacks(&mut t);
    t.inject_batch(300, [full(n), full(n + 1)]);
    t.expect_sent(300, [ACK.seq(L + 1).ack(R + 1 + ((n + 2) * MSS) as u32)]);
    // The window the peer sees is more than half the buffer: reading opens
    // it without a window update of its own (the next ACK carries it).
    assert_eq!(t.recv_all().len(), 2 * MSS);
    t.expect_nothing(301);
}

#[test]
fn ack_policy_a_window_update_after_a_read_merges_with_the_owed_ack() {
    let cfg = Config {
        pacing: false,
        recv_buffer: 8 * MSS,
        recv_buffer_max: 8 * MSS,
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        ..Opts::default()
    }
    .established();
    // Quick ACKs: 8 × MSS / (2 × MSS) = 4.
    for i in 0..4 {
        t.inject(200 + i as u64, full(i));
        t.expect_sent(
            200 + i as u64,
            [ACK.seq(L + 1).ack(R + 1 + ((i + 1) * MSS) as u32)],
        );
    }
    // Two more fill 6 of 8 segments; the one after waits for its ACK.
    t.inject_batch(210, [full(4), full(5)]);
    t.expect_sent(210, [ACK.seq(L + 1).ack(R + 1 + (6 * MSS) as u32)]);
    t.inject(220, full(6));
    t.expect_nothing(221);
    // The read opens the window from 1 segment to 8: one segment leaves,
    // the window update and the owed ACK together.
    assert_eq!(t.recv_all().len(), 7 * MSS);
    let sent = t.take_sent(221);
    assert_eq!(sent.len(), 1, "one ACK, not two: {sent:?}");
    assert_eq!(sent[0].ack, R + 1 + (7 * MSS) as u32);
    t.expect_nothing(400);
}

#[test]
fn ack_policy_set_quickack_sends_the_owed_ack() {
    let mut t = est();
    let n = spend_quickacks(&mut t);
    t.inject(300, full(n));
    t.expect_nothing(301);
    t.conn.set_quickack(true);
    assert!(t.conn.take_flush_hint(), "the runtime is told to flush");
    // The next pass (here after a read, which by itself would not ACK a
    // single full segment) sends it.
    assert_eq!(t.recv_all().len(), MSS);
    t.expect_sent(301, [ACK.seq(L + 1).ack(R + 1 + ((n + 1) * MSS) as u32)]);
    assert_eq!(t.stats().delayed_acks, 0);
    // And the next single segments are ACKed at once again.
    t.inject(310, full(n + 1));
    t.expect_sent(310, [ACK.seq(L + 1).ack(R + 1 + ((n + 2) * MSS) as u32)]);
}

#[test]
fn ack_policy_a_silence_longer_than_the_rto_brings_quick_acks_back() {
    let mut t = est();
    let n = spend_quickacks(&mut t);
    // RTO is 300 ms here (RTT 100 ms); the next segment comes 1 s later.
    t.inject(1_300, full(n));
    t.expect_sent(1_300, [ACK.seq(L + 1).ack(R + 1 + ((n + 1) * MSS) as u32)]);
}

#[test]
fn ack_policy_delayed_ack_zero_acks_every_batch() {
    let cfg = Config {
        pacing: false,
        delayed_ack: Duration::ZERO,
        ..Config::default()
    };
    let mut t = Opts {
        cfg,
        ..Opts::default()
    }
    .established();
    for i in 0..20 {
        t.inject(200 + i as u64, full(i));
        t.expect_sent(
            200 + i as u64,
            [ACK.seq(L + 1).ack(R + 1 + ((i + 1) * MSS) as u32)],
        );
    }
    assert_eq!(t.stats().quick_acks, 0, "nothing would have waited");
}

#[test]
fn ack_policy_a_delayed_ack_of_500_ms_or_more_is_rejected() {
    let bad = Config {
        delayed_ack: Duration::from_millis(500),
        ..Config::default()
    };
    assert!(matches!(bad.validate(), Err(ConfigError::Inconsistent(_))));
    let ok = Config {
        delayed_ack: Duration::from_millis(499),
        ..Config::default()
    };
    assert_eq!(ok.validate(), Ok(()));
}

#[test]
fn ack_policy_a_fin_is_acked_at_once() {
    let mut t = est();
    let n = spend_quickacks(&mut t);
    t.inject(300, FIN_ACK.seq(R + 1 + (n * MSS) as u32).ack(L + 1));
    t.expect_sent(300, [ACK.seq(L + 1).ack(R + 2 + (n * MSS) as u32)]);
}

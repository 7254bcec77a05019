//! Nagle's algorithm (RFC 896, RFC 1122 §4.2.3.4) with Minshall's
//! refinement, as Linux: a sub-MSS segment at the tail of the queue waits
//! while an earlier sub-MSS segment is unacknowledged. On by default;
//! `set_nodelay(true)` turns it off.
//!
//! The fixture is ESTABLISHED at 100 ms, MSS 1460, pacing off (so that only
//! Nagle holds anything back); our next sequence number is L+1, the peer's R+1.

mod common;

use common::*;
use utcp_proto::State;

const MSS: usize = 1460;

fn est() -> TestConn {
    Opts::unpaced().established()
}

#[test]
fn established_nagle_holds_a_second_small_write_until_the_ack() {
    let mut t = est();
    assert!(!t.conn.nodelay(), "on by default");
    t.send(1_000, b"a");
    t.expect_sent(1_000, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"a")]);
    t.send(1_001, b"b");
    t.expect_nothing(1_001);
    t.send(1_002, b"c");
    t.expect_nothing(1_002);
    assert!(t.stats().nagle_held >= 2);
    // The ACK of "a" releases what waited, as one segment.
    t.inject(1_100, ACK.seq(R + 1).ack(L + 2));
    t.expect_sent(1_100, [PSH_ACK.seq(L + 2).ack(R + 1).data(b"bc")]);
}

#[test]
fn established_nodelay_sends_every_small_write_at_once() {
    let mut t = est();
    t.conn.set_nodelay(true);
    t.send(1_000, b"a");
    t.expect_sent(1_000, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"a")]);
    t.send(1_001, b"b");
    t.expect_sent(1_001, [PSH_ACK.seq(L + 2).ack(R + 1).data(b"b")]);
    assert_eq!(t.stats().nagle_held, 0);
}

#[test]
fn established_set_nodelay_releases_a_held_segment() {
    let mut t = est();
    t.send(1_000, b"a");
    t.expect_sent(1_000, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"a")]);
    t.send(1_001, b"b");
    t.expect_nothing(1_001);
    t.conn.set_nodelay(true);
    assert!(t.conn.take_flush_hint(), "the runtime is told to flush");
    t.expect_nothing(1_001); // no input yet: the next poll sends it
    t.send(1_002, b"c");
    t.expect_sent(1_002, [PSH_ACK.seq(L + 2).ack(R + 1).data(b"bc")]);
}

#[test]
fn established_nagle_never_holds_a_full_segment() {
    let mut t = est();
    t.send(1_000, b"a");
    t.expect_sent(1_000, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"a")]);
    // "a" is out: a full segment still goes; the small tail waits.
    let data = pattern(0, MSS + 10);
    t.send(1_001, &data);
    t.expect_sent(1_001, [ACK.seq(L + 2).ack(R + 1).data(&data[..MSS])]);
    t.inject(1_100, ACK.seq(R + 1).ack(L + 2));
    // "a" acknowledged: the tail goes (the full segment is not small).
    t.expect_sent(
        1_100,
        [PSH_ACK
            .seq(L + 2 + MSS as u32)
            .ack(R + 1)
            .data(&data[MSS..])],
    );
}

#[test]
fn established_minshall_lets_a_small_tail_follow_full_segments() {
    let mut t = est();
    // No small segment outstanding: the tail goes with the full one.
    let data = pattern(0, MSS + 10);
    t.send(1_000, &data);
    t.expect_sent(
        1_000,
        [
            ACK.seq(L + 1).ack(R + 1).data(&data[..MSS]),
            PSH_ACK
                .seq(L + 1 + MSS as u32)
                .ack(R + 1)
                .data(&data[MSS..]),
        ],
    );
    assert_eq!(t.stats().nagle_held, 0);
}

#[test]
fn established_nagle_never_holds_the_fin() {
    let mut t = est();
    t.send(1_000, b"a");
    t.expect_sent(1_000, [PSH_ACK.seq(L + 1).ack(R + 1).data(b"a")]);
    t.send(1_001, b"b");
    t.expect_nothing(1_001);
    // A shutdown: the last segment carries the FIN and goes at once.
    t.shutdown(1_002);
    t.expect_sent(1_002, [FIN_PSH_ACK.seq(L + 2).ack(R + 1).data(b"b")]);
    t.expect_state(State::FinWait1);
}

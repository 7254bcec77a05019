//! Congestion control at the segment level: CUBIC (RFC 9438) by default and
//! NewReno (RFC 5681 / 6582) when selected, their back-off on fast
//! retransmit and RTO, restart after idle (RFC 5681 §4.1), and choosing the
//! controller per connection.
//!
//! The fixture is ESTABLISHED at 100 ms with RTO 300 ms, MSS 1460 and the
//! peer's window 65 535 (see `state_established.rs`).

mod common;

use common::*;
use utcp_proto::{Config, CongestionAlgorithm, Error, SlowStartExit};

const MSS: usize = 1460;

/// The fixture's options with `congestion` selected and pacing off: these
/// tests count what cwnd lets out at one instant, which pacing (tested in
/// `state_established.rs`) would spread over the round trip.
fn with(congestion: CongestionAlgorithm) -> Opts {
    Opts {
        cfg: Config {
            congestion,
            pacing: false,
            ..Config::default()
        },
        ..Opts::default()
    }
}

/// Ten segments out (the initial window, all that is queued), the first
/// lost; the third duplicate ACK retransmits it with a flight of ten
/// segments, equal to cwnd. Returns the fixture after that.
fn fast_retransmit_of_10(mut t: TestConn) -> TestConn {
    let data = pattern(0, 10 * MSS);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 10);
    // Nothing new for limited transmit (RFC 3042) to send.
    t.inject(300, ACK.seq(R + 1).ack(L + 1));
    t.inject(301, ACK.seq(R + 1).ack(L + 1));
    t.expect_nothing(301);
    t.inject(302, ACK.seq(R + 1).ack(L + 1));
    t.expect_sent(302, [ACK.seq(L + 1).ack(R + 1).data(&data[..MSS])]);
    assert_eq!(t.stats().fast_retransmits, 1);
    t
}

#[test]
fn cubic_is_the_default() {
    let t = TestConn::established();
    assert_eq!(t.stats().congestion, CongestionAlgorithm::Cubic);
    assert_eq!(t.stats().slow_start_exit, SlowStartExit::None);
    assert_eq!(Config::default().congestion, CongestionAlgorithm::Cubic);
}

#[test]
fn cubic_fast_retransmit_sets_ssthresh_to_0_7_of_the_flight() {
    // RFC 9438 §4.6: ssthresh = β_cubic · FlightSize, β_cubic = 0.7; NewReno's
    // episode (no SACK) then sets cwnd = ssthresh + 3·SMSS (RFC 5681 §3.2).
    let t = fast_retransmit_of_10(TestConn::established());
    let s = t.stats();
    let flight = 10 * MSS as u32;
    assert_eq!(s.ssthresh, flight * 7 / 10);
    assert_eq!(s.cwnd, s.ssthresh + 3 * MSS as u32);
    assert_eq!(s.slow_start_exit, SlowStartExit::Loss);
}

#[test]
fn newreno_fast_retransmit_sets_ssthresh_to_half_the_flight() {
    // RFC 5681 §3.2 equation 4: ssthresh = max(FlightSize / 2, 2·SMSS).
    let t = fast_retransmit_of_10(with(CongestionAlgorithm::NewReno).established());
    let s = t.stats();
    assert_eq!(s.congestion, CongestionAlgorithm::NewReno);
    assert_eq!(s.ssthresh, 5 * MSS as u32);
    assert_eq!(s.cwnd, 8 * MSS as u32);
    assert_eq!(s.slow_start_exit, SlowStartExit::Loss);
}

#[test]
fn flight_size_leaves_out_what_limited_transmit_sent() {
    // Twelve segments out: the initial window of ten and two by limited
    // transmit (RFC 3042). RFC 5681 §3.2 step 2: the limited-transmit data
    // does not count in FlightSize; both controllers take min(FlightSize,
    // cwnd) (RFC 9438 §4.6 allows cwnd), so ssthresh = β · 10 segments.
    for (algo, beta_tenths) in [
        (CongestionAlgorithm::Cubic, 7),
        (CongestionAlgorithm::NewReno, 5),
    ] {
        let mut t = with(algo).established();
        let data = pattern(0, 12 * MSS);
        let seg = |i: usize| &data[i * MSS..(i + 1) * MSS];
        let seq = |i: usize| L + 1 + (i * MSS) as u32;
        t.send(200, &data);
        assert_eq!(t.take_sent(200).len(), 10);
        t.inject(300, ACK.seq(R + 1).ack(seq(0)));
        t.expect_sent(300, [ACK.seq(seq(10)).ack(R + 1).data(seg(10))]);
        t.inject(301, ACK.seq(R + 1).ack(seq(0)));
        t.expect_sent(301, [PSH_ACK.seq(seq(11)).ack(R + 1).data(seg(11))]);
        t.inject(302, ACK.seq(R + 1).ack(seq(0)));
        t.expect_sent(302, [ACK.seq(seq(0)).ack(R + 1).data(seg(0))]);
        let want = 10 * MSS as u32 * beta_tenths / 10;
        assert_eq!(t.stats().ssthresh, want, "{algo}");
    }
}

#[test]
fn cubic_sack_recovery_sets_cwnd_to_0_7_of_the_flight() {
    // With SACK (RFC 6675 §5 step 4.2) cwnd = ssthresh = 0.7 · FlightSize.
    let mut t = TestConn::established_sack();
    let data = pattern(0, 10 * MSS);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 10);
    let seg = |i: u32| (L + 1 + i * MSS as u32, L + 1 + (i + 1) * MSS as u32);
    // Segment 0 lost; 1, 2, 3 arrive and are SACKed.
    for i in 1..=3 {
        t.inject(
            300 + u64::from(i),
            ACK.seq(R + 1).ack(L + 1).sack(&[(seg(1).0, seg(i).1)]),
        );
    }
    let s = t.stats();
    assert_eq!(s.fast_retransmits, 1);
    assert_eq!(s.ssthresh, 10 * MSS as u32 * 7 / 10);
    assert_eq!(s.cwnd, s.ssthresh);
}

#[test]
fn cubic_rto_sets_ssthresh_to_0_7_of_the_flight_and_cwnd_to_one_segment() {
    // RFC 9438 §4.8: ssthresh = max(β_cubic · FlightSize, 2·SMSS), cwnd = 1 SMSS.
    let mut t = TestConn::established();
    let data = pattern(0, 10 * MSS);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 10);
    t.expect_sent(500, [ACK.seq(L + 1).ack(R + 1).data(&data[..MSS])]);
    let s = t.stats();
    assert_eq!(s.rto_count, 1);
    assert_eq!(s.cwnd, MSS as u32);
    assert_eq!(s.ssthresh, 10 * MSS as u32 * 7 / 10);
    assert_eq!(s.slow_start_exit, SlowStartExit::Rto);
    // A small flight: the 2·SMSS floor.
    let mut t = TestConn::established();
    t.send(200, &data[..MSS]);
    let _ = t.take_sent(200);
    let _ = t.take_sent(500);
    assert_eq!(t.stats().ssthresh, 2 * MSS as u32);
}

/// Grows cwnd in slow start to 40 segments: 10 out at 200 ms, acked at
/// 300; 20 out, acked at 400 (one stretch ACK each). Nothing is left in
/// flight; returns when the last data left (300 ms): idle time counts from
/// there (RFC 5681 §4.1: "has not sent data in an interval exceeding the
/// retransmission timeout", as Linux's `lsndtime`).
fn grow_then_drain(t: &mut TestConn) -> u64 {
    let data = pattern(0, 30 * MSS);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 10);
    t.inject(300, ACK.seq(R + 1).ack(L + 1 + 10 * MSS as u32));
    assert_eq!(t.take_sent(300).len(), 20);
    t.inject(400, ACK.seq(R + 1).ack(L + 1 + 30 * MSS as u32));
    t.expect_nothing(400);
    assert_eq!(t.stats().cwnd, 40 * MSS as u32);
    assert_eq!(t.conn.send_queued(), 0);
    300
}

#[test]
fn established_idle_longer_than_the_rto_restarts_from_the_initial_window() {
    // RFC 5681 §4.1: after an idle period longer than the RTO, cwnd = min(cwnd, IW).
    for algo in [CongestionAlgorithm::Cubic, CongestionAlgorithm::NewReno] {
        let mut t = with(algo).established();
        let last_send = grow_then_drain(&mut t);
        let rto = t.stats().rto.as_millis() as u64;
        let at = last_send + rto + 1;
        t.send(at, &pattern(0, 40 * MSS));
        assert_eq!(t.take_sent(at).len(), 10, "{algo}: the initial window");
        assert_eq!(t.stats().cwnd, 14_600, "{algo}");
        // ssthresh stays: slow start again from IW (RFC 5681 §4.1).
        assert_eq!(t.stats().ssthresh, u32::MAX, "{algo}");
    }
}

#[test]
fn established_idle_shorter_than_the_rto_keeps_cwnd() {
    let mut t = with(CongestionAlgorithm::Cubic).established();
    let last_send = grow_then_drain(&mut t);
    let rto = t.stats().rto.as_millis() as u64;
    let at = last_send + rto - 1;
    t.send(at, &pattern(0, 40 * MSS));
    // The whole grown window leaves (40 segments, within the peer's 65 535).
    assert_eq!(t.take_sent(at).len(), 40);
    assert_eq!(t.stats().cwnd, 40 * MSS as u32);
}

#[test]
fn set_congestion_per_connection_before_data() {
    let mut t = TestConn::established();
    assert_eq!(t.conn.congestion(), CongestionAlgorithm::Cubic);
    t.conn
        .set_congestion(CongestionAlgorithm::NewReno)
        .expect("before data");
    assert_eq!(t.stats().congestion, CongestionAlgorithm::NewReno);
    assert_eq!(t.stats().cwnd, 14_600);
    t.send(200, b"x");
    let _ = t.take_sent(200);
    assert_eq!(
        t.conn.set_congestion(CongestionAlgorithm::Cubic),
        Err(Error::InvalidInput(
            "the congestion controller is fixed once data was sent"
        ))
    );
    // Setting what is in force is no change.
    assert_eq!(t.conn.set_congestion(CongestionAlgorithm::NewReno), Ok(()));
    assert_eq!(t.stats().congestion, CongestionAlgorithm::NewReno);
}

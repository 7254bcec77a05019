//! TIME_WAIT as a record, in the endpoint's table: RFC 9293 §3.10.7.4
//! (TIME_WAIT), RFC 1122 §4.2.2.13 (reopening), RFC 5961 §3.2 (exact RST),
//! the per-record ACK rate limit, the table's limit, its timer queue.
//!
//! The records come from the `time_wait` fixture: 10.0.0.1:40000 ↔
//! 10.0.0.2:80, SND.NXT = L+2, RCV.NXT = R+2, 2·MSL ending at 60 300 ms.

mod common;

use bytes::BytesMut;
use common::*;
use utcp_proto::wire::{TcpFlags, TcpOptions, TcpRepr};
use utcp_proto::{
    Config, Duration, EndpointConfig, Instant, Route, SeqNum, TimeWait, TimeWaitAction, TimeWaitEnd,
};

const LOCAL: &str = "10.0.0.1:40000";
const PEER: &str = "10.0.0.2:80";

fn record() -> TimeWait {
    TestConn::time_wait()
        .conn
        .time_wait_record()
        .expect("TIME_WAIT")
}

fn seg(flags: TcpFlags, seq: SeqNum) -> TcpRepr {
    TcpRepr {
        src_port: 80,
        dst_port: 40_000,
        seq,
        ack: L + 2,
        flags,
        window: 65_535,
        urgent: 0,
        options: TcpOptions::default(),
    }
}

const FIN_ACK_F: TcpFlags = TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0);

// ---- the record's rules ----------------------------------------------------------

#[test]
fn timewait_record_retransmitted_fin_is_acked_and_restarts_2msl() {
    let cfg = Config::default();
    let mut tw = record();
    assert_eq!(tw.deadline(), Instant::from_millis(60_300));
    let now = Instant::from_millis(30_000);
    assert_eq!(
        tw.handle_segment(now, &seg(FIN_ACK_F, R + 1), 0, &cfg),
        TimeWaitAction::Ack
    );
    assert_eq!(tw.deadline(), now + Duration::from_secs(60));
    assert!(!tw.expired(Instant::from_millis(89_999)));
    assert!(tw.expired(Instant::from_millis(90_000)));
}

#[test]
fn timewait_record_ack_is_well_formed() {
    let tw = record();
    let mut buf = BytesMut::new();
    let tx = tw.ack(Instant::from_millis(1_000), &mut buf);
    let (src, dst, s) = parse_transmit(&buf, &tx);
    assert_eq!((src, dst), (tw.local.ip(), tw.remote.ip()));
    assert_eq!(
        (tx.repr.src_port, tx.repr.dst_port),
        (tw.local.port(), tw.remote.port())
    );
    assert_seg(&s, &ACK.seq(L + 2).ack(R + 2).win(tw.window()).no_ts());
}

#[test]
fn timewait_record_rst_exact_closes_otherwise_ignored() {
    let cfg = Config::default();
    let mut tw = record();
    let now = Instant::from_millis(1_000);
    for seq in [R + 5, R + 1, R + 3] {
        assert_eq!(
            tw.handle_segment(now, &seg(TcpFlags::RST, seq), 0, &cfg),
            TimeWaitAction::Ignore
        );
    }
    assert_eq!(
        tw.handle_segment(now, &seg(TcpFlags::RST, R + 2), 0, &cfg),
        TimeWaitAction::Close
    );
}

#[test]
fn timewait_record_new_syn_above_rcv_nxt_reopens() {
    // RFC 1122 §4.2.2.13: the new ISS must be above the old SND.NXT.
    let mut tw = record();
    let now = Instant::from_millis(1_000);
    let action = tw.handle_segment(now, &seg(TcpFlags::SYN, R + 10_000), 0, &Config::default());
    assert_eq!(action, TimeWaitAction::Reopen { iss_above: L + 2 });
}

#[test]
fn timewait_record_old_syn_gets_one_ack_per_interval() {
    let cfg = Config::default();
    let mut tw = record();
    let now = Instant::from_millis(1_000);
    assert_eq!(
        tw.handle_segment(now, &seg(TcpFlags::SYN, R + 2), 0, &cfg),
        TimeWaitAction::Ack
    );
    assert_eq!(
        tw.handle_segment(now, &seg(TcpFlags::SYN, SeqNum::new(R.get() - 5)), 0, &cfg),
        TimeWaitAction::RateLimited
    );
    let later = now + cfg.time_wait_ack_interval;
    assert_eq!(
        tw.handle_segment(later, &seg(TcpFlags::SYN, R + 1), 0, &cfg),
        TimeWaitAction::Ack
    );
    assert_eq!(
        tw.deadline(),
        Instant::from_millis(60_300),
        "an old SYN does not restart 2·MSL"
    );
}

#[test]
fn timewait_record_data_gets_ack_and_bare_ack_is_ignored() {
    let cfg = Config::default();
    let mut tw = record();
    let now = Instant::from_millis(1_000);
    assert_eq!(
        tw.handle_segment(now, &seg(TcpFlags::ACK, R + 2), 0, &cfg),
        TimeWaitAction::Ignore
    );
    assert_eq!(
        tw.handle_segment(now, &seg(TcpFlags::ACK, R + 2), 5, &cfg),
        TimeWaitAction::Ack
    );
    assert_eq!(tw.deadline(), Instant::from_millis(60_300));
}

#[test]
fn timewait_record_expires_at_2msl() {
    let tw = record();
    assert!(!tw.expired(Instant::from_millis(60_299)));
    assert!(tw.expired(Instant::from_millis(60_300)));
}

// ---- the endpoint's table --------------------------------------------------------

/// An endpoint owning 10.0.0.1 with the fixture's record in its table.
fn endpoint_with_record(cfg: EndpointConfig, held: bool) -> (TestEndpoint, utcp_proto::TimeWaitId) {
    let mut e = TestEndpoint::new(cfg, &["10.0.0.1"]);
    e.advance(300);
    let (h, _) =
        e.ep.connect_from(e.now(), LOCAL.parse().unwrap(), PEER.parse().unwrap())
            .unwrap();
    let (id, _) = e.ep.enter_time_wait(h, record(), held);
    (e, id.expect("room in the table"))
}

#[test]
fn endpoint_time_wait_record_answers_its_4_tuple() {
    let (mut e, id) = endpoint_with_record(EndpointConfig::default(), true);
    assert_eq!(e.ep.time_wait_count(), 1);
    assert_eq!(
        e.ep.connection_count(),
        1,
        "the slot was freed, the record counts"
    );
    assert!(e.ep.is_time_wait(id));
    // A retransmitted FIN is re-ACKed at once, twice in a row, and moves 2·MSL.
    for at in [10_000, 10_100] {
        let r = e.inject(at, PEER, LOCAL, FIN_ACK.seq(R + 1).ack(L + 2));
        assert!(matches!(r, Route::TimeWait(TimeWaitAction::Ack)), "{r:?}");
        e.expect_sent(at, LOCAL, PEER, [ACK.seq(L + 2).ack(R + 2)]);
    }
    // The timer queue still holds the old deadline; at it, nothing ends.
    assert_eq!(e.ep.poll_timeout(), Some(Instant::from_millis(60_300)));
    e.ep.handle_timeout(Instant::from_millis(60_300));
    assert!(e.ep.is_time_wait(id));
    assert_eq!(e.ep.poll_timeout(), Some(Instant::from_millis(70_100)));
    e.ep.handle_timeout(Instant::from_millis(70_099));
    assert!(e.ep.is_time_wait(id));
    e.ep.handle_timeout(Instant::from_millis(70_100));
    assert!(!e.ep.is_time_wait(id));
    assert_eq!(e.ep.time_wait_count(), 0);
    assert_eq!(e.ep.poll_time_wait_end(), Some((id, TimeWaitEnd::Expired)));
    assert_eq!(e.ep.poll_time_wait_end(), None);
    assert_eq!(e.ep.poll_timeout(), None);
    // The 4-tuple is free again: a segment for it now gets an RST.
    let r = e.inject(70_200, PEER, LOCAL, ACK.seq(R + 2).ack(L + 2));
    assert!(matches!(r, Route::Reset), "{r:?}");
}

#[test]
fn endpoint_time_wait_released_record_ends_unreported() {
    let (mut e, id) = endpoint_with_record(EndpointConfig::default(), true);
    e.ep.release_time_wait(id);
    e.ep.handle_timeout(Instant::from_millis(60_300));
    assert_eq!(e.ep.time_wait_count(), 0);
    assert_eq!(e.ep.poll_time_wait_end(), None);
}

#[test]
fn endpoint_time_wait_exact_rst_ends_the_record_others_are_ignored() {
    let (mut e, id) = endpoint_with_record(EndpointConfig::default(), true);
    let r = e.inject(1_000, PEER, LOCAL, RST.seq(R + 3));
    assert!(
        matches!(r, Route::TimeWait(TimeWaitAction::Ignore)),
        "{r:?}"
    );
    e.expect_nothing(1_000);
    assert!(e.ep.is_time_wait(id));
    let r = e.inject(1_000, PEER, LOCAL, RST.seq(R + 2));
    assert!(matches!(r, Route::TimeWait(TimeWaitAction::Close)), "{r:?}");
    e.expect_nothing(1_000);
    assert!(!e.ep.is_time_wait(id));
    assert_eq!(e.ep.poll_time_wait_end(), Some((id, TimeWaitEnd::Reset)));
}

#[test]
fn endpoint_time_wait_acks_are_rate_limited_and_counted() {
    let (mut e, _) = endpoint_with_record(EndpointConfig::default(), false);
    e.inject(1_000, PEER, LOCAL, PSH_ACK.seq(R + 2).ack(L + 2).data(b"x"));
    e.expect_sent(1_000, LOCAL, PEER, [ACK.seq(L + 2).ack(R + 2)]);
    for at in [1_100, 1_200, 1_300] {
        let r = e.inject(at, PEER, LOCAL, PSH_ACK.seq(R + 2).ack(L + 2).data(b"x"));
        assert!(
            matches!(r, Route::TimeWait(TimeWaitAction::RateLimited)),
            "{r:?}"
        );
    }
    e.expect_nothing(1_300);
    assert_eq!(e.ep.time_wait_stats().acks_rate_limited, 3);
    e.inject(1_500, PEER, LOCAL, ACK.seq(R + 7).ack(L + 2));
    e.expect_sent(1_500, LOCAL, PEER, [ACK.seq(L + 2).ack(R + 2)]);
}

#[test]
fn endpoint_time_wait_syn_above_rcv_nxt_reopens_with_a_higher_iss() {
    let (mut e, id) = endpoint_with_record(EndpointConfig::default(), true);
    e.ep.listen(LOCAL.parse().unwrap(), 4).unwrap();
    let r = e.inject(1_000, PEER, LOCAL, SYN.seq(R + 10_000));
    let (_, conn) = incoming(r);
    assert!(conn.iss().after(L + 2), "{:?}", conn.iss());
    assert_eq!(conn.rcv_nxt(), R + 10_001);
    assert!(!e.ep.is_time_wait(id));
    assert_eq!(e.ep.time_wait_count(), 0);
    assert_eq!(e.ep.poll_time_wait_end(), Some((id, TimeWaitEnd::Reopened)));
}

#[test]
fn endpoint_time_wait_old_syn_gets_an_ack_not_a_reopen() {
    // A SYN at or below RCV.NXT is an old duplicate: ACKed, the record stays.
    let (mut e, id) = endpoint_with_record(EndpointConfig::default(), true);
    e.ep.listen(LOCAL.parse().unwrap(), 4).unwrap();
    let r = e.inject(2_000, PEER, LOCAL, SYN.seq(R + 1));
    assert!(matches!(r, Route::TimeWait(TimeWaitAction::Ack)), "{r:?}");
    e.expect_sent(2_000, LOCAL, PEER, [ACK.seq(L + 2).ack(R + 2)]);
    assert!(e.ep.is_time_wait(id));
}

#[test]
fn endpoint_time_wait_new_syn_without_listener_ends_the_record_with_an_rst() {
    // RFC 9293 §3.10.7.1 for the SYN (SEG.LEN counts its text):
    // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    let (mut e, id) = endpoint_with_record(EndpointConfig::default(), true);
    let r = e.inject(1_000, PEER, LOCAL, SYN.seq(R + 10_000).data(b"0123456789"));
    assert!(matches!(r, Route::Reset), "{r:?}");
    e.expect_sent(
        1_000,
        LOCAL,
        PEER,
        [RST_ACK.seq(SeqNum::new(0)).ack(R + 10_011)],
    );
    assert!(!e.ep.is_time_wait(id));
    assert_eq!(e.ep.poll_time_wait_end(), Some((id, TimeWaitEnd::Reopened)));
}

#[test]
fn endpoint_time_wait_full_accept_queue_keeps_the_record_for_the_retransmitted_syn() {
    let (mut e, id) = endpoint_with_record(EndpointConfig::default(), true);
    e.ep.listen(LOCAL.parse().unwrap(), 1).unwrap();
    // Fill the accept queue with another client's connection.
    let (_h, c) = incoming(e.inject(500, "10.0.0.3:999", LOCAL, SYN.seq(R)));
    e.inject(501, "10.0.0.3:999", LOCAL, ACK.seq(R + 1).ack(c.iss() + 1));
    let r = e.inject(1_000, PEER, LOCAL, SYN.seq(R + 10_000));
    assert!(
        matches!(r, Route::Drop(utcp_proto::DropReason::BacklogFull)),
        "{r:?}"
    );
    assert!(e.ep.is_time_wait(id));
}

#[test]
fn endpoint_time_wait_full_syn_queue_drops_the_syn_without_a_cookie() {
    // A cookie's ACK would reach the record, not the listener: a SYN that
    // would reopen a record finds the SYN queue full and is dropped; the
    // record stays for its retransmission.
    let cfg = EndpointConfig {
        syn_queue: 1,
        ..EndpointConfig::default()
    };
    let (mut e, id) = endpoint_with_record(cfg, true);
    e.ep.listen(LOCAL.parse().unwrap(), 16).unwrap();
    let _ = incoming(e.inject(500, "10.0.0.3:999", LOCAL, SYN.seq(R)));
    let r = e.inject(1_000, PEER, LOCAL, SYN.seq(R + 10_000));
    assert!(
        matches!(r, Route::Drop(utcp_proto::DropReason::SynQueueFull)),
        "{r:?}"
    );
    e.expect_nothing(1_000);
    assert!(e.ep.is_time_wait(id));
}

#[test]
fn endpoint_time_wait_limit_skips_time_wait_and_counts_it() {
    let cfg = EndpointConfig {
        max_time_wait: 1,
        ..EndpointConfig::default()
    };
    let (mut e, _) = endpoint_with_record(cfg, false);
    let (h2, _) = e.ep.connect(e.now(), PEER.parse().unwrap(), None).unwrap();
    let mut rec2 = record();
    rec2.local = e.ep.tuple(h2).unwrap().local;
    let (id2, _) = e.ep.enter_time_wait(h2, rec2, false);
    assert_eq!(id2, None, "over the limit");
    assert_eq!(e.ep.time_wait_count(), 1);
    assert_eq!(e.ep.connection_count(), 1, "the second connection is gone");
    assert_eq!(e.ep.time_wait_stats().overflows, 1);
}

#[test]
fn endpoint_time_wait_4_tuple_is_not_reused_by_connect() {
    let cfg = EndpointConfig {
        ephemeral_ports: 40_000..=40_001,
        ..EndpointConfig::default()
    };
    let (mut e, _) = endpoint_with_record(cfg, false);
    let err =
        e.ep.connect_from(e.now(), LOCAL.parse().unwrap(), PEER.parse().unwrap())
            .unwrap_err();
    assert_eq!(err, utcp_proto::Error::AddrInUse);
    let (_, c) = e.ep.connect(e.now(), PEER.parse().unwrap(), None).unwrap();
    assert_eq!(
        c.local_addr().port(),
        40_001,
        "the TIME_WAIT port is skipped"
    );
    assert!(e.ep.connect(e.now(), PEER.parse().unwrap(), None).is_err());
}

#[test]
fn endpoint_time_wait_ipv6_record_round_trips_its_addresses() {
    let mut e = TestEndpoint::new(EndpointConfig::default(), &["fd00::1"]);
    let (local, peer) = ("[fd00::1]:40000", "[fd00::2]:80");
    let (h, c) =
        e.ep.connect_from(e.now(), local.parse().unwrap(), peer.parse().unwrap())
            .unwrap();
    let mut rec = record();
    (rec.local, rec.remote) = (c.local_addr(), c.remote_addr());
    let (id, _) = e.ep.enter_time_wait(h, rec, false);
    assert!(id.is_some());
    e.inject(1_000, peer, local, FIN_ACK.seq(R + 1).ack(L + 2));
    e.expect_sent(1_000, local, peer, [ACK.seq(L + 2).ack(R + 2)]);
}

#[test]
fn endpoint_time_wait_clear_ends_every_record() {
    let (mut e, id) = endpoint_with_record(EndpointConfig::default(), true);
    e.ep.clear_time_wait();
    assert_eq!(e.ep.time_wait_count(), 0);
    assert_eq!(e.ep.poll_time_wait_end(), Some((id, TimeWaitEnd::Cleared)));
}

// ---- with timestamps (RFC 7323, RFC 6191) ----------------------------------------

/// TIME_WAIT reached with timestamps in force: TS.Recent = 5200 (the peer's
/// FIN), the clock offset 1000.
fn record_ts() -> TimeWait {
    let mut t = TestConn::established_ts();
    t.shutdown(200);
    t.expect_sent(200, [FIN_ACK.seq(L + 1).ack(R + 1).ts(1_200, 5_000)]);
    t.inject(300, ACK.seq(R + 1).ack(L + 2).ts(5_100, 1_200));
    t.inject(400, FIN_ACK.seq(R + 1).ack(L + 2).ts(5_200, 1_200));
    t.expect_sent(400, [ACK.seq(L + 2).ack(R + 2).ts(1_400, 5_200)]);
    t.conn.time_wait_record().expect("TIME_WAIT")
}

fn seg_ts(flags: TcpFlags, seq: SeqNum, tsval: u32) -> TcpRepr {
    TcpRepr {
        options: TcpOptions {
            timestamps: Some((tsval, 0)),
            ..TcpOptions::default()
        },
        ..seg(flags, seq)
    }
}

#[test]
fn timewait_record_keeps_ts_recent_and_acks_with_timestamps() {
    let tw = record_ts();
    assert_eq!(tw.ts_recent(), Some((5_200, 0)));
    let mut buf = BytesMut::new();
    let tx = tw.ack(Instant::from_millis(2_000), &mut buf);
    assert_eq!(tx.repr.options.timestamps, Some((3_000, 5_200)));
}

#[test]
fn timewait_record_reopens_on_a_newer_timestamp_rfc_6191() {
    // RFC 6191: a SYN whose TSval is above TS.Recent may reopen the record
    // even with a sequence number below the old RCV.NXT.
    let cfg = Config::default();
    let now = Instant::from_millis(1_000);
    let mut tw = record_ts();
    assert_eq!(
        tw.handle_segment(now, &seg_ts(TcpFlags::SYN, R + 1, 6_000), 0, &cfg),
        TimeWaitAction::Reopen { iss_above: L + 2 }
    );
    // An older TSval fails PAWS: no reopening even above RCV.NXT, an ACK.
    let mut tw = record_ts();
    assert_eq!(
        tw.handle_segment(now, &seg_ts(TcpFlags::SYN, R + 10_000, 5_100), 0, &cfg),
        TimeWaitAction::Ack
    );
}

#[test]
fn timewait_record_paws_keeps_an_old_rst_from_closing_it() {
    let cfg = Config::default();
    let now = Instant::from_millis(1_000);
    let mut tw = record_ts();
    assert_eq!(
        tw.handle_segment(now, &seg_ts(TcpFlags::RST, R + 2, 5_000), 0, &cfg),
        TimeWaitAction::Ignore
    );
    assert_eq!(
        tw.handle_segment(now, &seg_ts(TcpFlags::RST, R + 2, 5_300), 0, &cfg),
        TimeWaitAction::Close
    );
}

/// An endpoint owning 10.0.0.1 with one ephemeral port, 40000, whose
/// 4-tuple to 10.0.0.2:80 is in TIME_WAIT (`rec`, entered at 300 ms).
fn one_port_in_time_wait(rec: TimeWait) -> (TestEndpoint, utcp_proto::TimeWaitId) {
    let cfg = EndpointConfig {
        ephemeral_ports: 40_000..=40_000,
        ..EndpointConfig::default()
    };
    let mut e = TestEndpoint::new(cfg, &["10.0.0.1"]);
    e.advance(300);
    let (h, _) =
        e.ep.connect_from(e.now(), LOCAL.parse().unwrap(), PEER.parse().unwrap())
            .unwrap();
    let (id, _) = e.ep.enter_time_wait(h, rec, true);
    (e, id.unwrap())
}

#[test]
fn endpoint_time_wait_reuse_with_timestamps_after_a_second() {
    // Linux's tcp_tw_reuse: with every port taken, connect reuses a
    // TIME_WAIT 4-tuple whose timestamps record is from an earlier second;
    // the new ISS lies above the old SND.NXT + 65,537.
    let (mut e, id) = one_port_in_time_wait(record_ts());
    let peer = PEER.parse().unwrap();
    e.advance(900);
    assert!(
        e.ep.connect(e.now(), peer, None).is_err(),
        "TS.Recent is this second's"
    );
    e.advance(1_500);
    let (_, c) = e.ep.connect(e.now(), peer, None).unwrap();
    assert_eq!(c.local_addr(), LOCAL.parse().unwrap());
    assert!(c.iss().after(L + 2 + 65_536), "{:?}", c.iss());
    assert!(!e.ep.is_time_wait(id));
    assert_eq!(e.ep.poll_time_wait_end(), Some((id, TimeWaitEnd::Reused)));
}

#[test]
fn endpoint_time_wait_without_timestamps_is_never_reused() {
    let (mut e, id) = one_port_in_time_wait(record());
    e.advance(10_000);
    let peer = PEER.parse().unwrap();
    assert_eq!(
        e.ep.connect(e.now(), peer, None).unwrap_err(),
        utcp_proto::Error::AddrNotAvailable
    );
    assert_eq!(
        e.ep.connect_from(e.now(), LOCAL.parse().unwrap(), peer)
            .unwrap_err(),
        utcp_proto::Error::AddrInUse
    );
    assert!(e.ep.is_time_wait(id));
}

#[test]
fn endpoint_time_wait_reuse_can_be_turned_off() {
    let cfg = EndpointConfig {
        ephemeral_ports: 40_000..=40_000,
        time_wait_reuse: false,
        ..EndpointConfig::default()
    };
    let mut e = TestEndpoint::new(cfg, &["10.0.0.1"]);
    e.advance(300);
    let (h, _) =
        e.ep.connect_from(e.now(), LOCAL.parse().unwrap(), PEER.parse().unwrap())
            .unwrap();
    e.ep.enter_time_wait(h, record_ts(), false);
    e.advance(5_000);
    assert!(e.ep.connect(e.now(), PEER.parse().unwrap(), None).is_err());
}

#[test]
fn endpoint_time_wait_syn_for_a_deciding_listener_is_asked_and_keeps_the_higher_iss() {
    // A listener that decides per SYN sees a SYN that would reopen a record
    // as any other: the record ends when the SYN is asked (as Linux ends it
    // before its listener sees the SYN), retransmissions are absorbed, and
    // the connection accepted later still starts above the old SND.NXT.
    let (mut e, id) = endpoint_with_record(EndpointConfig::default(), true);
    e.ep.listen_any_deciding(4).unwrap();
    let pid = match e.inject(1_000, PEER, LOCAL, SYN.seq(R + 10_000)) {
        Route::Ask { id, syn, .. } => {
            assert_eq!(syn.local, LOCAL.parse().unwrap());
            id
        }
        other => panic!("expected Route::Ask, got {other:?}"),
    };
    assert!(!e.ep.is_time_wait(id));
    assert_eq!(e.ep.poll_time_wait_end(), Some((id, TimeWaitEnd::Reopened)));
    let r = e.inject(2_000, PEER, LOCAL, SYN.seq(R + 10_000));
    assert!(
        matches!(r, Route::Drop(utcp_proto::DropReason::Pending)),
        "{r:?}"
    );
    let (_, conn) = incoming(e.decide(pid, utcp_proto::SynVerdict::Accept).unwrap());
    assert!(conn.iss().after(L + 2), "{:?}", conn.iss());
    assert_eq!(conn.rcv_nxt(), R + 10_001);
}

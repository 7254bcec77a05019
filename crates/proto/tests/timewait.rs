//! The TIME_WAIT record (`TimeWait`) the runtime keeps instead of the
//! connection: RFC 9293 §3.10.7.4 (TIME_WAIT), RFC 1122 §4.2.2.13 (reopening),
//! RFC 5961 (exact RST).

mod common;

use bytes::BytesMut;
use common::*;
use utcp_proto::wire::{TcpFlags, TcpOptions, TcpRepr};
use utcp_proto::{Duration, Instant, SeqNum, TimeWait, TimeWaitAction};

/// The record of the `time_wait` fixture: SND.NXT = L+2, RCV.NXT = R+2, 2·MSL
/// ending at 60 300 ms.
fn record() -> TimeWait {
    let t = TestConn::time_wait();
    t.conn
        .time_wait_record(Instant::from_millis(300))
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

#[test]
fn timewait_record_retransmitted_fin_is_acked_and_restarts_2msl() {
    let mut tw = record();
    assert_eq!(tw.deadline, Instant::from_millis(60_300));
    let now = Instant::from_millis(30_000);
    assert_eq!(
        tw.handle_segment(now, &seg(FIN_ACK_F, R + 1), 0),
        TimeWaitAction::Ack
    );
    assert_eq!(tw.deadline, now + Duration::from_secs(60));
    assert!(!tw.expired(Instant::from_millis(89_999)));
    assert!(tw.expired(Instant::from_millis(90_000)));
}

#[test]
fn timewait_record_ack_is_well_formed() {
    let tw = record();
    let mut buf = BytesMut::new();
    let tx = tw.ack(&mut buf);
    let (src, dst, s) = parse_transmit(&buf, &tx);
    assert_eq!((src, dst), (tw.local.ip(), tw.remote.ip()));
    assert_eq!(
        (tx.repr.src_port, tx.repr.dst_port),
        (tw.local.port(), tw.remote.port())
    );
    assert!(s == ACK.seq(L + 2).ack(R + 2).win(tw.window), "{s:?}");
}

#[test]
fn timewait_record_rst_exact_closes_otherwise_ignored() {
    let mut tw = record();
    let now = Instant::from_millis(1_000);
    assert_eq!(
        tw.handle_segment(now, &seg(TcpFlags::RST, R + 5), 0),
        TimeWaitAction::Ignore
    );
    assert_eq!(
        tw.handle_segment(now, &seg(TcpFlags::RST, R + 1), 0),
        TimeWaitAction::Ignore
    );
    assert_eq!(
        tw.handle_segment(now, &seg(TcpFlags::RST, R + 2), 0),
        TimeWaitAction::Close
    );
}

#[test]
fn timewait_record_new_syn_above_rcv_nxt_reopens() {
    // RFC 1122 §4.2.2.13: the new ISS must be above the old SND.NXT.
    let mut tw = record();
    let now = Instant::from_millis(1_000);
    let action = tw.handle_segment(now, &seg(TcpFlags::SYN, R + 10_000), 0);
    assert_eq!(action, TimeWaitAction::Reopen { iss_above: L + 2 });
}

#[test]
fn timewait_record_old_syn_gets_ack() {
    let mut tw = record();
    let now = Instant::from_millis(1_000);
    assert_eq!(
        tw.handle_segment(now, &seg(TcpFlags::SYN, R + 2), 0),
        TimeWaitAction::Ack
    );
    assert_eq!(
        tw.handle_segment(now, &seg(TcpFlags::SYN, SeqNum::new(R.get() - 5)), 0),
        TimeWaitAction::Ack
    );
    assert_eq!(
        tw.deadline,
        Instant::from_millis(60_300),
        "an old SYN does not restart 2·MSL"
    );
}

#[test]
fn timewait_record_data_gets_ack_and_pure_ack_is_ignored() {
    let mut tw = record();
    let now = Instant::from_millis(1_000);
    assert_eq!(
        tw.handle_segment(now, &seg(TcpFlags::ACK, R + 2), 5),
        TimeWaitAction::Ack
    );
    assert_eq!(
        tw.handle_segment(now, &seg(TcpFlags::ACK, R + 2), 0),
        TimeWaitAction::Ignore
    );
    assert_eq!(tw.deadline, Instant::from_millis(60_300));
}

#[test]
fn timewait_record_expires_at_2msl() {
    let tw = record();
    assert!(!tw.expired(Instant::from_millis(60_299)));
    assert!(tw.expired(Instant::from_millis(60_300)));
}

#[test]
fn timewait_record_reopen_through_the_endpoint() {
    let mut e = TestEndpoint::new(utcp_proto::EndpointConfig::default(), &["10.0.0.1"]);
    e.ep.listen("10.0.0.1:40000".parse().unwrap(), 4).unwrap();
    let mut tw = record();
    let now = Instant::from_millis(1_000);
    let syn = seg(TcpFlags::SYN, R + 10_000);
    let TimeWaitAction::Reopen { iss_above } = tw.handle_segment(now, &syn, 0) else {
        panic!("not reopened")
    };
    let (_, conn) = incoming(e.ep.reopen(now, tw.remote.ip(), tw.local.ip(), &syn, 0, iss_above));
    assert!(conn.iss().after(iss_above));
    assert_eq!(conn.rcv_nxt(), R + 10_001);
}

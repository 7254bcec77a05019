//! Super-segments (TCP segmentation offload, `Config::tx_offload`): a
//! connection whose device cuts segments and completes checksums sends new
//! data as super-segments of whole MSS-sized segments (the last short only
//! where the queued data ends), sized as Linux's `tcp_tso_autosize` does
//! (about 1 ms at the pacing rate, at least two segments, at most what the
//! device's largest packet holds), every checksum partial. The scoreboard
//! holds one entry per segment the device cuts, so SACK and loss recovery
//! see each segment on its own, as the wire does.
//!
//! The fixture drives the wire view: each super-segment is checked (its
//! partial checksum is the pseudo-header sum, completed, then parsed with
//! checksums verified) and cut into the segments the device sends (FIN and
//! PSH on the last only); `TestConn::super_segments` lists them.

mod common;

use common::*;
use utcp_proto::{Config, TxOffload};

/// MSS 1460 less the timestamps option.
const SEG: usize = 1448;

fn tso(ipv6: bool) -> Opts {
    Opts {
        cfg: Config {
            tx_offload: TxOffload {
                partial_checksum: true,
                max_packet: 65_535,
                scatter_gather: true,
            },
            ..Config::default()
        },
        ipv6,
        ..Opts::default()
    }
}

/// The initial window (10 segments) leaves at once as super-segments of
/// two segments: at cwnd / SRTT × 200 % (10 × 1,448 B per 100 ms) a
/// millisecond is less than a segment, and `tcp_tso_autosize` makes a
/// burst two segments at least. Each is whole segments; the wire sees ten
/// segments in order, every checksum completed from the partial one.
#[test]
fn the_initial_window_leaves_as_super_segments_of_two_segments() {
    for ipv6 in [false, true] {
        let mut t = tso(ipv6).established_ts_sack();
        // MSS 1460 (1440 over IPv6) less the timestamps option.
        let seg = t.stats().mss as usize;
        assert_eq!(seg, if ipv6 { 1428 } else { SEG });
        let data = pattern(0, 20 * seg);
        t.send(200, &data);
        let sent = t.take_sent(200);
        assert_eq!(sent.len(), 10, "the initial window");
        for (i, s) in sent.iter().enumerate() {
            assert_eq!(s.seq, L + 1 + (i * seg) as u32, "segment {i}: {s:?}");
            assert_eq!(s.payload.len(), seg, "segment {i}");
            assert!(
                s.payload[..] == data[i * seg..(i + 1) * seg],
                "segment {i}'s bytes"
            );
        }
        let supers: Vec<_> = t.super_segments.iter().map(|s| (s.2, s.3)).collect();
        assert_eq!(supers, vec![(2 * seg, seg as u16); 5], "ipv6 {ipv6}");
        let st = t.stats();
        assert_eq!(st.super_segments_sent, 5);
        // Two SYN-side segments (SYN, ACK) and ten data segments.
        assert_eq!(st.segments_sent, 12, "a super-segment counts its segments");
    }
}

/// The last super-segment of the queue may end short (the queue's end),
/// and only it carries PSH; nowhere else is a segment short.
#[test]
fn only_the_end_of_the_queue_makes_a_short_segment() {
    let mut t = tso(false).established_ts_sack();
    let data = pattern(0, 3 * SEG + 656);
    t.send(200, &data);
    let sent = t.take_sent(200);
    let lens: Vec<usize> = sent.iter().map(|s| s.payload.len()).collect();
    assert_eq!(lens, vec![SEG, SEG, SEG, 656]);
    let psh: Vec<bool> = sent.iter().map(|s| s.flags.psh()).collect();
    assert_eq!(psh, vec![false, false, false, true]);
    let supers: Vec<_> = t.super_segments.iter().map(|s| (s.2, s.3)).collect();
    assert_eq!(supers, vec![(2 * SEG, SEG as u16), (SEG + 656, SEG as u16)]);
}

/// A FIN queued behind the data rides the last segment of the last
/// super-segment.
#[test]
fn the_fin_rides_the_last_segment() {
    let mut t = tso(false).established_ts_sack();
    let data = pattern(0, 14 * SEG);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 10, "the initial window");
    // Queued behind the four segments cwnd holds back.
    t.close(200);
    t.expect_nothing(200);
    let before = t.super_segments.len();
    t.inject(
        300,
        ACK.seq(R + 1)
            .ack(L + 1 + (10 * SEG) as u32)
            .ts(5_100, 1_200),
    );
    let sent = t.take_sent(300);
    assert_eq!(sent.len(), 4, "{sent:?}");
    let fin: Vec<bool> = sent.iter().map(|s| s.flags.fin()).collect();
    assert_eq!(fin, vec![false, false, false, true]);
    assert!(sent.iter().all(|s| s.payload.len() == SEG));
    assert!(
        t.super_segments.len() > before,
        "the rest left as super-segments"
    );
}

/// The peer SACKs all but the first segment of the first super-segment:
/// the scoreboard held each segment on its own, so the repair is that one
/// segment (not the super-segment again), sent as a plain segment.
#[test]
fn a_lost_segment_of_a_super_segment_is_repaired_alone() {
    let mut t = tso(false).established_ts_sack();
    let data = pattern(0, 10 * SEG);
    t.send(200, &data);
    assert_eq!(t.take_sent(200).len(), 10);
    let supers = t.super_segments.len();
    let end = L + 1 + (10 * SEG) as u32;
    t.inject(
        300,
        ACK.seq(R + 1)
            .ack(L + 1)
            .ts(5_100, 1_200)
            .sack(&[(L + 1 + SEG as u32, end)]),
    );
    let sent = t.take_sent(300);
    assert_eq!(sent.len(), 1, "one repair: {sent:?}");
    assert_eq!(sent[0].seq, L + 1);
    assert!(
        sent[0].payload[..] == data[..SEG],
        "the first segment's bytes"
    );
    assert_eq!(
        t.super_segments.len(),
        supers,
        "the repair is no super-segment"
    );
    assert_eq!(t.stats().segments_retransmitted, 1);
    assert_eq!(t.stats().bytes_retransmitted, SEG as u64);
}

/// A device whose largest packet holds less than two segments gets none.
#[test]
fn a_device_packet_too_small_for_two_segments_gets_plain_segments() {
    let mut o = tso(false);
    o.cfg.tx_offload.max_packet = 2_000;
    let mut t = o.established_ts_sack();
    t.send(200, &pattern(0, 10 * SEG));
    assert_eq!(t.take_sent(200).len(), 10);
    assert!(t.super_segments.is_empty());
    assert_eq!(t.stats().super_segments_sent, 0);
}

/// Segments that span two send-buffer chunks (two writes, the first frozen
/// when part of it was sent) leave as two zero-copy parts with the device
/// gathering them, byte-exact, odd-length first parts included.
#[test]
fn segments_spanning_two_writes_leave_in_two_parts() {
    // With partial checksums (super-segments), and with complete ones
    // summed over both parts (plain segments; the first part is odd).
    for partial in [true, false] {
        spanning_two_writes(partial);
    }
}

fn spanning_two_writes(partial: bool) {
    let mut o = tso(false);
    o.cfg.tx_offload.partial_checksum = partial;
    let mut t = o.established_ts_sack();
    // 10 segments and 1,001 bytes: cwnd sends the ten, freezing the write.
    let first = pattern(0, 10 * SEG + 1_001);
    t.send(200, &first);
    assert_eq!(t.take_sent(200).len(), 10);
    let second = pattern(first.len(), 20 * SEG);
    t.send(200, &second);
    t.expect_nothing(200);
    t.inject(
        300,
        ACK.seq(R + 1)
            .ack(L + 1 + (10 * SEG) as u32)
            .ts(5_100, 1_200),
    );
    let sent = t.take_sent(300);
    let all = [&first[..], &second[..]].concat();
    let mut at = 10 * SEG;
    for s in &sent {
        assert_eq!(s.seq, L + 1 + at as u32);
        assert!(
            s.payload[..] == all[at..at + s.payload.len()],
            "bytes at {at}"
        );
        at += s.payload.len();
    }
    assert!(sent.len() >= 2, "{}", sent.len());
    assert!(
        sent.iter().all(|s| s.payload.len() == SEG),
        "whole segments across the boundary"
    );
    assert_eq!(
        t.gathered, 1,
        "the one transmit spanning the boundary is two parts"
    );
}

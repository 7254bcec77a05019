//! Bugs in `utcp-proto` the endpoint target found, each reduced to the
//! fewest calls that show it, with the fix in proto; the inputs that found
//! them are in `fuzz/regressions/endpoint/` (replayed here and by the
//! corpus test).

use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use utcp_proto::wire::{TcpFlags, TcpOptions, TcpRepr};
use utcp_proto::{Config, Connection, Instant, Segment, SeqNum};

const ISS: SeqNum = SeqNum::new(1_000);
const IRS: SeqNum = SeqNum::new(5_000);

fn repr(flags: TcpFlags, seq: SeqNum, ack: SeqNum) -> TcpRepr {
    TcpRepr {
        src_port: 40_000,
        dst_port: 80,
        seq,
        ack,
        flags,
        window: 65_535,
        urgent: 0,
        options: TcpOptions::default(),
    }
}

/// A passive connection with a 12 KiB receive buffer in SYN_RECEIVED, its
/// SYN-ACK sent (offering 12,288 bytes).
fn syn_received() -> (Connection, usize) {
    let cfg = Config {
        recv_buffer: 12 * 1024,
        recv_buffer_max: 12 * 1024,
        ..Config::default()
    };
    let local: SocketAddr = "10.0.0.1:80".parse().unwrap();
    let remote: SocketAddr = "10.0.0.2:40000".parse().unwrap();
    let now = Instant::from_millis(1_000);
    let syn = repr(TcpFlags::SYN, IRS, SeqNum::new(0));
    let mut c = Connection::accept(cfg, local, remote, ISS, now, &syn).expect("accept");
    let mut buf = BytesMut::new();
    let synack = c.poll_transmit(now, &mut buf).expect("the SYN-ACK");
    assert!(synack.repr.flags.syn() && synack.repr.flags.ack());
    (c, usize::from(synack.repr.window))
}

/// Found by the endpoint target (libFuzzer, 2026-12-02, input
/// `fuzz/regressions/endpoint/crash-a79ad6cf`, replayed below): a passive
/// connection in SYN_RECEIVED takes a SYN|ACK at SEG.SEQ = IRS that
/// acknowledges its SYN as a simultaneous open
/// (`Connection::handshake_repeat`, crates/proto/src/connection/input.rs)
/// and hands the segment's whole text to `text_and_fin`, which the first
/// step's trimming to the receive window never saw: 13,257 bytes become
/// readable after a window (and buffer) of 12,288. One packet's worth per
/// connection (at most 64 KiB past the limit), but it breaks the receive
/// buffer's bound, and with it `recv_memory`'s documented 2 × limit +
/// 64 KiB. Every other way in trims: the same data on a plain ACK at
/// IRS + 1, or at IRS (its first byte old), leaves 12,288 readable.
/// Fixed: that text is trimmed to the window too.
#[test]
fn syn_received_simultaneous_open_syn_ack_data_is_trimmed_to_the_window() {
    let (mut c, offered) = syn_received();
    assert_eq!(offered, 12 * 1024);
    let now = Instant::from_millis(1_010);
    c.handle_segment(
        now,
        Segment {
            repr: repr(TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0), IRS, ISS + 1),
            payload: Bytes::from(vec![7u8; 13_257]),
        },
    );
    assert!(c.state().is_synchronized(), "{:?}", c.state());
    assert!(
        c.readable() <= offered,
        "{} bytes readable after a window of {offered}",
        c.readable()
    );
}

/// The same on the plain ACK path: trimmed (passes; shows the test above
/// asks for no more than every other path does).
#[test]
fn syn_received_ack_data_beyond_the_window_is_trimmed() {
    let (mut c, offered) = syn_received();
    let now = Instant::from_millis(1_010);
    c.handle_segment(
        now,
        Segment {
            repr: repr(TcpFlags::ACK, IRS + 1, ISS + 1),
            payload: Bytes::from(vec![7u8; 13_257]),
        },
    );
    assert!(c.state().is_synchronized(), "{:?}", c.state());
    assert_eq!(c.readable(), offered);
}

/// The fuzzer's input for the bug above, through the whole endpoint check.
#[test]
fn endpoint_fuzz_crash_a79ad6cf_syn_ack_data_past_the_receive_buffer() {
    let data = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/endpoint/crash-a79ad6cf"),
    )
    .expect("input");
    utcp_wire_fuzz::endpoint(&data);
}

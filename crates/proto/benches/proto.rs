//! Micro benchmarks of utcp-proto (divan): `cargo bench -p utcp-proto`.
//!
//! - `checksum`: the Internet checksum over 40 B, 1,460 B and 64 KiB (bytes/s).
//! - `wire`: parse (with and without the TCP checksum) and emit of an IPv4
//!   data segment of 1,460 B with timestamps.
//! - `state_machine`: one in-order data segment received (the application
//!   reads it; the receiver emits the ACK it owes), one ACK received by the
//!   sender, one data segment sent, and a whole round (send, receive, ACK).
//!
//! `bench/callgrind-check` counts instructions per received and per sent
//! segment with the `segment_count` bench under callgrind.

mod pair;

use bytes::{Bytes, BytesMut};
use divan::Bencher;
use divan::counter::BytesCount;
use pair::Pair;
use std::hint::black_box;
use std::net::IpAddr;
use utcp_proto::SeqNum;
use utcp_proto::wire::{self, TcpFlags, TcpOptions, TcpRepr};

fn main() {
    divan::main();
}

mod checksum {
    use super::*;

    #[divan::bench(args = [40, 1460, 65536])]
    fn checksum(bencher: Bencher, len: usize) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        bencher
            .counter(BytesCount::new(len))
            .bench(|| wire::checksum::checksum(black_box(&data)));
    }
}

mod wire_format {
    use super::*;

    const SRC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const DST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn repr() -> TcpRepr {
        TcpRepr {
            src_port: 40_000,
            dst_port: 7,
            seq: SeqNum::new(123_456),
            ack: SeqNum::new(654_321),
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 502,
            urgent: 0,
            options: TcpOptions {
                timestamps: Some((1_000, 2_000)),
                ..TcpOptions::default()
            },
        }
    }

    fn packet() -> Bytes {
        let payload = vec![0xa5u8; 1460];
        let mut buf = BytesMut::new();
        wire::emit_ip_tcp(&mut buf, SRC, DST, 64, &repr(), &payload);
        buf.extend_from_slice(&payload);
        buf.freeze()
    }

    #[divan::bench(args = [true, false])]
    fn parse(bencher: Bencher, verify_checksum: bool) {
        let pkt = packet();
        bencher.bench(|| wire::parse_ip_tcp(black_box(&pkt), verify_checksum).unwrap());
    }

    #[divan::bench]
    fn emit(bencher: Bencher) {
        let payload = vec![0xa5u8; 1460];
        let r = repr();
        let mut buf = BytesMut::with_capacity(128);
        bencher.bench_local(|| {
            buf.clear();
            wire::emit_ip_tcp(&mut buf, SRC, DST, 64, black_box(&r), black_box(&payload));
            black_box(buf.len())
        });
    }
}

mod state_machine {
    use super::*;

    /// Steps taken before measuring: the window is open, buffers allocated.
    const WARM: usize = 64;

    /// One in-order data segment in, the application reads it, the ACK it
    /// owes out.
    #[divan::bench]
    fn data_segment_received(bencher: Bencher) {
        bencher
            .with_inputs(|| {
                let mut p = Pair::new(WARM);
                p.align_to_ack();
                p.tick();
                let seg = p.send_segment();
                (p, seg)
            })
            .bench_local_values(|(mut p, seg)| {
                let ack = p.receive_segment(seg);
                (p, ack)
            });
    }

    /// The sender takes one ACK of new data.
    #[divan::bench]
    fn ack_received(bencher: Bencher) {
        bencher
            .with_inputs(|| {
                let mut p = Pair::new(WARM);
                p.align_to_ack();
                p.tick();
                let seg = p.send_segment();
                let ack = p.receive_segment(seg).expect("an ACK");
                (p, ack)
            })
            .bench_local_values(|(mut p, ack)| {
                p.receive_ack(ack);
                p
            });
    }

    /// One MSS queued and one data segment emitted.
    #[divan::bench]
    fn data_segment_sent(bencher: Bencher) {
        bencher
            .with_inputs(|| {
                let mut p = Pair::new(WARM);
                p.tick();
                p
            })
            .bench_local_values(|mut p| {
                let seg = p.send_segment();
                (p, seg)
            });
    }

    /// A whole round per segment: send, receive, read, and every other
    /// segment an ACK back (bytes of payload per second).
    #[divan::bench]
    fn round(bencher: Bencher) {
        let mut p = Pair::new(WARM);
        let mss = p.a.stats().mss as usize;
        bencher
            .counter(BytesCount::new(mss))
            .bench_local(|| p.step());
    }
}

/// A listener under a SYN flood with cookies on (the listener issue's SYN
/// rate): per SYN, parse the IPv4 packet (checksum verified), route it
/// through the endpoint (SYN queue full: a cookie SYN-ACK with WS, SACK and
/// timestamps), and emit that SYN-ACK. SYNs per second on one core.
mod listen {
    use super::*;
    use divan::counter::ItemsCount;
    use utcp_proto::{Endpoint, EndpointConfig, Instant, Route};

    const DST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn syn(i: u32) -> BytesMut {
        let src = IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 | (i & 0xff_ffff)));
        let repr = TcpRepr {
            src_port: 1024 + (i % 60_000) as u16,
            dst_port: 80,
            seq: SeqNum::new(i.wrapping_mul(2_654_435_761)),
            ack: SeqNum::new(0),
            flags: TcpFlags::SYN,
            window: 65_535,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some((i, 0)),
                ..TcpOptions::default()
            },
        };
        let mut buf = BytesMut::new();
        wire::emit_ip_tcp(&mut buf, src, DST, 64, &repr, &[]);
        buf
    }

    #[divan::bench]
    fn syn_cookie(bencher: Bencher) {
        let mut ep: Endpoint<()> = Endpoint::new(
            EndpointConfig {
                secret: [3; 16],
                syn_queue: 1,
                ..EndpointConfig::default()
            },
            vec![DST],
        );
        ep.listen("10.0.0.2:80".parse().unwrap(), 1024).unwrap();
        let packets: Vec<BytesMut> = (0..1024).map(syn).collect();
        let now = Instant::from_millis(5_000);
        // The one half-open connection the SYN queue holds.
        let first = wire::parse_ip_tcp(&packets[0], true).unwrap();
        let _ = ep.handle(now, first.src, DST, &first.tcp, 0);
        let mut out = BytesMut::with_capacity(4096);
        let mut i = 1;
        bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
            let p = wire::parse_ip_tcp(&packets[i % packets.len()], true).unwrap();
            i += 1;
            let r = ep.handle(now, p.src, p.dst, &p.tcp, p.payload.len());
            debug_assert!(matches!(r, Route::SynCookie));
            out.clear();
            black_box(ep.poll_transmit(&mut out))
        });
    }
}

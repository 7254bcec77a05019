//! Whatever a peer sends, in any state, the state machine never panics and
//! everything it emits parses: random segments (near the live sequence numbers
//! and anywhere in the space), timeouts and user calls, on active and passive
//! connections.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use std::net::SocketAddr;
use utcp_proto::wire::{self, TcpFlags, TcpOptions, TcpRepr};
use utcp_proto::{Config, Connection, Duration, Instant, Segment, SeqNum};

#[derive(Clone, Debug)]
enum Op {
    Seg {
        flags: u8,
        seq: Pos,
        ack: Pos,
        len: u16,
        win: u16,
        mss: Option<u16>,
    },
    Wait(u32),
    Send(u16),
    Recv(u16),
    Shutdown,
    Close,
    Abort,
}

/// A sequence number relative to a live value, or anywhere.
#[derive(Clone, Debug)]
enum Pos {
    Near(i32),
    Any(u32),
}

fn pos() -> impl Strategy<Value = Pos> {
    prop_oneof![
        4 => Just(Pos::Near(0)),
        4 => (-3000i32..3000).prop_map(Pos::Near),
        2 => (-140_000i32..140_000).prop_map(Pos::Near),
        1 => any::<u32>().prop_map(Pos::Any),
    ]
}

fn flags() -> impl Strategy<Value = u8> {
    let (a, p, f, r, y) = (
        TcpFlags::ACK.0,
        TcpFlags::PSH.0,
        TcpFlags::FIN.0,
        TcpFlags::RST.0,
        TcpFlags::SYN.0,
    );
    prop_oneof![
        6 => Just(a),
        4 => Just(a | p),
        2 => Just(a | f),
        1 => Just(a | p | f),
        1 => Just(r),
        1 => Just(r | a),
        1 => Just(y),
        1 => Just(y | a),
        1 => any::<u8>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (flags(), pos(), pos(), prop_oneof![3 => Just(0u16), 2 => 1u16..1500, 1 => 1500u16..3000], any::<u16>(), proptest::option::of(any::<u16>()))
            .prop_map(|(flags, seq, ack, len, win, mss)| Op::Seg { flags, seq, ack, len, win, mss }),
        3 => (0u32..200_000).prop_map(Op::Wait),
        2 => (0u16..20_000).prop_map(Op::Send),
        2 => (0u16..20_000).prop_map(Op::Recv),
        1 => Just(Op::Shutdown),
        1 => Just(Op::Close),
        1 => Just(Op::Abort),
    ]
}

fn resolve(p: &Pos, base: SeqNum) -> SeqNum {
    match p {
        Pos::Near(d) => SeqNum::new(base.get().wrapping_add(*d as u32)),
        Pos::Any(v) => SeqNum::new(*v),
    }
}

/// Drains every output, checking that each emitted segment parses.
fn drain(c: &mut Connection, now: Instant, buf: &mut BytesMut) {
    for _ in 0..10_000 {
        buf.clear();
        let Some(t) = c.poll_transmit(now, buf) else {
            break;
        };
        let mut pkt = buf[buf.len() - t.header_len..].to_vec();
        pkt.extend_from_slice(&t.payload);
        let parsed = wire::parse_ip_tcp(&pkt, true).expect("an emitted segment does not parse");
        assert_eq!(parsed.tcp, t.repr);
        assert_eq!(parsed.payload.len(), t.payload.len());
    }
    while c.poll_event().is_some() {}
    let _ = c.poll_timeout();
}

fn run(passive: bool, established: bool, ops: Vec<Op>) {
    let (l, r): (SocketAddr, SocketAddr) = (
        "10.0.0.1:1000".parse().unwrap(),
        "10.0.0.2:2000".parse().unwrap(),
    );
    let mut now = Instant::from_millis(5);
    let cfg = Config {
        recv_buffer: 8 * 1024,
        send_buffer: 32 * 1024,
        max_ooo_ranges: 4,
        ..Config::default()
    };
    let mut c = if passive {
        let syn = TcpRepr {
            src_port: r.port(),
            dst_port: l.port(),
            seq: SeqNum::new(77),
            ack: SeqNum::new(0),
            flags: TcpFlags::SYN,
            window: 1000,
            urgent: 0,
            options: TcpOptions {
                mss: Some(536),
                ..TcpOptions::default()
            },
        };
        Connection::accept(cfg, l, r, SeqNum::new(0xffff_f000), now, &syn).unwrap()
    } else {
        Connection::connect(cfg, l, r, SeqNum::new(0xffff_f000), now).unwrap()
    };
    let mut buf = BytesMut::new();
    let payload = Bytes::from(vec![0xa5u8; 3000]);
    let mut sink = vec![0u8; 20_000];
    drain(&mut c, now, &mut buf);
    if established {
        // Complete the handshake first, so the random part starts in ESTABLISHED.
        let (seq, flags) = if passive {
            (SeqNum::new(78), TcpFlags::ACK)
        } else {
            (SeqNum::new(77), TcpFlags::SYN | TcpFlags::ACK)
        };
        let repr = TcpRepr {
            src_port: r.port(),
            dst_port: l.port(),
            seq,
            ack: SeqNum::new(0xffff_f001),
            flags,
            window: 4000,
            urgent: 0,
            options: TcpOptions {
                mss: Some(536),
                ..TcpOptions::default()
            },
        };
        c.handle_segment(
            now,
            Segment {
                repr,
                payload: Bytes::new(),
            },
        );
        drain(&mut c, now, &mut buf);
        assert_eq!(c.state(), utcp_proto::State::Established);
    }
    for op in ops {
        match op {
            Op::Seg {
                flags,
                seq,
                ack,
                len,
                win,
                mss,
            } => {
                let repr = TcpRepr {
                    src_port: r.port(),
                    dst_port: l.port(),
                    seq: resolve(&seq, c.rcv_nxt()),
                    ack: resolve(&ack, c.snd_max()),
                    flags: TcpFlags(flags),
                    window: win,
                    urgent: 0,
                    options: TcpOptions {
                        mss,
                        ..TcpOptions::default()
                    },
                };
                c.handle_segment(
                    now,
                    Segment {
                        repr,
                        payload: payload.slice(..len as usize),
                    },
                );
            }
            Op::Wait(ms) => {
                now += Duration::from_millis(ms as u64);
                c.handle_timeout(now);
            }
            Op::Send(n) => {
                let _ = c.send(&payload.repeat(7)[..n as usize]);
            }
            Op::Recv(n) => {
                let _ = c.recv(&mut sink[..n as usize]);
            }
            Op::Shutdown => c.shutdown(now),
            Op::Close => c.close(now),
            Op::Abort => c.abort(now),
        }
        drain(&mut c, now, &mut buf);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn active_connection_never_panics(ops in proptest::collection::vec(op(), 1..60)) {
        run(false, false, ops);
    }

    #[test]
    fn passive_connection_never_panics(ops in proptest::collection::vec(op(), 1..60)) {
        run(true, false, ops);
    }

    #[test]
    fn established_active_connection_never_panics(ops in proptest::collection::vec(op(), 1..80)) {
        run(false, true, ops);
    }

    #[test]
    fn established_passive_connection_never_panics(ops in proptest::collection::vec(op(), 1..80)) {
        run(true, true, ops);
    }
}

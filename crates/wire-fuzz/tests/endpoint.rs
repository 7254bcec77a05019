//! The endpoint target's check does real work: hand-written operation
//! sequences reach the states the fuzzer explores from (a passive and an
//! active handshake with data both ways and a close through TIME_WAIT, a
//! SYN flood answered with cookies and a cookie ACK that becomes a
//! connection), with every invariant checked on the way.

use utcp_wire_fuzz::endpoint::{
    AckSel, Advance, Flow, Input, Kind, Op, Opts, Payload, Seg, SeqSel, Setup, TsEcr, TsVal, run,
};

fn opts(ts: bool) -> Opts {
    Opts {
        mss: None,
        window_scale: None,
        sack_permitted: false,
        sack: [None; 4],
        timestamps: ts.then_some((TsVal::Clock, TsEcr::Echo)),
    }
}

fn seg(flow: Flow, kind: Kind, ack: AckSel, payload: Payload, ts: bool) -> Op {
    Op::Segment(Seg {
        flow,
        kind,
        seq: SeqSel::Next(0),
        ack,
        window: 65_535,
        opts: opts(ts),
        payload,
        advance: true,
        truesize: None,
    })
}

fn syn(flow: Flow, ts: bool) -> Op {
    Op::Segment(Seg {
        opts: Opts {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            ..opts(ts)
        },
        ..match seg(flow, Kind::Syn, AckSel::Raw(0), Payload::Empty, ts) {
            Op::Segment(s) => s,
            _ => unreachable!(),
        }
    })
}

/// Linux-like sizes: MSS 1460, 64 KiB buffers, room for 8 connections and
/// 4 TIME_WAIT records, SYN queue and backlog of 1.
fn setup() -> Setup {
    Setup {
        mss: 1396,
        recv_kib: 63,
        send_kib: 63,
        max_connections: 7,
        max_time_wait: 4,
        msl_secs: 29,
        ..Setup::default()
    }
}

const PEER: Flow = Flow::Fresh {
    src: 0,
    sport: 0,
    dst: 0,
    dport: 0,
};

/// A peer opens to port 80, both sides send data, both close; the server
/// (us) closes first, so it ends in TIME_WAIT.
#[test]
fn endpoint_passive_handshake_data_and_close_reach_time_wait() {
    let conn = Flow::Conn(0);
    let ops = vec![
        syn(PEER, true),
        seg(conn, Kind::Ack, AckSel::Iss(0), Payload::Empty, true),
        Op::Accept { listener: 0 },
        seg(
            conn,
            Kind::Push,
            AckSel::SndMax(0),
            Payload::Len(1000),
            true,
        ),
        Op::Read { conn: 0, len: 4000 },
        Op::Write { conn: 0, len: 3000 },
        Op::Advance(Advance::Millis(10)),
        seg(conn, Kind::Ack, AckSel::SndMax(0), Payload::Empty, true),
        Op::Close { conn: 0 },
        seg(conn, Kind::Ack, AckSel::SndMax(0), Payload::Empty, true),
        seg(conn, Kind::Fin, AckSel::SndMax(0), Payload::Empty, true),
        Op::Advance(Advance::Deadlines(3)),
    ];
    let s = run(&Input {
        setup: setup(),
        ops,
    });
    assert_eq!(s.connected, 1, "{s:?}");
    assert_eq!(s.bytes_read, 1000, "{s:?}");
    assert!(s.bytes_sent >= 3001, "{s:?}");
    assert_eq!(s.time_waits, 1, "{s:?}");
}

/// We connect out; the peer answers SYN-ACK and sends data, we send data;
/// the peer resets.
#[test]
fn endpoint_active_open_moves_data_and_is_reset() {
    let conn = Flow::Conn(0);
    let ops = vec![
        Op::Connect {
            remote: 0,
            port: 0,
            local: None,
        },
        Op::Segment(Seg {
            opts: Opts {
                mss: Some(1000),
                window_scale: Some(2),
                sack_permitted: true,
                ..opts(true)
            },
            ..match seg(conn, Kind::SynAck, AckSel::SndMax(0), Payload::Empty, true) {
                Op::Segment(s) => s,
                _ => unreachable!(),
            }
        }),
        Op::Write { conn: 0, len: 5000 },
        seg(conn, Kind::Push, AckSel::SndMax(0), Payload::Len(700), true),
        Op::Read { conn: 0, len: 100 },
        Op::Read { conn: 0, len: 1000 },
        Op::Advance(Advance::Millis(50)),
        seg(conn, Kind::Rst, AckSel::Raw(0), Payload::Empty, true),
    ];
    let s = run(&Input {
        setup: setup(),
        ops,
    });
    assert_eq!(s.connected, 1, "{s:?}");
    assert_eq!(s.bytes_read, 700, "{s:?}");
    assert!(s.bytes_sent >= 1000, "{s:?}");
    assert_eq!(s.resets, 1, "{s:?}");
}

/// A flood fills the SYN queue (of 1), the rest are answered with cookies,
/// and the ACK of one cookie, echoing its timestamp, becomes a connection.
#[test]
fn endpoint_flood_is_answered_with_cookies_and_a_cookie_ack_connects() {
    // Peer 0 is the one SYN given a connection; peer 1 got a cookie.
    let ops = vec![
        Op::Flood {
            listener: 0,
            count: 7,
            base: 0,
            timestamps: true,
            sack: true,
            window_scale: Some(7),
        },
        Op::Segment(Seg {
            flow: Flow::Known(1),
            kind: Kind::Push,
            seq: SeqSel::Next(0),
            ack: AckSel::Iss(0),
            window: 1000,
            opts: opts(true),
            payload: Payload::Len(100),
            advance: true,
            truesize: None,
        }),
        Op::Accept { listener: 0 },
        Op::Read { conn: 0, len: 200 },
    ];
    let s = run(&Input {
        setup: setup(),
        ops,
    });
    assert_eq!(s.cookies_sent, 7, "{s:?}");
    assert_eq!(s.cookie_conns, 1, "{s:?}");
    assert_eq!(s.connected, 1, "{s:?}");
    assert_eq!(s.bytes_read, 100, "{s:?}");
}

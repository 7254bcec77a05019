//! Two connected [`Connection`]s driven segment by segment, for the
//! per-segment benchmarks (`proto` under divan, `segment_count` under
//! callgrind). Only the public API: what the runtime does per segment,
//! without devices or tasks.
//!
//! One step: the sender queues one MSS of data and emits one segment; the
//! receiver takes it, the application reads it, and the receiver emits
//! whatever ACK it owes (in this steady state every other segment: one ACK
//! per two full segments, RFC 9293 §3.8.6.3); the sender takes that ACK.
//! The clock moves 10 µs per step, so no timer
//! fires.
#![allow(dead_code)]

use bytes::BytesMut;
use std::hint::black_box;
use std::net::SocketAddr;
use utcp_proto::{Config, Connection, Duration, Instant, Segment, SeqNum, State};

/// A sender `a` and a receiver `b`, connected.
pub struct Pair {
    /// The sender.
    pub a: Connection,
    /// The receiver.
    pub b: Connection,
    /// The fake clock.
    pub now: Instant,
    buf: BytesMut,
    data: Vec<u8>,
    sink: Vec<u8>,
    mss: usize,
}

const STEP: Duration = Duration::from_micros(10);

/// Drains `from`'s transmits into `to` (handshake and close).
fn exchange(now: Instant, from: &mut Connection, to: &mut Connection, buf: &mut BytesMut) -> bool {
    let mut any = false;
    while let Some(t) = from.poll_transmit(now, buf) {
        buf.clear();
        to.handle_segment(
            now,
            Segment {
                repr: t.repr,
                payload: t.payload,
            },
        );
        any = true;
    }
    any
}

impl Pair {
    /// A connected pair after `warm` steps (so the congestion window has
    /// opened and the buffers are allocated).
    pub fn new(warm: usize) -> Pair {
        let cfg = Config::default();
        let a_addr: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let b_addr: SocketAddr = "10.0.0.2:7".parse().unwrap();
        let mut now = Instant::from_millis(1);
        let mut buf = BytesMut::with_capacity(256);
        let mut a =
            Connection::connect(cfg.clone(), a_addr, b_addr, SeqNum::new(1_000), now).unwrap();
        let syn = a.poll_transmit(now, &mut buf).expect("a SYN");
        buf.clear();
        let mut b =
            Connection::accept(cfg, b_addr, a_addr, SeqNum::new(900_000), now, &syn.repr).unwrap();
        for _ in 0..8 {
            now += Duration::from_millis(1);
            let x = exchange(now, &mut b, &mut a, &mut buf);
            let y = exchange(now, &mut a, &mut b, &mut buf);
            if !x && !y {
                break;
            }
        }
        assert_eq!(a.state(), State::Established, "the handshake completes");
        assert_eq!(b.state(), State::Established, "the handshake completes");
        let mss = a.stats().mss as usize;
        let mut p = Pair {
            a,
            b,
            now,
            buf,
            data: vec![0x5a; mss],
            sink: vec![0; 64 * 1024],
            mss,
        };
        for _ in 0..warm {
            p.step();
        }
        p
    }

    /// The sender's half of a step: queue one MSS, emit one data segment.
    #[inline(never)]
    pub fn send_segment(&mut self) -> Segment {
        let n = self.a.send(&self.data).expect("send");
        assert_eq!(n, self.mss, "the send buffer has room for a segment");
        let t = self
            .a
            .poll_transmit(self.now, &mut self.buf)
            .expect("a data segment");
        self.buf.clear();
        // Nothing else leaves with it.
        debug_assert!(self.a.poll_transmit(self.now, &mut self.buf).is_none());
        Segment {
            repr: t.repr,
            payload: t.payload,
        }
    }

    /// The receiver's half: take the segment, let the application read it,
    /// emit the ACK owed (if any).
    #[inline(never)]
    pub fn receive_segment(&mut self, seg: Segment) -> Option<Segment> {
        self.b.handle_segment(self.now, seg);
        while let Ok(Some(n)) = self.b.recv(&mut self.sink) {
            if n == 0 {
                break;
            }
            black_box(&self.sink[..n]);
        }
        let mut ack = None;
        while let Some(t) = self.b.poll_transmit(self.now, &mut self.buf) {
            self.buf.clear();
            ack = Some(Segment {
                repr: t.repr,
                payload: t.payload,
            });
        }
        while self.b.poll_event().is_some() {}
        ack
    }

    /// The sender takes an ACK.
    #[inline(never)]
    pub fn receive_ack(&mut self, ack: Segment) {
        self.a.handle_segment(self.now, ack);
        while self.a.poll_event().is_some() {}
    }

    /// One whole step; returns whether an ACK went back.
    pub fn step(&mut self) -> bool {
        self.now += STEP;
        let seg = self.send_segment();
        match self.receive_segment(seg) {
            Some(ack) => {
                self.receive_ack(ack);
                true
            }
            None => false,
        }
    }

    /// Steps until the receiver's next segment will be answered with an ACK
    /// (so that the next data segment costs a received segment and an ACK out).
    pub fn align_to_ack(&mut self) {
        for _ in 0..4 {
            if self.step() {
                return;
            }
        }
    }

    /// Advances the clock one step (before a hand-driven half step).
    pub fn tick(&mut self) {
        self.now += STEP;
    }
}

//! Buffer auto-tuning (Linux's `tcp_rcv_space_adjust` and
//! `tcp_sndbuf_expand`): two connections joined by a 10 ms delay line each
//! way in virtual time, a bulk transfer from `a` to `b`.

use bytes::BytesMut;
use std::collections::VecDeque;
use utcp_proto::{Config, Connection, Duration, Instant, Segment, SeqNum};

const DELAY: Duration = Duration::from_millis(10);

struct Line {
    a: Connection,
    b: Connection,
    now: Instant,
    /// (deliver at, to b?, segment), in send order per direction.
    wire: VecDeque<(Instant, bool, Segment)>,
    buf: BytesMut,
}

impl Line {
    fn new(cfg_a: Config, cfg_b: Config, rcvbuf_b: Option<usize>) -> Line {
        let (a_addr, b_addr) = (
            "10.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
        );
        let now = Instant::from_millis(1);
        let mut a = Connection::connect(cfg_a, a_addr, b_addr, SeqNum::new(1000), now).unwrap();
        let mut buf = BytesMut::new();
        let syn = a.poll_transmit(now, &mut buf).expect("SYN").repr;
        let mut b =
            Connection::accept(cfg_b, b_addr, a_addr, SeqNum::new(9000), now, &syn).unwrap();
        if let Some(n) = rcvbuf_b {
            b.set_recv_buffer_size(n).unwrap();
        }
        let mut line = Line {
            a,
            b,
            now,
            wire: VecDeque::new(),
            buf,
        };
        line.collect();
        line
    }

    /// Everything both sides want to send goes on the wire.
    fn collect(&mut self) {
        for to_b in [true, false] {
            let c = if to_b { &mut self.a } else { &mut self.b };
            loop {
                self.buf.clear();
                let Some(t) = c.poll_transmit(self.now, &mut self.buf) else {
                    break;
                };
                self.wire.push_back((
                    self.now + DELAY,
                    to_b,
                    Segment {
                        repr: t.repr,
                        payload: t.payload,
                    },
                ));
            }
            while c.poll_event().is_some() {}
        }
    }

    /// Runs until `done` or `limit` of virtual time; `a` keeps its send
    /// buffer full, `b` reads everything when `read`.
    fn run(&mut self, limit: Duration, read: bool, mut done: impl FnMut(&Line) -> bool) {
        let end = self.now + limit;
        let chunk = vec![0x5au8; 64 * 1024];
        let mut sink = vec![0u8; 256 * 1024];
        for _ in 0..10_000_000 {
            if done(self) || self.now >= end {
                return;
            }
            while self.a.send(&chunk).unwrap_or(0) > 0 {}
            if read {
                while let Ok(Some(n)) = self.b.recv(&mut sink) {
                    if n == 0 {
                        break;
                    }
                }
            }
            self.collect();
            let next_wire = self.wire.front().map(|w| w.0);
            let next = [next_wire, self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .expect("something to do");
            self.now = self.now.max(next);
            while self.wire.front().is_some_and(|w| w.0 <= self.now) {
                let (_, to_b, seg) = self.wire.pop_front().unwrap();
                let c = if to_b { &mut self.b } else { &mut self.a };
                c.handle_segment(self.now, seg);
            }
            self.a.handle_timeout(self.now);
            self.b.handle_timeout(self.now);
        }
        panic!("step bound reached");
    }
}

#[test]
fn the_receive_buffer_grows_with_what_the_reader_takes_per_round_trip() {
    // No loss, 20 ms RTT, a reader that keeps up: the window must outgrow
    // the 64 KiB start, or the sender is stuck at 64 KiB per round trip.
    let mut l = Line::new(Config::default(), Config::default(), None);
    let start = l.b.stats().recv_buffer;
    assert_eq!(start, 64 * 1024);
    l.run(Duration::from_secs(3), true, |l| {
        l.b.stats().recv_buffer >= 2 * 1024 * 1024
    });
    let s = l.b.stats();
    assert!(
        s.recv_buffer >= 2 * 1024 * 1024,
        "receive buffer {} after 3 s",
        s.recv_buffer
    );
    assert!(s.recv_buffer as usize <= Config::default().recv_buffer_max);
    let rtt = s.rcv_rtt.expect("the receiver measured an RTT");
    assert!(
        rtt >= Duration::from_millis(15) && rtt <= Duration::from_millis(30),
        "rcv_rtt {rtt:?}"
    );
    // The advertised window followed (scaled: shift 7 fits 6 MiB).
    assert_eq!(s.rcv_wscale, Some(7));
    assert!(l.a.stats().send_window > 65_535 * 4);
    // And the send buffer grew with cwnd.
    let a = l.a.stats();
    assert!(
        a.send_buffer > 256 * 1024 && a.send_buffer as usize >= (2 * a.cwnd as usize).min(4 << 20),
        "send buffer {} with cwnd {}",
        a.send_buffer,
        a.cwnd
    );
}

#[test]
fn a_reader_that_does_not_read_does_not_grow_the_buffer() {
    let mut l = Line::new(Config::default(), Config::default(), None);
    l.run(Duration::from_secs(2), false, |_| false);
    assert_eq!(l.b.stats().recv_buffer, 64 * 1024);
    assert_eq!(l.a.stats().send_window, 0, "the window is full");
}

#[test]
fn a_fixed_receive_buffer_turns_auto_tuning_off() {
    // SO_RCVBUF set before the SYN-ACK: that size, and a shift that fits it.
    let mut l = Line::new(Config::default(), Config::default(), Some(200_000));
    l.run(Duration::from_secs(2), true, |_| false);
    let s = l.b.stats();
    assert_eq!(s.recv_buffer, 200_000);
    assert_eq!(s.rcv_wscale, Some(2));
}

#[test]
fn no_auto_tuning_when_the_limit_is_the_start() {
    let cfg = Config {
        recv_buffer_max: 64 * 1024,
        send_buffer_max: 256 * 1024,
        ..Config::default()
    };
    let mut l = Line::new(cfg.clone(), cfg, None);
    l.run(Duration::from_secs(2), true, |_| false);
    assert_eq!(l.b.stats().recv_buffer, 64 * 1024);
    assert_eq!(l.a.stats().send_buffer, 256 * 1024);
    assert_eq!(l.b.stats().rcv_wscale, Some(1), "65,536 needs a shift of 1");
}

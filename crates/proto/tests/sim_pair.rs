//! Deterministic simulation: two endpoints, each with one connection, joined by
//! a seeded lossy link (loss, duplication, reordering, bit flips) in virtual
//! time. The clock jumps to the next delivery or deadline; `run` drives until
//! both sides are idle, with a bound on steps and on virtual time.
//!
//! Property: every byte arrives exactly once and in order (200 KiB each way in
//! the main property), and both sides end in CLOSED or TIME_WAIT after both
//! close, then CLOSED once 2·MSL has passed.
//!
//! `UTCP_LOG=trace cargo test -p utcp-proto --test sim_pair NAME -- --nocapture`
//! shows every segment and state change.

mod common;

use bytes::{Bytes, BytesMut};
use common::{parse_transmit, pattern};
use proptest::prelude::*;
use std::net::{IpAddr, SocketAddr};
use utcp_proto::wire;
use utcp_proto::{
    Config, ConnHandle, Connection, Duration, Endpoint, EndpointConfig, FourTuple, Instant, Route,
    Segment, State,
};

/// xorshift64*: a few lines, seeded, repeatable.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// What the link does to packets (each direction has its own RNG).
#[derive(Clone, Copy, Debug)]
struct Impairments {
    loss: f64,
    dup: f64,
    /// Probability of an extra delay of up to 30 ms (reordering).
    reorder: f64,
    /// Probability of one flipped bit (the checksum must catch it).
    corrupt: f64,
}

const CLEAN: Impairments = Impairments {
    loss: 0.0,
    dup: 0.0,
    reorder: 0.0,
    corrupt: 0.0,
};

/// Everything a run varies besides the seed.
#[derive(Clone, Copy, Debug)]
struct Scenario {
    imp: Impairments,
    /// Bytes the client sends, bytes the server sends.
    sizes: (usize, usize),
    /// Receive buffer of both connections.
    recv_buffer: usize,
    /// Bytes an application reads per wake (`None`: everything, at once); a
    /// slow reader wakes every `READ_TICK` and makes the window close.
    read_chunk: Option<usize>,
    /// MSS of the client and of the server.
    mss: (u16, u16),
    /// Start the client's ISS just below 2^32 so its stream wraps.
    wrap: bool,
    /// No listener: both sides connect to each other at once (RFC 9293 §3.5).
    simultaneous_open: bool,
}

const BASE: Scenario = Scenario {
    imp: CLEAN,
    sizes: (200 * 1024, 200 * 1024),
    recv_buffer: 64 * 1024,
    read_chunk: None,
    mss: (1460, 1460),
    wrap: false,
    simultaneous_open: false,
};
const READ_TICK: Duration = Duration::from_millis(20);

/// One direction of the link.
struct Link {
    imp: Impairments,
    rng: Rng,
    /// (delivery time, send order, packet)
    queue: Vec<(Instant, u64, Bytes)>,
    order: u64,
    delay: Duration,
}

impl Link {
    fn new(imp: Impairments, seed: u64) -> Link {
        Link {
            imp,
            rng: Rng::new(seed),
            queue: Vec::new(),
            order: 0,
            delay: Duration::from_millis(10),
        }
    }

    fn send(&mut self, now: Instant, packet: Bytes) {
        if self.rng.chance(self.imp.loss) {
            return;
        }
        let copies = if self.rng.chance(self.imp.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let mut at = now + self.delay;
            if self.rng.chance(self.imp.reorder) {
                at += Duration::from_micros(self.rng.below(30_000));
            }
            let mut p = packet.clone();
            if self.rng.chance(self.imp.corrupt) {
                let mut b = BytesMut::from(&p[..]);
                let bit = self.rng.below(b.len() as u64 * 8) as usize;
                b[bit / 8] ^= 1 << (bit % 8);
                p = b.freeze();
            }
            self.order += 1;
            self.queue.push((at, self.order, p));
        }
    }

    fn next_delivery(&self) -> Option<Instant> {
        self.queue.iter().map(|(t, _, _)| *t).min()
    }

    fn take_due(&mut self, now: Instant) -> Vec<Bytes> {
        let mut due: Vec<(Instant, u64, Bytes)> = Vec::new();
        let mut i = 0;
        while i < self.queue.len() {
            if self.queue[i].0 <= now {
                due.push(self.queue.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|(t, o, _)| (*t, *o));
        due.into_iter().map(|(_, _, p)| p).collect()
    }
}

/// One side: an endpoint, at most one connection, and an application that
/// writes its stream, reads everything, shuts down after writing and closes
/// after reading EOF.
struct Host {
    ep: Endpoint<()>,
    conn: Option<(ConnHandle, Connection)>,
    to_send: Vec<u8>,
    written: usize,
    received: Vec<u8>,
    eof: bool,
    shut: bool,
    closed: bool,
    read_chunk: Option<usize>,
    next_read: Instant,
    buf: BytesMut,
    bad_packets: u64,
}

impl Host {
    fn new(
        addr: IpAddr,
        secret: u64,
        cfg: Config,
        to_send: Vec<u8>,
        read_chunk: Option<usize>,
    ) -> Host {
        let mut s = [0u8; 16];
        s[..8].copy_from_slice(&secret.to_le_bytes());
        s[8..].copy_from_slice(&secret.rotate_left(17).to_le_bytes());
        let ecfg = EndpointConfig {
            secret: s,
            conn: cfg,
            ..EndpointConfig::default()
        };
        Host {
            ep: Endpoint::new(ecfg, vec![addr]),
            conn: None,
            to_send,
            written: 0,
            received: Vec::new(),
            eof: false,
            shut: false,
            closed: false,
            read_chunk,
            next_read: Instant::ZERO,
            buf: BytesMut::new(),
            bad_packets: 0,
        }
    }

    fn state(&self) -> State {
        self.conn.as_ref().map_or(State::Closed, |(_, c)| c.state())
    }

    fn deadline(&self) -> Option<Instant> {
        let conn = self.conn.as_ref().and_then(|(_, c)| c.poll_timeout());
        // A slow reader wakes on its own tick while it has something to read.
        let reader = match (&self.conn, self.read_chunk) {
            (Some((_, c)), Some(_)) if c.readable() > 0 => Some(self.next_read),
            _ => None,
        };
        [conn, reader].into_iter().flatten().min()
    }

    fn receive(&mut self, now: Instant, packet: Bytes) {
        let Ok(parsed) = wire::parse_ip_tcp(&packet, true) else {
            self.bad_packets += 1;
            return;
        };
        let payload = packet.slice(parsed.payload.clone());
        let route = self
            .ep
            .handle(now, parsed.src, parsed.dst, &parsed.tcp, payload.len());
        match route {
            Route::Connection(h) => {
                if let Some((ch, c)) = self.conn.as_mut()
                    && *ch == h
                {
                    c.handle_segment(
                        now,
                        Segment {
                            repr: parsed.tcp,
                            payload,
                        },
                    );
                }
            }
            Route::Incoming { handle, conn, .. } => {
                assert!(self.conn.is_none(), "a second connection was accepted");
                self.ep.release_backlog(handle);
                self.conn = Some((handle, *conn));
            }
            Route::Reset | Route::SynCookie | Route::TimeWait(_) | Route::Drop(_) => {}
            Route::Ask { .. } | Route::Deferred => unreachable!("no listener decides here"),
        }
    }

    fn timeout(&mut self, now: Instant) {
        if let Some((_, c)) = self.conn.as_mut()
            && c.poll_timeout().is_some_and(|d| d <= now)
        {
            c.handle_timeout(now);
        }
    }

    /// The application's turn, then every output into `link`.
    fn step(&mut self, now: Instant, link: &mut Link) {
        if let Some((_, c)) = self.conn.as_mut() {
            while self.written < self.to_send.len() && !self.shut {
                match c.send(&self.to_send[self.written..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => self.written += n,
                }
            }
            if self.written == self.to_send.len() && !self.shut && c.state().is_synchronized() {
                c.shutdown(now);
                self.shut = true;
            }
            let mut tmp = [0u8; 8192];
            let mut budget = match self.read_chunk {
                None => usize::MAX,
                Some(_) if now < self.next_read => 0,
                Some(k) => {
                    self.next_read = now + READ_TICK;
                    k
                }
            };
            loop {
                let want = tmp.len().min(budget);
                if want == 0 && c.readable() > 0 {
                    break;
                }
                match c.recv(&mut tmp[..want.max(1)]) {
                    Ok(Some(0)) => {
                        if c.peer_closed() {
                            self.eof = true;
                        }
                        break;
                    }
                    Ok(Some(n)) => {
                        self.received.extend_from_slice(&tmp[..n]);
                        budget = budget.saturating_sub(n);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            if self.eof && self.shut && !self.closed {
                c.close(now);
                self.closed = true;
            }
            loop {
                self.buf.clear();
                let Some(tx) = c.poll_transmit(now, &mut self.buf) else {
                    break;
                };
                let _ = parse_transmit(&self.buf, &tx);
                let mut p = BytesMut::from(&self.buf[..]);
                p.extend_from_slice(&tx.payload);
                link.send(now, p.freeze());
            }
            while c.poll_event().is_some() {}
        }
        loop {
            self.buf.clear();
            let Some(tx) = self.ep.poll_transmit(&mut self.buf) else {
                break;
            };
            let mut p = BytesMut::from(&self.buf[..]);
            p.extend_from_slice(&tx.payload);
            link.send(now, p.freeze());
        }
        // A CLOSED connection leaves the table; later segments get RSTs.
        if let Some((h, c)) = &self.conn
            && c.is_closed()
        {
            let h = *h;
            self.ep.remove(h);
        }
    }
}

struct Outcome {
    /// Both states when both first were in CLOSED or TIME_WAIT.
    done: (State, State),
    /// Both states once everything stopped (after 2·MSL).
    end: (State, State),
}

/// Logs through the test writer when `UTCP_LOG` is set (e.g. `UTCP_LOG=trace`).
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("UTCP_LOG"))
        .with_test_writer()
        .try_init();
}

fn run(seed: u64, sc: Scenario) -> Outcome {
    init_tracing();
    let mut rng = Rng::new(seed ^ 0xD1B5_4A32_D192_ED03);
    let cfg = |mss| Config {
        mss,
        // Enough SYN retries that 20 % loss each way never exhausts them.
        syn_retries: 15,
        recv_buffer: sc.recv_buffer,
        ..Config::default()
    };
    let c_ip: IpAddr = "10.0.0.1".parse().unwrap();
    let s_ip: IpAddr = "10.0.0.2".parse().unwrap();
    let client_addr = SocketAddr::new(c_ip, 40_000);
    let server_addr = SocketAddr::new(s_ip, 80);
    let c_data = pattern(rng.below(1000) as usize, sc.sizes.0);
    let s_data = pattern(rng.below(1000) as usize + 7, sc.sizes.1);
    let mut client = Host::new(
        c_ip,
        rng.next_u64(),
        cfg(sc.mss.0),
        c_data.clone(),
        sc.read_chunk,
    );
    let mut server = Host::new(
        s_ip,
        rng.next_u64(),
        cfg(sc.mss.1),
        s_data.clone(),
        sc.read_chunk,
    );
    let mut c2s = Link::new(sc.imp, rng.next_u64());
    let mut s2c = Link::new(sc.imp, rng.next_u64());
    if !sc.simultaneous_open {
        server.ep.listen(server_addr, 8).expect("listen");
    }

    let mut now = Instant::from_millis(1_000 + rng.below(1_000));
    if sc.wrap {
        // ISS = now/4 µs + F(tuple): start the clock where the ISS is 2^32 − 50 000.
        let tuple = FourTuple {
            local: client_addr,
            remote: server_addr,
        };
        let f = client.ep.isn(Instant::ZERO, &tuple).get();
        let m = (u32::MAX - 50_000).wrapping_sub(f);
        now = Instant::from_micros(u64::from(m) * 4);
    }
    let (h, conn) = client
        .ep
        .connect_from(now, client_addr, server_addr)
        .expect("connect");
    if sc.wrap {
        assert_eq!(conn.iss().get(), u32::MAX - 50_000);
    }
    client.conn = Some((h, conn));
    client.step(now, &mut c2s);
    if sc.simultaneous_open {
        let (h, conn) = server
            .ep
            .connect_from(now, server_addr, client_addr)
            .expect("connect");
        server.conn = Some((h, conn));
        server.step(now, &mut s2c);
    }

    let limit = now + Duration::from_secs(4 * 3600);
    let mut steps = 0u64;
    let mut done = None;
    let finished = |h: &Host| matches!(h.state(), State::Closed | State::TimeWait);
    loop {
        steps += 1;
        assert!(
            steps < 2_000_000,
            "no end after {steps} steps (seed {seed}, {sc:?})"
        );
        if done.is_none()
            && client.conn.is_some()
            && server.conn.is_some()
            && finished(&client)
            && finished(&server)
        {
            done = Some((client.state(), server.state()));
        }
        let next = [
            c2s.next_delivery(),
            s2c.next_delivery(),
            client.deadline(),
            server.deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { break };
        assert!(
            next <= limit,
            "still busy at {next:?} (seed {seed}, {sc:?}): client {:?} server {:?}",
            client.conn.as_ref().map(|c| &c.1),
            server.conn.as_ref().map(|c| &c.1)
        );
        now = now.max(next);
        for p in c2s.take_due(now) {
            server.receive(now, p);
        }
        for p in s2c.take_due(now) {
            client.receive(now, p);
        }
        client.timeout(now);
        server.timeout(now);
        client.step(now, &mut c2s);
        server.step(now, &mut s2c);
    }
    let why = |h: &Host| {
        let (c, e) = h
            .conn
            .as_ref()
            .map_or((None, None), |c| (Some(c.1.stats()), c.1.error()));
        format!("state {:?}, error {e:?}, stats {c:?}", h.state())
    };
    assert!(
        client.received == s_data,
        "client received {} of {} bytes, or out of order (seed {seed}, {sc:?})\nclient: {}\nserver: {}",
        client.received.len(),
        s_data.len(),
        why(&client),
        why(&server)
    );
    assert!(
        server.received == c_data,
        "server received {} of {} bytes, or out of order (seed {seed}, {sc:?})\nclient: {}\nserver: {}",
        server.received.len(),
        c_data.len(),
        why(&client),
        why(&server)
    );
    assert!(
        client.eof && server.eof,
        "both read EOF (seed {seed}, {sc:?})"
    );
    let errs = (
        client.conn.as_ref().and_then(|c| c.1.error()),
        server.conn.as_ref().and_then(|c| c.1.error()),
    );
    assert_eq!(errs, (None, None), "a side failed (seed {seed}, {sc:?})");
    if sc.imp.corrupt == 0.0 {
        assert_eq!(
            client.bad_packets + server.bad_packets,
            0,
            "the codec rejected a packet it built"
        );
    }
    let done = done.expect("both sides reached CLOSED or TIME_WAIT");
    Outcome {
        done,
        end: (client.state(), server.state()),
    }
}

#[track_caller]
fn check(o: &Outcome) {
    let ok = |s: State| matches!(s, State::Closed | State::TimeWait);
    assert!(ok(o.done.0) && ok(o.done.1), "ended in {:?}", o.done);
    assert_eq!(o.end, (State::Closed, State::Closed));
}

#[test]
fn sim_clean_link_transfers_and_closes() {
    let o = run(1, BASE);
    check(&o);
    // Both wrote the same amount: at least one closed actively (TIME_WAIT).
    assert!(
        o.done.0 == State::TimeWait || o.done.1 == State::TimeWait,
        "{:?}",
        o.done
    );
}

#[test]
fn sim_twenty_percent_loss_transfers_and_closes() {
    for seed in 0..8 {
        let imp = Impairments {
            loss: 0.2,
            dup: 0.02,
            reorder: 0.1,
            corrupt: 0.01,
        };
        check(&run(seed, Scenario { imp, ..BASE }));
    }
}

#[test]
fn sim_server_closes_first_and_keeps_receiving() {
    // The server's FIN goes first; it sits in FIN_WAIT_2 receiving 200 KiB.
    for seed in 0..4 {
        let o = run(
            seed,
            Scenario {
                sizes: (200 * 1024, 10),
                ..BASE
            },
        );
        check(&o);
        assert_eq!(o.done.1, State::TimeWait, "the server closed first");
        let imp = Impairments {
            loss: 0.1,
            dup: 0.01,
            reorder: 0.1,
            corrupt: 0.0,
        };
        check(&run(
            seed,
            Scenario {
                imp,
                sizes: (200 * 1024, 0),
                ..BASE
            },
        ));
    }
}

#[test]
fn sim_client_sends_nothing() {
    let imp = Impairments {
        loss: 0.1,
        dup: 0.0,
        reorder: 0.0,
        corrupt: 0.0,
    };
    for seed in 0..4 {
        check(&run(
            seed,
            Scenario {
                imp,
                sizes: (0, 100 * 1024),
                ..BASE
            },
        ));
    }
}

#[test]
fn sim_slow_reader_small_window_transfers_and_closes() {
    for seed in 0..4 {
        let sc = Scenario {
            sizes: (64 * 1024, 64 * 1024),
            recv_buffer: 4096,
            read_chunk: Some(1000),
            ..BASE
        };
        check(&run(seed, sc));
        let imp = Impairments {
            loss: 0.1,
            dup: 0.01,
            reorder: 0.05,
            corrupt: 0.0,
        };
        check(&run(seed, Scenario { imp, ..sc }));
    }
}

#[test]
fn sim_lost_window_update_does_not_deadlock() {
    // Found by the property below: a window update lost while the sender's SWS
    // avoidance held its data back deadlocked both sides (no persist timer).
    let imp = Impairments {
        loss: 0.18530866984579433,
        ..CLEAN
    };
    let sc = Scenario {
        imp,
        recv_buffer: 4096,
        read_chunk: Some(100),
        ..BASE
    };
    check(&run(2992902898435783833, sc));
}

#[test]
fn sim_sequence_numbers_wrap() {
    check(&run(3, Scenario { wrap: true, ..BASE }));
    let imp = Impairments {
        loss: 0.1,
        dup: 0.02,
        reorder: 0.1,
        corrupt: 0.0,
    };
    check(&run(
        4,
        Scenario {
            imp,
            wrap: true,
            ..BASE
        },
    ));
}

#[test]
fn sim_different_mss_each_way() {
    let imp = Impairments {
        loss: 0.05,
        dup: 0.01,
        reorder: 0.05,
        corrupt: 0.0,
    };
    check(&run(
        5,
        Scenario {
            imp,
            mss: (536, 1460),
            ..BASE
        },
    ));
    check(&run(
        6,
        Scenario {
            imp,
            mss: (1460, 700),
            ..BASE
        },
    ));
}

#[test]
fn sim_simultaneous_open() {
    check(&run(
        7,
        Scenario {
            simultaneous_open: true,
            ..BASE
        },
    ));
    for seed in 0..8 {
        let imp = Impairments {
            loss: 0.15,
            dup: 0.02,
            reorder: 0.1,
            corrupt: 0.0,
        };
        check(&run(
            seed,
            Scenario {
                imp,
                simultaneous_open: true,
                sizes: (30_000, 30_000),
                ..BASE
            },
        ));
    }
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        (0.0f64..0.2, 0.0f64..0.05, 0.0f64..0.2, 0.0f64..0.02),
        prop::sample::select(vec![4 * 1024, 16 * 1024, 64 * 1024]),
        prop::option::of(prop::sample::select(vec![100usize, 1000, 5000])),
        prop::sample::select(vec![(1460u16, 1460u16), (536, 1460), (1460, 536)]),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(
                (loss, dup, reorder, corrupt),
                recv_buffer,
                read_chunk,
                mss,
                wrap,
                simultaneous_open,
            )| Scenario {
                imp: Impairments {
                    loss,
                    dup,
                    reorder,
                    corrupt,
                },
                recv_buffer,
                read_chunk,
                mss,
                wrap,
                simultaneous_open,
                ..BASE
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sim_transfers_exactly_once_in_order(seed: u64, sc in scenario()) {
        check(&run(seed, sc));
    }

    #[test]
    fn sim_asymmetric_transfers_exactly_once_in_order(
        seed: u64,
        loss in 0.0f64..0.2,
        sizes in prop::sample::select(vec![(0usize, 50_000usize), (50_000, 0), (1, 1), (200 * 1024, 3), (3, 200 * 1024)]),
    ) {
        let imp = Impairments { loss, dup: 0.01, reorder: 0.05, corrupt: 0.0 };
        check(&run(seed, Scenario { imp, sizes, ..BASE }));
    }
}

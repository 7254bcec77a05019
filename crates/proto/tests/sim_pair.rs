//! Deterministic simulation: two endpoints, each with one connection, joined by
//! a seeded lossy link (loss, duplication, reordering) in virtual time. The
//! clock jumps to the next delivery or deadline; `drive` runs until both sides
//! are done, with a bound on steps and virtual time.
//!
//! Property: 200 KiB each way arrives exactly once and in order, and both sides
//! end in CLOSED or TIME_WAIT after both close (then CLOSED once 2·MSL passes).

mod common;

use bytes::{Bytes, BytesMut};
use common::{parse_transmit, pattern};
use proptest::prelude::*;
use std::net::{IpAddr, SocketAddr};
use utcp_proto::wire;
use utcp_proto::{
    Config, ConnHandle, Connection, Duration, Endpoint, EndpointConfig, Instant, Route, Segment,
    State,
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

#[derive(Clone, Copy, Debug)]
struct Impairments {
    loss: f64,
    dup: f64,
    reorder: f64,
}

/// How the applications behave.
#[derive(Clone, Copy, Debug)]
struct App {
    /// Receive buffer of both connections.
    recv_buffer: usize,
    /// Bytes the application reads per wake (`None`: everything), waking every
    /// `READ_TICK`: a slow reader makes the window close and reopen.
    read_chunk: Option<usize>,
}

const FAST: App = App {
    recv_buffer: 64 * 1024,
    read_chunk: None,
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
            self.order += 1;
            self.queue.push((at, self.order, packet.clone()));
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
        let parsed = wire::parse_ip_tcp(&packet, true).expect("the link does not corrupt");
        let payload = packet.slice(parsed.payload.clone());
        let route = self
            .ep
            .handle(now, parsed.src, parsed.dst, &parsed.tcp, payload.len());
        match route {
            Route::Connection(h) => {
                if let Some((ch, c)) = self.conn.as_mut() {
                    if *ch == h {
                        c.handle_segment(
                            now,
                            Segment {
                                repr: parsed.tcp,
                                payload,
                            },
                        );
                    }
                }
            }
            Route::Incoming { handle, conn, .. } => {
                assert!(self.conn.is_none(), "a second connection was accepted");
                self.ep.release_backlog(handle);
                self.conn = Some((handle, *conn));
            }
            Route::Reset | Route::Drop(_) => {}
        }
    }

    fn timeout(&mut self, now: Instant) {
        if let Some((_, c)) = self.conn.as_mut() {
            if c.poll_timeout().is_some_and(|d| d <= now) {
                c.handle_timeout(now);
            }
        }
    }

    /// The application's turn, then every output into `link`.
    fn step(&mut self, now: Instant, link: &mut Link) {
        if let Some((_, c)) = self.conn.as_mut() {
            if c.state().is_synchronized()
                || c.state() == State::SynSent
                || c.state() == State::SynReceived
            {
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
        if let Some((h, c)) = &self.conn {
            if c.is_closed() {
                let h = *h;
                self.ep.remove(h);
            }
        }
    }
}

struct Outcome {
    client_final: State,
    server_final: State,
    after_2msl: (State, State),
}

/// Logs through the test writer when `UTCP_LOG` is set (e.g. `UTCP_LOG=trace`).
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("UTCP_LOG"))
        .with_test_writer()
        .try_init();
}

fn run(seed: u64, imp: Impairments, app: App, size: usize) -> Outcome {
    init_tracing();
    let mut rng = Rng::new(seed ^ 0xD1B5_4A32_D192_ED03);
    let cfg = Config {
        // Enough SYN retries that 20 % loss each way never exhausts them.
        syn_retries: 15,
        recv_buffer: app.recv_buffer,
        ..Config::default()
    };
    let c_ip: IpAddr = "10.0.0.1".parse().unwrap();
    let s_ip: IpAddr = "10.0.0.2".parse().unwrap();
    let server_addr = SocketAddr::new(s_ip, 80);
    let c_data = pattern(rng.below(1000) as usize, size);
    let s_data = pattern(rng.below(1000) as usize + 7, size);
    let mut client = Host::new(
        c_ip,
        rng.next_u64(),
        cfg.clone(),
        c_data.clone(),
        app.read_chunk,
    );
    let mut server = Host::new(s_ip, rng.next_u64(), cfg, s_data.clone(), app.read_chunk);
    let mut c2s = Link::new(imp, rng.next_u64());
    let mut s2c = Link::new(imp, rng.next_u64());
    server.ep.listen(server_addr, 8).expect("listen");

    let mut now = Instant::from_millis(1_000);
    let (h, conn) = client.ep.connect(now, server_addr, None).expect("connect");
    client.conn = Some((h, conn));
    client.step(now, &mut c2s);

    let limit = Instant::from_millis(4 * 3600 * 1000);
    let mut steps = 0u64;
    let mut phase1: Option<(State, State)> = None;
    loop {
        steps += 1;
        assert!(
            steps < 2_000_000,
            "no progress after {steps} steps (seed {seed}, {imp:?})"
        );
        let done = |c: &Host, s: &Host| {
            matches!(c.state(), State::Closed | State::TimeWait)
                && matches!(s.state(), State::Closed | State::TimeWait)
        };
        if phase1.is_none()
            && done(&client, &server)
            && client.conn.is_some()
            && server.conn.is_some()
        {
            phase1 = Some((client.state(), server.state()));
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
            "still busy at {next:?} (seed {seed}, {imp:?}): client {:?} server {:?}",
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
    assert!(
        client.received == s_data,
        "client received {} of {} bytes, or out of order (seed {seed}, {imp:?})",
        client.received.len(),
        s_data.len()
    );
    assert!(
        server.received == c_data,
        "server received {} of {} bytes, or out of order (seed {seed}, {imp:?})",
        server.received.len(),
        c_data.len()
    );
    assert!(client.eof && server.eof, "both read EOF");
    let (client_final, server_final) = phase1.expect("both sides reached CLOSED or TIME_WAIT");
    let errs = (
        client.conn.as_ref().and_then(|c| c.1.error()),
        server.conn.as_ref().and_then(|c| c.1.error()),
    );
    assert_eq!(errs, (None, None), "a side failed (seed {seed}, {imp:?})");
    eprintln!(
        "seed {seed} {imp:?}: steps {steps} end {now:?} c {:?} s {:?}",
        client.conn.as_ref().map(|c| c.1.stats()),
        server.conn.as_ref().map(|c| c.1.stats())
    );
    Outcome {
        client_final,
        server_final,
        after_2msl: (client.state(), server.state()),
    }
}

#[test]
fn sim_debug_case() {
    let app = App {
        recv_buffer: 4096,
        read_chunk: Some(100),
    };
    run(
        2992902898435783833,
        Impairments {
            loss: 0.18530866984579433,
            dup: 0.0,
            reorder: 0.0,
        },
        app,
        200 * 1024,
    );
}

#[test]
fn sim_clean_link_transfers_and_closes() {
    let o = run(
        1,
        Impairments {
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
        },
        FAST,
        200 * 1024,
    );
    // The client's FIN goes first (it finishes writing first or at the same
    // time); whoever closes first ends in TIME_WAIT.
    assert!(matches!(o.client_final, State::TimeWait | State::Closed));
    assert!(matches!(o.server_final, State::TimeWait | State::Closed));
    assert_eq!(o.after_2msl, (State::Closed, State::Closed));
}

#[test]
fn sim_twenty_percent_loss_transfers_and_closes() {
    for seed in 0..8 {
        let o = run(
            seed,
            Impairments {
                loss: 0.2,
                dup: 0.02,
                reorder: 0.1,
            },
            FAST,
            200 * 1024,
        );
        assert_eq!(o.after_2msl, (State::Closed, State::Closed));
    }
}

#[test]
fn sim_slow_reader_small_window_transfers_and_closes() {
    for seed in 0..4 {
        let app = App {
            recv_buffer: 4 * 1024,
            read_chunk: Some(1000),
        };
        let o = run(
            seed,
            Impairments {
                loss: 0.0,
                dup: 0.0,
                reorder: 0.0,
            },
            app,
            64 * 1024,
        );
        assert_eq!(o.after_2msl, (State::Closed, State::Closed));
        let o = run(
            seed,
            Impairments {
                loss: 0.1,
                dup: 0.01,
                reorder: 0.05,
            },
            app,
            64 * 1024,
        );
        assert_eq!(o.after_2msl, (State::Closed, State::Closed));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sim_transfers_exactly_once_in_order(
        seed: u64,
        loss in 0.0f64..0.2,
        dup in 0.0f64..0.05,
        reorder in 0.0f64..0.2,
        recv_buffer in prop::sample::select(vec![4 * 1024, 16 * 1024, 64 * 1024]),
        read_chunk in prop::option::of(prop::sample::select(vec![100usize, 1000, 5000])),
    ) {
        let app = App { recv_buffer, read_chunk };
        let o = run(seed, Impairments { loss, dup, reorder }, app, 200 * 1024);
        prop_assert!(matches!(o.client_final, State::Closed | State::TimeWait));
        prop_assert!(matches!(o.server_final, State::Closed | State::TimeWait));
        prop_assert_eq!(o.after_2msl, (State::Closed, State::Closed));
    }
}

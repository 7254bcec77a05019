//! The proto-only pair target: two `Endpoint`s, one connection each, joined
//! by a seeded link model with a fake clock, no tokio. The input chooses the
//! link (loss up to 20 %, duplication, reordering, a seed), the stream sizes,
//! the receive buffers, the MSS and up to 8 packets the link drops on
//! purpose. Checked: every byte arrives exactly once and in order, both
//! sides read EOF, and the run ends (both CLOSED or TIME_WAIT) within a
//! bound of steps and of virtual time.

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use std::net::{IpAddr, SocketAddr};
use utcp_proto::wire::parse_ip_tcp;
use utcp_proto::{
    Config, ConnHandle, Connection, Duration, Endpoint, EndpointConfig, Instant, Route, Segment,
    State,
};

/// What the fuzzer chooses.
#[derive(Arbitrary, Debug)]
struct Input {
    seed: u64,
    loss_pct: u8,
    dup_pct: u8,
    reorder_pct: u8,
    sizes: (u16, u16),
    recv_buffer_kib: (u8, u8),
    mss: (u16, u16),
    drops: Vec<u16>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pct(&mut self, p: u8) -> bool {
        self.next() % 100 < u64::from(p)
    }
}

struct Link {
    rng: Rng,
    loss: u8,
    dup: u8,
    reorder: u8,
    drops: Vec<u16>,
    sent: u16,
    queue: Vec<(Instant, u64, Bytes)>,
    order: u64,
}

impl Link {
    fn send(&mut self, now: Instant, p: Bytes) {
        let index = self.sent;
        self.sent = self.sent.saturating_add(1);
        if self.drops.contains(&index) || self.rng.pct(self.loss) {
            return;
        }
        let copies = if self.rng.pct(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let mut at = now + Duration::from_millis(10);
            if self.rng.pct(self.reorder) {
                at += Duration::from_micros(self.rng.next() % 30_000);
            }
            self.order += 1;
            self.queue.push((at, self.order, p.clone()));
        }
    }
    fn next(&self) -> Option<Instant> {
        self.queue.iter().map(|q| q.0).min()
    }
    fn take_due(&mut self, now: Instant) -> Vec<Bytes> {
        let mut due: Vec<_> = Vec::new();
        let mut i = 0;
        while i < self.queue.len() {
            if self.queue[i].0 <= now {
                due.push(self.queue.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|q| (q.0, q.1));
        due.into_iter().map(|q| q.2).collect()
    }
}

struct Host {
    ep: Endpoint<()>,
    conn: Option<(ConnHandle, Connection)>,
    data: Vec<u8>,
    written: usize,
    received: Vec<u8>,
    eof: bool,
    shut: bool,
    closed: bool,
    /// The CLOSED connection was taken out of the endpoint's table.
    removed: bool,
    buf: BytesMut,
}

impl Host {
    fn new(addr: IpAddr, secret: u8, cfg: Config, data: Vec<u8>) -> Host {
        let ecfg = EndpointConfig {
            secret: [secret; 16],
            conn: cfg,
            ..EndpointConfig::default()
        };
        Host {
            ep: Endpoint::new(ecfg, vec![addr]),
            conn: None,
            data,
            written: 0,
            received: Vec::new(),
            eof: false,
            shut: false,
            closed: false,
            removed: false,
            buf: BytesMut::new(),
        }
    }

    fn state(&self) -> State {
        self.conn.as_ref().map_or(State::Closed, |c| c.1.state())
    }

    fn receive(&mut self, now: Instant, p: Bytes) {
        let Ok(parsed) = parse_ip_tcp(&p, true) else {
            panic!("the stack emitted a segment that does not parse");
        };
        let payload = p.slice(parsed.payload.clone());
        match self
            .ep
            .handle(now, parsed.src, parsed.dst, &parsed.tcp, payload.len())
        {
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
            _ => {}
        }
    }

    fn step(&mut self, now: Instant, link: &mut Link) {
        if let Some((_, c)) = self.conn.as_mut() {
            if c.poll_timeout().is_some_and(|d| d <= now) {
                c.handle_timeout(now);
            }
            while self.written < self.data.len() {
                match c.send(&self.data[self.written..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => self.written += n,
                }
            }
            if self.written == self.data.len() && !self.shut && c.state().is_synchronized() {
                c.shutdown(now);
                self.shut = true;
            }
            let mut tmp = [0u8; 4096];
            loop {
                match c.recv(&mut tmp) {
                    Ok(Some(0)) => {
                        self.eof |= c.peer_closed();
                        break;
                    }
                    Ok(Some(n)) => self.received.extend_from_slice(&tmp[..n]),
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
                let mut p = BytesMut::from(&self.buf[..]);
                p.extend_from_slice(&tx.payload);
                link.send(now, p.freeze());
            }
            while c.poll_event().is_some() {}
        }
        // A CLOSED connection leaves the table; later segments get RSTs.
        if let Some((h, c)) = &self.conn
            && c.is_closed()
            && !self.removed
        {
            let h = *h;
            self.ep.remove(h);
            self.removed = true;
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
    }
}

/// Runs one pair from fuzzer bytes (see the module docs); panics on a
/// broken promise.
pub fn pair(data: &[u8]) {
    let _ = pair_run(data);
}

/// [`pair`], returning the bytes each side received (client, server) and
/// the segments both sent, or `None` for input too short to describe a run.
pub fn pair_run(data: &[u8]) -> Option<(usize, usize, u64)> {
    let input = Input::arbitrary(&mut Unstructured::new(data)).ok()?;
    // Neither side may give up first: a connection that times out has not
    // lost bytes, it has ended (as Linux's would). The half-open server
    // needs as many tries as the client: a SYN-ACK its timer retransmits
    // echoes an old SYN's TSval, so the client's first RTT sample can span
    // the server's backoff (19 s in fuzz/regressions/pair/crash-d81fb0fa,
    // as Linux's tcp_ack_update_rtt takes it too) and its RTO and probes
    // outlast the default five SYN-ACKs.
    let cfg = |kib: u8, mss: u16| Config {
        mss: 536 + mss % 1000,
        syn_retries: 15,
        synack_retries: 15,
        recv_buffer: 4096 + usize::from(kib) * 1024,
        ..Config::default()
    };
    let stream =
        |n: u16, k: u8| -> Vec<u8> { (0..usize::from(n)).map(|i| (i % 251) as u8 ^ k).collect() };
    let (c_ip, s_ip): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
    let c_data = stream(input.sizes.0, 1);
    let s_data = stream(input.sizes.1, 2);
    let mut client = Host::new(
        c_ip,
        1,
        cfg(input.recv_buffer_kib.0, input.mss.0),
        c_data.clone(),
    );
    let mut server = Host::new(
        s_ip,
        2,
        cfg(input.recv_buffer_kib.1, input.mss.1),
        s_data.clone(),
    );
    let drops: Vec<u16> = input.drops.iter().take(8).copied().collect();
    let link = |salt: u64| Link {
        rng: Rng((input.seed ^ salt) | 1),
        loss: input.loss_pct % 21,
        dup: input.dup_pct % 11,
        reorder: input.reorder_pct % 21,
        drops: drops.clone(),
        sent: 0,
        queue: Vec::new(),
        order: 0,
    };
    let mut c2s = link(0x1234);
    let mut s2c = link(0x5678);
    let server_addr = SocketAddr::new(s_ip, 80);
    server.ep.listen(server_addr, 8).expect("listen");
    let mut now = Instant::from_millis(1_000);
    let (h, conn) = client
        .ep
        .connect_from(now, SocketAddr::new(c_ip, 40_000), server_addr)
        .expect("connect");
    client.conn = Some((h, conn));
    let limit = now + Duration::from_secs(4 * 3600);
    let done = |h: &Host| matches!(h.state(), State::Closed | State::TimeWait);
    // Bytes of each side's stream already checked against what the other
    // sent: each step checks only what arrived since (the whole prefix
    // each step made a run quadratic in its length).
    let (mut c_checked, mut s_checked) = (0usize, 0usize);
    for _ in 0..200_000 {
        client.step(now, &mut c2s);
        server.step(now, &mut s2c);
        assert!(
            extends(&s_data, &client.received, &mut c_checked),
            "client: bytes out of order or duplicated"
        );
        assert!(
            extends(&c_data, &server.received, &mut s_checked),
            "server: bytes out of order or duplicated"
        );
        if server.conn.is_some() && done(&client) && done(&server) {
            let why = |h: &Host| {
                h.conn.as_ref().map(|c| {
                    format!(
                        "{:?} error {:?} received {} stats {:?}",
                        c.1.state(),
                        c.1.error(),
                        h.received.len(),
                        c.1.stats()
                    )
                })
            };
            assert!(
                client.received == s_data && server.received == c_data,
                "bytes missing at {now:?}: client {:?} of {}, server {:?} of {}",
                why(&client),
                s_data.len(),
                why(&server),
                c_data.len()
            );
            assert!(client.eof && server.eof, "EOF not read");
            let sent = u64::from(c2s.sent) + u64::from(s2c.sent);
            return Some((client.received.len(), server.received.len(), sent));
        }
        let deadlines =
            [&client, &server].map(|h| h.conn.as_ref().and_then(|c| c.1.poll_timeout()));
        let Some(next) = [c2s.next(), s2c.next(), deadlines[0], deadlines[1]]
            .into_iter()
            .flatten()
            .min()
        else {
            panic!(
                "stuck: nothing pending, client {:?}, server {:?}",
                client.state(),
                server.state()
            );
        };
        assert!(next <= limit, "no end within 4 h virtual");
        now = now.max(next);
        for p in c2s.take_due(now) {
            server.receive(now, p);
        }
        for p in s2c.take_due(now) {
            client.receive(now, p);
        }
    }
    panic!("no end within 200,000 steps");
}

/// Whether `got` is still a prefix of `sent`, given that its first
/// `*checked` bytes were found to be; moves `checked` on.
fn extends(sent: &[u8], got: &[u8], checked: &mut usize) -> bool {
    if got.len() > sent.len() || got[*checked..] != sent[*checked..got.len()] {
        return false;
    }
    *checked = got.len();
    true
}

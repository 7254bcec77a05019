//! Blind in-window injection (RFC 5961) against a live connection and a
//! TIME_WAIT record, in virtual time, through the public API only.
//!
//! A client sends 10 MiB to a server over a clean 10 ms link; meanwhile an
//! off-path attacker who knows the 4-tuple but not the sequence space sends
//! the server 10,000 each of RST, SYN and data segments, one every 50 µs of
//! virtual time. Sequence numbers: ⅓ uniform inside the receive window, ⅓ on
//! its edges (RCV.NXT−1, RCV.NXT+RCV.WND−1, RCV.NXT+RCV.WND), ⅓ uniform over
//! 2^32; data segments carry ACK numbers just outside RFC 5961 §5.2's
//! acceptable range (above SND.NXT, or below SND.UNA − MAX.SND.WND).
//!
//! An attacker who guesses RCV.NXT exactly for an RST resets the connection
//! by design (RFC 5961 §3.2, a 1 in 2^32 guess): the uniform draws for RSTs
//! leave out that one value, and the last step of the test sends it on
//! purpose.
//!
//! Timestamps are off so that every injected segment reaches RFC 5961's
//! checks (with timestamps on, PAWS would answer most of them first).
//!
//! `cargo test -p utcp-proto --test injection -- --nocapture` prints the counts.

use bytes::{Bytes, BytesMut};
use std::net::{IpAddr, SocketAddr};
use utcp_proto::wire::{self, TcpFlags, TcpOptions, TcpRepr};
use utcp_proto::{
    Config, ConnHandle, Connection, Duration, Endpoint, EndpointConfig, Error, Instant, Route,
    Segment, SeqNum, State, TimeWaitAction, TimeWaitId,
};

/// xorshift64*: seeded, repeatable.
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
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

const TOTAL: usize = 10 * 1024 * 1024;
const PER_KIND: usize = 10_000;
const EVERY: Duration = Duration::from_micros(50);
const DELAY: Duration = Duration::from_millis(10);

fn client_addr() -> SocketAddr {
    "10.0.0.1:40000".parse().unwrap()
}
fn server_addr() -> SocketAddr {
    "10.0.0.2:80".parse().unwrap()
}

fn config() -> Config {
    Config {
        timestamps: false,
        ..Config::default()
    }
}

fn endpoint(addr: IpAddr, secret: u8) -> Endpoint<()> {
    Endpoint::new(
        EndpointConfig {
            secret: [secret; 16],
            conn: config(),
            ..EndpointConfig::default()
        },
        vec![addr],
    )
}

/// The link's rate in bytes per second: 10 MiB take about 2 s, longer than
/// the 1.5 s of injection, so the whole attack hits a running transfer.
const RATE: u64 = 5_000_000;

/// One direction of a clean link: a rate, an unbounded FIFO and a fixed
/// propagation delay.
#[derive(Default)]
struct Link {
    queue: std::collections::VecDeque<(Instant, Bytes)>,
    /// When the last packet finished leaving.
    free: Option<Instant>,
}

impl Link {
    fn send(&mut self, now: Instant, p: Bytes) {
        let start = self.free.map_or(now, |f| f.max(now));
        let done = start + Duration::from_micros(p.len() as u64 * 1_000_000 / RATE);
        self.free = Some(done);
        self.queue.push_back((done + DELAY, p));
    }
    fn next(&self) -> Option<Instant> {
        self.queue.front().map(|(t, _)| *t)
    }
    fn take_due(&mut self, now: Instant) -> Vec<Bytes> {
        let mut out = Vec::new();
        while self.queue.front().is_some_and(|(t, _)| *t <= now) {
            out.push(self.queue.pop_front().unwrap().1);
        }
        out
    }
}

/// An endpoint with at most one connection, or its TIME_WAIT record.
struct Host {
    ep: Endpoint<()>,
    conn: Option<(ConnHandle, Connection)>,
    tw: Option<TimeWaitId>,
    received: Vec<u8>,
    buf: BytesMut,
    /// Replies the endpoint itself sent (RSTs, TIME_WAIT ACKs).
    ep_replies: Vec<Bytes>,
    /// When the listener's connection was made (its reply budget's first
    /// second starts there).
    accepted_at: Option<Instant>,
}

impl Host {
    fn new(ep: Endpoint<()>) -> Host {
        Host {
            ep,
            conn: None,
            tw: None,
            received: Vec::new(),
            buf: BytesMut::new(),
            ep_replies: Vec::new(),
            accepted_at: None,
        }
    }

    fn conn(&self) -> &Connection {
        &self.conn.as_ref().expect("a connection").1
    }

    /// Hands one IP packet to the endpoint and, if it routes there, to the
    /// connection.
    fn receive(&mut self, now: Instant, packet: Bytes) -> Route {
        let parsed = wire::parse_ip_tcp(&packet, true).expect("packets here are well formed");
        let payload = packet.slice(parsed.payload.clone());
        let route = self
            .ep
            .handle(now, parsed.src, parsed.dst, &parsed.tcp, payload.len());
        match &route {
            Route::Connection(h) => {
                if let Some((ch, c)) = self.conn.as_mut()
                    && ch == h
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
            Route::Incoming { handle, .. } => {
                assert!(self.conn.is_none(), "a second connection was accepted");
                let handle = *handle;
                self.ep.release_backlog(handle);
                let Route::Incoming { conn, .. } = route else {
                    unreachable!("matched above")
                };
                self.conn = Some((handle, *conn));
                self.accepted_at = Some(now);
                return Route::Connection(handle);
            }
            _ => {}
        }
        route
    }

    fn deadline(&self) -> Option<Instant> {
        let c = self.conn.as_ref().and_then(|(_, c)| c.poll_timeout());
        [c, self.ep.poll_timeout()].into_iter().flatten().min()
    }

    fn timeout(&mut self, now: Instant) {
        if let Some((_, c)) = self.conn.as_mut()
            && c.poll_timeout().is_some_and(|d| d <= now)
        {
            c.handle_timeout(now);
        }
        if self.ep.poll_timeout().is_some_and(|d| d <= now) {
            self.ep.handle_timeout(now);
        }
    }

    /// Reads everything readable, then drains every output: the packets the
    /// connection and the endpoint sent.
    fn step(&mut self, now: Instant) -> Vec<Bytes> {
        let mut out = Vec::new();
        if let Some((h, c)) = self.conn.as_mut() {
            let mut tmp = [0u8; 16 * 1024];
            while let Ok(Some(n)) = c.recv(&mut tmp) {
                if n == 0 {
                    break;
                }
                self.received.extend_from_slice(&tmp[..n]);
            }
            loop {
                self.buf.clear();
                let Some(tx) = c.poll_transmit(now, &mut self.buf) else {
                    break;
                };
                let mut p = BytesMut::from(&self.buf[..]);
                p.extend_from_slice(&tx.payload);
                out.push(p.freeze());
            }
            while c.poll_event().is_some() {}
            if c.state() == State::TimeWait {
                let record = c.time_wait_record().expect("a TIME_WAIT record");
                let h = *h;
                let (id, _) = self.ep.enter_time_wait(h, record, false);
                self.tw = id;
                self.conn = None;
            } else if c.is_closed() {
                let h = *h;
                self.ep.remove(h);
                self.conn = None;
            }
        }
        loop {
            self.buf.clear();
            let Some(tx) = self.ep.poll_transmit(&mut self.buf) else {
                break;
            };
            let mut p = BytesMut::from(&self.buf[..]);
            p.extend_from_slice(&tx.payload);
            let p = p.freeze();
            self.ep_replies.push(p.clone());
            out.push(p);
        }
        out
    }
}

/// The per-connection reply budget as RFC 5961 §7 describes it (and as the
/// connection keeps it): `per_sec` replies, then none until a second has
/// passed since the window opened; the first window opens when the
/// connection is made.
struct BudgetModel {
    window: Option<Instant>,
    count: u32,
    per_sec: u32,
}

impl BudgetModel {
    fn take(&mut self, now: Instant) -> bool {
        if self
            .window
            .is_none_or(|w| now.saturating_duration_since(w) >= Duration::from_secs(1))
        {
            self.window = Some(now);
            self.count = 0;
        }
        if self.count < self.per_sec {
            self.count += 1;
            true
        } else {
            false
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Rst,
    Syn,
    Data,
}

/// A sequence number for an injected segment: ⅓ uniform inside the window,
/// ⅓ on its edges, ⅓ uniform over 2^32. `avoid`: a value never drawn
/// uniformly (RCV.NXT for RSTs, which would be a correct guess).
fn pick_seq(rng: &mut Rng, nxt: SeqNum, wnd: u32, avoid: Option<SeqNum>) -> SeqNum {
    loop {
        let s = match rng.below(3) {
            0 => nxt + rng.below(u64::from(wnd.max(1))) as u32,
            1 => match rng.below(3) {
                0 => nxt + u32::MAX,
                1 => nxt + wnd.wrapping_sub(1),
                _ => nxt + wnd,
            },
            _ => SeqNum::new(rng.next_u64() as u32),
        };
        if Some(s) != avoid {
            return s;
        }
    }
}

/// The acceptability test the connection applies (RFC 9293 §3.10.7.4 as
/// Linux's `tcp_sequence` has it): the segment does not end before RCV.NXT
/// and does not start after RCV.NXT + RCV.WND. Note that the right edge
/// itself is taken, as in Linux: an RST at exactly RCV.NXT + RCV.WND gets a
/// challenge ACK, where RFC 9293's strict test would drop it silently.
fn acceptable(seq: SeqNum, len: u32, nxt: SeqNum, wnd: u32) -> bool {
    !(seq + len).before(nxt) && !seq.after(nxt + wnd)
}

fn packet(src: SocketAddr, dst: SocketAddr, repr: &TcpRepr, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::new();
    wire::emit_ip_tcp(&mut buf, src.ip(), dst.ip(), 64, repr, payload);
    buf.extend_from_slice(payload);
    buf.freeze()
}

fn repr(flags: TcpFlags, seq: SeqNum, ack: SeqNum) -> TcpRepr {
    TcpRepr {
        src_port: client_addr().port(),
        dst_port: server_addr().port(),
        seq,
        ack,
        flags,
        window: 65_535,
        urgent: 0,
        options: TcpOptions::default(),
    }
}

/// The attacker's payload, at most 64 bytes (the received stream is
/// compared byte for byte with what was sent).
const EVIL: [u8; 64] = [0xEE; 64];

fn stream(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[derive(Default, Debug)]
struct Counts {
    injected: [usize; 3],
    /// Replies to injected RSTs and SYNs (challenge ACKs) and to in-window
    /// data with a bad ACK (also challenge ACKs, RFC 5961 §5.2).
    challenge_acks: usize,
    /// Duplicate ACKs for out-of-window data (RFC 9293: not rate-limited).
    dup_acks: usize,
    first: Option<Instant>,
    last: Option<Instant>,
    /// Bytes the application had read when the last segment was injected.
    received_at_last: usize,
}

#[test]
fn established_blind_injection_during_10mib_transfer_never_resets() {
    let started = std::time::Instant::now();
    let mut rng = Rng::new(0x5961);
    let data = stream(TOTAL);
    let mut client = Host::new(endpoint(client_addr().ip(), 1));
    let mut server = Host::new(endpoint(server_addr().ip(), 2));
    server.ep.listen(server_addr(), 8).expect("listen");
    let mut c2s = Link::default();
    let mut s2c = Link::default();
    let mut now = Instant::from_millis(1_000);
    let (h, conn) = client
        .ep
        .connect_from(now, client_addr(), server_addr())
        .expect("connect");
    client.conn = Some((h, conn));
    let mut written = 0usize;
    let per_sec = config().challenge_ack_per_sec;
    let mut budget = BudgetModel {
        window: None,
        count: 0,
        per_sec,
    };
    let mut counts = Counts::default();
    let mut max_snd_wnd = 0u32;
    let mut next_inject: Option<Instant> = None;
    let mut kind_turn = 0usize;
    let limit = now + Duration::from_secs(600);
    let mut steps = 0u64;

    loop {
        steps += 1;
        assert!(steps < 5_000_000, "no end after {steps} steps");
        // The client application writes as much as it may.
        if let Some((_, c)) = client.conn.as_mut() {
            while written < TOTAL {
                match c.send(&data[written..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => written += n,
                }
            }
        }
        for p in client.step(now) {
            c2s.send(now, p);
        }
        for p in server.step(now) {
            s2c.send(now, p);
        }
        if budget.window.is_none() {
            budget.window = server.accepted_at;
        }
        if let Some((_, c)) = server.conn.as_ref() {
            assert_eq!(c.error(), None, "the server's connection failed");
            if c.state() == State::Established {
                max_snd_wnd = max_snd_wnd.max(c.stats().send_window);
                if next_inject.is_none() {
                    next_inject = Some(now);
                }
            }
        }
        // The attacker's turn.
        let injected = counts.injected.iter().sum::<usize>();
        if let Some(t) = next_inject
            && t <= now
            && injected < 3 * PER_KIND
        {
            let (_, c) = server.conn.as_ref().expect("server connection");
            let st = c.stats();
            let nxt = c.rcv_nxt();
            let wnd = st.recv_window;
            let snd_wnd = st.send_window;
            // The server sends no data: SND.UNA = SND.NXT = SND.MAX.
            let snd_nxt = c.snd_max();
            let kind = [Kind::Rst, Kind::Syn, Kind::Data][kind_turn % 3];
            kind_turn += 1;
            let (r, payload, takes_budget, dup): (TcpRepr, &[u8], bool, bool) = match kind {
                Kind::Rst => {
                    let seq = pick_seq(&mut rng, nxt, wnd, Some(nxt));
                    let r = repr(TcpFlags::RST, seq, SeqNum::new(0));
                    (r, &[], acceptable(seq, 0, nxt, wnd), false)
                }
                Kind::Syn => {
                    let seq = pick_seq(&mut rng, nxt, wnd, None);
                    // RFC 5961 §4: any SYN on a synchronized connection.
                    (repr(TcpFlags::SYN, seq, SeqNum::new(0)), &[], true, false)
                }
                Kind::Data => {
                    let seq = pick_seq(&mut rng, nxt, wnd, None);
                    let len = 1 + rng.below(EVIL.len() as u64) as usize;
                    // Just outside SND.UNA − MAX.SND.WND ..= SND.NXT.
                    let k = rng.below(16) as u32;
                    let ack = if rng.below(2) == 0 {
                        snd_nxt + 1 + k
                    } else {
                        snd_nxt + 0u32.wrapping_sub(max_snd_wnd + 1 + k)
                    };
                    let flags = TcpFlags(TcpFlags::ACK.0 | TcpFlags::PSH.0);
                    let ok = acceptable(seq, len as u32, nxt, wnd);
                    (repr(flags, seq, ack), &EVIL[..len], ok, !ok)
                }
            };
            counts.injected[kind as usize] += 1;
            counts.first.get_or_insert(now);
            counts.last = Some(now);
            counts.received_at_last = server.received.len();
            let route = server.receive(now, packet(client_addr(), server_addr(), &r, payload));
            assert!(
                matches!(route, Route::Connection(_)),
                "injected {kind:?} routed {route:?}"
            );
            let replies = server.step(now);
            let (_, c) = server.conn.as_ref().expect("server connection survives");
            assert_eq!(
                c.state(),
                State::Established,
                "injected {kind:?} {r} changed the state"
            );
            assert_eq!(c.error(), None, "injected {kind:?} {r}");
            assert_eq!(
                c.stats().send_window,
                snd_wnd,
                "injected {kind:?} {r} changed SND.WND"
            );
            assert_eq!(c.rcv_nxt(), nxt, "injected {kind:?} {r} moved RCV.NXT");
            let expected = usize::from(dup || (takes_budget && budget.take(now)));
            assert_eq!(
                replies.len(),
                expected,
                "injected {kind:?} {r} (RCV.NXT {nxt}, RCV.WND {wnd}): replies {:?}",
                replies
                    .iter()
                    .map(|p| wire::parse_ip_tcp(p, true).map(|p| p.tcp.to_string()))
                    .collect::<Vec<_>>()
            );
            for p in &replies {
                let parsed = wire::parse_ip_tcp(p, true).expect("reply parses");
                assert_eq!(parsed.tcp.flags, TcpFlags::ACK, "a reply is a bare ACK");
                assert_eq!(parsed.tcp.ack, nxt, "a reply acknowledges RCV.NXT");
                assert_eq!(parsed.tcp.seq, snd_nxt, "a reply carries SND.NXT");
                assert!(parsed.payload.is_empty());
            }
            if dup {
                counts.dup_acks += replies.len();
            } else {
                counts.challenge_acks += replies.len();
            }
            for p in replies {
                s2c.send(now, p);
            }
            next_inject = Some(now + EVERY);
        }
        let done = server.received.len() == TOTAL && injected >= 3 * PER_KIND;
        if done {
            break;
        }
        let next = [
            c2s.next(),
            s2c.next(),
            client.deadline(),
            server.deadline(),
            next_inject.filter(|_| injected < 3 * PER_KIND),
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("something is pending until the end");
        assert!(next <= limit, "still busy at {next:?}");
        now = now.max(next);
        for p in c2s.take_due(now) {
            server.receive(now, p);
        }
        for p in s2c.take_due(now) {
            client.receive(now, p);
        }
        client.timeout(now);
        server.timeout(now);
    }

    assert!(
        server.received == data,
        "the application received {} bytes that differ from the 10 MiB sent",
        server.received.len()
    );
    assert_eq!(counts.injected, [PER_KIND; 3]);
    assert!(
        counts.received_at_last < TOTAL,
        "the transfer was still running when the attack ended: {counts:?}"
    );
    let span = counts
        .last
        .unwrap()
        .saturating_duration_since(counts.first.unwrap());
    let secs = span.as_micros().div_ceil(1_000_000) as usize;
    let bound = per_sec as usize * (secs + 1);
    println!(
        "injected {:?} over {:.2} s virtual ({} of {TOTAL} bytes read by then; \
         transfer done at {:.2} s); challenge ACKs {} (bound {bound}), \
         duplicate ACKs for out-of-window data {}; {:.1} s wall",
        counts.injected,
        span.as_micros() as f64 / 1e6,
        counts.received_at_last,
        now.saturating_duration_since(counts.first.unwrap())
            .as_micros() as f64
            / 1e6,
        counts.challenge_acks,
        counts.dup_acks,
        started.elapsed().as_secs_f64()
    );
    assert!(counts.challenge_acks <= bound, "{counts:?}");
    assert!(
        counts.challenge_acks >= per_sec as usize * secs.max(1),
        "a challenge ACK each second up to the limit: {counts:?}"
    );

    // The path works: an RST with SEQ = RCV.NXT resets the connection.
    let nxt = server.conn().rcv_nxt();
    server.receive(
        now,
        packet(
            client_addr(),
            server_addr(),
            &repr(TcpFlags::RST, nxt, SeqNum::new(0)),
            &[],
        ),
    );
    assert_eq!(server.conn().state(), State::Closed);
    assert_eq!(server.conn().error(), Some(Error::ConnectionReset));
}

#[test]
fn time_wait_record_blind_injection_acks_rate_limited_until_exact_rst() {
    let mut rng = Rng::new(0x1337);
    let total = 64 * 1024;
    let data = stream(total);
    let mut client = Host::new(endpoint(client_addr().ip(), 1));
    let mut server = Host::new(endpoint(server_addr().ip(), 2));
    server.ep.listen(server_addr(), 8).expect("listen");
    let mut c2s = Link::default();
    let mut s2c = Link::default();
    let mut now = Instant::from_millis(1_000);
    let (h, conn) = client
        .ep
        .connect_from(now, client_addr(), server_addr())
        .expect("connect");
    client.conn = Some((h, conn));
    let mut written = 0usize;
    let mut shut = (false, false);
    // The client sends 64 KiB and closes first; the server closes after EOF.
    // The client ends in TIME_WAIT: a record in its endpoint.
    let mut steps = 0;
    while client.tw.is_none() || server.conn.is_some() {
        steps += 1;
        assert!(steps < 100_000, "no TIME_WAIT");
        if let Some((_, c)) = client.conn.as_mut() {
            while written < total {
                match c.send(&data[written..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => written += n,
                }
            }
            if written == total && !shut.0 && c.state().is_synchronized() {
                c.close(now);
                shut.0 = true;
            }
        }
        if let Some((_, c)) = server.conn.as_mut()
            && c.peer_closed()
            && c.readable() == 0
            && !shut.1
        {
            c.close(now);
            shut.1 = true;
        }
        for p in client.step(now) {
            c2s.send(now, p);
        }
        for p in server.step(now) {
            s2c.send(now, p);
        }
        let Some(next) = [c2s.next(), s2c.next(), client.deadline(), server.deadline()]
            .into_iter()
            .flatten()
            .filter(|_| client.tw.is_none() || server.conn.is_some())
            .min()
        else {
            break;
        };
        now = now.max(next);
        for p in c2s.take_due(now) {
            server.receive(now, p);
        }
        for p in s2c.take_due(now) {
            client.receive(now, p);
        }
        client.timeout(now);
        server.timeout(now);
    }
    assert_eq!(server.received, data);
    let id = client.tw.unwrap_or_else(|| {
        panic!(
            "the client holds a TIME_WAIT record: client {:?}, server {:?}",
            client.conn.as_ref().map(|c| c.1.state()),
            server.conn.as_ref().map(|c| c.1.state())
        )
    });
    assert!(client.ep.is_time_wait(id));
    client.ep_replies.clear();

    let interval = config().time_wait_ack_interval;
    // The attack: 10,000 each of RST, SYN (at or below RCV.NXT: a SYN above
    // it legitimately reopens the 4-tuple, RFC 1122 §4.2.2.13, tested in
    // timewait.rs) and data, every 50 µs.
    let (rcv_nxt, snd_nxt) = {
        // Provoke one ACK from the record with an out-of-window data segment
        // and read RCV.NXT / SND.NXT from it.
        let r = repr(
            TcpFlags(TcpFlags::ACK.0 | TcpFlags::PSH.0),
            SeqNum::new(7),
            SeqNum::new(7),
        );
        let route = client.receive(now, packet(server_addr(), client_addr(), &swap(r), &EVIL));
        assert!(matches!(route, Route::TimeWait(TimeWaitAction::Ack)));
        let out = client.step(now);
        assert_eq!(out.len(), 1);
        let p = wire::parse_ip_tcp(&out[0], true).unwrap();
        (p.tcp.ack, p.tcp.seq)
    };
    client.ep_replies.clear();
    let mut last_ack = Some(now);
    let first = now;
    let mut acks = 0usize;
    let wnd = 65_535u32;
    for i in 0..3 * PER_KIND {
        now += EVERY;
        client.timeout(now);
        assert!(
            client.ep.is_time_wait(id),
            "the record ended at injection {i}"
        );
        let kind = [Kind::Rst, Kind::Syn, Kind::Data][i % 3];
        let r = match kind {
            Kind::Rst => repr(
                TcpFlags::RST,
                pick_seq(&mut rng, rcv_nxt, wnd, Some(rcv_nxt)),
                SeqNum::new(0),
            ),
            Kind::Syn => {
                let seq = pick_seq(&mut rng, rcv_nxt, wnd, None);
                let seq = if seq.after(rcv_nxt) {
                    rcv_nxt + 0u32.wrapping_sub(seq.diff(rcv_nxt) as u32)
                } else {
                    seq
                };
                repr(TcpFlags::SYN, seq, SeqNum::new(0))
            }
            Kind::Data => {
                let k = rng.below(16) as u32;
                repr(
                    TcpFlags(TcpFlags::ACK.0 | TcpFlags::PSH.0),
                    pick_seq(&mut rng, rcv_nxt, wnd, None),
                    snd_nxt + 1 + k,
                )
            }
        };
        let payload: &[u8] = if kind == Kind::Data { &EVIL } else { &[] };
        let route = client.receive(now, packet(server_addr(), client_addr(), &swap(r), payload));
        let due = last_ack.is_none_or(|t| now.saturating_duration_since(t) >= interval);
        let expected = match kind {
            Kind::Rst => TimeWaitAction::Ignore,
            _ if due => TimeWaitAction::Ack,
            _ => TimeWaitAction::RateLimited,
        };
        assert!(
            matches!(&route, Route::TimeWait(a) if *a == expected),
            "injection {i}: {kind:?} {r}: {route:?}, expected {expected:?}"
        );
        let out = client.step(now);
        if expected == TimeWaitAction::Ack {
            last_ack = Some(now);
            acks += 1;
            assert_eq!(out.len(), 1);
            let p = wire::parse_ip_tcp(&out[0], true).unwrap();
            assert_eq!(
                (p.tcp.flags, p.tcp.seq, p.tcp.ack),
                (TcpFlags::ACK, snd_nxt, rcv_nxt)
            );
        } else {
            assert!(out.is_empty(), "injection {i}: {kind:?} answered");
        }
    }
    let span = now.saturating_duration_since(first);
    let bound = (span.as_micros() / interval.as_micros()) as usize + 1;
    println!(
        "TIME_WAIT: {} segments over {:.2} s virtual, {acks} ACKs (bound {bound})",
        3 * PER_KIND,
        span.as_micros() as f64 / 1e6
    );
    // The bound counts the first ACK, which read RCV.NXT and SND.NXT.
    assert!(acks < bound && acks >= 1, "{acks} ACKs, bound {bound}");
    // The path works: an exact RST closes the record.
    let route = client.receive(
        now,
        packet(
            server_addr(),
            client_addr(),
            &swap(repr(TcpFlags::RST, rcv_nxt, SeqNum::new(0))),
            &[],
        ),
    );
    assert!(matches!(route, Route::TimeWait(TimeWaitAction::Close)));
    assert!(!client.ep.is_time_wait(id));
}

/// The same segment, from the server to the client.
fn swap(mut r: TcpRepr) -> TcpRepr {
    std::mem::swap(&mut r.src_port, &mut r.dst_port);
    r
}

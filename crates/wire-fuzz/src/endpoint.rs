//! The stateful endpoint target: one `Endpoint` (listeners on three ports,
//! active opens) and every `Connection` it creates, driven by an arbitrary
//! sequence of [`Op`]s — segments from arbitrary peers (any flags, sequence
//! and acknowledgment numbers near the live connections' windows or random,
//! MSS, window scale, SACK-permitted, SACK blocks, timestamps, payloads),
//! SYN floods that fill a SYN queue so that cookies answer, cookie ACKs,
//! time advancing on a fake clock (`handle_timeout`), and the user's calls
//! (connect, accept, write, read, shutdown, close, abort, socket options,
//! memory pressure). The harness drives proto as the runtime does: every
//! output drained after every input, a CLOSED connection removed from the
//! table, a TIME_WAIT one handed to the endpoint as a record.
//!
//! Checked after every step (each assertion names the promise it checks):
//! - nothing panics;
//! - every segment the endpoint or a connection emits parses back with
//!   `parse_ip_tcp`, checksums verified, to the header that was reported,
//!   from one of our addresses to a unicast one; an RST is never answered
//!   with an RST;
//! - the sequence variables stay ordered: SND.UNA ≤ SND.MAX, both only move
//!   forward, every segment lies within [SND.UNA − 1, SND.MAX], SND.MAX is
//!   never beyond what was sent, data is never acknowledged beyond what was
//!   sent, RCV.NXT and the advertised right edge never move left;
//! - the bytes are right: every data segment carries exactly what the
//!   application wrote at its offset, every byte read is what a peer sent
//!   at that sequence number;
//! - memory stays within the configured limits: the receive buffer never
//!   holds more than its limit (plus one window-scale unit of rounding), its
//!   memory stays under 2 × limit + 64 KiB, the send buffer under its limit,
//!   each listener's SYN and accept queues under their bounds, the TIME_WAIT
//!   table under `max_time_wait`, the connection table exactly the
//!   connections alive and under `max_connections`;
//! - timers: after `handle_timeout(now)` no deadline is due.

mod input;

pub use input::{
    AckSel, Advance, Flow, Input, Kind, Op, Opts, Payload, SackSel, Seg, SeqSel, Setup, Sockopt,
    TsEcr, TsVal,
};

use crate::canonical_options;
use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use utcp_proto::wire::{SackBlocks, TcpFlags, TcpOptions, TcpRepr, emit_ip_tcp, parse_ip_tcp};
use utcp_proto::{
    CongestionAlgorithm, ConnHandle, Connection, Duration, Endpoint, EndpointConfig, Event,
    Instant, ListenerId, MemoryPressure, Route, Segment, SeqNum, State, TimeWaitId, Transmit,
};

/// The most operations of one input that are run.
const MAX_OPS: usize = 256;
/// The most peer 4-tuples the harness remembers.
const MAX_PEERS: usize = 512;
/// Our addresses.
const LOCAL_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const LOCAL_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
/// Ports that may be listened on: `[::]:80` (dual-stack), `10.0.0.1:443`,
/// `[::]:8080` (IPv6 only).
const LISTEN_PORTS: [u16; 3] = [80, 443, 8080];

/// What a run did, for tests that check the harness reaches deep states.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Operations run.
    pub ops: usize,
    /// Segments handed to the endpoint.
    pub injected: u64,
    /// Segments the endpoint and the connections emitted (all checked).
    pub emitted: u64,
    /// Connections that reported `Connected`.
    pub connected: u64,
    /// Connections that came from a SYN cookie.
    pub cookie_conns: u64,
    /// SYN cookies the endpoint sent.
    pub cookies_sent: u64,
    /// Connections handed to the TIME_WAIT table.
    pub time_waits: u64,
    /// Bytes the application read (each checked).
    pub bytes_read: u64,
    /// Payload bytes the connections sent (each checked).
    pub bytes_sent: u64,
    /// Connections reset by a peer.
    pub resets: u64,
}

/// The byte a peer's stream holds at sequence number `seq`.
pub fn peer_byte(seq: SeqNum) -> u8 {
    (seq.get().wrapping_mul(0x9E37_79B1) >> 24) as u8
}

/// The byte the application writes at stream offset `k`.
pub fn app_byte(k: u64) -> u8 {
    (k ^ (k >> 8) ^ (k >> 16) ^ 0x5a) as u8
}

/// Runs the endpoint target on fuzzer bytes (see the module docs); panics
/// on a broken promise.
pub fn endpoint(data: &[u8]) {
    let _ = endpoint_run(data);
}

/// [`endpoint`], returning what the run did (`None` for input too short
/// to describe one).
pub fn endpoint_run(data: &[u8]) -> Option<Summary> {
    // Every byte counts: operations are decoded one after the other until
    // the input ends (not `arbitrary`'s coin flip before each element).
    let mut u = Unstructured::new(data);
    let setup = Setup::arbitrary(&mut u).ok()?;
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        ops.push(Op::arbitrary(&mut u).ok()?);
    }
    Some(run(&Input { setup, ops }))
}

/// Runs one decoded input; panics on a broken promise.
pub fn run(input: &Input) -> Summary {
    let mut h = Harness::new(&input.setup);
    for op in input.ops.iter().take(MAX_OPS) {
        h.step(op);
        h.summary.ops += 1;
    }
    h.summary
}

/// What the harness knows of one 4-tuple, as its peer would.
#[derive(Debug, Clone)]
struct Peer {
    local: SocketAddr,
    remote: SocketAddr,
    /// The peer's next sequence number.
    nxt: SeqNum,
    /// Our ISS on this 4-tuple, when a SYN or SYN-ACK of ours was seen.
    our_iss: Option<SeqNum>,
    /// One past the highest sequence number we sent on it.
    our_nxt: SeqNum,
    /// The last TSval we sent on it.
    echo: u32,
    /// The peer's timestamp clock offset.
    ts_base: u32,
}

/// Where a connection came from, as the application sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// An active open: the application holds it from the start.
    Active,
    /// From a listener; `accepted` once the application took it.
    Passive {
        listener: ListenerId,
        accepted: bool,
    },
}

/// One connection and what the harness tracks of it.
struct Conn {
    handle: ConnHandle,
    c: Connection,
    owner: Owner,
    connected: bool,
    /// The application closed or aborted its handle.
    released: bool,
    /// Bytes the application wrote (the stream's length).
    written: u64,
    /// Bytes acknowledged (written − queued), while nothing cleared them.
    acked: u64,
    /// One past the highest stream offset sent.
    data_hi: u64,
    /// One past the highest sequence number sent (SYN and FIN included).
    sent_hi: Option<SeqNum>,
    /// SND.MAX and SND.UNA at the last check.
    prev: Option<(SeqNum, SeqNum)>,
    /// RCV.NXT and the advertised right edge at the last check (while
    /// synchronized or SYN_RECEIVED).
    prev_rcv: Option<(SeqNum, SeqNum)>,
    /// The right edge last put on the wire (synchronized states).
    wire_edge: Option<SeqNum>,
    /// The largest send-buffer limit this connection had.
    send_limit: usize,
}

impl Conn {
    fn new(handle: ConnHandle, c: Connection, owner: Owner) -> Conn {
        let send_limit = c.send_buffer_size();
        Conn {
            handle,
            c,
            owner,
            connected: false,
            released: false,
            written: 0,
            acked: 0,
            data_hi: 0,
            sent_hi: None,
            prev: None,
            prev_rcv: None,
            wire_edge: None,
            send_limit,
        }
    }

    fn user_visible(&self) -> bool {
        !self.released
            && match self.owner {
                Owner::Active => true,
                Owner::Passive { accepted, .. } => accepted,
            }
    }

    fn snd_una(&self) -> SeqNum {
        let st = self.c.stats();
        self.c.snd_max().wrapping_add(st.unacked.wrapping_neg())
    }
}

struct Harness {
    ep: Endpoint<()>,
    ecfg: EndpointConfig,
    now: Instant,
    conns: Vec<Conn>,
    listeners: [Option<(ListenerId, usize)>; 3],
    peers: Vec<Peer>,
    peer_index: HashMap<(SocketAddr, SocketAddr), usize>,
    held_tw: HashSet<TimeWaitId>,
    /// The current step's input was an RST: nothing may answer it with one.
    rst_input: bool,
    buf: BytesMut,
    summary: Summary,
}

/// Remote addresses peers use: three IPv4, two IPv6, our own (a LAND
/// attack), the limited broadcast, an IPv4 and an IPv6 multicast group.
fn remote_ip(i: u8) -> IpAddr {
    const TABLE: [IpAddr; 9] = [
        IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 1, 2)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 1, 3)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 2)),
        IpAddr::V4(LOCAL_V4),
        IpAddr::V4(Ipv4Addr::BROADCAST),
        IpAddr::V4(Ipv4Addr::new(224, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)),
    ];
    TABLE[usize::from(i) % TABLE.len()]
}

/// Our destination address for a peer of `src`'s family: mostly ours,
/// sometimes not ours, broadcast or multicast.
fn local_ip(src: IpAddr, i: u8) -> IpAddr {
    match (src, i % 4) {
        (IpAddr::V4(_), 0 | 1) => IpAddr::V4(LOCAL_V4),
        (IpAddr::V4(_), 2) => IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99)),
        (IpAddr::V4(_), _) => IpAddr::V4(Ipv4Addr::new(224, 0, 0, 5)),
        (IpAddr::V6(_), 0..=2) => IpAddr::V6(LOCAL_V6),
        (IpAddr::V6(_), _) => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 99)),
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

impl Harness {
    fn new(s: &Setup) -> Harness {
        let kib = |k: u8| (1 + usize::from(k) % 64) * 1024;
        let recv = kib(s.recv_kib);
        let send = kib(s.send_kib);
        let conn = utcp_proto::Config {
            mss: 64 + s.mss % 1400,
            recv_buffer: recv,
            recv_buffer_max: recv * (1 + usize::from(s.recv_max_factor % 4)),
            send_buffer: send,
            send_buffer_max: send * 2,
            window_scaling: !s.no_window_scaling,
            sack: !s.no_sack,
            timestamps: !s.no_timestamps,
            max_ooo_ranges: 1 + usize::from(s.ooo_ranges % 16),
            msl: secs(1 + u64::from(s.msl_secs % 60)),
            congestion: if s.reno {
                CongestionAlgorithm::NewReno
            } else {
                CongestionAlgorithm::Cubic
            },
            pacing: !s.no_pacing,
            nodelay: s.nodelay,
            ..utcp_proto::Config::default()
        };
        let ecfg = EndpointConfig {
            ephemeral_ports: 49152..=49152 + u16::from(s.ports % 8),
            secret: [s.secret; 16],
            max_time_wait: usize::from(s.max_time_wait % 8),
            time_wait_reuse: !s.no_time_wait_reuse,
            syn_queue: 1 + usize::from(s.syn_queue % 8),
            syn_cookies: !s.no_cookies,
            max_half_open: 1 + usize::from(s.max_half_open % 16),
            max_connections: 1 + usize::from(s.max_connections % 32),
            conn,
        };
        assert_eq!(ecfg.validate(), Ok(()), "the harness's configuration");
        let ep = Endpoint::new(
            ecfg.clone(),
            vec![IpAddr::V4(LOCAL_V4), IpAddr::V6(LOCAL_V6)],
        );
        let mut h = Harness {
            ep,
            ecfg,
            now: Instant::from_millis(1_000),
            conns: Vec::new(),
            listeners: [None; 3],
            peers: Vec::new(),
            peer_index: HashMap::new(),
            held_tw: HashSet::new(),
            rst_input: false,
            buf: BytesMut::new(),
            summary: Summary::default(),
        };
        h.listen(0, s.backlog);
        h
    }

    fn listen(&mut self, which: u8, backlog: u8) {
        let i = usize::from(which) % 3;
        if self.listeners[i].is_some() {
            return;
        }
        let backlog = 1 + usize::from(backlog % 8);
        let port = LISTEN_PORTS[i];
        let r = match i {
            0 => self.ep.listen(
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
                backlog,
            ),
            1 => self
                .ep
                .listen(SocketAddr::new(IpAddr::V4(LOCAL_V4), port), backlog),
            _ => self.ep.listen_v6_only(
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
                backlog,
            ),
        };
        // A connect_from may hold the port: then there is no listener.
        if let Ok((id, _)) = r {
            self.listeners[i] = Some((id, backlog));
        }
    }

    fn step(&mut self, op: &Op) {
        self.rst_input = false;
        match op {
            Op::Segment(s) => self.segment(s),
            Op::Flood {
                listener,
                count,
                base,
                timestamps,
                sack,
                window_scale,
            } => self.flood(*listener, *count, *base, *timestamps, *sack, *window_scale),
            Op::Advance(a) => self.advance(*a),
            Op::Connect {
                remote,
                port,
                local,
            } => self.connect(*remote, *port, *local),
            Op::Accept { listener } => self.accept(*listener),
            Op::Write { conn, len } => {
                if let Some(i) = self.user_conn(*conn) {
                    let k = &mut self.conns[i];
                    let n = 1 + usize::from(*len) % (16 * 1024);
                    let data: Vec<u8> = (k.written..k.written + n as u64).map(app_byte).collect();
                    if let Ok(took) = k.c.send(&data) {
                        assert!(took <= n, "send took more than it was given");
                        k.written += took as u64;
                    }
                }
            }
            Op::Read { conn, len } => {
                if let Some(i) = self.user_conn(*conn) {
                    self.read(i, 1 + usize::from(*len) % (8 * 1024));
                }
            }
            Op::Shutdown { conn } => {
                if let Some(i) = self.user_conn(*conn) {
                    self.conns[i].c.shutdown(self.now);
                }
            }
            Op::Close { conn } => {
                if let Some(i) = self.user_conn(*conn) {
                    self.conns[i].c.close(self.now);
                    self.conns[i].released = true;
                }
            }
            Op::Abort { conn } => {
                if let Some(i) = self.user_conn(*conn) {
                    self.conns[i].c.abort(self.now);
                    self.conns[i].released = true;
                }
            }
            Op::Listen { which, backlog } => self.listen(*which, *backlog),
            Op::Unlisten { which } => self.unlisten(*which),
            Op::Pressure { conn, level } => {
                if !self.conns.is_empty() {
                    let i = usize::from(*conn) % self.conns.len();
                    let p = match level % 3 {
                        0 => MemoryPressure::Normal,
                        1 => MemoryPressure::Pressure,
                        _ => MemoryPressure::Limit,
                    };
                    self.conns[i].c.set_memory_pressure(p);
                }
            }
            Op::Sockopt { conn, opt } => {
                if let Some(i) = self.user_conn(*conn) {
                    self.sockopt(i, *opt);
                }
            }
        }
        self.drain();
    }

    /// The `i`-th connection the application holds.
    fn user_conn(&self, i: u8) -> Option<usize> {
        let visible: Vec<usize> = (0..self.conns.len())
            .filter(|&k| self.conns[k].user_visible())
            .collect();
        if visible.is_empty() {
            return None;
        }
        Some(visible[usize::from(i) % visible.len()])
    }

    fn sockopt(&mut self, i: usize, opt: Sockopt) {
        let now = self.now;
        let k = &mut self.conns[i];
        let c = &mut k.c;
        match opt {
            Sockopt::Nodelay(on) => c.set_nodelay(on),
            Sockopt::Quickack(on) => c.set_quickack(on),
            Sockopt::Keepalive(on) => c.set_keepalive(now, on),
            Sockopt::KeepaliveTime(s) => {
                let _ = c.set_keepalive_time(now, secs(1 + u64::from(s)));
            }
            Sockopt::KeepaliveInterval(s) => {
                let _ = c.set_keepalive_interval(secs(1 + u64::from(s)));
            }
            Sockopt::UserTimeout(ms) => {
                let r = c.set_user_timeout(now, ms.map(|m| Duration::from_millis(u64::from(m))));
                assert_eq!(
                    r.is_err(),
                    ms == Some(0),
                    "only a user timeout of 0 is refused"
                );
            }
            Sockopt::SendBuffer(n) => {
                let r = c.set_send_buffer_size(usize::from(n));
                assert_eq!(r.is_err(), n == 0, "only a send buffer of 0 is refused");
                k.send_limit = k.send_limit.max(usize::from(n));
            }
            Sockopt::RecvBuffer(n) => {
                let _ = c.set_recv_buffer_size(usize::from(n));
            }
            Sockopt::Reno(reno) => {
                let a = if reno {
                    CongestionAlgorithm::NewReno
                } else {
                    CongestionAlgorithm::Cubic
                };
                let _ = c.set_congestion(a);
            }
        }
    }

    fn read(&mut self, i: usize, len: usize) {
        let k = &mut self.conns[i];
        let fin = u32::from(k.c.peer_closed());
        let readable = k.c.readable();
        // The next byte to read: RCV.NXT less what is readable (and the FIN).
        let seq0 =
            k.c.rcv_nxt()
                .wrapping_add((readable as u32).wrapping_add(fin).wrapping_neg());
        let mut buf = vec![0u8; len];
        match k.c.recv(&mut buf) {
            Ok(Some(n)) if n > 0 => {
                assert!(n <= readable.min(len), "read {n} of {readable} readable");
                for (j, &b) in buf[..n].iter().enumerate() {
                    let seq = seq0.wrapping_add(j as u32);
                    assert_eq!(
                        b,
                        peer_byte(seq),
                        "byte read at seq {seq:?} is not what the peer sent there"
                    );
                }
                self.summary.bytes_read += n as u64;
            }
            Ok(Some(_)) => assert_eq!(readable, 0, "EOF with bytes readable"),
            Ok(None) => assert_eq!(readable, 0, "nothing read with bytes readable"),
            Err(_) => assert_eq!(readable, 0, "an error with bytes readable"),
        }
    }

    fn accept(&mut self, which: u8) {
        let Some((id, _)) = self.listeners[usize::from(which) % 3] else {
            return;
        };
        let Some(k) = self.conns.iter_mut().find(|k| {
            k.connected
                && matches!(k.owner, Owner::Passive { listener, accepted: false } if listener == id)
        }) else {
            return;
        };
        k.owner = Owner::Passive {
            listener: id,
            accepted: true,
        };
        self.ep.release_backlog(k.handle);
    }

    fn unlisten(&mut self, which: u8) {
        let i = usize::from(which) % 3;
        let Some((id, _)) = self.listeners[i].take() else {
            return;
        };
        self.ep.unlisten(id);
        assert!(!self.ep.has_listener(id), "unlisten leaves no listener");
        // As the runtime: a dropped listener resets what it never accepted.
        for k in &mut self.conns {
            if k.owner
                == (Owner::Passive {
                    listener: id,
                    accepted: false,
                })
            {
                k.c.abort(self.now);
                k.released = true;
            }
        }
    }

    fn connect(&mut self, remote: u8, port: u8, local: Option<u8>) {
        let ip = remote_ip(remote);
        let remote = SocketAddr::new(ip, [80, 443, 22, 1234][usize::from(port) % 4]);
        let r = match local {
            None => self.ep.connect(self.now, remote, None),
            Some(l) => {
                let lip = if ip.is_ipv4() {
                    IpAddr::V4(LOCAL_V4)
                } else {
                    IpAddr::V6(LOCAL_V6)
                };
                let lport = [80, 1024, 49152, 49153][usize::from(l) % 4];
                self.ep
                    .connect_from(self.now, SocketAddr::new(lip, lport), remote)
            }
        };
        if let Ok((handle, c)) = r {
            assert_eq!(
                c.state(),
                State::SynSent,
                "an active open starts in SYN_SENT"
            );
            assert!(self.find(handle).is_none(), "connect reused a live handle");
            self.note_peer(c.local_addr(), c.remote_addr());
            self.conns.push(Conn::new(handle, c, Owner::Active));
        }
    }

    fn find(&self, h: ConnHandle) -> Option<usize> {
        self.conns.iter().position(|k| k.handle == h)
    }

    /// The harness's record of a 4-tuple (made if new and there is room).
    fn note_peer(&mut self, local: SocketAddr, remote: SocketAddr) -> Option<usize> {
        if let Some(&i) = self.peer_index.get(&(local, remote)) {
            return Some(i);
        }
        if self.peers.len() >= MAX_PEERS {
            return None;
        }
        let mix = |a: SocketAddr| {
            let mut x = u32::from(a.port());
            match a.ip() {
                IpAddr::V4(v) => x ^= u32::from(v),
                IpAddr::V6(v) => {
                    x ^= v
                        .octets()
                        .iter()
                        .fold(0u32, |h, &b| h.rotate_left(5) ^ u32::from(b))
                }
            }
            x
        };
        let seed = mix(remote).wrapping_mul(0x0100_0193) ^ mix(local).rotate_left(16);
        self.peers.push(Peer {
            local,
            remote,
            nxt: SeqNum::new(seed.wrapping_mul(2_654_435_761)),
            our_iss: None,
            our_nxt: SeqNum::new(0),
            echo: 0,
            ts_base: seed,
        });
        self.peer_index
            .insert((local, remote), self.peers.len() - 1);
        Some(self.peers.len() - 1)
    }

    fn flow(&mut self, f: Flow) -> Option<(SocketAddr, SocketAddr)> {
        match f {
            Flow::Conn(i) => {
                if self.conns.is_empty() {
                    return None;
                }
                let k = &self.conns[usize::from(i) % self.conns.len()];
                Some((k.c.local_addr(), k.c.remote_addr()))
            }
            Flow::Known(i) => {
                if self.peers.is_empty() {
                    return None;
                }
                let p = &self.peers[usize::from(i) % self.peers.len()];
                Some((p.local, p.remote))
            }
            Flow::Fresh {
                src,
                sport,
                dst,
                dport,
            } => {
                let sip = remote_ip(src);
                let sport = [1234, 1235, 80, 443, 49152, 65535, 0, 7][usize::from(sport) % 8];
                let dport = [80, 443, 8080, 81, 49152, 49153][usize::from(dport) % 6];
                Some((
                    SocketAddr::new(local_ip(sip, dst), dport),
                    SocketAddr::new(sip, sport),
                ))
            }
        }
    }

    fn segment(&mut self, s: &Seg) {
        let Some((local, remote)) = self.flow(s.flow) else {
            return;
        };
        let pi = self.note_peer(local, remote);
        let conn = self
            .conns
            .iter()
            .position(|k| k.c.local_addr() == local && k.c.remote_addr() == remote);
        let peer = pi.map(|i| self.peers[i].clone());
        let flags = s.kind.flags();
        // The receive side's view: RCV.NXT and the window.
        let (rcv_nxt, wnd) = match conn.map(|i| &self.conns[i].c) {
            Some(c) if c.state().is_synchronized() || c.state() == State::SynReceived => {
                (c.rcv_nxt(), c.stats().recv_window)
            }
            _ => (peer.as_ref().map_or(SeqNum::new(0), |p| p.nxt), 65_535),
        };
        let seq = match s.seq {
            SeqSel::Next(o) => rcv_nxt.wrapping_add(o as i32 as u32),
            SeqSel::WindowEnd(o) => rcv_nxt.wrapping_add(wnd).wrapping_add(o as i32 as u32),
            SeqSel::InWindow(f) => {
                rcv_nxt.wrapping_add(((u64::from(wnd) * u64::from(f)) >> 16) as u32)
            }
            SeqSel::Raw(v) => SeqNum::new(v),
        };
        // The send side's view: SND.MAX, SND.UNA, ISS.
        let (snd_max, snd_una, iss) = match conn.map(|i| &self.conns[i]) {
            Some(k) => (k.c.snd_max(), k.snd_una(), k.c.iss()),
            None => {
                let p = peer.as_ref();
                let nxt = p.map_or(SeqNum::new(0), |p| p.our_nxt);
                let iss = p
                    .and_then(|p| p.our_iss)
                    .unwrap_or(nxt.wrapping_add(u32::MAX));
                (nxt, nxt, iss)
            }
        };
        let ack = match s.ack {
            AckSel::SndMax(o) => snd_max.wrapping_add(o as i32 as u32),
            AckSel::SndUna(o) => snd_una.wrapping_add(o as i32 as u32),
            AckSel::Iss(o) => iss.wrapping_add(1).wrapping_add(o as i32 as u32),
            AckSel::Raw(v) => SeqNum::new(v),
        };
        let mut sack = SackBlocks::EMPTY;
        for b in s.opts.sack.iter().flatten() {
            let (l, r) = match *b {
                SackSel::Rel(start, len) => {
                    let l = snd_una.wrapping_add(u32::from(start));
                    (l, l.wrapping_add(u32::from(len)))
                }
                SackSel::Raw(l, r) => (SeqNum::new(l), SeqNum::new(r)),
            };
            sack.push(l, r);
        }
        let clock = peer
            .as_ref()
            .map_or(0, |p| p.ts_base)
            .wrapping_add(self.now.as_millis() as u32);
        let timestamps = s.opts.timestamps.map(|(v, e)| {
            let v = match v {
                TsVal::Clock => clock,
                TsVal::Behind(b) => clock.wrapping_sub(u32::from(b)),
                TsVal::Raw(x) => x,
            };
            let e = match e {
                TsEcr::Echo => peer.as_ref().map_or(0, |p| p.echo),
                TsEcr::Raw(x) => x,
            };
            (v, e)
        });
        let options = canonical_options(TcpOptions {
            mss: s.opts.mss.filter(|&m| m != 0),
            window_scale: s.opts.window_scale,
            sack_permitted: s.opts.sack_permitted,
            sack,
            timestamps,
        });
        let repr = TcpRepr {
            src_port: remote.port(),
            dst_port: local.port(),
            seq,
            ack,
            flags,
            window: s.window,
            urgent: 0,
            options,
        };
        let len = match s.payload {
            Payload::Empty => 0,
            Payload::Len(n) => usize::from(n % 1600),
            Payload::Window => (wnd as usize).min(60_000),
            Payload::Big(n) => usize::from(n % 60_000),
        };
        let start = seq.wrapping_add(u32::from(flags.syn()));
        let payload: Vec<u8> = (0..len as u32)
            .map(|j| peer_byte(start.wrapping_add(j)))
            .collect();
        if let Some(i) = pi {
            let p = &mut self.peers[i];
            let seg_len = len as u32 + u32::from(flags.syn()) + u32::from(flags.fin());
            if flags.syn() || s.advance {
                p.nxt = seq.wrapping_add(seg_len);
            }
        }
        let truesize = s.truesize.map(|t| len * (1 + usize::from(t)) + 256);
        self.inject(remote.ip(), local.ip(), &repr, &payload, truesize);
    }

    fn flood(
        &mut self,
        listener: u8,
        count: u8,
        base: u8,
        timestamps: bool,
        sack: bool,
        window_scale: Option<u8>,
    ) {
        let i = usize::from(listener) % 3;
        let port = LISTEN_PORTS[i];
        for k in 0..=u16::from(count % 64) {
            let n = u16::from(base) * 64 + k;
            // Port 8080 listens on IPv6 only; 443 on IPv4 only.
            let src = if i == 2 || (i == 0 && n % 3 == 0) {
                IpAddr::V6(Ipv6Addr::new(0xfd00, 2, 0, 0, 0, 0, 0, 1 + n % 200))
            } else {
                IpAddr::V4(Ipv4Addr::new(10, 0, 2, 1 + (n % 200) as u8))
            };
            let dst = if src.is_ipv4() {
                IpAddr::V4(LOCAL_V4)
            } else {
                IpAddr::V6(LOCAL_V6)
            };
            let local = SocketAddr::new(dst, port);
            let remote = SocketAddr::new(src, 20_000 + n);
            let pi = self.note_peer(local, remote);
            let (seq, ts_base) = pi.map_or((SeqNum::new(u32::from(n) * 7919), 0), |p| {
                (self.peers[p].nxt, self.peers[p].ts_base)
            });
            let repr = TcpRepr {
                src_port: remote.port(),
                dst_port: port,
                seq,
                ack: SeqNum::new(0),
                flags: TcpFlags::SYN,
                window: 65_535,
                urgent: 0,
                options: TcpOptions {
                    mss: Some(1460),
                    window_scale,
                    sack_permitted: sack,
                    sack: SackBlocks::EMPTY,
                    timestamps: timestamps
                        .then(|| (ts_base.wrapping_add(self.now.as_millis() as u32), 0)),
                },
            };
            if let Some(p) = pi {
                self.peers[p].nxt = seq.wrapping_add(1);
            }
            self.inject(src, dst, &repr, &[], None);
            // The endpoint's replies (cookies) are read between SYNs so
            // that their queue never decides what a flood sees.
            self.drain_endpoint();
        }
    }

    /// Emits a peer's segment, parses it as the device task would, and
    /// routes it through the endpoint as the runtime does.
    fn inject(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        repr: &TcpRepr,
        payload: &[u8],
        truesize: Option<usize>,
    ) {
        let mut packet = BytesMut::new();
        emit_ip_tcp(&mut packet, src, dst, 64, repr, payload);
        packet.extend_from_slice(payload);
        let packet = packet.freeze();
        // The device task drops what does not parse (a broadcast source).
        let Ok(parsed) = parse_ip_tcp(&packet, true) else {
            return;
        };
        self.summary.injected += 1;
        let f = parsed.tcp.flags;
        self.rst_input = f.rst();
        let payload = packet.slice(parsed.payload.clone());
        let seg = Segment {
            repr: parsed.tcp,
            payload,
        };
        let deliver = |k: &mut Conn, now: Instant, seg: Segment| match truesize {
            Some(t) => k.c.handle_segment_sized(now, seg, t),
            None => k.c.handle_segment(now, seg),
        };
        match self.ep.handle(
            self.now,
            parsed.src,
            parsed.dst,
            &seg.repr,
            seg.payload.len(),
        ) {
            Route::Connection(h) => {
                let i = self
                    .find(h)
                    .unwrap_or_else(|| panic!("the endpoint routed to a handle nobody holds"));
                let k = &mut self.conns[i];
                assert_eq!(
                    (k.c.local_addr(), k.c.remote_addr()),
                    (
                        SocketAddr::new(parsed.dst, seg.repr.dst_port),
                        SocketAddr::new(parsed.src, seg.repr.src_port)
                    ),
                    "routed to another 4-tuple's connection"
                );
                deliver(k, self.now, seg);
            }
            Route::Incoming {
                listener,
                handle,
                conn,
            } => {
                assert!(
                    self.ep.has_listener(listener),
                    "a connection of no listener"
                );
                assert!(
                    self.find(handle).is_none(),
                    "a new connection took a live handle"
                );
                assert_eq!(
                    (conn.local_addr(), conn.remote_addr()),
                    (
                        SocketAddr::new(parsed.dst, seg.repr.dst_port),
                        SocketAddr::new(parsed.src, seg.repr.src_port)
                    ),
                    "a new connection for another 4-tuple"
                );
                let cookie = conn.state() == State::Established;
                assert!(
                    (cookie && f.ack() && !f.syn())
                        || (conn.state() == State::SynReceived && f.syn()),
                    "a new connection in {:?} from {f:?}",
                    conn.state()
                );
                let mut k = Conn::new(
                    handle,
                    *conn,
                    Owner::Passive {
                        listener,
                        accepted: false,
                    },
                );
                if cookie {
                    self.summary.cookie_conns += 1;
                    // The endpoint sent its SYN-ACK (the cookie).
                    k.sent_hi = Some(k.c.iss().wrapping_add(1));
                    if !seg.payload.is_empty() || f.fin() {
                        deliver(&mut k, self.now, seg);
                    }
                }
                self.conns.push(k);
            }
            Route::Reset => assert!(!f.rst(), "the endpoint answered an RST with an RST"),
            Route::SynCookie => {
                assert!(
                    f.syn() && !f.ack() && self.ecfg.syn_cookies,
                    "a cookie for {f:?} (cookies on: {})",
                    self.ecfg.syn_cookies
                );
            }
            Route::Ask { .. } | Route::Deferred => {
                panic!("a SYN was asked for without a listener that decides")
            }
            Route::TimeWait(_) | Route::Drop(_) => {}
        }
    }

    fn advance(&mut self, a: Advance) {
        match a {
            Advance::Millis(ms) => self.now += Duration::from_millis(u64::from(ms)),
            Advance::Secs(s) => self.now += secs(u64::from(s)),
            Advance::Deadline => self.jump_to_next_deadline(),
            Advance::Deadlines(n) => {
                for _ in 0..=n % 16 {
                    self.jump_to_next_deadline();
                    self.drain();
                }
            }
        }
    }

    fn jump_to_next_deadline(&mut self) {
        let next = self
            .conns
            .iter()
            .filter_map(|k| k.c.poll_timeout())
            .chain(self.ep.poll_timeout())
            .min();
        if let Some(t) = next {
            self.now = self.now.max(t);
        }
    }

    /// Drains every output, as the runtime does after every input, checks
    /// every promise, and retires what ended.
    fn drain(&mut self) {
        let now = self.now;
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now);
        }
        assert!(
            self.ep.poll_timeout().is_none_or(|t| t > now),
            "the endpoint's deadline is still due after handle_timeout"
        );
        for i in 0..self.conns.len() {
            self.drain_conn(i);
        }
        let mut i = 0;
        while i < self.conns.len() {
            let k = &mut self.conns[i];
            if k.c.state() == State::TimeWait {
                let rec =
                    k.c.time_wait_record()
                        .unwrap_or_else(|| panic!("TIME_WAIT without a record"));
                let (local, remote) = (rec.local, rec.remote);
                assert_eq!((local, remote), (k.c.local_addr(), k.c.remote_addr()));
                let (rcv_nxt, snd_nxt) = (rec.rcv_nxt(), rec.snd_nxt());
                let held = k.user_visible();
                let k = self.conns.swap_remove(i);
                let (id, _) = self.ep.enter_time_wait(k.handle, rec, held);
                let mut c = k.c;
                c.retire();
                self.summary.time_waits += 1;
                if held && let Some(id) = id {
                    self.held_tw.insert(id);
                }
                if let Some(p) = self.note_peer(local, remote) {
                    self.peers[p].nxt = rcv_nxt;
                    self.peers[p].our_nxt = snd_nxt;
                }
                continue;
            }
            if k.c.is_closed() {
                let k = self.conns.swap_remove(i);
                self.ep.remove(k.handle);
                continue;
            }
            i += 1;
        }
        while let Some((id, _)) = self.ep.poll_time_wait_end() {
            assert!(
                self.held_tw.remove(&id),
                "the end of a TIME_WAIT record nobody holds (or reported twice)"
            );
        }
        self.drain_endpoint();
        self.check_endpoint();
    }

    fn drain_endpoint(&mut self) {
        loop {
            self.buf.clear();
            let Some(tx) = self.ep.poll_transmit(&mut self.buf) else {
                break;
            };
            let packet = self.packet(&tx);
            self.check_emitted(&tx, &packet);
            let r = tx.repr;
            assert!(
                r.flags.syn() || r.flags.rst() || r.flags.ack(),
                "a reply of {:?}",
                r.flags
            );
            if r.flags.syn() {
                assert!(r.flags.ack(), "the endpoint sent a bare SYN");
                self.summary.cookies_sent += 1;
            }
            let local = SocketAddr::new(tx.src, r.src_port);
            let remote = SocketAddr::new(tx.dst, r.dst_port);
            if let Some(p) = self.note_peer(local, remote) {
                let p = &mut self.peers[p];
                if r.flags.syn() {
                    p.our_iss = Some(r.seq);
                    p.our_nxt = r.seq.wrapping_add(1);
                } else if !r.flags.rst() {
                    p.our_nxt = r.seq;
                }
                if let Some((v, _)) = r.options.timestamps {
                    p.echo = v;
                }
            }
        }
    }

    /// A transmit's whole packet: its headers (in `self.buf`) and payload.
    fn packet(&self, tx: &Transmit) -> Bytes {
        assert_eq!(
            self.buf.len(),
            tx.header_len,
            "header_len is what was written"
        );
        let mut p = BytesMut::with_capacity(tx.header_len + tx.payload.len());
        p.extend_from_slice(&self.buf);
        p.extend_from_slice(&tx.payload);
        p.freeze()
    }

    /// Every emitted segment parses back, checksums verified, to what was
    /// reported, between one of our addresses and a unicast one.
    fn check_emitted(&mut self, tx: &Transmit, packet: &[u8]) {
        self.summary.emitted += 1;
        let parsed = parse_ip_tcp(packet, true)
            .unwrap_or_else(|e| panic!("an emitted segment does not parse: {e:?} ({tx:?})"));
        assert_eq!((parsed.src, parsed.dst), (tx.src, tx.dst), "addresses");
        let reported = TcpRepr {
            options: canonical_options(tx.repr.options),
            ..tx.repr
        };
        assert_eq!(
            parsed.tcp, reported,
            "the header parsed is the one reported"
        );
        assert_eq!(&packet[parsed.payload.clone()], &tx.payload[..], "payload");
        assert!(self.ep.is_local(tx.src), "sent from {} (not ours)", tx.src);
        let unicast = match tx.dst {
            IpAddr::V4(a) => !a.is_broadcast() && !a.is_multicast(),
            IpAddr::V6(a) => !a.is_multicast(),
        };
        assert!(unicast, "sent to {} (not unicast)", tx.dst);
        let f = tx.repr.flags;
        assert!(!(f.syn() && (f.fin() || f.rst())), "sent {f:?}");
        assert!(
            !(f.rst() && self.rst_input),
            "an RST answered with an RST: {:?}",
            tx.repr
        );
    }

    fn drain_conn(&mut self, i: usize) {
        let now = self.now;
        if self.conns[i].c.poll_timeout().is_some_and(|t| t <= now) {
            self.conns[i].c.handle_timeout(now);
            assert!(
                self.conns[i].c.poll_timeout().is_none_or(|t| t > now),
                "a connection's deadline is still due after handle_timeout"
            );
        }
        loop {
            self.buf.clear();
            let Some(tx) = self.conns[i].c.poll_transmit(now, &mut self.buf) else {
                break;
            };
            let packet = self.packet(&tx);
            self.check_emitted(&tx, &packet);
            self.check_conn_segment(i, &tx);
            let r = tx.repr;
            let (local, remote) = (
                SocketAddr::new(tx.src, r.src_port),
                SocketAddr::new(tx.dst, r.dst_port),
            );
            if let Some(p) = self.note_peer(local, remote) {
                let p = &mut self.peers[p];
                if r.flags.syn() {
                    p.our_iss = Some(r.seq);
                }
                if let Some((v, _)) = r.options.timestamps {
                    p.echo = v;
                }
            }
        }
        let _ = self.conns[i].c.poll_timeout();
        while let Some(ev) = self.conns[i].c.poll_event() {
            let k = &mut self.conns[i];
            match ev {
                Event::Connected => {
                    assert!(!k.connected, "Connected twice");
                    k.connected = true;
                    self.summary.connected += 1;
                    // As the runtime: a listener that is gone resets what
                    // it can no longer hand out.
                    if let Owner::Passive {
                        listener,
                        accepted: false,
                    } = k.owner
                        && !self.ep.has_listener(listener)
                    {
                        k.c.abort(now);
                        k.released = true;
                    }
                }
                Event::Error(e) => {
                    assert_eq!(k.c.error(), Some(e), "the Error event is the error");
                    if e == utcp_proto::Error::ConnectionReset {
                        self.summary.resets += 1;
                    }
                }
                Event::Closed => assert_eq!(k.c.state(), State::Closed, "Closed event"),
                Event::StateChanged { from, to } => assert_ne!(from, to, "a change to itself"),
                _ => {}
            }
        }
        // An abort above leaves an RST to send.
        if self.conns[i].released && self.conns[i].c.state() == State::Closed {
            loop {
                self.buf.clear();
                let Some(tx) = self.conns[i].c.poll_transmit(now, &mut self.buf) else {
                    break;
                };
                let packet = self.packet(&tx);
                self.check_emitted(&tx, &packet);
                self.check_conn_segment(i, &tx);
            }
        }
        self.check_conn(i);
    }

    /// A segment a connection sent: its addresses, its place in the send
    /// sequence space, and its bytes.
    fn check_conn_segment(&mut self, i: usize, tx: &Transmit) {
        let k = &mut self.conns[i];
        let r = &tx.repr;
        assert_eq!(
            (
                SocketAddr::new(tx.src, r.src_port),
                SocketAddr::new(tx.dst, r.dst_port)
            ),
            (k.c.local_addr(), k.c.remote_addr()),
            "a connection sent on another 4-tuple"
        );
        let f = r.flags;
        if f.rst() {
            // An RST's SEQ may be SEG.ACK of what it answers (RFC 9293
            // §3.10.7.3): no place in our sequence space.
            assert!(tx.payload.is_empty(), "an RST with data");
            return;
        }
        let st = k.c.stats();
        if f.syn() {
            assert_eq!(r.seq, k.c.iss(), "a SYN not at ISS");
            assert!(tx.payload.is_empty(), "a SYN with data");
        } else {
            let mss = st.mss as usize;
            assert!(
                tx.payload.len() <= mss,
                "{} bytes in one segment, MSS {mss}",
                tx.payload.len()
            );
        }
        let una = k.snd_una();
        let max = k.c.snd_max();
        let len = tx.payload.len() as u32 + u32::from(f.syn()) + u32::from(f.fin());
        let end = r.seq.wrapping_add(len);
        assert!(
            r.seq.after_eq(una.wrapping_add(u32::MAX)),
            "SEQ {:?} below SND.UNA {una:?} − 1",
            r.seq
        );
        assert!(
            end.before_eq(max),
            "segment ends at {end:?}, past SND.MAX {max:?}"
        );
        k.sent_hi = Some(match k.sent_hi {
            Some(h) => h.max(end),
            None => end,
        });
        if !tx.payload.is_empty() {
            let offset = u64::from(r.seq.get().wrapping_sub(k.c.iss().get().wrapping_add(1)));
            for (j, &b) in tx.payload.iter().enumerate() {
                assert_eq!(
                    b,
                    app_byte(offset + j as u64),
                    "byte sent at stream offset {} is not what was written there",
                    offset + j as u64
                );
            }
            k.data_hi = k.data_hi.max(offset + tx.payload.len() as u64);
            assert!(
                k.data_hi <= k.written,
                "sent up to offset {}, only {} bytes written",
                k.data_hi,
                k.written
            );
            self.summary.bytes_sent += tx.payload.len() as u64;
        }
        // The right edge on the wire never moves left (RFC 9293 §3.8.6).
        let state = k.c.state();
        if f.ack() && !f.syn() && state.is_synchronized() {
            let shift = st.rcv_wscale.unwrap_or(0);
            let edge = r.ack.wrapping_add(u32::from(r.window) << shift);
            if let Some(prev) = k.wire_edge {
                assert!(
                    edge.after_eq(prev),
                    "advertised right edge moved left: {prev:?} → {edge:?}"
                );
            }
            k.wire_edge = Some(edge);
        }
    }

    /// A connection's sequence variables and memory.
    fn check_conn(&mut self, i: usize) {
        let k = &mut self.conns[i];
        let c = &k.c;
        let st = c.stats();
        let state = c.state();
        let max = c.snd_max();
        let una = k.snd_una();
        if let Some((pmax, puna)) = k.prev {
            assert!(max.after_eq(pmax), "SND.MAX moved back: {pmax:?} → {max:?}");
            assert!(una.after_eq(puna), "SND.UNA moved back: {puna:?} → {una:?}");
        }
        k.prev = Some((max, una));
        if let Some(h) = k.sent_hi {
            assert!(
                max.before_eq(h),
                "SND.MAX {max:?} beyond what was sent ({h:?})"
            );
        }
        // Data acknowledged is data sent, while nothing cleared the buffer.
        if c.error().is_none() && state != State::Closed {
            let queued = c.send_queued() as u64;
            assert!(
                queued <= k.written,
                "{queued} bytes queued of {} written",
                k.written
            );
            let acked = k.written - queued;
            assert!(
                acked <= k.data_hi,
                "{acked} bytes acknowledged, only {} sent",
                k.data_hi
            );
            assert!(acked >= k.acked, "acknowledged bytes went back");
            k.acked = acked;
            assert!(
                c.send_queued()
                    <= k.send_limit
                        .max(c.send_buffer_size())
                        .max(self.ecfg.conn.send_buffer_max),
                "send buffer holds {} bytes, limit {}",
                c.send_queued(),
                c.send_buffer_size()
            );
        }
        if state == State::SynReceived || state.is_synchronized() {
            let nxt = c.rcv_nxt();
            let edge = nxt.wrapping_add(st.recv_window);
            if let Some((pnxt, pedge)) = k.prev_rcv {
                assert!(nxt.after_eq(pnxt), "RCV.NXT moved back: {pnxt:?} → {nxt:?}");
                assert!(
                    edge.after_eq(pedge),
                    "the window's right edge moved left: {pedge:?} → {edge:?}"
                );
            }
            k.prev_rcv = Some((nxt, edge));
        }
        let limit = c.recv_buffer_size();
        let cfg = &self.ecfg.conn;
        assert!(
            limit <= cfg.recv_buffer.max(cfg.recv_buffer_max).max(65_535),
            "receive buffer grew to {limit}"
        );
        let unit = 1usize << st.rcv_wscale.unwrap_or(0);
        assert!(
            c.readable() < limit + unit,
            "{} bytes readable, limit {limit}",
            c.readable()
        );
        assert!(
            c.recv_memory() <= 2 * limit + 64 * 1024,
            "receive memory {} for a limit of {limit}",
            c.recv_memory()
        );
    }

    /// The endpoint's tables and queues within their bounds.
    fn check_endpoint(&self) {
        let live = self.ep.connection_count() - self.ep.time_wait_count();
        assert_eq!(
            live,
            self.conns.len(),
            "the table holds {live} connections, the harness {}",
            self.conns.len()
        );
        assert!(live <= self.ecfg.max_connections, "{live} connections");
        assert!(
            self.ep.time_wait_count() <= self.ecfg.max_time_wait,
            "{} TIME_WAIT records",
            self.ep.time_wait_count()
        );
        let ls = self.ep.listen_stats();
        assert!(
            ls.half_open <= self.ecfg.max_half_open,
            "{} half-open connections",
            ls.half_open
        );
        for &(id, backlog) in self.listeners.iter().flatten() {
            let (half_open, unaccepted) = self
                .ep
                .listener_queues(id)
                .unwrap_or_else(|| panic!("a listener without queues"));
            assert!(
                half_open <= self.ecfg.syn_queue,
                "SYN queue holds {half_open}, bound {}",
                self.ecfg.syn_queue
            );
            assert!(
                unaccepted <= backlog,
                "accept queue holds {unaccepted}, backlog {backlog}"
            );
        }
    }
}

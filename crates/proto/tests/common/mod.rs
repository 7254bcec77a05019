//! The segment-test DSL (the shape of smoltcp's `send!` / `recv!`).
//!
//! A [`TestConn`] wraps one [`Connection`] with a fake clock in milliseconds.
//! Segments are written from templates: `ACK.seq(R + 1).ack(L + 1).data(b"hi")`
//! is what the peer sends us (`t.inject(at_ms, seg)`), `ACK.seq(L + 1).ack(R + 3)`
//! what we expect back (`t.expect_sent(at_ms, [seg, …])`). `L` is our ISS, `R`
//! the peer's. Every segment the connection emits is rebuilt from the header
//! bytes it wrote plus its payload and parsed with [`wire::parse_ip_tcp`], so
//! the bytes and the checksums are checked as well as the fields.
//!
//! Fixtures reach each state by driving the real handshake and close; each
//! documents the time it ends at and the sequence numbers in use.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use utcp_proto::wire::{self, TcpFlags, TcpOptions, TcpRepr};
use utcp_proto::{
    Config, ConnHandle, Connection, Endpoint, EndpointConfig, Error, Event, Instant, Route,
    Segment, SeqNum, State, Stats, Transmit,
};

/// Our initial sequence number.
pub const L: SeqNum = SeqNum::new(1_000_000);
/// The peer's initial sequence number.
pub const R: SeqNum = SeqNum::new(5_000_000);
/// The window the peer advertises unless a template sets one.
pub const PEER_WINDOW: u16 = 65_535;
/// The timestamp clock offset of the `established_ts` fixture.
pub const TS_OFFSET: u32 = 1_000;

const fn flags(bits: u8) -> TcpFlags {
    TcpFlags(bits)
}
const F_FIN: u8 = TcpFlags::FIN.0;
const F_SYN: u8 = TcpFlags::SYN.0;
const F_RST: u8 = TcpFlags::RST.0;
const F_PSH: u8 = TcpFlags::PSH.0;
const F_ACK: u8 = TcpFlags::ACK.0;

/// A segment template: what the peer sends, or what we expect to be sent.
///
/// Expected segments compare flags, seq, ack and payload always; the window,
/// the MSS, window-scale and timestamps options only when the template sets
/// them (`no_ts()` / `no_ws()` expect them absent).
#[derive(Clone, PartialEq, Eq)]
pub struct Seg {
    /// Flag bits, compared exactly.
    pub flags: TcpFlags,
    /// SEG.SEQ.
    pub seq: SeqNum,
    /// SEG.ACK (0 on the wire without the ACK flag).
    pub ack: SeqNum,
    /// Window: injected as [`PEER_WINDOW`] when `None`; compared only when set.
    pub window: Option<u16>,
    /// MSS option: compared only when set.
    pub mss: Option<u16>,
    /// Window scale option: compared only when set (`Some(None)`: absent).
    pub ws: Option<Option<u8>>,
    /// Timestamps option (TSval, TSecr): compared only when set
    /// (`Some(None)`: absent).
    pub ts: Option<Option<(u32, u32)>>,
    /// SACK-permitted option: compared only when set.
    pub sack_perm: Option<bool>,
    /// SACK blocks: compared only when set (empty: none).
    pub sack: Option<Vec<(SeqNum, SeqNum)>>,
    /// Payload.
    pub payload: Bytes,
}

const fn template(bits: u8) -> Seg {
    Seg {
        flags: flags(bits),
        seq: SeqNum::new(0),
        ack: SeqNum::new(0),
        window: None,
        mss: None,
        ws: None,
        ts: None,
        sack_perm: None,
        sack: None,
        payload: Bytes::new(),
    }
}

/// A bare SYN.
pub const SYN: Seg = template(F_SYN);
/// SYN|ACK.
pub const SYN_ACK: Seg = template(F_SYN | F_ACK);
/// A pure ACK.
pub const ACK: Seg = template(F_ACK);
/// PSH|ACK: a data segment ending the queued data.
pub const PSH_ACK: Seg = template(F_PSH | F_ACK);
/// FIN|ACK.
pub const FIN_ACK: Seg = template(F_FIN | F_ACK);
/// FIN|PSH|ACK: the last data with the FIN.
pub const FIN_PSH_ACK: Seg = template(F_FIN | F_PSH | F_ACK);
/// A bare RST.
pub const RST: Seg = template(F_RST);
/// RST|ACK.
pub const RST_ACK: Seg = template(F_RST | F_ACK);
/// A bare FIN (no ACK: not acceptable in synchronized states).
pub const FIN: Seg = template(F_FIN);
/// No flags at all.
pub const NO_FLAGS: Seg = template(0);

impl Seg {
    /// Sets SEG.SEQ.
    pub fn seq(mut self, seq: SeqNum) -> Seg {
        self.seq = seq;
        self
    }
    /// Sets SEG.ACK.
    pub fn ack(mut self, ack: SeqNum) -> Seg {
        self.ack = ack;
        self
    }
    /// Sets (and, when expected, compares) the window.
    pub fn win(mut self, w: u16) -> Seg {
        self.window = Some(w);
        self
    }
    /// Sets (and, when expected, compares) the MSS option.
    pub fn mss(mut self, mss: u16) -> Seg {
        self.mss = Some(mss);
        self
    }
    /// Sets (and, when expected, compares) the window scale option.
    pub fn ws(mut self, shift: u8) -> Seg {
        self.ws = Some(Some(shift));
        self
    }
    /// Expects no window scale option.
    pub fn no_ws(mut self) -> Seg {
        self.ws = Some(None);
        self
    }
    /// Sets (and, when expected, compares) the timestamps option.
    pub fn ts(mut self, tsval: u32, tsecr: u32) -> Seg {
        self.ts = Some(Some((tsval, tsecr)));
        self
    }
    /// Expects no timestamps option.
    pub fn no_ts(mut self) -> Seg {
        self.ts = Some(None);
        self
    }
    /// Sets (and, when expected, compares) SACK-permitted.
    pub fn sack_perm(mut self, on: bool) -> Seg {
        self.sack_perm = Some(on);
        self
    }
    /// Sets (and, when expected, compares) the SACK blocks.
    pub fn sack(mut self, blocks: &[(SeqNum, SeqNum)]) -> Seg {
        self.sack = Some(blocks.to_vec());
        self
    }
    /// Expects no SACK blocks.
    pub fn no_sack(mut self) -> Seg {
        self.sack = Some(Vec::new());
        self
    }
    /// Sets the payload.
    pub fn data(mut self, d: &[u8]) -> Seg {
        self.payload = Bytes::copy_from_slice(d);
        self
    }
    /// Adds flags.
    pub fn with(mut self, f: TcpFlags) -> Seg {
        self.flags |= f;
        self
    }
    /// SEG.LEN.
    pub fn seg_len(&self) -> u32 {
        self.payload.len() as u32 + self.flags.syn() as u32 + self.flags.fin() as u32
    }

    fn matches(&self, got: &Seg) -> bool {
        self.flags == got.flags
            && self.seq == got.seq
            && self.ack == got.ack
            && self.payload == got.payload
            && self.window.is_none_or(|w| Some(w) == got.window)
            && self.mss.is_none_or(|m| Some(m) == got.mss)
            && self.ws.is_none_or(|w| w == got.ws.flatten())
            && self.ts.is_none_or(|t| t == got.ts.flatten())
            && self.sack_perm.is_none_or(|p| Some(p) == got.sack_perm)
            && self
                .sack
                .as_ref()
                .is_none_or(|b| Some(b) == got.sack.as_ref())
    }

    fn from_repr(r: &TcpRepr, payload: Bytes) -> Seg {
        Seg {
            flags: r.flags,
            seq: r.seq,
            ack: r.ack,
            window: Some(r.window),
            mss: r.options.mss,
            ws: Some(r.options.window_scale),
            ts: Some(r.options.timestamps),
            sack_perm: Some(r.options.sack_permitted),
            sack: Some(r.options.sack.as_slice().to_vec()),
            payload,
        }
    }

    pub fn to_repr(&self, src_port: u16, dst_port: u16) -> TcpRepr {
        TcpRepr {
            src_port,
            dst_port,
            seq: self.seq,
            ack: if self.flags.ack() {
                self.ack
            } else {
                SeqNum::new(0)
            },
            flags: self.flags,
            window: self.window.unwrap_or(PEER_WINDOW),
            urgent: 0,
            options: TcpOptions {
                mss: self.mss,
                window_scale: self.ws.flatten(),
                timestamps: self.ts.flatten(),
                sack_permitted: self.sack_perm.unwrap_or(false),
                sack: {
                    let mut b = utcp_proto::wire::SackBlocks::EMPTY;
                    for &(l, r) in self.sack.iter().flatten() {
                        b.push(l, r);
                    }
                    b
                },
            },
        }
    }
}

/// Prints a sequence number relative to `L` or `R` when it is near one.
pub struct Rel(pub SeqNum);

impl fmt::Display for Rel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let near = [("L", L), ("R", R)]
            .into_iter()
            .map(|(name, base)| (name, self.0.diff(base)))
            .filter(|(_, d)| (-(1 << 16)..(1 << 24)).contains(d))
            .min_by_key(|(_, d)| d.unsigned_abs());
        match near {
            Some((name, d)) if d >= 0 => write!(f, "{name}+{d}"),
            Some((name, d)) => write!(f, "{name}{d}"),
            None => write!(f, "{}", self.0.get()),
        }
    }
}

impl fmt::Debug for Seg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} seq={} ack={}",
            self.flags,
            Rel(self.seq),
            Rel(self.ack)
        )?;
        if let Some(w) = self.window {
            write!(f, " win={w}")?;
        }
        if let Some(m) = self.mss {
            write!(f, " mss={m}")?;
        }
        if let Some(Some(w)) = self.ws {
            write!(f, " ws={w}")?;
        }
        if let Some(Some((v, e))) = self.ts {
            write!(f, " ts={v}/{e}")?;
        }
        if self.sack_perm == Some(true) {
            write!(f, " sack_perm")?;
        }
        if let Some(b) = &self.sack
            && !b.is_empty()
        {
            write!(f, " sack=")?;
            for (l, r) in b {
                write!(f, "[{}, {})", Rel(*l), Rel(*r))?;
            }
        }
        if !self.payload.is_empty() {
            write!(f, " len={}", self.payload.len())?;
            if self.payload.len() <= 16 {
                write!(f, " {:?}", String::from_utf8_lossy(&self.payload))?;
            }
        }
        Ok(())
    }
}

/// `n` bytes of a recognisable pattern starting at `offset` of a stream.
pub fn pattern(offset: usize, n: usize) -> Vec<u8> {
    (offset..offset + n).map(|i| (i % 251) as u8).collect()
}

/// Emits `repr` + `payload` from `src` to `dst` as IP bytes and parses them back:
/// the segment as a device would deliver it.
pub fn through_wire(src: IpAddr, dst: IpAddr, repr: &TcpRepr, payload: &[u8]) -> (TcpRepr, Bytes) {
    let mut buf = BytesMut::new();
    wire::emit_ip_tcp(&mut buf, src, dst, 64, repr, payload);
    buf.extend_from_slice(payload);
    let packet = buf.freeze();
    let parsed = wire::parse_ip_tcp(&packet, true).expect("injected segment parses");
    assert_eq!((parsed.src, parsed.dst), (src, dst));
    (parsed.tcp, packet.slice(parsed.payload))
}

/// Rebuilds an emitted segment from the header bytes written into `buf` and
/// the payload, parses it (checksums verified) and checks it against the
/// `Transmit` that described it.
#[track_caller]
pub fn parse_transmit(buf: &[u8], tx: &Transmit) -> (IpAddr, IpAddr, Seg) {
    assert_eq!(
        buf.len(),
        tx.header_len,
        "header_len disagrees with the bytes written"
    );
    let mut packet = BytesMut::from(buf);
    packet.extend_from_slice(&tx.payload);
    packet.extend_from_slice(&tx.payload_tail);
    if let Some((start, field)) = tx.csum_partial {
        // Checksum offload: the field holds the pseudo-header sum for the
        // whole TCP length; complete it as the device would.
        let (start, field) = (usize::from(start), usize::from(field));
        let tcp_len = (packet.len() - start) as u32;
        let pseudo = wire::checksum::Checksum::pseudo_header(tx.src, tx.dst, 6, tcp_len).fold();
        assert_eq!(
            u16::from_be_bytes([packet[field], packet[field + 1]]),
            pseudo,
            "a partial checksum is the pseudo-header sum of the whole segment"
        );
        assert_eq!(
            field,
            start + 16,
            "the partial checksum's place is the TCP field"
        );
        let mut sum = wire::checksum::Checksum::new();
        sum.add_bytes(&packet[start..]);
        packet[field..field + 2].copy_from_slice(&sum.finish().to_be_bytes());
    }
    let packet = packet.freeze();
    let parsed = match wire::parse_ip_tcp(&packet, true) {
        Ok(p) => p,
        Err(e) => panic!("emitted segment {} does not parse: {e}", tx.repr),
    };
    assert_eq!(
        parsed.tcp, tx.repr,
        "emitted header bytes disagree with Transmit::repr"
    );
    assert_eq!(
        (parsed.src, parsed.dst),
        (tx.src, tx.dst),
        "addresses disagree"
    );
    let payload = packet.slice(parsed.payload.clone());
    assert_eq!(
        payload,
        [&tx.payload[..], &tx.payload_tail[..]].concat(),
        "emitted payload disagrees"
    );
    (parsed.src, parsed.dst, Seg::from_repr(&parsed.tcp, payload))
}

#[track_caller]
fn compare_sent(at_ms: u64, sent: &mut VecDeque<(Instant, Seg)>, expected: &[Seg]) {
    let at = Instant::from_millis(at_ms);
    let got: Vec<(Instant, Seg)> = sent.drain(..).collect();
    let ok = got.len() == expected.len()
        && got
            .iter()
            .zip(expected)
            .all(|((when, g), e)| *when == at && e.matches(g));
    if !ok {
        let mut msg = format!("at {at_ms} ms expected {} segment(s):\n", expected.len());
        for e in expected {
            msg += &format!("    {e:?}\n");
        }
        msg += &format!("got {}:\n", got.len());
        for (when, g) in &got {
            msg += &format!(
                "    {g:?}  (sent at {} ms)\n",
                when.as_micros() as f64 / 1000.0
            );
        }
        panic!("{msg}");
    }
}

/// How a fixture is set up.
#[derive(Clone, Debug)]
pub struct Opts {
    /// The connection's configuration.
    pub cfg: Config,
    /// The MSS option on the peer's SYN / SYN-ACK (`None`: no option).
    pub peer_mss: Option<u16>,
    /// The window on the peer's handshake segments.
    pub peer_window: u16,
    /// IPv6 addresses instead of IPv4.
    pub ipv6: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            cfg: Config::default(),
            peer_mss: Some(1460),
            peer_window: PEER_WINDOW,
            ipv6: false,
        }
    }
}

/// One connection under test, with a fake clock.
pub struct TestConn {
    /// The connection (public for the odd assertion; prefer the helpers).
    pub conn: Connection,
    now: Instant,
    buf: BytesMut,
    sent: VecDeque<(Instant, Seg)>,
    events: VecDeque<Event>,
    /// Our address.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The fixture's options.
    pub opts: Opts,
    /// Every super-segment sent (TSO, `Config::tx_offload`): when, its
    /// first sequence number, its payload length and its segment size.
    /// The sent list holds the segments the device cuts it into.
    pub super_segments: Vec<(Instant, SeqNum, usize, u16)>,
    /// Transmits whose payload came in two parts (it spans two send-buffer
    /// chunks, `TxOffload::scatter_gather`).
    pub gathered: usize,
}

impl Opts {
    /// The default options with pacing off (`Config::pacing`), for tests
    /// that count what the congestion window lets out at one instant:
    /// pacing would spread beyond the initial window over the round trip.
    pub fn unpaced() -> Opts {
        Opts {
            cfg: Config {
                pacing: false,
                ..Config::default()
            },
            ..Opts::default()
        }
    }

    fn addrs(&self) -> (SocketAddr, SocketAddr) {
        if self.ipv6 {
            (
                "[fd00::1]:40000".parse().unwrap(),
                "[fd00::2]:80".parse().unwrap(),
            )
        } else {
            (
                "10.0.0.1:40000".parse().unwrap(),
                "10.0.0.2:80".parse().unwrap(),
            )
        }
    }

    /// SYN_SENT at 0 ms: our SYN <SEQ=L> went out (checked); RTO deadline 1000.
    pub fn syn_sent(self) -> TestConn {
        let (local, remote) = self.addrs();
        let conn = Connection::connect(self.cfg.clone(), local, remote, L, Instant::ZERO)
            .expect("connect");
        let mut t = TestConn::wrap(conn, self);
        t.expect_sent(0, [SYN.seq(L).mss(t.opts.cfg.mss_for(t.opts.ipv6))]);
        t.expect_state(State::SynSent);
        t.events.clear();
        t
    }

    /// ESTABLISHED at 100 ms by active open: SYN at 0, SYN-ACK <SEQ=R><ACK=L+1>
    /// at 100 (RTT 100 ms, so RTO 300 ms), our ACK <SEQ=L+1><ACK=R+1>.
    pub fn established(self) -> TestConn {
        let mut t = self.syn_sent();
        let mut syn_ack = SYN_ACK.seq(R).ack(L + 1).win(t.opts.peer_window);
        syn_ack.mss = t.opts.peer_mss;
        t.inject(100, syn_ack);
        t.expect_sent(100, [ACK.seq(L + 1).ack(R + 1)]);
        t.expect_state(State::Established);
        t.events.clear();
        t
    }

    /// ESTABLISHED at 100 ms by active open with window scaling and
    /// timestamps in force (RFC 7323): the clock offset is [`TS_OFFSET`]
    /// (TSval = 1000 + ms); our SYN offered both; the SYN-ACK <SEQ=R><ACK=L+1>
    /// carries WS 7 and <TSval=5000, TSecr=1000>; our ACK echoes 5000 at TSval
    /// 1100 (RTT 100 ms from the echo).
    pub fn established_ts(self) -> TestConn {
        self.established_ts_with(false)
    }

    /// [`established_ts`](Self::established_ts) with SACK-permitted in the
    /// SYN-ACK too (RFC 2018 and RFC 7323 together: up to 3 blocks per ACK).
    pub fn established_ts_sack(self) -> TestConn {
        let t = self.established_ts_with(true);
        assert!(t.stats().sack && t.stats().timestamps);
        t
    }

    fn established_ts_with(self, sack: bool) -> TestConn {
        let (local, remote) = self.addrs();
        let mut conn = Connection::connect(self.cfg.clone(), local, remote, L, Instant::ZERO)
            .expect("connect");
        conn.set_timestamp_offset(TS_OFFSET);
        let mut t = TestConn::wrap(conn, self);
        let shift = t.stats_rcv_shift_offered();
        t.expect_sent(0, [SYN.seq(L).ws(shift).ts(TS_OFFSET, 0)]);
        let mut syn_ack = SYN_ACK
            .seq(R)
            .ack(L + 1)
            .win(t.opts.peer_window)
            .ws(7)
            .ts(5_000, TS_OFFSET)
            .sack_perm(sack);
        syn_ack.mss = t.opts.peer_mss;
        t.inject(100, syn_ack);
        t.expect_sent(100, [ACK.seq(L + 1).ack(R + 1).ts(TS_OFFSET + 100, 5_000)]);
        t.expect_state(State::Established);
        t.events.clear();
        t
    }

    /// ESTABLISHED at 100 ms by active open with SACK in force (RFC 2018):
    /// our SYN offered SACK-permitted and the SYN-ACK <SEQ=R><ACK=L+1> carries
    /// it (no window scale, no timestamps: up to 4 blocks per ACK).
    pub fn established_sack(self) -> TestConn {
        let mut t = self.syn_sent();
        let mut syn_ack = SYN_ACK
            .seq(R)
            .ack(L + 1)
            .win(t.opts.peer_window)
            .sack_perm(true);
        syn_ack.mss = t.opts.peer_mss;
        t.inject(100, syn_ack);
        t.expect_sent(100, [ACK.seq(L + 1).ack(R + 1).no_sack()]);
        assert!(t.stats().sack);
        t.events.clear();
        t
    }

    /// SYN_RECEIVED at 0 ms by passive open: the peer's SYN <SEQ=R> accepted,
    /// our SYN-ACK <SEQ=L><ACK=R+1> sent (checked); RTO deadline 1000.
    pub fn syn_received(self) -> TestConn {
        let (local, remote) = self.addrs();
        let mut syn = SYN.seq(R).win(self.peer_window);
        syn.mss = self.peer_mss;
        let (repr, _) = through_wire(
            remote.ip(),
            local.ip(),
            &syn.to_repr(remote.port(), local.port()),
            &[],
        );
        let conn = Connection::accept(self.cfg.clone(), local, remote, L, Instant::ZERO, &repr)
            .expect("accept");
        let mut t = TestConn::wrap(conn, self);
        t.expect_sent(
            0,
            [SYN_ACK
                .seq(L)
                .ack(R + 1)
                .mss(t.opts.cfg.mss_for(t.opts.ipv6))],
        );
        t.expect_state(State::SynReceived);
        t.events.clear();
        t
    }

    /// ESTABLISHED at 100 ms by passive open: the peer's ACK <SEQ=R+1><ACK=L+1>
    /// at 100 (RTO 300 ms).
    pub fn established_passive(self) -> TestConn {
        let mut t = self.syn_received();
        t.inject(100, ACK.seq(R + 1).ack(L + 1).win(t.opts.peer_window));
        t.expect_nothing(100);
        t.expect_state(State::Established);
        t.events.clear();
        t
    }

    /// FIN_WAIT_1 at 100 ms: established, then `shutdown` (not orphaned), our
    /// FIN <SEQ=L+1><ACK=R+1> sent at 100; RTO deadline 400.
    pub fn fin_wait_1(self) -> TestConn {
        let mut t = self.established();
        t.shutdown(100);
        t.expect_sent(100, [FIN_ACK.seq(L + 1).ack(R + 1)]);
        t.expect_state(State::FinWait1);
        t.events.clear();
        t
    }

    /// FIN_WAIT_2 at 200 ms: the peer ACKed our FIN (<ACK=L+2>) at 200.
    pub fn fin_wait_2(self) -> TestConn {
        let mut t = self.fin_wait_1();
        t.inject(200, ACK.seq(R + 1).ack(L + 2));
        t.expect_nothing(200);
        t.expect_state(State::FinWait2);
        t.events.clear();
        t
    }

    /// CLOSE_WAIT at 200 ms: the peer's FIN <SEQ=R+1> at 200, ACKed with <ACK=R+2>.
    pub fn close_wait(self) -> TestConn {
        let mut t = self.established();
        t.inject(200, FIN_ACK.seq(R + 1).ack(L + 1));
        t.expect_sent(200, [ACK.seq(L + 1).ack(R + 2)]);
        t.expect_state(State::CloseWait);
        t.events.clear();
        t
    }

    /// LAST_ACK at 300 ms: close_wait, then `shutdown`; FIN <SEQ=L+1><ACK=R+2>
    /// sent at 300.
    pub fn last_ack(self) -> TestConn {
        let mut t = self.close_wait();
        t.shutdown(300);
        t.expect_sent(300, [FIN_ACK.seq(L + 1).ack(R + 2)]);
        t.expect_state(State::LastAck);
        t.events.clear();
        t
    }

    /// CLOSING at 200 ms: fin_wait_1, then the peer's FIN <SEQ=R+1><ACK=L+1>
    /// (not acknowledging ours) at 200, ACKed with <SEQ=L+2><ACK=R+2>.
    pub fn closing(self) -> TestConn {
        let mut t = self.fin_wait_1();
        t.inject(200, FIN_ACK.seq(R + 1).ack(L + 1));
        t.expect_sent(200, [ACK.seq(L + 2).ack(R + 2)]);
        t.expect_state(State::Closing);
        t.events.clear();
        t
    }

    /// TIME_WAIT at 300 ms: fin_wait_2, then the peer's FIN <SEQ=R+1><ACK=L+2>
    /// at 300, ACKed with <SEQ=L+2><ACK=R+2>; 2·MSL ends at 60 300.
    pub fn time_wait(self) -> TestConn {
        let mut t = self.fin_wait_2();
        t.inject(300, FIN_ACK.seq(R + 1).ack(L + 2));
        t.expect_sent(300, [ACK.seq(L + 2).ack(R + 2)]);
        t.expect_state(State::TimeWait);
        t.events.clear();
        t
    }
}

impl TestConn {
    /// See [`Opts::syn_sent`].
    pub fn syn_sent() -> TestConn {
        Opts::default().syn_sent()
    }
    /// See [`Opts::established`].
    pub fn established() -> TestConn {
        Opts::default().established()
    }
    /// See [`Opts::established_sack`].
    pub fn established_sack() -> TestConn {
        Opts::default().established_sack()
    }
    /// See [`Opts::established_ts`].
    pub fn established_ts() -> TestConn {
        Opts::default().established_ts()
    }
    /// See [`Opts::established_ts_sack`].
    pub fn established_ts_sack() -> TestConn {
        Opts::default().established_ts_sack()
    }
    /// See [`Opts::syn_received`].
    pub fn syn_received() -> TestConn {
        Opts::default().syn_received()
    }
    /// See [`Opts::established_passive`].
    pub fn established_passive() -> TestConn {
        Opts::default().established_passive()
    }
    /// See [`Opts::fin_wait_1`].
    pub fn fin_wait_1() -> TestConn {
        Opts::default().fin_wait_1()
    }
    /// See [`Opts::fin_wait_2`].
    pub fn fin_wait_2() -> TestConn {
        Opts::default().fin_wait_2()
    }
    /// See [`Opts::close_wait`].
    pub fn close_wait() -> TestConn {
        Opts::default().close_wait()
    }
    /// See [`Opts::last_ack`].
    pub fn last_ack() -> TestConn {
        Opts::default().last_ack()
    }
    /// See [`Opts::closing`].
    pub fn closing() -> TestConn {
        Opts::default().closing()
    }
    /// See [`Opts::time_wait`].
    pub fn time_wait() -> TestConn {
        Opts::default().time_wait()
    }

    /// Wraps a connection made elsewhere (its first outputs drained into the
    /// unchecked list); the clock starts at 0.
    pub fn wrap(conn: Connection, opts: Opts) -> TestConn {
        let mut t = TestConn {
            local: conn.local_addr(),
            remote: conn.remote_addr(),
            conn,
            now: Instant::ZERO,
            buf: BytesMut::new(),
            sent: VecDeque::new(),
            events: VecDeque::new(),
            opts,
            super_segments: Vec::new(),
            gathered: 0,
        };
        t.drain();
        t
    }

    /// The window shift a SYN of this configuration offers: the smallest
    /// that fits the receive buffer (RFC 7323 §2.3).
    pub fn stats_rcv_shift_offered(&self) -> u8 {
        let mut s = 0;
        while s < 14 && (self.opts.cfg.recv_buffer.max(self.opts.cfg.recv_buffer_max) >> s) > 65_535
        {
            s += 1;
        }
        s
    }

    /// The fake clock, in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.now.as_millis()
    }

    /// Drains every output: segments (parsed back from their bytes) and events.
    fn drain(&mut self) {
        for _ in 0..10_000 {
            self.buf.clear();
            let Some(tx) = self.conn.poll_transmit(self.now, &mut self.buf) else {
                while let Some(e) = self.conn.poll_event() {
                    self.events.push_back(e);
                }
                return;
            };
            let (src, dst, seg) = parse_transmit(&self.buf, &tx);
            assert_eq!(
                (src, dst),
                (self.local.ip(), self.remote.ip()),
                "segment addressed wrongly"
            );
            assert_eq!(
                (tx.repr.src_port, tx.repr.dst_port),
                (self.local.port(), self.remote.port()),
                "segment's ports are wrong"
            );
            self.gathered += usize::from(!tx.payload_tail.is_empty());
            let Some(g) = tx.gso_size else {
                self.sent.push_back((self.now, seg));
                continue;
            };
            // A super-segment: the wire carries the segments the device
            // cuts it into (FIN and PSH on the last only).
            let g = usize::from(g);
            assert!(seg.payload.len() > g, "a super-segment of one segment");
            self.super_segments
                .push((self.now, seg.seq, seg.payload.len(), g as u16));
            let n = seg.payload.len().div_ceil(g);
            for i in 0..n {
                let mut one = seg.clone();
                one.seq = seg.seq + (i * g) as u32;
                one.payload = seg
                    .payload
                    .slice(i * g..((i + 1) * g).min(seg.payload.len()));
                if i + 1 < n {
                    one.flags = TcpFlags(seg.flags.0 & !(F_FIN | F_PSH));
                }
                self.sent.push_back((self.now, one));
            }
        }
        panic!("poll_transmit never returned None");
    }

    /// Moves the clock to `at_ms`, firing every deadline on the way at its own
    /// instant and draining the outputs after each.
    #[track_caller]
    pub fn advance(&mut self, at_ms: u64) {
        self.advance_to(Instant::from_millis(at_ms));
    }

    /// [`advance`](Self::advance) with microsecond precision.
    #[track_caller]
    pub fn advance_to(&mut self, to: Instant) {
        assert!(
            to >= self.now,
            "time goes backwards: now {:?}, asked {:?}",
            self.now,
            to
        );
        for _ in 0..100_000 {
            match self.conn.poll_timeout() {
                Some(d) if d <= to => {
                    self.now = self.now.max(d);
                    self.conn.handle_timeout(self.now);
                    self.drain();
                }
                _ => {
                    self.now = to;
                    return;
                }
            }
        }
        panic!("a deadline at or before {to:?} is never cleared");
    }

    #[track_caller]
    fn before_input(&mut self, at_ms: u64) {
        if !self.sent.is_empty() {
            let list: Vec<_> = self
                .sent
                .iter()
                .map(|(w, s)| format!("{s:?} at {w:?}"))
                .collect();
            panic!(
                "unchecked segments before the next input: {list:?} (use expect_sent or discard_sent)"
            );
        }
        self.advance(at_ms);
    }

    /// Advances to `at_ms` and hands the peer's segment to the connection (after
    /// a trip through the codec: emitted, parsed, checksum verified).
    #[track_caller]
    pub fn inject(&mut self, at_ms: u64, seg: Seg) {
        self.before_input(at_ms);
        let repr = seg.to_repr(self.remote.port(), self.local.port());
        let (repr, payload) = through_wire(self.remote.ip(), self.local.ip(), &repr, &seg.payload);
        self.conn
            .handle_segment(self.now, Segment { repr, payload });
        self.drain();
    }

    /// Advances to `at_ms` and hands the peer's segments to the connection as
    /// one received batch: all of them are processed before any output is
    /// drained, as the runtime drains a connection's whole inbox before
    /// `poll_transmit`.
    #[track_caller]
    pub fn inject_batch<const N: usize>(&mut self, at_ms: u64, segs: [Seg; N]) {
        self.before_input(at_ms);
        for seg in segs {
            let repr = seg.to_repr(self.remote.port(), self.local.port());
            let (repr, payload) =
                through_wire(self.remote.ip(), self.local.ip(), &repr, &seg.payload);
            self.conn
                .handle_segment(self.now, Segment { repr, payload });
        }
        self.drain();
    }

    /// Advances to `at_ms` and checks that exactly `expected` were sent, in
    /// order, all at `at_ms`, and nothing else.
    #[track_caller]
    pub fn expect_sent<const N: usize>(&mut self, at_ms: u64, expected: [Seg; N]) {
        self.advance(at_ms);
        compare_sent(at_ms, &mut self.sent, &expected);
    }

    /// [`expect_sent`](Self::expect_sent) with a list built at run time.
    #[track_caller]
    pub fn expect_sent_vec(&mut self, at_ms: u64, expected: Vec<Seg>) {
        self.advance(at_ms);
        compare_sent(at_ms, &mut self.sent, &expected);
    }

    /// Advances to `at_ms` and checks that nothing was sent.
    #[track_caller]
    pub fn expect_nothing(&mut self, at_ms: u64) {
        self.expect_sent(at_ms, []);
    }

    /// Advances to `at_ms` and returns what was sent (for tests that look at
    /// many segments in bulk).
    #[track_caller]
    pub fn take_sent(&mut self, at_ms: u64) -> Vec<Seg> {
        self.advance(at_ms);
        self.sent.drain(..).map(|(_, s)| s).collect()
    }

    /// Advances to `at_ms` and returns what was sent with when it left, in
    /// µs (for tests of pacing).
    #[track_caller]
    pub fn take_sent_timed(&mut self, at_ms: u64) -> Vec<(u64, Seg)> {
        self.advance(at_ms);
        self.sent
            .drain(..)
            .map(|(w, s)| (w.as_micros(), s))
            .collect()
    }

    /// Forgets what was sent without checking it.
    pub fn discard_sent(&mut self) {
        self.sent.clear();
    }

    /// The next deadline is at `us` microseconds.
    #[track_caller]
    pub fn expect_deadline_us(&self, us: u64) {
        assert_eq!(
            self.conn.poll_timeout(),
            Some(Instant::from_micros(us)),
            "deadline"
        );
    }

    /// The next deadline is at `ms`.
    #[track_caller]
    pub fn expect_deadline(&self, ms: u64) {
        assert_eq!(
            self.conn.poll_timeout(),
            Some(Instant::from_millis(ms)),
            "deadline"
        );
    }

    /// There is no deadline.
    #[track_caller]
    pub fn expect_no_deadline(&self) {
        assert_eq!(self.conn.poll_timeout(), None, "deadline");
    }

    /// The connection is in `state`.
    #[track_caller]
    pub fn expect_state(&self, state: State) {
        assert_eq!(self.conn.state(), state, "state");
    }

    /// `event` happened since the last check: drops the events before it and
    /// it.
    #[track_caller]
    pub fn expect_event(&mut self, event: Event) {
        match self.events.iter().position(|e| *e == event) {
            Some(i) => {
                self.events.drain(..=i);
            }
            None => panic!("expected event {event:?}, have {:?}", self.events),
        }
    }

    /// No event matching `pred` is pending.
    #[track_caller]
    pub fn expect_no_event(&mut self, pred: impl Fn(&Event) -> bool) {
        if let Some(e) = self.events.iter().find(|e| pred(e)) {
            panic!("unexpected event {e:?} among {:?}", self.events);
        }
    }

    /// The pending events, cleared.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// The connection's error.
    #[track_caller]
    pub fn expect_error(&self, err: Option<Error>) {
        assert_eq!(self.conn.error(), err, "error");
    }

    /// The application writes `data` at `at_ms`; returns the bytes taken.
    #[track_caller]
    pub fn send(&mut self, at_ms: u64, data: &[u8]) -> usize {
        self.before_input(at_ms);
        let n = self.conn.send(data).expect("send");
        self.drain();
        n
    }

    /// The application reads everything readable (without advancing time).
    pub fn recv_all(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(Some(n)) = self.conn.recv(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        self.drain();
        out
    }

    /// The application reads up to `n` bytes (without advancing time).
    pub fn recv_n(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        let got = match self.conn.recv(&mut buf) {
            Ok(Some(k)) => k,
            _ => 0,
        };
        buf.truncate(got);
        self.drain();
        buf
    }

    /// The runtime tells the stack's receive-memory level at `at_ms`.
    pub fn memory_pressure(&mut self, at_ms: u64, p: utcp_proto::MemoryPressure) {
        self.before_input(at_ms);
        self.conn.set_memory_pressure(p);
        self.drain();
    }

    /// `shutdown` at `at_ms`.
    #[track_caller]
    pub fn shutdown(&mut self, at_ms: u64) {
        self.before_input(at_ms);
        self.conn.shutdown(self.now);
        self.drain();
    }

    /// `close` at `at_ms`.
    #[track_caller]
    pub fn close(&mut self, at_ms: u64) {
        self.before_input(at_ms);
        self.conn.close(self.now);
        self.drain();
    }

    /// At `at_ms`, does `f` to the connection (an input the DSL has no
    /// verb for, such as an ICMP error), then drains its outputs.
    #[track_caller]
    pub fn act(&mut self, at_ms: u64, f: impl FnOnce(&mut Connection)) {
        self.before_input(at_ms);
        f(&mut self.conn);
        self.drain();
    }

    /// `abort` at `at_ms`.
    #[track_caller]
    pub fn abort(&mut self, at_ms: u64) {
        self.before_input(at_ms);
        self.conn.abort(self.now);
        self.drain();
    }

    /// The connection's statistics.
    pub fn stats(&self) -> Stats {
        self.conn.stats()
    }
}

/// An endpoint under test with a fake clock; its replies are parsed back like
/// a connection's segments.
pub struct TestEndpoint {
    /// The endpoint.
    pub ep: Endpoint<()>,
    now: Instant,
    buf: BytesMut,
    sent: VecDeque<(Instant, (SocketAddr, SocketAddr, Seg))>,
}

impl TestEndpoint {
    /// An endpoint owning `addrs`, with the configuration's secret.
    pub fn new(cfg: EndpointConfig, addrs: &[&str]) -> TestEndpoint {
        let addrs = addrs.iter().map(|a| a.parse().unwrap()).collect();
        TestEndpoint {
            ep: Endpoint::new(cfg, addrs),
            now: Instant::ZERO,
            buf: BytesMut::new(),
            sent: VecDeque::new(),
        }
    }

    /// The fake clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves the clock.
    #[track_caller]
    pub fn advance(&mut self, at_ms: u64) {
        let at = Instant::from_millis(at_ms);
        assert!(at >= self.now, "time goes backwards");
        self.now = at;
    }

    fn drain(&mut self) {
        for _ in 0..10_000 {
            self.buf.clear();
            let Some(tx) = self.ep.poll_transmit(&mut self.buf) else {
                return;
            };
            let (src, dst, seg) = parse_transmit(&self.buf, &tx);
            let from = SocketAddr::new(src, tx.repr.src_port);
            let to = SocketAddr::new(dst, tx.repr.dst_port);
            self.sent.push_back((self.now, (from, to, seg)));
        }
        panic!("Endpoint::poll_transmit never returned None");
    }

    /// A segment from `from` to `to` (socket addresses) arrives at `at_ms`
    /// (through the codec); returns the route, with any reply drained.
    #[track_caller]
    pub fn inject(&mut self, at_ms: u64, from: &str, to: &str, seg: Seg) -> Route {
        self.advance(at_ms);
        let from: SocketAddr = from.parse().unwrap();
        let to: SocketAddr = to.parse().unwrap();
        let repr = seg.to_repr(from.port(), to.port());
        let (repr, payload) = through_wire(from.ip(), to.ip(), &repr, &seg.payload);
        let route = self
            .ep
            .handle(self.now, from.ip(), to.ip(), &repr, payload.len());
        self.drain();
        route
    }

    /// Applies a verdict on a pending SYN now; returns the route, with any
    /// reply drained.
    pub fn decide(
        &mut self,
        id: utcp_proto::PendingId,
        verdict: utcp_proto::SynVerdict,
    ) -> Option<Route> {
        let route = self.ep.decide(self.now, id, verdict);
        self.drain();
        route
    }

    /// Exactly `expected` replies were sent from `from` to `to` (socket
    /// addresses) at `at_ms`.
    #[track_caller]
    pub fn expect_sent<const N: usize>(
        &mut self,
        at_ms: u64,
        from: &str,
        to: &str,
        expected: [Seg; N],
    ) {
        self.advance(at_ms);
        let from: SocketAddr = from.parse().unwrap();
        let to: SocketAddr = to.parse().unwrap();
        let mut segs = VecDeque::new();
        for (when, (src, dst, seg)) in self.sent.drain(..) {
            assert_eq!((src, dst), (from, to), "reply addressed wrongly: {seg:?}");
            segs.push_back((when, seg));
        }
        compare_sent(at_ms, &mut segs, &expected);
    }

    /// Every reply sent so far (from, to, segment), cleared.
    pub fn take_sent(&mut self) -> Vec<(SocketAddr, SocketAddr, Seg)> {
        self.sent.drain(..).map(|(_, r)| r).collect()
    }

    /// No reply was sent.
    #[track_caller]
    pub fn expect_nothing(&mut self, at_ms: u64) {
        self.advance(at_ms);
        if let Some(s) = self.sent.front() {
            panic!("unexpected reply {:?}", s.1);
        }
    }
}

/// `got` matches the template `expected` (as `expect_sent` compares).
#[track_caller]
pub fn assert_seg(got: &Seg, expected: &Seg) {
    assert!(expected.matches(got), "expected {expected:?}, got {got:?}");
}

/// Drains a connection's first segment (its SYN or SYN-ACK), parsed back.
#[track_caller]
pub fn first_segment(conn: &mut Connection, now: Instant) -> Seg {
    let mut buf = BytesMut::new();
    let tx = conn.poll_transmit(now, &mut buf).expect("a segment");
    parse_transmit(&buf, &tx).2
}

/// Unwraps a [`Route::Incoming`].
#[track_caller]
pub fn incoming(route: Route) -> (ConnHandle, Box<Connection>) {
    match route {
        Route::Incoming { handle, conn, .. } => (handle, conn),
        other => panic!("expected Route::Incoming, got {other:?}"),
    }
}

//! What the endpoint target's input decodes to: the configuration and the
//! operations, each chosen with `arbitrary`, numbers reduced into small
//! ranges or chosen relative to the live connections' sequence spaces so
//! that the fuzzer reaches deep states in few bytes.

use arbitrary::Arbitrary;
use utcp_proto::wire::TcpFlags;

/// One fuzz input: the endpoint's configuration and what happens to it.
/// The fuzzer's bytes decode as a [`Setup`], then one [`Op`] after another
/// until they run out.
#[derive(Debug, Clone)]
pub struct Input {
    /// The endpoint's and its connections' configuration.
    pub setup: Setup,
    /// The steps, run in order (at most 256).
    pub ops: Vec<Op>,
}

/// The configuration, each field reduced into a small range so that every
/// bound is reachable.
#[derive(Arbitrary, Debug, Clone, Default)]
pub struct Setup {
    /// The endpoint's secret (ISNs, cookies, ports), repeated.
    pub secret: u8,
    /// `syn_queue`: 1 + this % 8.
    pub syn_queue: u8,
    /// The first listener's backlog: 1 + this % 8.
    pub backlog: u8,
    /// `max_half_open`: 1 + this % 16.
    pub max_half_open: u8,
    /// `max_connections`: 1 + this % 32.
    pub max_connections: u8,
    /// `max_time_wait`: this % 8.
    pub max_time_wait: u8,
    /// The ephemeral ports: 49152 ..= 49152 + this % 8.
    pub ports: u8,
    /// SYN cookies off (they are on by default).
    pub no_cookies: bool,
    /// TIME_WAIT reuse off.
    pub no_time_wait_reuse: bool,
    /// The receive buffer: 1 + this % 64 KiB.
    pub recv_kib: u8,
    /// Receive auto-tuning up to (1 + this % 4) × the buffer.
    pub recv_max_factor: u8,
    /// The send buffer: 1 + this % 64 KiB.
    pub send_kib: u8,
    /// The MSS cap: 64 + this % 1400.
    pub mss: u16,
    /// Window scaling off.
    pub no_window_scaling: bool,
    /// SACK off.
    pub no_sack: bool,
    /// Timestamps off.
    pub no_timestamps: bool,
    /// `max_ooo_ranges`: 1 + this % 16.
    pub ooo_ranges: u8,
    /// MSL: 1 + this % 60 seconds.
    pub msl_secs: u8,
    /// NewReno instead of CUBIC.
    pub reno: bool,
    /// Pacing off.
    pub no_pacing: bool,
    /// Nagle off.
    pub nodelay: bool,
}

/// One step.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// A segment from a peer.
    Segment(Seg),
    /// SYNs from 1 + `count` % 64 new peers to one listener: its SYN queue
    /// fills and cookies answer the rest.
    Flood {
        /// Which listener port (index into 80, 443, 8080).
        listener: u8,
        /// How many SYNs, less one (mod 64).
        count: u8,
        /// Which peers (their ports and addresses).
        base: u8,
        /// The SYNs carry timestamps (so cookies keep window scale and SACK).
        timestamps: bool,
        /// The SYNs offer SACK.
        sack: bool,
        /// The SYNs offer this window scale.
        window_scale: Option<u8>,
    },
    /// Time passes.
    Advance(Advance),
    /// An active open.
    Connect {
        /// Which remote address (index into the peer table).
        remote: u8,
        /// Which remote port (80, 443, 22, 1234).
        port: u8,
        /// From this local port (80, 1024, 49152, 49153) with
        /// `connect_from`, or an ephemeral one.
        local: Option<u8>,
    },
    /// The application accepts the oldest established connection of a
    /// listener.
    Accept {
        /// Which listener port.
        listener: u8,
    },
    /// The application writes 1 + `len` % 16 KiB.
    Write {
        /// Which user-visible connection.
        conn: u8,
        /// How much.
        len: u16,
    },
    /// The application reads up to 1 + `len` % 8 KiB.
    Read {
        /// Which user-visible connection.
        conn: u8,
        /// How much.
        len: u16,
    },
    /// The application shuts down writing.
    Shutdown {
        /// Which user-visible connection.
        conn: u8,
    },
    /// The application closes its handle.
    Close {
        /// Which user-visible connection.
        conn: u8,
    },
    /// The application aborts.
    Abort {
        /// Which user-visible connection.
        conn: u8,
    },
    /// Listens on a port (if not listening).
    Listen {
        /// Which listener port.
        which: u8,
        /// Its backlog: 1 + this % 8.
        backlog: u8,
    },
    /// Stops a listener; the connections it had not accepted are reset.
    Unlisten {
        /// Which listener port.
        which: u8,
    },
    /// The stack's receive memory state changes for one connection.
    Pressure {
        /// Which connection (any, accepted or not).
        conn: u8,
        /// Normal, pressure or limit (mod 3).
        level: u8,
    },
    /// A socket option.
    Sockopt {
        /// Which user-visible connection.
        conn: u8,
        /// The option.
        opt: Sockopt,
    },
}

/// A socket option set by the application.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Sockopt {
    /// `TCP_NODELAY`.
    Nodelay(bool),
    /// `TCP_QUICKACK`.
    Quickack(bool),
    /// `SO_KEEPALIVE`.
    Keepalive(bool),
    /// `TCP_KEEPIDLE`, 1 + this seconds.
    KeepaliveTime(u16),
    /// `TCP_KEEPINTVL`, 1 + this seconds.
    KeepaliveInterval(u16),
    /// `TCP_USER_TIMEOUT` in milliseconds (0 is refused).
    UserTimeout(Option<u16>),
    /// `SO_SNDBUF`.
    SendBuffer(u16),
    /// `SO_RCVBUF` (refused once a segment left).
    RecvBuffer(u16),
    /// `TCP_CONGESTION`: NewReno or CUBIC.
    Reno(bool),
}

/// How time passes.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Advance {
    /// This many milliseconds.
    Millis(u16),
    /// This many seconds.
    Secs(u16),
    /// To the next deadline of the endpoint or of any connection.
    Deadline,
    /// To the next deadline, 1 + this % 16 times, draining each time.
    Deadlines(u8),
}

/// A segment from a peer.
#[derive(Arbitrary, Debug, Clone)]
pub struct Seg {
    /// Its 4-tuple.
    pub flow: Flow,
    /// Its flags.
    pub kind: Kind,
    /// SEG.SEQ.
    pub seq: SeqSel,
    /// SEG.ACK.
    pub ack: AckSel,
    /// The window field.
    pub window: u16,
    /// Its options.
    pub opts: Opts,
    /// Its payload.
    pub payload: Payload,
    /// The peer's own SND.NXT moves past it (a well-behaved peer).
    pub advance: bool,
    /// Handed over with a device true size of (1 + this) × its payload +
    /// 256 (`handle_segment_sized`), or plainly.
    pub truesize: Option<u8>,
}

/// Which 4-tuple a segment uses.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Flow {
    /// A live connection's (index mod their number).
    Conn(u8),
    /// One the harness saw before: a connection, a cookie, a TIME_WAIT
    /// record, a flood SYN (index mod their number).
    Known(u8),
    /// A new one from the peer table.
    Fresh {
        /// The source address (index into the peer table).
        src: u8,
        /// The source port (index into a small table).
        sport: u8,
        /// The destination (index: ours, not ours, broadcast or multicast).
        dst: u8,
        /// The destination port (index: the listener ports, a closed one,
        /// the ephemeral range).
        dport: u8,
    },
}

/// The flags of a segment.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Kind {
    /// SYN.
    Syn,
    /// SYN|ACK.
    SynAck,
    /// ACK.
    Ack,
    /// PSH|ACK.
    Push,
    /// FIN|ACK.
    Fin,
    /// RST.
    Rst,
    /// RST|ACK.
    RstAck,
    /// Any flag bits.
    Raw(u8),
}

impl Kind {
    /// The flag bits.
    pub fn flags(self) -> TcpFlags {
        match self {
            Kind::Syn => TcpFlags::SYN,
            Kind::SynAck => TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0),
            Kind::Ack => TcpFlags::ACK,
            Kind::Push => TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0),
            Kind::Fin => TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0),
            Kind::Rst => TcpFlags::RST,
            Kind::RstAck => TcpFlags(TcpFlags::RST.0 | TcpFlags::ACK.0),
            Kind::Raw(b) => TcpFlags(b),
        }
    }
}

/// SEG.SEQ, relative to the receiving connection's RCV.NXT (or, with no
/// synchronized connection, the peer's own next sequence number).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum SeqSel {
    /// RCV.NXT + this.
    Next(i16),
    /// The right edge of the receive window + this.
    WindowEnd(i8),
    /// Inside the window, at this / 65,536 of it.
    InWindow(u16),
    /// Any number.
    Raw(u32),
}

/// SEG.ACK, relative to the receiving connection's send sequence space (or
/// what the endpoint last sent on the 4-tuple).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum AckSel {
    /// SND.MAX + this.
    SndMax(i16),
    /// SND.UNA + this.
    SndUna(i16),
    /// ISS + 1 + this.
    Iss(i16),
    /// Any number.
    Raw(u32),
}

/// The options of a segment.
#[derive(Arbitrary, Debug, Clone)]
pub struct Opts {
    /// MSS.
    pub mss: Option<u16>,
    /// Window scale.
    pub window_scale: Option<u8>,
    /// SACK-permitted.
    pub sack_permitted: bool,
    /// SACK blocks (those that do not fit beside the other options are
    /// left out).
    pub sack: [Option<SackSel>; 4],
    /// Timestamps.
    pub timestamps: Option<(TsVal, TsEcr)>,
}

/// One SACK block.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum SackSel {
    /// [SND.UNA + start, SND.UNA + start + len).
    Rel(u16, u16),
    /// Any edges.
    Raw(u32, u32),
}

/// The peer's TSval.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum TsVal {
    /// The peer's clock now (1 ms ticks).
    Clock,
    /// Its clock this many ticks ago.
    Behind(u16),
    /// Any value.
    Raw(u32),
}

/// The peer's TSecr.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum TsEcr {
    /// The last TSval we sent on the 4-tuple.
    Echo,
    /// Any value.
    Raw(u32),
}

/// The payload of a segment: the bytes are always the peer's stream at
/// their sequence numbers ([`peer_byte`](super::peer_byte)), so every copy of a byte agrees.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Payload {
    /// None.
    Empty,
    /// This % 1,600 bytes.
    Len(u16),
    /// As much as the receive window offers (at most 60,000 bytes).
    Window,
    /// This % 60,000 bytes.
    Big(u16),
}

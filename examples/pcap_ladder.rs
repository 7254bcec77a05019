//! The ladder of a connection from any capture (pcap or pcapng): both
//! sides' RFC 9293 states inferred from the segments alone, so captures of
//! any stacks, kernel ↔ kernel included, read as the `echo` demo prints.
//!
//! A capture is taken at one point of the path, so each segment is taken
//! as sent and received at its capture time: the sender's transitions
//! come first, then the receiver's.

use crate::ladder::{Ladder, Side};
use pcap_file::DataLink;
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Duration;
use utcp_proto::wire;
use utcp_proto::{SeqNum, State};

/// One captured IP packet with its capture time.
pub struct Captured {
    /// Since the epoch, as the capture recorded it.
    pub time: Duration,
    /// The IP packet (link header removed).
    pub ip: Vec<u8>,
}

/// Reads every IP packet of a pcap or pcapng capture (Ethernet, raw IP,
/// Linux cooked v1 / v2 and BSD loopback link types; other frames and
/// other link types are skipped).
///
/// # Errors
/// `InvalidData` for a file that is neither pcap nor pcapng.
pub fn read_capture(mut r: impl Read) -> io::Result<Vec<Captured>> {
    let mut all = Vec::new();
    r.read_to_end(&mut all)?;
    let bad = |e: pcap_file::PcapError| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
    let mut out = Vec::new();
    if all.get(..4) == Some(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        use pcap_file::pcapng::{Block, PcapNgReader};
        let mut rd = PcapNgReader::new(&all[..]).map_err(bad)?;
        let mut links = Vec::new();
        while let Some(b) = rd.next_block() {
            match b.map_err(bad)? {
                Block::InterfaceDescription(i) => links.push(i.linktype),
                Block::EnhancedPacket(p) => {
                    let link = links.get(p.interface_id as usize).copied();
                    if let Some(ip) = link.and_then(|l| ip_of(l, &p.data)) {
                        out.push(Captured {
                            time: p.timestamp,
                            ip: ip.to_vec(),
                        });
                    }
                }
                _ => {}
            }
        }
    } else {
        use pcap_file::pcap::PcapReader;
        let mut rd = PcapReader::new(&all[..]).map_err(bad)?;
        let link = rd.header().datalink;
        while let Some(p) = rd.next_packet() {
            let p = p.map_err(bad)?;
            if let Some(ip) = ip_of(link, &p.data) {
                out.push(Captured {
                    time: p.timestamp,
                    ip: ip.to_vec(),
                });
            }
        }
    }
    Ok(out)
}

/// The IP packet in a frame of `link`, if it carries one.
fn ip_of(link: DataLink, f: &[u8]) -> Option<&[u8]> {
    let is_ip = |proto: u16| proto == 0x0800 || proto == 0x86dd;
    let be16 = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    match link {
        DataLink::ETHERNET => {
            let mut off = 12;
            let mut proto = be16(f.get(off..off + 2)?);
            while proto == 0x8100 || proto == 0x88a8 {
                off += 4;
                proto = be16(f.get(off..off + 2)?);
            }
            is_ip(proto).then(|| f.get(off + 2..)).flatten()
        }
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => Some(f),
        DataLink::LINUX_SLL => is_ip(be16(f.get(14..16)?)).then(|| f.get(16..)).flatten(),
        DataLink::LINUX_SLL2 => is_ip(be16(f.get(0..2)?)).then(|| f.get(20..)).flatten(),
        DataLink::NULL | DataLink::LOOP => f.get(4..),
        _ => None,
    }
}

/// A TCP segment of a capture, parsed.
struct Seg {
    time: Duration,
    from: SocketAddr,
    to: SocketAddr,
    repr: wire::TcpRepr,
    len: u32,
    ip: Vec<u8>,
}

/// The connections of a capture in order of their first segment (as
/// tshark numbers `tcp.stream`): each as (client, server, its segments).
fn streams(packets: Vec<Captured>) -> Vec<(SocketAddr, SocketAddr, Vec<Seg>)> {
    let mut order: Vec<(SocketAddr, SocketAddr, Vec<Seg>)> = Vec::new();
    let mut index: HashMap<(SocketAddr, SocketAddr), usize> = HashMap::new();
    for p in packets {
        // Checksums not verified: a capture where the packets were sent
        // holds the partial sums the NIC was to complete.
        let Ok(parsed) = wire::parse_ip_tcp(&p.ip, false) else {
            continue;
        };
        let from = SocketAddr::new(parsed.src, parsed.tcp.src_port);
        let to = SocketAddr::new(parsed.dst, parsed.tcp.dst_port);
        let key = if from <= to { (from, to) } else { (to, from) };
        let i = *index.entry(key).or_insert_with(|| {
            // The client: the sender of a first SYN without ACK, else the
            // sender of the first segment.
            let f = parsed.tcp.flags;
            let (c, s) = if f.syn() && f.ack() {
                (to, from)
            } else {
                (from, to)
            };
            order.push((c, s, Vec::new()));
            order.len() - 1
        });
        let len = parsed.payload.len() as u32;
        order[i].2.push(Seg {
            time: p.time,
            from,
            to,
            repr: parsed.tcp,
            len,
            ip: p.ip,
        });
    }
    order
}

/// One side's state as the segments show it.
struct Peer {
    state: State,
    /// Our SYN's sequence number, once sent.
    iss: Option<SeqNum>,
    /// The sequence number just past our FIN, once sent.
    fin_end: Option<SeqNum>,
}

impl Peer {
    fn new(state: State) -> Peer {
        Peer {
            state,
            iss: None,
            fin_end: None,
        }
    }
}

/// Moves `p` to `to`, printing the transition.
fn go(ladder: &Ladder, t: f64, side: Side, p: &mut Peer, to: State) {
    if p.state != to {
        ladder.state_at(t, side, &p.state.to_string(), &to.to_string());
        p.state = to;
    }
}

/// The sender's side of a segment (RFC 9293 §3.10: what sending it means).
fn sent(ladder: &Ladder, t: f64, side: Side, p: &mut Peer, s: &Seg) {
    let f = s.repr.flags;
    if f.rst() {
        go(ladder, t, side, p, State::Closed);
        return;
    }
    if f.syn() {
        p.iss = Some(s.repr.seq);
        if !f.ack() && p.state == State::Closed {
            go(ladder, t, side, p, State::SynSent);
        } else if f.ack() && p.state == State::SynSent {
            // Simultaneous open (§3.10.7.3).
            go(ladder, t, side, p, State::SynReceived);
        }
    }
    if f.fin() {
        p.fin_end = Some(s.repr.seq + s.len + u32::from(f.syn()) + 1);
        match p.state {
            State::Established | State::SynReceived => go(ladder, t, side, p, State::FinWait1),
            State::CloseWait => go(ladder, t, side, p, State::LastAck),
            _ => {}
        }
    }
}

/// The receiver's side (§3.10.7.4's steps in order: RST, SYN, ACK, FIN).
fn received(ladder: &Ladder, t: f64, side: Side, p: &mut Peer, s: &Seg) {
    let f = s.repr.flags;
    if f.rst() {
        if !matches!(p.state, State::Listen | State::Closed) {
            go(ladder, t, side, p, State::Closed);
        }
        return;
    }
    if f.syn() && !f.ack() && p.state == State::Listen {
        go(ladder, t, side, p, State::SynReceived);
        return;
    }
    if f.ack() {
        let acks = |n: Option<SeqNum>| n.is_some_and(|n| s.repr.ack.after_eq(n));
        match p.state {
            State::SynSent if f.syn() && acks(p.iss.map(|i| i + 1)) => {
                go(ladder, t, side, p, State::Established)
            }
            State::SynReceived if acks(p.iss.map(|i| i + 1)) => {
                go(ladder, t, side, p, State::Established)
            }
            State::FinWait1 if acks(p.fin_end) => go(ladder, t, side, p, State::FinWait2),
            State::Closing if acks(p.fin_end) => go(ladder, t, side, p, State::TimeWait),
            State::LastAck if acks(p.fin_end) => go(ladder, t, side, p, State::Closed),
            _ => {}
        }
    }
    if f.fin() {
        match p.state {
            State::Established | State::SynReceived => go(ladder, t, side, p, State::CloseWait),
            State::FinWait1 => go(ladder, t, side, p, State::Closing),
            State::FinWait2 => go(ladder, t, side, p, State::TimeWait),
            _ => {}
        }
    }
}

/// Prints the ladder of stream `n` of `packets` (see [`read_capture`]);
/// returns how many streams the capture holds.
///
/// # Errors
/// `InvalidInput` when the capture has no stream `n`.
pub fn print(packets: Vec<Captured>, n: usize, relative: bool) -> io::Result<usize> {
    let mut all = streams(packets);
    let count = all.len();
    if n >= count {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the capture holds {count} TCP stream(s); there is no stream {n}"),
        ));
    }
    let (client, server, segs) = all.swap_remove(n);
    let ladder = Ladder::new(client.ip(), server.ip());
    ladder.set_titles(client.to_string(), server.to_string());
    ladder.set_relative(relative);
    ladder.header();
    let start = segs.first().map(|s| s.time).unwrap_or_default();
    // The server's first state: LISTEN if its first segment answers a SYN.
    let first_syn = segs
        .first()
        .is_some_and(|s| s.repr.flags.syn() && !s.repr.flags.ack());
    let mut c = Peer::new(if first_syn {
        State::Closed
    } else {
        State::Established
    });
    let mut s = Peer::new(if first_syn {
        State::Listen
    } else {
        State::Established
    });
    if !first_syn {
        ladder.note_at(0.0, "the capture starts after the handshake");
    }
    for seg in &segs {
        let t = seg.time.saturating_sub(start).as_secs_f64() * 1000.0;
        let (side, other) = if seg.from == client && seg.to == server {
            (Side::Client, Side::Server)
        } else {
            (Side::Server, Side::Client)
        };
        let (me, peer) = match side {
            Side::Client => (&mut c, &mut s),
            Side::Server => (&mut s, &mut c),
        };
        sent(&ladder, t, side, me, seg);
        ladder.segment_at(t, side, &seg.ip, false);
        received(&ladder, t, other, peer, seg);
    }
    Ok(count)
}

//! # utcp-wire-fuzz: the checks behind utcp's wire fuzz targets
//!
//! Each function takes the bytes a fuzzer (or a corpus file) supplies and
//! panics only when `utcp-proto` breaks one of its promises. For the codec:
//! parsing any bytes never panics and never reports a header or payload
//! outside the buffer, and whatever parses re-encodes to something that
//! parses back to the same header (`parse(emit(repr)) == repr`). For the
//! state machine: two connections over a lossy link deliver every byte
//! exactly once and end ([`pair`]), and an endpoint attacked by arbitrary
//! peers keeps its segments, sequence variables and memory in order
//! ([`endpoint`](mod@endpoint)). The cargo-fuzz targets in
//! `fuzz/` are one-line calls into this crate, and this crate's own test
//! replays `fuzz/corpus/<target>/` on stable Rust, so `cargo test` keeps every
//! input the fuzzer found interesting. No nightly and no libFuzzer here.

#![deny(missing_docs)]

pub mod endpoint;
mod pair;

pub use endpoint::{endpoint, endpoint_run};
pub use pair::{pair, pair_run};

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use utcp_proto::SeqNum;
use utcp_proto::wire::{
    Ipv4Repr, Ipv6Repr, ParsedSegment, SackBlocks, TcpFlags, TcpOptions, TcpPacket, TcpRepr,
    emit_ip_tcp, ip::ip_tcp_header_len, ipv4::Ipv4Packet, ipv6::Ipv6Packet, parse_ip_tcp,
};

/// The check a fuzz target runs on one input; it panics on a broken promise.
pub type Check = fn(&[u8]);

/// Every fuzz target by name (the directory under `fuzz/corpus/`) with the
/// check it runs on one input.
pub const TARGETS: &[(&str, Check)] = &[
    ("ipv4", ipv4),
    ("ipv6", ipv6),
    ("tcp", tcp),
    ("roundtrip", roundtrip),
    ("pair", pair),
    ("endpoint", endpoint),
];

/// The largest IP packet the 16-bit length fields can describe.
const MAX_IP_LEN: usize = 65535;

/// Arbitrary bytes as an IPv4 packet: the view's accessors, `Ipv4Repr::parse`
/// (and its re-encoding), then the whole IP + TCP parse of [`ip_tcp`].
pub fn ipv4(data: &[u8]) {
    if let Ok(p) = Ipv4Packet::new_checked(data) {
        assert_eq!(p.version(), 4);
        assert!(p.header_len() >= Ipv4Repr::HEADER_LEN);
        assert_eq!(
            p.payload().len(),
            usize::from(p.total_len()) - p.header_len(),
            "IPv4 payload is total length minus header length"
        );
        let _ = (p.dscp_ecn(), p.ident(), p.dont_frag(), p.more_frags());
        let _ = (p.frag_offset(), p.ttl(), p.protocol(), p.checksum());
        let _ = (p.src_addr(), p.dst_addr(), p.verify_checksum());
    }
    if let Ok((repr, header_len)) = Ipv4Repr::parse(data) {
        assert!(
            (Ipv4Repr::HEADER_LEN..=60).contains(&header_len),
            "IPv4 header length {header_len}"
        );
        let end = header_len + repr.payload_len;
        assert!(end <= data.len(), "IPv4 payload runs past the buffer");
        let payload = &data[header_len..end];
        let mut buf = vec![0u8; Ipv4Repr::HEADER_LEN + payload.len()];
        repr.emit(&mut buf);
        buf[Ipv4Repr::HEADER_LEN..].copy_from_slice(payload);
        assert_eq!(
            Ipv4Repr::parse(&buf),
            Ok((repr, Ipv4Repr::HEADER_LEN)),
            "IPv4 re-encoding parses back"
        );
    }
    ip_tcp(data);
}

/// Arbitrary bytes as an IPv6 packet: the view's accessors, `Ipv6Repr::parse`
/// (and its re-encoding), then the whole IP + TCP parse of [`ip_tcp`].
pub fn ipv6(data: &[u8]) {
    if let Ok(p) = Ipv6Packet::new_checked(data) {
        assert_eq!(p.version(), 6);
        assert_eq!(p.payload().len(), usize::from(p.payload_len()));
        let _ = (p.traffic_class(), p.flow_label(), p.next_header());
        let _ = (p.hop_limit(), p.src_addr(), p.dst_addr());
    }
    if let Ok((repr, header_len)) = Ipv6Repr::parse(data) {
        assert_eq!(header_len, Ipv6Repr::HEADER_LEN);
        let end = header_len + repr.payload_len;
        assert!(end <= data.len(), "IPv6 payload runs past the buffer");
        let payload = &data[header_len..end];
        let mut buf = vec![0u8; Ipv6Repr::HEADER_LEN + payload.len()];
        repr.emit(&mut buf);
        buf[Ipv6Repr::HEADER_LEN..].copy_from_slice(payload);
        assert_eq!(
            Ipv6Repr::parse(&buf),
            Ok((repr, Ipv6Repr::HEADER_LEN)),
            "IPv6 re-encoding parses back"
        );
    }
    ip_tcp(data);
}

/// Arbitrary bytes through `parse_ip_tcp`, the device task's one entry point,
/// with and without checksum verification. What parses lies inside the
/// buffer, parses the same without verification, and re-encodes (in utcp's
/// canonical option layout) to a packet that parses back to the same segment.
pub fn ip_tcp(data: &[u8]) {
    let verified = parse_ip_tcp(data, true);
    let unverified = parse_ip_tcp(data, false);
    if let Ok(seg) = &verified {
        assert_eq!(
            unverified.as_ref(),
            Ok(seg),
            "a verified parse is also an unverified one"
        );
    }
    let Ok(seg) = unverified else {
        return;
    };
    assert!(
        seg.payload.start <= seg.payload.end && seg.payload.end <= data.len(),
        "payload {:?} outside a {}-byte packet",
        seg.payload,
        data.len()
    );
    let payload = &data[seg.payload.clone()];
    let tcp = canonical(seg.tcp);
    let header_len = ip_tcp_header_len(&seg.src, &tcp);
    if header_len + payload.len() > MAX_IP_LEN {
        // utcp's own layout can be a few option bytes longer than the peer's;
        // a packet at the 64 KiB limit then has no canonical re-encoding.
        return;
    }
    let mut buf = BytesMut::new();
    emit_ip_tcp(&mut buf, seg.src, seg.dst, 64, &tcp, payload);
    assert_eq!(buf.len(), header_len);
    buf.extend_from_slice(payload);
    assert_eq!(
        parse_ip_tcp(&buf, true),
        Ok(ParsedSegment {
            src: seg.src,
            dst: seg.dst,
            tcp,
            payload: header_len..header_len + payload.len(),
        }),
        "IP + TCP re-encoding parses back"
    );
}

/// Arbitrary bytes as a TCP segment (the IP payload) between fixed IPv4 and
/// IPv6 addresses: the view's accessors, `TcpRepr::parse` with and without
/// checksum verification, the option list alone, and the re-encoding of
/// whatever parses.
pub fn tcp(data: &[u8]) {
    let v4 = (
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    );
    let v6 = (
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
    );
    if let Ok(p) = TcpPacket::new_checked(data) {
        assert!((20..=60).contains(&p.header_len()));
        assert_eq!(p.options().len(), p.header_len() - 20);
        assert_eq!(p.payload().len(), data.len() - p.header_len());
        let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number());
        let _ = (p.flags(), p.window_len(), p.checksum(), p.urgent());
        let _ = (p.verify_checksum(v4.0, v4.1), p.verify_checksum(v6.0, v6.1));
    }
    options(data);
    for (src, dst) in [v4, v6] {
        let verified = TcpRepr::parse(data, src, dst, true);
        let unverified = TcpRepr::parse(data, src, dst, false);
        if let Ok(r) = &verified {
            assert_eq!(unverified.as_ref(), Ok(r));
        }
        let Ok((repr, header_len)) = unverified else {
            continue;
        };
        assert!((20..=60).contains(&header_len) && header_len <= data.len());
        let payload = &data[header_len..];
        let canon = canonical(repr);
        let mut buf = vec![0u8; canon.header_len()];
        canon.emit(&mut buf, src, dst, payload);
        buf.extend_from_slice(payload);
        assert_eq!(
            TcpRepr::parse(&buf, src, dst, true),
            Ok((canon, canon.header_len())),
            "TCP re-encoding parses back"
        );
    }
}

/// Arbitrary bytes as a TCP option list: parsing never panics, and a list that
/// fits a header re-encodes (canonically) to bytes that parse back the same.
fn options(data: &[u8]) {
    let Ok(parsed) = TcpOptions::parse(data) else {
        return;
    };
    let canon = canonical_options(parsed);
    let mut buf = [0u8; 40];
    let n = canon.emit(&mut buf);
    assert_eq!(n, canon.encoded_len());
    assert!(n <= 40 && n.is_multiple_of(4), "options take {n} bytes");
    assert_eq!(TcpOptions::parse(&buf[..n]), Ok(canon));
}

/// `repr` as utcp emits it: SACK blocks that do not fit beside the other
/// options are left out (a peer's tighter layout may have held them).
fn canonical(repr: TcpRepr) -> TcpRepr {
    TcpRepr {
        options: canonical_options(repr.options),
        ..repr
    }
}

pub(crate) fn canonical_options(options: TcpOptions) -> TcpOptions {
    let mut sack = SackBlocks::EMPTY;
    for &(l, r) in &options.sack.as_slice()[..options.sack_blocks_emitted()] {
        sack.push(l, r);
    }
    TcpOptions { sack, ..options }
}

/// A segment as the fuzzer describes it: every field of the IP and TCP
/// headers, the options and the payload.
#[derive(Debug, Arbitrary)]
struct SegmentInput {
    v6: bool,
    src4: [u8; 4],
    dst4: [u8; 4],
    src6: [u8; 16],
    dst6: [u8; 16],
    hop_limit: u8,
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    urgent: u16,
    mss: Option<u16>,
    window_scale: Option<u8>,
    sack_permitted: bool,
    sack: [Option<(u32, u32)>; 4],
    timestamps: Option<(u32, u32)>,
    payload: Vec<u8>,
}

/// Whether `addr` may be a segment's source (what `parse_ip_tcp` accepts).
fn can_send(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => !(a.is_multicast() || a.is_broadcast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    }
}

impl SegmentInput {
    /// A valid segment: a source that can send (else a documentation
    /// address), SACK blocks cut to what fits beside the other options, and a
    /// payload that fits the IP length field.
    fn build(self) -> (IpAddr, IpAddr, u8, TcpRepr, Vec<u8>) {
        let (mut src, dst) = if self.v6 {
            (
                IpAddr::V6(Ipv6Addr::from(self.src6)),
                IpAddr::V6(Ipv6Addr::from(self.dst6)),
            )
        } else {
            (
                IpAddr::V4(Ipv4Addr::from(self.src4)),
                IpAddr::V4(Ipv4Addr::from(self.dst4)),
            )
        };
        if !can_send(src) {
            src = if self.v6 {
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
            } else {
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))
            };
        }
        let mut sack = SackBlocks::EMPTY;
        for (l, r) in self.sack.into_iter().flatten() {
            sack.push(SeqNum::new(l), SeqNum::new(r));
        }
        let options = canonical_options(TcpOptions {
            // MSS 0 is no valid option: a segment's options decode it as
            // absent (as Linux's tcp_parse_options).
            mss: self.mss.filter(|&m| m != 0),
            window_scale: self.window_scale,
            sack_permitted: self.sack_permitted,
            sack,
            timestamps: self.timestamps,
        });
        let tcp = TcpRepr {
            src_port: self.src_port,
            dst_port: self.dst_port,
            seq: SeqNum::new(self.seq),
            ack: SeqNum::new(self.ack),
            flags: TcpFlags(self.flags),
            window: self.window,
            urgent: self.urgent,
            options,
        };
        let mut payload = self.payload;
        payload.truncate(MAX_IP_LEN - ip_tcp_header_len(&src, &tcp));
        (src, dst, self.hop_limit, tcp, payload)
    }
}

/// Structure-aware round trip: the bytes describe a valid segment (decoded
/// with `arbitrary`, exactly as the fuzz target decodes them), which is
/// emitted and parsed back at every layer: the option list, the TCP header,
/// the IP header and the whole packet through `parse_ip_tcp` with checksums
/// verified. Each must give back exactly what was emitted.
pub fn roundtrip(data: &[u8]) {
    let Ok(input) = SegmentInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let (src, dst, hop_limit, tcp, payload) = input.build();

    let mut opts = [0u8; 40];
    let n = tcp.options.emit(&mut opts);
    assert_eq!(TcpOptions::parse(&opts[..n]), Ok(tcp.options));

    let mut seg = vec![0u8; tcp.header_len()];
    tcp.emit(&mut seg, src, dst, &payload);
    seg.extend_from_slice(&payload);
    assert_eq!(
        TcpRepr::parse(&seg, src, dst, true),
        Ok((tcp, tcp.header_len()))
    );

    let mut packet = BytesMut::new();
    emit_ip_tcp(&mut packet, src, dst, hop_limit, &tcp, &payload);
    let header_len = ip_tcp_header_len(&src, &tcp);
    assert_eq!(packet.len(), header_len);
    packet.extend_from_slice(&payload);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => assert_eq!(
            Ipv4Repr::parse(&packet),
            Ok((
                Ipv4Repr {
                    src: s,
                    dst: d,
                    protocol: 6,
                    payload_len: packet.len() - Ipv4Repr::HEADER_LEN,
                    ttl: hop_limit,
                    dscp_ecn: 0,
                },
                Ipv4Repr::HEADER_LEN
            ))
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => assert_eq!(
            Ipv6Repr::parse(&packet),
            Ok((
                Ipv6Repr {
                    src: s,
                    dst: d,
                    next_header: 6,
                    payload_len: packet.len() - Ipv6Repr::HEADER_LEN,
                    hop_limit,
                    traffic_class: 0,
                },
                Ipv6Repr::HEADER_LEN
            ))
        ),
        _ => unreachable!("build gives one address family"),
    }
    let parsed = parse_ip_tcp(&packet, true).expect("an emitted segment parses");
    assert_eq!(
        parsed,
        ParsedSegment {
            src,
            dst,
            tcp,
            payload: header_len..header_len + payload.len(),
        }
    );
    assert_eq!(&packet[parsed.payload], &payload[..]);
}

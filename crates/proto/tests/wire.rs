//! Integration tests of the segment codec (`utcp_proto::wire`): golden bytes from
//! a real Linux capture, round trips, truncations, bit flips, and property tests
//! that no input makes the parsers panic.

use bytes::BytesMut;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use proptest::prelude::*;
use utcp_proto::SeqNum;
use utcp_proto::wire::checksum::Checksum;
use utcp_proto::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use utcp_proto::wire::ipv6::{Ipv6Packet, Ipv6Repr};
use utcp_proto::wire::{
    ParsedSegment, SackBlocks, TcpFlags, TcpOptions, TcpPacket, TcpRepr, WireError, emit_ip_tcp,
    ip::ip_tcp_header_len, parse_ip_tcp,
};

// ---------------------------------------------------------------------------
// Golden packets.
//
// Captured on 2026-11-25 on Linux 6.18 with tcpdump 4.99.3: two network
// namespaces joined by a veth pair (10.99.0.1/24 and fd00:99::1/64 on one side,
// 10.99.0.2/24 and fd00:99::2/64 on the other), transmit checksum offload
// turned off with `ethtool -K <veth> tx off` so that the captured checksums are
// the real ones (on loopback, or with offload on, the kernel leaves a partial
// checksum). Traffic: `curl http://10.99.0.2:1/` and `curl http://[fd00:99::2]:1/`
// to a closed port, and the same to `python3 -m http.server 8000`. tcpdump ran
// on the server side (`tcpdump -i <veth> -w x.pcap`); the 14-byte Ethernet
// headers are stripped. tcpdump -vv reported every TCP checksum "correct".
// ---------------------------------------------------------------------------

/// IPv4 SYN 10.99.0.1:50120 > 10.99.0.2:1 (curl to a closed port): mss 1460, sackOK, TS, nop, wscale 10.
const V4_SYN: [u8; 60] = [
    0x45, 0x00, 0x00, 0x3c, 0x49, 0x90, 0x40, 0x00, 0x40, 0x06, 0xdc, 0x63, 0x0a, 0x63, 0x00, 0x01,
    0x0a, 0x63, 0x00, 0x02, 0xc3, 0xc8, 0x00, 0x01, 0xbe, 0x79, 0xa3, 0x88, 0x00, 0x00, 0x00, 0x00,
    0xa0, 0x02, 0xfa, 0xf0, 0xcb, 0xcc, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
    0x4b, 0x51, 0xfb, 0x59, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
];

/// IPv4 RST|ACK 10.99.0.2:1 > 10.99.0.1:50120, the kernel refusing that SYN (IP ident 0).
const V4_RST_ACK: [u8; 40] = [
    0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x26, 0x08, 0x0a, 0x63, 0x00, 0x02,
    0x0a, 0x63, 0x00, 0x01, 0x00, 0x01, 0xc3, 0xc8, 0x00, 0x00, 0x00, 0x00, 0xbe, 0x79, 0xa3, 0x89,
    0x50, 0x14, 0x00, 0x00, 0x75, 0x3b, 0x00, 0x00,
];

/// IPv4 SYN|ACK 10.99.0.2:8000 > 10.99.0.1:58986 from a listening Python http.server (IP ident 0).
const V4_SYN_ACK: [u8; 60] = [
    0x45, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x25, 0xf4, 0x0a, 0x63, 0x00, 0x02,
    0x0a, 0x63, 0x00, 0x01, 0x1f, 0x40, 0xe6, 0x6a, 0x08, 0x9d, 0x01, 0xff, 0x46, 0x72, 0x87, 0xab,
    0xa0, 0x12, 0xfe, 0x88, 0x9a, 0xba, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
    0x36, 0x61, 0xed, 0x9f, 0x4f, 0x60, 0x48, 0x1b, 0x01, 0x03, 0x03, 0x0a,
];

/// IPv4 PSH|ACK 10.99.0.1:58986 > 10.99.0.2:8000 carrying curl's 78-byte HTTP request: nop, nop, TS.
const V4_GET: [u8; 130] = [
    0x45, 0x00, 0x00, 0x82, 0x91, 0x06, 0x40, 0x00, 0x40, 0x06, 0x94, 0xa7, 0x0a, 0x63, 0x00, 0x01,
    0x0a, 0x63, 0x00, 0x02, 0xe6, 0x6a, 0x1f, 0x40, 0x46, 0x72, 0x87, 0xab, 0x08, 0x9d, 0x02, 0x00,
    0x80, 0x18, 0x00, 0x3f, 0x4a, 0x11, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x4f, 0x60, 0x48, 0x1d,
    0x36, 0x61, 0xed, 0x9f, 0x47, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31,
    0x2e, 0x31, 0x0d, 0x0a, 0x48, 0x6f, 0x73, 0x74, 0x3a, 0x20, 0x31, 0x30, 0x2e, 0x39, 0x39, 0x2e,
    0x30, 0x2e, 0x32, 0x3a, 0x38, 0x30, 0x30, 0x30, 0x0d, 0x0a, 0x55, 0x73, 0x65, 0x72, 0x2d, 0x41,
    0x67, 0x65, 0x6e, 0x74, 0x3a, 0x20, 0x63, 0x75, 0x72, 0x6c, 0x2f, 0x37, 0x2e, 0x38, 0x38, 0x2e,
    0x31, 0x0d, 0x0a, 0x41, 0x63, 0x63, 0x65, 0x70, 0x74, 0x3a, 0x20, 0x2a, 0x2f, 0x2a, 0x0d, 0x0a,
    0x0d, 0x0a,
];

/// IPv4 FIN|ACK 10.99.0.2:8000 > 10.99.0.1:58986, the server closing first: nop, nop, TS.
const V4_FIN_ACK: [u8; 52] = [
    0x45, 0x00, 0x00, 0x34, 0xfa, 0x5e, 0x40, 0x00, 0x40, 0x06, 0x2b, 0x9d, 0x0a, 0x63, 0x00, 0x02,
    0x0a, 0x63, 0x00, 0x01, 0x1f, 0x40, 0xe6, 0x6a, 0x08, 0x9d, 0x04, 0x83, 0x46, 0x72, 0x87, 0xf9,
    0x80, 0x11, 0x00, 0x40, 0xc4, 0xfa, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x36, 0x61, 0xed, 0xa2,
    0x4f, 0x60, 0x48, 0x1e,
];

/// IPv6 SYN [fd00:99::1]:54714 > [fd00:99::2]:1: mss 1440, sackOK, TS, nop, wscale 10.
const V6_SYN: [u8; 80] = [
    0x60, 0x09, 0x91, 0xc6, 0x00, 0x28, 0x06, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xd5, 0xba, 0x00, 0x01, 0xcc, 0x41, 0xda, 0x88,
    0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfd, 0x20, 0x32, 0x6a, 0x00, 0x00, 0x02, 0x04, 0x05, 0xa0,
    0x04, 0x02, 0x08, 0x0a, 0x84, 0x5c, 0x1c, 0x6d, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
];

/// IPv6 RST|ACK [fd00:99::2]:1 > [fd00:99::1]:54714.
const V6_RST_ACK: [u8; 60] = [
    0x60, 0x09, 0x19, 0x28, 0x00, 0x14, 0x06, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0xd5, 0xba, 0x00, 0x00, 0x00, 0x00,
    0xcc, 0x41, 0xda, 0x89, 0x50, 0x14, 0x00, 0x00, 0x38, 0x13, 0x00, 0x00,
];

/// IPv6 PSH|ACK [fd00:99::1]:44570 > [fd00:99::2]:8000 carrying an 81-byte HTTP request.
const V6_GET: [u8; 153] = [
    0x60, 0x04, 0xa3, 0x62, 0x00, 0x71, 0x06, 0x40, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xae, 0x1a, 0x1f, 0x40, 0x15, 0xae, 0xc9, 0x87,
    0x3d, 0xd1, 0xef, 0x15, 0x80, 0x18, 0x00, 0x40, 0x8d, 0xa9, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a,
    0xd9, 0x28, 0x54, 0xc5, 0xc6, 0x63, 0xb8, 0x83, 0x47, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54,
    0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x0d, 0x0a, 0x48, 0x6f, 0x73, 0x74, 0x3a, 0x20, 0x5b, 0x66,
    0x64, 0x30, 0x30, 0x3a, 0x39, 0x39, 0x3a, 0x3a, 0x32, 0x5d, 0x3a, 0x38, 0x30, 0x30, 0x30, 0x0d,
    0x0a, 0x55, 0x73, 0x65, 0x72, 0x2d, 0x41, 0x67, 0x65, 0x6e, 0x74, 0x3a, 0x20, 0x63, 0x75, 0x72,
    0x6c, 0x2f, 0x37, 0x2e, 0x38, 0x38, 0x2e, 0x31, 0x0d, 0x0a, 0x41, 0x63, 0x63, 0x65, 0x70, 0x74,
    0x3a, 0x20, 0x2a, 0x2f, 0x2a, 0x0d, 0x0a, 0x0d, 0x0a,
];

/// IPv6 MLDv2 report from :: to ff02::16: next header 0 (hop-by-hop options), not TCP.
const V6_MLD: [u8; 96] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x38, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x16, 0x3a, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00,
    0x8f, 0x00, 0x24, 0xec, 0x00, 0x00, 0x00, 0x02, 0x04, 0x00, 0x00, 0x00, 0xff, 0x02, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x91, 0x47, 0xf2, 0x04, 0x00, 0x00, 0x00,
    0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00, 0x01,
];

/// The TCP packets among the golden ones.
const GOLDEN_TCP: [&[u8]; 8] = [
    &V4_SYN,
    &V4_RST_ACK,
    &V4_SYN_ACK,
    &V4_GET,
    &V4_FIN_ACK,
    &V6_SYN,
    &V6_RST_ACK,
    &V6_GET,
];

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

/// A TCP header with no options and no flags, to fill in with `..`.
fn base(src_port: u16, dst_port: u16, seq: u32, ack: u32) -> TcpRepr {
    TcpRepr {
        src_port,
        dst_port,
        seq: SeqNum::new(seq),
        ack: SeqNum::new(ack),
        flags: TcpFlags::NONE,
        window: 0,
        urgent: 0,
        options: TcpOptions::default(),
    }
}

/// Linux's SYN options: MSS, SACK permitted, timestamps, window scale.
fn syn_options(mss: u16, tsval: u32, tsecr: u32) -> TcpOptions {
    TcpOptions {
        mss: Some(mss),
        window_scale: Some(10),
        sack_permitted: true,
        sack: SackBlocks::EMPTY,
        timestamps: Some((tsval, tsecr)),
    }
}

fn ts(tsval: u32, tsecr: u32) -> TcpOptions {
    TcpOptions {
        timestamps: Some((tsval, tsecr)),
        ..Default::default()
    }
}

#[track_caller]
fn parse_ok(packet: &[u8]) -> ParsedSegment {
    match parse_ip_tcp(packet, true) {
        Ok(seg) => seg,
        Err(e) => panic!("{} byte packet did not parse: {e}", packet.len()),
    }
}

#[test]
fn golden_linux_syn_v4_fields() {
    let ip = Ipv4Packet::new_checked(&V4_SYN[..]).unwrap();
    assert_eq!(ip.version(), 4);
    assert_eq!(ip.header_len(), 20);
    assert_eq!(ip.total_len(), 60);
    assert_eq!(ip.ident(), 0x4990);
    assert!(ip.dont_frag() && !ip.more_frags() && ip.frag_offset() == 0);
    assert_eq!((ip.ttl(), ip.protocol(), ip.checksum()), (64, 6, 0xdc63));
    assert!(ip.verify_checksum());
    let (ip_repr, ip_len) = Ipv4Repr::parse(&V4_SYN).unwrap();
    assert_eq!(
        (ip_repr, ip_len),
        (
            Ipv4Repr {
                src: Ipv4Addr::new(10, 99, 0, 1),
                dst: Ipv4Addr::new(10, 99, 0, 2),
                protocol: 6,
                payload_len: 40,
                ttl: 64,
                dscp_ecn: 0,
            },
            20
        )
    );

    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((tcp.src_port(), tcp.dst_port()), (50120, 1));
    assert_eq!(tcp.seq_number(), SeqNum::new(3195642760));
    assert_eq!(tcp.ack_number(), SeqNum::new(0));
    assert_eq!((tcp.data_offset(), tcp.header_len()), (10, 40));
    assert_eq!(tcp.flags(), TcpFlags::SYN);
    assert_eq!(
        (tcp.window_len(), tcp.checksum(), tcp.urgent()),
        (64240, 0xcbcc, 0)
    );
    assert_eq!(
        tcp.options(),
        &[
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0x4b, 0x51, 0xfb, 0x59, 0, 0, 0, 0, 1, 3, 3, 10
        ]
    );
    assert!(tcp.payload().is_empty());
    assert!(tcp.verify_checksum(v4([10, 99, 0, 1]), v4([10, 99, 0, 2])));

    let seg = parse_ok(&V4_SYN);
    let expected = TcpRepr {
        flags: TcpFlags::SYN,
        window: 64240,
        options: syn_options(1460, 1263663961, 0),
        ..base(50120, 1, 3195642760, 0)
    };
    assert_eq!(
        seg,
        ParsedSegment {
            src: v4([10, 99, 0, 1]),
            dst: v4([10, 99, 0, 2]),
            tcp: expected,
            payload: 60..60
        }
    );
    assert_eq!(
        expected.to_string(),
        "SYN 50120 > 1 seq 3195642760 win 64240 [mss 1460,sackOK,TS val 1263663961 ecr 0,wscale 10]"
    );
}

#[test]
fn golden_linux_syn_v6_fields() {
    let ip = Ipv6Packet::new_checked(&V6_SYN[..]).unwrap();
    assert_eq!(
        (ip.version(), ip.traffic_class(), ip.flow_label()),
        (6, 0, 0x991c6)
    );
    assert_eq!(
        (ip.payload_len(), ip.next_header(), ip.hop_limit()),
        (40, 6, 64)
    );
    assert_eq!(ip.src_addr(), "fd00:99::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(ip.dst_addr(), "fd00:99::2".parse::<Ipv6Addr>().unwrap());
    let seg = parse_ok(&V6_SYN);
    assert_eq!(
        seg,
        ParsedSegment {
            src: v6("fd00:99::1"),
            dst: v6("fd00:99::2"),
            tcp: TcpRepr {
                flags: TcpFlags::SYN,
                window: 64800,
                options: syn_options(1440, 2220629101, 0),
                ..base(54714, 1, 3426867848, 0)
            },
            payload: 80..80
        }
    );
}

#[test]
fn golden_reprs_are_exact() {
    let (a4, b4) = (v4([10, 99, 0, 1]), v4([10, 99, 0, 2]));
    let (a6, b6) = (v6("fd00:99::1"), v6("fd00:99::2"));
    let rst_ack = TcpFlags::RST | TcpFlags::ACK;
    let psh_ack = TcpFlags::PSH | TcpFlags::ACK;
    type Case<'a> = (&'a [u8], IpAddr, IpAddr, TcpRepr, core::ops::Range<usize>);
    let cases: [Case; 6] = [
        (
            &V4_RST_ACK,
            b4,
            a4,
            TcpRepr {
                flags: rst_ack,
                ..base(1, 50120, 0, 3195642761)
            },
            40..40,
        ),
        (
            &V4_SYN_ACK,
            b4,
            a4,
            TcpRepr {
                flags: TcpFlags::SYN | TcpFlags::ACK,
                window: 65160,
                options: syn_options(1460, 912387487, 1331709979),
                ..base(8000, 58986, 144507391, 1181910955)
            },
            60..60,
        ),
        (
            &V4_GET,
            a4,
            b4,
            TcpRepr {
                flags: psh_ack,
                window: 63,
                options: ts(1331709981, 912387487),
                ..base(58986, 8000, 1181910955, 144507392)
            },
            52..130,
        ),
        (
            &V4_FIN_ACK,
            b4,
            a4,
            TcpRepr {
                flags: TcpFlags::FIN | TcpFlags::ACK,
                window: 64,
                options: ts(912387490, 1331709982),
                ..base(8000, 58986, 144508035, 1181911033)
            },
            52..52,
        ),
        (
            &V6_RST_ACK,
            b6,
            a6,
            TcpRepr {
                flags: rst_ack,
                ..base(1, 54714, 0, 3426867849)
            },
            60..60,
        ),
        (
            &V6_GET,
            a6,
            b6,
            TcpRepr {
                flags: psh_ack,
                window: 64,
                options: ts(3643299013, 3328424067),
                ..base(44570, 8000, 363776391, 1037168405)
            },
            72..153,
        ),
    ];
    for (packet, src, dst, tcp, payload) in cases {
        let seg = parse_ok(packet);
        assert_eq!(
            seg,
            ParsedSegment {
                src,
                dst,
                tcp,
                payload: payload.clone()
            }
        );
        assert_eq!(
            seg.tcp.segment_len(payload.len()),
            payload.len() as u32 + u32::from(tcp.flags.syn()) + u32::from(tcp.flags.fin())
        );
    }
    assert!(
        V4_GET[parse_ok(&V4_GET).payload]
            .starts_with(b"GET / HTTP/1.1\r\nHost: 10.99.0.2:8000\r\n")
    );
    assert!(V6_GET[parse_ok(&V6_GET).payload].ends_with(b"Accept: */*\r\n\r\n"));
}

/// Re-emits a parsed golden packet: the TCP header comes out byte for byte;
/// the IP header too, except the fields `Repr`s do not keep (IPv4 ident and
/// so its header checksum; IPv6 traffic class and flow label).
#[test]
fn golden_emit_reproduces_bytes() {
    for packet in GOLDEN_TCP {
        let seg = parse_ok(packet);
        let payload = &packet[seg.payload.clone()];
        let mut buf = BytesMut::with_capacity(128);
        emit_ip_tcp(&mut buf, seg.src, seg.dst, 64, &seg.tcp, payload);
        let header_len = seg.payload.start;
        assert_eq!(buf.len(), header_len);
        assert_eq!(ip_tcp_header_len(&seg.src, &seg.tcp), header_len);
        let ip_len = if seg.src.is_ipv4() { 20 } else { 40 };
        assert_eq!(
            &buf[ip_len..],
            &packet[ip_len..header_len],
            "TCP header of {}",
            seg.tcp
        );
        let mut expected_ip = packet[..ip_len].to_vec();
        if seg.src.is_ipv4() {
            expected_ip[4..6].copy_from_slice(&[0, 0]);
            expected_ip[10..12].copy_from_slice(&[0, 0]);
            let mut c = Checksum::new();
            c.add_bytes(&expected_ip);
            expected_ip[10..12].copy_from_slice(&c.finish().to_be_bytes());
        } else {
            expected_ip[..4].copy_from_slice(&[0x60, 0, 0, 0]);
        }
        assert_eq!(&buf[..ip_len], &expected_ip[..], "IP header of {}", seg.tcp);
    }
    // Linux sends RSTs and SYN-ACKs with ident 0, as we do: the whole packet matches.
    for packet in [&V4_RST_ACK[..], &V4_SYN_ACK[..]] {
        let seg = parse_ok(packet);
        let mut buf = BytesMut::new();
        emit_ip_tcp(&mut buf, seg.src, seg.dst, 64, &seg.tcp, &[]);
        assert_eq!(&buf[..], packet);
    }
}

#[test]
fn golden_tcp_repr_parse_and_emit_alone() {
    let segment = &V4_GET[20..];
    let (src, dst) = (v4([10, 99, 0, 1]), v4([10, 99, 0, 2]));
    let (tcp, header_len) = TcpRepr::parse(segment, src, dst, true).unwrap();
    assert_eq!(header_len, 32);
    assert_eq!(tcp.header_len(), 32);
    let mut header = [0u8; 32];
    tcp.emit(&mut header, src, dst, &segment[32..]);
    assert_eq!(&header[..], &segment[..32]);
    // The wrong addresses make the checksum fail; not verifying skips it.
    assert_eq!(
        TcpRepr::parse(segment, dst, v4([10, 99, 0, 3]), true),
        Err(WireError::BadChecksum)
    );
    assert_eq!(
        TcpRepr::parse(segment, dst, v4([10, 99, 0, 3]), false),
        Ok((tcp, 32))
    );
}

#[test]
fn golden_non_tcp_is_rejected() {
    assert_eq!(parse_ip_tcp(&V6_MLD, true), Err(WireError::NotTcp(0)));
    // The IPv4 SYN relabelled as UDP (header checksum fixed up).
    let mut udp = V4_SYN;
    udp[9] = 17;
    udp[10..12].copy_from_slice(&[0, 0]);
    let mut c = Checksum::new();
    c.add_bytes(&udp[..20]);
    udp[10..12].copy_from_slice(&c.finish().to_be_bytes());
    assert_eq!(parse_ip_tcp(&udp, true), Err(WireError::NotTcp(17)));
}

#[test]
fn link_layer_padding_is_ignored() {
    // A 40-byte RST padded to Ethernet's 46-byte minimum payload.
    let mut padded = [0u8; 46];
    padded[..40].copy_from_slice(&V4_RST_ACK);
    assert_eq!(parse_ok(&padded), parse_ok(&V4_RST_ACK));
    let mut padded = [0xffu8; 70];
    padded[..60].copy_from_slice(&V6_RST_ACK);
    assert_eq!(parse_ok(&padded), parse_ok(&V6_RST_ACK));
}

#[test]
fn every_truncation_is_an_error() {
    for packet in GOLDEN_TCP.iter().chain([&&V6_MLD[..]]) {
        for n in 0..packet.len() {
            assert!(
                parse_ip_tcp(&packet[..n], true).is_err(),
                "{n} of {} bytes",
                packet.len()
            );
            assert!(
                parse_ip_tcp(&packet[..n], false).is_err(),
                "{n} of {} bytes",
                packet.len()
            );
        }
    }
    for packet in GOLDEN_TCP {
        let seg = parse_ok(packet);
        let ip_len = if seg.src.is_ipv4() { 20 } else { 40 };
        let segment = &packet[ip_len..];
        let tcp_len = seg.payload.start - ip_len;
        for n in 0..segment.len() {
            let r = TcpRepr::parse(&segment[..n], seg.src, seg.dst, true);
            assert!(
                r.is_err(),
                "TCP segment cut to {n} of {} bytes: {r:?}",
                segment.len()
            );
            if n < tcp_len {
                let r = TcpRepr::parse(&segment[..n], seg.src, seg.dst, false);
                let expected = if n < 20 {
                    WireError::Truncated
                } else {
                    WireError::BadDataOffset
                };
                assert_eq!(r, Err(expected), "TCP header cut to {n} of {tcp_len} bytes");
            }
        }
    }
}

/// Every single-bit error is caught: by a checksum, or by the field it lands in
/// (version, length, protocol, address). The only bits no checksum covers are
/// the IPv6 traffic class, flow label and hop limit; those change nothing we
/// keep.
#[test]
fn every_bit_flip_is_detected() {
    for packet in GOLDEN_TCP {
        let good = parse_ok(packet);
        let mut copy = packet.to_vec();
        for byte in 0..packet.len() {
            for bit in 0..8 {
                copy[byte] ^= 1 << bit;
                let uncovered =
                    good.src.is_ipv6() && (byte == 7 || (byte < 4 && !(byte == 0 && bit >= 4)));
                let r = parse_ip_tcp(&copy, true);
                if uncovered {
                    assert_eq!(r, Ok(good.clone()), "byte {byte} bit {bit}");
                } else {
                    assert!(
                        r.is_err(),
                        "byte {byte} bit {bit} of {} went unnoticed: {r:?}",
                        good.tcp
                    );
                }
                copy[byte] ^= 1 << bit;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Property tests.
// ---------------------------------------------------------------------------

fn arb_options() -> impl Strategy<Value = TcpOptions> {
    (
        // MSS 0 is no valid option: it decodes as absent (as Linux).
        proptest::option::of(1..=u16::MAX),
        proptest::option::of(any::<u8>()),
        any::<bool>(),
        proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=4),
        proptest::option::of((any::<u32>(), any::<u32>())),
    )
        .prop_map(|(mss, window_scale, sack_permitted, blocks, timestamps)| {
            let mut sack = SackBlocks::EMPTY;
            for (left, right) in blocks {
                sack.push(SeqNum::new(left), SeqNum::new(right));
            }
            TcpOptions {
                mss,
                window_scale,
                sack_permitted,
                sack,
                timestamps,
            }
        })
}

fn arb_tcp() -> impl Strategy<Value = TcpRepr> {
    (any::<(u16, u16, u32, u32, u8, u16, u16)>(), arb_options()).prop_map(
        |((src_port, dst_port, seq, ack, flags, window, urgent), options)| TcpRepr {
            src_port,
            dst_port,
            seq: SeqNum::new(seq),
            ack: SeqNum::new(ack),
            flags: TcpFlags(flags),
            window,
            urgent,
            options,
        },
    )
}

/// A source and destination of one family; the source can send.
fn arb_addrs() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        any::<([u8; 4], [u8; 4])>().prop_map(|(s, d)| (v4(s), v4(d))),
        any::<([u8; 16], [u8; 16])>()
            .prop_map(|(s, d)| (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)))),
    ]
    .prop_filter("the source can send", |(src, _)| match src {
        IpAddr::V4(a) => !(a.is_multicast() || a.is_broadcast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    })
}

/// What parsing an emitted `r` gives back: `r` without the SACK blocks that
/// did not fit.
fn fitted(r: &TcpRepr) -> TcpRepr {
    let mut sack = SackBlocks::EMPTY;
    for &(left, right) in &r.options.sack.as_slice()[..r.options.sack_blocks_emitted()] {
        sack.push(left, right);
    }
    TcpRepr {
        options: TcpOptions { sack, ..r.options },
        ..*r
    }
}

/// A valid packet from `r` and `payload`, headers and payload in one buffer.
fn packet(src: IpAddr, dst: IpAddr, r: &TcpRepr, payload: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    emit_ip_tcp(&mut buf, src, dst, 64, r, payload);
    buf.extend_from_slice(payload);
    buf
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    #[test]
    fn ip_tcp_round_trip(
        (src, dst) in arb_addrs(),
        r in arb_tcp(),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        prefix in 0usize..8,
    ) {
        let header_len = ip_tcp_header_len(&src, &r);
        prop_assert!(r.header_len() <= 60 && r.header_len() % 4 == 0);
        let mut buf = BytesMut::from(&[0xa5u8; 8][..prefix]);
        emit_ip_tcp(&mut buf, src, dst, 64, &r, &payload);
        prop_assert_eq!(buf.len(), prefix + header_len);
        buf.extend_from_slice(&payload);
        let packet = buf.split_off(prefix).freeze();
        let seg = parse_ip_tcp(&packet, true).unwrap();
        prop_assert_eq!(seg.src, src);
        prop_assert_eq!(seg.dst, dst);
        prop_assert_eq!(seg.tcp, fitted(&r));
        prop_assert_eq!(seg.payload.clone(), header_len..header_len + payload.len());
        prop_assert_eq!(&packet.slice(seg.payload)[..], &payload[..]);
        // Parsing what was parsed and emitted again changes nothing.
        let again = self::packet(src, dst, &seg.tcp, &payload);
        prop_assert_eq!(&again[..], &packet[..]);
    }

    #[test]
    fn tcp_repr_round_trip((src, dst) in arb_addrs(), r in arb_tcp(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let n = r.header_len();
        let mut segment = vec![0u8; n + payload.len()];
        r.emit(&mut segment, src, dst, &payload);
        segment[n..].copy_from_slice(&payload);
        prop_assert_eq!(TcpRepr::parse(&segment, src, dst, true), Ok((fitted(&r), n)));
        let view = TcpPacket::new_checked(&segment[..]).unwrap();
        prop_assert!(view.verify_checksum(src, dst));
        prop_assert_eq!(view.payload(), &payload[..]);
    }

    #[test]
    fn ipv4_repr_round_trip(src: [u8; 4], dst: [u8; 4], protocol: u8, payload_len in 0usize..=65515, ttl: u8, dscp_ecn: u8) {
        let r = Ipv4Repr { src: src.into(), dst: dst.into(), protocol, payload_len, ttl, dscp_ecn };
        let mut buf = vec![0u8; 20 + payload_len];
        r.emit(&mut buf);
        prop_assert_eq!(Ipv4Repr::parse(&buf), Ok((r, 20)));
    }

    #[test]
    fn ipv6_repr_round_trip(src: [u8; 16], dst: [u8; 16], next_header: u8, payload_len in 0usize..=65535, hop_limit: u8, traffic_class: u8) {
        let r = Ipv6Repr { src: src.into(), dst: dst.into(), next_header, payload_len, hop_limit, traffic_class };
        let mut buf = vec![0u8; 40 + payload_len];
        r.emit(&mut buf);
        prop_assert_eq!(Ipv6Repr::parse(&buf), Ok((r, 40)));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), verify: bool) {
        let _ = parse_ip_tcp(&bytes, verify);
        let _ = TcpOptions::parse(&bytes);
        let _ = Ipv4Repr::parse(&bytes);
        let _ = Ipv6Repr::parse(&bytes);
    }

    /// Arbitrary bytes rarely get past the IP header; these start from a valid
    /// IPv4 or IPv6 header and a TCP header with a random data offset and
    /// random option bytes, checksums off, so the option parser sees garbage.
    #[test]
    fn garbage_tcp_headers_never_panic(
        (src, dst) in arb_addrs(),
        tail in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let mut buf = BytesMut::new();
        let r = TcpRepr { flags: TcpFlags::ACK, ..base(1, 2, 3, 4) };
        emit_ip_tcp(&mut buf, src, dst, 64, &r, &[]);
        let ip_len = if src.is_ipv4() { 20 } else { 40 };
        buf.truncate(ip_len);
        buf.extend_from_slice(&tail);
        // Fix up the IP length (and the IPv4 header checksum) to the new size.
        let len = buf.len();
        if src.is_ipv4() {
            buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            buf[10..12].copy_from_slice(&[0, 0]);
            let mut c = Checksum::new();
            c.add_bytes(&buf[..20]);
            let sum = c.finish();
            buf[10..12].copy_from_slice(&sum.to_be_bytes());
        } else {
            buf[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        }
        match parse_ip_tcp(&buf, false) {
            Ok(seg) => {
                prop_assert!(seg.payload.start <= seg.payload.end && seg.payload.end == len);
                prop_assert!(seg.payload.start >= ip_len + 20);
            }
            Err(e) => prop_assert!(
                matches!(e, WireError::Truncated | WireError::BadDataOffset | WireError::BadOption),
                "{e:?}"
            ),
        }
    }

    /// Random byte overwrites of a valid packet never make the parsers panic.
    #[test]
    fn mutated_packets_never_panic(
        (src, dst) in arb_addrs(),
        r in arb_tcp(),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut buf = packet(src, dst, &r, &payload);
        for (i, v) in edits {
            let i = i.index(buf.len());
            buf[i] = v;
        }
        let _ = parse_ip_tcp(&buf, false);
        let _ = parse_ip_tcp(&buf, true);
    }

    /// Changing any one byte covered by a checksum is caught: the sum moves
    /// by a non-zero amount below 0xffff. Bytes no checksum covers (IPv6
    /// traffic class, flow label, hop limit) leave the parse unchanged.
    #[test]
    fn one_changed_byte_is_detected(
        (src, dst) in arb_addrs(),
        r in arb_tcp(),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        at: prop::sample::Index,
        delta in 1u8..=255,
    ) {
        let mut buf = packet(src, dst, &r, &payload);
        let good = parse_ip_tcp(&buf, true).unwrap();
        let i = at.index(buf.len());
        buf[i] = buf[i].wrapping_add(delta);
        let r = parse_ip_tcp(&buf, true);
        let uncovered = src.is_ipv6() && (i == 7 || (1..4).contains(&i) || (i == 0 && buf[0] >> 4 == 6));
        if uncovered {
            prop_assert_eq!(r, Ok(good));
        } else {
            prop_assert!(r.is_err(), "byte {} changed by {} went unnoticed", i, delta);
        }
    }
}

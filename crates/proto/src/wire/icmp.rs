//! ICMP (RFC 792) and ICMPv6 (RFC 4443) error messages about TCP segments
//! we sent: which connection (from the quoted IP header and the first eight
//! bytes of the quoted TCP header, RFC 792's minimum), the quoted sequence
//! number (for RFC 5927's check), and what went wrong, as Linux's
//! `icmp_err_convert` / `icmpv6_err_convert` classify it.

use super::IPPROTO_TCP;
use super::checksum::{self, Checksum};
use crate::seq::SeqNum;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// What an ICMP error says about a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpError {
    /// Network unreachable (ICMP 3/0, 3/6, 3/9, 3/11; ICMPv6 1/0).
    NetUnreachable,
    /// Host unreachable (ICMP 3/1, 3/7, 3/8, 3/10, 3/12, 3/13, 3/14, 3/15;
    /// ICMPv6 1/1 (administratively prohibited), 1/2, 1/3, 1/5, 1/6).
    HostUnreachable,
    /// Protocol or port unreachable (ICMP 3/2, 3/3; ICMPv6 1/4): nobody
    /// speaks TCP there.
    PortUnreachable,
    /// The path's MTU is smaller than the packet: ICMP "fragmentation
    /// needed and DF set" (3/4, RFC 1191) or ICMPv6 "packet too big"
    /// (type 2, RFC 8201), with the next hop's MTU (0 when the router did
    /// not say).
    PacketTooBig {
        /// The MTU the router reported.
        mtu: u32,
    },
}

/// An ICMP error about one of our TCP segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpReport {
    /// What went wrong.
    pub error: IcmpError,
    /// Our end of the connection (the quoted segment's source).
    pub local: SocketAddr,
    /// The peer's end (the quoted segment's destination).
    pub remote: SocketAddr,
    /// The quoted segment's sequence number.
    pub seq: SeqNum,
    /// Who sent the ICMP message (a router on the path, or the peer).
    pub from: IpAddr,
}

/// Parses `packet`, a whole IPv4 or IPv6 packet, as an ICMP error about a
/// TCP segment: `None` for anything else (other ICMP types, a quoted
/// packet that is not TCP or is cut before the sequence number, a bad
/// checksum, ICMP not addressed to the quoted segment's source).
pub fn parse_icmp_error(packet: &[u8]) -> Option<IcmpReport> {
    match packet.first()? >> 4 {
        4 => parse_v4(packet),
        6 => parse_v6(packet),
        _ => None,
    }
}

fn parse_v4(p: &[u8]) -> Option<IcmpReport> {
    let ihl = usize::from(p.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?]));
    if ihl < 20 || total < ihl + 8 || total > p.len() || p[9] != IPPROTO_ICMP {
        return None;
    }
    if !checksum::verify(&p[..ihl]) {
        return None;
    }
    let from = IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15]));
    let to = IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19]));
    let icmp = &p[ihl..total];
    if !checksum::verify(icmp) {
        return None;
    }
    let (ty, code) = (icmp[0], icmp[1]);
    let error = match (ty, code) {
        (3, 0 | 6 | 9 | 11) => IcmpError::NetUnreachable,
        (3, 1 | 7 | 8 | 10 | 12 | 13 | 14 | 15) => IcmpError::HostUnreachable,
        (3, 2 | 3) => IcmpError::PortUnreachable,
        (3, 4) => IcmpError::PacketTooBig {
            mtu: u32::from(u16::from_be_bytes([icmp[6], icmp[7]])),
        },
        _ => return None,
    };
    // The quoted IPv4 header and at least 8 bytes of TCP.
    let q = &icmp[8..];
    let qihl = usize::from(q.first()? & 0x0f) * 4;
    if q[0] >> 4 != 4 || qihl < 20 || q.len() < qihl + 8 || q[9] != IPPROTO_TCP {
        return None;
    }
    let qsrc = IpAddr::V4(Ipv4Addr::new(q[12], q[13], q[14], q[15]));
    let qdst = IpAddr::V4(Ipv4Addr::new(q[16], q[17], q[18], q[19]));
    if qsrc != to {
        return None;
    }
    report(error, qsrc, qdst, &q[qihl..], from)
}

fn parse_v6(p: &[u8]) -> Option<IcmpReport> {
    if p.len() < 40 + 8 || p[6] != IPPROTO_ICMPV6 {
        return None;
    }
    let plen = usize::from(u16::from_be_bytes([p[4], p[5]]));
    if 40 + plen > p.len() || plen < 8 {
        return None;
    }
    let addr = |b: &[u8]| -> IpAddr {
        let a: [u8; 16] = b.try_into().unwrap_or([0; 16]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    let (from, to) = (addr(&p[8..24]), addr(&p[24..40]));
    let icmp = &p[40..40 + plen];
    let mut sum = Checksum::pseudo_header(from, to, IPPROTO_ICMPV6, plen as u32);
    sum.add_bytes(icmp);
    if !sum.is_valid() {
        return None;
    }
    let (ty, code) = (icmp[0], icmp[1]);
    let error = match (ty, code) {
        (1, 0) => IcmpError::NetUnreachable,
        (1, 1 | 2 | 3 | 5 | 6) => IcmpError::HostUnreachable,
        (1, 4) => IcmpError::PortUnreachable,
        (2, 0) => IcmpError::PacketTooBig {
            mtu: u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
        },
        _ => return None,
    };
    let q = &icmp[8..];
    if q.len() < 40 + 8 || q[0] >> 4 != 6 || q[6] != IPPROTO_TCP {
        return None;
    }
    let (qsrc, qdst) = (addr(&q[8..24]), addr(&q[24..40]));
    if qsrc != to {
        return None;
    }
    report(error, qsrc, qdst, &q[40..], from)
}

fn report(
    error: IcmpError,
    qsrc: IpAddr,
    qdst: IpAddr,
    tcp: &[u8],
    from: IpAddr,
) -> Option<IcmpReport> {
    let sport = u16::from_be_bytes([*tcp.first()?, *tcp.get(1)?]);
    let dport = u16::from_be_bytes([*tcp.get(2)?, *tcp.get(3)?]);
    let seq = u32::from_be_bytes([*tcp.get(4)?, *tcp.get(5)?, *tcp.get(6)?, *tcp.get(7)?]);
    Some(IcmpReport {
        error,
        local: SocketAddr::new(qsrc, sport),
        remote: SocketAddr::new(qdst, dport),
        seq: SeqNum::new(seq),
        from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{TcpFlags, TcpOptions, TcpRepr, emit_ip_tcp};
    use bytes::BytesMut;

    /// Our SYN from 10.0.0.1:40000 to `dst`:80, SEQ 1000.
    fn syn(src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let repr = TcpRepr {
            src_port: 40_000,
            dst_port: 80,
            seq: SeqNum::new(1000),
            ack: SeqNum::new(0),
            flags: TcpFlags::SYN,
            window: 65_535,
            urgent: 0,
            options: TcpOptions::default(),
        };
        let mut b = BytesMut::new();
        emit_ip_tcp(&mut b, src, dst, 64, &repr, &[]);
        b.to_vec()
    }

    /// An ICMP error of `ty`/`code` from `router` quoting `quoted`.
    fn icmp4(
        router: Ipv4Addr,
        to: Ipv4Addr,
        ty: u8,
        code: u8,
        rest: [u8; 4],
        quoted: &[u8],
    ) -> Vec<u8> {
        let mut m = vec![ty, code, 0, 0];
        m.extend_from_slice(&rest);
        m.extend_from_slice(&quoted[..28.min(quoted.len())]);
        let c = checksum::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, IPPROTO_ICMP, 0, 0];
        p.extend_from_slice(&router.octets());
        p.extend_from_slice(&to.octets());
        let total = (20 + m.len()) as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        let c = checksum::checksum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&m);
        p
    }

    fn icmp6(
        router: Ipv6Addr,
        to: Ipv6Addr,
        ty: u8,
        code: u8,
        rest: [u8; 4],
        quoted: &[u8],
    ) -> Vec<u8> {
        let mut m = vec![ty, code, 0, 0];
        m.extend_from_slice(&rest);
        m.extend_from_slice(quoted);
        let mut sum =
            Checksum::pseudo_header(router.into(), to.into(), IPPROTO_ICMPV6, m.len() as u32);
        sum.add_bytes(&m);
        let c = sum.finish();
        m[2..4].copy_from_slice(&c.to_be_bytes());
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(m.len() as u16).to_be_bytes());
        p.extend_from_slice(&[IPPROTO_ICMPV6, 64]);
        p.extend_from_slice(&router.octets());
        p.extend_from_slice(&to.octets());
        p.extend_from_slice(&m);
        p
    }

    #[test]
    fn icmp_unreachable_quoting_our_syn_names_the_connection() {
        let (us, peer, router) = (
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 9, 0, 5),
            Ipv4Addr::new(10, 0, 0, 254),
        );
        let q = syn(us.into(), peer.into());
        for (code, want) in [
            (0, IcmpError::NetUnreachable),
            (1, IcmpError::HostUnreachable),
            (3, IcmpError::PortUnreachable),
            (13, IcmpError::HostUnreachable),
        ] {
            let r = parse_icmp_error(&icmp4(router, us, 3, code, [0; 4], &q)).expect("parses");
            assert_eq!(r.error, want, "code {code}");
            assert_eq!(r.local, SocketAddr::new(us.into(), 40_000));
            assert_eq!(r.remote, SocketAddr::new(peer.into(), 80));
            assert_eq!(r.seq, SeqNum::new(1000));
            assert_eq!(r.from, IpAddr::V4(router));
        }
        let r = parse_icmp_error(&icmp4(router, us, 3, 4, [0, 0, 0x05, 0x00], &q)).unwrap();
        assert_eq!(r.error, IcmpError::PacketTooBig { mtu: 1280 });
        // Not an error about TCP, or corrupted: nothing.
        assert_eq!(
            parse_icmp_error(&icmp4(router, us, 0, 0, [0; 4], &q)),
            None,
            "echo reply"
        );
        let mut bad = icmp4(router, us, 3, 1, [0; 4], &q);
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(parse_icmp_error(&bad), None, "bad checksum");
        let other = icmp4(router, Ipv4Addr::new(10, 0, 0, 7), 3, 1, [0; 4], &q);
        assert_eq!(parse_icmp_error(&other), None, "not to the quoted source");
        assert_eq!(parse_icmp_error(&q), None, "TCP is not ICMP");
    }

    #[test]
    fn icmpv6_unreachable_and_packet_too_big() {
        let us: Ipv6Addr = "fd00::1".parse().unwrap();
        let peer: Ipv6Addr = "fd09::5".parse().unwrap();
        let router: Ipv6Addr = "fd00::fe".parse().unwrap();
        let q = syn(us.into(), peer.into());
        let r = parse_icmp_error(&icmp6(router, us, 1, 3, [0; 4], &q)).unwrap();
        assert_eq!(r.error, IcmpError::HostUnreachable);
        assert_eq!(
            (r.local.port(), r.remote.port(), r.seq),
            (40_000, 80, SeqNum::new(1000))
        );
        let r = parse_icmp_error(&icmp6(router, us, 2, 0, 1280u32.to_be_bytes(), &q)).unwrap();
        assert_eq!(r.error, IcmpError::PacketTooBig { mtu: 1280 });
        let r = parse_icmp_error(&icmp6(router, us, 1, 4, [0; 4], &q)).unwrap();
        assert_eq!(r.error, IcmpError::PortUnreachable);
    }
}

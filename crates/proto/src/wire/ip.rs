//! A TCP segment inside an IPv4 or IPv6 packet: the one entry point the
//! device task parses received packets with, and the one that builds the
//! headers of a segment to send.

use super::ipv4::Ipv4Repr;
use super::ipv6::Ipv6Repr;
use super::tcp::{MAX_HEADER_LEN, TcpRepr};
use super::{IPPROTO_TCP, WireError};
use bytes::BytesMut;
use core::net::IpAddr;
use core::ops::Range;

/// A received TCP segment, validated, with its payload located in the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSegment {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The TCP header.
    pub tcp: TcpRepr,
    /// Where the TCP payload lies in the packet that was parsed, so the caller
    /// can take it without a copy (`packet.slice(seg.payload.clone())` on a
    /// `Bytes`). Link-layer padding after the IP length is not included.
    pub payload: Range<usize>,
}

/// Parses an IPv4 or IPv6 packet carrying TCP, dispatching on the version
/// nibble. The IPv4 header checksum is always verified; the TCP checksum only
/// when `verify_checksum` is set (pass false for devices that verified it).
///
/// # Errors
///
/// [`WireError::Truncated`] for an empty packet, [`WireError::BadVersion`] for
/// a version other than 4 or 6, the errors of [`Ipv4Repr::parse`] /
/// [`Ipv6Repr::parse`], [`WireError::NotTcp`] when the protocol (IPv6: the
/// first next header) is not TCP, [`WireError::BadAddress`] for a multicast,
/// broadcast or unspecified source address, then the errors of
/// [`TcpRepr::parse`].
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use utcp_proto::SeqNum;
/// use utcp_proto::wire::{TcpFlags, TcpOptions, TcpRepr, emit_ip_tcp, parse_ip_tcp};
///
/// let tcp = TcpRepr {
///     src_port: 5000,
///     dst_port: 80,
///     seq: SeqNum::new(1),
///     ack: SeqNum::new(0),
///     flags: TcpFlags::SYN,
///     window: 65535,
///     urgent: 0,
///     options: TcpOptions { mss: Some(1460), ..Default::default() },
/// };
/// let (src, dst) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
/// let mut buf = BytesMut::new();
/// emit_ip_tcp(&mut buf, src, dst, 64, &tcp, b"hi");
/// buf.extend_from_slice(b"hi");
/// let packet = buf.freeze();
/// let seg = parse_ip_tcp(&packet, true).unwrap();
/// assert_eq!((seg.src, seg.dst, seg.tcp), (src, dst, tcp));
/// assert_eq!(&packet.slice(seg.payload)[..], b"hi");
/// ```
pub fn parse_ip_tcp(packet: &[u8], verify_checksum: bool) -> Result<ParsedSegment, WireError> {
    let first = *packet.first().ok_or(WireError::Truncated)?;
    let (src, dst, protocol, ip_header_len, ip_payload_len) = match first >> 4 {
        4 => {
            let (ip, header_len) = Ipv4Repr::parse(packet)?;
            (
                IpAddr::V4(ip.src),
                IpAddr::V4(ip.dst),
                ip.protocol,
                header_len,
                ip.payload_len,
            )
        }
        6 => {
            let (ip, header_len) = Ipv6Repr::parse(packet)?;
            (
                IpAddr::V6(ip.src),
                IpAddr::V6(ip.dst),
                ip.next_header,
                header_len,
                ip.payload_len,
            )
        }
        version => return Err(WireError::BadVersion(version)),
    };
    if protocol != IPPROTO_TCP {
        return Err(WireError::NotTcp(protocol));
    }
    if !can_send(src) {
        return Err(WireError::BadAddress);
    }
    let segment = &packet[ip_header_len..ip_header_len + ip_payload_len];
    let (tcp, tcp_header_len) = TcpRepr::parse(segment, src, dst, verify_checksum)?;
    Ok(ParsedSegment {
        src,
        dst,
        tcp,
        payload: ip_header_len + tcp_header_len..ip_header_len + ip_payload_len,
    })
}

/// Whether `addr` can be the source of a TCP segment: not multicast, not the
/// IPv4 limited broadcast, not unspecified (RFC 1122 §4.2.3.10, RFC 4291 §2.7).
fn can_send(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => !(a.is_multicast() || a.is_broadcast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    }
}

/// Bytes [`emit_ip_tcp`] appends: the IP header (20 for IPv4, 40 for IPv6) plus
/// [`TcpRepr::header_len`].
pub fn ip_tcp_header_len(src: &IpAddr, tcp: &TcpRepr) -> usize {
    let ip = match src {
        IpAddr::V4(_) => Ipv4Repr::HEADER_LEN,
        IpAddr::V6(_) => Ipv6Repr::HEADER_LEN,
    };
    ip + tcp.header_len()
}

/// Appends the IP header and the TCP header of a segment from `src` to `dst`
/// to `buf`, both checksums computed (the TCP checksum covers `payload`, which
/// is not copied: the caller sends it after these bytes, for example as a
/// second gather buffer). Appends exactly [`ip_tcp_header_len`] bytes; `buf`
/// allocates only if it lacks the capacity.
///
/// `hop_limit` is the IPv4 TTL or the IPv6 hop limit. IPv4 headers have DF set,
/// identification zero and DSCP / ECN zero; IPv6 headers have traffic class
/// and flow label zero ([`emit_ip_tcp_tos`] sets the TOS byte).
///
/// # Panics
///
/// If `src` and `dst` are of different families, or the packet would exceed
/// the 16-bit IP length field: both are invariants of the caller (a connection
/// has one address family; segments are sized from the MSS).
pub fn emit_ip_tcp(
    buf: &mut BytesMut,
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    tcp: &TcpRepr,
    payload: &[u8],
) {
    emit_ip_tcp_tos(buf, src, dst, hop_limit, 0, tcp, payload);
}

/// [`emit_ip_tcp`] with the TOS byte: `tos` is the IPv4 DSCP / ECN byte
/// (`IP_TOS`) or the IPv6 traffic class (`IPV6_TCLASS`).
///
/// # Panics
///
/// As [`emit_ip_tcp`].
pub fn emit_ip_tcp_tos(
    buf: &mut BytesMut,
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    tos: u8,
    tcp: &TcpRepr,
    payload: &[u8],
) {
    emit_ip_tcp_gather(buf, src, dst, hop_limit, tos, tcp, &[payload]);
}

/// [`emit_ip_tcp_tos`] for a payload in pieces (a gathering write sends
/// them after the headers, in order; any may be of odd length).
///
/// # Panics
///
/// As [`emit_ip_tcp`].
#[inline]
pub fn emit_ip_tcp_gather(
    buf: &mut BytesMut,
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    tos: u8,
    tcp: &TcpRepr,
    payload: &[&[u8]],
) {
    // Both headers are built in one array, the IP header ending where the
    // TCP header starts (at offset 40, so an IPv4 header takes 20..40),
    // and appended with one copy.
    const TCP_AT: usize = Ipv6Repr::HEADER_LEN;
    let mut headers = [0u8; TCP_AT + MAX_HEADER_LEN];
    let (ip_part, tcp_part) = headers.split_at_mut(TCP_AT);
    let tcp_part: &mut [u8; MAX_HEADER_LEN] = tcp_part.try_into().unwrap();
    let tcp_header_len = tcp.emit_gather_fixed(tcp_part, src, dst, payload);
    let payload_len: usize = payload.iter().map(|p| p.len()).sum();
    let ip_header_len = ip_header_len(src);
    write_ip_header(
        &mut ip_part[TCP_AT - ip_header_len..],
        src,
        dst,
        hop_limit,
        tos,
        tcp_header_len + payload_len,
    );
    buf.extend_from_slice(&headers[TCP_AT - ip_header_len..TCP_AT + tcp_header_len]);
}

/// [`emit_ip_tcp_tos`] for a device that completes the TCP checksum
/// (checksum offload): the TCP checksum field holds the pseudo-header sum
/// for `payload_len` payload bytes ([`TcpRepr::emit_partial`]), so the
/// payload is neither passed nor summed. The IPv4 header checksum is
/// complete. `payload_len` may exceed one MTU's worth for a super-segment
/// the device cuts (GSO): the IP length field then covers all of it.
///
/// Returns the checksum's place, relative to the packet's first byte:
/// where summing starts (the TCP header) and the checksum field's offset,
/// as a device's offload metadata says them (`csum_start` and
/// `csum_start + csum_offset` of Linux's `virtio_net_hdr`).
///
/// # Panics
///
/// As [`emit_ip_tcp`].
pub fn emit_ip_tcp_partial(
    buf: &mut BytesMut,
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    tos: u8,
    tcp: &TcpRepr,
    payload_len: usize,
) -> (u16, u16) {
    let start = buf.len();
    let ip_header_len = emit_ip(buf, src, dst, hop_limit, tos, tcp, payload_len);
    tcp.emit_partial(&mut buf[start + ip_header_len..], src, dst, payload_len);
    // Both fit: an IP header is 20 or 40 bytes, and the field is 16 bytes in.
    (ip_header_len as u16, (ip_header_len + 16) as u16)
}

/// Appends the IP header and room for the TCP header (zeroed); returns the
/// IP header's length.
fn emit_ip(
    buf: &mut BytesMut,
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    tos: u8,
    tcp: &TcpRepr,
    payload_len: usize,
) -> usize {
    let tcp_header_len = tcp.header_len();
    let start = buf.len();
    let ip_header_len = ip_header_len(src);
    buf.resize(start + ip_header_len + tcp_header_len, 0);
    write_ip_header(
        &mut buf[start..],
        src,
        dst,
        hop_limit,
        tos,
        tcp_header_len + payload_len,
    );
    ip_header_len
}

/// The length of the IP header for `src`'s family (no options).
#[inline]
fn ip_header_len(src: IpAddr) -> usize {
    if src.is_ipv4() {
        Ipv4Repr::HEADER_LEN
    } else {
        Ipv6Repr::HEADER_LEN
    }
}

/// Writes the IP header of a TCP packet carrying `ip_payload_len` bytes at
/// the start of `out`.
#[inline]
fn write_ip_header(
    out: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    tos: u8,
    ip_payload_len: usize,
) {
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => Ipv4Repr {
            src,
            dst,
            protocol: IPPROTO_TCP,
            payload_len: ip_payload_len,
            ttl: hop_limit,
            dscp_ecn: tos,
        }
        .emit(out),
        (IpAddr::V6(src), IpAddr::V6(dst)) => Ipv6Repr {
            src,
            dst,
            next_header: IPPROTO_TCP,
            payload_len: ip_payload_len,
            hop_limit,
            traffic_class: tos,
        }
        .emit(out),
        _ => panic!(
            "emit_ip_tcp invariant: source {src} and destination {dst} must be one IP family"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seq::SeqNum;
    use crate::wire::tcp::{TcpFlags, TcpOptions};

    fn rst() -> TcpRepr {
        TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq: SeqNum::new(3),
            ack: SeqNum::new(4),
            flags: TcpFlags::RST | TcpFlags::ACK,
            window: 0,
            urgent: 0,
            options: TcpOptions::default(),
        }
    }

    #[test]
    fn appends_after_existing_bytes() {
        let (src, dst) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        let mut buf = BytesMut::from(&b"prefix"[..]);
        emit_ip_tcp(&mut buf, src, dst, 64, &rst(), &[]);
        assert_eq!(buf.len(), 6 + ip_tcp_header_len(&src, &rst()));
        assert_eq!(&buf[..6], b"prefix");
        let seg = parse_ip_tcp(&buf[6..], true).unwrap();
        assert_eq!((seg.tcp, seg.payload), (rst(), 60..60));
    }

    #[test]
    fn rejects_bad_sources() {
        let cases: [(&str, &str); 4] = [
            ("0.0.0.0", "10.0.0.1"),
            ("255.255.255.255", "10.0.0.1"),
            ("224.0.0.1", "10.0.0.1"),
            ("ff02::1", "fd00::1"),
        ];
        for (src, dst) in cases {
            let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
            let mut buf = BytesMut::new();
            emit_ip_tcp(&mut buf, src, dst, 64, &rst(), &[]);
            assert_eq!(
                parse_ip_tcp(&buf, true),
                Err(WireError::BadAddress),
                "{src}"
            );
        }
        let mut buf = BytesMut::new();
        emit_ip_tcp(
            &mut buf,
            "::".parse().unwrap(),
            "fd00::1".parse().unwrap(),
            64,
            &rst(),
            &[],
        );
        assert_eq!(parse_ip_tcp(&buf, true), Err(WireError::BadAddress));
    }

    #[test]
    fn tos_byte_lands_in_both_families_with_valid_checksums() {
        use crate::wire::{Ipv4Repr, Ipv6Repr};
        let mut buf = BytesMut::new();
        let (s4, d4): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        emit_ip_tcp_tos(&mut buf, s4, d4, 64, 0xb8, &rst(), &[]);
        assert_eq!(Ipv4Repr::parse(&buf).unwrap().0.dscp_ecn, 0xb8);
        assert!(parse_ip_tcp(&buf, true).is_ok());
        let mut buf = BytesMut::new();
        let (s6, d6): (IpAddr, IpAddr) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        emit_ip_tcp_tos(&mut buf, s6, d6, 64, 0x28, &rst(), &[]);
        assert_eq!(Ipv6Repr::parse(&buf).unwrap().0.traffic_class, 0x28);
        assert!(parse_ip_tcp(&buf, true).is_ok());
        // The plain emitter writes zero.
        let mut buf = BytesMut::new();
        emit_ip_tcp(&mut buf, s4, d4, 64, &rst(), &[]);
        assert_eq!(buf[1], 0);
    }

    #[test]
    fn rejects_other_versions_and_empty() {
        assert_eq!(parse_ip_tcp(&[], true), Err(WireError::Truncated));
        assert_eq!(
            parse_ip_tcp(&[0x50; 60], true),
            Err(WireError::BadVersion(5))
        );
    }

    #[test]
    #[should_panic(expected = "one IP family")]
    fn mixed_families_panic() {
        let mut buf = BytesMut::new();
        emit_ip_tcp(
            &mut buf,
            "10.0.0.1".parse().unwrap(),
            "fd00::1".parse().unwrap(),
            64,
            &rst(),
            &[],
        );
    }
}

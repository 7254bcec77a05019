//! Software segmentation and checksumming: what a NIC with TCP segmentation
//! offload, or the kernel's `skb_gso_segment` and `skb_checksum_help`, does
//! with a packet sent with offload requests
//! ([`Offload::gso_size`](super::Offload::gso_size),
//! [`Offload::csum_partial`](super::Offload::csum_partial)). The in-memory network uses it to offer the
//! offloads a TUN device offers, so the stack's super-segments are checked
//! without root; each packet it makes is what the wire would carry.
//!
//! A super-segment's headers are those of its first segment, with IP
//! length fields covering the whole payload and a partial TCP checksum
//! (the pseudo-header sum). Each segment gets (as Linux's `tcp_gso_segment`
//! and `inet_gso_segment`): the headers, its own sequence number and IP
//! length, IPv4 identification counting up from the first, a fresh IPv4
//! header checksum; FIN and PSH only on the last segment, CWR only on the
//! first; a complete TCP checksum.

use super::TxPacket;
use utcp_proto::wire::checksum::Checksum;

/// Why a packet's offload request could not be carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GsoError {
    /// Not an IPv4 or IPv6 packet carrying TCP, or its headers are cut.
    #[error("not a whole IPv4 / IPv6 TCP header")]
    NotTcp,
    /// The partial checksum's place is not the TCP checksum field.
    #[error("partial checksum offsets do not point at the TCP checksum")]
    BadChecksumOffsets,
    /// A segment size of 0.
    #[error("gso_size is 0")]
    ZeroSegmentSize,
}

const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;
const IPPROTO_TCP: u8 = 6;

/// Cuts `packet` (sent with its offload requests) into the packets the wire
/// carries, each complete (checksums included), handing each to `out` in
/// order. A packet without offload requests is handed over unchanged; one
/// with only a partial checksum comes out whole, its checksum completed.
///
/// # Errors
///
/// The packet is not TCP over IPv4 / IPv6 (options and extension headers
/// are not parsed), or its request cannot be carried out ([`GsoError`]);
/// nothing is handed to `out` then.
pub fn segment(packet: &TxPacket<'_>, mut out: impl FnMut(Vec<u8>)) -> Result<(), GsoError> {
    let (header, meta) = (packet.header, &packet.meta);
    if meta.gso_size.is_none() && meta.csum_partial.is_none() {
        out([header, packet.payload, packet.payload_tail].concat());
        return Ok(());
    }
    let joined: Vec<u8>;
    let payload = if packet.payload_tail.is_empty() {
        packet.payload
    } else {
        joined = [packet.payload, packet.payload_tail].concat();
        &joined
    };
    // The packet's bytes, header and payload as one (the headers may reach
    // into `payload` only if the caller split them oddly: not the stack).
    let whole: Vec<u8>;
    let (hdr_src, data_src): (&[u8], &[u8]);
    let ip_len = ip_header_len(header)?;
    let tcp_len = tcp_header_len(header, ip_len)?;
    let hdrs = ip_len + tcp_len;
    if header.len() >= hdrs {
        let (h, rest) = header.split_at(hdrs);
        if rest.is_empty() {
            (hdr_src, data_src) = (h, payload);
        } else {
            whole = [rest, payload].concat();
            (hdr_src, data_src) = (h, &whole);
        }
    } else {
        return Err(GsoError::NotTcp);
    }
    if let Some((start, field)) = meta.csum_partial
        && (usize::from(start) != ip_len || usize::from(field) != ip_len + 16)
    {
        return Err(GsoError::BadChecksumOffsets);
    }
    let seg = match meta.gso_size {
        Some(0) => return Err(GsoError::ZeroSegmentSize),
        Some(g) => usize::from(g),
        None => data_src.len().max(1),
    };
    let v4 = hdr_src[0] >> 4 == 4;
    let (src, dst) = addrs(hdr_src, v4);
    let seq0 = u32::from_be_bytes([
        hdr_src[ip_len + 4],
        hdr_src[ip_len + 5],
        hdr_src[ip_len + 6],
        hdr_src[ip_len + 7],
    ]);
    let id0 = u16::from_be_bytes([hdr_src[4], hdr_src[5]]);
    let flags0 = hdr_src[ip_len + 13];
    let count = data_src.len().div_ceil(seg).max(1);
    for i in 0..count {
        let from = (i * seg).min(data_src.len());
        let to = (from + seg).min(data_src.len());
        let data = &data_src[from..to];
        let mut p = Vec::with_capacity(hdrs + data.len());
        p.extend_from_slice(hdr_src);
        p.extend_from_slice(data);
        if v4 {
            let total = (hdrs + data.len()) as u16;
            p[2..4].copy_from_slice(&total.to_be_bytes());
            if count > 1 {
                p[4..6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
            }
            p[10..12].copy_from_slice(&[0, 0]);
            let c = utcp_proto::wire::checksum::checksum(&p[..ip_len]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        } else {
            let plen = (tcp_len + data.len()) as u16;
            p[4..6].copy_from_slice(&plen.to_be_bytes());
        }
        let t = ip_len;
        let seq = seq0.wrapping_add(from as u32);
        p[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = flags0;
        if i + 1 < count {
            flags &= !(TCP_FIN | TCP_PSH);
        }
        if i > 0 {
            flags &= !TCP_CWR;
        }
        p[t + 13] = flags;
        p[t + 16..t + 18].copy_from_slice(&[0, 0]);
        let mut sum = Checksum::pseudo_header(src, dst, IPPROTO_TCP, (tcp_len + data.len()) as u32);
        sum.add_bytes(&p[t..]);
        p[t + 16..t + 18].copy_from_slice(&sum.finish().to_be_bytes());
        out(p);
    }
    Ok(())
}

fn ip_header_len(header: &[u8]) -> Result<usize, GsoError> {
    match header.first().map(|b| b >> 4) {
        Some(4) => {
            let ihl = usize::from(header[0] & 0x0f) * 4;
            if ihl < 20 || header.len() < ihl || header[9] != IPPROTO_TCP {
                return Err(GsoError::NotTcp);
            }
            Ok(ihl)
        }
        Some(6) if header.len() >= 40 && header[6] == IPPROTO_TCP => Ok(40),
        _ => Err(GsoError::NotTcp),
    }
}

fn tcp_header_len(header: &[u8], ip_len: usize) -> Result<usize, GsoError> {
    let off = *header.get(ip_len + 12).ok_or(GsoError::NotTcp)?;
    let len = usize::from(off >> 4) * 4;
    if len < 20 {
        return Err(GsoError::NotTcp);
    }
    Ok(len)
}

fn addrs(h: &[u8], v4: bool) -> (std::net::IpAddr, std::net::IpAddr) {
    if v4 {
        let a: [u8; 4] = h[12..16].try_into().unwrap_or([0; 4]);
        let b: [u8; 4] = h[16..20].try_into().unwrap_or([0; 4]);
        (a.into(), b.into())
    } else {
        let a: [u8; 16] = h[8..24].try_into().unwrap_or([0; 16]);
        let b: [u8; 16] = h[24..40].try_into().unwrap_or([0; 16]);
        (a.into(), b.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Offload;
    use bytes::BytesMut;
    use std::net::IpAddr;
    use utcp_proto::SeqNum;
    use utcp_proto::wire::{self, TcpFlags, TcpOptions, TcpRepr};

    fn repr(flags: TcpFlags) -> TcpRepr {
        TcpRepr {
            src_port: 40_000,
            dst_port: 80,
            seq: SeqNum::new(u32::MAX - 1000),
            ack: SeqNum::new(7),
            flags,
            window: 512,
            urgent: 0,
            options: TcpOptions {
                timestamps: Some((1, 2)),
                ..TcpOptions::default()
            },
        }
    }

    fn cut(src: IpAddr, dst: IpAddr, flags: TcpFlags, payload: &[u8], mss: u16) -> Vec<Vec<u8>> {
        let mut buf = BytesMut::new();
        let r = repr(flags);
        let csum = wire::emit_ip_tcp_partial(&mut buf, src, dst, 64, 0, &r, payload.len());
        let meta = Offload {
            gso_size: Some(mss),
            csum_partial: Some(csum),
            csum_verified: false,
        };
        let mut out = Vec::new();
        segment(&tx(&buf, payload, meta), |p| out.push(p)).unwrap();
        out
    }

    fn tx<'a>(header: &'a [u8], payload: &'a [u8], meta: Offload) -> TxPacket<'a> {
        // The payload in two pieces, as a segment spanning two chunks.
        let (a, b) = payload.split_at(payload.len() / 3);
        TxPacket {
            header,
            payload: a,
            payload_tail: b,
            meta,
        }
    }

    #[test]
    fn a_super_segment_becomes_valid_segments_with_flags_on_the_right_ones() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        for (src, dst) in [
            (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2])),
            ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap()),
        ] {
            let flags = TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN | TcpFlags::CWR;
            let segs = cut(src, dst, flags, &payload, 1448);
            assert_eq!(segs.len(), 7, "10,000 bytes in 1,448-byte segments");
            let mut got = Vec::new();
            for (i, p) in segs.iter().enumerate() {
                let parsed =
                    wire::parse_ip_tcp(p, true).expect("each segment parses, checksums verified");
                let t = &parsed.tcp;
                assert_eq!(t.seq, SeqNum::new(u32::MAX - 1000) + (i * 1448) as u32);
                let last = i + 1 == segs.len();
                assert_eq!(t.flags.fin(), last, "FIN on the last segment only");
                assert_eq!(t.flags.psh(), last, "PSH on the last segment only");
                assert_eq!(
                    t.flags.contains(TcpFlags::CWR),
                    i == 0,
                    "CWR on the first only"
                );
                assert_eq!(t.options.timestamps, Some((1, 2)));
                got.extend_from_slice(&p[parsed.payload.clone()]);
            }
            assert_eq!(got, payload, "the payload, byte-exact and in order");
        }
    }

    #[test]
    fn a_partial_checksum_alone_is_completed() {
        let src = IpAddr::from([10, 0, 0, 1]);
        let dst = IpAddr::from([10, 0, 0, 2]);
        let mut buf = BytesMut::new();
        let csum = wire::emit_ip_tcp_partial(&mut buf, src, dst, 64, 0, &repr(TcpFlags::ACK), 3);
        let meta = Offload {
            gso_size: None,
            csum_partial: Some(csum),
            csum_verified: false,
        };
        let mut out = Vec::new();
        segment(&tx(&buf, b"abc", meta), |p| out.push(p)).unwrap();
        assert_eq!(out.len(), 1);
        let mut full = BytesMut::new();
        wire::emit_ip_tcp(&mut full, src, dst, 64, &repr(TcpFlags::ACK), b"abc");
        full.extend_from_slice(b"abc");
        assert_eq!(out[0], full.to_vec(), "as if emitted with the checksum");
    }

    #[test]
    fn bad_requests_are_errors() {
        let meta = Offload {
            gso_size: Some(0),
            csum_partial: Some((20, 36)),
            csum_verified: false,
        };
        assert_eq!(
            segment(&tx(&[0x45], b"", meta), |_| {}),
            Err(GsoError::NotTcp)
        );
        let mut buf = BytesMut::new();
        let src = IpAddr::from([10, 0, 0, 1]);
        let dst = IpAddr::from([10, 0, 0, 2]);
        wire::emit_ip_tcp_partial(&mut buf, src, dst, 64, 0, &repr(TcpFlags::ACK), 3);
        assert_eq!(
            segment(&tx(&buf, b"abc", meta), |_| {}),
            Err(GsoError::ZeroSegmentSize)
        );
        let wrong = Offload {
            gso_size: None,
            csum_partial: Some((20, 30)),
            csum_verified: false,
        };
        assert_eq!(
            segment(&tx(&buf, b"abc", wrong), |_| {}),
            Err(GsoError::BadChecksumOffsets)
        );
    }
}

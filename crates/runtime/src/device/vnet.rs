//! The virtio-net header (`struct virtio_net_hdr`, linux/virtio_net.h) that
//! precedes every packet on a TUN device opened with `IFF_VNET_HDR` and on an
//! AF_PACKET socket with `PACKET_VNET_HDR`: what the kernel says about a
//! packet's checksum and segmentation, and what we ask of it.
//!
//! Received: `gso_type` other than `NONE` marks a GRO/TSO super-segment (one
//! packet to the stack, never split); `NEEDS_CSUM` means the transport
//! checksum field holds only the pseudo-header sum (the data never crossed a
//! wire, so it is trusted), `DATA_VALID` that the kernel verified it. Sent:
//! `gso_type` `NONE` with complete checksums, or `NEEDS_CSUM` with a partial
//! one, or a TCP super-segment with `gso_size` for the kernel to cut.
//!
//! The legacy header is in the host's byte order (the kernel's
//! `virtio_legacy_is_little_endian`), which is what TUN and AF_PACKET use
//! unless told otherwise.

use super::Offload;

/// Bytes of the header (`sizeof(struct virtio_net_hdr)`), the TUN default
/// (`TUNSETVNETHDRSZ` not called) and what AF_PACKET uses.
pub const VNET_HDR_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset`
/// is partial (the pseudo-header sum) and must be completed.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was verified.
pub const F_DATA_VALID: u8 = 2;

/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_UDP` (UFO, never asked for).
pub const GSO_UDP: u8 = 3;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN`: or'ed into `gso_type` when the super-segment
/// carries CWR.
pub const GSO_ECN: u8 = 0x80;

/// A decoded `struct virtio_net_hdr`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// `F_NEEDS_CSUM`, `F_DATA_VALID`.
    pub flags: u8,
    /// `GSO_*`, possibly with `GSO_ECN`.
    pub gso_type: u8,
    /// Length of the headers (the kernel's estimate; never trusted here: the
    /// TCP header length is parsed from the packet).
    pub hdr_len: u16,
    /// Payload bytes per segment of a super-segment.
    pub gso_size: u16,
    /// Where checksumming starts (the transport header).
    pub csum_start: u16,
    /// Offset of the checksum field from `csum_start`.
    pub csum_offset: u16,
}

/// Why a packet's offload request cannot be put in a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxOffloadError {
    /// `gso_size` without a partial checksum: the kernel must recompute each
    /// segment's checksum from a pseudo-header sum.
    GsoWithoutPartialChecksum,
    /// `gso_size` on a packet that is not IPv4 or IPv6.
    GsoNotIp,
    /// A checksum offset beyond what the header can say, or pointing past
    /// the packet.
    BadChecksumOffsets,
}

impl VnetHdr {
    /// Decodes the header at the front of `bytes` (`None` when shorter).
    pub fn parse(bytes: &[u8]) -> Option<VnetHdr> {
        let b: &[u8; VNET_HDR_LEN] = bytes.get(..VNET_HDR_LEN)?.try_into().ok()?;
        let u = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }

    /// Encodes the header.
    pub fn emit(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    /// Whether this is a super-segment (`gso_type` other than `NONE`).
    pub fn is_gso(&self) -> bool {
        self.gso_type & !GSO_ECN != GSO_NONE
    }

    /// The offload metadata of a received packet of `len` bytes: checksums
    /// trusted when the kernel verified them (`DATA_VALID`) or never computed
    /// them because the data did not cross a wire (`NEEDS_CSUM`, with the
    /// partial checksum's place when it lies inside the packet); `gso_size`
    /// for a super-segment.
    pub fn rx_offload(&self, len: usize) -> Offload {
        let partial = (self.flags & F_NEEDS_CSUM != 0)
            .then(|| {
                let field = usize::from(self.csum_start) + usize::from(self.csum_offset);
                (field + 2 <= len).then_some((self.csum_start, field as u16))
            })
            .flatten();
        Offload {
            gso_size: (self.is_gso() && self.gso_size > 0).then_some(self.gso_size),
            csum_partial: partial,
            csum_verified: self.flags & (F_NEEDS_CSUM | F_DATA_VALID) != 0,
        }
    }

    /// The header for sending `header` + `payload` (`len` bytes in all) with
    /// `meta`: nothing asked (complete checksums, `GSO_NONE`), a partial
    /// checksum (`NEEDS_CSUM`), or a TCP super-segment (`gso_size`, which
    /// needs the partial checksum too).
    ///
    /// # Errors
    ///
    /// The request cannot be expressed (see [`TxOffloadError`]).
    pub fn for_tx(meta: &Offload, header: &[u8], len: usize) -> Result<VnetHdr, TxOffloadError> {
        let mut h = VnetHdr::default();
        if let Some((start, field)) = meta.csum_partial {
            if field < start || usize::from(field) + 2 > len {
                return Err(TxOffloadError::BadChecksumOffsets);
            }
            h.flags = F_NEEDS_CSUM;
            h.csum_start = start;
            h.csum_offset = field - start;
        }
        if let Some(mss) = meta.gso_size {
            if meta.csum_partial.is_none() {
                return Err(TxOffloadError::GsoWithoutPartialChecksum);
            }
            h.gso_type = match header.first().map(|b| b >> 4) {
                Some(4) => GSO_TCPV4,
                Some(6) => GSO_TCPV6,
                _ => return Err(TxOffloadError::GsoNotIp),
            };
            h.gso_size = mss;
            // The headers of each segment: IP and TCP, all of `header`.
            h.hdr_len =
                u16::try_from(header.len()).map_err(|_| TxOffloadError::BadChecksumOffsets)?;
        }
        Ok(h)
    }
}

/// Completes a partial checksum for a copy (a capture, a device without
/// checksum offload): the Internet checksum of `packet[start..]` with the
/// field at `field` holding the pseudo-header sum, as the kernel's
/// `skb_checksum_help` does. `None` when the offsets lie outside the packet.
pub fn complete_checksum(packet: &[u8], start: u16, field: u16) -> Option<u16> {
    let (start, field) = (usize::from(start), usize::from(field));
    if start > field || field + 2 > packet.len() {
        return None;
    }
    let mut sum: u64 = 0;
    let data = &packet[start..];
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        sum += (v >> 32) + (v & 0xffff_ffff);
    }
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        sum += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    Some(!(sum as u16))
}

/// A copy of `parts` (one packet in pieces) with its partial checksum at
/// `field` completed ([`complete_checksum`]): for a packet that leaves the
/// offload path whole (a capture of a sent packet, the non-TCP queue).
/// `None` when the offsets lie outside the packet.
pub fn completed_copy(parts: &[&[u8]], start: u16, field: u16) -> Option<Vec<u8>> {
    let mut whole = parts.concat();
    let sum = complete_checksum(&whole, start, field)?;
    let f = usize::from(field);
    whole[f..f + 2].copy_from_slice(&sum.to_be_bytes());
    Some(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_in_host_order() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV6 | GSO_ECN,
            hdr_len: 74,
            gso_size: 1428,
            csum_start: 40,
            csum_offset: 16,
        };
        assert_eq!(VnetHdr::parse(&h.emit()), Some(h));
        assert!(h.is_gso());
        assert_eq!(VnetHdr::parse(&[0u8; 9]), None);
        // x86 and other little-endian hosts: the kernel's legacy layout.
        if cfg!(target_endian = "little") {
            assert_eq!(h.emit()[4..6], 1428u16.to_le_bytes());
        }
    }

    #[test]
    fn received_flags_map_to_offload_metadata() {
        let plain = VnetHdr::default().rx_offload(100);
        assert_eq!(plain, Offload::default());
        let valid = VnetHdr {
            flags: F_DATA_VALID,
            ..VnetHdr::default()
        };
        assert!(valid.rx_offload(100).csum_verified);
        let gro = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 9999, // never trusted
            gso_size: 1448,
            csum_start: 20,
            csum_offset: 16,
        };
        let m = gro.rx_offload(20 + 32 + 20_000);
        assert_eq!(m.gso_size, Some(1448));
        assert_eq!(m.csum_partial, Some((20, 36)));
        assert!(m.csum_verified);
        // Offsets past the packet: trusted as the kernel said, but no place
        // to complete.
        assert_eq!(gro.rx_offload(30).csum_partial, None);
    }

    #[test]
    fn transmit_requests_become_headers_or_clear_errors() {
        let v4 = [0x45u8; 40];
        let h = VnetHdr::for_tx(&Offload::default(), &v4, 100).unwrap();
        assert_eq!(h, VnetHdr::default());
        let partial = Offload {
            csum_partial: Some((20, 36)),
            ..Offload::default()
        };
        let h = VnetHdr::for_tx(&partial, &v4, 100).unwrap();
        assert_eq!(
            (h.flags, h.csum_start, h.csum_offset),
            (F_NEEDS_CSUM, 20, 16)
        );
        let tso = Offload {
            gso_size: Some(1448),
            ..partial
        };
        let h = VnetHdr::for_tx(&tso, &v4, 3000).unwrap();
        assert_eq!((h.gso_type, h.gso_size, h.hdr_len), (GSO_TCPV4, 1448, 40));
        let mut v6 = [0u8; 60];
        v6[0] = 0x60;
        let tso6 = Offload {
            gso_size: Some(1428),
            csum_partial: Some((40, 56)),
            ..Offload::default()
        };
        assert_eq!(
            VnetHdr::for_tx(&tso6, &v6, 3000).unwrap().gso_type,
            GSO_TCPV6
        );
        assert_eq!(
            VnetHdr::for_tx(
                &Offload {
                    gso_size: Some(1448),
                    ..Offload::default()
                },
                &v4,
                3000
            ),
            Err(TxOffloadError::GsoWithoutPartialChecksum)
        );
        assert_eq!(
            VnetHdr::for_tx(
                &Offload {
                    csum_partial: Some((20, 99)),
                    ..Offload::default()
                },
                &v4,
                100
            ),
            Err(TxOffloadError::BadChecksumOffsets)
        );
        assert_eq!(
            VnetHdr::for_tx(&tso, &[0x20; 40], 3000),
            Err(TxOffloadError::GsoNotIp)
        );
    }

    /// A hand-made TCP segment (10.0.0.1:80 → 10.0.0.2:40000, odd length):
    /// the pseudo-header sum in the field, then completed, gives the checksum
    /// a naive reference computes over pseudo-header and segment.
    #[test]
    fn completing_a_partial_checksum_matches_the_full_one() {
        let mut p = vec![
            0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // IP
            0, 80, 0x9c, 0x40, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
        ];
        p.extend((0..1001u32).map(|i| (i * 7) as u8)); // odd length
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        let full = |p: &[u8]| {
            // The reference: pseudo-header + segment, summed naively.
            let mut sum: u32 = 0;
            for c in [&p[12..16], &p[16..20]] {
                sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
                sum += u32::from(u16::from_be_bytes([c[2], c[3]]));
            }
            sum += 6 + u32::from(total - 20);
            for c in p[20..].chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            !(sum as u16)
        };
        let want = full(&p);
        // The pseudo-header sum (not complemented), as the kernel leaves it.
        let mut pseudo: u32 = 0;
        for c in [&p[12..16], &p[16..20]] {
            pseudo += u32::from(u16::from_be_bytes([c[0], c[1]]));
            pseudo += u32::from(u16::from_be_bytes([c[2], c[3]]));
        }
        pseudo += 6 + u32::from(total - 20);
        while pseudo > 0xffff {
            pseudo = (pseudo & 0xffff) + (pseudo >> 16);
        }
        p[36..38].copy_from_slice(&(pseudo as u16).to_be_bytes());
        assert_eq!(complete_checksum(&p, 20, 36), Some(want));
        assert_eq!(complete_checksum(&p, 20, p.len() as u16), None);
        assert_eq!(complete_checksum(&p, 40, 36), None);
    }
}

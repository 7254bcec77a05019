//! The IPv4 header (RFC 791), as far as carrying TCP needs it: options are
//! skipped, fragments are rejected.

use super::WireError;
use super::checksum::{self, Checksum};
use core::net::Ipv4Addr;

/// Byte offsets of the header fields (RFC 791 §3.1).
mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Don't Fragment, in the flags / fragment offset word.
const DF: u16 = 0x4000;
/// More Fragments.
const MF: u16 = 0x2000;
/// The fragment offset bits.
const FRAG_OFFSET: u16 = 0x1fff;

/// A read-only, zero-copy view of an IPv4 packet.
///
/// [`new_checked`](Self::new_checked) guarantees the header and the total
/// length it declares are inside the buffer; the accessors of a view made with
/// [`new_unchecked`](Self::new_unchecked) panic on a short buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checking anything.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    ///
    /// As [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the version and the lengths, so that the accessors cannot panic.
    /// Bytes after the total length (link-layer padding) are allowed.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] if the buffer is shorter than 20 bytes or than
    /// the total length, [`WireError::BadVersion`] if the version is not 4,
    /// [`WireError::BadHeaderLength`] if the IHL is below 5 or past the total
    /// length, [`WireError::BadLength`] if the total length is below 20.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.bytes().len();
        if len < Ipv4Repr::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 4 {
            return Err(WireError::BadVersion(self.version()));
        }
        let header_len = self.header_len();
        let total_len = usize::from(self.total_len());
        if header_len < Ipv4Repr::HEADER_LEN {
            return Err(WireError::BadHeaderLength);
        }
        if total_len < Ipv4Repr::HEADER_LEN {
            return Err(WireError::BadLength);
        }
        if total_len > len {
            return Err(WireError::Truncated);
        }
        if header_len > total_len {
            return Err(WireError::BadHeaderLength);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn u16_at(&self, range: core::ops::Range<usize>) -> u16 {
        let b = &self.bytes()[range];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Version nibble (4 for a valid packet).
    pub fn version(&self) -> u8 {
        self.bytes()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.bytes()[field::VER_IHL] & 0x0f) * 4
    }

    /// DSCP (upper six bits) and ECN (lower two bits).
    pub fn dscp_ecn(&self) -> u8 {
        self.bytes()[field::DSCP_ECN]
    }

    /// Total length: header plus payload.
    pub fn total_len(&self) -> u16 {
        self.u16_at(field::TOTAL_LEN)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        self.u16_at(field::IDENT)
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.u16_at(field::FLAGS_FRAG) & DF != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.u16_at(field::FLAGS_FRAG) & MF != 0
    }

    /// Fragment offset, in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        self.u16_at(field::FLAGS_FRAG) & FRAG_OFFSET
    }

    /// Whether this is a fragment (MF set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.bytes()[field::TTL]
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.bytes()[field::PROTOCOL]
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.bytes()[field::SRC];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.bytes()[field::DST];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Whether the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(&self.bytes()[..self.header_len()])
    }

    /// The payload: from the end of the header to the total length (trailing
    /// link-layer padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.bytes()[self.header_len()..usize::from(self.total_len())]
    }
}

/// A validated IPv4 header carrying one unfragmented payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol of the payload (6 for TCP).
    pub protocol: u8,
    /// Payload length in bytes (total length minus header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// The DSCP / ECN byte (the old TOS byte, `IP_TOS`).
    pub dscp_ecn: u8,
}

impl Ipv4Repr {
    /// Length of the header this crate emits (no options).
    pub const HEADER_LEN: usize = 20;

    /// Parses an IPv4 packet, returning the header and its length (options
    /// included): the payload is `packet[header_len..header_len + payload_len]`.
    /// Options are skipped; bytes after the total length are ignored. The
    /// header checksum is always verified (it is cheap, and no device offloads
    /// it on receive).
    ///
    /// # Errors
    ///
    /// Those of [`Ipv4Packet::check_len`], then [`WireError::BadChecksum`],
    /// then [`WireError::Fragmented`] for a fragment (not reassembled).
    pub fn parse(packet: &[u8]) -> Result<(Ipv4Repr, usize), WireError> {
        let packet = Ipv4Packet::new_checked(packet)?;
        if !packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        if packet.is_fragment() {
            return Err(WireError::Fragmented);
        }
        let header_len = packet.header_len();
        let repr = Ipv4Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - header_len,
            ttl: packet.ttl(),
            dscp_ecn: packet.dscp_ecn(),
        };
        Ok((repr, header_len))
    }

    /// Length of the emitted header.
    pub const fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }

    /// Writes a 20-byte header into `buf[..20]`: no options, DSCP / ECN from
    /// [`dscp_ecn`](Self::dscp_ecn),
    /// identification zero with Don't Fragment set (RFC 6864 §4.1: an atomic
    /// datagram's ID has no meaning), checksum computed.
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than 20 bytes, or `20 + payload_len` exceeds 65535
    /// (callers size segments from the MTU, so this is an internal invariant).
    pub fn emit(&self, buf: &mut [u8]) {
        let total_len = u16::try_from(Self::HEADER_LEN + self.payload_len)
            .expect("IPv4 emit invariant: header + payload fit the 16-bit total length");
        let buf = &mut buf[..Self::HEADER_LEN];
        buf[field::VER_IHL] = 0x45;
        buf[field::DSCP_ECN] = self.dscp_ecn;
        buf[field::TOTAL_LEN].copy_from_slice(&total_len.to_be_bytes());
        buf[field::IDENT].copy_from_slice(&[0, 0]);
        buf[field::FLAGS_FRAG].copy_from_slice(&DF.to_be_bytes());
        buf[field::TTL] = self.ttl;
        buf[field::PROTOCOL] = self.protocol;
        buf[field::CHECKSUM].copy_from_slice(&[0, 0]);
        buf[field::SRC].copy_from_slice(&self.src.octets());
        buf[field::DST].copy_from_slice(&self.dst.octets());
        let mut sum = Checksum::new();
        sum.add_bytes(buf);
        buf[field::CHECKSUM].copy_from_slice(&sum.finish().to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src: Ipv4Addr::new(192, 168, 1, 1),
            dst: Ipv4Addr::new(192, 168, 1, 2),
            protocol: 6,
            payload_len: 4,
            ttl: 64,
            dscp_ecn: 0xb8,
        }
    }

    #[test]
    fn emit_parse_round_trip_with_padding() {
        let mut buf = [0xaau8; 30]; // 4 bytes of payload, then 6 of padding
        repr().emit(&mut buf);
        assert_eq!(Ipv4Repr::parse(&buf), Ok((repr(), 20)));
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.dont_frag() && !p.is_fragment());
        assert_eq!(p.payload().len(), 4);
    }

    #[test]
    fn options_are_skipped() {
        let mut buf = [0u8; 28];
        repr().emit(&mut buf);
        buf[0] = 0x46; // IHL 6: one word of options (NOPs)
        buf[2..4].copy_from_slice(&28u16.to_be_bytes());
        buf[20..24].copy_from_slice(&[1, 1, 1, 0]);
        buf[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&buf[..24]);
        buf[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(Ipv4Repr::parse(&buf), Ok((repr(), 24)));
    }

    #[test]
    fn rejects_bad_headers() {
        let mut buf = [0u8; 24];
        repr().emit(&mut buf);
        let fix = |b: &mut [u8; 24]| {
            b[10..12].copy_from_slice(&[0, 0]);
            let c = checksum::checksum(&b[..20]);
            b[10..12].copy_from_slice(&c.to_be_bytes());
        };
        let mut b = buf;
        b[0] = 0x65;
        assert_eq!(Ipv4Repr::parse(&b), Err(WireError::BadVersion(6)));
        let mut b = buf;
        b[0] = 0x44;
        assert_eq!(Ipv4Repr::parse(&b), Err(WireError::BadHeaderLength));
        let mut b = buf;
        b[0] = 0x46;
        b[2..4].copy_from_slice(&22u16.to_be_bytes());
        assert_eq!(Ipv4Repr::parse(&b), Err(WireError::BadHeaderLength));
        let mut b = buf;
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Ipv4Repr::parse(&b), Err(WireError::BadLength));
        let mut b = buf;
        b[2..4].copy_from_slice(&25u16.to_be_bytes());
        assert_eq!(Ipv4Repr::parse(&b), Err(WireError::Truncated));
        let mut b = buf;
        b[15] ^= 1;
        assert_eq!(Ipv4Repr::parse(&b), Err(WireError::BadChecksum));
        let mut b = buf;
        b[6] = 0x20; // MF
        fix(&mut b);
        assert_eq!(Ipv4Repr::parse(&b), Err(WireError::Fragmented));
        let mut b = buf;
        b[6..8].copy_from_slice(&0x4001u16.to_be_bytes()); // DF with offset 8
        fix(&mut b);
        assert_eq!(Ipv4Repr::parse(&b), Err(WireError::Fragmented));
    }

    #[test]
    #[should_panic(expected = "IPv4 emit invariant")]
    fn emit_panics_on_oversized_payload() {
        let r = Ipv4Repr {
            payload_len: 65_516,
            ..repr()
        };
        r.emit(&mut [0u8; 20]);
    }
}

//! The IPv6 fixed header (RFC 8200 §3). Extension headers are not walked: the
//! next header is reported as is, and anything but TCP is rejected by the
//! caller ([`super::ip::parse_ip_tcp`]).

use super::WireError;
use core::net::Ipv6Addr;

/// Byte offsets of the header fields (RFC 8200 §3).
mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// A read-only, zero-copy view of an IPv6 packet.
///
/// [`new_checked`](Self::new_checked) guarantees the fixed header and the
/// payload length it declares are inside the buffer; the accessors of a view
/// made with [`new_unchecked`](Self::new_unchecked) panic on a short buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer` without checking anything.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
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
    /// Bytes after the payload length (link-layer padding) are allowed.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] if the buffer is shorter than 40 bytes or than
    /// the header plus the payload length, [`WireError::BadVersion`] if the
    /// version is not 6.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.bytes().len();
        if len < Ipv6Repr::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 6 {
            return Err(WireError::BadVersion(self.version()));
        }
        if Ipv6Repr::HEADER_LEN + usize::from(self.payload_len()) > len {
            return Err(WireError::Truncated);
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

    fn first_word(&self) -> u32 {
        let b = &self.bytes()[field::VER_TC_FLOW];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Version nibble (6 for a valid packet).
    pub fn version(&self) -> u8 {
        self.bytes()[0] >> 4
    }

    /// Traffic class (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        (self.first_word() >> 20) as u8
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        self.first_word() & 0x000f_ffff
    }

    /// Payload length: everything after the fixed header.
    pub fn payload_len(&self) -> u16 {
        let b = &self.bytes()[field::PAYLOAD_LEN];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Next header (the protocol of the payload when there are no extension
    /// headers).
    pub fn next_header(&self) -> u8 {
        self.bytes()[field::NEXT_HEADER]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.bytes()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        addr(&self.bytes()[field::SRC])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr(&self.bytes()[field::DST])
    }

    /// The payload: the payload length's worth of bytes after the fixed header.
    pub fn payload(&self) -> &[u8] {
        &self.bytes()[Ipv6Repr::HEADER_LEN..Ipv6Repr::HEADER_LEN + usize::from(self.payload_len())]
    }
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(b);
    Ipv6Addr::from(octets)
}

/// A validated IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next header (6 for TCP; extension headers are not walked).
    pub next_header: u8,
    /// Payload length in bytes.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// The traffic class (`IPV6_TCLASS`).
    pub traffic_class: u8,
}

impl Ipv6Repr {
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = 40;

    /// Parses an IPv6 packet, returning the header and its length (always 40):
    /// the payload is `packet[40..40 + payload_len]`; bytes after it are
    /// ignored. The flow label is not kept.
    ///
    /// # Errors
    ///
    /// Those of [`Ipv6Packet::check_len`].
    pub fn parse(packet: &[u8]) -> Result<(Ipv6Repr, usize), WireError> {
        let packet = Ipv6Packet::new_checked(packet)?;
        let repr = Ipv6Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
        };
        Ok((repr, Self::HEADER_LEN))
    }

    /// Length of the emitted header.
    pub const fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }

    /// Writes the 40-byte header into `buf[..40]`: the traffic class from
    /// [`traffic_class`](Self::traffic_class), flow label zero.
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than 40 bytes, or `payload_len` exceeds 65535
    /// (jumbograms are not supported; callers size segments from the MTU, so
    /// this is an internal invariant).
    pub fn emit(&self, buf: &mut [u8]) {
        let payload_len = u16::try_from(self.payload_len)
            .expect("IPv6 emit invariant: payload fits the 16-bit payload length");
        let buf = &mut buf[..Self::HEADER_LEN];
        let tc = self.traffic_class;
        buf[field::VER_TC_FLOW].copy_from_slice(&[0x60 | tc >> 4, (tc & 0x0f) << 4, 0, 0]);
        buf[field::PAYLOAD_LEN].copy_from_slice(&payload_len.to_be_bytes());
        buf[field::NEXT_HEADER] = self.next_header;
        buf[field::HOP_LIMIT] = self.hop_limit;
        buf[field::SRC].copy_from_slice(&self.src.octets());
        buf[field::DST].copy_from_slice(&self.dst.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr() -> Ipv6Repr {
        Ipv6Repr {
            src: "fd00::1".parse().unwrap(),
            dst: "fd00::2".parse().unwrap(),
            next_header: 6,
            payload_len: 3,
            hop_limit: 64,
            traffic_class: 0,
        }
    }

    #[test]
    fn emit_parse_round_trip_with_padding() {
        let mut buf = [0xeeu8; 48];
        repr().emit(&mut buf);
        assert_eq!(Ipv6Repr::parse(&buf), Ok((repr(), 40)));
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            (p.traffic_class(), p.flow_label(), p.payload().len()),
            (0, 0, 3)
        );
    }

    #[test]
    fn rejects_bad_headers() {
        let mut buf = [0u8; 43];
        repr().emit(&mut buf);
        assert_eq!(Ipv6Repr::parse(&buf[..42]), Err(WireError::Truncated));
        assert_eq!(Ipv6Repr::parse(&buf[..39]), Err(WireError::Truncated));
        buf[0] = 0x40;
        assert_eq!(Ipv6Repr::parse(&buf), Err(WireError::BadVersion(4)));
    }

    #[test]
    fn traffic_class_round_trips() {
        let r = Ipv6Repr {
            traffic_class: 0xb9,
            ..repr()
        };
        let mut buf = [0u8; 43];
        r.emit(&mut buf);
        assert_eq!(&buf[..4], &[0x6b, 0x90, 0, 0]);
        assert_eq!(Ipv6Repr::parse(&buf), Ok((r, 40)));
    }

    #[test]
    fn traffic_class_and_flow_label() {
        let mut buf = [0u8; 43];
        repr().emit(&mut buf);
        buf[..4].copy_from_slice(&[0x6a, 0xb1, 0x23, 0x45]);
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!((p.traffic_class(), p.flow_label()), (0xab, 0x12345));
    }
}

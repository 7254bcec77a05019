//! The segment codec: zero-copy views and validated representations of TCP,
//! IPv4 and IPv6 headers, and the Internet checksum.
//!
//! Shapes follow smoltcp's `wire`: a view over bytes with field accessors, and a
//! `Repr` with `parse` / `emit` / `header_len`. Checksums are computed and
//! checked in one place ([`checksum`]).

pub mod checksum;
pub mod icmp;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;

pub use ip::{
    ParsedSegment, emit_ip_tcp, emit_ip_tcp_gather, emit_ip_tcp_partial, emit_ip_tcp_tos,
    parse_ip_tcp,
};
pub use ipv4::Ipv4Repr;
pub use ipv6::Ipv6Repr;
pub use tcp::{SackBlocks, TcpFlags, TcpOptions, TcpPacket, TcpRepr};

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;

/// Why a packet or segment could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer ends before the header (or the length it declares) does.
    #[error("truncated packet")]
    Truncated,
    /// The IP version nibble is neither 4 nor 6 (or not the one expected).
    #[error("bad IP version {0}")]
    BadVersion(u8),
    /// The IPv4 IHL is below 5 or points past the packet.
    #[error("bad IPv4 header length")]
    BadHeaderLength,
    /// The IP total / payload length disagrees with the buffer.
    #[error("bad IP length field")]
    BadLength,
    /// The TCP data offset is below 5 or points past the segment.
    #[error("bad TCP data offset")]
    BadDataOffset,
    /// The IPv4 header checksum or the TCP checksum does not verify.
    #[error("bad checksum")]
    BadChecksum,
    /// A TCP option's length is malformed, or a known option has the wrong size.
    #[error("bad TCP option")]
    BadOption,
    /// An IPv4 fragment (MF set or a non-zero offset); reassembly is not supported.
    #[error("IP fragment")]
    Fragmented,
    /// The IP payload is not TCP (or an IPv6 extension header we do not walk).
    #[error("not TCP: protocol {0}")]
    NotTcp(u8),
    /// A source address that can never send (multicast, broadcast, unspecified).
    #[error("bad source address")]
    BadAddress,
}

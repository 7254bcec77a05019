//! TCP header and options (RFC 9293 §3.1, RFC 7323, RFC 2018).

use super::WireError;
use super::checksum::Checksum;
use crate::seq::SeqNum;
use core::fmt;
use core::net::IpAddr;

/// The TCP flag bits (low byte of the flags field).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN-Echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x80);
    /// No flags.
    pub const NONE: TcpFlags = TcpFlags(0);

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// FIN set.
    pub const fn fin(self) -> bool {
        self.0 & 0x01 != 0
    }
    /// SYN set.
    pub const fn syn(self) -> bool {
        self.0 & 0x02 != 0
    }
    /// RST set.
    pub const fn rst(self) -> bool {
        self.0 & 0x04 != 0
    }
    /// PSH set.
    pub const fn psh(self) -> bool {
        self.0 & 0x08 != 0
    }
    /// ACK set.
    pub const fn ack(self) -> bool {
        self.0 & 0x10 != 0
    }
    /// URG set.
    pub const fn urg(self) -> bool {
        self.0 & 0x20 != 0
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, o: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | o.0)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, o: TcpFlags) {
        self.0 |= o.0
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Flags in tcpdump's order and letters: `S`, `F`, `R`, `P`, `.` for ACK, …
impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::SYN, "SYN"),
            (Self::FIN, "FIN"),
            (Self::RST, "RST"),
            (Self::PSH, "PSH"),
            (Self::ACK, "ACK"),
            (Self::URG, "URG"),
            (Self::ECE, "ECE"),
            (Self::CWR, "CWR"),
        ];
        let mut first = true;
        for (flag, name) in names {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// Up to four SACK blocks (RFC 2018), each `[left, right)`.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct SackBlocks {
    blocks: [(SeqNum, SeqNum); 4],
    len: u8,
}

impl SackBlocks {
    /// No blocks.
    pub const EMPTY: SackBlocks = SackBlocks {
        blocks: [(SeqNum::new(0), SeqNum::new(0)); 4],
        len: 0,
    };

    /// Appends a block; returns `false` (and drops it) when four are held.
    pub fn push(&mut self, left: SeqNum, right: SeqNum) -> bool {
        if self.len as usize >= 4 {
            return false;
        }
        self.blocks[self.len as usize] = (left, right);
        self.len += 1;
        true
    }

    /// The blocks held.
    pub fn as_slice(&self) -> &[(SeqNum, SeqNum)] {
        &self.blocks[..self.len as usize]
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The TCP options utcp understands. Unknown options are skipped by length when
/// parsing and never emitted.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2), only meaningful on SYN.
    pub mss: Option<u16>,
    /// Window scale shift (kind 3), only on SYN; values above 14 are kept as sent
    /// (the receiver clamps, RFC 7323 §2.3).
    pub window_scale: Option<u8>,
    /// SACK permitted (kind 4), only on SYN.
    pub sack_permitted: bool,
    /// SACK blocks (kind 5).
    pub sack: SackBlocks,
    /// Timestamps (kind 8): (TSval, TSecr).
    pub timestamps: Option<(u32, u32)>,
}

/// A validated TCP header: every field but the checksum and data offset, which
/// are derived when emitting.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number of the first octet (or of the SYN).
    pub seq: SeqNum,
    /// Acknowledgment number; meaningful only when `flags.ack()`.
    pub ack: SeqNum,
    /// Flag bits.
    pub flags: TcpFlags,
    /// The raw (unscaled) window field.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Parsed options.
    pub options: TcpOptions,
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;
/// Most option bytes a header can hold (data offset 15 gives a 60-byte header).
pub const MAX_OPTIONS_LEN: usize = 40;
/// The longest header: 20 bytes and 40 of options.
pub(super) const MAX_HEADER_LEN: usize = HEADER_LEN + MAX_OPTIONS_LEN;

/// Byte offsets of the fixed header fields (RFC 9293 §3.1).
mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Option kinds (IANA "TCP Option Kind Numbers").
mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A read-only, zero-copy view of a TCP segment (header, options and payload).
///
/// Make it with [`new_checked`](Self::new_checked), which guarantees that the
/// fixed header and the options the data offset declares are inside the buffer;
/// every accessor then reads straight from the bytes. The accessors of a view
/// made with [`new_unchecked`](Self::new_unchecked) panic on a buffer that is
/// too short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checking anything.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] if the buffer is shorter than 20 bytes,
    /// [`WireError::BadDataOffset`] if the data offset is below 5 or the header
    /// it declares runs past the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the accessors cannot panic.
    ///
    /// # Errors
    ///
    /// As [`new_checked`](Self::new_checked).
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN || header_len > len {
            return Err(WireError::BadDataOffset);
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

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(&self.bytes()[field::SRC_PORT])
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(&self.bytes()[field::DST_PORT])
    }

    /// Sequence number.
    pub fn seq_number(&self) -> SeqNum {
        SeqNum::new(be32(&self.bytes()[field::SEQ]))
    }

    /// Acknowledgment number (meaningful only with ACK set).
    pub fn ack_number(&self) -> SeqNum {
        SeqNum::new(be32(&self.bytes()[field::ACK]))
    }

    /// Data offset: the header length in 32-bit words.
    pub fn data_offset(&self) -> u8 {
        self.bytes()[field::DATA_OFFSET] >> 4
    }

    /// Header length in bytes (data offset × 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.data_offset()) * 4
    }

    /// Flag bits (the four reserved bits before them are not included).
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.bytes()[field::FLAGS])
    }

    /// The raw (unscaled) window field.
    pub fn window_len(&self) -> u16 {
        be16(&self.bytes()[field::WINDOW])
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        be16(&self.bytes()[field::CHECKSUM])
    }

    /// Urgent pointer.
    pub fn urgent(&self) -> u16 {
        be16(&self.bytes()[field::URGENT])
    }

    /// The option bytes, padding included.
    pub fn options(&self) -> &[u8] {
        &self.bytes()[HEADER_LEN..self.header_len()]
    }

    /// The payload: everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.bytes()[self.header_len()..]
    }

    /// Whether the checksum verifies over the pseudo-header of `src` → `dst`,
    /// the header and the payload (the whole buffer is the segment).
    ///
    /// # Panics
    ///
    /// If `src` and `dst` are of different IP families.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let segment = self.bytes();
        // An IP payload longer than u32 cannot exist; saturate rather than wrap.
        let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
        let mut sum = Checksum::pseudo_header(src, dst, super::IPPROTO_TCP, len);
        sum.add_bytes(segment);
        sum.is_valid()
    }
}

/// Writes option bytes front to back.
struct Cursor<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }

    fn put_u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }

    fn put_u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }
}

impl TcpOptions {
    /// Parses the option bytes of a header (between the fixed header and the
    /// data offset).
    ///
    /// EOL ends the list; NOP is skipped; MSS, window scale, SACK-permitted,
    /// SACK and timestamps are decoded (a repeated option: the last one wins);
    /// other kinds are skipped by their length.
    ///
    /// # Errors
    ///
    /// [`WireError::BadOption`] if an option's length byte is missing, below 2
    /// or runs past the end, or a known option has the wrong length (MSS 4,
    /// window scale 3, SACK-permitted 2, SACK 2 + 8n with n in 1..=4,
    /// timestamps 10).
    ///
    /// This is the strict check (for diagnostics and tests); segments are
    /// decoded with [`TcpOptions::parse_lenient`], as Linux decodes them.
    pub fn parse(bytes: &[u8]) -> Result<TcpOptions, WireError> {
        Self::decode(bytes, true)
    }

    /// Parses option bytes as Linux's `tcp_parse_options` does, never failing:
    /// a structural error (a length byte missing, below 2, or past the end)
    /// stops parsing and keeps what was read; a known option of the wrong
    /// length is skipped by its length; an MSS of 0 counts as absent (the
    /// peer then gets the RFC 9293 §3.7.1 default, 536 or 1220).
    ///
    /// ```
    /// use utcp_proto::wire::TcpOptions;
    /// // MSS 1400, then window scale with length 4 (skipped), then SACK-permitted.
    /// let o = TcpOptions::parse_lenient(&[2, 4, 0x05, 0x78, 3, 4, 7, 0, 4, 2]);
    /// assert_eq!((o.mss, o.window_scale, o.sack_permitted), (Some(1400), None, true));
    /// // A length byte running past the end stops parsing: what came before stays.
    /// let o = TcpOptions::parse_lenient(&[2, 4, 0x05, 0x78, 99, 40, 0]);
    /// assert_eq!(o.mss, Some(1400));
    /// // MSS 0 is treated as absent.
    /// assert_eq!(TcpOptions::parse_lenient(&[2, 4, 0, 0]).mss, None);
    /// ```
    pub fn parse_lenient(bytes: &[u8]) -> TcpOptions {
        // Never an error: every error path of `decode` is strict-only.
        Self::decode(bytes, false).unwrap_or_default()
    }

    /// The one option decoder. `strict`: a structural error or a known option
    /// of the wrong length is [`WireError::BadOption`], and MSS 0 is kept as
    /// sent; otherwise parsing stops at a structural error (keeping what was
    /// read), skips a known option of the wrong length, and drops MSS 0.
    fn decode(bytes: &[u8], strict: bool) -> Result<TcpOptions, WireError> {
        // RFC 7323 appendix A's layout, which every data segment of a
        // connection with timestamps carries (Linux's
        // `tcp_parse_aligned_timestamp`): NOP NOP TS in exactly 12 bytes.
        if let [kind::NOP, kind::NOP, kind::TIMESTAMPS, 10, ts @ ..] = bytes
            && ts.len() == 8
        {
            return Ok(TcpOptions {
                timestamps: Some((be32(&ts[..4]), be32(&ts[4..]))),
                ..TcpOptions::default()
            });
        }
        let mut options = TcpOptions::default();
        let mut i = 0;
        while i < bytes.len() {
            let kind = bytes[i];
            match kind {
                kind::EOL => break,
                kind::NOP => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let len = bytes.get(i + 1).map_or(0, |&l| usize::from(l));
            if len < 2 || len > bytes.len() - i {
                if strict {
                    return Err(WireError::BadOption);
                }
                break;
            }
            let body = &bytes[i + 2..i + len];
            match (kind, body.len()) {
                (kind::MSS, 2) => {
                    options.mss = Some(be16(body)).filter(|&m| strict || m != 0);
                }
                (kind::WINDOW_SCALE, 1) => options.window_scale = Some(body[0]),
                (kind::SACK_PERMITTED, 0) => options.sack_permitted = true,
                (kind::SACK, n) if n > 0 && n % 8 == 0 && n <= 32 => {
                    let mut sack = SackBlocks::EMPTY;
                    for block in body.chunks_exact(8) {
                        sack.push(
                            SeqNum::new(be32(&block[..4])),
                            SeqNum::new(be32(&block[4..])),
                        );
                    }
                    options.sack = sack;
                }
                (kind::TIMESTAMPS, 8) => {
                    options.timestamps = Some((be32(&body[..4]), be32(&body[4..])))
                }
                (
                    kind::MSS
                    | kind::WINDOW_SCALE
                    | kind::SACK_PERMITTED
                    | kind::SACK
                    | kind::TIMESTAMPS,
                    _,
                ) if strict => return Err(WireError::BadOption),
                _ => {} // unknown kind, or (lenient) a known one of the wrong length: skipped
            }
            i += len;
        }
        Ok(options)
    }

    /// Bytes taken by everything but the SACK option: MSS, then SACK-permitted
    /// and timestamps, then window scale, each padded to 4 bytes with NOPs.
    fn fixed_len(&self) -> usize {
        let mss = if self.mss.is_some() { 4 } else { 0 };
        let ts_sack_perm = match (self.timestamps.is_some(), self.sack_permitted) {
            (true, _) => 12,
            (false, true) => 4,
            (false, false) => 0,
        };
        let ws = if self.window_scale.is_some() { 4 } else { 0 };
        mss + ts_sack_perm + ws
    }

    /// How many of the SACK blocks [`emit`](Self::emit) writes: all of them, or
    /// as many as fit in 40 option bytes beside the other options (at least two
    /// always fit; three beside timestamps alone, as Linux sends).
    pub fn sack_blocks_emitted(&self) -> usize {
        if self.sack.is_empty() {
            return 0;
        }
        let room = MAX_OPTIONS_LEN - self.fixed_len() - 4; // NOP NOP kind len
        self.sack.len().min(room / 8)
    }

    /// Bytes the options take when emitted, a multiple of 4, at most 40.
    pub fn encoded_len(&self) -> usize {
        let sack = match self.sack_blocks_emitted() {
            0 => 0,
            n => 4 + 8 * n,
        };
        self.fixed_len() + sack
    }

    /// Writes the options into `buf[..self.encoded_len()]` and returns that
    /// length. Every option that is set is written, in the Linux layout:
    /// `MSS`, `SACK_PERM TS` (or `NOP NOP TS`, or `NOP NOP SACK_PERM`),
    /// `NOP WS`, `NOP NOP SACK`; the layout needs no trailing padding.
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than [`encoded_len`](Self::encoded_len).
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        if let TcpOptions {
            mss: None,
            window_scale: None,
            sack_permitted: false,
            timestamps: Some((tsval, tsecr)),
            sack,
        } = self
            && sack.is_empty()
        {
            // What every data segment and ACK of a connection with
            // timestamps carries (RFC 7323 appendix A): NOP NOP TS.
            let b: &mut [u8; 12] = (&mut buf[..12]).try_into().unwrap();
            b[..4].copy_from_slice(&[kind::NOP, kind::NOP, kind::TIMESTAMPS, 10]);
            b[4..8].copy_from_slice(&tsval.to_be_bytes());
            b[8..].copy_from_slice(&tsecr.to_be_bytes());
            return 12;
        }
        let len = self.encoded_len();
        let mut w = Cursor {
            buf: &mut buf[..len],
            pos: 0,
        };
        if let Some(mss) = self.mss {
            w.put(&[kind::MSS, 4]);
            w.put_u16(mss);
        }
        match (self.timestamps, self.sack_permitted) {
            (Some((tsval, tsecr)), sack_permitted) => {
                if sack_permitted {
                    w.put(&[kind::SACK_PERMITTED, 2]);
                } else {
                    w.put(&[kind::NOP, kind::NOP]);
                }
                w.put(&[kind::TIMESTAMPS, 10]);
                w.put_u32(tsval);
                w.put_u32(tsecr);
            }
            (None, true) => w.put(&[kind::NOP, kind::NOP, kind::SACK_PERMITTED, 2]),
            (None, false) => {}
        }
        if let Some(shift) = self.window_scale {
            w.put(&[kind::NOP, kind::WINDOW_SCALE, 3, shift]);
        }
        let blocks = self.sack_blocks_emitted();
        if blocks > 0 {
            // At most 4 blocks: 2 + 32 fits in the length byte.
            w.put(&[kind::NOP, kind::NOP, kind::SACK, (2 + 8 * blocks) as u8]);
            for &(left, right) in &self.sack.as_slice()[..blocks] {
                w.put_u32(left.get());
                w.put_u32(right.get());
            }
        }
        debug_assert_eq!(w.pos, len);
        len
    }
}

impl TcpRepr {
    /// Parses a whole TCP segment (the IP payload, exactly) sent from `src` to
    /// `dst`, returning the header and its length: the payload is
    /// `segment[header_len..]`.
    ///
    /// With `verify_checksum` false the checksum is not looked at (for devices
    /// that have verified it already).
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] (shorter than 20 bytes),
    /// [`WireError::BadDataOffset`] (data offset below 5 or past the segment),
    /// [`WireError::BadChecksum`], checked in that order. Options never fail
    /// a segment: they are decoded by [`TcpOptions::parse_lenient`].
    ///
    /// # Panics
    ///
    /// If `src` and `dst` are of different IP families and `verify_checksum`
    /// is set.
    pub fn parse(
        segment: &[u8],
        src: IpAddr,
        dst: IpAddr,
        verify_checksum: bool,
    ) -> Result<(TcpRepr, usize), WireError> {
        let packet = TcpPacket::new_checked(segment)?;
        if verify_checksum && !packet.verify_checksum(src, dst) {
            return Err(WireError::BadChecksum);
        }
        let repr = TcpRepr::from_packet(&packet)?;
        Ok((repr, packet.header_len()))
    }

    /// The header of a length-checked view, options decoded leniently (see
    /// [`TcpOptions::parse_lenient`]); the checksum is not looked at.
    ///
    /// # Errors
    ///
    /// None today: the `Result` leaves room for header checks to come.
    pub fn from_packet<T: AsRef<[u8]>>(packet: &TcpPacket<T>) -> Result<TcpRepr, WireError> {
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq: packet.seq_number(),
            ack: packet.ack_number(),
            flags: packet.flags(),
            window: packet.window_len(),
            urgent: packet.urgent(),
            options: TcpOptions::parse_lenient(packet.options()),
        })
    }

    /// Header length when emitted: 20 bytes plus the options (a multiple of 4,
    /// at most 60 in all; SACK blocks that do not fit are left out).
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.encoded_len()
    }

    /// Writes the header into `buf[..self.header_len()]`, checksum included,
    /// for a segment from `src` to `dst` carrying `payload` (which is summed but
    /// not copied: the caller places it after the header).
    ///
    /// The reserved bits are written as zero; options are laid out as
    /// [`TcpOptions::emit`] describes.
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than [`header_len`](Self::header_len), or `src` and
    /// `dst` are of different IP families.
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr, payload: &[u8]) {
        self.emit_gather(buf, src, dst, &[payload]);
    }

    /// [`emit`](Self::emit) for a payload in pieces (sent as one, in order,
    /// by a gathering write), any of them of odd length.
    ///
    /// # Panics
    ///
    /// As [`emit`](Self::emit).
    pub fn emit_gather(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr, payload: &[&[u8]]) {
        let mut header = [0u8; MAX_HEADER_LEN];
        let header_len = self.emit_gather_fixed(&mut header, src, dst, payload);
        buf[..header_len].copy_from_slice(&header[..header_len]);
    }

    /// [`emit_gather`](Self::emit_gather) into a header-sized array (so
    /// every field lands at a constant offset, unchecked); returns the
    /// header length.
    #[inline]
    pub(super) fn emit_gather_fixed(
        &self,
        header: &mut [u8; MAX_HEADER_LEN],
        src: IpAddr,
        dst: IpAddr,
        payload: &[&[u8]],
    ) -> usize {
        let header_len = self.emit_header_fixed(header);
        let payload_len: usize = payload.iter().map(|p| p.len()).sum();
        let segment_len = u32::try_from(header_len + payload_len)
            .expect("TCP emit invariant: a segment is shorter than 4 GiB");
        let mut sum = Checksum::pseudo_header(src, dst, super::IPPROTO_TCP, segment_len);
        sum.add_bytes(&header[..header_len]);
        sum.add_pieces(payload);
        header[field::CHECKSUM].copy_from_slice(&sum.finish().to_be_bytes());
        header_len
    }

    /// Writes the header as [`emit`](Self::emit) does, but with a partial
    /// checksum for a device that completes it (checksum offload,
    /// `CHECKSUM_PARTIAL` in Linux's terms): the field holds the folded
    /// pseudo-header sum for a segment of `payload_len` payload bytes, not
    /// complemented (Linux's `__tcp_v4_send_check`), and the header and
    /// payload are not summed. For a super-segment the device cuts,
    /// `payload_len` is the whole payload: the device adjusts the sum for
    /// each segment's length (Linux's `tcp_gso_segment`).
    ///
    /// # Panics
    ///
    /// As [`emit`](Self::emit).
    pub fn emit_partial(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr, payload_len: usize) {
        let header_len = self.emit_header(buf);
        let segment_len = u32::try_from(header_len + payload_len)
            .expect("TCP emit invariant: a segment is shorter than 4 GiB");
        let sum = Checksum::pseudo_header(src, dst, super::IPPROTO_TCP, segment_len);
        buf[field::CHECKSUM].copy_from_slice(&sum.fold().to_be_bytes());
    }

    /// Writes every field but the checksum (left zero); returns the header
    /// length.
    fn emit_header(&self, buf: &mut [u8]) -> usize {
        let mut header = [0u8; MAX_HEADER_LEN];
        let header_len = self.emit_header_fixed(&mut header);
        buf[..header_len].copy_from_slice(&header[..header_len]);
        header_len
    }

    /// [`emit_header`](Self::emit_header) into a header-sized array.
    #[inline]
    fn emit_header_fixed(&self, buf: &mut [u8; MAX_HEADER_LEN]) -> usize {
        let header_len = HEADER_LEN + self.options.emit(&mut buf[HEADER_LEN..]);
        buf[field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        buf[field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        buf[field::SEQ].copy_from_slice(&self.seq.get().to_be_bytes());
        buf[field::ACK].copy_from_slice(&self.ack.get().to_be_bytes());
        // header_len <= 60, so the data offset fits in four bits.
        buf[field::DATA_OFFSET] = ((header_len / 4) as u8) << 4;
        buf[field::FLAGS] = self.flags.0;
        buf[field::WINDOW].copy_from_slice(&self.window.to_be_bytes());
        buf[field::CHECKSUM].copy_from_slice(&[0, 0]);
        buf[field::URGENT].copy_from_slice(&self.urgent.to_be_bytes());
        header_len
    }

    /// Sequence space the segment takes: its payload plus one for SYN and one
    /// for FIN (RFC 9293 §3.4, SEG.LEN).
    ///
    /// # Panics
    ///
    /// If `payload_len` does not fit in 32 bits (no IP packet is that long).
    pub fn segment_len(&self, payload_len: usize) -> u32 {
        let payload =
            u32::try_from(payload_len).expect("SEG.LEN invariant: payload shorter than 4 GiB");
        payload + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }
}

/// tcpdump-like: `SYN|ACK 1000:1000 ack 2000 win 65535 [mss 1460,sackOK,TS 1 0,wscale 7]`.
impl fmt::Display for TcpRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} > {} seq {}",
            self.flags, self.src_port, self.dst_port, self.seq
        )?;
        if self.flags.ack() {
            write!(f, " ack {}", self.ack)?;
        }
        write!(f, " win {}", self.window)?;
        if self.flags.urg() {
            write!(f, " urg {}", self.urgent)?;
        }
        let o = &self.options;
        if o.encoded_len() > 0 {
            let mut sep = " [";
            if let Some(mss) = o.mss {
                write!(f, "{sep}mss {mss}")?;
                sep = ",";
            }
            if o.sack_permitted {
                write!(f, "{sep}sackOK")?;
                sep = ",";
            }
            if let Some((tsval, tsecr)) = o.timestamps {
                write!(f, "{sep}TS val {tsval} ecr {tsecr}")?;
                sep = ",";
            }
            if let Some(shift) = o.window_scale {
                write!(f, "{sep}wscale {shift}")?;
                sep = ",";
            }
            if !o.sack.is_empty() {
                write!(f, "{sep}sack")?;
                for (left, right) in o.sack.as_slice() {
                    write!(f, " {left}:{right}")?;
                }
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    fn syn() -> TcpRepr {
        TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: SeqNum::new(1000),
            ack: SeqNum::new(0),
            flags: TcpFlags::SYN,
            window: 64240,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                sack: SackBlocks::EMPTY,
                timestamps: Some((1, 0)),
            },
        }
    }

    #[test]
    fn linux_syn_option_layout() {
        let mut buf = [0u8; 60];
        let n = syn().options.emit(&mut buf);
        assert_eq!(
            &buf[..n],
            &[
                2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7
            ]
        );
        assert_eq!(syn().header_len(), 40);
    }

    #[test]
    fn sack_blocks_are_dropped_to_fit() {
        let mut o = TcpOptions {
            timestamps: Some((5, 6)),
            ..Default::default()
        };
        for i in 0..4 {
            o.sack.push(SeqNum::new(i * 100), SeqNum::new(i * 100 + 50));
        }
        assert_eq!(o.sack_blocks_emitted(), 3);
        assert_eq!(o.encoded_len(), 12 + 4 + 24);
        o.timestamps = None;
        assert_eq!(o.sack_blocks_emitted(), 4);
        assert_eq!(o.encoded_len(), 36);
        let full = TcpOptions {
            sack: o.sack,
            ..syn().options
        };
        assert_eq!(full.sack_blocks_emitted(), 2);
        assert_eq!(full.encoded_len(), 40);
    }

    #[test]
    fn option_errors() {
        // Length byte missing, below 2, or past the end.
        assert_eq!(TcpOptions::parse(&[2]), Err(WireError::BadOption));
        assert_eq!(TcpOptions::parse(&[99, 1, 0, 0]), Err(WireError::BadOption));
        assert_eq!(TcpOptions::parse(&[99, 5, 0, 0]), Err(WireError::BadOption));
        // Known kinds with the wrong length.
        assert_eq!(TcpOptions::parse(&[2, 3, 0, 1]), Err(WireError::BadOption));
        assert_eq!(TcpOptions::parse(&[3, 4, 0, 1]), Err(WireError::BadOption));
        assert_eq!(TcpOptions::parse(&[4, 3, 0, 1]), Err(WireError::BadOption));
        assert_eq!(TcpOptions::parse(&[5, 2, 0, 1]), Err(WireError::BadOption));
        assert_eq!(
            TcpOptions::parse(&[5, 6, 0, 0, 0, 0]),
            Err(WireError::BadOption)
        );
        assert_eq!(
            TcpOptions::parse(&[8, 8, 0, 0, 0, 0, 0, 0]),
            Err(WireError::BadOption)
        );
    }

    #[test]
    fn unknown_skipped_and_eol_stops() {
        // Unknown kind 30 (MPTCP) of length 4, then MSS, then EOL and garbage.
        let o = TcpOptions::parse(&[30, 4, 9, 9, 2, 4, 1, 0, 0, 2, 1]).unwrap();
        assert_eq!(
            o,
            TcpOptions {
                mss: Some(256),
                ..Default::default()
            }
        );
    }

    #[test]
    fn segment_len_counts_syn_and_fin() {
        let mut r = syn();
        assert_eq!(r.segment_len(0), 1);
        r.flags = TcpFlags::FIN | TcpFlags::ACK;
        assert_eq!(r.segment_len(10), 11);
        r.flags = TcpFlags::ACK;
        assert_eq!(r.segment_len(10), 10);
    }

    #[test]
    fn emit_then_parse() {
        let r = syn();
        let mut buf = [0u8; 44];
        r.emit(&mut buf, SRC, DST, b"data");
        buf[40..].copy_from_slice(b"data");
        assert_eq!(TcpRepr::parse(&buf, SRC, DST, true), Ok((r, 40)));
        assert_eq!(
            TcpRepr::parse(&buf, DST, SRC, true).map(|_| ()),
            Ok(()),
            "swapped addresses sum the same"
        );
        buf[43] ^= 0x40;
        assert_eq!(
            TcpRepr::parse(&buf, SRC, DST, true),
            Err(WireError::BadChecksum)
        );
        assert!(TcpRepr::parse(&buf, SRC, DST, false).is_ok());
    }

    #[test]
    fn display_is_readable() {
        assert_eq!(
            syn().to_string(),
            "SYN 40000 > 80 seq 1000 win 64240 [mss 1460,sackOK,TS val 1 ecr 0,wscale 7]"
        );
    }
}

//! The Internet checksum (RFC 1071) with a 64-bit accumulator, and the TCP
//! pseudo-headers of IPv4 (RFC 9293 §3.1) and IPv6 (RFC 8200 §8.1).
//!
//! The one's-complement sum of 16-bit words does not depend on how the words
//! are grouped nor on their byte order: summing 64-bit words in the
//! machine's order into a wide accumulator, folding the carries back in and
//! swapping the 16-bit result to network order at the end gives the same
//! result with an eighth of the additions (RFC 1071 §2 (A) and (B)).

use core::net::IpAddr;

/// A running Internet checksum: a one's-complement sum kept in 64 bits.
///
/// Feed it data with [`add_bytes`](Self::add_bytes), [`add_u16`](Self::add_u16)
/// and [`add_u32`](Self::add_u32) (all big-endian, network order), then take the
/// checksum field value with [`finish`](Self::finish).
///
/// Byte slices are summed as if concatenated, so only the **last** slice may
/// have an odd length: an odd trailing byte is padded with a zero byte
/// (RFC 1071 §4.1). Segments built by this crate always end with the payload.
///
/// ```
/// use utcp_proto::wire::checksum::Checksum;
/// // RFC 1071 §3 example: the sum of these bytes is 0xddf2.
/// let mut c = Checksum::new();
/// c.add_bytes(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
/// assert_eq!(c.finish(), !0xddf2);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksum(u64);

impl Checksum {
    /// An empty sum.
    pub const fn new() -> Self {
        Checksum(0)
    }

    /// Adds a 64-bit quantity with an end-around carry (one's-complement add).
    #[inline(always)]
    const fn add_u64(&mut self, v: u64) {
        let (sum, carry) = self.0.overflowing_add(v);
        self.0 = sum + carry as u64;
    }

    /// Adds `data` as big-endian 16-bit words; an odd trailing byte is padded
    /// with zero (so only the last slice of a checksummed region may be odd).
    ///
    /// The words are summed in the machine's byte order (with AVX2, where
    /// the CPU has it, 64 bytes per step; otherwise eight bytes at a time
    /// into a 128-bit accumulator), and the 64-bit sum is swapped
    /// to network order at the end: the one's-complement sum is
    /// independent of byte order (RFC 1071 §2 (B)), so a little-endian
    /// machine need not swap every word.
    #[inline]
    pub fn add_bytes(&mut self, data: &[u8]) {
        // Swapping all eight bytes swaps the bytes of each 16-bit word (and
        // reverses their order, which a sum ignores): the machine-order sum
        // becomes the network-order one without folding it first.
        self.add_u64(u64::from_be(native_sum(data).0));
    }

    /// Adds the pieces of one region in order, where any piece may be of
    /// odd length: a piece that starts at an odd offset of the region is
    /// summed byte-swapped (RFC 1071 §2 (B)), as if the pieces were one
    /// slice.
    ///
    /// ```
    /// use utcp_proto::wire::checksum::Checksum;
    /// let data = [1u8, 2, 3, 4, 5, 6, 7];
    /// let mut whole = Checksum::new();
    /// whole.add_bytes(&data);
    /// let mut parts = Checksum::new();
    /// parts.add_pieces(&[&data[..3], &data[3..]]);
    /// assert_eq!(whole.finish(), parts.finish());
    /// ```
    #[inline]
    pub fn add_pieces(&mut self, pieces: &[&[u8]]) {
        if let [piece, rest @ ..] = pieces
            && rest.iter().all(|p| p.is_empty())
        {
            // One piece (the others empty): no offset to track.
            self.add_bytes(piece);
            return;
        }
        let mut odd = false;
        for piece in pieces {
            if piece.is_empty() {
                continue;
            }
            if !odd {
                self.add_bytes(piece);
            } else {
                let mut c = Checksum::new();
                c.add_bytes(piece);
                self.add_u16(c.fold().swap_bytes());
            }
            odd ^= piece.len() % 2 == 1;
        }
    }

    /// Adds one big-endian 16-bit word.
    pub const fn add_u16(&mut self, v: u16) {
        self.add_u64(v as u64);
    }

    /// Adds a 32-bit value as two big-endian 16-bit words.
    pub const fn add_u32(&mut self, v: u32) {
        self.add_u64(v as u64);
    }

    /// Adds the bytes of an IP address (4 or 16 bytes, network order).
    pub fn add_addr(&mut self, addr: IpAddr) {
        match addr {
            IpAddr::V4(a) => self.add_u32(u32::from(a)),
            IpAddr::V6(a) => {
                let v = u128::from(a);
                self.add_u64((v >> 64) as u64);
                self.add_u64(v as u64);
            }
        }
    }

    /// The sum of the TCP/UDP pseudo-header for a segment of `len` bytes
    /// (header and payload) carried with protocol number `proto`.
    ///
    /// IPv4 (RFC 9293 §3.1): source, destination, zero, protocol, 16-bit length.
    /// IPv6 (RFC 8200 §8.1): source, destination, 32-bit length, three zero
    /// bytes, next header. Both sum to the same words when `len < 65536`.
    ///
    /// # Panics
    ///
    /// If `src` and `dst` are of different families: a segment has one IP
    /// header, so callers always pass one family (an internal invariant).
    pub fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> Checksum {
        assert!(
            src.is_ipv4() == dst.is_ipv4(),
            "pseudo-header invariant: source {src} and destination {dst} must be one IP family"
        );
        let mut c = Checksum::new();
        c.add_addr(src);
        c.add_addr(dst);
        c.add_u16(u16::from(proto));
        c.add_u32(len);
        c
    }

    /// The 16-bit one's-complement sum, carries folded in (not complemented).
    pub const fn fold(self) -> u16 {
        let mut s = self.0;
        // Each step at least halves the width; three steps reach 17 bits and a
        // fourth absorbs the last carry.
        s = (s & 0xffff_ffff) + (s >> 32);
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        s as u16
    }

    /// The checksum field value: the complement of the folded sum.
    pub const fn finish(self) -> u16 {
        !self.fold()
    }

    /// Whether data summed *including* its checksum field verifies (the
    /// folded sum is all ones).
    pub const fn is_valid(self) -> bool {
        self.fold() == 0xffff
    }
}

/// The one's-complement sum of `data` in the machine's byte order, an odd
/// trailing byte padded with zero, not folded: the AVX2 sum where the CPU
/// has it and the data is long enough for it to pay (a payload, not a
/// header), the portable one otherwise.
///
/// Inlined, so that a header's sum is specialized to its length; a
/// payload's goes to [`long_sum`].
#[inline(always)]
fn native_sum(data: &[u8]) -> Checksum {
    #[cfg(target_arch = "x86_64")]
    if data.len() >= wide::MIN_LEN {
        return long_sum(data);
    }
    portable_sum(data)
}

/// [`native_sum`] of a payload: with AVX2 where the CPU has it.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn long_sum(data: &[u8]) -> Checksum {
    if data.len() <= wide::MAX_LEN && wide::available() {
        // SAFETY: `sum_avx2` only needs the CPU to have AVX2 (its body is
        // safe code), which `available` has just checked at run time.
        return unsafe { wide::sum_avx2(data) };
    }
    portable_sum(data)
}

/// [`native_sum`] on any CPU: eight bytes at a time into a 128-bit
/// accumulator (four words per step), the carries folded back in at the end.
#[inline]
fn portable_sum(data: &[u8]) -> Checksum {
    let mut acc: u128 = 0;
    let mut blocks = data.chunks_exact(32);
    for b in &mut blocks {
        let w = |i: usize| u128::from(u64::from_ne_bytes(b[i..i + 8].try_into().unwrap()));
        acc += w(0) + w(8) + w(16) + w(24);
    }
    let mut words = blocks.remainder().chunks_exact(8);
    for w in &mut words {
        acc += u128::from(u64::from_ne_bytes(w.try_into().unwrap()));
    }
    // The last 0..8 bytes as a 4-, a 2- and a 1-byte word (the odd byte
    // padded with zero): each starts at an even offset, so it adds the same
    // 16-bit words as the zero-padded 8-byte word would, without a copy.
    let mut rest = words.remainder();
    if let Some((w, r)) = rest.split_first_chunk::<4>() {
        acc += u128::from(u32::from_ne_bytes(*w));
        rest = r;
    }
    if let Some((w, r)) = rest.split_first_chunk::<2>() {
        acc += u128::from(u16::from_ne_bytes(*w));
        rest = r;
    }
    if let [b] = rest {
        acc += u128::from(u16::from_ne_bytes([*b, 0]));
    }
    // Fold 128 → 64 bits with an end-around carry, still in machine order.
    let (lo, carry) = (acc as u64).overflowing_add((acc >> 64) as u64);
    let mut s = Checksum(lo);
    s.add_u64(carry as u64);
    s
}

/// The AVX2 sum (x86-64): 32-bit words added into sixteen 64-bit lanes,
/// which the compiler turns into `vpmovzxdq` + `vpaddq`, four instructions
/// per 32 bytes where the portable sum takes about eleven. AVX-512 is left
/// alone (valgrind, which counts our instructions, cannot run it).
#[cfg(target_arch = "x86_64")]
mod wide {
    use super::{Checksum, portable_sum};

    /// Shorter data (a header) is summed faster without the set-up.
    pub(super) const MIN_LEN: usize = 128;
    /// Each lane takes one 32-bit word per 64 bytes: up to 2^32 bytes
    /// (2^26 words per lane) a lane stays below 2^58 and the sixteen
    /// lanes' sum below 2^62.
    pub(super) const MAX_LEN: usize = 1 << 32;

    /// Whether the CPU has AVX2 (std caches the answer in a static, so
    /// this is a load and a test).
    #[inline]
    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// [`super::native_sum`] with AVX2, for `data` of at most
    /// [`MAX_LEN`] bytes.
    ///
    /// # Safety
    ///
    /// The CPU must have AVX2 ([`available`]). The body is safe code; the
    /// attribute only lets the compiler use AVX2 instructions in it.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sum_avx2(data: &[u8]) -> Checksum {
        debug_assert!(data.len() <= MAX_LEN, "AVX2 checksum: at most 2^32 bytes");
        let mut lanes = [0u64; 16];
        let mut blocks = data.chunks_exact(64);
        for b in &mut blocks {
            for (i, lane) in lanes.iter_mut().enumerate() {
                let w = u32::from_ne_bytes(b[4 * i..4 * i + 4].try_into().unwrap());
                *lane += u64::from(w);
            }
        }
        // Each lane is below 2^58 (see MAX_LEN), so their plain sum fits.
        let mut sum = portable_sum(blocks.remainder());
        sum.add_u64(lanes.iter().sum());
        sum
    }
}

/// The Internet checksum of `data` (the value to store in a checksum field
/// that was zero while summing).
pub fn checksum(data: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add_bytes(data);
    c.finish()
}

/// Whether `data`, its checksum field included, verifies.
pub fn verify(data: &[u8]) -> bool {
    let mut c = Checksum::new();
    c.add_bytes(data);
    c.is_valid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    /// RFC 1071 §1's definition, word by word with a 32-bit accumulator.
    fn naive(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in data.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
        assert_eq!(naive(&data), !0xddf2);
    }

    #[test]
    fn odd_lengths_pad_with_zero() {
        assert_eq!(checksum(&[]), 0xffff);
        assert_eq!(checksum(&[0xab]), !0xab00);
        assert_eq!(checksum(&[0x12, 0x34, 0x56]), !(0x1234 + 0x5600));
        let data: [u8; 13] = core::array::from_fn(|i| (i * 37 + 5) as u8);
        for n in 0..=data.len() {
            assert_eq!(checksum(&data[..n]), naive(&data[..n]), "length {n}");
        }
    }

    #[test]
    fn all_ones_folds_carries() {
        let data = [0xffu8; 4099];
        assert_eq!(checksum(&data), naive(&data));
        let mut c = Checksum::new();
        for _ in 0..100 {
            c.add_u32(u32::MAX);
            c.add_u16(u16::MAX);
        }
        assert_eq!(c.finish(), 0);
    }

    #[test]
    fn verify_accepts_own_checksum() {
        let mut data = [0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0, 0, 0xde, 0xad, 0xbe];
        let c = checksum(&data);
        // Store in an even-aligned field (bytes 6..8).
        data[6..8].copy_from_slice(&c.to_be_bytes());
        assert!(verify(&data));
        data[0] ^= 1;
        assert!(!verify(&data));
    }

    #[test]
    fn pseudo_header_v4_and_v6_layouts() {
        let s4 = Ipv4Addr::new(10, 0, 0, 1);
        let d4 = Ipv4Addr::new(10, 0, 0, 2);
        let mut raw = [0u8; 12];
        raw[..4].copy_from_slice(&s4.octets());
        raw[4..8].copy_from_slice(&d4.octets());
        raw[9] = 6;
        raw[10..].copy_from_slice(&40u16.to_be_bytes());
        let ph = Checksum::pseudo_header(s4.into(), d4.into(), 6, 40);
        assert_eq!(ph.finish(), naive(&raw));

        let s6: Ipv6Addr = "fd00::1".parse().unwrap();
        let d6: Ipv6Addr = "fd00:99::ffff:2".parse().unwrap();
        let mut raw = [0u8; 40];
        raw[..16].copy_from_slice(&s6.octets());
        raw[16..32].copy_from_slice(&d6.octets());
        raw[32..36].copy_from_slice(&70_000u32.to_be_bytes());
        raw[39] = 6;
        let ph = Checksum::pseudo_header(s6.into(), d6.into(), 6, 70_000);
        assert_eq!(ph.finish(), naive(&raw));
    }

    #[test]
    #[should_panic(expected = "one IP family")]
    fn pseudo_header_mixed_families_panics() {
        let _ =
            Checksum::pseudo_header(Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into(), 6, 0);
    }

    /// Deterministic bytes for the length sweeps (an LCG: no two words alike).
    fn bytes(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 24) as u8
            })
            .collect()
    }

    /// Every length from 0 to 2,000 bytes, at every alignment, through the
    /// dispatcher, the portable sum and (where the CPU has it) the AVX2 sum:
    /// all equal RFC 1071's word-by-word sum, ones (every carry) included.
    #[test]
    fn every_length_and_alignment_matches_naive() {
        let random = bytes(2_003, 7);
        let ones = vec![0xffu8; 2_003];
        for data in [&random, &ones] {
            for start in 0..4 {
                for len in 0..2_000 {
                    let d = &data[start..start + len];
                    let want = naive(d);
                    assert_eq!(checksum(d), want, "dispatch, start {start} length {len}");
                    // Both sums are in machine order: swapped to network order.
                    let net = |s: Checksum| !u16::from_be(s.fold());
                    assert_eq!(net(portable_sum(d)), want, "portable, length {len}");
                    #[cfg(target_arch = "x86_64")]
                    if wide::available() {
                        // SAFETY: AVX2 was just detected.
                        let s = unsafe { wide::sum_avx2(d) };
                        assert_eq!(net(s), want, "AVX2, start {start} length {len}");
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn matches_naive(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            prop_assert_eq!(checksum(&data), naive(&data));
        }

        #[test]
        fn split_at_even_offsets_is_the_same(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            cut in 0usize..300,
        ) {
            let cut = (cut * 2).min(data.len() & !1);
            let mut c = Checksum::new();
            c.add_bytes(&data[..cut]);
            c.add_bytes(&data[cut..]);
            prop_assert_eq!(c.finish(), naive(&data));
        }

        /// A region cut anywhere (odd offsets included) into up to three
        /// pieces sums as the whole, through either sum.
        #[test]
        fn odd_splits_are_the_same(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            a in 0usize..2000,
            b in 0usize..2000,
        ) {
            let (a, b) = (a.min(data.len()), b.min(data.len()));
            let (a, b) = (a.min(b), a.max(b));
            let mut c = Checksum::new();
            c.add_pieces(&[&data[..a], &data[a..b], &data[b..]]);
            prop_assert_eq!(c.finish(), naive(&data));
            prop_assert_eq!(checksum(&data), naive(&data));
        }

        #[test]
        fn words_equal_bytes(a in any::<u16>(), b in any::<u32>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut c = Checksum::new();
            c.add_u16(a);
            c.add_u32(b);
            c.add_bytes(&data);
            let mut raw = a.to_be_bytes().to_vec();
            raw.extend_from_slice(&b.to_be_bytes());
            raw.extend_from_slice(&data);
            prop_assert_eq!(c.finish(), naive(&raw));
        }
    }
}

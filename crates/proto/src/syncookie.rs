//! SYN cookies (RFC 4987 §3.6) in Linux's encoding (`net/ipv4/syncookies.c`,
//! `net/ipv6/syncookies.c`): while a listener's SYN queue is full its SYN is
//! answered with a SYN-ACK whose ISS encodes the connection, and no state is
//! kept; the peer's ACK of that ISS is validated and becomes an established
//! connection.
//!
//! The ISS is `H(tuple, 0) + SEG.SEQ + (count << 24) + ((H(tuple, count) +
//! mss_index) mod 2^24)`, with `H` keyed by the endpoint's secret and `count`
//! a clock that ticks every [`PERIOD`]; a cookie is valid while its count is
//! the current one or the one before (two periods, Linux's
//! `MAX_SYNCOOKIE_AGE`). The MSS is an index into a table of four common
//! values. With timestamps, the low six bits of our TSval carry the peer's
//! window scale (4 bits, 15 for none), SACK-permitted (bit 4) and ECN (bit
//! 5, always 0 here: utcp does not negotiate ECN), as Linux's
//! `cookie_init_timestamp`; without timestamps a cookie keeps the MSS only.

use crate::endpoint::FourTuple;
use crate::seq::SeqNum;
use crate::time::{Duration, Instant};
use siphasher::sip::SipHasher13;
use std::hash::Hasher;
use std::net::IpAddr;

/// The cookie clock's tick (Linux's `TCP_SYNCOOKIE_PERIOD`, 60 s).
pub(crate) const PERIOD: Duration = Duration::from_secs(60);

/// A cookie is valid while its count is this many ticks old at most, less
/// one (Linux's `MAX_SYNCOOKIE_AGE`).
const MAX_AGE: u32 = 2;

const COOKIE_BITS: u32 = 24;
const COOKIE_MASK: u32 = (1 << COOKIE_BITS) - 1;

/// Linux's `msstab` (IPv4): the MSS values a cookie can carry.
const MSS_V4: [u16; 4] = [536, 1300, 1440, 1460];
/// Linux's IPv6 `msstab`: 1280, 1480, 1500 and 9000 less 60 bytes of headers.
const MSS_V6: [u16; 4] = [1220, 1420, 1440, 8940];

/// Low TSval bits the options ride in (Linux's `TSBITS`).
const TS_BITS: u32 = 6;
const TS_MASK: u32 = (1 << TS_BITS) - 1;
/// The window-scale field's "no window scaling" value.
const TS_WSCALE_NONE: u32 = 0xf;
const TS_SACK: u32 = 1 << 4;
const TS_ECN: u32 = 1 << 5;

/// The cookie clock at `now`.
fn counter(now: Instant) -> u32 {
    (u128::from(now.as_micros()) / PERIOD.as_micros()) as u32
}

fn hash(secret: &[u8; 16], t: &FourTuple, count: u32, which: u8) -> u32 {
    let mut h = SipHasher13::new_with_key(secret);
    h.write(b"syncookie");
    h.write_u8(which);
    for ip in [t.local.ip(), t.remote.ip()] {
        match ip {
            IpAddr::V4(a) => h.write(&a.octets()),
            IpAddr::V6(a) => h.write(&a.octets()),
        }
    }
    h.write_u16(t.local.port());
    h.write_u16(t.remote.port());
    h.write_u32(count);
    h.finish() as u32
}

/// The table index for the peer's MSS: the largest entry not above it
/// (Linux: the first entry when none fits).
pub(crate) fn mss_index(peer_mss: u32, ipv6: bool) -> u32 {
    let table = if ipv6 { &MSS_V6 } else { &MSS_V4 };
    (1..table.len())
        .rev()
        .find(|&i| peer_mss >= u32::from(table[i]))
        .unwrap_or(0) as u32
}

/// The ISS that encodes a SYN of `tuple` with sequence number `sseq`
/// (`secure_tcp_syn_cookie`).
pub(crate) fn make(
    secret: &[u8; 16],
    t: &FourTuple,
    sseq: SeqNum,
    mss_index: u32,
    now: Instant,
) -> SeqNum {
    let count = counter(now);
    let v = hash(secret, t, 0, 0)
        .wrapping_add(sseq.get())
        .wrapping_add(count << COOKIE_BITS)
        .wrapping_add(hash(secret, t, count, 1).wrapping_add(mss_index) & COOKIE_MASK);
    SeqNum::new(v)
}

/// The MSS a cookie carries, if `cookie` is one we made for `tuple` and
/// `sseq` at most two periods ago (`check_tcp_syn_cookie`).
pub(crate) fn check(
    secret: &[u8; 16],
    t: &FourTuple,
    sseq: SeqNum,
    cookie: SeqNum,
    now: Instant,
) -> Option<u16> {
    let count = counter(now);
    let c = cookie
        .get()
        .wrapping_sub(hash(secret, t, 0, 0).wrapping_add(sseq.get()));
    let diff = count.wrapping_sub(c >> COOKIE_BITS) & (u32::MAX >> COOKIE_BITS);
    if diff >= MAX_AGE {
        return None;
    }
    let index = c.wrapping_sub(hash(secret, t, count.wrapping_sub(diff), 1)) & COOKIE_MASK;
    let table = if t.remote.is_ipv6() { &MSS_V6 } else { &MSS_V4 };
    table.get(index as usize).copied()
}

/// The TSval clock reading (offset removed) that carries `wscale` and
/// `sack` in its low bits: the clock rounded down to them, so that it never
/// runs ahead of the connection's own TSval later
/// (`cookie_init_timestamp`).
pub(crate) fn encode_ts(clock: u32, wscale: Option<u8>, sack: bool) -> u32 {
    let mut options = wscale.map_or(TS_WSCALE_NONE, |s| u32::from(s.min(14)));
    if sack {
        options |= TS_SACK;
    }
    let mut ts = (clock & !TS_MASK) | options;
    if ts > clock {
        ts = ts.wrapping_sub(1 << TS_BITS);
    }
    ts
}

/// The window scale and SACK-permitted a cookie ACK's TSecr (offset
/// removed) carries; `None` for bits we never send: ECN, or a shift above
/// 14 (`cookie_timestamp_decode`).
pub(crate) fn decode_ts(clock: u32) -> Option<(Option<u8>, bool)> {
    let options = clock & TS_MASK;
    if options & TS_ECN != 0 {
        return None;
    }
    let sack = options & TS_SACK != 0;
    match options & TS_WSCALE_NONE {
        TS_WSCALE_NONE => Some((None, sack)),
        s if s <= 14 => Some((Some(s as u8), sack)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn tuple(port: u16) -> FourTuple {
        FourTuple {
            local: "10.0.0.2:80".parse::<SocketAddr>().unwrap(),
            remote: SocketAddr::new("10.0.0.1".parse().unwrap(), port),
        }
    }

    #[test]
    fn a_cookie_carries_its_mss_for_two_periods() {
        let key = [9; 16];
        let t = tuple(5555);
        let sseq = SeqNum::new(0xfedc_ba98);
        let made = Instant::from_millis(90_000);
        for i in 0..4 {
            let c = make(&key, &t, sseq, i, made);
            assert_eq!(check(&key, &t, sseq, c, made), Some(MSS_V4[i as usize]));
            // The count's period (60..120 s) and the next are valid.
            let later = Instant::from_millis(179_999);
            assert_eq!(check(&key, &t, sseq, c, later), Some(MSS_V4[i as usize]));
            assert_eq!(
                check(&key, &t, sseq, c, Instant::from_millis(180_000)),
                None
            );
            // Another tuple, sequence number or secret: refused. (A
            // sequence number a few below shifts the MSS index instead, as
            // in Linux: the index is added, not authenticated; forging it
            // still takes knowing the cookie.)
            assert_eq!(check(&key, &tuple(5556), sseq, c, made), None);
            assert_eq!(check(&key, &t, sseq + 0x1000_0000, c, made), None);
            assert_eq!(check(&[8; 16], &t, sseq, c, made), None);
        }
    }

    #[test]
    fn mss_rounds_down_to_the_table() {
        assert_eq!(mss_index(1460, false), 3);
        assert_eq!(mss_index(1459, false), 2);
        assert_eq!(mss_index(1300, false), 1);
        assert_eq!(mss_index(100, false), 0);
        assert_eq!(mss_index(9000, true), 3);
        assert_eq!(mss_index(1440, true), 2);
    }

    #[test]
    fn timestamp_bits_round_trip_and_never_run_ahead() {
        for clock in [0u32, 5, 63, 64, 1_000_003, u32::MAX] {
            for (ws, sack) in [
                (None, false),
                (Some(7), true),
                (Some(0), false),
                (Some(14), true),
            ] {
                let ts = encode_ts(clock, ws, sack);
                assert_eq!(decode_ts(ts), Some((ws, sack)), "{clock} {ws:?} {sack}");
                assert!(clock.wrapping_sub(ts) < 64, "{clock}: {ts}");
            }
        }
        assert_eq!(decode_ts(TS_ECN), None);
        assert_eq!(decode_ts(13 + 16), Some((Some(13), true)));
    }
}

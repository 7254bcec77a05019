//! ARP (RFC 826) for IPv4 over Ethernet: the packet format and the raw
//! device's neighbour table.
//!
//! The table is sans-IO: every call takes `now` (a `tokio::time::Instant`
//! read by the caller) and reports what to send in an [`Effects`]; the device
//! sends the requests and keeps the counters. An entry is either being
//! resolved (packets wait in a bounded queue while requests are retried) or
//! known (usable until it expires, then refreshed by unicast probes while it
//! is still used, RFC 1122 §2.3.2.1).

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio::time::Instant;

/// An Ethernet (MAC) address.
pub(crate) type Mac = [u8; 6];

/// The Ethernet broadcast address.
pub(super) const BROADCAST: Mac = [0xff; 6];
/// EtherType of IPv4.
pub(super) const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub(super) const ETHERTYPE_ARP: u16 = 0x0806;
/// An Ethernet header: destination, source, EtherType.
pub(super) const ETH_HEADER_LEN: usize = 14;
/// The shortest Ethernet frame without its FCS; shorter frames are padded.
pub(super) const ETH_MIN_FRAME: usize = 60;
/// An ARP packet for Ethernet and IPv4.
const ARP_LEN: usize = 28;

/// Writes an Ethernet header.
pub(super) fn ethernet_header(dst: Mac, src: Mac, ethertype: u16) -> [u8; ETH_HEADER_LEN] {
    let mut h = [0u8; ETH_HEADER_LEN];
    h[0..6].copy_from_slice(&dst);
    h[6..12].copy_from_slice(&src);
    h[12..14].copy_from_slice(&ethertype.to_be_bytes());
    h
}

/// The ARP operation (RFC 826 `ar$op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    /// `ares_op$REQUEST` (1).
    Request,
    /// `ares_op$REPLY` (2).
    Reply,
}

/// An ARP packet for Ethernet hardware and IPv4 protocol addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ArpPacket {
    /// Request or reply.
    pub op: Op,
    /// `ar$sha`.
    pub sender_mac: Mac,
    /// `ar$spa`.
    pub sender_ip: Ipv4Addr,
    /// `ar$tha` (zero in a request).
    pub target_mac: Mac,
    /// `ar$tpa`.
    pub target_ip: Ipv4Addr,
}

impl ArpPacket {
    /// Parses the ARP payload of an Ethernet frame (the bytes after the
    /// Ethernet header; trailing padding is ignored). `None` for anything but
    /// an Ethernet / IPv4 request or reply, or a short packet.
    pub fn parse(b: &[u8]) -> Option<ArpPacket> {
        let b = b.get(..ARP_LEN)?;
        // RFC 826: ar$hrd = 1 (Ethernet), ar$pro = 0x0800, ar$hln = 6, ar$pln = 4.
        if b[0..2] != [0, 1] || b[2..4] != [0x08, 0x00] || b[4] != 6 || b[5] != 4 {
            return None;
        }
        let op = match u16::from_be_bytes([b[6], b[7]]) {
            1 => Op::Request,
            2 => Op::Reply,
            _ => return None,
        };
        let mac =
            |at: usize| -> Mac { [b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5]] };
        let ip = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
        Some(ArpPacket {
            op,
            sender_mac: mac(8),
            sender_ip: ip(14),
            target_mac: mac(18),
            target_ip: ip(24),
        })
    }

    /// Writes the 28 bytes of the packet.
    pub fn emit(&self) -> [u8; ARP_LEN] {
        let mut b = [0u8; ARP_LEN];
        b[0..2].copy_from_slice(&1u16.to_be_bytes());
        b[2..4].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        b[4] = 6;
        b[5] = 4;
        let op: u16 = match self.op {
            Op::Request => 1,
            Op::Reply => 2,
        };
        b[6..8].copy_from_slice(&op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_mac);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac);
        b[24..28].copy_from_slice(&self.target_ip.octets());
        b
    }

    /// A whole Ethernet frame to `dst` from the sender's MAC carrying this
    /// packet, padded to the Ethernet minimum.
    pub fn frame(&self, dst: Mac) -> [u8; ETH_MIN_FRAME] {
        let mut f = [0u8; ETH_MIN_FRAME];
        f[..ETH_HEADER_LEN].copy_from_slice(&ethernet_header(dst, self.sender_mac, ETHERTYPE_ARP));
        f[ETH_HEADER_LEN..ETH_HEADER_LEN + ARP_LEN].copy_from_slice(&self.emit());
        f
    }
}

/// The table's timings and limits.
#[derive(Clone, Copy, Debug)]
pub(super) struct ArpConfig {
    /// How long an answer is trusted before it is refreshed.
    pub reachable: Duration,
    /// Requests sent before a resolution (or a refresh) fails.
    pub retries: u32,
    /// Time between two requests.
    pub interval: Duration,
    /// Packets held per destination while it is resolved (the oldest is
    /// dropped first).
    pub queue_limit: usize,
    /// Entries in the table.
    pub table_limit: usize,
}

/// An ARP request the device must send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Request {
    /// The address asked for.
    pub target: Ipv4Addr,
    /// Where the request goes: broadcast to resolve, the known MAC to refresh.
    pub dst: Mac,
}

/// What a table call asks of the device, and what it dropped.
#[derive(Debug, Default)]
pub(super) struct Effects {
    /// Requests to send.
    pub requests: Vec<Request>,
    /// Packets dropped because a destination's queue was full (or the table
    /// had no room for a new destination).
    pub queue_drops: u64,
    /// Resolutions and refreshes that got no answer.
    pub failures: u64,
    /// Packets dropped because their destination did not answer.
    pub unresolved_drops: u64,
    /// The earliest deadline moved earlier: whoever sleeps on it must re-arm.
    pub rearm: bool,
}

/// A neighbour entry.
#[derive(Debug)]
enum Entry {
    /// Being resolved: requests sent so far, when the next is due, and the
    /// packets waiting for the answer.
    Incomplete {
        tries: u32,
        retry_at: Instant,
        queue: VecDeque<Vec<u8>>,
    },
    /// Known: trusted until `expires`; after that it is still used while
    /// `probe` refreshes it.
    Known {
        mac: Mac,
        expires: Instant,
        probe: Option<Probe>,
    },
}

/// A refresh of an expired entry in progress.
#[derive(Clone, Copy, Debug)]
struct Probe {
    tries: u32,
    retry_at: Instant,
}

/// The neighbour table: IPv4 address → MAC address.
#[derive(Debug)]
pub(super) struct Table {
    cfg: ArpConfig,
    /// Ordered, so timers fire in the same order on every run.
    entries: BTreeMap<Ipv4Addr, Entry>,
    /// No entry has a deadline before this (it may be early, never late).
    next_deadline: Option<Instant>,
}

impl Table {
    /// An empty table.
    pub fn new(cfg: ArpConfig) -> Table {
        Table {
            cfg,
            entries: BTreeMap::new(),
            next_deadline: None,
        }
    }

    /// The earliest instant [`poll_timers`](Self::poll_timers) has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.next_deadline
    }

    /// The MAC of `ip` if it is known (expired or not).
    pub fn get(&self, ip: Ipv4Addr) -> Option<Mac> {
        match self.entries.get(&ip)? {
            Entry::Known { mac, .. } => Some(*mac),
            Entry::Incomplete { .. } => None,
        }
    }

    /// The MAC to send a packet for `ip` to, or `None` when the packet
    /// (`packet()` makes its copy) was queued until `ip` answers, or dropped.
    pub fn resolve(
        &mut self,
        now: Instant,
        ip: Ipv4Addr,
        packet: impl FnOnce() -> Vec<u8>,
        fx: &mut Effects,
    ) -> Option<Mac> {
        let retry_at = now + self.cfg.interval;
        match self.entries.get_mut(&ip) {
            Some(Entry::Known {
                mac,
                expires,
                probe,
            }) => {
                let mac = *mac;
                if now >= *expires && probe.is_none() {
                    // Stale: keep using it, and ask the neighbour directly.
                    *probe = Some(Probe { tries: 1, retry_at });
                    fx.requests.push(Request {
                        target: ip,
                        dst: mac,
                    });
                    self.arm(retry_at, fx);
                }
                Some(mac)
            }
            Some(Entry::Incomplete { queue, .. }) => {
                if queue.len() >= self.cfg.queue_limit {
                    queue.pop_front();
                    fx.queue_drops += 1;
                }
                queue.push_back(packet());
                None
            }
            None => {
                if !self.make_room() {
                    fx.queue_drops += 1;
                    return None;
                }
                let mut queue = VecDeque::new();
                if self.cfg.queue_limit > 0 {
                    queue.push_back(packet());
                } else {
                    fx.queue_drops += 1;
                }
                self.entries.insert(
                    ip,
                    Entry::Incomplete {
                        tries: 1,
                        retry_at,
                        queue,
                    },
                );
                fx.requests.push(Request {
                    target: ip,
                    dst: BROADCAST,
                });
                self.arm(retry_at, fx);
                None
            }
        }
    }

    /// Records that `ip` is at `mac` (RFC 826's merge: an existing entry is
    /// always updated; a new one is made only when `create`, i.e. the packet
    /// was meant for us). Returns the packets that waited for `ip`.
    pub fn learn(
        &mut self,
        now: Instant,
        ip: Ipv4Addr,
        mac: Mac,
        create: bool,
        fx: &mut Effects,
    ) -> Option<VecDeque<Vec<u8>>> {
        let expires = now + self.cfg.reachable;
        let known = Entry::Known {
            mac,
            expires,
            probe: None,
        };
        if !self.entries.contains_key(&ip) {
            if !create || !self.make_room() {
                return None;
            }
            self.entries.insert(ip, known);
            self.arm(expires + self.cfg.reachable, fx);
            return None;
        }
        let waiting = match self.entries.get_mut(&ip) {
            Some(entry) => match std::mem::replace(entry, known) {
                Entry::Incomplete { queue, .. } => Some(queue),
                Entry::Known { mac: old, .. } => {
                    if old != mac {
                        tracing::debug!(%ip, old = ?old, new = ?mac, "arp: neighbour moved");
                    }
                    None
                }
            },
            None => None,
        };
        // The entry is collected one `reachable` period after it expires
        // unless it is used (and so refreshed) before.
        self.arm(expires + self.cfg.reachable, fx);
        waiting
    }

    /// Retries, fails or collects every entry whose deadline has passed.
    pub fn poll_timers(&mut self, now: Instant, fx: &mut Effects) {
        if self.next_deadline.is_none_or(|d| d > now) {
            return;
        }
        let cfg = self.cfg;
        let mut next: Option<Instant> = None;
        let mut earliest = |d: Instant| next = Some(next.map_or(d, |n| n.min(d)));
        self.entries.retain(|&ip, entry| match entry {
            Entry::Incomplete {
                tries,
                retry_at,
                queue,
            } => {
                if *retry_at <= now {
                    if *tries >= cfg.retries {
                        tracing::debug!(%ip, dropped = queue.len(), "arp: no answer");
                        fx.failures += 1;
                        fx.unresolved_drops += queue.len() as u64;
                        return false;
                    }
                    *tries += 1;
                    *retry_at = now + cfg.interval;
                    fx.requests.push(Request {
                        target: ip,
                        dst: BROADCAST,
                    });
                }
                earliest(*retry_at);
                true
            }
            Entry::Known {
                mac,
                probe: Some(probe),
                ..
            } => {
                if probe.retry_at <= now {
                    if probe.tries >= cfg.retries {
                        tracing::debug!(%ip, "arp: neighbour stopped answering");
                        fx.failures += 1;
                        return false;
                    }
                    probe.tries += 1;
                    probe.retry_at = now + cfg.interval;
                    fx.requests.push(Request {
                        target: ip,
                        dst: *mac,
                    });
                }
                earliest(probe.retry_at);
                true
            }
            Entry::Known {
                expires,
                probe: None,
                ..
            } => {
                let collect_at = *expires + cfg.reachable;
                if collect_at <= now {
                    return false;
                }
                earliest(collect_at);
                true
            }
        });
        self.next_deadline = next;
    }

    /// Makes room for one more entry, evicting the known entry that expires
    /// first when the table is full. `false` when every entry is being
    /// resolved.
    fn make_room(&mut self) -> bool {
        if self.entries.len() < self.cfg.table_limit {
            return true;
        }
        let victim = self
            .entries
            .iter()
            .filter_map(|(ip, e)| match e {
                Entry::Known { expires, .. } => Some((*expires, *ip)),
                Entry::Incomplete { .. } => None,
            })
            .min();
        match victim {
            Some((_, ip)) => {
                self.entries.remove(&ip);
                true
            }
            None => false,
        }
    }

    /// Lowers the next deadline to `at` if it is earlier.
    fn arm(&mut self, at: Instant, fx: &mut Effects) {
        if self.next_deadline.is_none_or(|d| at < d) {
            self.next_deadline = Some(at);
            fx.rearm = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const MAC_A: Mac = [2, 0, 0, 0, 0, 1];

    fn cfg() -> ArpConfig {
        ArpConfig {
            reachable: Duration::from_secs(60),
            retries: 3,
            interval: Duration::from_secs(1),
            queue_limit: 2,
            table_limit: 4,
        }
    }

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn packet_round_trips_and_pads() {
        let p = ArpPacket {
            op: Op::Reply,
            sender_mac: MAC_A,
            sender_ip: A,
            target_mac: [2, 0, 0, 0, 0, 2],
            target_ip: Ipv4Addr::new(10, 0, 0, 2),
        };
        let frame = p.frame([2, 0, 0, 0, 0, 2]);
        assert_eq!(frame.len(), ETH_MIN_FRAME);
        assert_eq!(&frame[12..14], &[0x08, 0x06]);
        assert_eq!(ArpPacket::parse(&frame[ETH_HEADER_LEN..]), Some(p));
    }

    #[test]
    fn golden_request_parses() {
        // A request as Linux sends it: who-has 10.98.0.2 tell 10.98.0.1.
        let bytes = [
            0, 1, 8, 0, 6, 4, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 10, 98, 0, 1, 0, 0, 0, 0, 0,
            0, 10, 98, 0, 2,
        ];
        let p = ArpPacket::parse(&bytes).expect("a valid request");
        assert_eq!(p.op, Op::Request);
        assert_eq!(p.sender_ip, Ipv4Addr::new(10, 98, 0, 1));
        assert_eq!(p.target_ip, Ipv4Addr::new(10, 98, 0, 2));
        assert_eq!(p.emit(), bytes);
    }

    #[test]
    fn garbage_never_parses_or_panics() {
        let mut b = [0u8; 40];
        for len in 0..b.len() {
            for seed in 0..64u8 {
                for (i, x) in b.iter_mut().enumerate() {
                    *x = seed.wrapping_mul(31).wrapping_add(i as u8);
                }
                let _ = ArpPacket::parse(&b[..len]);
            }
        }
        assert!(ArpPacket::parse(&[0; 27]).is_none());
        let mut bad_op = ArpPacket {
            op: Op::Request,
            sender_mac: MAC_A,
            sender_ip: A,
            target_mac: [0; 6],
            target_ip: A,
        }
        .emit();
        bad_op[7] = 3;
        assert!(ArpPacket::parse(&bad_op).is_none());
    }

    #[test]
    fn unknown_destination_queues_then_flushes_on_answer() {
        let t0 = Instant::now();
        let mut t = Table::new(cfg());
        let mut fx = Effects::default();
        assert_eq!(t.resolve(t0, A, || vec![1], &mut fx), None);
        assert_eq!(t.resolve(t0, A, || vec![2], &mut fx), None);
        assert_eq!(t.resolve(t0, A, || vec![3], &mut fx), None);
        assert_eq!(
            fx.requests,
            [Request {
                target: A,
                dst: BROADCAST
            }]
        );
        assert_eq!(fx.queue_drops, 1, "the oldest packet leaves a full queue");
        assert!(fx.rearm);
        let waiting = t
            .learn(t0, A, MAC_A, false, &mut fx)
            .expect("queued packets");
        assert_eq!(waiting, [vec![2], vec![3]]);
        assert_eq!(t.resolve(t0, A, || vec![4], &mut fx), Some(MAC_A));
    }

    #[test]
    fn resolution_retries_then_fails() {
        let t0 = Instant::now();
        let mut t = Table::new(cfg());
        let mut fx = Effects::default();
        t.resolve(t0, A, || vec![1], &mut fx);
        assert_eq!(t.next_deadline(), Some(secs(t0, 1)));
        t.poll_timers(secs(t0, 1), &mut fx);
        t.poll_timers(secs(t0, 2), &mut fx);
        assert_eq!(fx.requests.len(), 3);
        assert_eq!(fx.failures, 0);
        t.poll_timers(secs(t0, 3), &mut fx);
        assert_eq!(fx.requests.len(), 3);
        assert_eq!((fx.failures, fx.unresolved_drops), (1, 1));
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.get(A), None);
    }

    #[test]
    fn stale_entry_is_used_while_probed_unicast() {
        let t0 = Instant::now();
        let mut t = Table::new(cfg());
        let mut fx = Effects::default();
        t.learn(t0, A, MAC_A, true, &mut fx);
        assert_eq!(t.resolve(secs(t0, 59), A, Vec::new, &mut fx), Some(MAC_A));
        assert!(fx.requests.is_empty());
        assert_eq!(t.resolve(secs(t0, 60), A, Vec::new, &mut fx), Some(MAC_A));
        assert_eq!(
            fx.requests,
            [Request {
                target: A,
                dst: MAC_A
            }]
        );
        // The answer refreshes it.
        t.learn(secs(t0, 60), A, MAC_A, false, &mut fx);
        t.poll_timers(secs(t0, 61), &mut fx);
        assert_eq!(fx.requests.len(), 1);
        // No answer: dropped after the retries.
        t.resolve(secs(t0, 120), A, Vec::new, &mut fx);
        for s in 121..=123 {
            t.poll_timers(secs(t0, s), &mut fx);
        }
        assert_eq!(fx.requests.len(), 4);
        assert_eq!(fx.failures, 1);
        assert_eq!(t.get(A), None);
    }

    #[test]
    fn learning_needs_an_entry_or_create() {
        let t0 = Instant::now();
        let mut t = Table::new(cfg());
        let mut fx = Effects::default();
        t.learn(t0, A, MAC_A, false, &mut fx);
        assert_eq!(t.get(A), None);
        t.learn(t0, A, MAC_A, true, &mut fx);
        assert_eq!(t.get(A), Some(MAC_A));
        // Unused entries are collected a period after they expire.
        t.poll_timers(secs(t0, 120), &mut fx);
        assert_eq!(t.get(A), None);
    }

    #[test]
    fn full_table_evicts_the_oldest_known_entry() {
        let t0 = Instant::now();
        let mut t = Table::new(cfg());
        let mut fx = Effects::default();
        for i in 0..4u8 {
            t.learn(
                secs(t0, i.into()),
                Ipv4Addr::new(10, 0, 0, i),
                [2, 0, 0, 0, 0, i],
                true,
                &mut fx,
            );
        }
        t.learn(
            secs(t0, 5),
            Ipv4Addr::new(10, 0, 0, 9),
            MAC_A,
            true,
            &mut fx,
        );
        assert_eq!(t.get(Ipv4Addr::new(10, 0, 0, 0)), None);
        assert_eq!(t.get(Ipv4Addr::new(10, 0, 0, 9)), Some(MAC_A));
    }
}

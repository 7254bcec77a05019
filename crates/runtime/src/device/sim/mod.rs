//! The in-memory simulated network: hosts joined by impaired links.
//!
//! A [`SimNetwork`] holds hosts, each a [`SimDevice`] carrying whole IP packets
//! ([`Medium::Ip`]). A packet a host sends is routed by its IP destination
//! address to the host owning that address, over the link between the two
//! hosts; a packet to an unknown address, or to a host with no link, is dropped
//! and counted in the sender's [`HostStats::unroutable`].
//!
//! Each link direction has its own [`LinkConfig`] (rate, delay, jitter, a
//! drop-tail queue, loss, duplication, reordering and corruption), its own RNG
//! seeded from the network seed and the direction's creation index, an optional
//! scripted filter ([`SimNetwork::set_filter`]) applied before the random
//! impairments, and its own counters ([`SimNetwork::stats`]).
//!
//! The sim computes each packet's arrival instant when it is sent; the
//! receiving device hands over every packet that is due when polled, and
//! otherwise sleeps until the earliest arrival. All time is
//! `tokio::time::Instant`, so the network runs in virtual time under
//! `tokio::time::pause()` and in real time on a multi-thread runtime. With the
//! same seed, the same topology built in the same order and the same sends,
//! a run replays exactly.
//!
//! # Examples
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use std::time::Duration;
//! use utcp_runtime::device::sim::{LinkConfig, SimNetwork};
//!
//! let net = SimNetwork::new(42);
//! let a = net.add_host("a", &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))]);
//! let b = net.add_host("b", &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))]);
//! net.link(&a, &b, LinkConfig::default().delay(Duration::from_millis(10)).loss(0.01));
//! ```

mod link;
#[cfg(test)]
mod tests;

pub use link::{FilterAction, FilterPacket, LinkConfig, LinkStats};

use super::{Capabilities, Device, Medium, Offload, RxPacket, TxPacket};
use bytes::Bytes;
use link::{DeliveryCounters, Direction, Outcome};
use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};
use tokio::time::{Instant, Sleep};

/// The default MTU of a host.
pub const DEFAULT_MTU: usize = 1500;

/// The default receive queue limit of a host, in packets.
pub const DEFAULT_RX_QUEUE_LIMIT: usize = 4096;

/// An in-memory network of hosts joined by impaired links.
///
/// A cheap handle: clones share the same network.
#[derive(Clone)]
pub struct SimNetwork {
    net: Arc<Net>,
}

/// A host of a [`SimNetwork`]: the [`Device`] a stack drives.
///
/// A cheap handle: clones are the same host. Any number of tasks may call
/// [`Device::send`] at once; one task at a time polls [`Device::poll_recv`]
/// (the last one to poll is the one woken).
#[derive(Clone)]
pub struct SimDevice {
    net: Arc<Net>,
    host: Arc<Host>,
}

/// Counters of one host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Packets handed to the reader.
    pub received: u64,
    /// Packets sent to an address no host owns, to a host with no link from
    /// this one, or that are not IPv4 or IPv6.
    pub unroutable: u64,
    /// Packets sent larger than the host's MTU (dropped).
    pub oversized: u64,
    /// Packets dropped because this host's receive queue was full.
    pub rx_queue_drops: u64,
    /// Packets sent with offload requests the host does not offer, or that
    /// could not be carried out (dropped).
    pub offload_refused: u64,
    /// Super-segments sent (each cut into segments by the host).
    pub tx_super: u64,
    /// The wire segments those super-segments were cut into.
    pub tx_super_segments: u64,
}

struct Net {
    seed: u64,
    /// Breaks ties between packets arriving at the same instant: send order.
    seq: AtomicU64,
    topo: RwLock<Topology>,
    /// A network-wide capture is set (checked before taking `tap`'s lock,
    /// so an untapped network takes no lock for it).
    tapped: std::sync::atomic::AtomicBool,
    tap: RwLock<Option<crate::device::capture::PcapWriter>>,
}

#[derive(Default)]
struct Topology {
    hosts: Vec<Arc<Host>>,
    by_addr: HashMap<IpAddr, usize>,
    /// Directions by (from, to) host index, created on first use.
    dirs: HashMap<(usize, usize), Arc<Direction>>,
    /// Where a host sends packets for addresses no host owns.
    default_routes: HashMap<usize, usize>,
    /// The name table: host names (and aliases) to addresses, in the order
    /// they were registered.
    names: HashMap<String, Vec<IpAddr>>,
}

/// One host: identity, MTU, receive queue and counters.
struct Host {
    id: usize,
    name: String,
    addrs: Vec<IpAddr>,
    mtu: AtomicUsize,
    /// Offers checksum and segmentation offload on transmit
    /// ([`SimDevice::set_offload`]).
    offload: AtomicBool,
    rx: Mutex<RxQueue>,
    /// The transmit side's packet chunks and the batch in hand.
    tx: Mutex<TxState>,
    received: AtomicU64,
    unroutable: AtomicU64,
    oversized: AtomicU64,
    rx_queue_drops: AtomicU64,
    offload_refused: AtomicU64,
    tx_super: AtomicU64,
    tx_super_segments: AtomicU64,
}

/// Packets on their way to a host, ordered by arrival, and the reader's wakeup.
struct RxQueue {
    heap: BinaryHeap<Reverse<InFlight>>,
    limit: usize,
    /// The reader waiting for a packet, woken when a new packet becomes the head.
    waker: Option<Waker>,
    /// Armed for the head's arrival while the reader waits.
    sleep: Option<Pin<Box<Sleep>>>,
}

/// Bytes of each chunk a host copies the packets it sends into.
const TX_CHUNK: usize = 64 * 1024;

/// Chunks a host keeps for reuse while packets cut from them are alive.
const TX_SPARES: usize = 16;

/// A host's transmit side. Each packet sent is copied once, into the
/// current chunk, and travels as a slice of it: a chunk is reused in place
/// once every packet cut from it is gone (a few are kept for that), so
/// steady traffic allocates nothing. The packets of one `send` call are queued at their
/// receivers at its end, one lock per receiving host and batch.
#[derive(Default)]
struct TxState {
    chunk: bytes::BytesMut,
    /// Filled chunks, reused once their packets are all gone.
    spares: Vec<bytes::BytesMut>,
    /// The batch's deliveries: index into `dirs`, arrival, packet.
    out: Vec<(usize, Instant, Bytes)>,
    /// The directions the batch's packets take.
    dirs: Vec<Arc<Direction>>,
    /// The batch's last destination and its index into `dirs`.
    last: Option<(IpAddr, usize)>,
}

impl TxState {
    /// Moves on to a chunk with room for `len` bytes: a spare whose packets
    /// are all gone, reclaimed in place, or a new one.
    fn next_chunk(&mut self, len: usize) {
        let want = TX_CHUNK.max(len);
        let full = std::mem::take(&mut self.chunk);
        if self.spares.len() < TX_SPARES {
            self.spares.push(full);
        }
        if let Some(i) = self.spares.iter_mut().position(|c| c.try_reclaim(want)) {
            self.chunk = self.spares.swap_remove(i);
        } else {
            self.chunk = bytes::BytesMut::with_capacity(want);
        }
    }
}

/// A packet copy queued at its receiver.
struct InFlight {
    arrival: Instant,
    seq: u64,
    data: Bytes,
    counters: Arc<DeliveryCounters>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (self.arrival, self.seq).cmp(&(other.arrival, other.seq))
    }
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves its
/// state consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Net {
    fn topo(&self) -> std::sync::RwLockReadGuard<'_, Topology> {
        self.topo.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn topo_mut(&self) -> std::sync::RwLockWriteGuard<'_, Topology> {
        self.topo.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn lookup_host(&self, name: &str) -> Option<Vec<IpAddr>> {
        let topo = self.topo();
        let addrs = topo.names.get(&name.to_ascii_lowercase())?;
        (!addrs.is_empty()).then(|| addrs.clone())
    }

    /// The direction `from` → `to`, created (unlinked) if needed.
    fn direction(&self, from: usize, to: usize) -> Arc<Direction> {
        if let Some(dir) = self.topo().dirs.get(&(from, to)) {
            return dir.clone();
        }
        let mut topo = self.topo_mut();
        let index = topo.dirs.len() as u64;
        let host = topo.hosts[to].clone();
        topo.dirs
            .entry((from, to))
            .or_insert_with(|| Arc::new(Direction::new(self.seed, index, host)))
            .clone()
    }

    /// Queues a copy at the direction's receiver.
    fn deliver(&self, dir: &Direction, arrival: Instant, data: Bytes) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        dir.to.push(InFlight {
            arrival,
            seq,
            data,
            counters: dir.counters.clone(),
        });
    }
}

impl Host {
    /// Queues a packet copy; wakes the reader if it is the new head.
    fn push(&self, packet: InFlight) {
        self.push_all(std::iter::once(packet));
    }

    /// Queues packet copies under one lock; wakes the reader once if one of
    /// them became the head.
    fn push_all(&self, packets: impl Iterator<Item = InFlight>) {
        let waker = {
            let mut rx = lock(&self.rx);
            let mut new_head = false;
            for packet in packets {
                if rx.heap.len() >= rx.limit {
                    self.rx_queue_drops.fetch_add(1, Ordering::Relaxed);
                    tracing::trace!(host = %self.name, "sim: receive queue full");
                    continue;
                }
                new_head |= rx.heap.peek().is_none_or(|Reverse(head)| packet < *head);
                rx.heap.push(Reverse(packet));
            }
            if new_head { rx.waker.take() } else { None }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The destination address of an IPv4 or IPv6 packet.
fn destination(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 => {
            let dst: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(dst)))
        }
        6 => {
            let dst: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(dst)))
        }
        _ => None,
    }
}

impl SimNetwork {
    /// An empty network whose link RNGs derive from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            net: Arc::new(Net {
                seed,
                seq: AtomicU64::new(0),
                tapped: std::sync::atomic::AtomicBool::new(false),
                tap: RwLock::new(None),
                topo: RwLock::new(Topology::default()),
            }),
        }
    }

    /// The seed the network was made with.
    pub fn seed(&self) -> u64 {
        self.net.seed
    }

    /// Adds a host owning `addrs`, with an MTU of [`DEFAULT_MTU`] and a receive
    /// queue of [`DEFAULT_RX_QUEUE_LIMIT`] packets. `name` goes into the
    /// network's name table: `utcp::net` resolves it to `addrs` (a name given
    /// to several hosts resolves to all their addresses, oldest host first).
    ///
    /// # Panics
    ///
    /// If another host already owns one of `addrs`.
    pub fn add_host(&self, name: &str, addrs: &[IpAddr]) -> SimDevice {
        let mut topo = self.net.topo_mut();
        let id = topo.hosts.len();
        for addr in addrs {
            if let Some(&owner) = topo.by_addr.get(addr) {
                panic!(
                    "sim: address {addr} of host {name:?} is already owned by host {:?}",
                    topo.hosts[owner].name
                );
            }
        }
        for addr in addrs {
            topo.by_addr.insert(*addr, id);
        }
        topo.names
            .entry(name.to_ascii_lowercase())
            .or_default()
            .extend_from_slice(addrs);
        let host = Arc::new(Host {
            id,
            name: name.to_owned(),
            addrs: addrs.to_vec(),
            mtu: AtomicUsize::new(DEFAULT_MTU),
            offload: AtomicBool::new(false),
            rx: Mutex::new(RxQueue {
                heap: BinaryHeap::new(),
                limit: DEFAULT_RX_QUEUE_LIMIT,
                waker: None,
                sleep: None,
            }),
            tx: Mutex::new(TxState::default()),
            received: AtomicU64::new(0),
            unroutable: AtomicU64::new(0),
            oversized: AtomicU64::new(0),
            rx_queue_drops: AtomicU64::new(0),
            offload_refused: AtomicU64::new(0),
            tx_super: AtomicU64::new(0),
            tx_super_segments: AtomicU64::new(0),
        });
        topo.hosts.push(host.clone());
        SimDevice {
            net: self.net.clone(),
            host,
        }
    }

    /// Adds `name` to the name table as another name for `addrs` (an alias;
    /// the addresses need not belong to a host yet). Names are matched
    /// exactly, ASCII case aside, as DNS does.
    pub fn add_name(&self, name: &str, addrs: &[IpAddr]) {
        self.net
            .topo_mut()
            .names
            .entry(name.to_ascii_lowercase())
            .or_default()
            .extend_from_slice(addrs);
    }

    /// The addresses the name table holds for `name` (a host name or an
    /// alias), `None` if it holds none.
    ///
    /// ```
    /// use utcp_runtime::sim::SimNetwork;
    /// let net = SimNetwork::new(1);
    /// net.add_host("db", &["10.0.0.5".parse().unwrap()]);
    /// assert_eq!(net.lookup_host("db"), Some(vec!["10.0.0.5".parse().unwrap()]));
    /// assert_eq!(net.lookup_host("DB"), net.lookup_host("db"));
    /// assert_eq!(net.lookup_host("web"), None);
    /// ```
    pub fn lookup_host(&self, name: &str) -> Option<Vec<IpAddr>> {
        self.net.lookup_host(name)
    }

    /// The host owning `addr`.
    pub fn host(&self, addr: IpAddr) -> Option<SimDevice> {
        let topo = self.net.topo();
        let id = *topo.by_addr.get(&addr)?;
        Some(SimDevice {
            net: self.net.clone(),
            host: topo.hosts[id].clone(),
        })
    }

    /// The index of `dev` in this network.
    ///
    /// # Panics
    ///
    /// If `dev` belongs to another network.
    fn id(&self, dev: &SimDevice) -> usize {
        assert!(
            Arc::ptr_eq(&self.net, &dev.net),
            "sim: host {:?} belongs to another network",
            dev.host.name
        );
        dev.host.id
    }

    /// Links `a` and `b` in both directions with the same configuration (or
    /// replaces the configuration of an existing link; queues, counters, RNG
    /// streams and filters carry on).
    ///
    /// # Panics
    ///
    /// If a host belongs to another network.
    pub fn link(&self, a: &SimDevice, b: &SimDevice, cfg: LinkConfig) {
        self.link_asym(a, b, cfg, cfg);
    }

    /// Links `a` and `b` with one configuration per direction.
    ///
    /// # Panics
    ///
    /// If a host belongs to another network.
    pub fn link_asym(&self, a: &SimDevice, b: &SimDevice, a_to_b: LinkConfig, b_to_a: LinkConfig) {
        let (ia, ib) = (self.id(a), self.id(b));
        self.net.direction(ia, ib).set_config(Some(a_to_b));
        self.net.direction(ib, ia).set_config(Some(b_to_a));
    }

    /// Removes the link between `a` and `b` in both directions: later packets
    /// between them are unroutable; packets already on their way still arrive.
    ///
    /// # Panics
    ///
    /// If a host belongs to another network.
    pub fn unlink(&self, a: &SimDevice, b: &SimDevice) {
        let (ia, ib) = (self.id(a), self.id(b));
        let topo = self.net.topo();
        for key in [(ia, ib), (ib, ia)] {
            if let Some(dir) = topo.dirs.get(&key) {
                dir.set_config(None);
            }
        }
    }

    /// The configuration of the direction `from` → `to`, `None` if not linked.
    ///
    /// # Panics
    ///
    /// If a host belongs to another network.
    pub fn link_config(&self, from: &SimDevice, to: &SimDevice) -> Option<LinkConfig> {
        let key = (self.id(from), self.id(to));
        self.net.topo().dirs.get(&key)?.config()
    }

    /// Records every packet any host sends onto a link (before the link's
    /// impairments: a packet the link then drops is in the capture too), as
    /// raw IP, to `writer` (a mirror port on every link); `None` stops.
    ///
    /// ```
    /// use utcp_runtime::device::capture::{LinkType, PcapWriter};
    /// use utcp_runtime::sim::SimNetwork;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// let net = SimNetwork::new(1);
    /// let path = std::env::temp_dir().join(format!("tap-doc-{}.pcap", std::process::id()));
    /// net.set_tap(Some(PcapWriter::create(&path, LinkType::RawIp)?));
    /// net.set_tap(None); // flushed when the last handle goes
    /// # std::fs::remove_file(&path)?; Ok(()) }
    /// ```
    pub fn set_tap(&self, writer: Option<crate::device::capture::PcapWriter>) {
        let on = writer.is_some();
        *self.net.tap.write().unwrap_or_else(PoisonError::into_inner) = writer;
        self.net.tapped.store(on, Ordering::SeqCst);
    }

    /// Sends `from`'s packets for addresses no host owns to `to` (over their
    /// link), as a gateway would; `None` removes the route. Lets a host accept
    /// connections to any address, as a TUN user does.
    ///
    /// # Panics
    ///
    /// If a host belongs to another network.
    pub fn set_default_route(&self, from: &SimDevice, to: Option<&SimDevice>) {
        let from = self.id(from);
        let to = to.map(|to| self.id(to));
        let mut topo = self.net.topo_mut();
        match to {
            Some(to) => topo.default_routes.insert(from, to),
            None => topo.default_routes.remove(&from),
        };
    }

    /// Sets the scripted filter of the direction `from` → `to`, replacing any
    /// previous one. It sees every packet `from` sends over the direction,
    /// before the rate limit and the random impairments, and may pass, drop or
    /// delay it. It runs on the sending task with the direction locked: it
    /// must not call back into this network.
    ///
    /// # Panics
    ///
    /// If a host belongs to another network.
    pub fn set_filter(
        &self,
        from: &SimDevice,
        to: &SimDevice,
        f: impl FnMut(&FilterPacket<'_>) -> FilterAction + Send + 'static,
    ) {
        let dir = self.net.direction(self.id(from), self.id(to));
        dir.set_filter(Some(Box::new(f)));
    }

    /// Removes the scripted filter of the direction `from` → `to`.
    ///
    /// # Panics
    ///
    /// If a host belongs to another network.
    pub fn clear_filter(&self, from: &SimDevice, to: &SimDevice) {
        let key = (self.id(from), self.id(to));
        if let Some(dir) = self.net.topo().dirs.get(&key) {
            dir.set_filter(None);
        }
    }

    /// Delivers `packet` to `to` as if it came from `from` over their link:
    /// after the link's delay (none if not linked), in order with the packets
    /// already sent, bypassing the filter, the rate limit and the random
    /// impairments. The bytes need not be a valid IP packet.
    ///
    /// # Panics
    ///
    /// If a host belongs to another network.
    pub fn inject(&self, from: &SimDevice, to: &SimDevice, packet: Bytes) {
        let dir = self.net.direction(self.id(from), self.id(to));
        let arrival = dir.inject(Instant::now());
        self.net.deliver(&dir, arrival, packet);
    }

    /// The counters of the direction `from` → `to` (all zero if never linked).
    ///
    /// # Panics
    ///
    /// If a host belongs to another network.
    pub fn stats(&self, from: &SimDevice, to: &SimDevice) -> LinkStats {
        let key = (self.id(from), self.id(to));
        self.net
            .topo()
            .dirs
            .get(&key)
            .map_or_else(LinkStats::default, |dir| dir.stats())
    }
}

impl fmt::Debug for SimNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let topo = self.net.topo();
        f.debug_struct("SimNetwork")
            .field("seed", &self.net.seed)
            .field(
                "hosts",
                &topo.hosts.iter().map(|h| &h.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl SimDevice {
    /// The host's name.
    pub fn name(&self) -> &str {
        &self.host.name
    }

    /// The addresses the host owns.
    pub fn addrs(&self) -> &[IpAddr] {
        &self.host.addrs
    }

    /// Sets the largest IP packet the host sends; larger packets are dropped
    /// and counted in [`HostStats::oversized`].
    pub fn set_mtu(&self, mtu: usize) {
        self.host.mtu.store(mtu, Ordering::Relaxed);
    }

    /// Offers transmit offloads (`true`) as a TUN device with virtio-net
    /// headers does: partial checksums completed, and TCP super-segments of
    /// up to 64 KiB cut into segments of their `gso_size`
    /// ([`gso::segment`](super::gso::segment)), each of which must fit the
    /// MTU and crosses the link as a packet of its own. Off by default. A
    /// stack reads a device's capabilities when it starts: set this first.
    pub fn set_offload(&self, on: bool) {
        self.host.offload.store(on, Ordering::Relaxed);
    }

    /// Sets the receive queue limit in packets; copies arriving to a full
    /// queue are dropped and counted in [`HostStats::rx_queue_drops`].
    pub fn set_rx_queue_limit(&self, packets: usize) {
        lock(&self.host.rx).limit = packets;
    }

    /// Packets on their way to this host or waiting to be read.
    pub fn rx_queue_len(&self) -> usize {
        lock(&self.host.rx).heap.len()
    }

    /// The arrival instant of the next packet on its way to this host.
    pub fn next_arrival(&self) -> Option<Instant> {
        lock(&self.host.rx)
            .heap
            .peek()
            .map(|Reverse(head)| head.arrival)
    }

    /// The host's counters.
    pub fn stats(&self) -> HostStats {
        let h = &self.host;
        HostStats {
            received: h.received.load(Ordering::Relaxed),
            unroutable: h.unroutable.load(Ordering::Relaxed),
            oversized: h.oversized.load(Ordering::Relaxed),
            rx_queue_drops: h.rx_queue_drops.load(Ordering::Relaxed),
            offload_refused: h.offload_refused.load(Ordering::Relaxed),
            tx_super: h.tx_super.load(Ordering::Relaxed),
            tx_super_segments: h.tx_super_segments.load(Ordering::Relaxed),
        }
    }

    /// The direction a packet from this host to `dst` leaves by, if any.
    fn route(&self, dst: IpAddr) -> Option<Arc<Direction>> {
        let topo = self.net.topo();
        let to = match topo.by_addr.get(&dst) {
            Some(&to) => to,
            None => *topo.default_routes.get(&self.host.id)?,
        };
        topo.dirs.get(&(self.host.id, to)).cloned()
    }

    fn send_one(&self, now: Instant, tx: &mut TxState, packet: &TxPacket<'_>) {
        if packet.meta.gso_size.is_some() || packet.meta.csum_partial.is_some() {
            if !self.host.offload.load(Ordering::Relaxed) {
                // Asked of a device that never offered it: refused, as
                // the TUN device refuses.
                self.host.offload_refused.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let mut cut = Vec::new();
            if super::gso::segment(packet, |p| cut.push(p)).is_err() {
                self.host.offload_refused.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if packet.meta.gso_size.is_some() {
                self.host.tx_super.fetch_add(1, Ordering::Relaxed);
                self.host
                    .tx_super_segments
                    .fetch_add(cut.len() as u64, Ordering::Relaxed);
            }
            for p in cut {
                self.send_whole(now, tx, &[&p]);
            }
            return;
        }
        self.send_whole(
            now,
            tx,
            &[packet.header, packet.payload, packet.payload_tail],
        );
    }

    /// Routes and transmits one packet as the wire carries it (`pieces`
    /// joined, the IP header first): its copy goes into the batch.
    fn send_whole(&self, now: Instant, tx: &mut TxState, pieces: &[&[u8]]) {
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        if len > self.mtu() {
            self.host.oversized.fetch_add(1, Ordering::Relaxed);
            tracing::trace!(host = %self.host.name, len, "sim: oversized");
            return;
        }
        let Some(dst) = pieces.first().and_then(|h| destination(h)) else {
            self.host.unroutable.fetch_add(1, Ordering::Relaxed);
            tracing::trace!(host = %self.host.name, "sim: unroutable");
            return;
        };
        let d = match tx.last {
            Some((last, d)) if last == dst => d,
            _ => {
                let Some(dir) = self.route(dst) else {
                    self.host.unroutable.fetch_add(1, Ordering::Relaxed);
                    tracing::trace!(host = %self.host.name, "sim: unroutable");
                    return;
                };
                let d = match tx.dirs.iter().position(|x| Arc::ptr_eq(x, &dir)) {
                    Some(d) => d,
                    None => {
                        tx.dirs.push(dir);
                        tx.dirs.len() - 1
                    }
                };
                tx.last = Some((dst, d));
                d
            }
        };
        // The one copy: into the chunk (reclaimed in place once its
        // packets are gone, else a new one).
        if tx.chunk.capacity() - tx.chunk.len() < len {
            tx.next_chunk(len);
        }
        for p in pieces {
            tx.chunk.extend_from_slice(p);
        }
        let mut data = tx.chunk.split();
        if self.net.tapped.load(Ordering::Relaxed)
            && let Some(tap) = &*self.net.tap.read().unwrap_or_else(PoisonError::into_inner)
        {
            tap.write_packet(&[&data]);
        }
        match tx.dirs[d].transmit(now, &mut data) {
            Outcome::Deliver { arrival, copy } => {
                let data = data.freeze();
                let copy = copy.map(|(at, bytes)| (at, bytes.unwrap_or_else(|| data.clone())));
                tx.out.push((d, arrival, data));
                if let Some((at, bytes)) = copy {
                    tx.out.push((d, at, bytes));
                }
            }
            Outcome::Dropped => {}
            Outcome::Unlinked => {
                self.host.unroutable.fetch_add(1, Ordering::Relaxed);
                tracing::trace!(host = %self.host.name, "sim: no link");
            }
        }
    }

    /// Queues the batch's packets at their receivers, one lock each.
    fn flush(&self, tx: &mut TxState) {
        for (d, dir) in tx.dirs.iter().enumerate() {
            let net = &self.net;
            let out = tx.out.iter_mut().filter(|(x, _, _)| *x == d);
            dir.to.push_all(out.map(|(_, arrival, data)| InFlight {
                arrival: *arrival,
                seq: net.seq.fetch_add(1, Ordering::Relaxed),
                data: std::mem::take(data),
                counters: dir.counters.clone(),
            }));
        }
        tx.out.clear();
        tx.dirs.clear();
        tx.last = None;
    }
}

impl fmt::Debug for SimDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimDevice")
            .field("name", &self.host.name)
            .field("addrs", &self.host.addrs)
            .finish_non_exhaustive()
    }
}

impl Device for SimDevice {
    fn medium(&self) -> Medium {
        Medium::Ip
    }

    fn mtu(&self) -> usize {
        self.host.mtu.load(Ordering::Relaxed)
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::plain(self.mtu());
        if self.host.offload.load(Ordering::Relaxed) {
            caps.tx_checksum = true;
            caps.max_gso_packet = Some(65_535);
        }
        caps
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        out: &mut Vec<RxPacket>,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        if max == 0 {
            return Poll::Ready(Ok(0));
        }
        let mut guard = lock(&self.host.rx);
        let rx = &mut *guard;
        let mut now = Instant::now();
        loop {
            let mut n = 0;
            while n < max {
                match rx.heap.peek() {
                    Some(Reverse(head)) if head.arrival <= now => {}
                    _ => break,
                }
                let Some(Reverse(packet)) = rx.heap.pop() else {
                    unreachable!("sim: the receive queue's head vanished under its lock");
                };
                packet.counters.count(packet.data.len());
                // A buffer of its own, allocated to its length.
                out.push(RxPacket::new(packet.data, Offload::default()));
                n += 1;
            }
            if n > 0 {
                self.host.received.fetch_add(n as u64, Ordering::Relaxed);
                return Poll::Ready(Ok(n));
            }

            // Nothing is due: be woken by a new head, or by the head's arrival.
            match &rx.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => rx.waker = Some(cx.waker().clone()),
            }
            let Some(head) = rx.heap.peek().map(|Reverse(head)| head.arrival) else {
                return Poll::Pending;
            };
            let sleep = rx
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(head)));
            if sleep.deadline() != head {
                sleep.as_mut().reset(head);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // The timer fired, so the head is due (tokio rounds deadlines up to
            // its tick, so the clock has normally passed it already; never spin
            // if it has not).
            now = Instant::now().max(head);
        }
    }

    fn send(&self, packets: &[TxPacket<'_>]) -> io::Result<()> {
        let now = Instant::now();
        let mut tx = lock(&self.host.tx);
        for packet in packets {
            self.send_one(now, &mut tx, packet);
        }
        self.flush(&mut tx);
        Ok(())
    }

    /// The network's name table ([`SimNetwork::add_host`], [`SimNetwork::add_name`]).
    fn lookup_host(&self, name: &str) -> Option<Vec<IpAddr>> {
        self.net.lookup_host(name)
    }
}

//! The raw-socket device: an AF_PACKET socket on an existing Ethernet
//! interface, carrying the stack's own IPv4 and MAC addresses.
//!
//! A [`RawDevice`] opens a layer-2 socket on one interface (pnet finds the
//! interface and its MAC; the socket and its I/O are our own, in
//! `socket.rs`) and exchanges whole IPv4 packets with the stack: it strips
//! the Ethernet header of what it receives and adds one to what it sends. It
//! speaks ARP (RFC 826) for its one IPv4 address: it answers requests for it,
//! learns from requests and replies meant for it, and resolves the next hop of
//! every outgoing packet (the destination itself when it lies inside
//! `addr/prefix`, otherwise the gateway). Packets wait in a small queue per
//! destination while it is resolved ([`ARP_QUEUE_LIMIT`], the oldest dropped
//! first); requests are retried [`ARP_RETRIES`] times [`ARP_RETRY_INTERVAL`]
//! apart; an answer is trusted for [`ARP_REACHABLE`], then refreshed with
//! unicast requests while it is used. A gratuitous ARP announces the address
//! when the device opens. IPv6 is not handled.
//!
//! What it receives: a classic BPF filter in the kernel passes only frames
//! addressed to its MAC or broadcast, of type IPv4 or ARP; IPv4 packets whose
//! destination is not its address are ignored. Frames up to the interface
//! MTU (9000-byte jumbo frames included) are read whole, and so are GRO / TSO
//! super-frames with offloads on; a frame that still fills its buffer is
//! dropped and counted in [`RawStats::rx_truncated`].
//!
//! # Offloads
//!
//! By default ([`RawConfig::offload`]) the socket asks for `PACKET_VNET_HDR`:
//! every frame each way carries a virtio-net header, so the interface's
//! offloads may stay on. Received super-frames (a veth peer's TSO, GRO) of up
//! to 64 KiB are one packet to the stack, never split, with their partial
//! checksums (`NEEDS_CSUM`) or verified ones (`DATA_VALID`) trusted;
//! sent frames carry complete checksums (`GSO_NONE`), or what their
//! [`Offload`] asks (a partial checksum, a TCP super-segment for the kernel to
//! cut). Where the kernel refuses the header the device runs without it, logs
//! why and says so in [`RawDevice::offload`]; then turn the interface's
//! offloads off (`ethtool -K IFACE rx off tx off sg off tso off gso off gro
//! off`), or super-frames are cut and dropped.
//!
//! # I/O
//!
//! Reads never block a Tokio worker: the socket is non-blocking, registered
//! with Tokio's reactor, and read in `recvmmsg` batches of up to the stack's
//! batch size on the task that polls [`Device::poll_recv`] (no thread, no
//! queue between). Small frames are copied out of the reused receive slots;
//! super-frames leave in theirs without a copy. Sends never wait: each
//! [`Device::send`] resolves next hops under the ARP lock, releases it, and
//! hands the whole batch to one `sendmmsg` (`PACKET_QDISC_BYPASS`), each
//! frame gathered from its Ethernet header, IP and TCP headers and payload
//! without a copy; a full socket buffer drops the frame and counts it. No
//! lock is held across a system call that another task could wait on.
//! The interface going down and up again is survived (reads pause while it
//! is down); removing it ends reception with `NotFound`. ARP's timers run on
//! the task that polls [`Device::poll_recv`] (the stack's device task) and
//! every clock reading is `tokio::time::Instant`, as DESIGN's clock rule asks.
//!
//! The socket belongs to the network namespace of the thread that opens the
//! device: open it on a thread that entered the namespace.
//!
//! # Examples
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! use std::net::Ipv4Addr;
//! use utcp_runtime::device::raw::{RawConfig, RawDevice};
//! use utcp_runtime::{Stack, StackConfig};
//!
//! let mut cfg = RawConfig::new("veth0", Ipv4Addr::new(10, 98, 0, 2), 24);
//! cfg.gateway = Some(Ipv4Addr::new(10, 98, 0, 1));
//! let device = RawDevice::open(cfg)?;
//! let stack = Stack::new(device, StackConfig::default());
//! # drop(stack); Ok(()) }
//! ```

mod arp;
mod socket;

use super::arena::RxMemory;
use super::capture::{LinkType, PcapWriter};
use super::vnet::{VNET_HDR_LEN, VnetHdr, complete_checksum};
use super::{
    Capabilities, Device, DeviceAddrs, Medium, Offload, OffloadStatus, RxPacket, TxPacket,
};
use arp::{
    ArpConfig, ArpPacket, BROADCAST, ETH_HEADER_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, Effects, Mac,
    Op, Table, ethernet_header,
};
use socket::{PacketSocket, RxBatch, SendOutcome, TxFrame};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::{Interest, Ready};
use tokio::time::{Instant, Sleep};

/// How long an ARP answer is trusted before it is refreshed.
pub const ARP_REACHABLE: Duration = Duration::from_secs(60);
/// ARP requests sent for one resolution before it fails.
pub const ARP_RETRIES: u32 = 3;
/// Time between two ARP requests for the same address.
pub const ARP_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Packets held per destination while it is resolved; the oldest is dropped
/// when one more arrives.
pub const ARP_QUEUE_LIMIT: usize = 32;
/// Entries in the ARP table; when full, the entry that expires first goes.
pub const ARP_TABLE_LIMIT: usize = 1024;
/// While the interface is down, how often the device looks whether it was
/// removed.
pub const LINK_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// The smallest MTU the read buffer is sized for, so jumbo frames always fit.
const MIN_BUFFER_MTU: usize = 9000;
/// Read buffer room beyond the MTU: the Ethernet header, a VLAN tag, and
/// enough that a frame filling the buffer is known to be truncated.
const BUFFER_SLACK: usize = 64;
/// A receive slot with the virtio-net header on: the largest super-frame
/// (64 KiB of IP packet and the Ethernet header) and slack.
const VNET_SLOT: usize = 65_536 + 256;
/// The largest IP packet sent as a super-segment (`gso_size` set).
const MAX_GSO_PACKET: usize = 65_535;
/// Passes of [`Device::poll_recv`] before it yields.
const POLL_ROUNDS: usize = 16;
/// Packets resolved per lock of the ARP table in [`Device::send`] (and sent
/// per `sendmmsg`).
const SEND_CHUNK: usize = socket::BATCH;
/// `IFNAMSIZ` (linux/if.h).
const IFNAMSIZ: usize = 16;

/// Settings of a [`RawDevice`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawConfig {
    /// The interface to open (it must exist and carry Ethernet).
    pub iface: String,
    /// The stack's IPv4 address (the kernel must not own it too).
    pub addr: Ipv4Addr,
    /// The prefix length of the on-link network `addr/prefix`.
    pub prefix: u8,
    /// Where packets for destinations outside `addr/prefix` go; without one
    /// they are dropped and counted in [`RawStats::tx_no_route`].
    pub gateway: Option<Ipv4Addr>,
    /// The stack's MAC address; `None` uses the interface's. A MAC other than
    /// the interface's puts the interface in promiscuous mode.
    pub mac: Option<[u8; 6]>,
    /// Record every frame received and sent, Ethernet headers included, to
    /// this pcap file.
    pub capture: Option<PathBuf>,
    /// Ask for `PACKET_VNET_HDR` (see the module docs): the interface's
    /// offloads may stay on. On by default.
    pub offload: bool,
}

impl RawConfig {
    /// The settings for `addr/prefix` on `iface`, with no gateway, the
    /// interface's MAC, no capture and offloads on.
    pub fn new(iface: impl Into<String>, addr: Ipv4Addr, prefix: u8) -> RawConfig {
        RawConfig {
            iface: iface.into(),
            addr,
            prefix,
            gateway: None,
            mac: None,
            capture: None,
            offload: true,
        }
    }
}

/// A snapshot of a [`RawDevice`]'s counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawStats {
    /// Frames read from the socket (the BPF filter already dropped frames
    /// for other MACs and EtherTypes in the kernel).
    pub rx_frames: u64,
    /// Bytes of the frames read (Ethernet headers included).
    pub rx_bytes: u64,
    /// `recvmmsg` calls that returned frames.
    pub rx_batches: u64,
    /// Frames not for us: our own source MAC, an IPv4 packet for another
    /// address, a malformed IPv4 header or ARP packet, an ARP packet about
    /// other hosts.
    pub rx_ignored: u64,
    /// Frames that filled the read buffer, so may have been cut (dropped).
    pub rx_truncated: u64,
    /// IPv4 packets handed to the stack.
    pub rx_packets: u64,
    /// Super-frames read (GRO / TSO, `gso_type` set), counted in `rx_frames`.
    pub rx_super: u64,
    /// Bytes of the super-frames read.
    pub rx_super_bytes: u64,
    /// Frames whose checksums were trusted per their virtio-net header.
    pub rx_csum_trusted: u64,
    /// Frames sent (IPv4 and ARP).
    pub tx_frames: u64,
    /// Bytes of the frames sent (Ethernet headers and padding included).
    pub tx_bytes: u64,
    /// `sendmmsg` calls made.
    pub tx_batches: u64,
    /// Super-frames sent (`gso_size` set), counted in `tx_frames`.
    pub tx_super: u64,
    /// Bytes of the super-frames sent.
    pub tx_super_bytes: u64,
    /// Packets larger than the MTU without `gso_size`, or larger than 64 KiB
    /// (dropped).
    pub tx_oversized: u64,
    /// Packets whose [`Offload`] request the device cannot carry out (no
    /// virtio-net header, or a request the header cannot say; dropped).
    pub tx_offload_refused: u64,
    /// Packets with no next hop: off-link with no gateway, to our own
    /// address, or not IPv4 (dropped).
    pub tx_no_route: u64,
    /// Frames dropped because the socket's send buffer was full.
    pub tx_queue_full: u64,
    /// Frames the socket refused with an error (the interface is down, …).
    pub tx_errors: u64,
    /// ARP requests sent (resolutions, retries, refreshes, the gratuitous one).
    pub arp_requests_sent: u64,
    /// ARP requests for our address answered.
    pub arp_requests_answered: u64,
    /// ARP replies addressed to our address received.
    pub arp_replies_received: u64,
    /// Resolutions (and refreshes) that got no answer.
    pub arp_failures: u64,
    /// Packets dropped from a full per-destination queue while resolving.
    pub arp_queue_drops: u64,
    /// Packets dropped because their next hop never answered.
    pub arp_unresolved_drops: u64,
}

impl RawStats {
    /// Every packet or frame dropped, received or sent, for whatever reason
    /// (frames ignored as not ours are not drops).
    pub fn drops(&self) -> u64 {
        self.rx_truncated
            + self.tx_oversized
            + self.tx_offload_refused
            + self.tx_no_route
            + self.tx_queue_full
            + self.tx_errors
            + self.arp_queue_drops
            + self.arp_unresolved_drops
    }

    /// The mean size of a frame read, in bytes (0 before any).
    pub fn rx_mean_bytes(&self) -> u64 {
        self.rx_bytes.checked_div(self.rx_frames).unwrap_or(0)
    }

    /// The mean size of a super-frame read, in bytes (0 before any).
    pub fn rx_super_mean_bytes(&self) -> u64 {
        self.rx_super_bytes.checked_div(self.rx_super).unwrap_or(0)
    }

    /// The mean size of a super-frame sent, in bytes (0 before any).
    pub fn tx_super_mean_bytes(&self) -> u64 {
        self.tx_super_bytes.checked_div(self.tx_super).unwrap_or(0)
    }
}

#[derive(Debug, Default)]
struct Counters {
    rx_frames: AtomicU64,
    rx_bytes: AtomicU64,
    rx_batches: AtomicU64,
    rx_ignored: AtomicU64,
    rx_truncated: AtomicU64,
    rx_packets: AtomicU64,
    rx_super: AtomicU64,
    rx_super_bytes: AtomicU64,
    rx_csum_trusted: AtomicU64,
    tx_frames: AtomicU64,
    tx_bytes: AtomicU64,
    tx_batches: AtomicU64,
    tx_super: AtomicU64,
    tx_super_bytes: AtomicU64,
    tx_oversized: AtomicU64,
    tx_offload_refused: AtomicU64,
    tx_no_route: AtomicU64,
    tx_queue_full: AtomicU64,
    tx_errors: AtomicU64,
    arp_requests_sent: AtomicU64,
    arp_requests_answered: AtomicU64,
    arp_replies_received: AtomicU64,
    arp_failures: AtomicU64,
    arp_queue_drops: AtomicU64,
    arp_unresolved_drops: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    if n > 0 {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves its
/// state consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A raw-socket [`Device`] on one Ethernet interface (see the module docs).
///
/// A cheap handle: clones are the same device, so one can be kept to read
/// [`stats`](Self::stats) after another was given to a stack. The socket
/// closes when the last clone is dropped.
#[derive(Clone)]
pub struct RawDevice {
    inner: Arc<Inner>,
}

/// The socket's descriptor as the reactor sees it (owned by `Inner::sock`,
/// which outlives every registration: see the field order of [`Inner`]).
struct FdRef(RawFd);

impl AsRawFd for FdRef {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

// Fields drop in order: the polling state (which may hold a registration),
// then the registration, then the socket it registers.
struct Inner {
    /// The polling task's state.
    poller: Mutex<Poller>,
    /// The socket registered with the reactor of the runtime that first
    /// polls the device.
    reactor: OnceLock<Arc<AsyncFd<FdRef>>>,
    iface: String,
    index: u32,
    mac: Mac,
    addr: Ipv4Addr,
    addrs: [IpAddr; 1],
    prefix: u8,
    netmask: u32,
    gateway: Option<Ipv4Addr>,
    mtu: usize,
    offload: OffloadStatus,
    arp: Mutex<Table>,
    counters: Counters,
    capture: Option<PcapWriter>,
    stop: AtomicBool,
    /// The receive slots' and chunks' memory alive ([`Device::rx_memory`]).
    rx_memory: RxMemory,
    /// The polling task, to wake when ARP's next deadline moves earlier.
    waker: Mutex<Option<Waker>>,
    sock: PacketSocket,
}

/// What [`Device::poll_recv`] keeps between calls (only the polling task
/// touches it, so its mutex is never contended).
struct Poller {
    /// The receive slots.
    batch: RxBatch,
    /// Armed for the ARP table's next deadline.
    timer: Option<Pin<Box<Sleep>>>,
    /// Resolves when the socket reports an error (the interface went down);
    /// `false` when the reactor is gone.
    errors: Option<Pin<Box<dyn Future<Output = bool> + Send>>>,
    /// The reactor is gone: no more error watches.
    errors_dead: bool,
    /// The interface went down and no frame came since.
    down: bool,
    /// While down: when to look whether the interface still exists.
    link_check: Option<Pin<Box<Sleep>>>,
    /// Reception ended (the interface was removed): said again on every poll.
    ended: Option<io::ErrorKind>,
}

/// Where a packet goes on the link.
enum NextHop {
    /// Straight to this MAC (broadcast, multicast).
    Mac(Mac),
    /// To the MAC that ARP finds for this address.
    Resolve(Ipv4Addr),
}

/// What one attempt to read the socket gave.
enum Recv {
    /// This many packets went to the stack (0: frames that were not for it).
    Delivered(usize),
    /// Nothing to read; the task is registered for readiness.
    Idle,
}

impl RawDevice {
    /// Opens an AF_PACKET socket on `cfg.iface` and announces `cfg.addr` with
    /// a gratuitous ARP. Needs no Tokio runtime (the socket joins the
    /// reactor of the runtime that first polls it); the socket lives in the
    /// calling thread's network namespace.
    ///
    /// # Errors
    ///
    /// `NotFound` when the interface does not exist (the message names it);
    /// `PermissionDenied` without CAP_NET_RAW; `InvalidInput` for a prefix
    /// above 32, a multicast or zero MAC, or an interface without an Ethernet
    /// address and no `cfg.mac`; any error creating the socket or the capture
    /// file.
    pub fn open(cfg: RawConfig) -> io::Result<RawDevice> {
        let name = cfg.iface.as_str();
        if cfg.prefix > 32 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("raw device on {name}: prefix /{} is above 32", cfg.prefix),
            ));
        }
        let iface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == name)
            .ok_or_else(|| not_found(name))?;
        let if_mac = iface
            .mac
            .map(|m| m.octets())
            .filter(|m| *m != [0; 6] && m[0] & 1 == 0);
        let mac = match (cfg.mac, if_mac) {
            (Some(m), _) if m == [0; 6] || m[0] & 1 == 1 => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("raw device on {name}: {} is not a unicast MAC", fmt_mac(m)),
                ));
            }
            (Some(m), _) | (None, Some(m)) => m,
            (None, None) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "raw device on {name}: the interface has no Ethernet address; set RawConfig::mac"
                    ),
                ));
            }
        };
        let mtu = interface_mtu(name)?;
        let sock = PacketSocket::open(iface.index, mac, Some(mac) != if_mac, cfg.offload).map_err(
            |e| match e.kind() {
                io::ErrorKind::PermissionDenied => io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("raw device on {name}: an AF_PACKET socket needs CAP_NET_RAW ({e})"),
                ),
                _ if e.raw_os_error() == Some(libc::ENODEV) => not_found(name),
                _ => annotate(name, "opening the AF_PACKET socket", e),
            },
        )?;
        let offload = match (&sock.vnet_refused, cfg.offload) {
            (_, false) => OffloadStatus::Disabled,
            (Some(why), true) => {
                tracing::warn!(
                    iface = name,
                    reason = %why,
                    "raw: the kernel refused PACKET_VNET_HDR; running without (turn the interface's offloads off)"
                );
                OffloadStatus::Refused(why.clone())
            }
            (None, true) => OffloadStatus::On,
        };
        let slot = if sock.vnet {
            VNET_SLOT
        } else {
            mtu.max(MIN_BUFFER_MTU) + BUFFER_SLACK
        };
        // Made once the socket is open, so a refused socket leaves no file.
        let capture = match &cfg.capture {
            Some(path) => Some(PcapWriter::create(path, LinkType::Ethernet)?),
            None => None,
        };
        let netmask = u32::MAX
            .checked_shl(32 - u32::from(cfg.prefix))
            .unwrap_or(0);
        let vnet = sock.vnet;
        let rx_memory = RxMemory::new();
        let inner = Arc::new(Inner {
            poller: Mutex::new(Poller {
                batch: RxBatch::new(slot, vnet, rx_memory.clone()),
                timer: None,
                errors: None,
                errors_dead: false,
                down: false,
                link_check: None,
                ended: None,
            }),
            reactor: OnceLock::new(),
            iface: cfg.iface.clone(),
            index: iface.index,
            mac,
            addr: cfg.addr,
            addrs: [IpAddr::V4(cfg.addr)],
            prefix: cfg.prefix,
            netmask,
            gateway: cfg.gateway,
            mtu,
            offload,
            arp: Mutex::new(Table::new(ArpConfig {
                reachable: ARP_REACHABLE,
                retries: ARP_RETRIES,
                interval: ARP_RETRY_INTERVAL,
                queue_limit: ARP_QUEUE_LIMIT,
                table_limit: ARP_TABLE_LIMIT,
            })),
            counters: Counters::default(),
            capture,
            stop: AtomicBool::new(false),
            rx_memory,
            waker: Mutex::new(None),
            sock,
        });
        tracing::debug!(
            iface = name,
            addr = %cfg.addr,
            prefix = cfg.prefix,
            mac = %fmt_mac(mac),
            mtu,
            offload = %inner.offload,
            qdisc_bypass = inner.sock.qdisc_bypass,
            "raw device open"
        );
        // RFC 5227 §3: announce the address (sender = target = ours).
        inner.send_request(cfg.addr, BROADCAST);
        Ok(RawDevice { inner })
    }

    /// The interface name.
    pub fn iface(&self) -> &str {
        &self.inner.iface
    }

    /// The stack's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.inner.mac
    }

    /// The stack's IPv4 address.
    pub fn addr(&self) -> Ipv4Addr {
        self.inner.addr
    }

    /// The on-link prefix length.
    pub fn prefix(&self) -> u8 {
        self.inner.prefix
    }

    /// The gateway for off-link destinations.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.inner.gateway
    }

    /// Whether frames carry virtio-net headers (`PACKET_VNET_HDR`), and if
    /// not, why (turned off, or refused by the kernel when the device opened).
    pub fn offload(&self) -> &OffloadStatus {
        &self.inner.offload
    }

    /// Whether sent frames skip the interface's queueing discipline
    /// (`PACKET_QDISC_BYPASS`; best effort, `false` where the kernel refused).
    pub fn qdisc_bypass(&self) -> bool {
        self.inner.sock.qdisc_bypass
    }

    /// The MAC address ARP knows for `ip` (even an expired one being
    /// refreshed), `None` while unknown or being resolved.
    pub fn neighbor(&self, ip: Ipv4Addr) -> Option<[u8; 6]> {
        lock(&self.inner.arp).get(ip)
    }

    /// The device's counters.
    pub fn stats(&self) -> RawStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RawStats {
            rx_frames: get(&c.rx_frames),
            rx_bytes: get(&c.rx_bytes),
            rx_batches: get(&c.rx_batches),
            rx_ignored: get(&c.rx_ignored),
            rx_truncated: get(&c.rx_truncated),
            rx_packets: get(&c.rx_packets),
            rx_super: get(&c.rx_super),
            rx_super_bytes: get(&c.rx_super_bytes),
            rx_csum_trusted: get(&c.rx_csum_trusted),
            tx_frames: get(&c.tx_frames),
            tx_bytes: get(&c.tx_bytes),
            tx_batches: get(&c.tx_batches),
            tx_super: get(&c.tx_super),
            tx_super_bytes: get(&c.tx_super_bytes),
            tx_oversized: get(&c.tx_oversized),
            tx_offload_refused: get(&c.tx_offload_refused),
            tx_no_route: get(&c.tx_no_route),
            tx_queue_full: get(&c.tx_queue_full),
            tx_errors: get(&c.tx_errors),
            arp_requests_sent: get(&c.arp_requests_sent),
            arp_requests_answered: get(&c.arp_requests_answered),
            arp_replies_received: get(&c.arp_replies_received),
            arp_failures: get(&c.arp_failures),
            arp_queue_drops: get(&c.arp_queue_drops),
            arp_unresolved_drops: get(&c.arp_unresolved_drops),
        }
    }
}

impl fmt::Debug for RawDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("RawDevice")
            .field("iface", &i.iface)
            .field("addr", &i.addr)
            .field("prefix", &i.prefix)
            .field("mac", &fmt_mac(i.mac))
            .field("mtu", &i.mtu)
            .field("offload", &i.offload)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Where a packet for `dst` goes on the link, `None` when nowhere.
    fn next_hop(&self, dst: Ipv4Addr) -> Option<NextHop> {
        let bits = u32::from(dst);
        let net = u32::from(self.addr) & self.netmask;
        let on_link = bits & self.netmask == net;
        if dst.is_broadcast() || (on_link && self.prefix <= 30 && bits == net | !self.netmask) {
            return Some(NextHop::Mac(BROADCAST));
        }
        if dst.is_multicast() {
            // RFC 1112 §6.4: 01:00:5e and the low 23 bits of the group.
            let o = dst.octets();
            return Some(NextHop::Mac([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]));
        }
        if dst == self.addr || dst.is_unspecified() {
            return None;
        }
        if on_link {
            return Some(NextHop::Resolve(dst));
        }
        self.gateway.map(NextHop::Resolve)
    }

    /// The MAC a packet goes to now, or `None` when it was queued for ARP or
    /// dropped (and counted).
    fn resolve(
        &self,
        now: Instant,
        packet: &TxPacket<'_>,
        table: &mut Table,
        fx: &mut Effects,
    ) -> Option<Mac> {
        let c = &self.counters;
        let limit = if packet.meta.gso_size.is_some() {
            MAX_GSO_PACKET
        } else {
            self.mtu
        };
        if packet.len() > limit {
            bump(&c.tx_oversized, 1);
            tracing::trace!(iface = %self.iface, len = packet.len(), "raw: oversized packet dropped");
            return None;
        }
        let hop = ipv4_destination(packet.header).and_then(|dst| self.next_hop(dst));
        match hop {
            Some(NextHop::Mac(mac)) => Some(mac),
            Some(NextHop::Resolve(ip)) => {
                if packet.meta.gso_size.is_none() && packet.meta.csum_partial.is_none() {
                    let copy = || [packet.header, packet.payload, packet.payload_tail].concat();
                    return table.resolve(now, ip, copy, fx);
                }
                // A queued copy leaves later as a plain frame, without its
                // offload request: cut it and complete its checksums now.
                let mut cut = Vec::new();
                if super::gso::segment(packet, |p| cut.push(p)).is_err() {
                    bump(&c.tx_offload_refused, 1);
                    return None;
                }
                let mut mac = None;
                for p in cut {
                    mac = table.resolve(now, ip, || p, fx);
                }
                mac
            }
            None => {
                bump(&c.tx_no_route, 1);
                tracing::trace!(iface = %self.iface, "raw: no route, packet dropped");
                None
            }
        }
    }

    /// The frame carrying `packet` to `dst`, with the virtio-net header its
    /// offload request needs (offsets moved past the Ethernet header), or
    /// `None` when the request cannot be carried out (counted).
    fn frame<'a>(&self, dst: Mac, packet: &TxPacket<'a>) -> Option<TxFrame<'a>> {
        let eth = ethernet_header(dst, self.mac, ETHERTYPE_IPV4);
        let mut frame = TxFrame::new(eth, packet.header, packet.payload, packet.payload_tail);
        let meta = packet.meta;
        if meta.gso_size.is_none() && meta.csum_partial.is_none() {
            return Some(frame);
        }
        let shift = ETH_HEADER_LEN as u16;
        let moved = Offload {
            csum_partial: meta
                .csum_partial
                .and_then(|(s, f)| Some((s.checked_add(shift)?, f.checked_add(shift)?))),
            ..meta
        };
        let header = match self.sock.vnet {
            true => {
                VnetHdr::for_tx(&moved, packet.header, frame.len()).map_err(|e| format!("{e:?}"))
            }
            false => Err(format!("no virtio-net header ({})", self.offload)),
        };
        match header {
            Ok(mut h) => {
                // The segments' headers include the Ethernet header.
                if h.hdr_len > 0 {
                    h.hdr_len += shift;
                }
                frame.vnet = h.emit();
                Some(frame)
            }
            Err(why) => {
                bump(&self.counters.tx_offload_refused, 1);
                tracing::trace!(iface = %self.iface, %why, "raw: offload request refused, packet dropped");
                None
            }
        }
    }

    /// Counts what a send did; the first error goes to `result`.
    fn count_sent(&self, frames: &[TxFrame<'_>], out: SendOutcome, result: &mut io::Result<()>) {
        let c = &self.counters;
        // Frames leave in order: the first `sent` of them went.
        let (mut bytes, mut sup, mut sup_bytes) = (0u64, 0u64, 0u64);
        for f in &frames[..out.sent.min(frames.len())] {
            bytes += f.len() as u64;
            if f.vnet[1] != 0 {
                sup += 1;
                sup_bytes += f.len() as u64;
            }
        }
        bump(&c.tx_frames, out.sent as u64);
        bump(&c.tx_bytes, bytes);
        bump(&c.tx_super, sup);
        bump(&c.tx_super_bytes, sup_bytes);
        bump(&c.tx_batches, out.calls as u64);
        bump(&c.tx_queue_full, out.queue_full as u64);
        bump(&c.tx_errors, out.errors as u64);
        if let Some(cap) = &self.capture {
            for f in &frames[..out.sent.min(frames.len())] {
                cap.write_packet(&[
                    &f.eth,
                    f.header,
                    f.payload,
                    f.payload_tail,
                    &[0u8; 60][..f.pad],
                ]);
            }
        }
        if let Some(e) = out.first_error {
            tracing::trace!(iface = %self.iface, error = %e, "raw: send failed");
            if result.is_ok() {
                *result = Err(annotate(&self.iface, "send", e));
            }
        }
    }

    /// Sends one whole frame made here (ARP), counting the outcome.
    fn send_raw_frame(&self, frame: &[u8]) {
        let mut eth = [0u8; ETH_HEADER_LEN];
        eth.copy_from_slice(&frame[..ETH_HEADER_LEN]);
        let f = TxFrame::new(eth, &frame[ETH_HEADER_LEN..], &[], &[]);
        let out = self.sock.send_one(&f);
        let mut ignored = Ok(());
        self.count_sent(std::slice::from_ref(&f), out, &mut ignored);
    }

    /// Sends an ARP request for `target` to `dst` (broadcast to resolve, the
    /// neighbour's MAC to refresh, broadcast for ourselves to announce).
    fn send_request(&self, target: Ipv4Addr, dst: Mac) {
        let request = ArpPacket {
            op: Op::Request,
            sender_mac: self.mac,
            sender_ip: self.addr,
            target_mac: [0; 6],
            target_ip: target,
        };
        bump(&self.counters.arp_requests_sent, 1);
        self.send_raw_frame(&request.frame(dst));
    }

    /// Sends the requests ARP asked for, counts its drops, and wakes the
    /// polling task if its timer must move earlier (`wake`: the caller is not
    /// that task).
    fn apply(&self, fx: Effects, wake: bool) {
        let c = &self.counters;
        bump(&c.arp_queue_drops, fx.queue_drops);
        bump(&c.arp_failures, fx.failures);
        bump(&c.arp_unresolved_drops, fx.unresolved_drops);
        for r in &fx.requests {
            self.send_request(r.target, r.dst);
        }
        if wake && fx.rearm {
            self.wake_poller();
        }
    }

    /// Wakes the polling task (its ARP deadline moved earlier) through the
    /// reactor registration it waits on.
    fn wake_poller(&self) {
        if let Some(waker) = lock(&self.waker).take() {
            waker.wake();
        }
    }

    /// Sends packets that waited for `ip` to resolve to `mac`.
    fn flush(&self, ip: Ipv4Addr, mac: Mac, waiting: VecDeque<Vec<u8>>) {
        tracing::trace!(%ip, packets = waiting.len(), "raw: resolved, flushing");
        let eth = ethernet_header(mac, self.mac, ETHERTYPE_IPV4);
        let frames: Vec<TxFrame<'_>> = waiting
            .iter()
            .map(|p| TxFrame::new(eth, p, &[], &[]))
            .collect();
        let out = self.sock.send(&frames);
        let mut ignored = Ok(());
        self.count_sent(&frames, out, &mut ignored);
    }

    /// Runs ARP's timers if one is due.
    fn run_timers(&self, now: Instant) {
        let mut fx = Effects::default();
        lock(&self.arp).poll_timers(now, &mut fx);
        self.apply(fx, false);
    }

    /// The byte range of the IPv4 packet in `frame` if it is for us (the
    /// Ethernet padding cut off).
    fn ipv4_for_us(&self, frame: &[u8]) -> Option<Range<usize>> {
        let ip = frame.get(ETH_HEADER_LEN..)?;
        let first = *ip.first()?;
        let ihl = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || ihl < 20 || ip.len() < ihl {
            return None;
        }
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if total < ihl || total > ip.len() {
            return None;
        }
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        (dst == self.addr).then_some(ETH_HEADER_LEN..ETH_HEADER_LEN + total)
    }

    /// RFC 826 packet reception: merge, learn if it is for us, answer a
    /// request for our address.
    fn handle_arp(&self, now: Instant, frame: &[u8], fx: &mut Effects) {
        let c = &self.counters;
        let Some(p) = frame.get(ETH_HEADER_LEN..).and_then(ArpPacket::parse) else {
            bump(&c.rx_ignored, 1);
            return;
        };
        if p.sender_mac == self.mac {
            bump(&c.rx_ignored, 1);
            return;
        }
        if p.sender_ip == self.addr {
            tracing::debug!(
                iface = %self.iface,
                addr = %self.addr,
                mac = %fmt_mac(p.sender_mac),
                "raw: another host claims our address"
            );
            bump(&c.rx_ignored, 1);
            return;
        }
        let for_us = p.target_ip == self.addr;
        let sender_ok = !p.sender_ip.is_unspecified()
            && !p.sender_ip.is_broadcast()
            && p.sender_mac != [0; 6]
            && p.sender_mac[0] & 1 == 0;
        if sender_ok {
            let waiting = lock(&self.arp).learn(now, p.sender_ip, p.sender_mac, for_us, fx);
            if let Some(waiting) = waiting {
                self.flush(p.sender_ip, p.sender_mac, waiting);
            }
        }
        if !for_us {
            bump(&c.rx_ignored, 1);
            return;
        }
        match p.op {
            Op::Reply => bump(&c.arp_replies_received, 1),
            Op::Request => {
                let reply = ArpPacket {
                    op: Op::Reply,
                    sender_mac: self.mac,
                    sender_ip: self.addr,
                    target_mac: p.sender_mac,
                    target_ip: p.sender_ip,
                };
                // Unicast to the requester (its Ethernet source if ar$sha is
                // not a unicast address, as in some probes).
                let dst = if p.sender_mac[0] & 1 == 0 && p.sender_mac != [0; 6] {
                    p.sender_mac
                } else {
                    let mut src = [0u8; 6];
                    src.copy_from_slice(&frame[6..12]);
                    src
                };
                bump(&c.arp_requests_answered, 1);
                self.send_raw_frame(&reply.frame(dst));
            }
        }
    }

    /// Handles frames `0..n` of the last batch: IPv4 packets for us go to
    /// `out`, ARP is answered. Returns how many packets went to `out`.
    fn deliver(
        &self,
        now: Instant,
        batch: &mut RxBatch,
        n: usize,
        out: &mut Vec<RxPacket>,
    ) -> usize {
        let c = &self.counters;
        let mut fx = Effects::default();
        let (mut delivered, mut bytes, mut sup, mut sup_bytes, mut trusted, mut cut) =
            (0usize, 0u64, 0u64, 0u64, 0u64, 0u64);
        cut += (0..n).filter(|&i| batch.truncated(i)).count() as u64;
        for f in batch.take_frames(n) {
            let (frame, meta) = (f.data, f.meta);
            bytes += frame.len() as u64;
            if meta.gso_size.is_some() {
                sup += 1;
                sup_bytes += frame.len() as u64;
            }
            trusted += u64::from(meta.csum_verified);
            if let Some(cap) = &self.capture {
                record(cap, &frame, &meta);
            }
            if !wanted(&frame, self.mac) {
                bump(&c.rx_ignored, 1);
                continue;
            }
            let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
            match ethertype {
                ETHERTYPE_IPV4 => match self.ipv4_for_us(&frame) {
                    Some(range) => {
                        out.push(RxPacket {
                            data: frame.slice(range),
                            meta: ip_offload(meta),
                            truesize: f.truesize,
                        });
                        delivered += 1;
                    }
                    None => bump(&c.rx_ignored, 1),
                },
                ETHERTYPE_ARP => self.handle_arp(now, &frame, &mut fx),
                _ => bump(&c.rx_ignored, 1),
            }
        }
        self.apply(fx, false);
        bump(&c.rx_frames, n as u64);
        bump(&c.rx_bytes, bytes);
        bump(&c.rx_batches, 1);
        bump(&c.rx_super, sup);
        bump(&c.rx_super_bytes, sup_bytes);
        bump(&c.rx_csum_trusted, trusted);
        bump(&c.rx_truncated, cut);
        bump(&c.rx_packets, delivered as u64);
        delivered
    }

    /// The socket's registration with the current runtime's reactor, made
    /// on first use.
    fn reactor(&self) -> io::Result<&Arc<AsyncFd<FdRef>>> {
        if let Some(r) = self.reactor.get() {
            return Ok(r);
        }
        // SAFETY: `FdRef` returns the socket's descriptor from every call;
        // the socket is closed only when `Inner` drops, after this
        // registration (field order), and every future holding the
        // registration lives in `Inner::poller`, dropped first.
        let fd = unsafe {
            AsyncFd::register_with_interest(
                FdRef(self.sock.as_raw_fd()),
                Interest::READABLE | Interest::ERROR,
            )
        }
        .map_err(|e| annotate(&self.iface, "registering with Tokio", e.into_parts().1))?;
        // Only the polling task gets here; a lost race keeps the first.
        Ok(self.reactor.get_or_init(|| Arc::new(fd)))
    }

    /// Reads one batch if the socket is readable, or at once when `error`
    /// (the socket reported an error, which a read returns without the
    /// socket being readable). Interface trouble is handled here: down
    /// (ENETDOWN) pauses, removed ends reception.
    fn try_recv(
        &self,
        poller: &mut Poller,
        cx: &mut Context<'_>,
        now: Instant,
        out: &mut Vec<RxPacket>,
        (max, error): (usize, bool),
    ) -> io::Result<Recv> {
        let fd = self.reactor()?;
        // Bounded: the second pass registers the waker after a drained read.
        for pass in 0..2 {
            let mut guard = match fd.poll_read_ready(cx) {
                Poll::Ready(r) => {
                    Some(r.map_err(|e| annotate(&self.iface, "waiting for frames", e))?)
                }
                Poll::Pending if error && pass == 0 => None,
                Poll::Pending => return Ok(Recv::Idle),
            };
            match poller.batch.recv(&self.sock, max) {
                Ok(n) => {
                    poller.down = false;
                    poller.link_check = None;
                    return Ok(Recv::Delivered(self.deliver(
                        now,
                        &mut poller.batch,
                        n,
                        out,
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(g) = guard.as_mut() {
                        g.clear_ready();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                    self.check_link(poller)?;
                    return Ok(Recv::Delivered(0));
                }
                Err(e) => return Err(annotate(&self.iface, "reading the socket", e)),
            }
        }
        Ok(Recv::Idle)
    }

    /// The interface went down or may have been removed: `NotFound` when it
    /// is gone, else reads pause until a frame comes.
    fn check_link(&self, poller: &mut Poller) -> io::Result<()> {
        if !interface_exists(self.index) {
            poller.ended = Some(io::ErrorKind::NotFound);
            return Err(removed());
        }
        if !poller.down {
            tracing::trace!(iface = %self.iface, "raw: interface down, waiting");
        }
        poller.down = true;
        Ok(())
    }
}

/// An Ethernet frame's offload metadata for the IP packet inside it (the
/// partial checksum's offsets moved past the Ethernet header).
fn ip_offload(meta: Offload) -> Offload {
    let shift = ETH_HEADER_LEN as u16;
    Offload {
        csum_partial: meta
            .csum_partial
            .and_then(|(s, f)| Some((s.checked_sub(shift)?, f.checked_sub(shift)?))),
        ..meta
    }
}

/// Records a received frame, its partial checksum completed (so the file
/// shows what a wire would have carried).
fn record(cap: &PcapWriter, frame: &[u8], meta: &Offload) {
    if let Some((start, field)) = meta.csum_partial
        && let Some(sum) = complete_checksum(frame, start, field)
    {
        let field = usize::from(field);
        cap.write_packet(&[&frame[..field], &sum.to_be_bytes(), &frame[field + 2..]]);
        return;
    }
    cap.write_packet(&[frame]);
}

impl Device for RawDevice {
    fn medium(&self) -> Medium {
        Medium::Ethernet
    }

    fn rx_memory(&self) -> Option<RxMemory> {
        Some(self.inner.rx_memory.clone())
    }

    fn mtu(&self) -> usize {
        self.inner.mtu
    }

    /// With the virtio-net header: checksums trusted on receive and
    /// completed on send, super-frames of up to 64 KiB both ways.
    fn capabilities(&self) -> Capabilities {
        if self.inner.sock.vnet {
            Capabilities {
                rx_checksum: true,
                tx_checksum: true,
                max_rx_packet: MAX_GSO_PACKET,
                max_gso_packet: Some(MAX_GSO_PACKET),
            }
        } else {
            Capabilities::plain(self.inner.mtu)
        }
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
        let inner = &*self.inner;
        if inner.stop.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        let mut guard = lock(&inner.poller);
        let poller = &mut *guard;
        if let Some(kind) = poller.ended {
            return Poll::Ready(Err(io::Error::new(kind, removed().to_string())));
        }
        // A fired timer counts as its deadline reached, even if the clock
        // reads a little earlier (never spin on it).
        let mut floor: Option<Instant> = None;
        let mut error = false;
        for _ in 0..POLL_ROUNDS {
            let now = floor.map_or_else(Instant::now, |f| Instant::now().max(f));
            inner.run_timers(now);
            let got = inner.try_recv(poller, cx, now, out, (max, error));
            error = false;
            match got {
                Ok(Recv::Delivered(n)) if n > 0 => return Poll::Ready(Ok(n)),
                Ok(Recv::Delivered(_)) => continue,
                Ok(Recv::Idle) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            // Nothing to read and the reactor will wake us: register for the
            // other wake-ups, then sleep unless one already fired.
            {
                let mut w = lock(&inner.waker);
                match &*w {
                    Some(old) if old.will_wake(cx.waker()) => {}
                    _ => *w = Some(cx.waker().clone()),
                }
            }
            let mut fired = false;
            // A socket error (the interface went down) is read on the next
            // pass.
            if poller.errors.is_none()
                && !poller.errors_dead
                && let Ok(fd) = inner.reactor()
            {
                let fd = fd.clone();
                poller.errors = Some(Box::pin(async move {
                    match fd.ready(Interest::ERROR).await {
                        Ok(mut g) => {
                            g.clear_ready_matching(Ready::ERROR);
                            true
                        }
                        Err(_) => false,
                    }
                }));
            }
            if let Some(errors) = poller.errors.as_mut()
                && let Poll::Ready(alive) = errors.as_mut().poll(cx)
            {
                // A dead reactor never reports again: stop asking.
                poller.errors = None;
                poller.errors_dead = !alive;
                fired |= alive;
                error = alive;
            }
            if poller.down {
                let check = poller
                    .link_check
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(LINK_CHECK_INTERVAL)));
                if check.as_mut().poll(cx).is_ready() {
                    poller.link_check = None;
                    if let Err(e) = inner.check_link(poller) {
                        return Poll::Ready(Err(e));
                    }
                    fired = true;
                }
            }
            // ARP's next deadline, if any (read after the waker is
            // registered, so a sender that moves it earlier wakes us).
            if let Some(deadline) = lock(&inner.arp).next_deadline() {
                let timer = poller
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    floor = Some(deadline);
                    fired = true;
                }
            }
            if !fired {
                return Poll::Pending;
            }
        }
        // Many frames that were not for the stack: let other tasks run.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn close(&self) {
        self.inner.stop.store(true, Ordering::Release);
    }

    fn send(&self, packets: &[TxPacket<'_>]) -> io::Result<()> {
        let inner = &*self.inner;
        let now = Instant::now();
        let mut fx = Effects::default();
        let mut result = Ok(());
        const EMPTY: TxFrame<'static> = TxFrame {
            vnet: [0; VNET_HDR_LEN],
            eth: [0; ETH_HEADER_LEN],
            header: &[],
            payload: &[],
            payload_tail: &[],
            pad: 0,
        };
        for chunk in packets.chunks(SEND_CHUNK) {
            let mut hops = [None; SEND_CHUNK];
            {
                let mut table = lock(&inner.arp);
                for (hop, packet) in hops.iter_mut().zip(chunk) {
                    *hop = inner.resolve(now, packet, &mut table, &mut fx);
                }
            }
            // The ARP lock is released: one sendmmsg for the chunk.
            let mut frames = [EMPTY; SEND_CHUNK];
            let mut n = 0;
            for (hop, packet) in hops.iter().zip(chunk) {
                if let Some(mac) = *hop
                    && let Some(frame) = inner.frame(mac, packet)
                {
                    frames[n] = frame;
                    n += 1;
                }
            }
            if n > 0 {
                let out = inner.sock.send(&frames[..n]);
                inner.count_sent(&frames[..n], out, &mut result);
            }
        }
        inner.apply(fx, true);
        result
    }
}

impl DeviceAddrs for RawDevice {
    fn addrs(&self) -> &[IpAddr] {
        &self.inner.addrs
    }
}

fn removed() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        "raw device: the interface was removed",
    )
}

/// Whether an interface with this index exists (in the calling thread's
/// network namespace).
fn interface_exists(index: u32) -> bool {
    let mut name = [0 as libc::c_char; IFNAMSIZ];
    // SAFETY: `name` has the IFNAMSIZ bytes if_indextoname writes at most.
    !unsafe { libc::if_indextoname(index, name.as_mut_ptr()) }.is_null()
}

/// Whether a frame is for us at the Ethernet level: addressed to our MAC or
/// broadcast, not sent by us, IPv4 or ARP.
fn wanted(frame: &[u8], mac: Mac) -> bool {
    if frame.len() < ETH_HEADER_LEN {
        return false;
    }
    let dst = &frame[0..6];
    let src = &frame[6..12];
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    (dst == mac || dst == BROADCAST)
        && src != mac
        && (ethertype == ETHERTYPE_IPV4 || ethertype == ETHERTYPE_ARP)
}

/// The destination of an IPv4 packet from its header bytes.
fn ipv4_destination(header: &[u8]) -> Option<Ipv4Addr> {
    if header.first()? >> 4 != 4 {
        return None;
    }
    let d: [u8; 4] = header.get(16..20)?.try_into().ok()?;
    Some(Ipv4Addr::from(d))
}

fn fmt_mac(m: Mac) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

fn not_found(iface: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("raw device: no network interface named {iface:?} in this network namespace"),
    )
}

fn annotate(iface: &str, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("raw device on {iface}: {what}: {e}"))
}

/// The interface's MTU (SIOCGIFMTU on a socket of the calling thread's
/// network namespace; `/sys` may show another namespace).
fn interface_mtu(iface: &str) -> io::Result<usize> {
    /// `struct ifreq` with the `ifr_mtu` member of its union (40 bytes).
    #[repr(C)]
    struct IfreqMtu {
        name: [libc::c_char; IFNAMSIZ],
        mtu: libc::c_int,
        _pad: [u8; 20],
    }
    let bytes = iface.as_bytes();
    if bytes.is_empty() || bytes.len() >= IFNAMSIZ || bytes.contains(&0) {
        return Err(not_found(iface));
    }
    let mut req = IfreqMtu {
        name: [0; IFNAMSIZ],
        mtu: 0,
        _pad: [0; 20],
    };
    for (d, s) in req.name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: plain socket call; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(annotate(
            iface,
            "reading the MTU",
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: `req` is a valid, writable ifreq-sized buffer for SIOCGIFMTU.
    let r = unsafe { libc::ioctl(fd, libc::SIOCGIFMTU as _, &mut req as *mut IfreqMtu) };
    let err = io::Error::last_os_error();
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    if r < 0 {
        return Err(if err.raw_os_error() == Some(libc::ENODEV) {
            not_found(iface)
        } else {
            annotate(iface, "reading the MTU", err)
        });
    }
    usize::try_from(req.mtu)
        .ok()
        .filter(|&m| m >= 68)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "raw device on {iface}: MTU {} is too small for IPv4",
                    req.mtu
                ),
            )
        })
}

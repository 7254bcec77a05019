//! The raw-socket device: an AF_PACKET socket on an existing Ethernet
//! interface, carrying the stack's own IPv4 and MAC addresses.
//!
//! A [`RawDevice`] opens a layer-2 socket on one interface through pnet's
//! datalink layer and exchanges whole IPv4 packets with the stack: it strips
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
//! What it receives: frames addressed to its MAC or broadcast, of type IPv4
//! or ARP; IPv4 packets whose destination is not its address are ignored.
//! Frames up to the interface MTU (9000-byte jumbo frames included) are read
//! whole; a frame that fills the read buffer (a GSO super-segment, say) is
//! dropped and counted in [`RawStats::rx_truncated`].
//!
//! Reads never block a Tokio worker: a dedicated thread reads the socket
//! (with a short timeout, so it notices within [`READ_TIMEOUT`] that the last
//! handle was dropped) and hands frames to [`Device::poll_recv`] through a
//! bounded queue ([`RX_QUEUE_LIMIT`] frames; a full queue drops and counts).
//! Sends never wait: a full socket buffer drops the frame and counts it.
//! The interface going down and up again is survived (reads pause while it
//! is down); removing it ends reception with `NotFound`.
//! ARP's timers run on the task that polls [`Device::poll_recv`] (the stack's
//! device task) and every clock reading is `tokio::time::Instant`, as
//! DESIGN's clock rule asks.
//!
//! Offloads: the device reads what the socket gives it. On a veth pair or a
//! NIC with checksum or segmentation offloads on, the kernel hands AF_PACKET
//! readers partial checksums and super-segments; turn them off with
//! `ethtool -K IFACE tx off tso off gso off gro off`.
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

use super::capture::{LinkType, PcapWriter};
use super::{Device, DeviceAddrs, Medium, Offload, RxPacket, TxPacket};
use arp::{
    ArpConfig, ArpPacket, BROADCAST, ETH_HEADER_LEN, ETH_MIN_FRAME, ETHERTYPE_ARP, ETHERTYPE_IPV4,
    Effects, Mac, Op, Table, ethernet_header,
};
use bytes::{Bytes, BytesMut};
use pnet_datalink::{DataLinkReceiver, DataLinkSender};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
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
/// Received frames waiting for the stack; more are dropped and counted.
pub const RX_QUEUE_LIMIT: usize = 4096;
/// The reader thread's socket timeout: how soon it notices it must stop.
pub const READ_TIMEOUT: Duration = Duration::from_millis(50);

/// The smallest MTU the read buffer is sized for, so jumbo frames always fit.
const MIN_BUFFER_MTU: usize = 9000;
/// Read buffer room beyond the MTU: the Ethernet header, a VLAN tag, and
/// enough that a frame filling the buffer is known to be truncated.
const BUFFER_SLACK: usize = 64;
/// Received frames are copied into chunks of this size, several per chunk.
const ARENA: usize = 256 * 1024;
/// Socket buffer sizes asked for (the kernel may cap them).
const SOCKET_BUFFER: libc::c_int = 4 << 20;
/// Passes of [`Device::poll_recv`] before it yields.
const POLL_ROUNDS: usize = 16;
/// Packets resolved per lock of the ARP table in [`Device::send`].
const SEND_CHUNK: usize = 32;

// Linux constants (linux/if_packet.h, linux/socket.h), kept here so the
// module does not depend on which of them the libc crate exports.
const SOL_PACKET: libc::c_int = 263;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
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
}

impl RawConfig {
    /// The settings for `addr/prefix` on `iface`, with no gateway, the
    /// interface's MAC and no capture.
    pub fn new(iface: impl Into<String>, addr: Ipv4Addr, prefix: u8) -> RawConfig {
        RawConfig {
            iface: iface.into(),
            addr,
            prefix,
            gateway: None,
            mac: None,
            capture: None,
        }
    }
}

/// A snapshot of a [`RawDevice`]'s counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawStats {
    /// Frames read from the socket.
    pub rx_frames: u64,
    /// Frames not for us: another MAC, our own, another EtherType, an IPv4
    /// packet for another address, a malformed IPv4 header or ARP packet, an
    /// ARP packet about other hosts.
    pub rx_ignored: u64,
    /// Frames that filled the read buffer, so may have been cut (dropped).
    pub rx_truncated: u64,
    /// Frames dropped because the receive queue was full.
    pub rx_queue_drops: u64,
    /// IPv4 packets handed to the stack.
    pub rx_packets: u64,
    /// Frames sent (IPv4 and ARP).
    pub tx_frames: u64,
    /// Packets larger than the MTU (dropped).
    pub tx_oversized: u64,
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
            + self.rx_queue_drops
            + self.tx_oversized
            + self.tx_no_route
            + self.tx_queue_full
            + self.tx_errors
            + self.arp_queue_drops
            + self.arp_unresolved_drops
    }
}

#[derive(Debug, Default)]
struct Counters {
    rx_frames: AtomicU64,
    rx_ignored: AtomicU64,
    rx_truncated: AtomicU64,
    rx_queue_drops: AtomicU64,
    rx_packets: AtomicU64,
    tx_frames: AtomicU64,
    tx_oversized: AtomicU64,
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
/// [`stats`](Self::stats) after another was given to a stack. The reader
/// thread stops, and the socket closes, soon after the last clone is dropped.
#[derive(Clone)]
pub struct RawDevice {
    inner: Arc<Inner>,
}

struct Inner {
    iface: String,
    mac: Mac,
    addr: Ipv4Addr,
    addrs: [IpAddr; 1],
    prefix: u8,
    netmask: u32,
    gateway: Option<Ipv4Addr>,
    mtu: usize,
    tx: Mutex<Tx>,
    arp: Mutex<Table>,
    rx: Arc<RxShared>,
    counters: Arc<Counters>,
    /// The polling task's state.
    poller: Mutex<Poller>,
    capture: Option<PcapWriter>,
}

/// The sending half of the socket and the buffer frames are built in.
struct Tx {
    sender: Box<dyn DataLinkSender>,
    frame: Vec<u8>,
}

/// What [`Device::poll_recv`] keeps between calls.
struct Poller {
    /// Frames taken off the receive queue, reused.
    frames: Vec<Bytes>,
    /// Armed for the ARP table's next deadline.
    timer: Option<Pin<Box<Sleep>>>,
}

/// Shared by the reader thread and the device.
struct RxShared {
    stop: AtomicBool,
    queue: Mutex<RxQueue>,
}

struct RxQueue {
    frames: VecDeque<Bytes>,
    /// The task waiting in `poll_recv`.
    waker: Option<Waker>,
    /// The reader thread stopped on this error.
    error: Option<io::Error>,
}

impl RxShared {
    /// The polling task, to be woken (new frames, an earlier ARP deadline).
    fn take_waker(&self) -> Option<Waker> {
        lock(&self.queue).waker.take()
    }

    fn push(&self, frame: Bytes, counters: &Counters) {
        let waker = {
            let mut q = lock(&self.queue);
            if q.frames.len() >= RX_QUEUE_LIMIT {
                bump(&counters.rx_queue_drops, 1);
                return;
            }
            q.frames.push_back(frame);
            q.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn fail(&self, error: io::Error) {
        let waker = {
            let mut q = lock(&self.queue);
            q.error = Some(error);
            q.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The reader thread sees this within READ_TIMEOUT and exits, closing
        // the socket; it is not joined, so dropping never blocks a worker.
        self.rx.stop.store(true, Ordering::Release);
    }
}

/// Where a packet goes on the link.
enum NextHop {
    /// Straight to this MAC (broadcast, multicast).
    Mac(Mac),
    /// To the MAC that ARP finds for this address.
    Resolve(Ipv4Addr),
}

impl RawDevice {
    /// Opens an AF_PACKET socket on `cfg.iface`, starts its reader thread and
    /// announces `cfg.addr` with a gratuitous ARP. Needs no Tokio runtime;
    /// the socket lives in the calling thread's network namespace.
    ///
    /// # Errors
    ///
    /// `NotFound` when the interface does not exist (the message names it);
    /// `PermissionDenied` without CAP_NET_RAW; `InvalidInput` for a prefix
    /// above 32, a multicast or zero MAC, or an interface without an Ethernet
    /// address and no `cfg.mac`; any error creating the capture file or the
    /// reader thread.
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
        let buffer = mtu.max(MIN_BUFFER_MTU) + BUFFER_SLACK;

        let fd = packet_socket(name)?;
        let config = pnet_datalink::Config {
            write_buffer_size: buffer,
            read_buffer_size: buffer,
            read_timeout: Some(READ_TIMEOUT),
            // pnet polls for room before each send: never wait for it.
            write_timeout: Some(Duration::ZERO),
            channel_type: pnet_datalink::ChannelType::Layer2,
            promiscuous: Some(mac) != if_mac,
            socket_fd: Some(fd),
            ..pnet_datalink::Config::default()
        };
        // pnet owns (and on error closes) the socket from here on.
        let (sender, receiver) = match pnet_datalink::channel(&iface, config) {
            Ok(pnet_datalink::Channel::Ethernet(tx, rx)) => (tx, rx),
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("raw device on {name}: pnet returned a non-Ethernet channel"),
                ));
            }
            Err(e) => return Err(annotate(name, "binding the AF_PACKET socket", e)),
        };
        // Made once the socket is open, so a refused socket leaves no file.
        let capture = match &cfg.capture {
            Some(path) => Some(PcapWriter::create(path, LinkType::Ethernet)?),
            None => None,
        };

        let counters = Arc::new(Counters::default());
        let rx = Arc::new(RxShared {
            stop: AtomicBool::new(false),
            queue: Mutex::new(RxQueue {
                frames: VecDeque::new(),
                waker: None,
                error: None,
            }),
        });
        let reader = Reader {
            rx: receiver,
            shared: rx.clone(),
            counters: counters.clone(),
            mac,
            buffer,
            fd,
            index: iface.index,
            down: false,
        };
        std::thread::Builder::new()
            .name(format!("utcp-raw-{name}"))
            .spawn(move || reader.run())
            .map_err(|e| annotate(name, "starting the reader thread", e))?;

        let netmask = u32::MAX
            .checked_shl(32 - u32::from(cfg.prefix))
            .unwrap_or(0);
        let inner = Arc::new(Inner {
            iface: cfg.iface.clone(),
            mac,
            addr: cfg.addr,
            addrs: [IpAddr::V4(cfg.addr)],
            prefix: cfg.prefix,
            netmask,
            gateway: cfg.gateway,
            mtu,
            tx: Mutex::new(Tx {
                sender,
                frame: Vec::with_capacity(buffer),
            }),
            arp: Mutex::new(Table::new(ArpConfig {
                reachable: ARP_REACHABLE,
                retries: ARP_RETRIES,
                interval: ARP_RETRY_INTERVAL,
                queue_limit: ARP_QUEUE_LIMIT,
                table_limit: ARP_TABLE_LIMIT,
            })),
            rx,
            counters,
            poller: Mutex::new(Poller {
                frames: Vec::new(),
                timer: None,
            }),
            capture,
        });
        tracing::debug!(
            iface = name,
            addr = %cfg.addr,
            prefix = cfg.prefix,
            mac = %fmt_mac(mac),
            mtu,
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

    /// The MAC address ARP knows for `ip` (even an expired one being
    /// refreshed), `None` while unknown or being resolved.
    pub fn neighbor(&self, ip: Ipv4Addr) -> Option<[u8; 6]> {
        lock(&self.inner.arp).get(ip)
    }

    /// The device's counters.
    pub fn stats(&self) -> RawStats {
        let c = &*self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RawStats {
            rx_frames: get(&c.rx_frames),
            rx_ignored: get(&c.rx_ignored),
            rx_truncated: get(&c.rx_truncated),
            rx_queue_drops: get(&c.rx_queue_drops),
            rx_packets: get(&c.rx_packets),
            tx_frames: get(&c.tx_frames),
            tx_oversized: get(&c.tx_oversized),
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
        let c = &*self.counters;
        if packet.len() > self.mtu {
            bump(&c.tx_oversized, 1);
            tracing::trace!(iface = %self.iface, len = packet.len(), "raw: oversized packet dropped");
            return None;
        }
        let hop = ipv4_destination(packet.header).and_then(|dst| self.next_hop(dst));
        match hop {
            Some(NextHop::Mac(mac)) => Some(mac),
            Some(NextHop::Resolve(ip)) => {
                table.resolve(now, ip, || [packet.header, packet.payload].concat(), fx)
            }
            None => {
                bump(&c.tx_no_route, 1);
                tracing::trace!(iface = %self.iface, "raw: no route, packet dropped");
                None
            }
        }
    }

    /// Sends one IPv4 packet to `dst`.
    fn send_ipv4(&self, tx: &mut Tx, dst: Mac, header: &[u8], payload: &[u8]) -> io::Result<()> {
        let eth = ethernet_header(dst, self.mac, ETHERTYPE_IPV4);
        tx.frame.clear();
        tx.frame.extend_from_slice(&eth);
        tx.frame.extend_from_slice(header);
        tx.frame.extend_from_slice(payload);
        if tx.frame.len() < ETH_MIN_FRAME {
            tx.frame.resize(ETH_MIN_FRAME, 0);
        }
        let Tx { sender, frame } = tx;
        self.send_frame(sender.as_mut(), frame)
    }

    /// Sends one whole frame, counting the outcome; a full socket buffer is
    /// a drop, not an error.
    fn send_frame(&self, sender: &mut dyn DataLinkSender, frame: &[u8]) -> io::Result<()> {
        let c = &*self.counters;
        let result = sender
            .send_to(frame, None)
            .unwrap_or_else(|| Err(io::Error::other("pnet refused the frame")));
        match result {
            Ok(()) => {
                bump(&c.tx_frames, 1);
                if let Some(cap) = &self.capture {
                    cap.write_packet(&[frame]);
                }
                Ok(())
            }
            Err(e) if is_queue_full(&e) => {
                bump(&c.tx_queue_full, 1);
                Ok(())
            }
            Err(e) => {
                bump(&c.tx_errors, 1);
                tracing::trace!(iface = %self.iface, error = %e, "raw: send failed");
                Err(e)
            }
        }
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
        let mut tx = lock(&self.tx);
        let _ = self.send_frame(tx.sender.as_mut(), &request.frame(dst));
    }

    /// Sends the requests ARP asked for, counts its drops, and wakes the
    /// polling task if its timer must move earlier (`wake`: the caller is not
    /// that task).
    fn apply(&self, fx: Effects, wake: bool) {
        let c = &*self.counters;
        bump(&c.arp_queue_drops, fx.queue_drops);
        bump(&c.arp_failures, fx.failures);
        bump(&c.arp_unresolved_drops, fx.unresolved_drops);
        for r in &fx.requests {
            self.send_request(r.target, r.dst);
        }
        if wake
            && fx.rearm
            && let Some(waker) = self.rx.take_waker()
        {
            waker.wake();
        }
    }

    /// Sends packets that waited for `ip` to resolve to `mac`.
    fn flush(&self, ip: Ipv4Addr, mac: Mac, waiting: VecDeque<Vec<u8>>) {
        tracing::trace!(%ip, packets = waiting.len(), "raw: resolved, flushing");
        let mut tx = lock(&self.tx);
        for packet in &waiting {
            let _ = self.send_ipv4(&mut tx, mac, packet, &[]);
        }
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
        let c = &*self.counters;
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
                let mut tx = lock(&self.tx);
                let _ = self.send_frame(tx.sender.as_mut(), &reply.frame(dst));
            }
        }
    }

    /// Handles received frames: IPv4 packets for us go to `out`, ARP is
    /// answered. Returns how many packets went to `out`.
    fn deliver(&self, now: Instant, frames: &mut Vec<Bytes>, out: &mut Vec<RxPacket>) -> usize {
        let c = &*self.counters;
        let mut fx = Effects::default();
        let mut n = 0;
        for frame in frames.drain(..) {
            if let Some(cap) = &self.capture {
                cap.write_packet(&[&frame]);
            }
            // The reader only queues frames with a whole Ethernet header.
            let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
            match ethertype {
                ETHERTYPE_IPV4 => match self.ipv4_for_us(&frame) {
                    Some(range) => {
                        out.push(RxPacket {
                            data: frame.slice(range),
                            meta: Offload::default(),
                        });
                        n += 1;
                    }
                    None => bump(&c.rx_ignored, 1),
                },
                ETHERTYPE_ARP => self.handle_arp(now, &frame, &mut fx),
                _ => bump(&c.rx_ignored, 1),
            }
        }
        self.apply(fx, false);
        bump(&c.rx_packets, n as u64);
        n
    }
}

impl Device for RawDevice {
    fn medium(&self) -> Medium {
        Medium::Ethernet
    }

    fn mtu(&self) -> usize {
        self.inner.mtu
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
        let mut guard = lock(&inner.poller);
        let poller = &mut *guard;
        // A fired timer counts as its deadline reached, even if the clock
        // reads a little earlier (never spin on it).
        let mut floor: Option<Instant> = None;
        for _ in 0..POLL_ROUNDS {
            let now = floor.map_or_else(Instant::now, |f| Instant::now().max(f));
            inner.run_timers(now);
            {
                let mut q = lock(&inner.rx.queue);
                let take = q.frames.len().min(max);
                poller.frames.extend(q.frames.drain(..take));
                if poller.frames.is_empty() {
                    if let Some(e) = q.error.take() {
                        return Poll::Ready(Err(e));
                    }
                    match &q.waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => q.waker = Some(cx.waker().clone()),
                    }
                }
            }
            if !poller.frames.is_empty() {
                let n = inner.deliver(now, &mut poller.frames, out);
                if n > 0 {
                    return Poll::Ready(Ok(n));
                }
                continue;
            }
            // Nothing to read: sleep until ARP's next deadline, if any (read
            // after the waker is registered, so a sender that moves it
            // earlier wakes us).
            let Some(deadline) = lock(&inner.arp).next_deadline() else {
                return Poll::Pending;
            };
            let timer = poller
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            floor = Some(deadline);
        }
        // Many frames that were not for the stack: let other tasks run.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn close(&self) {
        // The reader thread notices within READ_TIMEOUT and exits.
        self.inner.rx.stop.store(true, Ordering::Release);
    }

    fn send(&self, packets: &[TxPacket<'_>]) -> io::Result<()> {
        let inner = &*self.inner;
        let now = Instant::now();
        let mut fx = Effects::default();
        let mut result = Ok(());
        for chunk in packets.chunks(SEND_CHUNK) {
            let mut hops = [None; SEND_CHUNK];
            {
                let mut table = lock(&inner.arp);
                for (hop, packet) in hops.iter_mut().zip(chunk) {
                    *hop = inner.resolve(now, packet, &mut table, &mut fx);
                }
            }
            let mut tx = lock(&inner.tx);
            for (hop, packet) in hops.iter().zip(chunk) {
                if let Some(mac) = *hop
                    && let Err(e) = inner.send_ipv4(&mut tx, mac, packet.header, packet.payload)
                {
                    result = Err(e);
                }
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

/// The reader thread: moves frames for us from the socket to the queue.
struct Reader {
    rx: Box<dyn DataLinkReceiver>,
    shared: Arc<RxShared>,
    counters: Arc<Counters>,
    mac: Mac,
    /// The read buffer's size: a frame this long may have been cut.
    buffer: usize,
    /// The socket (owned by pnet's channel, open while `rx` lives).
    fd: RawFd,
    /// The interface's index.
    index: u32,
    /// The interface went down and no frame came since.
    down: bool,
}

impl Reader {
    fn run(mut self) {
        let counters = self.counters.clone();
        let c = &*counters;
        let mut arena = BytesMut::new();
        while !self.shared.stop.load(Ordering::Acquire) {
            let frame = match self.rx.next() {
                Ok(frame) => frame,
                Err(e) => match e.kind() {
                    io::ErrorKind::TimedOut
                    | io::ErrorKind::WouldBlock
                    | io::ErrorKind::Interrupted => {
                        // Removal is seen as "down" first; look for it while
                        // the interface stays quiet after going down.
                        if self.down && !interface_exists(self.index) {
                            self.shared.fail(removed());
                            return;
                        }
                        continue;
                    }
                    _ => match self.recover(e) {
                        Ok(()) => continue,
                        Err(e) => {
                            tracing::warn!(error = %e, "raw: reading the socket failed; reader stops");
                            self.shared.fail(e);
                            return;
                        }
                    },
                },
            };
            self.down = false;
            bump(&c.rx_frames, 1);
            if frame.len() >= self.buffer {
                bump(&c.rx_truncated, 1);
                continue;
            }
            if !wanted(frame, self.mac) {
                bump(&c.rx_ignored, 1);
                continue;
            }
            if arena.capacity() - arena.len() < frame.len() {
                // Reuses the chunk if every frame cut from it was dropped.
                arena.reserve(ARENA.max(frame.len()));
            }
            arena.extend_from_slice(frame);
            self.shared.push(arena.split().freeze(), c);
        }
    }
}

impl Reader {
    /// Decides whether a read error is passing. The interface going down
    /// (ENETDOWN) is: the socket receives again once it is up. pnet reports
    /// a pending socket error as an "unexpected poll event" without reading
    /// it, so it is read (and cleared) here.
    fn recover(&mut self, e: io::Error) -> io::Result<()> {
        let code = e.raw_os_error().or_else(|| socket_error(self.fd));
        match code {
            Some(libc::ENETDOWN) | Some(0) | None => {
                if !interface_exists(self.index) {
                    return Err(removed());
                }
                self.down = true;
                tracing::trace!(error = %e, "raw: interface down, waiting");
                std::thread::sleep(READ_TIMEOUT);
                Ok(())
            }
            Some(code) => Err(io::Error::from_raw_os_error(code)),
        }
    }
}

fn removed() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        "raw device: the interface was removed",
    )
}

/// Reads and clears a socket's pending error (SO_ERROR).
fn socket_error(fd: RawFd) -> Option<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for the call; a stale descriptor
    // only makes it fail.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(value)
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

/// Whether a send error only means the socket buffer is full.
fn is_queue_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    ) || e.raw_os_error() == Some(libc::ENOBUFS)
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

/// A raw AF_PACKET socket that receives nothing until pnet binds it, with
/// our own frames not looped back and large buffers (all best effort).
fn packet_socket(iface: &str) -> io::Result<RawFd> {
    // SAFETY: plain socket call; the descriptor goes to pnet or is closed.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(if e.kind() == io::ErrorKind::PermissionDenied {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("raw device on {iface}: an AF_PACKET socket needs CAP_NET_RAW ({e})"),
            )
        } else {
            annotate(iface, "opening an AF_PACKET socket", e)
        });
    }
    let set = |level: libc::c_int, name: libc::c_int, value: libc::c_int| -> bool {
        // SAFETY: `value` outlives the call and its size is passed.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        }
    };
    set(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
    if !set(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, SOCKET_BUFFER) {
        set(libc::SOL_SOCKET, libc::SO_RCVBUF, SOCKET_BUFFER);
    }
    if !set(libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, SOCKET_BUFFER) {
        set(libc::SOL_SOCKET, libc::SO_SNDBUF, SOCKET_BUFFER);
    }
    Ok(fd)
}

//! Devices: what moves whole IP packets between the stack and a network.
//!
//! A [`Device`] is polled for received packets by the stack's device task and is
//! written to directly by connection tasks (transmit never goes back through the
//! device task). Sending never blocks: a full queue drops the packet, as a NIC
//! ring does, and TCP recovers.

pub mod arena;
pub mod capture;
pub mod gso;
pub mod impair;
#[cfg(target_os = "linux")]
pub mod raw;
pub mod sim;
#[cfg(target_os = "linux")]
pub mod tun;
pub mod vnet;

use bytes::Bytes;
use std::io;
use std::task::{Context, Poll};

/// What a device carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Medium {
    /// Whole IP packets (TUN, the in-memory network).
    Ip,
    /// Ethernet frames (AF_PACKET).
    Ethernet,
}

/// Per-packet offload metadata, carried from the start so offloading devices
/// (TUN with `IFF_VNET_HDR`, veth) need no new trait later.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offload {
    /// The packet is a GSO super-segment to be cut into segments of this size.
    pub gso_size: Option<u16>,
    /// A partial checksum to be completed: (start offset, offset of the field).
    pub csum_partial: Option<(u16, u16)>,
    /// The device has already verified the checksums.
    pub csum_verified: bool,
}

/// What a device offers beyond moving packets of its MTU, so the stack can
/// size its segments per device ([`Device::capabilities`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Received packets may carry [`Offload::csum_verified`] (checksums
    /// already checked, or partial and trusted, by the device or the kernel).
    pub rx_checksum: bool,
    /// The device completes a partial checksum on send
    /// ([`Offload::csum_partial`]); without it every packet sent must carry
    /// complete checksums.
    pub tx_checksum: bool,
    /// The largest IP packet one receive may hand over: the MTU, or up to
    /// 64 KiB where the device delivers GRO super-segments.
    pub max_rx_packet: usize,
    /// The largest IP packet the device accepts with [`Offload::gso_size`]
    /// set (it cuts it into segments); `None` when it does not segment, and
    /// every packet sent must fit the MTU.
    pub max_gso_packet: Option<usize>,
}

impl Capabilities {
    /// A device without offloads: packets of at most `mtu` bytes both ways,
    /// complete checksums.
    pub fn plain(mtu: usize) -> Capabilities {
        Capabilities {
            rx_checksum: false,
            tx_checksum: false,
            max_rx_packet: mtu,
            max_gso_packet: None,
        }
    }
}

/// Whether a device's segmentation and checksum offloads are in use, and
/// why not when they are not (the fallback reason, decided when it opened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OffloadStatus {
    /// On: the device exchanges virtio-net headers with the kernel (GRO
    /// super-segments and trusted checksums in, partial checksums and
    /// super-segments accepted out).
    On,
    /// Turned off by the device's configuration (`--offload off`).
    Disabled,
    /// Asked for, but the kernel refused; the device runs without (the
    /// kernel's answer).
    Refused(String),
}

impl OffloadStatus {
    /// Whether offloads are in use.
    pub fn is_on(&self) -> bool {
        matches!(self, OffloadStatus::On)
    }
}

impl std::fmt::Display for OffloadStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OffloadStatus::On => f.write_str("on"),
            OffloadStatus::Disabled => f.write_str("off (disabled)"),
            OffloadStatus::Refused(why) => write!(f, "off (refused: {why})"),
        }
    }
}

/// A received packet.
#[derive(Clone, Debug)]
pub struct RxPacket {
    /// The packet bytes (an IP packet for [`Medium::Ip`]).
    pub data: Bytes,
    /// Offload metadata.
    pub meta: Offload,
    /// Bytes of memory the packet keeps alive while any slice of it is
    /// referenced: its share of the buffer it was read into (its bytes in a
    /// read arena with the arena's unusable rest for the packet that ends
    /// it, [`arena`]; a buffer of its own's allocation). At least
    /// `data.len()`; a connection charges an unread slice of it this much.
    pub truesize: usize,
}

impl RxPacket {
    /// A packet in a buffer of its own (`truesize` its length).
    pub fn new(data: Bytes, meta: Offload) -> RxPacket {
        let truesize = data.len();
        RxPacket {
            data,
            meta,
            truesize,
        }
    }
}

/// A packet to send, in pieces so a device can gather-write headers and
/// payload without copying the payload.
#[derive(Clone, Copy, Debug)]
pub struct TxPacket<'a> {
    /// The headers (IP and TCP).
    pub header: &'a [u8],
    /// The payload (may be empty).
    pub payload: &'a [u8],
    /// The rest of the payload, sent right after `payload` (a segment that
    /// spans two send-buffer chunks, gathered rather than copied); usually
    /// empty.
    pub payload_tail: &'a [u8],
    /// Offload metadata.
    pub meta: Offload,
}

impl TxPacket<'_> {
    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.header.len() + self.payload.len() + self.payload_tail.len()
    }

    /// Whether both pieces are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A network device the stack drives.
///
/// Implement it for a packet source of your own (a VPN service's queue, a
/// user-space switch, a test harness): whole IP packets in through
/// `poll_recv` (wake `cx` when more arrive), out through `send`, which must
/// not block. The defaults say the device offers no offloads, so packets
/// sent are complete and fit the MTU.
///
/// ```
/// use std::sync::Mutex;
/// use std::task::{Context, Poll};
/// use tokio::sync::mpsc;
/// use utcp_runtime::{Device, Medium, Offload, RxPacket, TxPacket};
///
/// /// Packets from a channel in, packets to a channel out.
/// struct Channels {
///     rx: Mutex<mpsc::Receiver<bytes::Bytes>>,
///     tx: mpsc::Sender<Vec<u8>>,
/// }
///
/// impl Device for Channels {
///     fn medium(&self) -> Medium {
///         Medium::Ip
///     }
///     fn mtu(&self) -> usize {
///         1500
///     }
///     fn poll_recv(
///         &self,
///         cx: &mut Context<'_>,
///         out: &mut Vec<RxPacket>,
///         max: usize,
///     ) -> Poll<std::io::Result<usize>> {
///         let mut rx = self.rx.lock().unwrap();
///         let mut n = 0;
///         while n < max {
///             match rx.poll_recv(cx) {
///                 Poll::Ready(Some(p)) => {
///                     out.push(RxPacket::new(p, Offload::default()));
///                     n += 1;
///                 }
///                 // The sender is gone: no more packets, ever.
///                 Poll::Ready(None) if n == 0 => return Poll::Ready(Ok(0)),
///                 _ => break,
///             }
///         }
///         if n == 0 { Poll::Pending } else { Poll::Ready(Ok(n)) }
///     }
///     fn send(&self, packets: &[TxPacket<'_>]) -> std::io::Result<()> {
///         for p in packets {
///             // A full channel drops the packet, as a NIC ring does.
///             let _ = self.tx.try_send([p.header, p.payload, p.payload_tail].concat());
///         }
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (_in_tx, in_rx) = mpsc::channel(64);
/// let (out_tx, _out_rx) = mpsc::channel(64);
/// let dev = Channels { rx: Mutex::new(in_rx), tx: out_tx };
/// let stack = utcp_runtime::Stack::with_addrs(
///     dev,
///     vec!["10.0.0.2".parse().unwrap()],
///     utcp_runtime::StackConfig::default(),
/// );
/// assert!(stack.listen("10.0.0.2:80".parse().unwrap()).is_ok());
/// # }
/// ```
pub trait Device: Send + Sync + 'static {
    /// What the device carries.
    fn medium(&self) -> Medium;

    /// The largest IP packet the device carries.
    fn mtu(&self) -> usize;

    /// What the device offers (checksum offload, largest packets each way).
    /// The default is [`Capabilities::plain`] of the MTU.
    fn capabilities(&self) -> Capabilities {
        Capabilities::plain(self.mtu())
    }

    /// Moves up to `max` received packets into `out`, returning how many.
    /// Returns `Pending` (and wakes `cx` later) when none is ready.
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        out: &mut Vec<RxPacket>,
        max: usize,
    ) -> Poll<io::Result<usize>>;

    /// Sends a batch of packets without blocking; a packet that does not fit a
    /// full queue is dropped and counted, never waited for.
    fn send(&self, packets: &[TxPacket<'_>]) -> io::Result<()>;

    /// The gauge of the receive memory the device keeps alive (its read
    /// arenas, counted while any packet slice references them, see
    /// [`arena`]), when it measures it; the stack then counts it against
    /// its receive-memory thresholds instead of estimating device buffers
    /// from the packets' [`RxPacket::truesize`]. The default is `None`; a
    /// device wrapping another returns the inner one's.
    fn rx_memory(&self) -> Option<arena::RxMemory> {
        None
    }

    /// Stops the device's own threads and timers now rather than when the
    /// last reference drops (`Stack::shutdown` calls it). Later receives may
    /// fail or stay pending. The default does nothing.
    fn close(&self) {}

    /// The addresses of host `name` in the network this device is on, for
    /// `utcp::net`'s name resolution (never system DNS). `None` (the
    /// default) when the device's network has no name table, or no host of
    /// that name: the name is then tried as an IP literal.
    fn lookup_host(&self, name: &str) -> Option<Vec<std::net::IpAddr>> {
        let _ = name;
        None
    }
}

/// A device that knows the IP addresses the stack on it owns.
pub trait DeviceAddrs {
    /// The stack's addresses on this device.
    fn addrs(&self) -> &[std::net::IpAddr];
}

impl DeviceAddrs for sim::SimDevice {
    fn addrs(&self) -> &[std::net::IpAddr] {
        sim::SimDevice::addrs(self)
    }
}

//! Devices: what moves whole IP packets between the stack and a network.
//!
//! A [`Device`] is polled for received packets by the stack's device task and is
//! written to directly by connection tasks (transmit never goes back through the
//! device task). Sending never blocks: a full queue drops the packet, as a NIC
//! ring does, and TCP recovers.

pub mod capture;
pub mod impair;
#[cfg(target_os = "linux")]
pub mod raw;
pub mod sim;
#[cfg(target_os = "linux")]
pub mod tun;

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

/// A received packet.
#[derive(Clone, Debug)]
pub struct RxPacket {
    /// The packet bytes (an IP packet for [`Medium::Ip`]).
    pub data: Bytes,
    /// Offload metadata.
    pub meta: Offload,
}

/// A packet to send, in two pieces so a device can gather-write header and
/// payload without copying the payload.
#[derive(Clone, Copy, Debug)]
pub struct TxPacket<'a> {
    /// The headers (IP and TCP).
    pub header: &'a [u8],
    /// The payload (may be empty).
    pub payload: &'a [u8],
    /// Offload metadata.
    pub meta: Offload,
}

impl TxPacket<'_> {
    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.header.len() + self.payload.len()
    }

    /// Whether both pieces are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A network device the stack drives.
pub trait Device: Send + Sync + 'static {
    /// What the device carries.
    fn medium(&self) -> Medium;

    /// The largest IP packet the device carries.
    fn mtu(&self) -> usize;

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

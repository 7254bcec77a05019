//! A Linux TUN device: whole IP packets between the stack and the kernel.
//!
//! [`TunDevice::open`] creates the TUN interface by name, or attaches to an
//! existing one (`IFF_TUN | IFF_NO_PI`: every read and write is one bare IP
//! packet), brings it up, sets its MTU and gives its kernel side an address
//! when asked. The kernel then routes packets for the stack's addresses into
//! the TUN, and the stack's packets come out of it as if they had arrived on
//! an interface. Needs `CAP_NET_ADMIN`.
//!
//! Reads never block a Tokio worker: the descriptor is non-blocking and
//! registered with Tokio's reactor, and a receive reads until the kernel has
//! nothing more or the batch is full. Each read lands in a shared arena chunk
//! (reused once every packet cut from it is gone), whose memory is measured
//! while any packet references it ([`super::arena`], [`Device::rx_memory`]). Each send is one `writev`
//! of the headers and the payload (no copy); a write the kernel refuses with
//! `EAGAIN` drops the packet and counts it.
//!
//! # Offloads
//!
//! By default ([`TunConfig::offload`]) the device is opened with
//! `IFF_VNET_HDR` and `TUNSETOFFLOAD` (`TUN_F_CSUM | TUN_F_TSO4 |
//! TUN_F_TSO6`), so every packet each way starts with a virtio-net header
//! ([`super::vnet`]). The kernel then hands over GRO / TSO super-segments of up
//! to 64 KiB as one packet (one [`RxPacket`], never split: the stack takes a
//! TCP payload longer than the MSS as one segment) with checksums it never
//! computed (`NEEDS_CSUM`) or already verified (`DATA_VALID`), both marked
//! [`Offload::csum_verified`]; reads are sized for a whole super-segment.
//! Sent packets carry a header with `GSO_NONE` and their own complete
//! checksums, or what their [`Offload`] asks: a partial checksum
//! (`NEEDS_CSUM`) or a TCP super-segment for the kernel to cut (`gso_size`,
//! with the partial checksum). Where the kernel refuses the offloads the
//! device falls back to plain packets, logs why, and says so in
//! [`TunDevice::offload`]; without offloads reads are sized for the MTU, with
//! an overflow buffer behind so a packet larger than the MTU read at open
//! (the MTU changed since) is never truncated, and sends asking for an
//! offload are dropped and counted ([`TunStats::tx_offload_refused`]).
//!
//! A TUN interface belongs to the network namespace of the thread that
//! created it, and so do the interface names the configuration steps look up:
//! call [`TunDevice::open`] on a thread in the wanted namespace. The device
//! works from any thread afterwards.
//!
//! # Examples
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! use utcp_runtime::device::tun::{TunConfig, TunDevice};
//! use utcp_runtime::{Stack, StackConfig};
//!
//! let dev = TunDevice::open(TunConfig {
//!     name: "utun0".into(),
//!     addrs: vec!["10.99.0.2".parse().unwrap()],
//!     kernel_addr: Some(("10.99.0.1".parse().unwrap(), 24)),
//!     ..TunConfig::default()
//! })?;
//! let stack = Stack::new(dev, StackConfig::default());
//! let listener = stack.listen("10.99.0.2:7".parse().unwrap())?;
//! # drop(listener); Ok(()) }
//! ```

use super::arena::{RxArena, RxMemory};
use super::vnet::{VNET_HDR_LEN, VnetHdr};
use super::{
    Capabilities, Device, DeviceAddrs, Medium, Offload, OffloadStatus, RxPacket, TxPacket,
};
use bytes::BytesMut;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The largest packet a TUN device carries (its largest MTU).
pub const MAX_PACKET: usize = 65_535;

/// The smallest receive arena chunk; packets are cut out of it.
const ARENA_BYTES: usize = 128 * 1024;

/// The receive arena chunk with offloads on: several 64 KiB super-segments.
const ARENA_VNET_BYTES: usize = 512 * 1024;

/// Room for one read with offloads on: the largest super-segment the kernel
/// hands a TUN (`GSO_LEGACY_MAX_SIZE`, 64 KiB) plus slack, so a read that
/// fills it is known to be cut.
const VNET_READ: usize = 65_536 + 256;

/// The TCP offloads asked of the kernel (no UDP segmentation: the stack
/// does not take UDP super-datagrams).
const TUN_TCP_OFFLOADS: libc::c_uint = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;

/// How a [`TunDevice`] is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunConfig {
    /// The interface name (at most 15 bytes); empty lets the kernel choose
    /// (`tunN`).
    pub name: String,
    /// The stack's own addresses (what [`DeviceAddrs::addrs`] returns); the
    /// kernel reaches them through the TUN when they fall in `kernel_addr`'s
    /// prefix or a route points there.
    pub addrs: Vec<IpAddr>,
    /// An address and prefix length given to the kernel side of the TUN
    /// (IPv6 addresses are added without duplicate address detection, so they
    /// are usable at once). `None` leaves the interface's addresses alone.
    pub kernel_addr: Option<(IpAddr, u8)>,
    /// The MTU to set; `None` keeps the interface's (1500 for a new TUN).
    pub mtu: Option<usize>,
    /// Ask for the virtio-net header offloads (GRO in, checksum and TSO
    /// offload out; see the module docs). On by default; where the kernel
    /// refuses them the device runs without and says why
    /// ([`TunDevice::offload`]).
    pub offload: bool,
}

impl Default for TunConfig {
    /// No name (the kernel chooses), no addresses, the interface's MTU,
    /// offloads on.
    fn default() -> TunConfig {
        TunConfig {
            name: String::new(),
            addrs: Vec::new(),
            kernel_addr: None,
            mtu: None,
            offload: true,
        }
    }
}

impl TunConfig {
    /// A configuration for the interface `name` with the stack owning `addrs`,
    /// no kernel-side address, the interface's MTU and offloads on.
    pub fn new(name: impl Into<String>, addrs: Vec<IpAddr>) -> TunConfig {
        TunConfig {
            name: name.into(),
            addrs,
            ..TunConfig::default()
        }
    }
}

/// Counters of a [`TunDevice`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunStats {
    /// Packets read from the TUN.
    pub rx_packets: u64,
    /// Bytes read from the TUN.
    pub rx_bytes: u64,
    /// Packets read that were larger than the MTU read at open (kept whole,
    /// with one copy).
    pub rx_oversized: u64,
    /// Packets written to the TUN.
    pub tx_packets: u64,
    /// Bytes written to the TUN.
    pub tx_bytes: u64,
    /// Packets dropped on send: the kernel would have blocked, or refused the
    /// write.
    pub tx_drops: u64,
    /// Super-segments read (GRO / TSO, `gso_type` set), counted in
    /// `rx_packets` too.
    pub rx_super: u64,
    /// Bytes of the super-segments read.
    pub rx_super_bytes: u64,
    /// Packets read whose checksums were trusted per their virtio-net header
    /// (`NEEDS_CSUM` or `DATA_VALID`).
    pub rx_csum_trusted: u64,
    /// Reads that filled the whole buffer, so may have been cut (dropped).
    pub rx_truncated: u64,
    /// Super-segments written (`gso_size` set), counted in `tx_packets` too.
    pub tx_super: u64,
    /// Bytes of the super-segments written.
    pub tx_super_bytes: u64,
    /// Packets written with a partial checksum for the kernel to complete.
    pub tx_csum_partial: u64,
    /// Packets dropped on send because the device cannot do what their
    /// [`Offload`] asks (offloads off, or a request the header cannot say).
    pub tx_offload_refused: u64,
}

impl TunStats {
    /// The mean size of a read, in bytes (0 before any).
    pub fn rx_mean_bytes(&self) -> u64 {
        self.rx_bytes.checked_div(self.rx_packets).unwrap_or(0)
    }

    /// The mean size of a super-segment read, in bytes (0 before any).
    pub fn rx_super_mean_bytes(&self) -> u64 {
        self.rx_super_bytes.checked_div(self.rx_super).unwrap_or(0)
    }

    /// The mean size of a super-segment written, in bytes (0 before any).
    pub fn tx_super_mean_bytes(&self) -> u64 {
        self.tx_super_bytes.checked_div(self.tx_super).unwrap_or(0)
    }
}

#[derive(Default)]
struct Counters {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    rx_oversized: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    tx_drops: AtomicU64,
    rx_super: AtomicU64,
    rx_super_bytes: AtomicU64,
    rx_csum_trusted: AtomicU64,
    rx_truncated: AtomicU64,
    tx_super: AtomicU64,
    tx_super_bytes: AtomicU64,
    tx_csum_partial: AtomicU64,
    tx_offload_refused: AtomicU64,
}

/// A TUN interface carrying the stack's IP packets ([`Medium::Ip`]).
///
/// Any number of tasks may call [`Device::send`] at once; one task at a time
/// polls [`Device::poll_recv`]. Closing the device (dropping it) removes a
/// TUN interface that it created and that is not persistent.
pub struct TunDevice {
    name: String,
    addrs: Vec<IpAddr>,
    mtu: usize,
    /// Whether packets carry virtio-net headers, and why not.
    offload: OffloadStatus,
    vnet: bool,
    fd: std::sync::Arc<AsyncFd<tun_rs::SyncDevice>>,
    /// Set when epoll reports an error on the descriptor: the interface was
    /// deleted under us (its reads fail with `EBADFD`, but the descriptor
    /// never turns readable, so nothing else would wake the reader).
    gone: std::sync::Arc<Gone>,
    /// The task waiting for that error (aborted on drop).
    watcher: Option<tokio::task::JoinHandle<()>>,
    rx: Mutex<RxBuffers>,
    /// The read arenas' memory alive ([`Device::rx_memory`]).
    rx_memory: RxMemory,
    counters: Counters,
}

impl Drop for TunDevice {
    fn drop(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
    }
}

/// The interface went away: the flag and the reader to wake.
#[derive(Default)]
struct Gone {
    flag: std::sync::atomic::AtomicBool,
    reader: Mutex<Option<std::task::Waker>>,
}

/// Where packets are read to.
struct RxBuffers {
    /// The read chunks, measured (`ARENA_BYTES` for MTU-sized reads,
    /// `ARENA_VNET_BYTES` for super-segments); each packet is a slice of one.
    arena: RxArena,
    /// Catches the tail of a packet longer than the MTU.
    overflow: Box<[u8]>,
}

/// What one read gave.
enum Read {
    /// A packet of this many bytes (in the arena, or in `out` when larger
    /// than the MTU read at open), whether it was that large, and its
    /// offload metadata.
    Packet(usize, bool, Offload),
    /// A read of nothing, or one that filled the buffer (cut, dropped).
    Empty,
    Truncated,
}

impl RxBuffers {
    /// Reads one packet with a single `readv` into the arena (up to `mtu`
    /// bytes) and the overflow buffer (the rest). The packet joins the
    /// arena's pending ones (handed to `out` by its `flush`); one longer
    /// than the MTU gets a buffer of its own, in order in `out`.
    fn read(&mut self, fd: RawFd, mtu: usize, out: &mut Vec<RxPacket>) -> io::Result<Read> {
        let spare = self.arena.spare(out);
        let head_ptr = spare.as_mut_ptr().cast::<u8>();
        let iov = [
            libc::iovec {
                iov_base: head_ptr.cast(),
                iov_len: mtu.min(spare.len()),
            },
            libc::iovec {
                iov_base: self.overflow.as_mut_ptr().cast(),
                iov_len: self.overflow.len(),
            },
        ];
        // SAFETY: both iovecs point into buffers owned by `self`, writable
        // for their lengths, and outlive the call.
        let n = unsafe { libc::readv(fd, iov.as_ptr(), iov.len() as libc::c_int) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n == 0 {
            return Ok(Read::Empty);
        }
        if n <= mtu {
            // SAFETY: the kernel initialized the first `n` spare bytes.
            unsafe { self.arena.commit(n, Offload::default()) };
            return Ok(Read::Packet(n, false, Offload::default()));
        }
        let mut whole = BytesMut::with_capacity(n);
        // SAFETY: the kernel initialized all `mtu` bytes of the first iovec;
        // nothing touched the arena since.
        whole.extend_from_slice(unsafe { std::slice::from_raw_parts(head_ptr, mtu) });
        whole.extend_from_slice(&self.overflow[..n - mtu]);
        self.arena.flush(out);
        out.push(RxPacket::new(whole.freeze(), Offload::default()));
        Ok(Read::Packet(n, true, Offload::default()))
    }

    /// Reads one packet behind its virtio-net header with a single `readv`:
    /// the header to a small buffer, the packet straight into the arena
    /// (room for a whole 64 KiB super-segment; the chunk is reused once every
    /// packet cut from it is gone). The packet joins the arena's pending
    /// ones.
    fn read_vnet(&mut self, fd: RawFd, out: &mut Vec<RxPacket>) -> io::Result<Read> {
        let mut hdr = [0u8; VNET_HDR_LEN];
        let spare = self.arena.spare(out);
        let iov = [
            libc::iovec {
                iov_base: hdr.as_mut_ptr().cast(),
                iov_len: hdr.len(),
            },
            libc::iovec {
                iov_base: spare.as_mut_ptr().cast(),
                iov_len: spare.len(),
            },
        ];
        // SAFETY: both iovecs point into writable buffers that outlive the
        // call.
        let n = unsafe { libc::readv(fd, iov.as_ptr(), iov.len() as libc::c_int) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n <= VNET_HDR_LEN {
            return Ok(Read::Empty);
        }
        let len = n - VNET_HDR_LEN;
        if len >= VNET_READ {
            return Ok(Read::Truncated);
        }
        let meta = VnetHdr::parse(&hdr).map_or(Offload::default(), |h| h.rx_offload(len));
        // SAFETY: the kernel initialized the first `len` spare bytes.
        unsafe { self.arena.commit(len, meta) };
        Ok(Read::Packet(len, false, meta))
    }
}

/// Annotates an error with the interface name, keeping its kind.
fn named(name: &str, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("TUN {name}: {what}: {e}"))
}

impl TunDevice {
    /// Opens the TUN interface `cfg.name`, creating it if it does not exist,
    /// brings it up, sets the MTU and the kernel-side address if asked, and
    /// reads the MTU back. Must be called within a Tokio runtime with I/O
    /// enabled, on a thread in the network namespace the interface belongs
    /// in. Blocks briefly (a few system calls; `ip` is run to add an IPv6
    /// address).
    ///
    /// # Errors
    ///
    /// `PermissionDenied` without `CAP_NET_ADMIN`; `InvalidInput` for a name
    /// longer than 15 bytes, an MTU outside 68..=65535 or a prefix too long for
    /// its address; any other error of creating or configuring the interface,
    /// for example `ResourceBusy` when another process holds it. Every error
    /// names the interface.
    ///
    /// # Panics
    ///
    /// Within a Tokio runtime whose I/O driver is disabled.
    pub fn open(cfg: TunConfig) -> io::Result<TunDevice> {
        let name = cfg.name.as_str();
        let shown = if name.is_empty() { "(any)" } else { name };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(format!(
                "TUN {shown}: TunDevice::open must be called within a Tokio runtime"
            )));
        }
        if name.len() > 15 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TUN {shown}: interface names are at most 15 bytes"),
            ));
        }
        let mtu = match cfg.mtu {
            Some(mtu) if !(68..=MAX_PACKET).contains(&mtu) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("TUN {shown}: MTU {mtu} is outside 68..=65535"),
                ));
            }
            Some(mtu) => Some(mtu as u16),
            None => None,
        };
        if let Some((addr, prefix)) = cfg.kernel_addr {
            let max = if addr.is_ipv4() { 32 } else { 128 };
            if prefix > max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("TUN {shown}: prefix /{prefix} is too long for {addr}"),
                ));
            }
        }

        let build = |offload: bool| {
            let mut builder = tun_rs::DeviceBuilder::new()
                .layer(tun_rs::Layer::L3)
                .offload(offload)
                .enable(true);
            if !name.is_empty() {
                builder = builder.name(name);
            }
            if let Some(mtu) = mtu {
                builder = builder.mtu(mtu);
            }
            if let Some((IpAddr::V4(addr), prefix)) = cfg.kernel_addr {
                builder = builder.ipv4(addr, prefix, None);
            }
            builder.build_sync().map_err(|e| {
                let hint = if e.kind() == io::ErrorKind::PermissionDenied {
                    " (needs CAP_NET_ADMIN)"
                } else {
                    ""
                };
                io::Error::new(
                    e.kind(),
                    format!("TUN {shown}: cannot create, attach or configure: {e}{hint}"),
                )
            })
        };
        // The probe: ask for the offloads, fall back to plain packets where
        // the kernel refuses them (not for errors a retry cannot cure).
        let (dev, offload) = if !cfg.offload {
            (build(false)?, OffloadStatus::Disabled)
        } else {
            match build(true).and_then(|dev| tcp_offloads_only(&dev, shown).map(|()| dev)) {
                Ok(dev) => (dev, OffloadStatus::On),
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(e),
                Err(e) => {
                    let dev = build(false)?;
                    tracing::warn!(
                        name = shown,
                        error = %e,
                        "tun: the kernel refused IFF_VNET_HDR offloads; running without"
                    );
                    (dev, OffloadStatus::Refused(e.to_string()))
                }
            }
        };
        let name = dev
            .name()
            .map_err(|e| named(shown, "reading the interface name", e))?;
        if let Some((IpAddr::V6(addr), prefix)) = cfg.kernel_addr {
            add_ipv6(&dev, &name, addr, prefix)?;
        }
        TunDevice::wrap(dev, name, cfg.addrs, offload)
    }

    /// A TUN device on a descriptor opened elsewhere: one a platform VPN
    /// service hands over (Android's `VpnService`, a privileged helper), or
    /// one opened by hand with `TUNSETIFF`. The interface is as its opener
    /// configured it (up, addressed, its MTU); `addrs` are the stack's own
    /// addresses on it. The descriptor must use plain packets (`IFF_TUN |
    /// IFF_NO_PI`, no `IFF_VNET_HDR`: its offload framing cannot be read
    /// back from the kernel), so offloads are off
    /// ([`OffloadStatus::Disabled`]). The device owns the descriptor and
    /// closes it when dropped. Must be called within a Tokio runtime.
    ///
    /// # Errors
    /// `InvalidInput` for a descriptor that is not a TUN device, or one with
    /// `IFF_VNET_HDR` or packet information; the kernel's error otherwise.
    pub fn from_fd(fd: std::os::fd::OwnedFd, addrs: Vec<IpAddr>) -> io::Result<TunDevice> {
        use std::os::fd::IntoRawFd;
        let raw = fd.into_raw_fd();
        // SAFETY: `raw` is an open descriptor we own (taken from the
        // `OwnedFd`); `from_fd` takes it over and closes it when dropped, or
        // on error (tun-rs wraps it before validating).
        let dev = unsafe { tun_rs::SyncDevice::from_fd(raw) }.map_err(|e| {
            // Not a TUN descriptor (ENOTTY, EBADFD), or one of the wrong
            // kind: the caller's input.
            let not_tun = matches!(
                e.raw_os_error(),
                Some(libc::ENOTTY | libc::EBADFD | libc::EINVAL)
            );
            let kind = match e.kind() {
                _ if not_tun => io::ErrorKind::InvalidInput,
                io::ErrorKind::Other | io::ErrorKind::Unsupported => io::ErrorKind::InvalidInput,
                k => k,
            };
            io::Error::new(kind, format!("TUN from descriptor {raw}: {e}"))
        })?;
        let name = dev
            .name()
            .map_err(|e| named(&format!("fd {raw}"), "reading the interface name", e))?;
        TunDevice::wrap(dev, name, addrs, OffloadStatus::Disabled)
    }

    /// The device on an opened, configured descriptor.
    fn wrap(
        dev: tun_rs::SyncDevice,
        name: String,
        addrs: Vec<IpAddr>,
        offload: OffloadStatus,
    ) -> io::Result<TunDevice> {
        dev.set_nonblocking(true)
            .map_err(|e| named(&name, "making the descriptor non-blocking", e))?;
        let mtu = usize::from(dev.mtu().map_err(|e| named(&name, "reading the MTU", e))?);
        // SAFETY: `SyncDevice` owns its descriptor, returns that same one from
        // every `as_raw_fd` call, and closes it only when dropped, which
        // happens only with the `AsyncFd`.
        let fd =
            unsafe { AsyncFd::register_with_interest(dev, Interest::READABLE | Interest::ERROR) }
                .map_err(|e| named(&name, "registering with Tokio", e.into_parts().1))?;
        let fd = std::sync::Arc::new(fd);
        let gone = std::sync::Arc::new(Gone::default());
        let watcher = {
            let (fd, gone) = (fd.clone(), gone.clone());
            tokio::spawn(async move {
                if fd.ready(Interest::ERROR).await.is_ok() {
                    gone.flag.store(true, Ordering::SeqCst);
                    let w = gone
                        .reader
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take();
                    if let Some(w) = w {
                        w.wake();
                    }
                }
            })
        };
        tracing::debug!(name = %name, mtu, addrs = ?addrs, offload = %offload, "tun: open");
        let vnet = offload.is_on();
        let rx_memory = RxMemory::new();
        Ok(TunDevice {
            name,
            addrs,
            mtu,
            offload,
            vnet,
            fd,
            gone,
            watcher: Some(watcher),
            rx: Mutex::new(RxBuffers {
                arena: if vnet {
                    RxArena::new(ARENA_VNET_BYTES, VNET_READ, rx_memory.clone())
                } else {
                    RxArena::new(ARENA_BYTES.max(4 * mtu), mtu, rx_memory.clone())
                },
                overflow: vec![0; MAX_PACKET + 1].into_boxed_slice(),
            }),
            rx_memory,
            counters: Counters::default(),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the virtio-net header offloads are on, and if not, why
    /// (turned off, or refused by the kernel when the device opened).
    pub fn offload(&self) -> &OffloadStatus {
        &self.offload
    }

    /// The counters.
    pub fn stats(&self) -> TunStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TunStats {
            rx_packets: get(&c.rx_packets),
            rx_bytes: get(&c.rx_bytes),
            rx_oversized: get(&c.rx_oversized),
            tx_packets: get(&c.tx_packets),
            tx_bytes: get(&c.tx_bytes),
            tx_drops: get(&c.tx_drops),
            rx_super: get(&c.rx_super),
            rx_super_bytes: get(&c.rx_super_bytes),
            rx_csum_trusted: get(&c.rx_csum_trusted),
            rx_truncated: get(&c.rx_truncated),
            tx_super: get(&c.tx_super),
            tx_super_bytes: get(&c.tx_super_bytes),
            tx_csum_partial: get(&c.tx_csum_partial),
            tx_offload_refused: get(&c.tx_offload_refused),
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.fd.get_ref().as_raw_fd()
    }

    /// Writes one packet: `Ok(false)` when the kernel would have blocked.
    /// With offloads on, a virtio-net header `vnet` goes in front.
    fn write_one(
        &self,
        packet: &TxPacket<'_>,
        vnet: Option<&[u8; VNET_HDR_LEN]>,
    ) -> io::Result<bool> {
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; 4];
        let mut count = 0;
        let parts: [&[u8]; 4] = [
            vnet.map_or(&[][..], |h| &h[..]),
            packet.header,
            packet.payload,
            packet.payload_tail,
        ];
        for part in parts {
            if !part.is_empty() {
                iov[count] = libc::iovec {
                    iov_base: part.as_ptr().cast_mut().cast(),
                    iov_len: part.len(),
                };
                count += 1;
            }
        }
        // A non-blocking write is interrupted only by a signal caught at that
        // instant; retry a few times, then count it as a drop.
        for _ in 0..3 {
            // SAFETY: the iovecs point into the packet's slices and the
            // header, which the kernel only reads, and outlive the call.
            let n = unsafe { libc::writev(self.raw_fd(), iov.as_ptr(), count as libc::c_int) };
            if n >= 0 {
                return Ok(true);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(false),
                _ => return Err(e),
            }
        }
        Ok(false)
    }
}

/// Keeps only the TCP offloads on (tun-rs also asks for UDP segmentation
/// where the kernel has it; the stack takes no UDP super-datagrams). The mask
/// is the interface's, so this also clears what an earlier user left.
fn tcp_offloads_only(dev: &tun_rs::SyncDevice, name: &str) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its flags by value on a TUN descriptor the
    // device owns.
    let r = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            libc::TUNSETOFFLOAD as _,
            libc::c_ulong::from(TUN_TCP_OFFLOADS),
        )
    };
    if r < 0 {
        return Err(named(name, "TUNSETOFFLOAD", io::Error::last_os_error()));
    }
    Ok(())
}

/// Adds an IPv6 address to the kernel side without duplicate address
/// detection (`ip -6 addr add … nodad`); without the `ip` command, falls back
/// to an ioctl, after which the address is tentative until DAD completes.
fn add_ipv6(
    dev: &tun_rs::SyncDevice,
    name: &str,
    addr: std::net::Ipv6Addr,
    prefix: u8,
) -> io::Result<()> {
    let out = std::process::Command::new("ip")
        .args([
            "-6",
            "addr",
            "add",
            &format!("{addr}/{prefix}"),
            "dev",
            name,
            "nodad",
        ])
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("File exists") {
                // Attached to an interface that already has it.
                return Ok(());
            }
            let kind = if stderr.contains("Operation not permitted") {
                io::ErrorKind::PermissionDenied
            } else {
                io::ErrorKind::Other
            };
            Err(io::Error::new(
                kind,
                format!(
                    "TUN {name}: adding {addr}/{prefix}: `ip` failed ({}): {}",
                    out.status,
                    stderr.trim()
                ),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::warn!(
                name,
                %addr,
                "tun: no `ip` command; adding the IPv6 address with DAD (tentative for a while)"
            );
            dev.add_address_v6(addr, prefix)
                .map_err(|e| named(name, &format!("adding {addr}/{prefix}"), e))
        }
        Err(e) => Err(named(name, "running `ip`", e)),
    }
}

impl fmt::Debug for TunDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TunDevice")
            .field("name", &self.name)
            .field("addrs", &self.addrs)
            .field("mtu", &self.mtu)
            .field("offload", &self.offload)
            .finish_non_exhaustive()
    }
}

impl Device for TunDevice {
    fn medium(&self) -> Medium {
        Medium::Ip
    }

    /// The MTU read when the device was opened.
    fn mtu(&self) -> usize {
        self.mtu
    }

    /// With offloads on: checksums trusted on receive and completed on send,
    /// super-segments of up to 64 KiB both ways.
    fn capabilities(&self) -> Capabilities {
        if self.vnet {
            Capabilities {
                rx_checksum: true,
                tx_checksum: true,
                max_rx_packet: MAX_PACKET,
                max_gso_packet: Some(MAX_PACKET),
            }
        } else {
            Capabilities::plain(self.mtu)
        }
    }

    fn rx_memory(&self) -> Option<RxMemory> {
        Some(self.rx_memory.clone())
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
        let mut rx = self.rx.lock().unwrap_or_else(PoisonError::into_inner);
        let fd = self.raw_fd();
        if self.gone.flag.load(Ordering::SeqCst) {
            // One read tells why (EBADFD for a deleted interface).
            let read = if self.vnet {
                rx.read_vnet(fd, out)
            } else {
                rx.read(fd, self.mtu, out)
            };
            let e = match read {
                Err(e) => e,
                Ok(_) => io::Error::other("the descriptor reported an error"),
            };
            return Poll::Ready(Err(named(&self.name, "read", e)));
        }
        {
            let mut r = self
                .gone
                .reader
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !r.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *r = Some(cx.waker().clone());
            }
        }
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))
                .map_err(|e| named(&self.name, "waiting for packets", e))?;
            let (mut n, mut bytes, mut oversized) = (0usize, 0usize, 0u64);
            let (mut sup, mut sup_bytes, mut trusted, mut cut) = (0u64, 0usize, 0u64, 0u64);
            let mut drained = false;
            let mut failure = None;
            // Bounded by `max` reads, empty ones included.
            for _ in 0..max {
                let read = if self.vnet {
                    rx.read_vnet(fd, out)
                } else {
                    rx.read(fd, self.mtu, out)
                };
                match read {
                    Ok(Read::Packet(len, big, meta)) => {
                        bytes += len;
                        oversized += u64::from(big);
                        if meta.gso_size.is_some() {
                            sup += 1;
                            sup_bytes += len;
                        }
                        trusted += u64::from(meta.csum_verified);
                        n += 1;
                    }
                    Ok(Read::Truncated) => cut += 1,
                    Ok(Read::Empty) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        drained = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            // The batch's packets, as slices of their arena chunk.
            rx.arena.flush(out);
            if cut > 0 {
                self.counters.rx_truncated.fetch_add(cut, Ordering::Relaxed);
            }
            if n > 0 {
                let c = &self.counters;
                c.rx_packets.fetch_add(n as u64, Ordering::Relaxed);
                c.rx_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                bump(&c.rx_oversized, oversized);
                bump(&c.rx_super, sup);
                bump(&c.rx_super_bytes, sup_bytes as u64);
                bump(&c.rx_csum_trusted, trusted);
                // An error after some packets shows again on the next call.
                return Poll::Ready(Ok(n));
            }
            if let Some(e) = failure {
                return Poll::Ready(Err(named(&self.name, "read", e)));
            }
            if !drained {
                // Only empty or interrupted reads: let others run, then retry.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            // Drained with nothing read: poll readiness again to register.
        }
    }

    fn send(&self, packets: &[TxPacket<'_>]) -> io::Result<()> {
        let (mut sent, mut bytes, mut drops) = (0u64, 0usize, 0u64);
        let (mut sup, mut sup_bytes, mut partial, mut refused) = (0u64, 0usize, 0u64, 0u64);
        let mut first_error = None;
        for packet in packets {
            let asks = packet.meta.gso_size.is_some() || packet.meta.csum_partial.is_some();
            let hdr = if self.vnet {
                match VnetHdr::for_tx(&packet.meta, packet.header, packet.len()) {
                    Ok(h) => Some(h.emit()),
                    Err(why) => {
                        refused += 1;
                        first_error.get_or_insert_with(|| {
                            io::Error::new(
                                io::ErrorKind::InvalidInput,
                                format!("offload request {:?}: {why:?}", packet.meta),
                            )
                        });
                        continue;
                    }
                }
            } else if asks {
                refused += 1;
                first_error.get_or_insert_with(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "offload request {:?} on a device without offloads ({})",
                            packet.meta, self.offload
                        ),
                    )
                });
                continue;
            } else {
                None
            };
            match self.write_one(packet, hdr.as_ref()) {
                Ok(true) => {
                    sent += 1;
                    bytes += packet.len();
                    if packet.meta.gso_size.is_some() {
                        sup += 1;
                        sup_bytes += packet.len();
                    }
                    partial += u64::from(packet.meta.csum_partial.is_some());
                }
                Ok(false) => drops += 1,
                Err(e) => {
                    drops += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        let c = &self.counters;
        bump(&c.tx_packets, sent);
        bump(&c.tx_bytes, bytes as u64);
        bump(&c.tx_super, sup);
        bump(&c.tx_super_bytes, sup_bytes as u64);
        bump(&c.tx_csum_partial, partial);
        bump(&c.tx_offload_refused, refused);
        if drops > 0 {
            c.tx_drops.fetch_add(drops, Ordering::Relaxed);
            tracing::trace!(name = %self.name, drops, "tun: packets dropped on send");
        }
        match first_error {
            Some(e) => Err(named(&self.name, "write", e)),
            None => Ok(()),
        }
    }
}

/// Adds `n` to a counter (nothing when 0: no needless atomic write).
fn bump(c: &AtomicU64, n: u64) {
    if n > 0 {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

impl DeviceAddrs for TunDevice {
    fn addrs(&self) -> &[IpAddr] {
        &self.addrs
    }
}

//! Packet capture: pcap files of what a device carries.
//!
//! A [`PcapWriter`] appends records to a pcap file (nanosecond timestamps,
//! snap length [`SNAPLEN`], so 9000-byte jumbo frames and 64 KiB IP packets
//! fit whole). [`Capture`] wraps any [`Device`] and records every packet it
//! receives and sends, as raw IP; the `raw` device records its Ethernet frames
//! with a writer of its own made with [`LinkType::Ethernet`].
//!
//! Timestamps follow the runtime's clock: the UNIX wall time when the writer
//! was created plus the `tokio::time::Instant` time elapsed since, so a stack
//! running under `tokio::time::pause()` writes virtual timestamps.
//!
//! Writing never fails the stack: the first I/O error (a full disk, say) is
//! logged once at warn level and every later error is ignored.
//!
//! # Examples
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! use utcp_runtime::device::capture::Capture;
//! use utcp_runtime::sim::{LinkConfig, SimNetwork};
//! use utcp_runtime::{Stack, StackConfig};
//!
//! let net = SimNetwork::new(1);
//! let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
//! let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
//! net.link(&a, &b, LinkConfig::default());
//! let stack = Stack::new(Capture::create(a, "a.pcap")?, StackConfig::default());
//! # drop(stack); Ok(()) }
//! ```

use super::{Device, DeviceAddrs, Medium, RxPacket, TxPacket};
use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::{DataLink, Endianness, TsResolution};
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The snap length written in the file header: the largest record kept whole
/// (longer packets are cut to it, their original length recorded).
pub const SNAPLEN: u32 = 262_144;

/// The link-layer header type of a capture file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// Bare IPv4 or IPv6 packets (pcap `LINKTYPE_RAW`, 101).
    RawIp,
    /// Ethernet frames (pcap `LINKTYPE_ETHERNET`, 1).
    Ethernet,
}

impl LinkType {
    fn datalink(self) -> DataLink {
        match self {
            LinkType::RawIp => DataLink::RAW,
            LinkType::Ethernet => DataLink::ETHERNET,
        }
    }
}

/// Appends packets to a pcap file.
///
/// A cheap handle: clones write to the same file. The file is locked only
/// while one record is written, and flushed when the last clone is dropped.
#[derive(Clone)]
pub struct PcapWriter {
    inner: Arc<Inner>,
}

struct Inner {
    link: LinkType,
    /// UNIX time at creation.
    wall: Duration,
    /// The runtime's clock at creation.
    start: tokio::time::Instant,
    state: Mutex<State>,
}

struct State {
    out: pcap_file::pcap::PcapWriter<Sink>,
    /// The file `out` writes to, reached here to flush it (pcap-file's writer
    /// does not lend its inner writer). Only ever locked under `state`.
    file: Arc<Mutex<BufWriter<File>>>,
    /// Reused to join the parts of one record.
    scratch: Vec<u8>,
    /// An error was logged; later ones are ignored silently.
    failed: bool,
}

/// The buffered file, shared between pcap-file's writer and [`PcapWriter::flush`].
struct Sink(Arc<Mutex<BufWriter<File>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock_file(&self.0).write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        lock_file(&self.0).write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        lock_file(&self.0).flush()
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn lock_file(m: &Mutex<BufWriter<File>>) -> MutexGuard<'_, BufWriter<File>> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn pcap_error(e: pcap_file::PcapError) -> io::Error {
    match e {
        pcap_file::PcapError::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl PcapWriter {
    /// Creates (or truncates) the file at `path` and writes the pcap header.
    ///
    /// # Errors
    ///
    /// When the file cannot be created or the header cannot be written.
    pub fn create(path: impl AsRef<Path>, link: LinkType) -> io::Result<PcapWriter> {
        let path = path.as_ref();
        let annotate =
            |e: io::Error| io::Error::new(e.kind(), format!("pcap {}: {e}", path.display()));
        let file = File::create(path).map_err(annotate)?;
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: link.datalink(),
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        let file = Arc::new(Mutex::new(BufWriter::with_capacity(64 * 1024, file)));
        let out = pcap_file::pcap::PcapWriter::with_header(Sink(file.clone()), header)
            .map_err(|e| annotate(pcap_error(e)))?;
        lock_file(&file).flush().map_err(annotate)?;
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ok(PcapWriter {
            inner: Arc::new(Inner {
                link,
                wall,
                start: tokio::time::Instant::now(),
                state: Mutex::new(State {
                    out,
                    file,
                    scratch: Vec::with_capacity(2048),
                    failed: false,
                }),
            }),
        })
    }

    /// The file's link type.
    pub fn link_type(&self) -> LinkType {
        self.inner.link
    }

    /// Writes one record made of `parts` joined in order, stamped now. A record
    /// longer than [`SNAPLEN`] is cut to it. Errors are logged once, then
    /// ignored.
    pub fn write_packet(&self, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut guard = lock(&self.inner.state);
        // Stamped under the lock, so the file's records are in time order.
        let ts = self.inner.wall + self.inner.start.elapsed();
        let state = &mut *guard;
        state.scratch.clear();
        for part in parts {
            let room = SNAPLEN as usize - state.scratch.len();
            state
                .scratch
                .extend_from_slice(&part[..part.len().min(room)]);
        }
        let orig_len = u32::try_from(len).unwrap_or(u32::MAX);
        let packet = PcapPacket::new(ts, orig_len, &state.scratch);
        if let Err(e) = state.out.write_packet(&packet)
            && !state.failed
        {
            state.failed = true;
            tracing::warn!(error = %e, "pcap: write failed; later errors are ignored");
        }
    }

    /// Writes buffered records to the file.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn flush(&self) -> io::Result<()> {
        let state = lock(&self.inner.state);
        lock_file(&state.file).flush()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = lock_file(&state.file).flush()
            && !state.failed
        {
            tracing::warn!(error = %e, "pcap: final flush failed");
        }
    }
}

impl fmt::Debug for PcapWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapWriter")
            .field("link", &self.inner.link)
            .finish_non_exhaustive()
    }
}

/// A [`Device`] that records every packet it receives and sends.
///
/// The wrapped device hands IP packets whatever its medium, so records are
/// raw IP; given a writer made with [`LinkType::Ethernet`], each record gets a
/// placeholder Ethernet header (zero addresses, the EtherType of the IP
/// version) so the file stays readable.
pub struct Capture<D> {
    device: D,
    writer: PcapWriter,
}

impl<D: Device> Capture<D> {
    /// Wraps `device`, recording to `writer`.
    pub fn new(device: D, writer: PcapWriter) -> Capture<D> {
        Capture { device, writer }
    }

    /// Wraps `device`, recording to a new raw-IP pcap file at `path`.
    ///
    /// # Errors
    ///
    /// When the file cannot be created.
    pub fn create(device: D, path: impl AsRef<Path>) -> io::Result<Capture<D>> {
        Ok(Capture::new(
            device,
            PcapWriter::create(path, LinkType::RawIp)?,
        ))
    }

    /// The wrapped device.
    pub fn get_ref(&self) -> &D {
        &self.device
    }

    /// The writer records go to.
    pub fn writer(&self) -> &PcapWriter {
        &self.writer
    }

    /// Unwraps the device (the writer flushes when its last clone is dropped).
    pub fn into_inner(self) -> D {
        self.device
    }

    /// Records a received packet; a partial checksum (an offloading device's
    /// `NEEDS_CSUM`: the field holds only the pseudo-header sum) is completed
    /// in the record, so the file shows what the packet would have carried on
    /// a wire and checksum-checking readers see it valid.
    fn record_received(&self, packet: &RxPacket) {
        let data = &packet.data[..];
        if let Some((start, field)) = packet.meta.csum_partial
            && let Some(sum) = super::vnet::complete_checksum(data, start, field)
        {
            let field = usize::from(field);
            let sum = sum.to_be_bytes();
            let parts: [&[u8]; 3] = [&data[..field], &sum, &data[field + 2..]];
            self.record_parts(&parts);
            return;
        }
        self.record_parts(&[data]);
    }

    /// A packet sent: as the kernel reads it from a TUN device, a
    /// super-segment whole, but with its partial checksum completed (the
    /// capture shows what the device delivers, not the pseudo-header sum).
    fn record_sent(&self, packet: &TxPacket<'_>) {
        let parts = [packet.header, packet.payload, packet.payload_tail];
        if let Some((start, field)) = packet.meta.csum_partial
            && let Some(whole) = super::vnet::completed_copy(&parts, start, field)
        {
            self.record_parts(&[&whole]);
            return;
        }
        self.record_parts(&parts);
    }

    fn record_parts(&self, parts: &[&[u8]]) {
        match self.writer.link_type() {
            LinkType::RawIp => self.writer.write_packet(parts),
            LinkType::Ethernet => {
                let mut eth = [0u8; 14];
                let first = parts.iter().find_map(|p| p.first());
                let ethertype: u16 = match first.map(|b| b >> 4) {
                    Some(6) => 0x86dd,
                    _ => 0x0800,
                };
                eth[12..].copy_from_slice(&ethertype.to_be_bytes());
                let mut all: [&[u8]; 4] = [&eth, &[], &[], &[]];
                let n = parts.len().min(3);
                all[1..=n].copy_from_slice(&parts[..n]);
                self.writer.write_packet(&all[..=n]);
            }
        }
    }
}

impl<D: fmt::Debug> fmt::Debug for Capture<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("device", &self.device)
            .field("writer", &self.writer)
            .finish()
    }
}

impl<D: Device> Device for Capture<D> {
    fn medium(&self) -> Medium {
        self.device.medium()
    }

    fn mtu(&self) -> usize {
        self.device.mtu()
    }

    fn capabilities(&self) -> super::Capabilities {
        self.device.capabilities()
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        out: &mut Vec<RxPacket>,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        let before = out.len();
        let r = self.device.poll_recv(cx, out, max);
        if let Poll::Ready(Ok(_)) = &r {
            for packet in &out[before..] {
                self.record_received(packet);
            }
        }
        r
    }

    fn close(&self) {
        self.device.close();
        let _ = self.writer.flush();
    }

    fn lookup_host(&self, name: &str) -> Option<Vec<std::net::IpAddr>> {
        self.device.lookup_host(name)
    }

    fn rx_memory(&self) -> Option<super::arena::RxMemory> {
        self.device.rx_memory()
    }

    fn send(&self, packets: &[TxPacket<'_>]) -> io::Result<()> {
        for packet in packets {
            self.record_sent(packet);
        }
        self.device.send(packets)
    }
}

impl<D: DeviceAddrs> DeviceAddrs for Capture<D> {
    fn addrs(&self) -> &[IpAddr] {
        self.device.addrs()
    }
}

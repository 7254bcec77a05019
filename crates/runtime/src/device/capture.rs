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
//! Records are written by a thread of the writer's own, never on the
//! packet path: [`PcapWriter::create`] for a file, [`PcapWriter::to_writer`]
//! for any `Write`, [`PcapWriter::rotating`] for size-limited rotating
//! files. Writing never fails the stack: the first I/O error (a full disk,
//! say) is logged once at warn level, returned by `flush`, and every later
//! error is ignored.
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
use pcap_file::pcap::PcapHeader;
use pcap_file::{DataLink, Endianness, TsResolution};
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
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

/// Appends packets to a pcap capture: a file, any [`Write`], or a set of
/// rotating files.
///
/// A cheap handle: clones write to the same capture. Writing a record only
/// copies it into a buffer under a short lock; a thread of the writer's own
/// does the I/O, so no Tokio worker blocks in `write(2)` on the packet
/// path. While that thread is behind by more than [`MAX_QUEUED`] bytes,
/// records are dropped and counted ([`dropped`](Self::dropped)), never
/// waited for. The capture is flushed by [`flush`](Self::flush) and when
/// the last clone is dropped.
#[derive(Clone)]
pub struct PcapWriter {
    inner: Arc<Inner>,
}

/// Bytes of records waiting for the writer thread at most.
pub const MAX_QUEUED: usize = 16 << 20;

/// Size limit and rotation of a capture ([`PcapWriter::rotating`]), as
/// tcpdump's `-C` and `-W`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// A file is closed and the next one opened before a record would take
    /// it past this many bytes (a record larger than the limit gets a file
    /// of its own).
    pub max_bytes: u64,
    /// Files kept at most (the oldest is deleted); 0 keeps every file.
    pub max_files: usize,
}

struct Inner {
    link: LinkType,
    /// UNIX time at creation.
    wall: Duration,
    /// The runtime's clock at creation.
    start: tokio::time::Instant,
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What the packet path and the writer thread share.
struct Shared {
    q: Mutex<Queue>,
    /// The writer thread waits on it for records (or a flush, or the end).
    work: std::sync::Condvar,
    /// Flushers wait on it for the writer thread.
    written: std::sync::Condvar,
}

#[derive(Default)]
struct Queue {
    /// Encoded records (16-byte header, then the data) not yet handed over.
    buf: Vec<u8>,
    /// Records queued so far, and written (and flushed, for a flush) so far.
    queued: u64,
    written: u64,
    flush_wanted: bool,
    closing: bool,
    dropped: u64,
    /// The first write error.
    error: Option<String>,
}

fn lock_q(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn pcap_error(e: pcap_file::PcapError) -> io::Error {
    match e {
        pcap_file::PcapError::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

fn file_header(link: LinkType) -> io::Result<Vec<u8>> {
    let header = PcapHeader {
        snaplen: SNAPLEN,
        datalink: link.datalink(),
        ts_resolution: TsResolution::NanoSecond,
        endianness: Endianness::native(),
        ..PcapHeader::default()
    };
    let mut v = Vec::with_capacity(24);
    header.write_to(&mut v).map_err(pcap_error)?;
    Ok(v)
}

/// Where the writer thread puts records.
enum Sink {
    Plain(Box<dyn Write + Send>),
    Rotating(Rotating),
}

struct Rotating {
    base: PathBuf,
    rot: Rotation,
    header: Vec<u8>,
    /// The open file's number (0: `base` itself, n: `base.n`) and size.
    index: usize,
    size: u64,
    file: BufWriter<File>,
    /// Files made so far, oldest first.
    files: std::collections::VecDeque<PathBuf>,
}

impl Rotating {
    fn path(base: &Path, index: usize) -> PathBuf {
        if index == 0 {
            base.to_path_buf()
        } else {
            let mut s = base.as_os_str().to_os_string();
            s.push(format!(".{index}"));
            PathBuf::from(s)
        }
    }

    fn open(path: &Path, header: &[u8]) -> io::Result<BufWriter<File>> {
        let annotate =
            |e: io::Error| io::Error::new(e.kind(), format!("pcap {}: {e}", path.display()));
        let mut f = BufWriter::with_capacity(64 * 1024, File::create(path).map_err(annotate)?);
        f.write_all(header).map_err(annotate)?;
        Ok(f)
    }

    fn write_record(&mut self, rec: &[u8]) -> io::Result<()> {
        let len = rec.len() as u64;
        let header = self.header.len() as u64;
        if self.size > header && self.size + len > self.rot.max_bytes {
            self.file.flush()?;
            self.index += 1;
            let path = Rotating::path(&self.base, self.index);
            self.file = Rotating::open(&path, &self.header)?;
            self.size = header;
            self.files.push_back(path);
            while self.rot.max_files > 0 && self.files.len() > self.rot.max_files {
                if let Some(old) = self.files.pop_front() {
                    let _ = std::fs::remove_file(old);
                }
            }
        }
        self.file.write_all(rec)?;
        self.size += len;
        Ok(())
    }
}

impl Sink {
    /// Writes a buffer of whole records.
    fn write_records(&mut self, mut buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(buf),
            Sink::Rotating(r) => {
                while buf.len() >= 16 {
                    let incl = u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
                    let (rec, rest) = buf.split_at((16 + incl).min(buf.len()));
                    r.write_record(rec)?;
                    buf = rest;
                }
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Rotating(r) => r.file.flush(),
        }
    }
}

/// The writer thread: takes the queued records in one swap and writes
/// them, at once when a flush is wanted, the buffer passed 64 KiB or the
/// writer is closing, else at most 100 ms after the first.
fn writer_thread(shared: Arc<Shared>, mut sink: Sink) {
    let mut buf = Vec::new();
    loop {
        let (n, flush, closing) = {
            let mut q = lock_q(&shared.q);
            loop {
                let urgent = q.flush_wanted || q.closing || q.buf.len() >= 64 * 1024;
                if urgent {
                    break;
                }
                if q.buf.is_empty() {
                    q = shared.work.wait(q).unwrap_or_else(PoisonError::into_inner);
                } else {
                    let (g, t) = shared
                        .work
                        .wait_timeout(q, Duration::from_millis(100))
                        .unwrap_or_else(PoisonError::into_inner);
                    q = g;
                    if t.timed_out() {
                        break;
                    }
                }
            }
            buf.clear();
            // The two buffers alternate: the queue's fills while this one
            // is written.
            std::mem::swap(&mut buf, &mut q.buf);
            let flush = std::mem::take(&mut q.flush_wanted);
            (q.queued, flush, q.closing)
        };
        let mut r = sink.write_records(&buf);
        if flush || closing {
            r = r.and_then(|()| sink.flush());
        }
        let mut q = lock_q(&shared.q);
        if let Err(e) = r
            && q.error.is_none()
        {
            tracing::warn!(error = %e, "pcap: write failed; later errors are ignored");
            q.error = Some(e.to_string());
        }
        q.written = n;
        shared.written.notify_all();
        if closing && q.buf.is_empty() {
            return;
        }
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
        let mut w = BufWriter::with_capacity(64 * 1024, file);
        w.write_all(&file_header(link)?).map_err(annotate)?;
        w.flush().map_err(annotate)?;
        Ok(PcapWriter::start(link, Sink::Plain(Box::new(w))))
    }

    /// A capture written to any `Write` (a socket, a pipe, memory …): the
    /// pcap header first, then the records, all from the writer's thread.
    ///
    /// # Errors
    ///
    /// When the header cannot be written.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use utcp_runtime::device::capture::{LinkType, PcapWriter};
    /// #[derive(Clone, Default)]
    /// struct Shared(Arc<Mutex<Vec<u8>>>);
    /// impl std::io::Write for Shared {
    ///     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
    ///     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
    /// }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// let mem = Shared::default();
    /// let w = PcapWriter::to_writer(mem.clone(), LinkType::RawIp)?;
    /// w.write_packet(&[&[0x45; 20]]);
    /// w.flush()?;
    /// assert_eq!(mem.0.lock().unwrap().len(), 24 + 16 + 20);
    /// # Ok(()) }
    /// ```
    pub fn to_writer(mut w: impl Write + Send + 'static, link: LinkType) -> io::Result<PcapWriter> {
        w.write_all(&file_header(link)?)?;
        Ok(PcapWriter::start(link, Sink::Plain(Box::new(w))))
    }

    /// A capture in rotating files (tcpdump's `-C` / `-W`): `path`, then
    /// `path.1`, `path.2` …, each a whole pcap file of at most
    /// `rotation.max_bytes`, the oldest deleted beyond `rotation.max_files`.
    ///
    /// # Errors
    ///
    /// When the first file cannot be created; `InvalidInput` for a limit
    /// too small for the header and one record header (40 bytes).
    pub fn rotating(
        path: impl AsRef<Path>,
        link: LinkType,
        rotation: Rotation,
    ) -> io::Result<PcapWriter> {
        if rotation.max_bytes < 40 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a capture file limit below 40 bytes",
            ));
        }
        let base = path.as_ref().to_path_buf();
        let header = file_header(link)?;
        let file = Rotating::open(&base, &header)?;
        let sink = Sink::Rotating(Rotating {
            files: std::collections::VecDeque::from([base.clone()]),
            base,
            rot: rotation,
            size: header.len() as u64,
            header,
            index: 0,
            file,
        });
        Ok(PcapWriter::start(link, sink))
    }

    fn start(link: LinkType, sink: Sink) -> PcapWriter {
        let shared = Arc::new(Shared {
            q: Mutex::new(Queue::default()),
            work: std::sync::Condvar::new(),
            written: std::sync::Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("utcp-pcap".into())
            .spawn(move || writer_thread(s, sink))
            .ok();
        if thread.is_none() {
            tracing::warn!("pcap: no writer thread could be started; nothing is recorded");
        }
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        PcapWriter {
            inner: Arc::new(Inner {
                link,
                wall,
                start: tokio::time::Instant::now(),
                shared,
                thread: Mutex::new(thread),
            }),
        }
    }

    /// The capture's link type.
    pub fn link_type(&self) -> LinkType {
        self.inner.link
    }

    /// Records dropped because the writer thread was more than
    /// [`MAX_QUEUED`] bytes behind.
    pub fn dropped(&self) -> u64 {
        lock_q(&self.inner.shared.q).dropped
    }

    /// Queues one record made of `parts` joined in order, stamped now (a
    /// copy into the queue; the writer thread writes it). A record longer
    /// than [`SNAPLEN`] is cut to it.
    pub fn write_packet(&self, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let incl = len.min(SNAPLEN as usize);
        let mut q = lock_q(&self.inner.shared.q);
        if q.closing || q.buf.len() + 16 + incl > MAX_QUEUED {
            q.dropped += 1;
            return;
        }
        // Stamped under the lock, so the records are in time order.
        let ts = self.inner.wall + self.inner.start.elapsed();
        let was_empty = q.buf.is_empty();
        let b = &mut q.buf;
        b.extend_from_slice(&(ts.as_secs() as u32).to_ne_bytes());
        b.extend_from_slice(&ts.subsec_nanos().to_ne_bytes());
        b.extend_from_slice(&(incl as u32).to_ne_bytes());
        b.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
        let mut room = incl;
        for part in parts {
            let take = part.len().min(room);
            b.extend_from_slice(&part[..take]);
            room -= take;
        }
        q.queued += 1;
        let wake = was_empty || q.buf.len() >= 64 * 1024;
        drop(q);
        if wake {
            self.inner.shared.work.notify_one();
        }
    }

    /// Writes every record queued so far and flushes the capture; returns
    /// once they are written.
    ///
    /// # Errors
    ///
    /// The first write error the capture met (later records may be lost).
    pub fn flush(&self) -> io::Result<()> {
        let shared = &self.inner.shared;
        let mut q = lock_q(&shared.q);
        let target = q.queued;
        q.flush_wanted = true;
        shared.work.notify_one();
        let alive = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|t| !t.is_finished());
        while alive && q.written < target {
            let (g, _) = shared
                .written
                .wait_timeout(q, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner);
            q = g;
        }
        match &q.error {
            Some(e) => Err(io::Error::other(format!("pcap: {e}"))),
            None => Ok(()),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        lock_q(&self.shared.q).closing = true;
        self.shared.work.notify_one();
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = t.join();
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

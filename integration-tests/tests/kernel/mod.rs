//! Interoperability with Linux kernel TCP over real interfaces, in network
//! namespaces each test creates and deletes: a TUN device (kernel and utcp in
//! one namespace) and a veth pair (kernel in one namespace, utcp on a raw
//! socket in the other). Root only; outside CI they skip with a reason.
//!
//! Offloads: utcp's devices open with their virtio-net header offloads on
//! (the default) and the veth pair keeps the kernel's default offloads
//! (GSO / GRO super-frames and partial checksums reach the raw socket),
//! unless the test asks for them off ([`serial_with`]) or
//! `UTCP_TEST_OFFLOAD=off` is set for the whole run. The echo tests run both
//! ways; the loss tests always turn every offload off on both sides (a
//! dropped packet must be one MTU-sized segment).

mod cli;
mod close;
mod cookies;
mod echo;
mod extra;
mod flow;
mod idle;
mod loss;
mod negotiation;
mod reorder;

use std::io::{self, Read, Write};
use std::net::{
    IpAddr, Shutdown, SocketAddr, TcpListener as KTcpListener, TcpStream as KTcpStream,
};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use utcp::{Stack, StackConfig};
use utcp_integration_tests::netns::{Netns, veth_pair_with};
use utcp_runtime::device::raw::{RawConfig, RawDevice};
use utcp_runtime::device::tun::{TunConfig, TunDevice};
use utcp_testenv::{Cap, NETNS, Need};

/// Whether a kernel-peer test over `link` can run here, with `tools` besides
/// what every such test needs: root with `CAP_SYS_ADMIN` and `ip` (the
/// namespaces), `ss` (the kernel's sockets); for TUN `CAP_NET_ADMIN` and
/// `/dev/net/tun`; for a veth pair `CAP_NET_RAW` (the raw socket) and `ethtool`
/// (offloads off). Outside CI a test that cannot run prints `SKIPPED: …` and
/// returns; with `CI=true` it fails.
pub fn can_run(test: &str, link: Link, tools: &[&'static str]) -> bool {
    let mut needs = NETNS.to_vec();
    match link {
        Link::Tun => needs.extend([Need::Cap(Cap::NetAdmin), Need::TunDevice]),
        Link::Raw => needs.extend([Need::Cap(Cap::NetRaw), Need::Tool("ethtool")]),
    }
    needs.extend(tools.iter().map(|&t| Need::Tool(t)));
    utcp_testenv::require(test, &needs)
}

/// Offloads for the devices and veth pairs of the test holding the
/// [`serial`] lock.
static OFFLOADS: AtomicBool = AtomicBool::new(true);

/// Offloads on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offloads {
    /// utcp's devices ask for virtio-net headers; the veth pair keeps the
    /// kernel's defaults.
    On,
    /// utcp's devices use plain packets; checksum and segmentation offloads
    /// off on both veth ends.
    Off,
}

impl Offloads {
    /// The run's default: on, unless `UTCP_TEST_OFFLOAD=off`.
    pub fn default_for_run() -> Offloads {
        match std::env::var("UTCP_TEST_OFFLOAD").as_deref() {
            Ok("off") => Offloads::Off,
            _ => Offloads::On,
        }
    }

    /// `--offload on|off` for the example binaries.
    pub fn arg(self) -> &'static str {
        match self {
            Offloads::On => "on",
            Offloads::Off => "off",
        }
    }
}

/// Whether the test holding the [`serial`] lock runs with offloads on.
pub fn offloads_on() -> bool {
    OFFLOADS.load(Ordering::SeqCst)
}

/// The offloads of the test holding the [`serial`] lock.
pub fn offloads() -> Offloads {
    if offloads_on() {
        Offloads::On
    } else {
        Offloads::Off
    }
}

/// Kernel-peer tests run one at a time: bulk and lossy transfers on two
/// cores are flaky when they overlap. With the run's default offloads.
pub fn serial() -> MutexGuard<'static, ()> {
    serial_with(Offloads::default_for_run())
}

/// As [`serial`], with `offloads` for the devices and veth pairs this test
/// makes while it holds the lock.
pub fn serial_with(offloads: Offloads) -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    OFFLOADS.store(offloads == Offloads::On, Ordering::SeqCst);
    guard
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A current-thread runtime for a utcp side running on a namespace thread.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Which device carries utcp.
#[derive(Clone, Copy, Debug)]
pub enum Link {
    /// TUN `utun0` in the namespace; kernel side 10.77.0.1/24 (fd77::1/64),
    /// utcp 10.77.0.2 (fd77::2).
    Tun,
    /// veth `va` (kernel, 10.78.0.1/24) – `vb` (utcp raw socket, 10.78.0.2).
    Raw,
}

/// The namespaces of one test and the addresses on each side.
pub struct Net {
    /// Where the kernel peer runs.
    pub kernel: Netns,
    /// Where utcp runs (the same namespace for TUN).
    pub utcp: Option<Netns>,
    pub kernel_ip: IpAddr,
    pub utcp_ip: IpAddr,
}

impl Net {
    pub fn new(link: Link, mtu: u32) -> Net {
        match link {
            Link::Tun => Net {
                kernel: Netns::new("tun").expect("create namespace"),
                utcp: None,
                kernel_ip: ip("10.77.0.1"),
                utcp_ip: ip("10.77.0.2"),
            },
            Link::Raw => {
                let k = Netns::new("rawk").expect("create namespace");
                let u = Netns::new("rawu").expect("create namespace");
                veth_pair_with(&k, &u, mtu, offloads_on()).expect("veth pair");
                k.ip(&["addr", "add", "10.78.0.1/24", "dev", "va"])
                    .expect("kernel address");
                Net {
                    kernel: k,
                    utcp: Some(u),
                    kernel_ip: ip("10.78.0.1"),
                    utcp_ip: ip("10.78.0.2"),
                }
            }
        }
    }

    /// The namespace utcp runs in.
    pub fn utcp_ns(&self) -> &Netns {
        self.utcp.as_ref().unwrap_or(&self.kernel)
    }

    /// utcp's TUN device `utun0` (call on a thread inside `utcp_ns`).
    pub fn tun_device(mtu: u32, v6: bool) -> io::Result<TunDevice> {
        let (addrs, kernel) = if v6 {
            (vec![ip("10.77.0.2"), ip("fd77::2")], (ip("fd77::1"), 64))
        } else {
            (vec![ip("10.77.0.2")], (ip("10.77.0.1"), 24))
        };
        TunDevice::open(TunConfig {
            name: "utun0".into(),
            addrs,
            kernel_addr: Some(kernel),
            mtu: Some(mtu as usize),
            offload: offloads_on(),
        })
    }

    /// utcp's raw socket on `vb` as 10.78.0.2/24, with an optional
    /// Ethernet-level capture (call on a thread inside `utcp_ns`).
    pub fn raw_device(capture: Option<std::path::PathBuf>) -> io::Result<RawDevice> {
        RawDevice::open(RawConfig {
            iface: "vb".into(),
            addr: "10.78.0.2".parse().unwrap(),
            prefix: 24,
            gateway: None,
            mac: None,
            capture,
            offload: offloads_on(),
        })
    }

    /// A default stack on utcp's device for `link`.
    pub fn open_stack(link: Link, mtu: u32, v6: bool) -> io::Result<Stack> {
        Ok(match link {
            Link::Tun => Stack::new(Net::tun_device(mtu, v6)?, StackConfig::default()),
            Link::Raw => Stack::new(Net::raw_device(None)?, StackConfig::default()),
        })
    }
}

/// The utcp side of a test: `body` runs on its own thread inside the utcp
/// namespace (devices belong to the namespace of the thread that opens them),
/// on a current-thread runtime.
pub struct UtcpSide<T> {
    ready: std::sync::mpsc::Receiver<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<io::Result<io::Result<T>>>>,
}

/// What `body` gets: say when it is serving, and wait for the test to end.
pub struct Signals {
    ready: std::sync::mpsc::Sender<()>,
    stop: tokio::sync::oneshot::Receiver<()>,
}

impl Signals {
    /// The utcp side is serving.
    pub fn ready(&self) {
        self.ready.send(()).ok();
    }

    /// Waits until the test calls [`UtcpSide::finish`], at most `limit`.
    pub async fn until_stopped(self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.stop).await;
    }
}

/// Starts `body` on a thread in `ns`.
pub fn spawn_utcp<T, F, Fut>(ns: &Netns, body: F) -> UtcpSide<T>
where
    F: FnOnce(Signals) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = io::Result<T>>,
    T: Send + 'static,
{
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let (stop_tx, stop) = tokio::sync::oneshot::channel();
    let thread = ns.spawn(move || {
        rt().block_on(body(Signals {
            ready: ready_tx,
            stop,
        }))
    });
    UtcpSide {
        ready,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

impl<T> UtcpSide<T> {
    /// Waits until the utcp side said it is serving; if it ended instead,
    /// fails with its error.
    pub fn wait_ready(&mut self) {
        if self.ready.recv_timeout(Duration::from_secs(20)).is_err() {
            let r = self.thread.take().map(|t| t.join());
            panic!(
                "utcp side did not start: {:?}",
                r.map(|r| r.map(|r| r.map(|r| r.map(|_| ()))))
            );
        }
    }

    /// Tells the utcp side to stop and returns what it returned.
    pub fn finish(mut self) -> T {
        if let Some(s) = self.stop.take() {
            s.send(()).ok();
        }
        let t = self.thread.take().expect("utcp side already joined");
        t.join()
            .expect("utcp side panicked")
            .expect("enter the namespace")
            .expect("utcp side failed")
    }
}

/// Connects from the kernel, writes `data` (then shuts down writing) while
/// reading everything back until EOF.
pub fn kernel_echo_client(addr: SocketAddr, data: Vec<u8>) -> io::Result<Vec<u8>> {
    echo_client(addr, data, false)
}

/// As [`kernel_echo_client`], with `TCP_CONGESTION=cubic` (a namespace
/// inherits the host's default, which need not be CUBIC).
pub fn kernel_echo_client_cubic(addr: SocketAddr, data: Vec<u8>) -> io::Result<Vec<u8>> {
    echo_client(addr, data, true)
}

fn echo_client(addr: SocketAddr, data: Vec<u8>, cubic: bool) -> io::Result<Vec<u8>> {
    let s = KTcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    if cubic {
        set_cubic(&s);
    }
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut w = s.try_clone()?;
    let writer = std::thread::spawn(move || -> io::Result<()> {
        w.write_all(&data)?;
        w.shutdown(Shutdown::Write)
    });
    let mut back = Vec::new();
    (&s).read_to_end(&mut back)?;
    writer
        .join()
        .map_err(|_| io::Error::other("writer panicked"))??;
    Ok(back)
}

/// A kernel echo server for `n` connections (each echoes until EOF, then
/// closes), giving up after `limit`.
pub fn kernel_echo_server(
    addr: SocketAddr,
    n: usize,
    limit: Duration,
) -> io::Result<(SocketAddr, std::thread::JoinHandle<io::Result<usize>>)> {
    let l = KTcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    let bound = l.local_addr()?;
    let h = std::thread::spawn(move || {
        let end = Instant::now() + limit;
        let mut served = 0;
        let mut handlers = Vec::new();
        while served < n && Instant::now() < end {
            match l.accept() {
                Ok((s, _)) => {
                    served += 1;
                    handlers.push(std::thread::spawn(move || -> io::Result<()> {
                        s.set_nonblocking(false)?;
                        s.set_read_timeout(Some(Duration::from_secs(60)))?;
                        let mut r = s.try_clone()?;
                        let mut w = s;
                        io::copy(&mut r, &mut w)?;
                        w.shutdown(Shutdown::Write)
                    }));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => return Err(e),
            }
        }
        for h in handlers {
            h.join()
                .map_err(|_| io::Error::other("handler panicked"))??;
        }
        Ok(served)
    });
    Ok((bound, h))
}

/// Sets `TCP_CONGESTION=cubic` on a kernel socket and checks it took.
pub fn set_cubic(fd: &impl AsRawFd) {
    let name = b"cubic";
    // SAFETY: a valid socket and a buffer of the given length.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "TCP_CONGESTION=cubic: {}", io::Error::last_os_error());
    let mut buf = [0u8; 16];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: as above, `len` holds the buffer's length.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "getsockopt TCP_CONGESTION");
    assert!(buf.starts_with(name), "congestion control not cubic");
}

/// `ss -Htan` lines in a namespace that mention `addr` (a failing `ss` fails
/// the test: an empty list must mean no socket, not no answer).
pub fn ss_lines(ns: &Netns, addr: &str) -> Vec<String> {
    let out = ns
        .exec("ss", &["-Htan"])
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .expect("ss -Htan in the kernel namespace");
    out.lines()
        .filter(|l| l.contains(addr))
        .map(str::to_string)
        .collect()
}

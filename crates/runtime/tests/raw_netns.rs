//! The raw device against Linux kernel TCP and ARP.
//!
//! Each test creates two network namespaces of its own, A (the kernel,
//! 10.98.0.1/24 on `va`) and B (utcp on a raw socket on `vb`, owning
//! 10.98.0.2 with no kernel address), joined by a veth pair created inside
//! them. The veth keeps the kernel's default offloads (TSO / GSO super-frames
//! and partial checksums reach the raw socket, which reads them through its
//! virtio-net header); the `_offloads_off` tests turn every offload off on
//! both ends and on the device. DESIGN's test network rules: the
//! names are unique (`utcp-raw-<pid>-<n>`), a guard deletes the namespaces
//! also when a test fails, nothing touches the root namespace, and every loop
//! and wait is bounded.
//!
//! Needs root, `ip` and `ethtool`; without them a test prints one `SKIPPED:`
//! line naming what is missing and returns, unless `CI=true`, where it fails.
#![cfg(target_os = "linux")]

mod common;

use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::io::ReadBuf;
use tokio::time::timeout;
use utcp_runtime::device::raw::{RawConfig, RawDevice, RawStats};
use utcp_runtime::proto::State;
use utcp_runtime::{
    ConnRef, Device, ListenerRef, Offload, Stack, StackConfig, StackStats, TxPacket,
};

const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 1);
const UTCP_IP: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 2);
const BROADCAST: [u8; 6] = [0xff; 6];
/// Bytes echoed by the transfer tests.
const BIG: usize = 1 << 20;
/// The bound on any one wait (connect, accept, a whole transfer).
const WAIT: Duration = Duration::from_secs(30);

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Whether the test can run here: root with `CAP_SYS_ADMIN` and `ip` for the
/// namespaces, `CAP_NET_RAW` for the AF_PACKET socket, `ethtool` for the veth
/// offloads. Outside CI it prints `SKIPPED: …` and returns `false`; with
/// `CI=true` a missing prerequisite fails the test.
fn can_run(test: &str) -> bool {
    use utcp_testenv::{Cap, NETNS, Need};
    let mut needs = NETNS.to_vec();
    needs.extend([Need::Cap(Cap::NetRaw), Need::Tool("ethtool")]);
    utcp_testenv::require(test, &needs)
}

/// The test's namespaces and veth pair (the kernel's default offloads);
/// once [`can_run`] said yes, failing to make them is a failure, not a skip.
fn setup_or_skip(test: &str, mtu: Option<u32>) -> Option<Link> {
    setup_with(test, mtu, true)
}

/// As [`setup_or_skip`], with the veth's offloads at their defaults
/// (`offloads`) or all off on both ends.
fn setup_with(test: &str, mtu: Option<u32>, offloads: bool) -> Option<Link> {
    match Link::new(mtu, offloads) {
        Ok(link) => Some(link),
        Err(e) => panic!("{test}: cannot set up the network namespaces: {e}"),
    }
}

fn run(cmd: &str, args: &[&str]) -> io::Result<Output> {
    let out = Command::new(cmd).args(args).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

/// A network namespace this test made; deleted on drop, also on panic.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> io::Result<Netns> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("utcp-raw-{}-{n}{tag}", std::process::id());
        run("ip", &["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n NAME ARGS…`
    fn ip(&self, args: &[&str]) -> io::Result<Output> {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// `ip netns exec NAME CMD ARGS…`
    fn exec(&self, cmd: &str, args: &[&str]) -> io::Result<Output> {
        let mut a = vec!["netns", "exec", self.name.as_str(), cmd];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// Runs `f` on a new thread inside this namespace: sockets it creates,
    /// AF_PACKET ones included, belong to the namespace.
    fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<io::Result<T>> {
        let path = PathBuf::from(format!("/var/run/netns/{}", self.name));
        std::thread::spawn(move || {
            enter(&path)?;
            Ok(f())
        })
    }

    /// The MAC address of `dev` in this namespace.
    fn mac(&self, dev: &str) -> io::Result<[u8; 6]> {
        let out = self.ip(&["-o", "link", "show", dev])?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        words
            .find(|w| *w == "link/ether")
            .and_then(|_| words.next())
            .and_then(parse_mac)
            .ok_or_else(|| io::Error::other(format!("no MAC in {text:?}")))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

fn enter(path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path)?;
    // SAFETY: setns on a namespace fd only moves this thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn fmt_mac(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}

/// Namespaces A (kernel) and B (utcp) joined by `va` — `vb`.
struct Link {
    // Dropped in this order: B, then A (which takes the veth pair with it).
    b: Netns,
    a: Netns,
}

impl Link {
    fn new(mtu: Option<u32>, offloads: bool) -> io::Result<Link> {
        let a = Netns::new("a")?;
        let b = Netns::new("b")?;
        // Both ends are created straight inside the namespaces.
        a.ip(&[
            "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", &b.name,
        ])?;
        if let Some(mtu) = mtu {
            let mtu = mtu.to_string();
            a.ip(&["link", "set", "va", "mtu", &mtu])?;
            b.ip(&["link", "set", "vb", "mtu", &mtu])?;
        }
        a.ip(&["addr", "add", "10.98.0.1/24", "dev", "va"])?;
        // No IPv6 chatter on the link.
        let _ = a.exec("sysctl", &["-qw", "net.ipv6.conf.va.disable_ipv6=1"]);
        let _ = b.exec("sysctl", &["-qw", "net.ipv6.conf.vb.disable_ipv6=1"]);
        for (ns, dev) in [(&a, "va"), (&b, "vb")] {
            if !offloads {
                ns.exec(
                    "ethtool",
                    &[
                        "-K", dev, "rx", "off", "tx", "off", "sg", "off", "tso", "off", "gso",
                        "off", "gro", "off",
                    ],
                )?;
            }
            ns.ip(&["link", "set", dev, "up"])?;
        }
        Ok(Link { b, a })
    }
}

fn raw_config() -> RawConfig {
    RawConfig::new("vb", UTCP_IP, 24)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current_thread runtime")
}

/// A test pattern that does not repeat with any small period.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn join<T>(h: JoinHandle<io::Result<T>>, what: &str) -> T {
    match h.join() {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{what}: entering the namespace failed: {e}"),
        Err(p) => std::panic::resume_unwind(p),
    }
}

// ---- utcp side: async helpers over ConnRef / ListenerRef ----

async fn accept(l: &ListenerRef) -> io::Result<ConnRef> {
    poll_fn(|cx| l.poll_accept(cx)).await
}

async fn connected(c: &ConnRef) -> io::Result<()> {
    poll_fn(|cx| c.poll_connected(cx)).await
}

async fn read(c: &ConnRef, buf: &mut [u8]) -> io::Result<usize> {
    poll_fn(|cx| {
        let mut rb = ReadBuf::new(buf);
        match c.poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

async fn write_all(c: &ConnRef, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = poll_fn(|cx| c.poll_write(cx, data)).await?;
        data = &data[n..];
    }
    Ok(())
}

/// Echoes until the peer's FIN, then sends ours. Returns the bytes echoed.
async fn echo(c: &ConnRef) -> io::Result<usize> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = read(c, &mut buf).await?;
        if n == 0 {
            break;
        }
        write_all(c, &buf[..n]).await?;
        total += n;
    }
    c.shutdown_write()?;
    Ok(total)
}

/// Waits (bounded) for the connection to reach CLOSED or TIME_WAIT.
async fn wait_closed(c: &ConnRef) -> State {
    let start = tokio::time::Instant::now();
    loop {
        let s = c.state();
        if matches!(s, State::Closed | State::TimeWait) || start.elapsed() > WAIT {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn timed_out<T>(what: &str) -> impl FnOnce(T) -> io::Error + '_ {
    move |_| io::Error::new(io::ErrorKind::TimedOut, format!("{what} took too long"))
}

// ---- kernel side ----

/// Connects from namespace A's kernel to `addr`, sends `data` while reading
/// the echo, closes its sending side, and returns what came back.
fn kernel_echo_client(addr: SocketAddr, data: Vec<u8>) -> io::Result<Vec<u8>> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(WAIT))?;
    stream.set_write_timeout(Some(WAIT))?;
    let mut writer = stream.try_clone()?;
    let sender = std::thread::spawn(move || -> io::Result<()> {
        for chunk in data.chunks(16 * 1024) {
            writer.write_all(chunk)?;
        }
        writer.shutdown(Shutdown::Write)
    });
    let mut back = Vec::with_capacity(BIG);
    let mut reader = stream;
    let result = reader.read_to_end(&mut back);
    let sent = sender
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    result?;
    sent?;
    Ok(back)
}

/// A kernel echo server in namespace A for one connection, its listening
/// port reported on `port`. Returns the bytes echoed.
fn kernel_echo_server(port: std::sync::mpsc::Sender<u16>) -> io::Result<usize> {
    let listener = TcpListener::bind((KERNEL_IP, 0))?;
    let _ = port.send(listener.local_addr()?.port());
    listener.set_nonblocking(true)?;
    let start = Instant::now();
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && start.elapsed() < WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(WAIT))?;
    stream.set_write_timeout(Some(WAIT))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        stream.write_all(&buf[..n])?;
        total += n;
    }
    stream.shutdown(Shutdown::Write)?;
    Ok(total)
}

/// What the utcp side of a transfer reports.
struct UtcpReport {
    echoed: usize,
    final_state: State,
    raw: RawStats,
    stack: StackStats,
}

/// A utcp echo server on 10.98.0.2:7 in namespace B, for one connection, and
/// a kernel client in A echoing `BIG` bytes through it. Returns the report.
fn echo_through_utcp(
    link: &Link,
    cfg: RawConfig,
    stack_cfg: StackConfig,
    rt: fn() -> tokio::runtime::Runtime,
) -> UtcpReport {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
    let server = link.b.spawn(move || -> io::Result<UtcpReport> {
        rt().block_on(async move {
            let dev = match RawDevice::open(cfg) {
                Ok(dev) => dev,
                Err(e) => {
                    let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            };
            let stack = Stack::new(dev.clone(), stack_cfg);
            let listener = stack.listen(SocketAddr::from((UTCP_IP, 7)))?;
            let _ = ready_tx.send(Ok(()));
            let conn = timeout(WAIT, accept(&listener))
                .await
                .map_err(timed_out("accept"))??;
            let echoed = timeout(WAIT, echo(&conn))
                .await
                .map_err(timed_out("echo"))??;
            let final_state = wait_closed(&conn).await;
            Ok(UtcpReport {
                echoed,
                final_state,
                raw: dev.stats(),
                stack: stack.stats(),
            })
        })
    });
    match ready_rx.recv_timeout(WAIT) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("opening the raw device failed: {e}"),
        Err(e) => panic!("the utcp server did not start: {e}"),
    }
    let data = pattern(BIG);
    let client = link
        .a
        .spawn(move || kernel_echo_client(SocketAddr::from((UTCP_IP, 7)), data));
    let back = join(client, "kernel client").expect("the kernel client's transfer");
    let report = join(server, "utcp server").expect("the utcp server");
    assert_eq!(back.len(), BIG, "the kernel got back every byte");
    assert!(back == pattern(BIG), "the echo matches byte for byte");
    assert_eq!(report.echoed, BIG, "utcp echoed every byte");
    report
}

// ---- the tests ----

/// The kernel resolves utcp's address with ARP: after a connection attempt
/// (refused by utcp's RST), A's neighbour table holds 10.98.0.2 at B's MAC.
#[test]
fn raw_kernel_resolves_utcp_address_with_arp() {
    kernel_resolves_utcp("raw_kernel_resolves_utcp_address_with_arp", None);
}

/// With a MAC of its own (not the interface's), the device announces and
/// answers with it, and receives frames sent to it (promiscuous mode).
#[test]
fn raw_own_mac_is_answered_and_received() {
    kernel_resolves_utcp(
        "raw_own_mac_is_answered_and_received",
        Some([0x02, 0x75, 0x74, 0x63, 0x70, 0x02]),
    );
}

fn kernel_resolves_utcp(test: &str, mac: Option<[u8; 6]>) {
    init_tracing();
    if !can_run(test) {
        return;
    }
    let Some(link) = setup_or_skip(test, None) else {
        return;
    };
    let b_mac = link.b.mac("vb").expect("vb's MAC");
    let want_mac = mac.unwrap_or(b_mac);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let utcp = link
        .b
        .spawn(move || -> io::Result<(RawStats, StackStats, [u8; 6])> {
            runtime().block_on(async move {
                let mut cfg = raw_config();
                cfg.mac = mac;
                let dev = RawDevice::open(cfg)?;
                let stack = Stack::new(dev.clone(), StackConfig::default());
                let _ = ready_tx.send(());
                // Serve (answer ARP, reset the SYN) until the kernel side is done.
                let _ = timeout(WAIT, done_rx).await;
                Ok((dev.stats(), stack.stats(), dev.mac()))
            })
        });
    ready_rx.recv_timeout(WAIT).expect("utcp started");
    let attempt = link.a.spawn(|| {
        TcpStream::connect_timeout(&SocketAddr::from((UTCP_IP, 9)), Duration::from_secs(10))
            .map(|_| ())
    });
    let result = join(attempt, "kernel connect");
    let neigh = link
        .a
        .ip(&["neigh", "show", "10.98.0.2", "dev", "va"])
        .expect("ip neigh");
    let _ = done_tx.send(());
    let (raw, stack, dev_mac) = join(utcp, "utcp").expect("the raw device opened");
    eprintln!("{test}: {raw:?}\n{test}: {stack:?}");

    assert_eq!(
        result.as_ref().map_err(|e| e.kind()),
        Err(io::ErrorKind::ConnectionRefused),
        "utcp answers a SYN to a closed port with RST"
    );
    assert_eq!(dev_mac, want_mac, "the device's MAC");
    let neigh = String::from_utf8_lossy(&neigh.stdout);
    assert!(
        neigh.contains(&fmt_mac(want_mac)),
        "A's kernel learned 10.98.0.2 at {}: {neigh:?}",
        fmt_mac(want_mac)
    );
    assert!(
        ["REACHABLE", "STALE", "DELAY", "PROBE"]
            .iter()
            .any(|s| neigh.contains(s)),
        "the entry is resolved: {neigh:?}"
    );
    assert!(raw.arp_requests_answered >= 1, "{raw:?}");
    assert!(raw.arp_requests_sent >= 1, "the gratuitous ARP: {raw:?}");
    assert!(stack.resets_sent >= 1, "{stack:?}");
    assert_eq!(raw.drops(), 0, "{raw:?}");
}

/// A kernel client echoes 1 MiB through a utcp server on the raw device.
#[test]
fn raw_kernel_client_echoes_through_utcp_server() {
    kernel_client_echo("raw_kernel_client_echoes_through_utcp_server", true);
}

/// The same with every offload off: veth ends and device.
#[test]
fn raw_kernel_client_echoes_through_utcp_server_offloads_off() {
    kernel_client_echo(
        "raw_kernel_client_echoes_through_utcp_server_offloads_off",
        false,
    );
}

fn kernel_client_echo(test: &str, offloads: bool) {
    init_tracing();
    if !can_run(test) {
        return;
    }
    let Some(link) = setup_with(test, None, offloads) else {
        return;
    };
    let mut cfg = raw_config();
    cfg.offload = offloads;
    let report = echo_through_utcp(&link, cfg, StackConfig::default(), runtime);
    let raw = report.raw;
    eprintln!("{test}: {raw:?}\n{test}: {:?}", report.stack);
    assert_eq!(report.final_state, State::Closed, "passive close completes");
    assert!(raw.arp_requests_answered >= 1, "{raw:?}");
    assert_eq!(raw.rx_truncated, 0, "{raw:?}");
    assert_eq!(raw.arp_failures, 0, "{raw:?}");
    assert_eq!(raw.drops(), 0, "{raw:?}");
    assert!(report.stack.rx_packets > 0, "{:?}", report.stack);
    // Frames are read in batches and sent in batches. With MTU frames a
    // pass sends several for each ACK; with super-segments one pass may
    // well hand the device one frame each time (a loaded CI run: 127
    // frames in 127 calls, 65 of them super-segments of 16 KiB), so there
    // a batch is only bounded by its frames.
    assert!(raw.rx_batches < raw.rx_frames, "{raw:?}");
    if offloads {
        assert!(raw.tx_batches <= raw.tx_frames, "{raw:?}");
    } else {
        assert!(raw.tx_batches < raw.tx_frames, "{raw:?}");
    }
    if offloads {
        // The kernel's TSO super-frames arrived whole, partial checksums
        // trusted.
        assert!(raw.rx_super > 0, "{raw:?}");
        assert!(raw.rx_super_mean_bytes() > 1514, "{raw:?}");
        assert!(raw.rx_csum_trusted > 0, "{raw:?}");
    } else {
        assert_eq!((raw.rx_super, raw.rx_csum_trusted), (0, 0), "{raw:?}");
    }
}

/// The same on a multi-thread runtime (two workers): the device is driven
/// from whichever worker polls it, sends come from every worker.
#[test]
fn raw_kernel_client_echoes_on_multi_thread_runtime() {
    init_tracing();
    let test = "raw_kernel_client_echoes_on_multi_thread_runtime";
    if !can_run(test) {
        return;
    }
    let Some(link) = setup_or_skip(test, None) else {
        return;
    };
    let report = echo_through_utcp(&link, raw_config(), StackConfig::default(), || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a multi-thread runtime")
    });
    eprintln!("{test}: {:?}", report.raw);
    assert_eq!(report.final_state, State::Closed, "passive close completes");
    assert_eq!(report.raw.drops(), 0, "{:?}", report.raw);
}

/// utcp connects out to a kernel echo server: the next hop is resolved with
/// ARP (packets wait for the answer), and 1 MiB comes back intact.
#[test]
fn raw_utcp_client_resolves_and_echoes_with_kernel_server() {
    utcp_client_echo(
        "raw_utcp_client_resolves_and_echoes_with_kernel_server",
        true,
    );
}

/// The same with every offload off: veth ends and device.
#[test]
fn raw_utcp_client_resolves_and_echoes_with_kernel_server_offloads_off() {
    utcp_client_echo(
        "raw_utcp_client_resolves_and_echoes_with_kernel_server_offloads_off",
        false,
    );
}

fn utcp_client_echo(test: &'static str, offloads: bool) {
    init_tracing();
    if !can_run(test) {
        return;
    }
    let Some(link) = setup_with(test, None, offloads) else {
        return;
    };
    let a_mac = link.a.mac("va").expect("va's MAC");
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let server = link.a.spawn(move || kernel_echo_server(port_tx));
    let port = port_rx
        .recv_timeout(WAIT)
        .expect("the kernel server listens");
    let client = link.b.spawn(move || -> io::Result<_> {
        runtime().block_on(async move {
            let mut cfg = raw_config();
            cfg.offload = offloads;
            let dev = RawDevice::open(cfg)?;
            assert_eq!(dev.offload().is_on(), offloads, "{:?}", dev.offload());
            assert_eq!(dev.neighbor(KERNEL_IP), None, "nothing resolved yet");
            let stack = Stack::new(dev.clone(), StackConfig::default());
            let conn = stack.connect_start(SocketAddr::from((KERNEL_IP, port)))?;
            timeout(WAIT, connected(&conn))
                .await
                .map_err(timed_out("connect"))??;
            // The SYN waited for ARP and left when the answer came, without
            // waiting for a retransmission.
            let syn = conn.stats();
            assert_eq!(
                (syn.rto_count, syn.segments_retransmitted),
                (0, 0),
                "the queued SYN was flushed on the ARP reply"
            );
            let data = pattern(BIG);
            let send = async {
                write_all(&conn, &data).await?;
                conn.shutdown_write()
            };
            let recv = async {
                let mut back = Vec::with_capacity(BIG);
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = read(&conn, &mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    back.extend_from_slice(&buf[..n]);
                }
                io::Result::Ok(back)
            };
            let (sent, back) = timeout(WAIT, async { tokio::join!(send, recv) })
                .await
                .map_err(timed_out("transfer"))?;
            sent?;
            let back = back?;
            let final_state = wait_closed(&conn).await;
            Ok((back, final_state, dev.neighbor(KERNEL_IP), dev.stats()))
        })
    });
    let (back, final_state, neighbor, raw) = join(client, "utcp client").expect("utcp client");
    let echoed = join(server, "kernel server").expect("kernel server");
    eprintln!("{test}: {raw:?}");
    assert_eq!(echoed, BIG, "the kernel echoed every byte");
    assert_eq!(back.len(), BIG);
    assert!(back == pattern(BIG), "the echo matches byte for byte");
    assert_eq!(
        final_state,
        State::TimeWait,
        "active close ends in TIME_WAIT"
    );
    assert_eq!(neighbor, Some(a_mac), "ARP resolved 10.98.0.1 to va's MAC");
    assert!(raw.arp_replies_received >= 1, "{raw:?}");
    assert!(
        raw.arp_requests_sent >= 2,
        "the gratuitous ARP and a resolution: {raw:?}"
    );
    assert_eq!(raw.arp_failures, 0, "{raw:?}");
    assert_eq!(raw.drops(), 0, "{raw:?}");
}

/// With MTU 9000 on both ends, 1 MiB echoes with jumbo frames both ways and
/// none is cut: the Ethernet capture shows 9014-byte frames whole (offloads
/// off), or the kernel's super-frames whole and utcp's frames within the MTU
/// (offloads on).
#[test]
fn raw_jumbo_frames_echo_whole() {
    jumbo_echo("raw_jumbo_frames_echo_whole", true);
}

#[test]
fn raw_jumbo_frames_echo_whole_offloads_off() {
    jumbo_echo("raw_jumbo_frames_echo_whole_offloads_off", false);
}

fn jumbo_echo(test: &str, offloads: bool) {
    init_tracing();
    if !can_run(test) {
        return;
    }
    let Some(link) = setup_with(test, Some(9000), offloads) else {
        return;
    };
    let a_mac = link.a.mac("va").expect("va's MAC");
    let pcap = std::env::temp_dir().join(format!(
        "utcp-raw-{}-{}.pcap",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    struct RemoveOnDrop(PathBuf);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _cleanup = RemoveOnDrop(pcap.clone());

    let mut cfg = raw_config();
    cfg.capture = Some(pcap.clone());
    cfg.offload = offloads;
    // The MSS cap is `mss_limit` (endpoint.conn.mss is overwritten by the
    // runtime, and rejected by StackConfig::validate).
    let mut stack_cfg = StackConfig {
        mss_limit: Some(8960),
        ..StackConfig::default()
    };
    stack_cfg.endpoint.conn.recv_buffer = 256 * 1024;
    let report = echo_through_utcp(&link, cfg, stack_cfg, runtime);
    eprintln!("{test}: {:?}\n{test}: {:?}", report.raw, report.stack);
    assert_eq!(report.raw.rx_truncated, 0, "{:?}", report.raw);
    assert_eq!(report.raw.drops(), 0, "{:?}", report.raw);

    // The device (and so its capture) is dropped with the utcp thread's
    // runtime, which flushed the file.
    let file = std::fs::File::open(&pcap).expect("the capture file");
    let mut reader = pcap_file::pcap::PcapReader::new(file).expect("a pcap file");
    assert_eq!(
        reader.header().datalink,
        pcap_file::DataLink::ETHERNET,
        "an Ethernet capture"
    );
    let (mut from_kernel, mut from_utcp) = (0usize, 0usize);
    let mut records = 0;
    while let Some(packet) = reader.next_packet() {
        let packet = packet.expect("a whole record");
        records += 1;
        assert_eq!(
            packet.data.len(),
            packet.orig_len as usize,
            "recorded whole"
        );
        let data = &packet.data;
        assert!(data.len() >= 14, "an Ethernet header");
        if data[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip_len = usize::from(u16::from_be_bytes([data[16], data[17]]));
        assert!(14 + ip_len <= data.len(), "the IP packet is whole");
        if data[6..12] == a_mac {
            from_kernel = from_kernel.max(data.len());
            // Offloads on: the kernel's TSO super-frames are larger.
            assert!(
                offloads || ip_len <= 9000,
                "no IP packet above the MTU: {ip_len}"
            );
        } else {
            from_utcp = from_utcp.max(data.len());
            // Offloads on: utcp's super-segments, cut by the kernel.
            assert!(
                offloads || ip_len <= 9000,
                "utcp sent above the MTU: {ip_len}"
            );
        }
    }
    eprintln!(
        "{test}: {records} frames captured, largest from the kernel {from_kernel}, from utcp {from_utcp}"
    );
    assert!(records > 0, "something was captured");
    if offloads {
        assert!(
            from_kernel > 9014,
            "the kernel's super-frames: {from_kernel}"
        );
        assert!(report.raw.rx_super > 0, "{:?}", report.raw);
    } else {
        assert_eq!(from_kernel, 9014, "the kernel sent full 9000-byte packets");
    }
    assert!(
        from_utcp > 1514,
        "utcp sent jumbo frames too (largest {from_utcp})"
    );
}

/// Opening a missing interface is `NotFound`, naming it.
#[test]
fn raw_missing_interface_is_not_found() {
    init_tracing();
    let test = "raw_missing_interface_is_not_found";
    if !can_run(test) {
        return;
    }
    let Some(link) = setup_or_skip(test, None) else {
        return;
    };
    let err = join(
        link.b
            .spawn(|| RawDevice::open(RawConfig::new("utcp-nope0", UTCP_IP, 24))),
        "open",
    )
    .expect_err("no such interface");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("utcp-nope0"), "{err}");
}

/// A minimal IPv4 packet (protocol 253, RFC 3692's experimental number) of
/// `len` bytes from utcp's address to `dst`.
fn ipv4_packet(dst: Ipv4Addr, id: u16, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(20)];
    p[0] = 0x45;
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[8] = 64;
    p[9] = 253;
    p[12..16].copy_from_slice(&UTCP_IP.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let sum: u32 = p[..20]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p
}

fn tx(packets: &[Vec<u8>]) -> Vec<TxPacket<'_>> {
    packets
        .iter()
        .map(|p| TxPacket {
            header: p,
            payload: &[],
            payload_tail: &[],
            meta: Offload::default(),
        })
        .collect()
}

/// Polls the device's receive side forever (what the stack's device task
/// does), so ARP's timers and answers run without a stack.
fn spawn_poller(dev: &RawDevice) -> tokio::task::JoinHandle<()> {
    let dev = dev.clone();
    tokio::spawn(async move {
        let mut out = Vec::new();
        loop {
            let r = poll_fn(|cx| dev.poll_recv(cx, &mut out, 64)).await;
            out.clear();
            if r.is_err() {
                return;
            }
        }
    })
}

/// In virtual time: packets for an on-link address nobody owns wait in a
/// bounded queue while ARP asks three times a second apart, then are dropped
/// and counted; an off-link destination without a gateway and a packet above
/// the MTU are dropped and counted at once.
#[test]
fn raw_arp_resolution_failure_drops_and_counts() {
    init_tracing();
    let test = "raw_arp_resolution_failure_drops_and_counts";
    if !can_run(test) {
        return;
    }
    let Some(link) = setup_or_skip(test, None) else {
        return;
    };
    let ghost = Ipv4Addr::new(10, 98, 0, 77);
    let run = link.b.spawn(move || -> io::Result<[RawStats; 4]> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()?;
        rt.block_on(async move {
            let dev = RawDevice::open(raw_config())?;
            let poller = spawn_poller(&dev);
            let queued: Vec<Vec<u8>> = (0..40).map(|i| ipv4_packet(ghost, i, 40)).collect();
            dev.send(&tx(&queued))?;
            let sent = dev.stats();
            // Requests at 0 s, 1 s and 2 s; the resolution fails at 3 s.
            tokio::time::sleep(Duration::from_millis(2500)).await;
            let asking = dev.stats();
            tokio::time::sleep(Duration::from_secs(1)).await;
            let failed = dev.stats();
            let off_link = ipv4_packet(Ipv4Addr::new(192, 0, 2, 1), 1, 40);
            let oversized = ipv4_packet(ghost, 2, dev.mtu() + 1);
            dev.send(&tx(&[off_link, oversized]))?;
            let other = dev.stats();
            poller.abort();
            Ok([sent, asking, failed, other])
        })
    });
    let [sent, asking, failed, other] = join(run, "utcp").expect("the device");
    eprintln!("{test}: {sent:?}\n{asking:?}\n{failed:?}\n{other:?}");
    // The gratuitous ARP and the first request.
    assert_eq!(sent.arp_requests_sent, 2, "{sent:?}");
    assert_eq!(sent.arp_queue_drops, 8, "32 wait, the 8 oldest dropped");
    assert_eq!(asking.arp_requests_sent, 4, "two retries: {asking:?}");
    assert_eq!(asking.arp_failures, 0, "{asking:?}");
    assert_eq!(failed.arp_requests_sent, 4, "no fourth request: {failed:?}");
    assert_eq!(failed.arp_failures, 1, "{failed:?}");
    assert_eq!(failed.arp_unresolved_drops, 32, "{failed:?}");
    assert_eq!(other.tx_no_route, 1, "{other:?}");
    assert_eq!(other.tx_oversized, 1, "{other:?}");
    assert_eq!(
        other.tx_frames, 4,
        "only the ARP requests left the device: {other:?}"
    );
    assert_eq!(other.drops(), 8 + 32 + 1 + 1, "{other:?}");
}

/// A packet for an off-link destination goes to the gateway, whose MAC ARP
/// resolves (the kernel in A, which does not forward, drops the packet).
#[test]
fn raw_off_link_packets_go_to_the_gateway() {
    init_tracing();
    let test = "raw_off_link_packets_go_to_the_gateway";
    if !can_run(test) {
        return;
    }
    let Some(link) = setup_or_skip(test, None) else {
        return;
    };
    let a_mac = link.a.mac("va").expect("va's MAC");
    let run = link
        .b
        .spawn(move || -> io::Result<(Option<[u8; 6]>, RawStats)> {
            runtime().block_on(async move {
                let mut cfg = raw_config();
                cfg.gateway = Some(KERNEL_IP);
                let dev = RawDevice::open(cfg)?;
                let poller = spawn_poller(&dev);
                dev.send(&tx(&[ipv4_packet(Ipv4Addr::new(192, 0, 2, 1), 1, 40)]))?;
                let start = tokio::time::Instant::now();
                while dev.stats().tx_frames < 3 && start.elapsed() < Duration::from_secs(5) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                poller.abort();
                Ok((dev.neighbor(KERNEL_IP), dev.stats()))
            })
        });
    let (gateway_mac, raw) = join(run, "utcp").expect("the device");
    eprintln!("{test}: {raw:?}");
    assert_eq!(gateway_mac, Some(a_mac), "the gateway was resolved");
    assert_eq!(raw.arp_replies_received, 1, "{raw:?}");
    assert_eq!(
        raw.tx_frames, 3,
        "the gratuitous ARP, the request, the packet: {raw:?}"
    );
    assert_eq!(raw.drops(), 0, "{raw:?}");
}

/// Frames that are not for the device, or that are malformed, are counted
/// and ignored (never a panic); a padded IPv4 packet for us reaches the
/// stack trimmed to its IP length; ARP about other hosts teaches nothing.
#[test]
fn raw_foreign_and_malformed_frames_are_ignored() {
    init_tracing();
    let test = "raw_foreign_and_malformed_frames_are_ignored";
    if !can_run(test) {
        return;
    }
    let Some(link) = setup_or_skip(test, None) else {
        return;
    };
    let a_mac = link.a.mac("va").expect("va's MAC");
    let b_mac = link.b.mac("vb").expect("vb's MAC");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let utcp = link.b.spawn(move || -> io::Result<_> {
        runtime().block_on(async move {
            let dev = RawDevice::open(raw_config())?;
            let poller_dev = dev.clone();
            let poller = tokio::spawn(async move {
                let mut out = Vec::new();
                let mut lens = Vec::new();
                while let Ok(Ok(_)) = timeout(
                    Duration::from_secs(1),
                    poll_fn(|cx| poller_dev.poll_recv(cx, &mut out, 64)),
                )
                .await
                {
                    lens.extend(out.drain(..).map(|p| p.data.len()));
                }
                lens
            });
            let _ = ready_tx.send(());
            // The last frame sent is the request that teaches us 10.98.0.1.
            let start = tokio::time::Instant::now();
            while dev.neighbor(KERNEL_IP).is_none() && start.elapsed() < Duration::from_secs(10) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let stats = dev.stats();
            let learned = (
                dev.neighbor(KERNEL_IP),
                dev.neighbor(Ipv4Addr::new(10, 98, 0, 9)),
            );
            // The poller stops after a second without packets.
            let lens = poller.await.unwrap_or_default();
            Ok((stats, learned, lens))
        })
    });
    ready_rx.recv_timeout(WAIT).expect("utcp started");

    let eth = |dst: [u8; 6], ethertype: u16, body: &[u8]| -> Vec<u8> {
        let mut f = Vec::with_capacity(60);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&a_mac);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(body);
        if f.len() < 60 {
            f.resize(60, 0);
        }
        f
    };
    let arp = |op: u16, sender: [u8; 4], target: [u8; 4]| -> Vec<u8> {
        let mut a = vec![0, 1, 8, 0, 6, 4];
        a.extend_from_slice(&op.to_be_bytes());
        a.extend_from_slice(&a_mac);
        a.extend_from_slice(&sender);
        a.extend_from_slice(&[0; 6]);
        a.extend_from_slice(&target);
        a
    };
    let for_us = {
        let mut p = ipv4_packet(UTCP_IP, 7, 20);
        p[12..16].copy_from_slice(&KERNEL_IP.octets());
        p
    };
    let mut bad_version = for_us.clone();
    bad_version[0] = 0x65;
    let mut too_long = for_us.clone();
    too_long[2..4].copy_from_slice(&2000u16.to_be_bytes());
    let mut bad_ihl = for_us.clone();
    bad_ihl[0] = 0x4f;
    let frames = vec![
        // An IPv4 packet for another address.
        eth(
            b_mac,
            0x0800,
            &ipv4_packet(Ipv4Addr::new(10, 98, 0, 55), 1, 20),
        ),
        // A frame for another MAC.
        eth([0x02, 0, 0, 0, 0, 0x99], 0x0800, &for_us),
        // Another EtherType.
        eth(BROADCAST, 0x86dd, &[0x60; 40]),
        // A runt ARP packet.
        eth(b_mac, 0x0806, &[0, 1, 8, 0, 6]),
        // IPv4 EtherType, version 6.
        eth(b_mac, 0x0800, &bad_version),
        // A total length beyond the frame.
        eth(b_mac, 0x0800, &too_long),
        // A header length beyond the packet.
        eth(b_mac, 0x0800, &bad_ihl[..20]),
        // An ARP packet with an unknown operation.
        eth(b_mac, 0x0806, &arp(7, [10, 98, 0, 9], [10, 98, 0, 2])),
        // A request about someone else, from a host we do not know.
        eth(BROADCAST, 0x0806, &arp(1, [10, 98, 0, 9], [10, 98, 0, 3])),
        // A valid packet for us, padded to 60 bytes.
        eth(b_mac, 0x0800, &for_us),
        // A request for our address: answered and learned.
        eth(
            BROADCAST,
            0x0806,
            &arp(1, KERNEL_IP.octets(), UTCP_IP.octets()),
        ),
    ];
    let count = frames.len();
    let sender = link.a.spawn(move || -> io::Result<()> {
        let iface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == "va")
            .ok_or_else(|| io::Error::other("no va"))?;
        let (mut tx, _rx) = match pnet_datalink::channel(&iface, Default::default())? {
            pnet_datalink::Channel::Ethernet(tx, rx) => (tx, rx),
            _ => return Err(io::Error::other("not Ethernet")),
        };
        for f in &frames {
            tx.send_to(f, None)
                .unwrap_or_else(|| Err(io::Error::other("pnet")))?;
        }
        Ok(())
    });
    join(sender, "frame sender").expect("frames sent");
    let (raw, (learned, stranger), lens) = join(utcp, "utcp").expect("the device");
    eprintln!("{test}: {raw:?}");
    assert_eq!(learned, Some(a_mac), "the request for us taught its sender");
    assert_eq!(stranger, None, "ARP about others taught nothing");
    assert_eq!(lens, [20], "one packet, its Ethernet padding cut off");
    assert_eq!(raw.rx_packets, 1, "{raw:?}");
    // The frame for another MAC and the IPv6 one never left the kernel
    // (the socket's BPF filter); the rest were read and all but two (the
    // packet for us, the request for us) ignored.
    assert!(raw.rx_frames >= count as u64 - 2, "{raw:?}");
    assert!(raw.rx_ignored >= count as u64 - 4, "{raw:?}");
    assert_eq!(raw.arp_requests_answered, 1, "{raw:?}");
}

/// Without CAP_NET_RAW, opening is `PermissionDenied` (the capability is
/// dropped from this one thread's effective set).
#[test]
fn raw_without_cap_net_raw_is_permission_denied() {
    init_tracing();
    let test = "raw_without_cap_net_raw_is_permission_denied";
    if !can_run(test) {
        return;
    }
    let Some(link) = setup_or_skip(test, None) else {
        return;
    };
    let err = join(
        link.b.spawn(|| -> io::Result<RawDevice> {
            common::drop_capability(common::CAP_NET_RAW)?;
            RawDevice::open(raw_config())
        }),
        "open",
    )
    .expect_err("no CAP_NET_RAW");
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("CAP_NET_RAW"), "{err}");
}

/// The interface going down and up again does not stop the device: a
/// connection before and one after both echo.
#[test]
fn raw_survives_interface_down_and_up() {
    init_tracing();
    let test = "raw_survives_interface_down_and_up";
    if !can_run(test) {
        return;
    }
    let Some(link) = setup_or_skip(test, None) else {
        return;
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let utcp = link.b.spawn(move || -> io::Result<RawStats> {
        runtime().block_on(async move {
            let dev = RawDevice::open(raw_config())?;
            let stack = Stack::new(dev.clone(), StackConfig::default());
            let listener = stack.listen(SocketAddr::from((UTCP_IP, 7)))?;
            let _ = ready_tx.send(());
            for _ in 0..2 {
                let conn = timeout(WAIT, accept(&listener))
                    .await
                    .map_err(timed_out("accept"))??;
                tokio::spawn(async move {
                    let _ = echo(&conn).await;
                    wait_closed(&conn).await
                });
            }
            // Keep serving until the kernel side is done.
            let _ = timeout(WAIT, done_rx).await;
            Ok(dev.stats())
        })
    });
    ready_rx.recv_timeout(WAIT).expect("utcp started");
    let echo_once = |n: u16| {
        let data = pattern(64 * 1024 + usize::from(n));
        let want = data.clone();
        let back = join(
            link.a
                .spawn(move || kernel_echo_client(SocketAddr::from((UTCP_IP, 7)), data)),
            "kernel client",
        )
        .expect("an echo");
        assert!(back == want, "echo {n} matches");
    };
    echo_once(1);
    // The kernel's end loses its carrier when vb goes down and gets it back
    // when vb comes up: poll for each (bounded) instead of sleeping.
    let carrier = |want: bool| {
        let end = Instant::now() + WAIT;
        loop {
            let out = link.a.ip(&["link", "show", "va"]).expect("ip link show va");
            let has = !String::from_utf8_lossy(&out.stdout).contains("NO-CARRIER");
            if has == want {
                return;
            }
            assert!(
                Instant::now() < end,
                "va's carrier is not {want} after {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    link.b.ip(&["link", "set", "vb", "down"]).expect("vb down");
    carrier(false);
    link.b.ip(&["link", "set", "vb", "up"]).expect("vb up");
    carrier(true);
    echo_once(2);
    let _ = done_tx.send(());
    let raw = join(utcp, "utcp").expect("the device");
    eprintln!("{test}: {raw:?}");
}

/// Removing the interface ends reception with `NotFound` (the reader thread
/// stops instead of waiting for an interface that cannot come back).
#[test]
fn raw_removed_interface_ends_reception() {
    init_tracing();
    let test = "raw_removed_interface_ends_reception";
    if !can_run(test) {
        return;
    }
    let Some(link) = setup_or_skip(test, None) else {
        return;
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let utcp = link.b.spawn(move || -> io::Result<io::Result<usize>> {
        runtime().block_on(async move {
            let dev = RawDevice::open(raw_config())?;
            let _ = ready_tx.send(());
            let mut out = Vec::new();
            let start = tokio::time::Instant::now();
            loop {
                let r = timeout(WAIT, poll_fn(|cx| dev.poll_recv(cx, &mut out, 64)))
                    .await
                    .map_err(timed_out("reception to end"))?;
                if r.is_err() || start.elapsed() > WAIT {
                    return Ok(r);
                }
                out.clear();
            }
        })
    });
    ready_rx.recv_timeout(WAIT).expect("utcp started");
    link.b.ip(&["link", "del", "vb"]).expect("vb deleted");
    let result = join(utcp, "utcp").expect("the device opened");
    let err = result.expect_err("reception ends");
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
}

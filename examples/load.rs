//! `load`: load tests for utcp — connection churn, bulk transfer, request /
//! response latency and the memory an idle connection holds.
//!
//! ```text
//! load <churn|bulk|echo|hold> [--connections N] [--duration S] [--count N] [--size B] [--json]
//!      [--workers N | --current-thread] [--msl S] [--time-wait]
//!      [--tun NAME | --iface NAME] --addr IP[/PREFIX] [--rx-loss P] [--tx-loss P] --connect IP:PORT
//!      --kernel [--congestion NAME] --connect IP:PORT              (the kernel's sockets)
//! ```
//!
//! By default both ends run in this process on the in-memory network: a
//! client stack on host 10.0.0.1 and a server stack on host 10.0.0.2–10.0.0.9
//! (one listener on port 7 of every address) joined by an ideal link (no
//! rate limit, delay or loss). The server echoes (churn, echo), discards and
//! counts (bulk), or holds the connection idle (hold). With a device flag the
//! client stack runs on that device and loads `--connect IP:PORT`, for
//! example `echo-server` (`--mode sink` for bulk, `--mode echo` otherwise).
//! With `--kernel` the client uses the kernel's sockets (`tokio::net`)
//! instead, with `TCP_CONGESTION` set on each (`--congestion`, default
//! cubic) and read back, and `TCP_NODELAY`: the same tool drives both sides
//! of a comparison (`bench/run`).
//!
//! | mode  | does | reports (JSON key) |
//! |---|---|---|
//! | churn | `--connections` workers each connect, echo `--size` bytes (default 1), close, again | `conn_per_s`; `latency_us` of connect + echo |
//! | bulk  | `--connections` connections each write `--size`-byte chunks (default 64 KiB) as fast as they can | `goodput_gbps`: application bytes received by the sink / time |
//! | echo  | `--connections` connections each send `--size` bytes (default 64) and read them back, in a loop | `latency_us` of one round trip; `requests_per_s` |
//! | hold  | opens `--connections` (default 1000) idle connections and holds them `--duration` (default 1 s) | `rss_bytes_per_conn`: VmRSS growth / connections |
//!
//! Churn's latency is connect + echo (the close is not waited for); echo's is
//! one write + read of `--size` bytes on an open connection. Hold measures
//! VmRSS (`/proc/self/status`) before opening and once every connection is
//! established (in memory: also accepted by the server), so on the
//! in-memory network `rss_bytes_per_conn` covers both ends of a connection
//! (both stacks and the server's task live in this process); over a device,
//! only the client end.
//!
//! Keys that do not apply to a mode are `null`. Every JSON object also has
//! `mode`, `network`, `runtime`, `workers`, `connections`, `elapsed_s`,
//! `completed` (connections, requests or bytes as the mode counts them),
//! `errors` and `requests_per_s` (echo; `null` otherwise), and for the
//! comparison runs: `client` (`utcp` or `kernel`), `congestion` (sockets per
//! congestion control as read back with `getsockopt(TCP_CONGESTION)`; utcp's
//! is the stack's default, CUBIC), `nodelay`, `utcp_stats` (RTO count, retransmitted segments
//! and fast retransmits summed over utcp's echo and churn connections),
//! `impair` (the loss wrapper's counters with `--rx-loss` / `--tx-loss`),
//! `device` (the TUN or raw device's counters as one `key=value …` line:
//! packets, bytes, mean sizes, super-segments, offload state; `null` on the
//! in-memory network), and for hold `heap_bytes_per_conn` (live heap growth per connection,
//! counted by this process's allocator, just after they opened) and
//! `idle_heap_bytes_per_conn` (the same at the end of `--duration`, the
//! connections idle all along: what an idle connection keeps once its
//! queues gave their room back), `kernel_slab_bytes_per_conn`
//! (growth of the kernel's slab caches, `/proc/slabinfo`, per connection)
//! and with `--time-wait` the same per connection left in TIME_WAIT after
//! the client closed them all (`heap_bytes_per_time_wait`,
//! `kernel_slab_bytes_per_time_wait`).
//!
//! An echo of more than 64 KiB writes and reads at once, so that a large
//! request cannot fill both directions' buffers and stall.
//!
//! Churn never runs out of ports on the in-memory network: ephemeral ports
//! are 16 384 per (local address, remote address, remote port), so the
//! workers spread over the server's 8 addresses, and the client stack uses an
//! MSL of 1 s (TIME_WAIT 2 s instead of 60 s) unless `--msl` says otherwise:
//! room for about 65 000 connections a second (8 × 16 384 ports per 2 s).
//! Over a device the MSL is the default 30 s unless `--msl` is given, so
//! churn against one server is limited to about 16 384 connections a minute
//! (connects beyond that fail with `AddrNotAvailable`, are counted as errors
//! and retried after 10 ms).
//!
//! `--duration` (default 3 s; 1 s of holding for hold) bounds every mode in
//! time; `--count` stops churn after N connections, echo after N requests
//! and bulk after N bytes (then `--duration`, default 60 s, is only a limit).
//! A progress bar is drawn on stderr when it is a terminal; the summary goes
//! to stdout, or to stderr with `--json`, so that stdout holds one JSON object
//! and nothing else.

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout};
use utcp::sim::{LinkConfig, SimNetwork};
use utcp::{Stack, StackConfig, StackExt, State, TcpListener, TcpStream};
use utcp_examples::device::{DeviceArgs, ImpairCounters, init_logging, parse_args};
use utcp_examples::kernel::{self as ksock, CongestionTally};

/// Counts live heap bytes while [`COUNT_HEAP`] is on (hold mode only, so
/// the other modes pay one relaxed load per allocation).
struct CountingAlloc;

static COUNT_HEAP: AtomicBool = AtomicBool::new(false);
static HEAP_LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is only arithmetic.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNT_HEAP.load(Ordering::Relaxed) {
            HEAP_LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNT_HEAP.load(Ordering::Relaxed) {
            HEAP_LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNT_HEAP.load(Ordering::Relaxed) {
            HEAP_LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[derive(Parser, Debug)]
#[command(
    name = "load",
    about = "utcp load tests: connection churn, bulk goodput, echo latency, memory per idle connection"
)]
struct Cli {
    /// What to measure.
    #[arg(value_enum)]
    mode: Mode,
    /// Concurrent connections (workers for churn). Default: churn 8, bulk 4, echo 16, hold 1000.
    #[arg(long, value_name = "N")]
    connections: Option<usize>,
    /// Seconds to run (hold: seconds to hold). Default 3 (hold 1); with --count, a limit (default 60).
    #[arg(long, value_name = "S")]
    duration: Option<f64>,
    /// Stop after N connections (churn), N requests (echo) or N bytes (bulk).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Bytes per echo (churn: 1, echo: 64) or per write (bulk: 65536).
    #[arg(long, value_name = "B")]
    size: Option<usize>,
    /// Print one JSON object on stdout (the summary goes to stderr).
    #[arg(long)]
    json: bool,
    /// Worker threads of the multi-thread runtime.
    #[arg(long, value_name = "N", default_value_t = 2)]
    workers: usize,
    /// Run on a current-thread runtime instead.
    #[arg(long, conflicts_with = "workers")]
    current_thread: bool,
    /// The client stack's MSL in seconds (TIME_WAIT is 2·MSL). Default: 1 on
    /// the in-memory network, 30 (the stack's default) over a device.
    #[arg(long, value_name = "S")]
    msl: Option<f64>,
    #[command(flatten)]
    device: DeviceArgs,
    /// With a device or --kernel: the server to load.
    #[arg(long, value_name = "IP:PORT")]
    connect: Option<SocketAddr>,
    /// The client uses the kernel's sockets (tokio::net) instead of utcp.
    #[arg(long, conflicts_with_all = ["tun", "iface"])]
    kernel: bool,
    /// With --kernel: TCP_CONGESTION of every socket (read back and reported).
    #[arg(long, value_name = "NAME", default_value = ksock::DEFAULT_CONGESTION, requires = "kernel")]
    congestion: String,
    /// hold: then close every connection from the client side and measure
    /// the memory of the TIME_WAIT records left (use an --msl that outlasts it).
    #[arg(long)]
    time_wait: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Open, echo --size bytes, close, repeatedly: connections per second.
    Churn,
    /// Send as fast as possible: goodput.
    Bulk,
    /// Request / response of --size bytes: latency percentiles.
    Echo,
    /// Hold idle connections: resident memory per connection.
    Hold,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Churn => "churn",
            Mode::Bulk => "bulk",
            Mode::Echo => "echo",
            Mode::Hold => "hold",
        }
    }
}

/// The server's port on the in-memory network.
const PORT: u16 = 7;
/// Server addresses on the in-memory network (10.0.0.2 ..): each gives
/// churn another 16 384 ephemeral ports.
const SERVER_ADDRS: u8 = 8;
/// The longest any single connect, write or read may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections opening at once in hold mode (below any listen backlog).
const HOLD_PARALLEL: usize = 64;
/// Ephemeral ports per (local address, remote address, remote port).
const EPHEMERAL_PORTS: usize = 16_384;

fn main() -> ExitCode {
    let cli: Cli = parse_args();
    init_logging();
    let mut builder = if cli.current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(cli.workers.max(1));
        b
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// The run's parameters after defaults and checks.
#[derive(Debug)]
struct Params {
    mode: Mode,
    connections: usize,
    /// Run time (hold: hold time); with `count`, a limit.
    duration: Duration,
    count: Option<u64>,
    size: usize,
}

fn params(cli: &Cli) -> io::Result<Params> {
    let connections = cli.connections.unwrap_or(match cli.mode {
        Mode::Churn => 8,
        Mode::Bulk => 4,
        Mode::Echo => 16,
        Mode::Hold => 1000,
    });
    if connections == 0 || connections > 1_000_000 {
        return Err(invalid("--connections must be 1 to 1000000"));
    }
    let seconds = match (cli.duration, cli.count, cli.mode) {
        (Some(s), _, _) => s,
        (None, _, Mode::Hold) => 1.0,
        (None, Some(_), _) => 60.0,
        (None, None, _) => 3.0,
    };
    if !seconds.is_finite() || !(0.0..=86_400.0).contains(&seconds) {
        return Err(invalid("--duration must be 0 to 86400 seconds"));
    }
    if seconds == 0.0 && cli.mode != Mode::Hold {
        return Err(invalid("--duration must be more than 0"));
    }
    if cli.count == Some(0) {
        return Err(invalid("--count must be at least 1"));
    }
    let size = cli.size.unwrap_or(match cli.mode {
        Mode::Churn => 1,
        Mode::Echo => 64,
        Mode::Bulk => 64 * 1024,
        Mode::Hold => 0,
    });
    if cli.mode != Mode::Hold && !(1..=16 << 20).contains(&size) {
        return Err(invalid("--size must be 1 to 16777216 bytes"));
    }
    if let Some(msl) = cli.msl
        && (!msl.is_finite() || !(0.0..=3600.0).contains(&msl))
    {
        return Err(invalid("--msl must be 0 to 3600 seconds"));
    }
    Ok(Params {
        mode: cli.mode,
        connections,
        duration: Duration::from_secs_f64(seconds),
        count: cli.count,
        size,
    })
}

/// The client's sockets: utcp's stack, or the kernel's (`--kernel`).
#[derive(Clone)]
enum Client {
    Utcp(Stack),
    Kernel {
        congestion: Arc<str>,
        tally: Arc<CongestionTally>,
    },
}

impl Client {
    /// Connects to `target` with TCP_NODELAY (a kernel socket gets its
    /// congestion control before the SYN and TCP_NODELAY after the
    /// handshake).
    async fn connect(&self, target: SocketAddr) -> io::Result<Conn> {
        match self {
            Client::Utcp(stack) => {
                // TCP_NODELAY as on the kernel's sockets: the echo and churn
                // rows measure latency, which Nagle would hold up.
                let s = stack.connect(target).await?;
                s.set_nodelay(true)?;
                Ok(Conn::Utcp(s))
            }
            Client::Kernel { congestion, tally } => {
                use std::os::fd::AsRawFd;
                let sock = if target.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                ksock::set_congestion(sock.as_raw_fd(), congestion)?;
                let s = sock.connect(target).await?;
                s.set_nodelay(true)?;
                tally.record(ksock::congestion(s.as_raw_fd()));
                Ok(Conn::Kernel(s))
            }
        }
    }
}

/// One client connection, on utcp or on a kernel socket.
enum Conn {
    Utcp(TcpStream),
    Kernel(tokio::net::TcpStream),
}

/// The read half of a [`Conn`].
enum ConnRead {
    Utcp(utcp::OwnedReadHalf),
    Kernel(tokio::net::tcp::OwnedReadHalf),
}

/// The write half of a [`Conn`].
enum ConnWrite {
    Utcp(utcp::OwnedWriteHalf),
    Kernel(tokio::net::tcp::OwnedWriteHalf),
}

impl Conn {
    fn into_split(self) -> (ConnRead, ConnWrite) {
        match self {
            Conn::Utcp(s) => {
                let (r, w) = s.into_split();
                (ConnRead::Utcp(r), ConnWrite::Utcp(w))
            }
            Conn::Kernel(s) => {
                let (r, w) = s.into_split();
                (ConnRead::Kernel(r), ConnWrite::Kernel(w))
            }
        }
    }

    /// The connection again from its halves (`None` for halves of two
    /// connections, which `bulk` never makes).
    fn reunite(r: ConnRead, w: ConnWrite) -> Option<Conn> {
        match (r, w) {
            (ConnRead::Utcp(r), ConnWrite::Utcp(w)) => r.reunite(w).ok().map(Conn::Utcp),
            (ConnRead::Kernel(r), ConnWrite::Kernel(w)) => r.reunite(w).ok().map(Conn::Kernel),
            _ => None,
        }
    }

    /// Whether the connection is still open both ways as far as we know.
    fn established(&self) -> bool {
        match self {
            Conn::Utcp(s) => s.state() == State::Established,
            Conn::Kernel(s) => matches!(s.take_error(), Ok(None)) && s.peer_addr().is_ok(),
        }
    }

    /// Adds a utcp connection's retransmission counters to `c`.
    fn count_stats(&self, c: &Counters) {
        if let Conn::Utcp(s) = self {
            let st = s.stats();
            c.rto.fetch_add(st.rto_count, Ordering::Relaxed);
            c.retransmitted
                .fetch_add(st.segments_retransmitted, Ordering::Relaxed);
            c.fast_retransmits
                .fetch_add(st.fast_retransmits, Ordering::Relaxed);
        }
    }
}

/// Forwards `AsyncRead` / `AsyncWrite` to whichever socket a value holds.
macro_rules! forward_io {
    (read $t:ident) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $t::Utcp(s) => Pin::new(s).poll_read(cx, buf),
                    $t::Kernel(s) => Pin::new(s).poll_read(cx, buf),
                }
            }
        }
    };
    (write $t:ident) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $t::Utcp(s) => Pin::new(s).poll_write(cx, buf),
                    $t::Kernel(s) => Pin::new(s).poll_write(cx, buf),
                }
            }
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $t::Utcp(s) => Pin::new(s).poll_flush(cx),
                    $t::Kernel(s) => Pin::new(s).poll_flush(cx),
                }
            }
            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $t::Utcp(s) => Pin::new(s).poll_shutdown(cx),
                    $t::Kernel(s) => Pin::new(s).poll_shutdown(cx),
                }
            }
        }
    };
}

forward_io!(read Conn);
forward_io!(write Conn);
forward_io!(read ConnRead);
forward_io!(write ConnWrite);

/// The stacks under load and where the client connects to.
struct Setup {
    client: Client,
    /// utcp's client stack (none with --kernel).
    client_stack: Option<Stack>,
    /// The loss wrapper's counters (with --rx-loss / --tx-loss).
    impair: Option<ImpairCounters>,
    /// The in-memory server stack (none over a device).
    server: Option<Stack>,
    /// Server addresses; connection `i` goes to `targets[i % len]`.
    targets: Vec<SocketAddr>,
    /// One line saying what the network is.
    network: String,
    /// Short name for JSON.
    network_kind: &'static str,
    /// Application bytes the in-memory sink read (bulk).
    sink_bytes: Arc<AtomicU64>,
    /// Server-side connections alive (in-memory).
    server_conns: Arc<AtomicU64>,
    // Keeps the simulated network alive.
    _net: Option<SimNetwork>,
}

fn msl_config(cfg: &mut StackConfig, msl: Option<f64>, default: Option<Duration>) {
    if let Some(d) = msl.map(Duration::from_secs_f64).or(default) {
        cfg.endpoint.conn.msl = d;
    }
}

fn setup(cli: &Cli, p: &Params) -> io::Result<Setup> {
    let on_device = cli.device.tun.is_some() || cli.device.iface.is_some();
    let sink_bytes = Arc::new(AtomicU64::new(0));
    let server_conns = Arc::new(AtomicU64::new(0));
    if cli.kernel {
        let target = cli
            .connect
            .ok_or_else(|| invalid("--connect IP:PORT is required with --kernel"))?;
        if cli.device.rx_loss.is_some() || cli.device.tx_loss.is_some() {
            return Err(invalid(
                "--rx-loss / --tx-loss are utcp's; with --kernel drop on the wire (nftables)",
            ));
        }
        return Ok(Setup {
            client: Client::Kernel {
                congestion: cli.congestion.as_str().into(),
                tally: Arc::new(CongestionTally::default()),
            },
            client_stack: None,
            impair: None,
            server: None,
            targets: vec![target],
            network: format!(
                "kernel sockets (TCP_CONGESTION {}, TCP_NODELAY), server {target}",
                cli.congestion
            ),
            network_kind: "kernel",
            sink_bytes,
            server_conns,
            _net: None,
        });
    }
    if on_device {
        let target = cli.connect.ok_or_else(|| {
            invalid("--connect IP:PORT is required with --tun or --iface (the server to load)")
        })?;
        let mut cfg = StackConfig::default();
        msl_config(&mut cfg, cli.msl, None);
        let msl = cfg.endpoint.conn.msl;
        let (client, what, impair) = cli.device.build_impaired(cfg)?;
        return Ok(Setup {
            client: Client::Utcp(client.clone()),
            client_stack: Some(client),
            impair,
            server: None,
            targets: vec![target],
            network: format!(
                "{what} as {}, server {target}, client MSL {}",
                cli.device.addr.as_deref().unwrap_or(""),
                secs(msl)
            ),
            network_kind: "device",
            sink_bytes,
            server_conns,
            _net: None,
        });
    }
    if cli.device.rx_loss.is_some() || cli.device.tx_loss.is_some() {
        return Err(invalid(
            "--rx-loss / --tx-loss need a device: --tun NAME or --iface NAME",
        ));
    }
    if cli.connect.is_some() {
        return Err(invalid(
            "--connect needs a device (--tun NAME or --iface NAME) or --kernel",
        ));
    }
    let net = SimNetwork::new(1);
    let client_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let server_ips: Vec<IpAddr> = (0..SERVER_ADDRS)
        .map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2 + i)))
        .collect();
    let a = net.add_host("client", &[client_ip]);
    let b = net.add_host("server", &server_ips);
    net.link(&a, &b, LinkConfig::default());
    let mut ccfg = StackConfig {
        seed: Some(0xc1),
        ..StackConfig::default()
    };
    msl_config(&mut ccfg, cli.msl, Some(Duration::from_secs(1)));
    let msl = ccfg.endpoint.conn.msl;
    let backlog = p.connections.clamp(128, 65_536);
    let scfg = StackConfig {
        seed: Some(0x5e),
        backlog,
        ..StackConfig::default()
    };
    let client = Stack::new(a, ccfg);
    let server = Stack::new(b, scfg);
    let listener = server.bind_with_backlog(
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT),
        backlog,
    )?;
    spawn_server(listener, p.mode, sink_bytes.clone(), server_conns.clone());
    let what = match p.mode {
        Mode::Churn | Mode::Echo => "echo",
        Mode::Bulk => "sink",
        Mode::Hold => "idle",
    };
    Ok(Setup {
        client: Client::Utcp(client.clone()),
        client_stack: Some(client),
        impair: None,
        server: Some(server),
        targets: server_ips
            .iter()
            .map(|ip| SocketAddr::new(*ip, PORT))
            .collect(),
        network: format!(
            "in-memory network, client 10.0.0.1 (MSL {}) -> {what} server 10.0.0.2-10.0.0.{}:{PORT}, ideal link",
            secs(msl),
            1 + SERVER_ADDRS
        ),
        network_kind: "in-memory",
        sink_bytes,
        server_conns,
        _net: Some(net),
    })
}

/// The in-memory server: echo (churn, echo), sink (bulk), idle (hold). Each
/// connection closes its side after the peer's FIN.
fn spawn_server(
    listener: TcpListener,
    mode: Mode,
    sink_bytes: Arc<AtomicU64>,
    conns: Arc<AtomicU64>,
) {
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            // TCP_NODELAY, as the kernel servers the benchmark compares with.
            let _ = s.set_nodelay(true);
            let sink_bytes = sink_bytes.clone();
            let conns = conns.clone();
            conns.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                match mode {
                    Mode::Churn | Mode::Echo => {
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                    }
                    Mode::Bulk => {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = r.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            sink_bytes.fetch_add(n as u64, Ordering::Relaxed);
                        }
                    }
                    Mode::Hold => {
                        // Idle: nothing is sent; wait for the peer to close.
                        let mut buf = [0u8; 64];
                        while let Ok(n) = r.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                        }
                    }
                }
                let _ = w.shutdown().await;
                conns.fetch_sub(1, Ordering::Relaxed);
            });
        }
    });
}

/// When to stop: a deadline, and optionally a count of units (connections,
/// requests or bytes) shared by all workers.
struct Budget {
    deadline: Instant,
    left: Option<AtomicU64>,
}

impl Budget {
    fn new(start: Instant, duration: Duration, count: Option<u64>) -> Budget {
        Budget {
            deadline: start + duration,
            left: count.map(AtomicU64::new),
        }
    }

    /// Takes up to `n` units; 0 when the time or the count is used up.
    fn take(&self, n: u64) -> u64 {
        if Instant::now() >= self.deadline {
            return 0;
        }
        match &self.left {
            None => n,
            Some(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    (v > 0).then(|| v - v.min(n))
                })
                .map_or(0, |v| v.min(n)),
        }
    }
}

/// Counters shared by the workers and the progress bar.
#[derive(Default)]
struct Counters {
    /// Completed units: connections (churn, hold), requests (echo), bytes written (bulk).
    done: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// utcp connections' retransmission timeouts (echo, churn).
    rto: AtomicU64,
    /// utcp connections' retransmitted segments (echo, churn).
    retransmitted: AtomicU64,
    /// utcp connections' fast retransmits (echo, churn).
    fast_retransmits: AtomicU64,
}

impl Counters {
    fn error(&self, what: &str, e: &io::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(format!("{what}: {e}"));
        }
    }
}

/// Latencies in nanoseconds, 3 significant digits, up to 100 s.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

async fn io_timeout<T>(
    what: &str,
    f: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match timeout(IO_TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} took more than {} s", IO_TIMEOUT.as_secs()),
        )),
    }
}

/// The outcome of one mode.
#[derive(Default)]
struct Outcome {
    elapsed: Duration,
    completed: u64,
    latency: Option<Histogram<u64>>,
    conn_per_s: Option<f64>,
    goodput_gbps: Option<f64>,
    requests_per_s: Option<f64>,
    rss_bytes_per_conn: Option<f64>,
    rss: Option<(u64, u64)>,
    heap_bytes_per_conn: Option<f64>,
    idle_heap_bytes_per_conn: Option<f64>,
    kernel_slab_bytes_per_conn: Option<f64>,
    heap_bytes_per_time_wait: Option<f64>,
    kernel_slab_bytes_per_time_wait: Option<f64>,
}

async fn run(cli: Cli) -> io::Result<()> {
    let p = params(&cli)?;
    let s = setup(&cli, &p)?;
    if p.mode == Mode::Hold && p.connections > EPHEMERAL_PORTS * s.targets.len() {
        return Err(invalid(format!(
            "hold: at most {} connections to {} server address(es)",
            EPHEMERAL_PORTS * s.targets.len(),
            s.targets.len()
        )));
    }
    let counters = Arc::new(Counters::default());
    let bar = progress(&p);
    let ticker = spawn_ticker(bar.clone(), p.mode, counters.clone(), &p);
    let outcome = match p.mode {
        Mode::Churn => churn(&s, &p, &counters).await,
        Mode::Bulk => bulk(&s, &p, &counters).await,
        Mode::Echo => echo(&s, &p, &counters).await,
        Mode::Hold => hold(&s, &p, cli.time_wait, &counters, &bar).await,
    };
    ticker.abort();
    bar.finish_and_clear();
    let outcome = outcome?;
    if let Some(client) = &s.client_stack {
        client.shutdown(Duration::from_millis(500)).await;
    }
    if let Some(server) = &s.server {
        server.shutdown(Duration::from_millis(500)).await;
    }
    report(&cli, &p, &s, &counters, &outcome);
    if outcome.completed == 0 {
        let first = counters
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        return Err(io::Error::other(format!(
            "nothing completed{}",
            first.map(|e| format!(" ({e})")).unwrap_or_default()
        )));
    }
    Ok(())
}

/// A bar on stderr (hidden when stderr is not a terminal): of the count when
/// one is given, else of the time.
fn progress(p: &Params) -> ProgressBar {
    let len = match (p.mode, p.count) {
        (Mode::Hold, _) => p.connections as u64,
        (_, Some(n)) => n,
        (_, None) => p.duration.as_millis() as u64,
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let template = match (p.mode, p.count) {
        (Mode::Hold, _) => "{elapsed:>4} [{bar:30}] {pos}/{len} opened {msg}",
        (Mode::Bulk, Some(_)) => "{elapsed:>4} [{bar:30}] {bytes}/{total_bytes} {msg}",
        (_, Some(_)) => "{elapsed:>4} [{bar:30}] {pos}/{len} {msg}",
        (_, None) => "{elapsed:>4} [{bar:30}] {msg}",
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn spawn_ticker(
    bar: ProgressBar,
    mode: Mode,
    counters: Arc<Counters>,
    p: &Params,
) -> tokio::task::JoinHandle<()> {
    let by_count = p.count.is_some() || mode == Mode::Hold;
    let limit = p.duration;
    tokio::spawn(async move {
        if bar.is_hidden() {
            return;
        }
        let start = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let t = start.elapsed();
            let done = counters.done.load(Ordering::Relaxed);
            let errors = counters.errors.load(Ordering::Relaxed);
            let rate = done as f64 / t.as_secs_f64().max(1e-9);
            if by_count {
                bar.set_position(done);
            } else {
                bar.set_position(t.min(limit).as_millis() as u64);
            }
            let msg = match mode {
                Mode::Churn => format!("{done} connections, {rate:.0}/s"),
                Mode::Echo => format!("{done} requests, {rate:.0}/s"),
                Mode::Bulk => format!("{:.3} Gbit/s written", rate * 8.0 / 1e9),
                Mode::Hold => String::new(),
            };
            if errors > 0 {
                bar.set_message(format!("{msg}, {errors} errors"));
            } else {
                bar.set_message(msg);
            }
        }
    })
}

/// churn: workers each connect, echo `size` bytes, close, repeatedly.
async fn churn(s: &Setup, p: &Params, counters: &Arc<Counters>) -> io::Result<Outcome> {
    let start = Instant::now();
    let budget = Arc::new(Budget::new(start, p.duration, p.count));
    let mut set = JoinSet::new();
    for w in 0..p.connections {
        let (client, targets) = (s.client.clone(), s.targets.clone());
        let (budget, counters, size, workers) =
            (budget.clone(), counters.clone(), p.size, p.connections);
        set.spawn(async move {
            let mut hist = histogram();
            let payload = vec![b'c'; size];
            let mut back = vec![0u8; size];
            let mut i = w;
            while budget.take(1) == 1 {
                let target = targets[i % targets.len()];
                i += workers;
                let t0 = Instant::now();
                let r = io_timeout("churn connection", async {
                    let mut c = client.connect(target).await?;
                    c.write_all(&payload).await?;
                    c.read_exact(&mut back).await?;
                    Ok(c)
                })
                .await;
                match r {
                    Ok(c) => {
                        hist.saturating_record(nanos(t0.elapsed()));
                        counters.done.fetch_add(1, Ordering::Relaxed);
                        c.count_stats(&counters);
                        drop(c); // close: FIN; TIME_WAIT on our side
                    }
                    Err(e) => {
                        counters.error("churn", &e);
                        if e.kind() == io::ErrorKind::AddrNotAvailable {
                            // Out of ephemeral ports: wait for TIME_WAIT to end.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }
            hist
        });
    }
    let (out, rate) = latency_outcome(set, start).await?;
    Ok(Outcome {
        conn_per_s: Some(rate),
        ..out
    })
}

/// echo: each connection sends `size` bytes and reads them back, in a loop.
async fn echo(s: &Setup, p: &Params, counters: &Arc<Counters>) -> io::Result<Outcome> {
    let start = Instant::now();
    let budget = Arc::new(Budget::new(start, p.duration, p.count));
    let mut set = JoinSet::new();
    for w in 0..p.connections {
        let (client, target) = (s.client.clone(), s.targets[w % s.targets.len()]);
        let (budget, counters, size) = (budget.clone(), counters.clone(), p.size);
        set.spawn(async move {
            let mut hist = histogram();
            let mut c = match io_timeout("connect", client.connect(target)).await {
                Ok(c) => c,
                Err(e) => {
                    counters.error("echo connect", &e);
                    return hist;
                }
            };
            let req = vec![b'e'; size];
            let mut resp = vec![0u8; size];
            while budget.take(1) == 1 {
                let t0 = Instant::now();
                let r = if size <= BIG_ECHO {
                    io_timeout("echo request", async {
                        c.write_all(&req).await?;
                        c.read_exact(&mut resp).await?;
                        Ok(())
                    })
                    .await
                } else {
                    // Large: no time limit per request but the run's, which
                    // bounds it below (a lossy path may take long).
                    let limit =
                        budget.deadline.saturating_duration_since(Instant::now()) + IO_TIMEOUT;
                    match timeout(limit, write_and_read(&mut c, &req, &mut resp)).await {
                        Ok(r) => r,
                        Err(_) => Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "a large echo outlasted --duration",
                        )),
                    }
                };
                match r {
                    Ok(()) => {
                        hist.saturating_record(nanos(t0.elapsed()));
                        counters.done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        counters.error("echo", &e);
                        c.count_stats(&counters);
                        return hist;
                    }
                }
            }
            // Close: our FIN, then the server's after it.
            let _ = c.shutdown().await;
            let mut rest = [0u8; 256];
            let _ = io_timeout("close", async {
                while c.read(&mut rest).await? > 0 {}
                Ok(())
            })
            .await;
            c.count_stats(&counters);
            hist
        });
    }
    let (out, rate) = latency_outcome(set, start).await?;
    Ok(Outcome {
        requests_per_s: Some(rate),
        ..out
    })
}

/// Echo requests above this size write and read at once.
const BIG_ECHO: usize = 64 * 1024;

/// Writes `req` and reads `resp.len()` bytes back at the same time, on one
/// connection (no split, no lock): neither direction waits for the other.
async fn write_and_read(c: &mut Conn, req: &[u8], resp: &mut [u8]) -> io::Result<()> {
    let (mut sent, mut got) = (0usize, 0usize);
    std::future::poll_fn(|cx| {
        loop {
            let mut progress = false;
            if sent < req.len() {
                match Pin::new(&mut *c).poll_write(cx, &req[sent..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => {
                        sent += n;
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            if got < resp.len() {
                let mut buf = ReadBuf::new(&mut resp[got..]);
                match Pin::new(&mut *c).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                        return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                    }
                    Poll::Ready(Ok(())) => {
                        got += buf.filled().len();
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            if sent == req.len() && got == resp.len() {
                return Poll::Ready(Ok(()));
            }
            if !progress {
                return Poll::Pending;
            }
        }
    })
    .await
}

/// Merges the workers' latency histograms: the outcome and the rate of
/// completed operations per second since `start`.
async fn latency_outcome(
    set: JoinSet<Histogram<u64>>,
    start: Instant,
) -> io::Result<(Outcome, f64)> {
    let hist = merge(set).await?;
    let elapsed = start.elapsed();
    let completed = hist.len();
    let rate = completed as f64 / elapsed.as_secs_f64();
    Ok((
        Outcome {
            elapsed,
            completed,
            latency: Some(hist),
            ..Outcome::default()
        },
        rate,
    ))
}

async fn merge(mut set: JoinSet<Histogram<u64>>) -> io::Result<Histogram<u64>> {
    let mut all = histogram();
    while let Some(h) = set.join_next().await {
        let h = h.map_err(io::Error::other)?;
        all.add(&h)
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
    }
    Ok(all)
}

/// bulk: each connection writes `size`-byte chunks until the budget (time or
/// bytes) is spent, then closes and waits for the server's close: the server
/// closes only after reading everything, so at that point every byte written
/// has reached the server application.
async fn bulk(s: &Setup, p: &Params, counters: &Arc<Counters>) -> io::Result<Outcome> {
    let start = Instant::now();
    let budget = Arc::new(Budget::new(start, p.duration, p.count));
    let mut set = JoinSet::new();
    for w in 0..p.connections {
        let (client, target) = (s.client.clone(), s.targets[w % s.targets.len()]);
        let (budget, counters, size) = (budget.clone(), counters.clone(), p.size);
        set.spawn(async move {
            let c = match io_timeout("connect", client.connect(target)).await {
                Ok(c) => c,
                Err(e) => {
                    counters.error("bulk connect", &e);
                    return 0u64;
                }
            };
            let (mut r, mut wr) = c.into_split();
            // Drain whatever comes back (an echo or source server) until EOF;
            // bounded below: IO_TIMEOUT after our FIN.
            let mut reader = tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while r.read(&mut buf).await? > 0 {}
                io::Result::Ok(r)
            });
            let chunk = vec![b'b'; size];
            let mut sent = 0u64;
            loop {
                let n = budget.take(size as u64) as usize;
                if n == 0 {
                    break;
                }
                if let Err(e) = io_timeout("write", wr.write_all(&chunk[..n])).await {
                    counters.error("bulk write", &e);
                    reader.abort();
                    return 0;
                }
                sent += n as u64;
                counters.done.fetch_add(n as u64, Ordering::Relaxed);
            }
            if let Err(e) = wr.shutdown().await {
                counters.error("bulk shutdown", &e);
                reader.abort();
                return 0;
            }
            let closed = match timeout(IO_TIMEOUT, &mut reader).await {
                Ok(r) => r.unwrap_or_else(|e| Err(io::Error::other(e))),
                Err(_) => {
                    reader.abort();
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the server did not close within 10 s of our FIN",
                    ))
                }
            };
            match closed {
                Ok(r) => {
                    // The retransmission counters of the whole transfer.
                    if let Some(c) = Conn::reunite(r, wr) {
                        c.count_stats(&counters);
                    }
                    sent
                }
                Err(e) => {
                    counters.error("bulk close", &e);
                    0
                }
            }
        });
    }
    let mut delivered = 0u64;
    while let Some(n) = set.join_next().await {
        delivered += n.map_err(io::Error::other)?;
    }
    let elapsed = start.elapsed();
    // In memory the sink counted what it read itself; over a device every
    // byte of a connection that saw the server's close was read by it.
    let received = if s.server.is_some() {
        s.sink_bytes.load(Ordering::Relaxed)
    } else {
        delivered
    };
    Ok(Outcome {
        elapsed,
        completed: received,
        goodput_gbps: Some(received as f64 * 8.0 / elapsed.as_secs_f64() / 1e9),
        ..Outcome::default()
    })
}

/// hold: opens `connections` idle connections, measures VmRSS, live heap
/// and the kernel's slab caches before and after, holds them for
/// `duration`, then closes them; with `--time-wait` measures again once the
/// closed connections sit in TIME_WAIT on the client.
async fn hold(
    s: &Setup,
    p: &Params,
    time_wait: bool,
    counters: &Arc<Counters>,
    bar: &ProgressBar,
) -> io::Result<Outcome> {
    COUNT_HEAP.store(true, Ordering::SeqCst);
    let before = vm_rss();
    let heap_before = HEAP_LIVE.load(Ordering::SeqCst);
    let slab_before = slab_bytes();
    let start = Instant::now();
    // A few opener tasks rather than one task per connection, so that
    // transient memory does not count as memory held per connection.
    let next = Arc::new(AtomicU64::new(0));
    let held = Arc::new(Mutex::new(Vec::with_capacity(p.connections)));
    let mut set = JoinSet::new();
    for _ in 0..HOLD_PARALLEL.min(p.connections) {
        let (client, targets) = (s.client.clone(), s.targets.clone());
        let (next, held, counters, n) = (
            next.clone(),
            held.clone(),
            counters.clone(),
            p.connections as u64,
        );
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let target = targets[i as usize % targets.len()];
                match io_timeout("connect", client.connect(target)).await {
                    Ok(c) => {
                        held.lock().unwrap_or_else(|e| e.into_inner()).push(c);
                        counters.done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => counters.error("hold connect", &e),
                }
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.map_err(io::Error::other)?;
    }
    let held = std::mem::take(&mut *held.lock().unwrap_or_else(|e| e.into_inner()));
    let opened = start.elapsed();
    if s.server.is_some() {
        // Wait (bounded) until the server side holds every connection too.
        let end = Instant::now() + IO_TIMEOUT;
        while s.server_conns.load(Ordering::Relaxed) < held.len() as u64 && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // Let the last ACKs and wake-ups settle before measuring.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after = vm_rss();
    let heap_after = HEAP_LIVE.load(Ordering::SeqCst);
    let slab_after = slab_bytes();
    let opened_count = held.len();
    bar.set_position(held.len() as u64);
    tokio::time::sleep(p.duration).await;
    let heap_idle = HEAP_LIVE.load(Ordering::SeqCst);
    let alive = held.iter().filter(|c| c.established()).count();
    for _ in alive..held.len() {
        counters.error(
            "hold",
            &io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "a held connection left ESTABLISHED",
            ),
        );
    }
    drop(held);
    let per = |d: i64| (opened_count > 0).then(|| d as f64 / opened_count as f64);
    let (mut heap_tw, mut slab_tw) = (None, None);
    if time_wait && opened_count > 0 {
        wait_time_wait(s, opened_count).await;
        heap_tw = per(HEAP_LIVE.load(Ordering::SeqCst) - heap_before);
        slab_tw = slab_bytes()
            .zip(slab_before)
            .and_then(|(a, b)| per(a as i64 - b as i64));
    }
    COUNT_HEAP.store(false, Ordering::SeqCst);
    let rss = before.zip(after);
    Ok(Outcome {
        elapsed: opened,
        completed: alive as u64,
        conn_per_s: None,
        rss_bytes_per_conn: rss.and_then(|(b, a)| per(a.saturating_sub(b) as i64)),
        rss,
        heap_bytes_per_conn: per(heap_after - heap_before),
        idle_heap_bytes_per_conn: per(heap_idle - heap_before),
        kernel_slab_bytes_per_conn: slab_after
            .zip(slab_before)
            .and_then(|(a, b)| per(a as i64 - b as i64)),
        heap_bytes_per_time_wait: heap_tw,
        kernel_slab_bytes_per_time_wait: slab_tw,
        ..Outcome::default()
    })
}

/// Waits (at most [`IO_TIMEOUT`]) until `n` closed connections are in
/// TIME_WAIT on the client and the in-memory server has let go of its ends;
/// then a little longer for the last wake-ups.
async fn wait_time_wait(s: &Setup, n: usize) {
    let end = Instant::now() + IO_TIMEOUT;
    while Instant::now() < end {
        let client_tw = match &s.client_stack {
            Some(stack) => stack.stats().time_wait,
            None => kernel_time_wait().unwrap_or(n),
        };
        let server_done = s.server_conns.load(Ordering::Relaxed) == 0;
        if client_tw >= n && server_done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Kernel sockets in TIME_WAIT in this network namespace (`tw` in
/// /proc/net/sockstat).
fn kernel_time_wait() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let line = text.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == "tw" {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// Bytes held by the kernel's slab caches: the sum of active objects ×
/// object size over /proc/slabinfo (machine-wide; needs root).
fn slab_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/slabinfo").ok()?;
    let mut total = 0u64;
    for line in text.lines().skip(2) {
        let f: Vec<&str> = line.split_whitespace().take(4).collect();
        if let [_, active, _, size] = f[..] {
            total += active.parse::<u64>().ok()? * size.parse::<u64>().ok()?;
        }
    }
    Some(total)
}

/// This process's resident set size in bytes (Linux: VmRSS in /proc/self/status).
fn vm_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
}

fn percentiles(h: &Histogram<u64>) -> Option<Percentiles> {
    if h.is_empty() {
        return None;
    }
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Some(Percentiles {
        p50: us(0.5),
        p90: us(0.9),
        p99: us(0.99),
        p999: us(0.999),
    })
}

fn report(cli: &Cli, p: &Params, s: &Setup, counters: &Counters, o: &Outcome) {
    let (flavour, workers) = if cli.current_thread {
        ("current_thread", 1)
    } else {
        ("multi_thread", cli.workers.max(1))
    };
    let errors = counters.errors.load(Ordering::Relaxed);
    let first_error = counters
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let pct = o.latency.as_ref().and_then(percentiles);
    let mut text = String::new();
    let mut line = |l: String| {
        text.push_str(&l);
        text.push('\n');
    };
    line(format!(
        "load {}: {} connections, tokio {} runtime with {} worker thread{}",
        p.mode.name(),
        p.connections,
        flavour.replace('_', "-"),
        workers,
        if workers == 1 { "" } else { "s" }
    ));
    line(format!("  network       {}", s.network));
    let t = o.elapsed.as_secs_f64();
    match p.mode {
        Mode::Churn => {
            line(format!(
                "  completed     {} connections in {t:.3} s ({} B echoed each)",
                o.completed, p.size
            ));
            line(format!(
                "  rate          {:.0} connections/s",
                o.conn_per_s.unwrap_or(0.0)
            ));
        }
        Mode::Echo => {
            line(format!(
                "  completed     {} requests of {} B in {t:.3} s",
                o.completed, p.size
            ));
            line(format!(
                "  rate          {:.0} requests/s",
                o.requests_per_s.unwrap_or(0.0)
            ));
        }
        Mode::Bulk => {
            line(format!(
                "  received      {} bytes by the sink in {t:.3} s (writes of {} B)",
                o.completed, p.size
            ));
            line(format!(
                "  goodput       {:.3} Gbit/s",
                o.goodput_gbps.unwrap_or(0.0)
            ));
        }
        Mode::Hold => {
            line(format!(
                "  held          {} connections for {} (opened in {t:.3} s)",
                o.completed,
                secs(p.duration)
            ));
            match (o.rss, o.rss_bytes_per_conn) {
                (Some((b, a)), Some(per)) => line(format!(
                    "  memory        VmRSS {} KiB -> {} KiB: {per:.0} bytes per connection{}",
                    b / 1024,
                    a / 1024,
                    if s.server.is_some() {
                        " (client and server ends, both in this process)"
                    } else {
                        ""
                    }
                )),
                _ => line("  memory        VmRSS not available".to_string()),
            }
            if let Some(h) = o.heap_bytes_per_conn {
                line(format!(
                    "  heap          {h:.0} bytes per connection (live heap growth)"
                ));
            }
            if let Some(h) = o.idle_heap_bytes_per_conn {
                line(format!(
                    "  heap, idle    {h:.0} bytes per connection (at the end of the hold)"
                ));
            }
            if let Some(k) = o.kernel_slab_bytes_per_conn {
                line(format!(
                    "  kernel slab   {k:.0} bytes per connection (/proc/slabinfo, machine-wide)"
                ));
            }
            if let Some(h) = o.heap_bytes_per_time_wait {
                line(format!("  TIME_WAIT     heap {h:.0} bytes per connection"));
            }
            if let Some(k) = o.kernel_slab_bytes_per_time_wait {
                line(format!(
                    "  TIME_WAIT     kernel slab {k:.0} bytes per connection"
                ));
            }
        }
    }
    if let Some(q) = &pct {
        let what = if p.mode == Mode::Churn {
            "connect + echo"
        } else {
            "request + response"
        };
        line(format!(
            "  latency       {what}: p50 {:.1} µs  p90 {:.1} µs  p99 {:.1} µs  p99.9 {:.1} µs",
            q.p50, q.p90, q.p99, q.p999
        ));
    }
    match &first_error {
        Some(e) if e.contains("address not available") => line(format!(
            "  errors        {errors} (first: {e}; out of ephemeral ports, 16384 per server address, while TIME_WAIT lasts 2·MSL: lower --msl)"
        )),
        Some(e) => line(format!("  errors        {errors} (first: {e})")),
        None => line(format!("  errors        {errors}")),
    }
    let (client_kind, congestion, nodelay) = match &s.client {
        // utcp's connections all use the stack's default congestion control
        // (load never changes it), and set TCP_NODELAY as the kernel's do.
        Client::Utcp(_) => {
            let cc = StackConfig::default().endpoint.conn.congestion.to_string();
            ("utcp", serde_json::json!({ cc: null }), true)
        }
        Client::Kernel { tally, .. } => ("kernel", serde_json::json!(tally.counts()), true),
    };
    if let Client::Kernel { tally, .. } = &s.client {
        line(format!(
            "  congestion    {} (read back per socket)",
            tally.summary()
        ));
    }
    let utcp_stats = matches!(s.client, Client::Utcp(_)).then(|| {
        serde_json::json!({
            "rto_count": counters.rto.load(Ordering::Relaxed),
            "segments_retransmitted": counters.retransmitted.load(Ordering::Relaxed),
            "fast_retransmits": counters.fast_retransmits.load(Ordering::Relaxed),
        })
    });
    let impair = s.impair.as_ref().map(|f| {
        let st = f();
        line(format!(
            "  loss          received {} dropped / {} passed, sent {} dropped / {} passed",
            st.rx_dropped, st.rx_passed, st.tx_dropped, st.tx_passed
        ));
        serde_json::json!({
            "rx_dropped": st.rx_dropped,
            "rx_passed": st.rx_passed,
            "tx_dropped": st.tx_dropped,
            "tx_passed": st.tx_passed,
        })
    });
    if cli.json {
        eprint!("{text}");
        let latency = pct.map(
            |q| serde_json::json!({ "p50": q.p50, "p90": q.p90, "p99": q.p99, "p999": q.p999 }),
        );
        let obj = serde_json::json!({
            "mode": p.mode.name(),
            "network": s.network_kind,
            "runtime": flavour,
            "workers": workers,
            "connections": p.connections,
            "elapsed_s": t,
            "completed": o.completed,
            "errors": errors,
            "conn_per_s": o.conn_per_s,
            "goodput_gbps": o.goodput_gbps,
            "latency_us": latency,
            "requests_per_s": o.requests_per_s,
            "rss_bytes_per_conn": o.rss_bytes_per_conn,
            "heap_bytes_per_conn": o.heap_bytes_per_conn,
            "idle_heap_bytes_per_conn": o.idle_heap_bytes_per_conn,
            "kernel_slab_bytes_per_conn": o.kernel_slab_bytes_per_conn,
            "heap_bytes_per_time_wait": o.heap_bytes_per_time_wait,
            "kernel_slab_bytes_per_time_wait": o.kernel_slab_bytes_per_time_wait,
            "client": client_kind,
            "congestion": congestion,
            "nodelay": nodelay,
            "utcp_stats": utcp_stats,
            "impair": impair,
            "device": utcp_examples::device::device_counters(),
        });
        println!("{obj}");
    } else {
        print!("{text}");
    }
}

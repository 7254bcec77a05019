//! `echo-server`: a utcp server on a TUN device or a raw socket.
//!
//! ```text
//! echo-server --tun utun0 --addr 10.0.0.2 --tun-host-addr 10.0.0.1/24
//! echo-server --iface veth1 --addr 10.0.0.2/24 [--mode echo|sink|source] [--daytime-port 13] [--pcap FILE]
//! echo-server --kernel [--addr IP] [--congestion cubic] [--mode ...]
//! ```
//! Serves until SIGTERM or SIGINT, then shuts the stack down (grace 1 s) and
//! exits 0. If the device fails (a TUN device deleted under it), the
//! listener ends with the device's error, and the server exits 1 with one
//! line naming it. `--stats` prints the connections (as `ss -tan` does) and
//! the TCP counters on SIGUSR1 and at exit.
//!
//! `--kernel` serves on the kernel's sockets instead (`tokio::net`, on
//! `--addr`, default every address): the kernel peer in utcp's seat for
//! `bench/run`'s comparisons and its self-check. Every socket gets
//! `TCP_CONGESTION` (`--congestion`, default cubic) and `TCP_NODELAY`; at
//! exit one line reports the congestion control each accepted socket used,
//! as read back with `getsockopt`.

use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::{StackConfig, StackExt};
use utcp_examples::device::{DeviceArgs, init_logging, parse_args, parse_cidr, run_main};
use utcp_examples::kernel::{self as ksock, CongestionTally};
use utcp_examples::signals::Shutdown;

#[derive(Parser, Debug)]
#[command(
    name = "echo-server",
    about = "utcp echo server on a TUN device or a raw socket"
)]
struct Cli {
    #[command(flatten)]
    device: DeviceArgs,
    /// TCP port to serve on.
    #[arg(long, default_value_t = 7)]
    port: u16,
    /// What to do with each connection.
    #[arg(long, value_enum, default_value_t = Mode::Echo)]
    mode: Mode,
    /// Also serve RFC 867 daytime on this port (one line, then the server closes first).
    #[arg(long, value_name = "P")]
    daytime_port: Option<u16>,
    /// Serve on the kernel's sockets (tokio::net) instead of utcp.
    #[arg(long, conflicts_with_all = ["tun", "iface", "daytime_port"])]
    kernel: bool,
    /// Print the connections and TCP counters on SIGUSR1 and at exit.
    #[arg(long, conflicts_with = "kernel")]
    stats: bool,
    /// With --kernel: TCP_CONGESTION of every socket.
    #[arg(long, value_name = "NAME", default_value = ksock::DEFAULT_CONGESTION, requires = "kernel")]
    congestion: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// Echo every byte back.
    Echo,
    /// Read and discard.
    Sink,
    /// Send without end.
    Source,
}

fn main() -> ExitCode {
    let cli: Cli = parse_args();
    init_logging();
    run_main("echo-server", run(cli))
}

async fn run(cli: Cli) -> std::io::Result<()> {
    if cli.kernel {
        return run_kernel(cli).await;
    }
    let (stack, what) = cli.device.build(StackConfig::default())?;
    let (ip, _) = parse_cidr(cli.device.addr.as_deref().unwrap_or_default(), 32)?;
    let addr = SocketAddr::new(ip, cli.port);
    let listener = stack.bind(addr)?;
    let daytime = match cli.daytime_port {
        Some(p) => Some(stack.bind(SocketAddr::new(ip, p))?),
        None => None,
    };
    // Every handler is in place before the ready line: a signal sent as
    // soon as the line is read would otherwise meet the default action (the
    // process ends) if the task that awaits it had not been polled yet.
    let mut stop = Shutdown::register()?;
    #[cfg(unix)]
    let usr1 = if cli.stats {
        Some(tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::user_defined1(),
        )?)
    } else {
        None
    };
    match cli.daytime_port {
        Some(p) => println!(
            "echo-server: {:?} on {addr} (daytime on port {p}) via {what}",
            cli.mode
        ),
        None => println!("echo-server: {:?} on {addr} via {what}", cli.mode),
    }
    let mode = cli.mode;
    let mut serve = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((s, _)) => {
                    // TCP_NODELAY, as the kernel-socket server sets it.
                    let _ = s.set_nodelay(true);
                    if matches!(mode, Mode::Sink) {
                        // The sink takes the bytes as they arrived, no copy.
                        tokio::spawn(async move {
                            while let Ok(b) = s.read_bytes(usize::MAX).await {
                                if b.is_empty() {
                                    break;
                                }
                            }
                        });
                        continue;
                    }
                    tokio::spawn(handle(s.into_split(), mode));
                }
                Err(e) => return e,
            }
        }
    });
    let daytime_task = daytime.map(|l| {
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let line = format!("{}\r\n", daytime_string());
                    let _ = s.write_all(line.as_bytes()).await;
                    let _ = s.shutdown().await; // we close first: FIN_WAIT, TIME_WAIT
                    let mut sink = [0u8; 256];
                    while let Ok(n) = s.read(&mut sink).await {
                        if n == 0 {
                            break;
                        }
                    }
                });
            }
        })
    });
    #[cfg(unix)]
    if let Some(mut usr1) = usr1 {
        let s = stack.clone();
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                print!("{}", stats_table(&s));
            }
        });
    }
    let failed = tokio::select! {
        _ = stop.recv() => None,
        // The listener ended by itself: the device failed (or the stack
        // stopped under it).
        e = &mut serve => Some(e.map_err(std::io::Error::other)?),
    };
    if let Some(e) = failed {
        if cli.stats {
            print!("{}", stats_table(&stack));
        }
        return Err(std::io::Error::new(e.kind(), format!("accept failed: {e}")));
    }
    println!("echo-server: shutting down");
    serve.abort();
    if let Some(t) = daytime_task {
        t.abort();
    }
    if cli.stats {
        print!("{}", stats_table(&stack));
    }
    stack.shutdown(Duration::from_secs(1)).await;
    if let Some(counters) = utcp_examples::device::device_counters() {
        println!("echo-server: device {counters}");
    }
    Ok(())
}

/// `--kernel`: the same modes on kernel sockets.
async fn run_kernel(cli: Cli) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (ip, _) = parse_cidr(cli.device.addr.as_deref().unwrap_or("0.0.0.0"), 32)?;
    let addr = SocketAddr::new(ip, cli.port);
    let sock = if ip.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    // Accepted sockets inherit the listener's congestion control; each is
    // set again and read back below.
    ksock::set_congestion(sock.as_raw_fd(), &cli.congestion)?;
    sock.bind(addr)?;
    let listener = sock.listen(4096)?;
    let mut stop = Shutdown::register()?;
    println!(
        "echo-server: {:?} on {addr} via kernel sockets (TCP_CONGESTION {}, TCP_NODELAY)",
        cli.mode, cli.congestion
    );
    let tally = std::sync::Arc::new(CongestionTally::default());
    let (mode, cc, t) = (cli.mode, cli.congestion.clone(), tally.clone());
    let serve = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((s, _)) => {
                    let set = ksock::set_congestion(s.as_raw_fd(), &cc).and(s.set_nodelay(true));
                    if let Err(e) = set {
                        tracing::warn!(error = %e, "socket options failed");
                    }
                    t.record(ksock::congestion(s.as_raw_fd()));
                    tokio::spawn(handle(s.into_split(), mode));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    });
    stop.recv().await;
    serve.abort();
    let n: u64 = tally.counts().values().sum();
    println!(
        "echo-server: {n} kernel sockets accepted; congestion control read back: {}",
        tally.summary()
    );
    println!("echo-server: shutting down");
    Ok(())
}

/// Serves one connection, utcp's or the kernel's, given its two halves.
async fn handle<R, W>((mut r, mut w): (R, W), mode: Mode)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    match mode {
        Mode::Echo => {
            let _ = tokio::io::copy(&mut r, &mut w).await;
        }
        Mode::Sink => {
            let _ = tokio::io::copy(&mut r, &mut tokio::io::sink()).await;
        }
        Mode::Source => {
            let chunk = vec![b'x'; 64 * 1024];
            // Until the peer closes or resets.
            let reader = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut r, &mut tokio::io::sink()).await;
            });
            while !reader.is_finished() {
                if w.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        }
    }
    // Close our side after the peer closed.
    let _ = w.shutdown().await;
}

/// The connections as `ss -tan` lists them (state, queues, addresses,
/// with each one's retransmissions and RTT, and TIME_WAIT's time left),
/// then the TCP MIB counters.
fn stats_table(stack: &utcp::Stack) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:>8} {:>8} {:<22} {:<22} info",
        "State", "Recv-Q", "Send-Q", "Local", "Peer"
    );
    for l in stack.listeners() {
        let _ = writeln!(
            out,
            "{:<12} {:>8} {:>8} {:<22} {:<22} backlog {} half-open {}",
            "LISTEN",
            l.unaccepted,
            l.backlog,
            if l.any {
                "*:*".to_string()
            } else {
                l.local.to_string()
            },
            "*:*",
            l.backlog,
            l.half_open
        );
    }
    for c in stack.connections() {
        let (rq, sq, info) = match (&c.stats, c.time_wait_left) {
            (Some(st), _) => (
                c.recv_queue,
                c.send_queue,
                format!(
                    "rtt {:.3} ms retrans {} {}",
                    st.srtt.map_or(0.0, |d| d.as_secs_f64() * 1e3),
                    st.segments_retransmitted,
                    if c.queued { "not accepted" } else { "" }
                ),
            ),
            (None, Some(left)) => (0, 0, format!("timer {:.1} s", left.as_secs_f64())),
            (None, None) => (0, 0, String::new()),
        };
        let _ = writeln!(
            out,
            "{:<12} {:>8} {:>8} {:<22} {:<22} {}",
            format!("{:?}", c.state),
            rq,
            sq,
            c.local.to_string(),
            c.remote.to_string(),
            info.trim_end()
        );
    }
    let m = stack.mib();
    let _ = writeln!(
        out,
        "Tcp: ActiveOpens {} PassiveOpens {} AttemptFails {} EstabResets {} CurrEstab {} InSegs {} OutSegs {} RetransSegs {} InCsumErrors {} OutRsts {}",
        m.active_opens,
        m.passive_opens,
        m.attempt_fails,
        m.estab_resets,
        m.curr_estab,
        m.in_segs,
        m.out_segs,
        m.retrans_segs,
        m.in_csum_errors,
        m.out_rsts
    );
    out
}

/// RFC 867 leaves the format free; this is RFC 3339 in UTC.
fn daytime_string() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

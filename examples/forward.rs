//! `forward`: a user-space impairment between two network namespaces, for
//! benchmarks that need a real round trip and wire loss where netem is not
//! available.
//!
//! ```text
//! forward --a-tun NAME [--a-netns NS] [--a-host-addr IP/PREFIX]
//!         --b-tun NAME [--b-netns NS] [--b-host-addr IP/PREFIX]
//!         [--delay-ms D] [--loss P] [--rate-mbit R] [--queue-bytes B] [--seed N]
//!         [--offload off]
//! ```
//!
//! Opens TUN device A (inside namespace NS when `--a-netns` names one, else
//! the namespace it runs in) and TUN device B likewise, and copies every IP
//! packet read from one into the other: a wire between the two kernels.
//! Each direction passes utcp's impairment wrapper on the device it is
//! written to: dropped with probability P (seeded), rate-limited to R Mbit/s
//! of IP bytes through a drop-tail queue of B bytes when asked, then held D
//! ms (one-way delay; the round trip is 2·D). Both directions get the same
//! settings, so every flow that crosses — kernel or utcp — sees the same
//! path. Offloads stay off (each packet is one segment: a drop is one
//! segment, as in the loss tests).
//!
//! Prints one line when it forwards; on SIGTERM or SIGINT prints each
//! direction's counters and exits 0. Needs CAP_NET_ADMIN (and
//! CAP_SYS_ADMIN to enter a namespace).

use clap::Parser;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use utcp_examples::device::parse_cidr;
use utcp_runtime::device::Device;
use utcp_runtime::device::impair::{Direction, Impair, ImpairConfig};
use utcp_runtime::device::tun::{TunConfig, TunDevice};

/// Command-line flags.
#[derive(Parser, Debug)]
#[command(about = "Copies IP packets between two TUN devices through an impairment")]
struct Cli {
    /// TUN device A.
    #[arg(long, value_name = "NAME")]
    a_tun: String,
    /// Open A inside this network namespace (a name under /var/run/netns).
    #[arg(long, value_name = "NS")]
    a_netns: Option<String>,
    /// Give the kernel side of A this address.
    #[arg(long, value_name = "IP/PREFIX")]
    a_host_addr: Option<String>,
    /// TUN device B.
    #[arg(long, value_name = "NAME")]
    b_tun: String,
    /// Open B inside this network namespace.
    #[arg(long, value_name = "NS")]
    b_netns: Option<String>,
    /// Give the kernel side of B this address.
    #[arg(long, value_name = "IP/PREFIX")]
    b_host_addr: Option<String>,
    /// One-way delay of each direction, in milliseconds.
    #[arg(long, value_name = "D", default_value_t = 0.0)]
    delay_ms: f64,
    /// Probability (0 to 1) that a packet is dropped, each direction.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    loss: f64,
    /// Rate limit of each direction in Mbit/s of IP bytes (none by default).
    #[arg(long, value_name = "R")]
    rate_mbit: Option<f64>,
    /// The rate limit's drop-tail queue, in bytes.
    #[arg(long, value_name = "B", default_value_t = 256 * 1024)]
    queue_bytes: usize,
    /// Seed of the loss.
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// Offloads of the TUN devices: only `off` (a drop must be one segment).
    #[arg(long, value_name = "off", default_value = "off")]
    offload: String,
}

/// Runs `f` on a thread that entered namespace `ns` (if any): a TUN device
/// belongs to the namespace of the thread that creates it, and keeps it.
fn in_netns<T: Send + 'static>(
    ns: Option<String>,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    std::thread::spawn(move || {
        if let Some(ns) = ns {
            let path = std::path::Path::new("/var/run/netns").join(&ns);
            let file = std::fs::File::open(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            use std::os::fd::AsRawFd;
            // SAFETY: a valid namespace fd; setns affects this thread only.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(e.kind(), format!("setns {ns}: {e}")));
            }
        }
        f()
    })
    .join()
    .map_err(|_| io::Error::other("namespace thread panicked"))?
}

/// Opens TUN `name` inside `ns`, registered with the runtime of `rt`.
fn open(
    rt: &tokio::runtime::Handle,
    name: String,
    ns: Option<String>,
    host: Option<String>,
) -> io::Result<TunDevice> {
    let kernel_addr = host.map(|h| parse_cidr(&h, 24)).transpose()?;
    let rt = rt.clone();
    in_netns(ns, move || {
        let _guard = rt.enter();
        TunDevice::open(TunConfig {
            name,
            addrs: Vec::new(),
            kernel_addr,
            mtu: None,
            offload: false,
        })
    })
}

/// One direction's impairment on the device its packets are written to.
fn impair(dev: TunDevice, cli: &Cli, seed: u64) -> Impair<TunDevice> {
    let mut imp = Impair::new(
        dev,
        ImpairConfig {
            rx_loss: 0.0,
            tx_loss: cli.loss,
            seed,
        },
    );
    if cli.delay_ms > 0.0 {
        imp = imp.with_delay(Direction::Tx, Duration::from_secs_f64(cli.delay_ms / 1e3));
    }
    if let Some(r) = cli.rate_mbit {
        imp = imp.with_rate(Direction::Tx, (r * 1e6 / 8.0) as u64, cli.queue_bytes);
    }
    imp
}

/// Copies every packet `from` receives into `to`, until an error.
async fn pump(from: Arc<Impair<TunDevice>>, to: Arc<Impair<TunDevice>>) -> io::Result<()> {
    use utcp_runtime::TxPacket;
    let mut batch = Vec::with_capacity(64);
    loop {
        std::future::poll_fn(|cx| from.poll_recv(cx, &mut batch, 64)).await?;
        let mut out = [TxPacket {
            header: &[],
            payload: &[],
            payload_tail: &[],
            meta: Default::default(),
        }; 64];
        let n = batch.len().min(64);
        for (slot, p) in out.iter_mut().zip(&batch) {
            *slot = TxPacket {
                header: &p.data,
                payload: &[],
                payload_tail: &[],
                meta: Default::default(),
            };
        }
        to.send(&out[..n])?;
        batch.clear();
    }
}

fn main() -> io::Result<()> {
    let cli = Cli::parse();
    if cli.offload != "off" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--offload: only off (every forwarded packet is one segment)",
        ));
    }
    if !(0.0..=1.0).contains(&cli.loss)
        || cli.delay_ms < 0.0
        || cli.rate_mbit.is_some_and(|r| r <= 0.0)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--loss must be 0 to 1, --delay-ms at least 0, --rate-mbit above 0",
        ));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let a = open(
        rt.handle(),
        cli.a_tun.clone(),
        cli.a_netns.clone(),
        cli.a_host_addr.clone(),
    )?;
    let b = open(
        rt.handle(),
        cli.b_tun.clone(),
        cli.b_netns.clone(),
        cli.b_host_addr.clone(),
    )?;
    rt.block_on(async {
        // Packets written into A travel B → A; into B, A → B.
        let a = Arc::new(impair(a, &cli, cli.seed));
        let b = Arc::new(impair(b, &cli, cli.seed.wrapping_add(1)));
        // Before the ready line, so a SIGTERM sent on reading it is ours.
        let mut stop = utcp_examples::signals::Shutdown::register()?;
        println!(
            "forward: {} <-> {}: delay {} ms each way, loss {} each way, rate {}",
            cli.a_tun,
            cli.b_tun,
            cli.delay_ms,
            cli.loss,
            cli.rate_mbit.map_or("unlimited".to_string(), |r| format!(
                "{r} Mbit/s, queue {} B",
                cli.queue_bytes
            ))
        );
        let ab = tokio::spawn(pump(a.clone(), b.clone()));
        let ba = tokio::spawn(pump(b.clone(), a.clone()));
        tokio::select! {
            biased;
            _ = stop.recv() => {}
            r = ab => return r.map_err(io::Error::other)?,
            r = ba => return r.map_err(io::Error::other)?,
        }
        for (what, imp) in [("a->b", &b), ("b->a", &a)] {
            let s = imp.stats();
            println!(
                "forward: {what} passed={} dropped={} queue_drops={}",
                s.tx_passed - s.tx_queue_drops,
                s.tx_dropped,
                s.tx_queue_drops
            );
        }
        io::Result::Ok(())
    })
}

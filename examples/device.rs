//! The device flags shared by `echo-server`, `echo-client` and `load`, and
//! the stack built from them.

use clap::Args;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use utcp::{Stack, StackConfig};
use utcp_runtime::device::impair::{Impair, ImpairConfig, ImpairStats};
use utcp_runtime::device::{Device, DeviceAddrs};

/// Reads the counters of the impairment wrapper a stack's device runs in.
pub type ImpairCounters = Arc<dyn Fn() -> ImpairStats + Send + Sync>;

/// Which device to run the stack on (DESIGN.md's CLI contract).
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// Open or create the TUN device NAME.
    #[arg(long, value_name = "NAME", conflicts_with = "iface")]
    pub tun: Option<String>,
    /// With --tun: give the kernel side of the TUN this address (IP/PREFIX).
    #[arg(long, value_name = "IP/PREFIX", requires = "tun")]
    pub tun_host_addr: Option<String>,
    /// Use a raw socket (AF_PACKET) on the existing interface NAME.
    #[arg(long, value_name = "NAME")]
    pub iface: Option<String>,
    /// The stack's own address: IP for --tun, IP[/PREFIX] for --iface (default prefix 24).
    #[arg(long, value_name = "IP[/PREFIX]")]
    pub addr: Option<String>,
    /// With --iface: the IPv4 gateway for off-link destinations.
    #[arg(long, value_name = "IP", requires = "iface")]
    pub gateway: Option<IpAddr>,
    /// Record every packet in and out to this pcap file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Drop this fraction (0 to 1) of received packets before the stack sees
    /// them: seeded wire loss on utcp's side (utcp's impairment wrapper).
    #[arg(long, value_name = "P")]
    pub rx_loss: Option<f64>,
    /// Drop this fraction (0 to 1) of the packets the stack sends.
    #[arg(long, value_name = "P")]
    pub tx_loss: Option<f64>,
    /// Seed of the loss (with --rx-loss / --tx-loss).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub loss_seed: u64,
    /// Segmentation and checksum offloads of the device (TUN: IFF_VNET_HDR;
    /// raw: PACKET_VNET_HDR): on where the kernel accepts them, or off.
    #[arg(long, value_enum, value_name = "on|off", default_value_t = OffloadArg::On)]
    pub offload: OffloadArg,
}

/// `--offload on|off`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffloadArg {
    /// Ask for the offloads (the device falls back without them where the
    /// kernel refuses, and says so).
    On,
    /// Plain packets, complete checksums.
    Off,
}

/// Reads a device's counters as one line of text (`key=value …`).
pub type DeviceCounters = Arc<dyn Fn() -> String + Send + Sync>;

static DEVICE_COUNTERS: std::sync::OnceLock<DeviceCounters> = std::sync::OnceLock::new();

/// The counters of the device the last [`DeviceArgs::build`] opened, as one
/// line (`None` before any, or for the in-memory network).
pub fn device_counters() -> Option<String> {
    DEVICE_COUNTERS.get().map(|f| f())
}

/// Parses `IP` or `IP/PREFIX`.
///
/// # Errors
/// `InvalidInput` naming the bad part.
pub fn parse_cidr(s: &str, default_prefix: u8) -> io::Result<(IpAddr, u8)> {
    let bad =
        |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("bad {what} in {s:?}"));
    let (ip, prefix) = match s.split_once('/') {
        Some((ip, p)) => (ip, p.parse::<u8>().map_err(|_| bad("prefix"))?),
        None => (s, default_prefix),
    };
    let ip: IpAddr = ip.parse().map_err(|_| bad("address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad("prefix"));
    }
    Ok((ip, prefix))
}

impl DeviceArgs {
    /// Builds a stack on the chosen device (needs a Tokio runtime).
    ///
    /// # Errors
    /// `InvalidInput` for missing or bad flags; the device's error (e.g.
    /// `NotFound`, `PermissionDenied`) when it cannot be opened.
    pub fn build(&self, cfg: StackConfig) -> io::Result<(Stack, String)> {
        self.build_impaired(cfg)
            .map(|(stack, what, _)| (stack, what))
    }

    /// As [`build`](Self::build), and with `--rx-loss` / `--tx-loss` also the
    /// impairment wrapper's counters (`None` without loss flags).
    ///
    /// # Errors
    /// As [`build`](Self::build); `InvalidInput` for a loss outside 0 to 1.
    pub fn build_impaired(
        &self,
        cfg: StackConfig,
    ) -> io::Result<(Stack, String, Option<ImpairCounters>)> {
        for p in [self.rx_loss, self.tx_loss].into_iter().flatten() {
            if !(0.0..=1.0).contains(&p) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "--rx-loss and --tx-loss must be 0 to 1",
                ));
            }
        }
        let addr = self.addr.as_deref().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "--addr is required with --tun or --iface",
            )
        })?;
        if let Some(name) = &self.tun {
            return self.build_tun(name, addr, cfg);
        }
        if let Some(iface) = &self.iface {
            return self.build_raw(iface, addr, cfg);
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "choose a device: --tun NAME or --iface NAME",
        ))
    }

    #[cfg(target_os = "linux")]
    fn build_tun(
        &self,
        name: &str,
        addr: &str,
        cfg: StackConfig,
    ) -> io::Result<(Stack, String, Option<ImpairCounters>)> {
        use utcp_runtime::device::capture::Capture;
        use utcp_runtime::device::tun::{TunConfig, TunDevice};
        let (ip, _) = parse_cidr(addr, 32)?;
        let kernel_addr = match &self.tun_host_addr {
            Some(s) => Some(parse_cidr(s, if ip.is_ipv4() { 24 } else { 64 })?),
            None => None,
        };
        let dev = Arc::new(TunDevice::open(TunConfig {
            name: name.to_string(),
            addrs: vec![ip],
            kernel_addr,
            mtu: None,
            offload: self.offload == OffloadArg::On,
        })?);
        let what = format!("tun {name} (offload {})", dev.offload());
        let handle = dev.clone();
        let _ = DEVICE_COUNTERS.set(Arc::new(move || {
            let s = handle.stats();
            format!(
                "rx_packets={} rx_bytes={} rx_mean_bytes={} rx_super={} rx_super_mean_bytes={} \
                 rx_csum_trusted={} rx_truncated={} tx_packets={} tx_bytes={} tx_super={} \
                 tx_super_mean_bytes={} tx_drops={} tx_offload_refused={} offload={}",
                s.rx_packets,
                s.rx_bytes,
                s.rx_mean_bytes(),
                s.rx_super,
                s.rx_super_mean_bytes(),
                s.rx_csum_trusted,
                s.rx_truncated,
                s.tx_packets,
                s.tx_bytes,
                s.tx_super,
                s.tx_super_mean_bytes(),
                s.tx_drops,
                s.tx_offload_refused,
                handle.offload()
            )
        }));
        Ok(match &self.pcap {
            Some(path) => {
                let (stack, counters) = self.finish(Capture::create(dev, path)?, cfg);
                (stack, what, counters)
            }
            None => {
                let (stack, counters) = self.finish(dev, cfg);
                (stack, what, counters)
            }
        })
    }

    /// The stack on `dev`, wrapped in the impairment wrapper when a loss is asked for.
    fn finish<D: Device + DeviceAddrs>(
        &self,
        dev: D,
        cfg: StackConfig,
    ) -> (Stack, Option<ImpairCounters>) {
        if self.rx_loss.is_none() && self.tx_loss.is_none() {
            return (Stack::new(dev, cfg), None);
        }
        let lossy = Arc::new(Impair::new(
            dev,
            ImpairConfig {
                rx_loss: self.rx_loss.unwrap_or(0.0),
                tx_loss: self.tx_loss.unwrap_or(0.0),
                seed: self.loss_seed,
            },
        ));
        let handle = lossy.clone();
        let counters: ImpairCounters = Arc::new(move || handle.stats());
        (Stack::new(lossy, cfg), Some(counters))
    }

    #[cfg(target_os = "linux")]
    fn build_raw(
        &self,
        iface: &str,
        addr: &str,
        cfg: StackConfig,
    ) -> io::Result<(Stack, String, Option<ImpairCounters>)> {
        use utcp_runtime::device::raw::{RawConfig, RawDevice};
        let (ip, prefix) = parse_cidr(addr, 24)?;
        let IpAddr::V4(v4) = ip else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--iface needs an IPv4 --addr (ARP is IPv4 only)",
            ));
        };
        let gateway = match self.gateway {
            Some(IpAddr::V4(g)) => Some(g),
            Some(IpAddr::V6(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "--gateway must be IPv4",
                ));
            }
            None => None,
        };
        let dev = RawDevice::open(RawConfig {
            iface: iface.to_string(),
            addr: v4,
            prefix,
            gateway,
            mac: None,
            capture: self.pcap.clone(),
            offload: self.offload == OffloadArg::On,
        })?;
        let what = format!("raw socket on {iface} (offload {})", dev.offload());
        let handle = dev.clone();
        let _ = DEVICE_COUNTERS.set(Arc::new(move || {
            let s = handle.stats();
            format!(
                "rx_frames={} rx_bytes={} rx_mean_bytes={} rx_batches={} rx_super={} \
                 rx_super_mean_bytes={} rx_csum_trusted={} rx_truncated={} tx_frames={} \
                 tx_bytes={} tx_batches={} tx_super={} tx_queue_full={} drops={} offload={} \
                 qdisc_bypass={}",
                s.rx_frames,
                s.rx_bytes,
                s.rx_mean_bytes(),
                s.rx_batches,
                s.rx_super,
                s.rx_super_mean_bytes(),
                s.rx_csum_trusted,
                s.rx_truncated,
                s.tx_frames,
                s.tx_bytes,
                s.tx_batches,
                s.tx_super,
                s.tx_queue_full,
                s.drops(),
                handle.offload(),
                handle.qdisc_bypass()
            )
        }));
        let (stack, counters) = self.finish(dev, cfg);
        Ok((stack, what, counters))
    }

    #[cfg(not(target_os = "linux"))]
    fn build_tun(
        &self,
        _: &str,
        _: &str,
        _: StackConfig,
    ) -> io::Result<(Stack, String, Option<ImpairCounters>)> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "TUN devices need Linux",
        ))
    }

    #[cfg(not(target_os = "linux"))]
    fn build_raw(
        &self,
        _: &str,
        _: &str,
        _: StackConfig,
    ) -> io::Result<(Stack, String, Option<ImpairCounters>)> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "raw sockets need Linux",
        ))
    }
}

/// Parses the command line; on a bad flag prints one line naming the cause
/// and exits 2 (help and version print in full and exit 0).
pub fn parse_args<T: clap::Parser>() -> T {
    match T::try_parse() {
        Ok(t) => t,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                std::process::exit(0);
            }
            let text = e.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("bad arguments")
                .trim_start_matches("error: ");
            eprintln!(
                "{}: {first}",
                std::env::args()
                    .next()
                    .unwrap_or_default()
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
            );
            std::process::exit(2);
        }
    }
}

/// Logs to stderr per `RUST_LOG` (default: warnings).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs `fut` on a 2-worker multi-thread runtime; an error is printed as one
/// line prefixed with `name` and the process exits 1.
pub fn run_main<F>(name: &str, fut: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = io::Result<()>>,
{
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(fut) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

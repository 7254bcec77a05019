//! `handshake`: ladder diagrams of the connection life cycle's corner cases,
//! on the in-memory network in virtual time — every segment (flags, seq, ack)
//! and both sides' state transitions.
//!
//! ```text
//! cargo run --example handshake                       # every scenario
//! cargo run --example handshake -- simultaneous-open  # one of them
//! ```
//! Scenarios: `normal`, `simultaneous-open`, `simultaneous-close`,
//! `half-close`, `refused`, `syn-lost`, `reset`.

use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::sim::{FilterAction, LinkConfig, SimNetwork};
use utcp::{Stack, StackConfig, StackExt};
use utcp_examples::device::parse_args;
use utcp_examples::ladder::Ladder;

#[derive(Parser, Debug)]
#[command(
    name = "handshake",
    about = "ladder diagrams of TCP's open and close, over utcp's in-memory network"
)]
struct Cli {
    /// Which scenario (default: all of them).
    scenario: Option<Scenario>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Three-way handshake, one message, four-way close, TIME_WAIT.
    Normal,
    /// Both sides send SYN at once: SYN_SENT → SYN_RECEIVED → ESTABLISHED.
    SimultaneousOpen,
    /// Both sides send FIN at once: FIN_WAIT_1 → CLOSING → TIME_WAIT.
    SimultaneousClose,
    /// The client shuts down writing and keeps reading what the server sends.
    HalfClose,
    /// Nobody listens: the SYN is answered with RST|ACK.
    Refused,
    /// The first SYN is lost: retransmitted after the 1 s initial RTO.
    SynLost,
    /// The server aborts: RST, and the client's read fails.
    Reset,
}

const CLIENT: &str = "10.0.0.1";
const SERVER: &str = "10.0.0.2";

fn main() -> ExitCode {
    let cli: Cli = parse_args();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("handshake: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ladder = Ladder::install(CLIENT.parse().unwrap(), SERVER.parse().unwrap());
    let all = Scenario::value_variants();
    let chosen: Vec<Scenario> = match cli.scenario {
        Some(s) => vec![s],
        None => all.to_vec(),
    };
    for s in chosen {
        let name = s
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        println!(
            "\n== {name}: {}\n",
            s.to_possible_value()
                .and_then(|v| v.get_help().map(|h| h.to_string()))
                .unwrap_or_default()
        );
        ladder.header();
        if let Err(e) = rt.block_on(run(s, &ladder)) {
            eprintln!("handshake: {name} failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

struct Net {
    net: SimNetwork,
    client: Stack,
    server: Stack,
    a: utcp::sim::SimDevice,
    b: utcp::sim::SimDevice,
}

fn network(ladder: &Ladder) -> Net {
    let net = SimNetwork::new(9);
    let a = net.add_host("client", &[CLIENT.parse().unwrap()]);
    let b = net.add_host("server", &[SERVER.parse().unwrap()]);
    net.link(
        &a,
        &b,
        LinkConfig::default().delay(Duration::from_millis(5)),
    );
    ladder.watch(&net, &a, &b);
    // A short MSL keeps the TIME_WAIT part of the ladder brief.
    let mut cfg = StackConfig::default();
    cfg.endpoint.conn.msl = Duration::from_secs(1);
    let client = Stack::new(
        a.clone(),
        StackConfig {
            seed: Some(1),
            ..cfg.clone()
        },
    );
    let server = Stack::new(
        b.clone(),
        StackConfig {
            seed: Some(2),
            ..cfg
        },
    );
    Net {
        net,
        client,
        server,
        a,
        b,
    }
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// Lets the last segments and TIME_WAIT play out.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(2500)).await;
}

async fn run(s: Scenario, ladder: &Ladder) -> std::io::Result<()> {
    // Inside the runtime, so the clock is the virtual one.
    ladder.restart_clock();
    let n = network(ladder);
    let server_addr = addr(SERVER, 7);
    match s {
        Scenario::Normal => {
            let l = n.server.bind(server_addr)?;
            let mut c = n.client.connect(server_addr).await?;
            let (mut srv, _) = l.accept().await?;
            c.write_all(b"ping").await?;
            let mut buf = [0u8; 4];
            srv.read_exact(&mut buf).await?;
            c.shutdown().await?;
            let mut rest = Vec::new();
            srv.read_to_end(&mut rest).await?;
            srv.shutdown().await?;
            c.read_to_end(&mut rest).await?;
        }
        Scenario::SimultaneousOpen => {
            let (a, b) = (addr(CLIENT, 5000), addr(SERVER, 6000));
            let (x, y) = tokio::join!(n.client.connect_from(a, b), n.server.connect_from(b, a));
            let (mut x, mut y) = (x?, y?);
            x.shutdown().await?;
            let mut rest = Vec::new();
            y.read_to_end(&mut rest).await?;
            y.shutdown().await?;
            x.read_to_end(&mut rest).await?;
        }
        Scenario::SimultaneousClose => {
            let l = n.server.bind(server_addr)?;
            let mut c = n.client.connect(server_addr).await?;
            let (mut srv, _) = l.accept().await?;
            let (r1, r2) = tokio::join!(c.shutdown(), srv.shutdown());
            r1?;
            r2?;
            let mut rest = Vec::new();
            c.read_to_end(&mut rest).await?;
            srv.read_to_end(&mut rest).await?;
        }
        Scenario::HalfClose => {
            let l = n.server.bind(server_addr)?;
            let mut c = n.client.connect(server_addr).await?;
            let (mut srv, _) = l.accept().await?;
            c.shutdown().await?;
            let mut rest = Vec::new();
            srv.read_to_end(&mut rest).await?;
            srv.write_all(b"still talking").await?;
            srv.shutdown().await?;
            c.read_to_end(&mut rest).await?;
            ladder.note(&format!(
                "client read {:?} after its own FIN",
                String::from_utf8_lossy(&rest)
            ));
        }
        Scenario::Refused => {
            let e = n.client.connect(addr(SERVER, 9)).await.unwrap_err();
            ladder.note(&format!("connect: {e} ({:?})", e.kind()));
        }
        Scenario::SynLost => {
            let dropped = Arc::new(AtomicBool::new(false));
            let d = dropped.clone();
            let l2 = ladder.clone();
            n.net.set_filter(&n.a, &n.b, move |p| {
                if !d.swap(true, Ordering::SeqCst) {
                    l2.note("the network drops the first SYN");
                    return FilterAction::Drop;
                }
                l2.segment(utcp_examples::ladder::Side::Client, p.data);
                FilterAction::Pass
            });
            let _l = n.server.bind(server_addr)?;
            let c = n.client.connect(server_addr).await?;
            let s = c.stats();
            let why = if s.timestamps {
                "the echoed timestamp timed the retransmitted SYN (RFC 7323 §4.1), \
                 so RFC 6298 §5.7's 3 s fallback is not needed"
            } else {
                "RFC 6298 §5.7: 3 s after a retransmitted SYN"
            };
            ladder.note(&format!("connected; RTO now {:?} ({why})", s.rto));
            drop(c);
        }
        Scenario::Reset => {
            let l = n.server.bind(server_addr)?;
            let mut c = n.client.connect(server_addr).await?;
            let (srv, _) = l.accept().await?;
            srv.abort();
            let mut buf = [0u8; 1];
            let e = c.read(&mut buf).await.unwrap_err();
            ladder.note(&format!("client read: {e} ({:?})", e.kind()));
        }
    }
    settle().await;
    let _ = (&n.net, &n.b);
    n.client.shutdown(Duration::from_millis(10)).await;
    n.server.shutdown(Duration::from_millis(10)).await;
    Ok(())
}

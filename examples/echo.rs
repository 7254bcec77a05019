//! The demo: two hosts on utcp's in-memory network, an echo server and a
//! client, in virtual time. Prints the ladder of every segment (flags, seq,
//! ack) and each side's state transitions, echoes a few messages, closes, and
//! waits out TIME_WAIT's 2·MSL. Exits 0 only if every byte came back.
//!
//! Run: `cargo run --release --example echo` (`-- --relative` writes the
//! sequence numbers as offsets from each side's ISN: x, x+1, y, y+1).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::sim::{FilterAction, LinkConfig, SimNetwork};
use utcp::{Stack, StackConfig, StackExt};
use utcp_examples::ladder::{Ladder, Side};

const MESSAGES: [&str; 3] = ["hello, utcp", "every segment is ours", "goodbye"];

/// The demo's one option.
#[derive(clap::Parser, Debug)]
#[command(name = "echo", about = "utcp echo demo over the in-memory network")]
struct Cli {
    /// Write sequence numbers relative to each side's ISN (x, x+1, y, y+1).
    #[arg(long)]
    relative: bool,
}

fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("echo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.relative)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(relative: bool) -> std::io::Result<()> {
    let client_addr: SocketAddr = "10.0.0.1:0".parse().unwrap();
    let server_addr: SocketAddr = "10.0.0.2:7".parse().unwrap();
    let ladder = Ladder::install(client_addr.ip(), server_addr.ip());
    ladder.set_relative(relative);

    let net = SimNetwork::new(2026);
    let a = net.add_host("client", &[client_addr.ip()]);
    let b = net.add_host("server", &[server_addr.ip()]);
    net.link(
        &a,
        &b,
        LinkConfig::default().delay(Duration::from_millis(5)),
    );
    let l1 = ladder.clone();
    net.set_filter(&a, &b, move |p| {
        l1.segment(Side::Client, p.data);
        FilterAction::Pass
    });
    let l2 = ladder.clone();
    net.set_filter(&b, &a, move |p| {
        l2.segment(Side::Server, p.data);
        FilterAction::Pass
    });

    let cfg = StackConfig::default();
    let msl = cfg.endpoint.conn.msl;
    let client = Stack::new(
        a,
        StackConfig {
            seed: Some(1),
            ..cfg.clone()
        },
    );
    let server = Stack::new(
        b,
        StackConfig {
            seed: Some(2),
            ..cfg
        },
    );

    println!(
        "utcp echo demo: client {} <-> server {} over the in-memory network (5 ms each way, virtual time)\n",
        client_addr.ip(),
        server_addr
    );
    ladder.header();

    let listener = server.bind(server_addr)?;
    let server_task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let (mut r, mut w) = stream.into_split();
        let n = tokio::io::copy(&mut r, &mut w).await?;
        w.shutdown().await?;
        std::io::Result::Ok(n)
    });

    let mut stream = client.connect(server_addr).await?;
    let mut sent = 0usize;
    let mut echoed = 0usize;
    for m in MESSAGES {
        stream.write_all(m.as_bytes()).await?;
        sent += m.len();
        let mut back = vec![0u8; m.len()];
        stream.read_exact(&mut back).await?;
        if back != m.as_bytes() {
            return Err(std::io::Error::other(format!(
                "echo mismatch: sent {m:?}, got {:?}",
                String::from_utf8_lossy(&back)
            )));
        }
        echoed += back.len();
        ladder.note(&format!("client read back {m:?}"));
    }
    stream.shutdown().await?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await?;
    if !rest.is_empty() {
        return Err(std::io::Error::other("unexpected data after the echoes"));
    }
    let server_bytes = server_task.await.map_err(std::io::Error::other)??;
    let closed_at = tokio::time::Instant::now();
    drop(stream);

    // TIME_WAIT: the client closed first; wait out 2·MSL in virtual time.
    let bound = closed_at + msl * 2 + Duration::from_secs(5);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if client.stats().time_wait == 0 && client.stats().connections == 0 {
            break;
        }
        if tokio::time::Instant::now() > bound {
            return Err(std::io::Error::other("TIME_WAIT did not end after 2MSL"));
        }
    }
    let waited = closed_at.elapsed();
    println!();
    println!(
        "TIME_WAIT ended after {:.1} s of virtual time (2·MSL = {} s)",
        waited.as_secs_f64(),
        (msl * 2).as_secs()
    );
    println!("sent {sent} bytes, {echoed} came back, the server echoed {server_bytes}");
    if sent != echoed || server_bytes as usize != sent {
        return Err(std::io::Error::other("bytes were lost"));
    }
    if waited < msl * 2 {
        return Err(std::io::Error::other("TIME_WAIT ended before 2MSL"));
    }
    println!("OK: every byte came back");
    Ok(())
}

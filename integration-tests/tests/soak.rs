//! The randomized soak: per seed, random impairments each way and 1–20
//! connections of random shapes between two stacks on the in-memory network,
//! in virtual time (a fresh current-thread runtime per seed, paused), so a
//! seed replays exactly.
//!
//! Shapes: echo with half-close; request → response → drop; write then
//! orphaned close; the server writes and closes first; abort mid-transfer;
//! many concurrent connects (a group of echo connections started at once).
//! Checked: every byte arrives exactly and in order, the expected error
//! kinds (a reset for the aborted connection, nothing for the others), and
//! that every connection ends: both stacks' tables (connections and
//! TIME_WAIT records) empty within a bound of virtual time.
//!
//! Environment:
//! - `UTCP_SOAK_SEEDS=N` seeds (default 200, the CI run), starting at
//!   `UTCP_SOAK_FIRST` (default 0);
//! - `UTCP_SOAK_SEED=S` replays one seed;
//! - `UTCP_SOAK_MAX_BYTES=B` bytes per connection at most (default 65536).
//!
//! `cargo test --release -p utcp-integration-tests --test soak -- --nocapture`

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::sim::LinkConfig;
use utcp::{Stack, StackConfig, StackExt, TcpListener};
use utcp_integration_tests::{CLIENT, Pair, SERVER, pattern};

/// One connection's (or group's) shape.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// The client writes, shuts down writing, reads the echo to EOF.
    EchoHalfClose(usize),
    /// The client sends a request, reads the response of known length, and
    /// drops the stream; the server reads the request, answers, closes.
    RequestResponse(usize, usize),
    /// The client writes and drops the stream at once (an orphaned close:
    /// the FIN follows the queued data); the server reads to EOF.
    WriteOrphanClose(usize),
    /// The server writes and closes first; the client reads to EOF.
    ServerClosesFirst(usize),
    /// The client writes part of its data, then aborts (RST); the server
    /// sees a prefix of the data, then a reset.
    AbortMidTransfer(usize),
    /// Several echo connections started at once.
    ConcurrentConnects(usize, usize),
}

/// What a seed moved, for the summary line.
#[derive(Default)]
struct Totals {
    connections: usize,
    bytes: usize,
    packets: u64,
    lost: u64,
}

impl Shape {
    fn connections(&self) -> usize {
        match *self {
            Shape::ConcurrentConnects(k, _) => k,
            _ => 1,
        }
    }
    /// Application bytes the shape moves (both ways).
    fn bytes(&self) -> usize {
        match *self {
            Shape::EchoHalfClose(n) => 2 * n,
            Shape::RequestResponse(q, a) => q + a,
            Shape::WriteOrphanClose(n) | Shape::ServerClosesFirst(n) => n,
            Shape::AbortMidTransfer(n) => n / 2,
            Shape::ConcurrentConnects(k, n) => 2 * k * n,
        }
    }
}

struct Settings {
    max_bytes: usize,
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
    })
}

fn link(rng: &mut ChaCha8Rng) -> LinkConfig {
    let rate = rng.gen_range(200_000u64..20_000_000);
    LinkConfig::default()
        .delay(Duration::from_micros(rng.gen_range(500..40_000)))
        .jitter(Duration::from_micros(rng.gen_range(0..3_000)))
        .rate(rate)
        // Small queues: between 8 and 64 full-sized packets.
        .queue_bytes(rng.gen_range(8..64) * 1500)
        .loss(rng.gen_range(0.0..0.10))
        .duplicate(rng.gen_range(0.0..0.03))
        .reorder(
            rng.gen_range(0.0..0.05),
            Duration::from_micros(rng.gen_range(0..20_000)),
        )
        .corrupt(rng.gen_range(0.0..0.01))
}

fn shape(rng: &mut ChaCha8Rng, max: usize) -> Shape {
    let mut n = || rng.gen_range(0..=max);
    match n() % 6 {
        0 => Shape::EchoHalfClose(n()),
        1 => Shape::RequestResponse(n().max(1), n().max(1)),
        2 => Shape::WriteOrphanClose(n()),
        3 => Shape::ServerClosesFirst(n()),
        4 => Shape::AbortMidTransfer(n().max(2)),
        _ => Shape::ConcurrentConnects(2 + n() % 7, n() / 8),
    }
}

/// Reads to EOF or the first error, keeping what arrived.
async fn read_all<R: AsyncReadExt + Unpin>(r: &mut R) -> (Vec<u8>, io::Result<()>) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Err(e)),
        }
    }
}

async fn echo_server(l: TcpListener, count: usize) -> Result<(), String> {
    let mut tasks = Vec::new();
    for _ in 0..count {
        let (s, _) = l.accept().await.map_err(|e| format!("accept: {e}"))?;
        tasks.push(tokio::spawn(async move {
            let (mut r, mut w) = s.into_split();
            tokio::io::copy(&mut r, &mut w)
                .await
                .map_err(|e| format!("echo copy: {e}"))?;
            w.shutdown()
                .await
                .map_err(|e| format!("echo shutdown: {e}"))
        }));
    }
    for t in tasks {
        t.await.map_err(|e| format!("echo task: {e}"))??;
    }
    Ok(())
}

async fn echo_client(stack: Stack, addr: SocketAddr, data: Vec<u8>) -> Result<(), String> {
    let s = stack
        .connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut r, mut w) = s.into_split();
    let len = data.len();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await?;
        w.shutdown().await?;
        io::Result::Ok((w, data))
    });
    let (back, res) = read_all(&mut r).await;
    res.map_err(|e| format!("echo read: {e}"))?;
    let (_w, data) = writer
        .await
        .map_err(|e| format!("writer: {e}"))?
        .map_err(|e| format!("echo write: {e}"))?;
    if back != data {
        return Err(format!(
            "echo: {} of {len} bytes back, or different",
            back.len()
        ));
    }
    Ok(())
}

/// One connection of `shape` on `port`: the server's side and the client's.
async fn run_shape(
    client: Stack,
    server: Stack,
    port: u16,
    shape: Shape,
    seed: u64,
) -> Result<(), String> {
    let addr = SocketAddr::new(SERVER.parse().unwrap(), port);
    let l = server.bind(addr).map_err(|e| format!("bind: {e}"))?;
    let data_seed = seed.wrapping_mul(1_000).wrapping_add(u64::from(port));
    match shape {
        Shape::EchoHalfClose(n) => {
            let srv = tokio::spawn(echo_server(l, 1));
            echo_client(client, addr, pattern(n, data_seed)).await?;
            srv.await.map_err(|e| e.to_string())?
        }
        Shape::ConcurrentConnects(k, n) => {
            let srv = tokio::spawn(echo_server(l, k));
            let clients: Vec<_> = (0..k)
                .map(|i| {
                    tokio::spawn(echo_client(
                        client.clone(),
                        addr,
                        pattern(n, data_seed ^ (i as u64 + 1)),
                    ))
                })
                .collect();
            for c in clients {
                c.await.map_err(|e| e.to_string())??;
            }
            srv.await.map_err(|e| e.to_string())?
        }
        Shape::RequestResponse(q, a) => {
            let req = pattern(q, data_seed);
            let resp = pattern(a, data_seed ^ 1);
            let (req2, resp2) = (req.clone(), resp.clone());
            let srv = tokio::spawn(async move {
                let (mut s, _) = l.accept().await.map_err(|e| format!("accept: {e}"))?;
                let mut got = vec![0u8; req2.len()];
                s.read_exact(&mut got)
                    .await
                    .map_err(|e| format!("server read request: {e}"))?;
                if got != req2 {
                    return Err("request differs".to_string());
                }
                s.write_all(&resp2)
                    .await
                    .map_err(|e| format!("server write response: {e}"))?;
                s.shutdown()
                    .await
                    .map_err(|e| format!("server shutdown: {e}"))?;
                // The client drops after the response: EOF or, if its FIN
                // was overtaken by our data's arrival after its close, a
                // reset (a close with unread data resets, as in Linux).
                let (_, res) = read_all(&mut s).await;
                match res {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
                    Err(e) => Err(format!("server after response: {e}")),
                }
            });
            let mut s = client
                .connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            s.write_all(&req)
                .await
                .map_err(|e| format!("client write request: {e}"))?;
            let mut got = vec![0u8; resp.len()];
            s.read_exact(&mut got)
                .await
                .map_err(|e| format!("client read response: {e}"))?;
            if got != resp {
                return Err("response differs".to_string());
            }
            drop(s);
            srv.await.map_err(|e| e.to_string())?
        }
        Shape::WriteOrphanClose(n) => {
            let data = pattern(n, data_seed);
            let expect = data.clone();
            let srv = tokio::spawn(async move {
                let (mut s, _) = l.accept().await.map_err(|e| format!("accept: {e}"))?;
                let (got, res) = read_all(&mut s).await;
                res.map_err(|e| format!("server read: {e}"))?;
                if got != expect {
                    return Err(format!("orphan: {} of {n} bytes, or different", got.len()));
                }
                Ok(())
            });
            let mut s = client
                .connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            s.write_all(&data)
                .await
                .map_err(|e| format!("client write: {e}"))?;
            drop(s);
            srv.await.map_err(|e| e.to_string())?
        }
        Shape::ServerClosesFirst(n) => {
            let data = pattern(n, data_seed);
            let d2 = data.clone();
            let srv = tokio::spawn(async move {
                let (mut s, _) = l.accept().await.map_err(|e| format!("accept: {e}"))?;
                s.write_all(&d2)
                    .await
                    .map_err(|e| format!("server write: {e}"))?;
                s.shutdown()
                    .await
                    .map_err(|e| format!("server shutdown: {e}"))?;
                let (_, res) = read_all(&mut s).await;
                res.map_err(|e| format!("server read EOF: {e}"))
            });
            let s = client
                .connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let (mut r, mut w) = s.into_split();
            let (got, res) = read_all(&mut r).await;
            res.map_err(|e| format!("client read: {e}"))?;
            if got != data {
                return Err(format!(
                    "server-first: {} of {n} bytes, or different",
                    got.len()
                ));
            }
            w.shutdown()
                .await
                .map_err(|e| format!("client shutdown: {e}"))?;
            srv.await.map_err(|e| e.to_string())?
        }
        Shape::AbortMidTransfer(n) => {
            let data = pattern(n, data_seed);
            let half = n / 2;
            let expect = data.clone();
            let srv = tokio::spawn(async move {
                // The abort may come before the handshake's last ACK got
                // through: an RST in SYN_RECEIVED returns the listener to
                // LISTEN (RFC 9293 §3.10.7.4) and nothing is ever accepted.
                let Ok(accepted) = tokio::time::timeout(Duration::from_secs(300), l.accept()).await
                else {
                    return Ok(());
                };
                let (s, _) = accepted.map_err(|e| format!("accept: {e}"))?;
                let (mut r, mut w) = s.into_split();
                let mut got = Vec::new();
                let mut buf = vec![0u8; 8192];
                // Bounded: after 10 quiet seconds the server writes a byte,
                // which the aborted side answers with an RST (the abort's
                // own RST may have been lost).
                for _ in 0..1_000 {
                    match tokio::time::timeout(Duration::from_secs(10), r.read(&mut buf)).await {
                        Ok(Ok(0)) => return Err("abort: EOF instead of a reset".to_string()),
                        Ok(Ok(k)) => got.extend_from_slice(&buf[..k]),
                        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                            if !expect.starts_with(&got) {
                                return Err("abort: received bytes are not a prefix".into());
                            }
                            return Ok(());
                        }
                        Ok(Err(e)) => return Err(format!("abort: server read: {e}")),
                        Err(_) => {
                            if let Err(e) = w.write_all(b"?").await
                                && e.kind() != io::ErrorKind::ConnectionReset
                                && e.kind() != io::ErrorKind::BrokenPipe
                            {
                                return Err(format!("abort: probe write: {e}"));
                            }
                        }
                    }
                }
                Err("abort: no reset after 1,000 reads".into())
            });
            let mut s = client
                .connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            s.write_all(&data[..half])
                .await
                .map_err(|e| format!("client write: {e}"))?;
            s.abort();
            srv.await.map_err(|e| e.to_string())?
        }
    }
}

/// Runs one seed; `Err` says what went wrong.
fn run_seed(seed: u64, st: &Settings) -> Result<Totals, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let c2s = link(&mut rng);
        let s2c = link(&mut rng);
        let mut cfg = StackConfig::default();
        // Enough retries that 10 % loss each way never exhausts them.
        cfg.endpoint.conn.syn_retries = 12;
        cfg.endpoint.conn.synack_retries = 12;
        let p = Pair::with(seed, c2s, s2c, cfg, &[CLIENT], &[SERVER]);
        let count = rng.gen_range(1..=20usize);
        let shapes: Vec<Shape> = (0..count).map(|_| shape(&mut rng, st.max_bytes)).collect();
        let desc = format!("{count} connections {shapes:?}\nclient→server {c2s:?}\nserver→client {s2c:?}");
        let tasks: Vec<_> = shapes
            .iter()
            .enumerate()
            .map(|(i, &sh)| {
                let (c, s) = (p.client.clone(), p.server.clone());
                tokio::spawn(async move {
                    tokio::time::timeout(
                        Duration::from_secs(3_600),
                        run_shape(c, s, 1_000 + i as u16, sh, seed),
                    )
                    .await
                    .map_err(|_| format!("connection {i} ({sh:?}): no end in 1 h virtual"))?
                    .map_err(|e| format!("connection {i} ({sh:?}): {e}"))
                })
            })
            .collect();
        for t in tasks {
            t.await
                .map_err(|e| format!("task: {e}\n{desc}"))?
                .map_err(|e| format!("{e}\n{desc}"))?;
        }
        // Every connection ends: both tables empty (orphans leave FIN_WAIT_2
        // after 60 s, TIME_WAIT after 2·MSL), checked each virtual second.
        for _ in 0..1_800 {
            let (a, b) = (p.client.stats(), p.server.stats());
            if a.connections + a.time_wait + b.connections + b.time_wait == 0 {
                let (ab, ba) = (p.net.stats(&p.a, &p.b), p.net.stats(&p.b, &p.a));
                return Ok(Totals {
                    connections: shapes.iter().map(Shape::connections).sum(),
                    bytes: shapes.iter().map(Shape::bytes).sum(),
                    packets: a.tx_packets + b.tx_packets,
                    lost: ab.lost + ab.queue_drops + ba.lost + ba.queue_drops,
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let (a, b) = (p.client.stats(), p.server.stats());
        Err(format!(
            "connections left after 30 min virtual: client {} (+{} TIME_WAIT), server {} (+{} TIME_WAIT)\n{desc}",
            a.connections, a.time_wait, b.connections, b.time_wait
        ))
    })
}

#[test]
fn soak_random_seeds() {
    let st = Settings {
        max_bytes: env_u64("UTCP_SOAK_MAX_BYTES").map_or(64 * 1024, |b| b as usize),
    };
    let seeds: Vec<u64> = match env_u64("UTCP_SOAK_SEED") {
        Some(s) => vec![s],
        None => {
            let first = env_u64("UTCP_SOAK_FIRST").unwrap_or(0);
            let n = env_u64("UTCP_SOAK_SEEDS").unwrap_or(200);
            (first..first + n).collect()
        }
    };
    let started = std::time::Instant::now();
    let mut sum = Totals::default();
    for (i, &seed) in seeds.iter().enumerate() {
        match run_seed(seed, &st) {
            Ok(t) => {
                sum.connections += t.connections;
                sum.bytes += t.bytes;
                sum.packets += t.packets;
                sum.lost += t.lost;
            }
            Err(e) => panic!(
                "soak seed {seed} failed: {e}\nreplay: UTCP_SOAK_SEED={seed} UTCP_SOAK_MAX_BYTES={} \
                 cargo test -p utcp-integration-tests --test soak -- --nocapture",
                st.max_bytes
            ),
        }
        if (i + 1) % 1_000 == 0 {
            println!(
                "soak: {} seeds, {:.1} s",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "soak: {} seeds (up to {} bytes per connection) passed in {secs:.1} s wall: \
         {} connections, {} application bytes, {} packets sent, {} lost or queue-dropped by the links",
        seeds.len(),
        st.max_bytes,
        sum.connections,
        sum.bytes,
        sum.packets,
        sum.lost
    );
}

//! Shared helpers for utcp's integration tests: two stacks on the in-memory
//! network, an echo server, and data patterns; network namespaces for the
//! kernel-interop tests.

pub mod netns;

use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::sim::{LinkConfig, SimDevice, SimNetwork};
use utcp::{Stack, StackConfig, StackExt, TcpListener};

/// Client address on the test network.
pub const CLIENT: &str = "10.0.0.1";
/// Server address on the test network.
pub const SERVER: &str = "10.0.0.2";

/// Two hosts joined by one link, each with a stack.
pub struct Pair {
    /// The network.
    pub net: SimNetwork,
    /// Client host device.
    pub a: SimDevice,
    /// Server host device.
    pub b: SimDevice,
    /// Client stack.
    pub client: Stack,
    /// Server stack.
    pub server: Stack,
}

impl Pair {
    /// Two IPv4 hosts with the same link config both ways.
    pub fn new(seed: u64, link: LinkConfig) -> Pair {
        Pair::with(
            seed,
            link,
            link,
            StackConfig::default(),
            &[CLIENT],
            &[SERVER],
        )
    }

    /// Full control.
    pub fn with(
        seed: u64,
        a_to_b: LinkConfig,
        b_to_a: LinkConfig,
        cfg: StackConfig,
        a_addrs: &[&str],
        b_addrs: &[&str],
    ) -> Pair {
        let net = SimNetwork::new(seed);
        let pa: Vec<IpAddr> = a_addrs.iter().map(|s| s.parse().unwrap()).collect();
        let pb: Vec<IpAddr> = b_addrs.iter().map(|s| s.parse().unwrap()).collect();
        let a = net.add_host("client", &pa);
        let b = net.add_host("server", &pb);
        net.link_asym(&a, &b, a_to_b, b_to_a);
        let client = Stack::new(
            a.clone(),
            StackConfig {
                seed: Some(seed ^ 0xa),
                ..cfg.clone()
            },
        );
        let server = Stack::new(
            b.clone(),
            StackConfig {
                seed: Some(seed ^ 0xb),
                ..cfg
            },
        );
        Pair {
            net,
            a,
            b,
            client,
            server,
        }
    }

    /// `SERVER:port`.
    pub fn server_addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(SERVER.parse().unwrap(), port)
    }
}

/// Serves echo on `listener` until it is dropped: each connection copies
/// everything back and closes after the peer's FIN.
pub fn spawn_echo(listener: TcpListener) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    })
}

/// A recognisable pattern of `len` bytes (position-dependent, so a shifted,
/// lost or duplicated byte shows).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8) ^ (i as u8)
        })
        .collect()
}

/// Sends `data` on a new connection to `addr`, shuts down writing, reads
/// everything back until EOF.
pub async fn echo_roundtrip(stack: &Stack, addr: SocketAddr, data: &[u8]) -> io::Result<Vec<u8>> {
    let s = stack.connect(addr).await?;
    let (mut r, mut w) = s.into_split();
    let payload = data.to_vec();
    let writer = tokio::spawn(async move {
        w.write_all(&payload).await?;
        w.shutdown().await?;
        io::Result::Ok(w)
    });
    let mut back = Vec::with_capacity(data.len());
    r.read_to_end(&mut back).await?;
    let _w = writer.await.map_err(io::Error::other)??;
    Ok(back)
}

/// Installs a test log subscriber (RUST_LOG, default off); safe to call often.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Serves `body` over HTTP/1.1 (hyper) on every connection of `listener`.
pub fn spawn_http(listener: TcpListener, body: &'static str) -> tokio::task::JoinHandle<()> {
    use hyper::service::service_fn;
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(
                    move |_req: hyper::Request<hyper::body::Incoming>| async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from_static(body.as_bytes())),
                        ))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    })
}

/// The path of example `name`, freshly built: the first call in a test
/// binary runs `cargo build --workspace --example NAME` with the profile this
/// test binary was built with (so `cargo test --workspace` finds it up to date,
/// and a stale binary is never run), later calls reuse the answer.
///
/// # Panics
///
/// When the example cannot be built: a test that needs it fails rather than
/// passing without running anything.
pub fn example_bin(name: &str) -> std::path::PathBuf {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    static BUILT: Mutex<BTreeMap<String, std::path::PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    // target/<profile dir>/deps/<this test binary>
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .and_then(|dir| dir.file_name())
        .and_then(|n| n.to_str())
        .expect("the test binary lives in target/<profile>/deps");
    let profile = match profile_dir {
        "debug" => "test",
        other => other,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests sits in the workspace root");
    let out = std::process::Command::new(&cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--quiet",
            "--workspace",
            "--profile",
            profile,
            "--example",
            name,
        ])
        .arg("--message-format=json-render-diagnostics")
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run {cargo:?} to build example {name}: {e}"));
    assert!(
        out.status.success(),
        "cargo build --example {name} failed ({})",
        out.status
    );
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(std::path::PathBuf::from))
        .unwrap_or_else(|| panic!("cargo built no executable for example {name}"));
    built.insert(name.to_string(), path.clone());
    path
}

/// Runs `cmd` to completion and returns its output, like
/// [`Command::output`](std::process::Command::output), but kills it and fails
/// the test if it is still running after `hang_bound`: a generous limit that
/// only catches a hang, never a timing assertion.
///
/// # Panics
///
/// When the command cannot be started or outlives `hang_bound`.
pub fn output_within(
    cmd: &mut std::process::Command,
    hang_bound: std::time::Duration,
) -> std::process::Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let end = std::time::Instant::now() + hang_bound;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if std::time::Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {hang_bound:?}: killed (a hang)");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    std::process::Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Polls `f` every 10 ms (tokio time, so virtual under `start_paused`) until
/// it holds or `limit` passes; returns its last value.
pub async fn wait_until(mut f: impl FnMut() -> bool, limit: std::time::Duration) -> bool {
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    f()
}

/// A scratch directory under the system temp dir, removed on drop (also when
/// the test fails).
#[derive(Debug)]
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// Creates `utcp-<tag>-<pid>`.
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("utcp-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

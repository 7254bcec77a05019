//! Helpers shared by the runtime's device tests (each test binary uses a part).
#![allow(dead_code)]

use std::io;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Linux capability numbers used by the tests.
pub const CAP_NET_ADMIN: u32 = 12;
/// See [`CAP_NET_ADMIN`].
pub const CAP_NET_RAW: u32 = 13;

/// Removes capability `cap` from the calling thread's effective and permitted
/// sets (capabilities are per thread on Linux), so one test thread can check
/// a permission error while the others keep root's.
pub fn drop_capability(cap: u32) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a version-3 header and two data structs, as
    // the kernel ABI defines; pid 0 is the calling thread.
    unsafe {
        if libc::syscall(
            libc::SYS_capget,
            &mut header as *mut Header,
            data.as_mut_ptr(),
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        data[0].effective &= !(1 << cap);
        data[0].permitted &= !(1 << cap);
        if libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A network namespace deleted on drop (also when the test panics).
pub struct Netns {
    name: String,
}

impl Netns {
    /// A new namespace named after `tag`, the process and a counter.
    pub fn new(tag: &str) -> io::Result<Netns> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "utcp-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let out = Command::new("ip").args(["netns", "add", &name]).output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "ip netns add {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(Netns { name })
    }

    /// The namespace's name (for `ip … netns NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `f` on a new thread that entered this namespace: the devices and
    /// sockets it creates belong here.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = std::fs::File::open(&path).expect("open the namespace");
                // SAFETY: setns with a namespace descriptor changes only this
                // thread's network namespace.
                let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns: {}", io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }

    /// `ip -n NAME ARGS…`, its stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
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

/// A namespace to test in, or `None` when this machine lacks root with
/// `CAP_SYS_ADMIN` and `ip` (namespaces), `CAP_NET_ADMIN` or `/dev/net/tun`
/// (TUN devices): outside CI the test prints `SKIPPED: …` and returns; with
/// `CI=true` it fails.
pub fn tun_netns_or_skip(test: &str, tag: &str) -> Option<Netns> {
    use utcp_testenv::{Cap, NETNS, Need};
    let mut needs = NETNS.to_vec();
    needs.extend([Need::Cap(Cap::NetAdmin), Need::TunDevice]);
    if !utcp_testenv::require(test, &needs) {
        return None;
    }
    Some(
        Netns::new(tag)
            .unwrap_or_else(|e| panic!("{test}: cannot create a network namespace: {e}")),
    )
}

/// Writes all of `data` to a connection.
pub async fn write_all(c: &utcp_runtime::ConnRef, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = std::future::poll_fn(|cx| c.poll_write(cx, data)).await?;
        data = &data[n..];
    }
    Ok(())
}

/// Reads what a connection has into `buf`: the count, 0 at EOF.
pub async fn read_some(c: &utcp_runtime::ConnRef, buf: &mut [u8]) -> io::Result<usize> {
    std::future::poll_fn(|cx| {
        let mut rb = tokio::io::ReadBuf::new(buf);
        match c.poll_read(cx, &mut rb) {
            std::task::Poll::Ready(Ok(())) => std::task::Poll::Ready(Ok(rb.filled().len())),
            std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    })
    .await
}

/// Reads a connection to EOF.
pub async fn read_to_end(c: &utcp_runtime::ConnRef) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = read_some(c, &mut buf).await?;
        if n == 0 {
            return Ok(all);
        }
        all.extend_from_slice(&buf[..n]);
    }
}

/// Two stacks on the in-memory network, 10.0.0.1 (`a`) and 10.0.0.2 (`b`),
/// linked with `delay` each way, and one connection between them: a's
/// client to b's listener on port 80, established.
pub struct SimPair {
    pub net: utcp_runtime::sim::SimNetwork,
    pub a: utcp_runtime::sim::SimDevice,
    pub b: utcp_runtime::sim::SimDevice,
    pub stack_a: utcp_runtime::Stack,
    pub stack_b: utcp_runtime::Stack,
    pub client: utcp_runtime::ConnRef,
    pub server: utcp_runtime::ConnRef,
}

/// Builds a [`SimPair`] with link seed `seed` (the caller's runtime: use
/// it under paused time for virtual time).
pub async fn sim_pair(seed: u64, delay: std::time::Duration) -> SimPair {
    use std::future::poll_fn;
    use utcp_runtime::sim::{LinkConfig, SimNetwork};
    use utcp_runtime::{Stack, StackConfig};
    let net = SimNetwork::new(seed);
    let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    net.link(&a, &b, LinkConfig::default().delay(delay));
    let stack_a = Stack::new(a.clone(), StackConfig::default());
    let stack_b = Stack::new(b.clone(), StackConfig::default());
    let l = stack_b.listen("10.0.0.2:80".parse().unwrap()).unwrap();
    let client = stack_a
        .connect_start("10.0.0.2:80".parse().unwrap())
        .unwrap();
    let server = poll_fn(|cx| l.poll_accept(cx)).await.unwrap();
    poll_fn(|cx| client.poll_connected(cx)).await.unwrap();
    SimPair {
        net,
        a,
        b,
        stack_a,
        stack_b,
        client,
        server,
    }
}

//! Network namespaces for kernel-interop tests, created and deleted by the
//! test itself (DESIGN.md's test network rules): unique names, deleted on
//! drop (also when the test panics), nothing configured in the root
//! namespace, every packet stays inside.

use std::io;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs a command, failing with its stderr.
pub fn run(cmd: &str, args: &[&str]) -> io::Result<Output> {
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

/// A network namespace that is deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `utcp-<tag>-<pid>-<n>` with its loopback up.
    ///
    /// # Errors
    /// When `ip netns add` fails.
    pub fn new(tag: &str) -> io::Result<Netns> {
        let name = format!(
            "utcp-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        run("ip", &["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS…`.
    ///
    /// # Errors
    /// When the command fails.
    pub fn ip(&self, args: &[&str]) -> io::Result<Output> {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// `ip netns exec NAME CMD ARGS…`, waiting for it.
    ///
    /// # Errors
    /// When the command fails.
    pub fn exec(&self, cmd: &str, args: &[&str]) -> io::Result<Output> {
        let mut a = vec!["netns", "exec", self.name.as_str(), cmd];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// A `Command` that runs inside the namespace.
    pub fn command(&self, cmd: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.name.as_str()]).arg(cmd);
        c
    }

    /// Runs `f` on a new thread that entered this namespace (sockets and
    /// devices it creates belong to the namespace).
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<io::Result<T>> {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            enter(Path::new(&path))?;
            Ok(f())
        })
    }

    /// Turns off checksum and segmentation offloads on `dev` (veth hands
    /// AF_PACKET readers GSO super-segments and partial checksums otherwise;
    /// the loss tests need every dropped packet to be one segment).
    ///
    /// # Errors
    /// When ethtool fails.
    pub fn offloads_off(&self, dev: &str) -> io::Result<()> {
        self.exec(
            "ethtool",
            &[
                "-K", dev, "rx", "off", "tx", "off", "sg", "off", "tso", "off", "gso", "off",
                "gro", "off",
            ],
        )
        .map(|_| ())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Moves the calling thread into the namespace at `path`.
///
/// # Errors
/// When the namespace cannot be opened or entered.
pub fn enter(path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path)?;
    // SAFETY: setns on a valid namespace fd only changes this thread's namespace.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Two namespaces joined by a veth pair `va` (in `a`) – `vb` (in `b`),
/// both up, offloads off, with the given MTU.
///
/// # Errors
/// When a command fails.
pub fn veth_pair(a: &Netns, b: &Netns, mtu: u32) -> io::Result<()> {
    veth_pair_with(a, b, mtu, false)
}

/// As [`veth_pair`], with the kernel's default offloads left on both ends
/// when `offloads` (TSO / GSO super-frames and partial checksums then reach
/// AF_PACKET readers), or every offload off.
///
/// # Errors
/// When a command fails.
pub fn veth_pair_with(a: &Netns, b: &Netns, mtu: u32, offloads: bool) -> io::Result<()> {
    let tmp_a = format!("ua{}", COUNTER.fetch_add(1, Ordering::SeqCst));
    let tmp_b = format!("ub{}", COUNTER.fetch_add(1, Ordering::SeqCst));
    // Created directly inside `a`, so nothing ever exists in the root namespace.
    a.ip(&[
        "link",
        "add",
        &tmp_a,
        "type",
        "veth",
        "peer",
        "name",
        &tmp_b,
        "netns",
        b.name(),
    ])?;
    a.ip(&["link", "set", &tmp_a, "name", "va"])?;
    b.ip(&["link", "set", &tmp_b, "name", "vb"])?;
    let mtu = mtu.to_string();
    a.ip(&["link", "set", "va", "mtu", &mtu, "up"])?;
    b.ip(&["link", "set", "vb", "mtu", &mtu, "up"])?;
    if !offloads {
        a.offloads_off("va")?;
        b.offloads_off("vb")?;
    }
    Ok(())
}

/// Polls `f` every 20 ms until it is true or `limit` passes.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

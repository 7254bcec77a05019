//! # utcp-testenv: what a test needs from the machine
//!
//! Tests that need root, a TUN device or a command-line tool (`ip`,
//! `ethtool`, `nft`, `socat`, `curl`, `tshark`, …) call [`require`] with
//! exactly what they need before they start. When something is missing:
//!
//! - outside CI, one line `SKIPPED: <test>: <what is missing> (install:
//!   apt-get install <package>)` goes to the process's standard error (not
//!   through the test harness's capture, so `cargo test` shows it and `.ci/run`
//!   counts it) and `require` returns `false`: the test returns;
//! - with `CI=true`, `require` panics with the same reason: in CI a missing
//!   prerequisite is a failure, never a silent pass.
//!
//! Tools are looked up on `PATH`, as `Command::new` finds them, so a `PATH`
//! without them is a machine without them.

#![deny(missing_docs)]

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One thing a test needs from the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Effective user id 0: network namespaces, veth pairs, TUN devices, raw
    /// sockets and nftables rules.
    Root,
    /// `/dev/net/tun`, the TUN/TAP clone device.
    TunDevice,
    /// A capability in the effective set, such as `Cap::NetAdmin`.
    Cap(Cap),
    /// A command on `PATH`, such as `"ip"` or `"ethtool"`.
    Tool(&'static str),
}

/// The Linux capabilities the tests need (capabilities(7)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// `CAP_NET_ADMIN`: create and configure TUN devices and interfaces.
    NetAdmin,
    /// `CAP_NET_RAW`: open AF_PACKET sockets.
    NetRaw,
    /// `CAP_SYS_ADMIN`: create and enter network namespaces.
    SysAdmin,
}

impl Cap {
    fn bit(self) -> u32 {
        match self {
            Cap::NetAdmin => 12,
            Cap::NetRaw => 13,
            Cap::SysAdmin => 21,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cap::NetAdmin => "CAP_NET_ADMIN",
            Cap::NetRaw => "CAP_NET_RAW",
            Cap::SysAdmin => "CAP_SYS_ADMIN",
        }
    }
}

/// Network namespaces made with `ip netns`: root (to write `/run/netns`),
/// `CAP_SYS_ADMIN` (to create them; a container may lack it even as root) and
/// iproute2's `ip`.
pub const NETNS: &[Need] = &[Need::Root, Need::Cap(Cap::SysAdmin), Need::Tool("ip")];

impl Need {
    /// What is missing, in words, when this need is not met.
    fn missing(self) -> Option<String> {
        match self {
            Need::Root => (!is_root()).then(|| "not root".to_string()),
            Need::TunDevice => (!Path::new("/dev/net/tun").exists())
                .then(|| "no /dev/net/tun (load the tun module)".to_string()),
            Need::Cap(cap) => (!has_cap(cap))
                .then(|| format!("{} not in the effective capability set", cap.name())),
            Need::Tool(tool) => find_on_path(tool)
                .is_none()
                .then(|| format!("`{tool}` not found on PATH")),
        }
    }

    /// The Debian / Ubuntu package that provides a tool.
    fn package(self) -> Option<&'static str> {
        match self {
            Need::Tool(tool) => Some(package_of(tool)),
            Need::Root | Need::TunDevice | Need::Cap(_) => None,
        }
    }
}

/// The Debian / Ubuntu package of a command the tests use.
pub fn package_of(tool: &str) -> &'static str {
    match tool {
        "ip" | "ss" => "iproute2",
        "nft" => "nftables",
        "ethtool" => "ethtool",
        "socat" => "socat",
        "curl" => "curl",
        "tshark" => "tshark",
        "setpriv" => "util-linux",
        "valgrind" => "valgrind",
        _ => "(unknown: the package that provides it)",
    }
}

/// Whether the effective user is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `cap` is in this process's effective capability set (the
/// `CapEff` line of `/proc/self/status`).
pub fn has_cap(cap: Cap) -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|set| set & (1 << cap.bit()) != 0)
}

/// Whether `CI=true` is set: missing prerequisites fail instead of skipping.
pub fn in_ci() -> bool {
    std::env::var_os("CI").as_deref() == Some(OsStr::new("true"))
}

/// The executable `tool` resolves to on `PATH` (or the path itself when it
/// contains a `/`), if any.
pub fn find_on_path(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if tool.contains('/') {
        let p = PathBuf::from(tool);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| executable(p))
}

/// The one line [`require`] reports for `test` when `needs` are not met, or
/// `None` when everything is there.
pub fn unmet(test: &str, needs: &[Need]) -> Option<String> {
    let mut what = Vec::new();
    let mut packages: Vec<&str> = Vec::new();
    let not_root = needs.contains(&Need::Root) && !is_root();
    for &need in needs {
        if not_root && matches!(need, Need::Cap(_)) {
            continue; // "not root" says it: root has them
        }
        if let Some(m) = need.missing() {
            what.push(m);
            if let Some(p) = need.package()
                && !packages.contains(&p)
            {
                packages.push(p);
            }
        }
    }
    if what.is_empty() {
        return None;
    }
    let mut line = format!("{test}: {}", what.join(", "));
    if !packages.is_empty() {
        line.push_str(&format!(
            " (install: apt-get install {})",
            packages.join(" ")
        ));
    }
    if not_root {
        line.push_str(" (run as root)");
    }
    Some(line)
}

/// Checks that everything in `needs` is here before `test` starts.
///
/// Returns `true` when the test can run. Otherwise, outside CI, prints
/// `SKIPPED: <test>: <what is missing> (install: apt-get install <package>)`
/// on standard error and returns `false`; the test then returns.
///
/// # Panics
///
/// With `CI=true`, when something is missing: CI installs every
/// prerequisite, so a missing one is a broken CI machine, not a skip.
#[must_use = "return from the test when this is false"]
pub fn require(test: &str, needs: &[Need]) -> bool {
    let Some(line) = unmet(test, needs) else {
        return true;
    };
    if in_ci() {
        panic!("missing prerequisite under CI=true: {line}");
    }
    // Straight to fd 2: the test harness captures `eprintln!`, not this, so the
    // line shows for a passing test too.
    let _ = std::io::stderr().write_all(format!("SKIPPED: {line}\n").as_bytes());
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_is_found_on_path_and_a_made_up_one_is_not() {
        assert!(find_on_path("sh").is_some(), "sh is on every PATH");
        assert_eq!(find_on_path("utcp-no-such-tool-xyz"), None);
    }

    #[test]
    fn the_line_names_what_is_missing_and_its_package() {
        let line = unmet(
            "t",
            &[Need::Tool("sh"), Need::Tool("utcp-no-such-tool-xyz")],
        )
        .expect("a made-up tool is missing");
        assert!(line.starts_with(
            "t: `utcp-no-such-tool-xyz` not found on PATH (install: apt-get install "
        ));
        assert_eq!(unmet("t", &[Need::Tool("sh")]), None);
    }

    #[test]
    fn packages_of_the_tools_the_tests_use() {
        assert_eq!(package_of("nft"), "nftables");
        assert_eq!(package_of("ip"), "iproute2");
        assert_eq!(package_of("tshark"), "tshark");
    }
}

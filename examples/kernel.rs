//! Kernel sockets for the comparison runs (`load --kernel`, `echo-server
//! --kernel`): the congestion control set per socket with `TCP_CONGESTION`
//! and read back with `getsockopt`, so a report says what each socket really
//! used (a namespace's default may be another, e.g. bbr).

use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;

/// The congestion control the comparison sets on every kernel socket.
pub const DEFAULT_CONGESTION: &str = "cubic";

/// Sets `TCP_CONGESTION` on a socket.
///
/// # Errors
/// The `setsockopt` error, e.g. `NotFound` (ENOENT) when the kernel has no
/// such algorithm.
#[cfg(target_os = "linux")]
pub fn set_congestion(fd: std::os::fd::RawFd, name: &str) -> io::Result<()> {
    // SAFETY: `fd` is an open socket owned by the caller; the option value is
    // a byte string of the given length.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads `TCP_CONGESTION` back from a socket: the algorithm in use.
///
/// # Errors
/// The `getsockopt` error.
#[cfg(target_os = "linux")]
pub fn congestion(fd: std::os::fd::RawFd) -> io::Result<String> {
    let mut buf = [0u8; 32];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` outlives the call and `len` holds its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let bytes = &buf[..(len as usize).min(buf.len())];
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

/// Sets `TCP_CONGESTION` (unsupported off Linux).
///
/// # Errors
/// Always `Unsupported`.
#[cfg(not(target_os = "linux"))]
pub fn set_congestion(_fd: i32, _name: &str) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "TCP_CONGESTION needs Linux",
    ))
}

/// Reads `TCP_CONGESTION` back (unsupported off Linux).
///
/// # Errors
/// Always `Unsupported`.
#[cfg(not(target_os = "linux"))]
pub fn congestion(_fd: i32) -> io::Result<String> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "TCP_CONGESTION needs Linux",
    ))
}

/// How many sockets used each congestion control, as read back.
#[derive(Debug, Default)]
pub struct CongestionTally(Mutex<BTreeMap<String, u64>>);

impl CongestionTally {
    /// Counts one socket's algorithm (`"unknown"` when it could not be read).
    pub fn record(&self, read_back: io::Result<String>) {
        let name = read_back.unwrap_or_else(|_| "unknown".to_string());
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name)
            .or_default() += 1;
    }

    /// Sockets per algorithm, sorted by name.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// One line: `cubic×12, reno×1`, or `none` before any socket.
    pub fn summary(&self) -> String {
        let counts = self.counts();
        if counts.is_empty() {
            return "none".to_string();
        }
        counts
            .iter()
            .map(|(k, n)| format!("{k}×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn congestion_set_and_read_back() {
        let s = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // reno is built into every Linux kernel.
        set_congestion(s.as_raw_fd(), "reno").unwrap();
        assert_eq!(congestion(s.as_raw_fd()).unwrap(), "reno");
        let tally = CongestionTally::default();
        tally.record(congestion(s.as_raw_fd()));
        tally.record(Err(io::Error::other("x")));
        assert_eq!(tally.summary(), "reno×1, unknown×1");
    }
}

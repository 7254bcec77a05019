//! Flow control against the kernel: each side stalls its reader so the other
//! meets a zero window, probes it, and resumes when the reader drains.

use super::*;
use std::sync::mpsc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::StackExt;
use utcp_integration_tests::pattern;

const SIZE: usize = 2 << 20;

/// Bounds each wait for a window to close: catches a hang, nothing slower.
const HANG_BOUND: Duration = Duration::from_secs(20);

/// The kernel sends 2 MiB to a utcp reader that does not read until its
/// window has closed: the kernel probes it, the transfer resumes byte-exact.
#[test]
fn kernel_sender_meets_utcp_zero_window_and_resumes() {
    if !can_run(
        "kernel_sender_meets_utcp_zero_window_and_resumes",
        Link::Tun,
        &[],
    ) {
        return;
    }
    let _serial = serial();
    let net = Net::new(Link::Tun, 1500);
    let mut utcp = spawn_utcp(net.utcp_ns(), move |sig| async move {
        let stack = Net::open_stack(Link::Tun, 1500, false)?;
        let l = stack.bind(sa("10.77.0.2:7"))?;
        sig.ready();
        let (mut s, _) = tokio::time::timeout(Duration::from_secs(10), l.accept())
            .await
            .map_err(io::Error::other)??;
        // Stall: nobody reads until the window has filled (bounded: if it
        // never closes, the assertion below says so).
        let end = tokio::time::Instant::now() + HANG_BOUND;
        while s.stats().recv_window != 0 && tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let window_while_stalled = s.stats().recv_window;
        let mut got = Vec::with_capacity(SIZE);
        tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut got))
            .await
            .map_err(io::Error::other)??;
        stack.shutdown(Duration::from_secs(1)).await;
        io::Result::Ok((got, window_while_stalled))
    });
    utcp.wait_ready();
    net.kernel
        .spawn(|| -> io::Result<()> {
            let mut s = KTcpStream::connect_timeout(&sa("10.77.0.2:7"), Duration::from_secs(5))?;
            s.set_write_timeout(Some(Duration::from_secs(30)))?;
            s.write_all(&pattern(SIZE, 4))?;
            s.shutdown(Shutdown::Write)
        })
        .join()
        .unwrap()
        .unwrap()
        .unwrap();
    let (got, window) = utcp.finish();
    assert_eq!(
        window, 0,
        "utcp's window did not close while its reader stalled"
    );
    assert!(got == pattern(SIZE, 4), "bytes differ");
}

/// utcp sends 2 MiB to a kernel reader that does not read until utcp has seen
/// the kernel's window close: utcp probes it (persist timer) and resumes when
/// it opens.
#[test]
fn utcp_sender_meets_kernel_zero_window_and_resumes() {
    if !can_run(
        "utcp_sender_meets_kernel_zero_window_and_resumes",
        Link::Tun,
        &[],
    ) {
        return;
    }
    let _serial = serial();
    let net = Net::new(Link::Tun, 1500);
    let (bound_tx, bound_rx) = mpsc::channel();
    let (closed_tx, closed_rx) = mpsc::channel::<()>();
    let kernel = net.kernel.spawn(move || -> io::Result<Vec<u8>> {
        let l = std::net::TcpListener::bind(sa("0.0.0.0:7008"))?;
        // 2 MiB is far more than the kernel's receive buffer while nobody
        // reads (tcp_rmem's default is 128 KiB).
        bound_tx.send(()).ok();
        let (mut s, _) = l.accept()?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        // Read only once utcp saw the window close (or the bound passed).
        closed_rx.recv_timeout(HANG_BOUND).ok();
        let mut got = Vec::new();
        s.read_to_end(&mut got)?;
        Ok(got)
    });
    bound_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let (stats, saw_zero_window) = net
        .utcp_ns()
        .spawn(move || {
            rt().block_on(async move {
                let stack = Net::open_stack(Link::Tun, 1500, false)?;
                let mut s = stack.connect(sa("10.77.0.1:7008")).await?;
                // Write in steps, looking at the peer's window whenever a write
                // blocks (a write that is cut short has written nothing).
                let data = pattern(SIZE, 6);
                let (mut off, mut saw_zero_window) = (0, false);
                let end = tokio::time::Instant::now() + Duration::from_secs(60);
                while off < data.len() {
                    if tokio::time::Instant::now() >= end {
                        return Err(io::Error::other("utcp sender timed out"));
                    }
                    let step =
                        tokio::time::timeout(Duration::from_millis(20), s.write(&data[off..]));
                    if let Ok(n) = step.await {
                        off += n?;
                    }
                    if !saw_zero_window && s.stats().send_window == 0 {
                        saw_zero_window = true;
                        closed_tx.send(()).ok();
                    }
                }
                s.shutdown().await?;
                let mut rest = Vec::new();
                tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut rest))
                    .await
                    .map_err(io::Error::other)??;
                let stats = s.stats();
                drop(s);
                stack.shutdown(Duration::from_secs(1)).await;
                io::Result::Ok((stats, saw_zero_window))
            })
        })
        .join()
        .unwrap()
        .unwrap()
        .unwrap();
    let got = kernel.join().unwrap().unwrap().unwrap();
    assert!(got == pattern(SIZE, 6), "bytes differ");
    assert!(
        saw_zero_window,
        "the kernel's window never closed while its reader waited: {stats:?}"
    );
}

//! `TunDevice::from_fd` (issue 18, point 5): a TUN descriptor opened and
//! configured by someone else (here by hand: `/dev/net/tun`, `TUNSETIFF`
//! with `IFF_TUN | IFF_NO_PI`, then `ip` for the address and link) carries
//! a stack; a kernel client's bytes echo through it. Descriptors it cannot
//! use are `InvalidInput`. Root and a namespace of the test's own.

mod common;

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp_runtime::device::tun::TunDevice;
use utcp_runtime::{Stack, StackConfig};

/// Opens `/dev/net/tun` and attaches it to a new TUN interface `name`
/// with `flags` (`TUNSETIFF`).
fn open_tun(name: &str, flags: libc::c_short) -> io::Result<OwnedFd> {
    // SAFETY: a plain open of a device node with a NUL-terminated path.
    let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is open and ours.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        pad: [u8; 22],
    }
    let mut req = IfReq {
        name: [0; 16],
        flags,
        pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads an ifreq (40 bytes) from a valid pointer.
    if unsafe { libc::ioctl(fd, libc::TUNSETIFF as _, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned)
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_tun_descriptor_opened_elsewhere_carries_a_stack() {
    let test = "a_tun_descriptor_opened_elsewhere_carries_a_stack";
    if !utcp_testenv::require(test, &[utcp_testenv::Need::Tool("ip")]) {
        return;
    }
    let Some(ns) = common::tun_netns_or_skip(test, "tunfd") else {
        return;
    };
    ns.run(|| {
        // Descriptors it cannot use.
        let null = std::fs::File::open("/dev/null").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let e = TunDevice::from_fd(null.into(), vec![]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
            let vnet = open_tun(
                "ufdv0",
                (libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short,
            )
            .expect("a TUN with virtio-net headers");
            let e = TunDevice::from_fd(vnet, vec![]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        });
        // A plain one, configured by its opener.
        let fd = open_tun("ufd0", (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short)
            .expect("a plain TUN");
        ip(&["addr", "add", "10.95.0.1/24", "dev", "ufd0"]);
        ip(&["link", "set", "ufd0", "up"]);
        rt.block_on(async {
            let stack_ip: IpAddr = "10.95.0.2".parse().unwrap();
            let dev = TunDevice::from_fd(fd, vec![stack_ip]).expect("adopted");
            assert_eq!(dev.name(), "ufd0");
            assert!(!dev.offload().is_on());
            let stack = Stack::with_addrs(dev, vec![stack_ip], StackConfig::default());
            let listener = stack.listen(SocketAddr::new(stack_ip, 7)).unwrap();
            let server = tokio::spawn(async move {
                let conn = poll_fn(|cx| listener.poll_accept(cx)).await?;
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = common::read_some(&conn, &mut buf).await?;
                    if n == 0 {
                        conn.shutdown_write()?;
                        return io::Result::Ok(());
                    }
                    common::write_all(&conn, &buf[..n]).await?;
                }
            });
            let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
            let back = tokio::time::timeout(Duration::from_secs(30), async {
                let sock = tokio::net::TcpStream::connect(SocketAddr::new(stack_ip, 7))
                    .await
                    .expect("the kernel connects through the adopted TUN");
                let (mut r, mut w) = sock.into_split();
                let sent = data.clone();
                let writer = tokio::spawn(async move {
                    w.write_all(&sent).await.unwrap();
                    w.shutdown().await.unwrap();
                });
                let mut back = Vec::new();
                r.read_to_end(&mut back).await.unwrap();
                writer.await.unwrap();
                back
            })
            .await
            .expect("the echo finished in time");
            assert!(
                back == data,
                "echoed exactly ({} of {} bytes)",
                back.len(),
                data.len()
            );
            server.await.unwrap().unwrap();
            stack.shutdown(Duration::from_millis(200)).await;
        });
    });
}

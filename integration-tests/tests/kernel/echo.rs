//! Byte-exact echo between kernel TCP and utcp, both directions, both devices.

use super::*;
use std::sync::mpsc;
use utcp::StackExt;
use utcp_integration_tests::{echo_roundtrip, pattern, spawn_echo};

/// utcp serves echo on `port`; the kernel client sends `size` bytes.
pub fn kernel_client_to_utcp(link: Link, mtu: u32, size: usize, v6: bool) {
    kernel_client_to_utcp_with(link, mtu, size, v6, Offloads::default_for_run());
}

/// As [`kernel_client_to_utcp`], with `offloads` on or off.
pub fn kernel_client_to_utcp_with(link: Link, mtu: u32, size: usize, v6: bool, offloads: Offloads) {
    let _serial = serial_with(offloads);
    let net = Net::new(link, mtu);
    let utcp_ip = if v6 { ip("fd77::2") } else { net.utcp_ip };
    let mut utcp = spawn_utcp(net.utcp_ns(), move |sig| async move {
        let stack = Net::open_stack(link, mtu, v6)?;
        spawn_echo(stack.bind(SocketAddr::new(utcp_ip, 7))?);
        sig.ready();
        sig.until_stopped(Duration::from_secs(120)).await;
        stack.shutdown(Duration::from_secs(1)).await;
        io::Result::Ok(())
    });
    utcp.wait_ready();
    let data = pattern(size, size as u64);
    let expect = data.clone();
    let back = net
        .kernel
        .spawn(move || kernel_echo_client(SocketAddr::new(utcp_ip, 7), data))
        .join()
        .unwrap()
        .unwrap()
        .expect("kernel client");
    assert_eq!(back.len(), expect.len());
    assert!(back == expect, "echoed bytes differ");
    utcp.finish();
}

/// The kernel serves echo; a utcp client sends `size` bytes.
pub fn utcp_client_to_kernel(link: Link, mtu: u32, size: usize) {
    utcp_client_to_kernel_with(link, mtu, size, Offloads::default_for_run());
}

/// As [`utcp_client_to_kernel`], with `offloads` on or off.
pub fn utcp_client_to_kernel_with(link: Link, mtu: u32, size: usize, offloads: Offloads) {
    let _serial = serial_with(offloads);
    let net = Net::new(link, mtu);
    let kaddr = SocketAddr::new(net.kernel_ip, 7007);
    // Bind the kernel server first (inside the kernel namespace).
    let (bound_tx, bound_rx) = mpsc::channel();
    // Bound to the wildcard: with TUN the kernel's address appears only once
    // utcp has opened the device.
    let kernel = net.kernel.spawn(move || {
        let (_, h) = kernel_echo_server(sa("0.0.0.0:7007"), 1, Duration::from_secs(90))?;
        bound_tx.send(()).ok();
        h.join()
            .map_err(|_| io::Error::other("echo server panicked"))?
    });
    bound_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("kernel server did not bind");
    let data = pattern(size, 99);
    let expect = data.clone();
    let back = net
        .utcp_ns()
        .spawn(move || {
            rt().block_on(async move {
                let stack = Net::open_stack(link, mtu, false)?;
                let back = tokio::time::timeout(
                    Duration::from_secs(90),
                    echo_roundtrip(&stack, kaddr, &data),
                )
                .await
                .map_err(|_| io::Error::other("utcp client timed out"))??;
                stack.shutdown(Duration::from_secs(1)).await;
                io::Result::Ok(back)
            })
        })
        .join()
        .unwrap()
        .unwrap()
        .expect("utcp client");
    assert!(back == expect, "echoed bytes differ");
    assert_eq!(kernel.join().unwrap().unwrap().unwrap(), 1);
}

#[test]
fn kernel_client_echoes_10mib_through_tun() {
    if can_run("kernel_client_echoes_10mib_through_tun", Link::Tun, &[]) {
        kernel_client_to_utcp(Link::Tun, 1500, 10 << 20, false);
    }
}

#[test]
fn kernel_client_echoes_10mib_through_veth_raw_socket() {
    if can_run(
        "kernel_client_echoes_10mib_through_veth_raw_socket",
        Link::Raw,
        &[],
    ) {
        kernel_client_to_utcp(Link::Raw, 1500, 10 << 20, false);
    }
}

#[test]
fn utcp_client_echoes_10mib_with_kernel_server_through_tun() {
    if can_run(
        "utcp_client_echoes_10mib_with_kernel_server_through_tun",
        Link::Tun,
        &[],
    ) {
        utcp_client_to_kernel(Link::Tun, 1500, 10 << 20);
    }
}

#[test]
fn utcp_client_echoes_10mib_with_kernel_server_through_veth_raw_socket() {
    if can_run(
        "utcp_client_echoes_10mib_with_kernel_server_through_veth_raw_socket",
        Link::Raw,
        &[],
    ) {
        utcp_client_to_kernel(Link::Raw, 1500, 10 << 20);
    }
}

#[test]
fn kernel_client_echoes_over_ipv6_through_tun() {
    if can_run("kernel_client_echoes_over_ipv6_through_tun", Link::Tun, &[]) {
        kernel_client_to_utcp(Link::Tun, 1500, 1 << 20, true);
    }
}

// The same echoes with every offload off (utcp's devices and the veth pair).

#[test]
fn kernel_client_echoes_10mib_through_tun_offloads_off() {
    let test = "kernel_client_echoes_10mib_through_tun_offloads_off";
    if can_run(test, Link::Tun, &[]) {
        kernel_client_to_utcp_with(Link::Tun, 1500, 10 << 20, false, Offloads::Off);
    }
}

#[test]
fn kernel_client_echoes_10mib_through_veth_raw_socket_offloads_off() {
    let test = "kernel_client_echoes_10mib_through_veth_raw_socket_offloads_off";
    if can_run(test, Link::Raw, &[]) {
        kernel_client_to_utcp_with(Link::Raw, 1500, 10 << 20, false, Offloads::Off);
    }
}

#[test]
fn utcp_client_echoes_10mib_with_kernel_server_through_tun_offloads_off() {
    let test = "utcp_client_echoes_10mib_with_kernel_server_through_tun_offloads_off";
    if can_run(test, Link::Tun, &[]) {
        utcp_client_to_kernel_with(Link::Tun, 1500, 10 << 20, Offloads::Off);
    }
}

#[test]
fn utcp_client_echoes_10mib_with_kernel_server_through_veth_raw_socket_offloads_off() {
    let test = "utcp_client_echoes_10mib_with_kernel_server_through_veth_raw_socket_offloads_off";
    if can_run(test, Link::Raw, &[]) {
        utcp_client_to_kernel_with(Link::Raw, 1500, 10 << 20, Offloads::Off);
    }
}

#[test]
fn kernel_client_echoes_over_ipv6_through_tun_offloads_off() {
    let test = "kernel_client_echoes_over_ipv6_through_tun_offloads_off";
    if can_run(test, Link::Tun, &[]) {
        kernel_client_to_utcp_with(Link::Tun, 1500, 1 << 20, true, Offloads::Off);
    }
}

#[test]
fn refused_both_ways() {
    if !can_run("refused_both_ways", Link::Tun, &[]) {
        return;
    }
    let _serial = serial();
    let net = Net::new(Link::Tun, 1500);
    let mut utcp = spawn_utcp(net.utcp_ns(), move |sig| async move {
        let stack = Net::open_stack(Link::Tun, 1500, false)?;
        sig.ready();
        // utcp → a closed kernel port.
        let e = stack.connect(sa("10.77.0.1:9")).await.unwrap_err();
        sig.until_stopped(Duration::from_secs(30)).await;
        stack.shutdown(Duration::from_secs(1)).await;
        io::Result::Ok(e.kind())
    });
    utcp.wait_ready();
    // kernel → a closed utcp port.
    let kernel = net.kernel.spawn(|| {
        KTcpStream::connect_timeout(&sa("10.77.0.2:9"), Duration::from_secs(5)).map(|_| ())
    });
    let r = kernel.join().unwrap().unwrap();
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(utcp.finish(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn accept_any_over_tun_reports_the_original_destination() {
    if !can_run(
        "accept_any_over_tun_reports_the_original_destination",
        Link::Tun,
        &[],
    ) {
        return;
    }
    let _serial = serial();
    let net = Net::new(Link::Tun, 1500);
    let mut utcp = spawn_utcp(net.utcp_ns(), move |sig| async move {
        let stack = Net::open_stack(Link::Tun, 1500, false)?;
        let l = stack.bind_any(16)?;
        sig.ready();
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (mut s, _) = tokio::time::timeout(Duration::from_secs(20), l.accept())
                .await
                .map_err(io::Error::other)??;
            seen.push(s.local_addr()?);
            let (mut r, mut w) = s.split();
            tokio::io::copy(&mut r, &mut w).await?;
            tokio::io::AsyncWriteExt::shutdown(&mut w).await?;
        }
        stack.shutdown(Duration::from_secs(1)).await;
        io::Result::Ok(seen)
    });
    utcp.wait_ready();
    // The kernel routes 10.77.0.0/24 into the TUN: any address there, any port.
    for dst in ["10.77.0.99:4444", "10.77.0.200:80"] {
        let data = pattern(10_000, 1);
        let back = net
            .kernel
            .spawn(move || kernel_echo_client(sa(dst), data))
            .join()
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(back == pattern(10_000, 1));
    }
    let seen = utcp.finish();
    assert_eq!(seen, vec![sa("10.77.0.99:4444"), sa("10.77.0.200:80")]);
}

//! SYN cookies against Linux kernel clients (the listener issue, with the
//! large-windows issue's item 6): utcp's stack-wide half-open bound is held
//! by one handshake the kernel never completes on utcp's side (an nftables
//! rule drops its pure ACKs), so every later SYN is answered with a cookie;
//! kernel clients then connect and echo, and each cookie connection keeps
//! the window scale, SACK-permitted and timestamps the kernel offered, the
//! first two carried in the low bits of utcp's TSval.

use super::*;
use std::sync::Arc;
use utcp::StackExt;
use utcp_integration_tests::pattern;

/// Drops the kernel's pure ACKs (no other flag) sent to utcp's `port`.
fn nft_drop_pure_acks(ns: &Netns, iface: &str, port: u16) {
    ns.exec("nft", &["add", "table", "inet", "utcpcookie"])
        .expect("nft table");
    ns.exec(
        "nft",
        &[
            "add",
            "chain",
            "inet",
            "utcpcookie",
            "output",
            "{ type filter hook output priority 0; policy accept; }",
        ],
    )
    .expect("nft chain");
    let rule = format!("oifname \"{iface}\" tcp dport {port} tcp flags == ack counter drop");
    let mut args = vec!["add", "rule", "inet", "utcpcookie", "output"];
    args.extend(rule.split(' '));
    ns.exec("nft", &args).expect("nft rule");
}

#[test]
fn kernel_clients_connect_through_syn_cookies_over_tun() {
    let test = "kernel_clients_connect_through_syn_cookies_over_tun";
    if !can_run(test, Link::Tun, &["nft"]) {
        return;
    }
    let _serial = serial();
    let net = Net::new(Link::Tun, 1500);
    let utcp_ip = net.utcp_ip;
    type Negotiated = Vec<(bool, bool, Option<u8>)>;
    let mut utcp = spawn_utcp(net.utcp_ns(), move |sig| async move {
        let mut cfg = StackConfig::default();
        cfg.endpoint.max_half_open = 1;
        let stack = Stack::new(Net::tun_device(1500, false)?, cfg);
        let _blocker = stack.bind(SocketAddr::new(utcp_ip, 8))?;
        let l = stack.bind(SocketAddr::new(utcp_ip, 7))?;
        let seen: Arc<Mutex<Negotiated>> = Arc::default();
        let s2 = seen.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let st = s.stats();
                s2.lock()
                    .unwrap()
                    .push((st.timestamps, st.sack, st.snd_wscale));
                tokio::spawn(async move {
                    let (mut r, mut w) = s.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut w).await;
                });
            }
        });
        sig.ready();
        sig.until_stopped(Duration::from_secs(60)).await;
        let listen = stack.stats().listen;
        stack.shutdown(Duration::from_secs(1)).await;
        let seen = seen.lock().unwrap().clone();
        io::Result::Ok((listen, seen))
    });
    utcp.wait_ready();
    nft_drop_pure_acks(&net.kernel, "utun0", 8);
    // The blocker: its handshake completes on the kernel's side only.
    let blocker = net
        .kernel
        .spawn(move || {
            KTcpStream::connect_timeout(&SocketAddr::new(utcp_ip, 8), Duration::from_secs(5))
        })
        .join()
        .unwrap()
        .unwrap()
        .expect("the blocker connects (kernel side)");
    std::thread::sleep(Duration::from_millis(200));
    const CLIENTS: u64 = 5;
    for i in 0..CLIENTS {
        let data = pattern(200_000, i);
        let expect = data.clone();
        let back = net
            .kernel
            .spawn(move || kernel_echo_client(SocketAddr::new(utcp_ip, 7), data))
            .join()
            .unwrap()
            .unwrap()
            .expect("kernel client");
        assert!(back == expect, "client {i}: echoed bytes differ");
    }
    drop(blocker);
    let (listen, seen) = utcp.finish();
    println!("{listen:?}; negotiated (ts, sack, wscale): {seen:?}");
    assert!(listen.cookies_validated >= CLIENTS, "{listen:?}");
    assert_eq!(listen.cookies_refused, 0, "{listen:?}");
    assert_eq!(seen.len() as u64, CLIENTS);
    for (ts, sack, ws) in seen {
        assert!(
            ts && sack && ws.is_some(),
            "a cookie connection lost an option"
        );
    }
}

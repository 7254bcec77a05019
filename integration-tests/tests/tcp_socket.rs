//! `TcpSocket` and the explicit-stack constructors (`StackExt`) with
//! `ToSocketAddrs`: options reach the wire (read back with a sim filter),
//! accepted streams inherit the listener's, and host names resolve through
//! the in-memory network's name table.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::sim::{FilterAction, LinkConfig};
use utcp::{StackConfig, StackExt};
use utcp_integration_tests::Pair;
use utcp_proto::wire;

/// (TOS byte, SYN, ACK, RST, window, source) of every TCP packet.
type Seen = Arc<Mutex<Vec<(u8, bool, bool, bool, u16, SocketAddr)>>>;

fn pair(seed: u64, client_addrs: &[&str]) -> (Pair, Seen) {
    let link = LinkConfig::default().delay(Duration::from_millis(1));
    let p = Pair::with(
        seed,
        link,
        link,
        StackConfig::default(),
        client_addrs,
        &["10.0.0.2"],
    );
    let seen: Seen = Arc::default();
    for (from, to) in [(&p.a, &p.b), (&p.b, &p.a)] {
        let seen = seen.clone();
        p.net.set_filter(from, to, move |pkt| {
            if let Ok(s) = wire::parse_ip_tcp(pkt.data, true) {
                let f = s.tcp.flags;
                seen.lock().unwrap().push((
                    pkt.data[1],
                    f.syn(),
                    f.ack(),
                    f.rst(),
                    s.tcp.window,
                    SocketAddr::new(s.src, s.tcp.src_port),
                ));
            }
            FilterAction::Pass
        });
    }
    (p, seen)
}

#[tokio::test(start_paused = true)]
async fn bind_ip_port_zero_then_connect_uses_that_ip_and_an_ephemeral_port() {
    let (p, seen) = pair(71, &["10.0.0.1", "10.0.0.11"]);
    let l = p.server.bind("10.0.0.2:80").unwrap();
    let sock = p.client.socket_v4().unwrap();
    sock.bind("10.0.0.11:0".parse().unwrap()).unwrap();
    assert_eq!(sock.local_addr().unwrap(), "10.0.0.11:0".parse().unwrap());
    sock.set_recv_buffer_size(4096).unwrap();
    sock.set_send_buffer_size(2048).unwrap();
    sock.set_tos_v4(0xb8).unwrap();
    assert_eq!(
        (
            sock.recv_buffer_size().unwrap(),
            sock.send_buffer_size().unwrap()
        ),
        (4096, 2048)
    );
    assert_eq!(sock.tos_v4().unwrap(), 0xb8);
    let c = sock.connect("10.0.0.2:80".parse().unwrap()).await.unwrap();
    let local = c.local_addr().unwrap();
    assert_eq!(local.ip(), "10.0.0.11".parse::<IpAddr>().unwrap());
    assert_ne!(local.port(), 0);
    let (_s, peer) = l.accept().await.unwrap();
    assert_eq!(peer, local);
    let seen = seen.lock().unwrap();
    let syn = seen.iter().find(|x| x.1 && !x.2).unwrap();
    assert_eq!((syn.0, syn.4, syn.5), (0xb8, 4096, local));
    assert!(seen.iter().filter(|x| x.5 == local).all(|x| x.0 == 0xb8));
}

#[tokio::test(start_paused = true)]
async fn accepted_streams_inherit_the_listeners_settings_zero_linger_included() {
    let (p, seen) = pair(72, &["10.0.0.1"]);
    let sock = p.server.socket_v4().unwrap();
    sock.set_reuseaddr(true).unwrap();
    assert!(sock.reuseaddr().unwrap());
    sock.set_recv_buffer_size(3000).unwrap();
    sock.set_tos_v4(0x28).unwrap();
    sock.set_ttl(17).unwrap();
    sock.set_zero_linger().unwrap();
    sock.set_nodelay(true).unwrap();
    sock.set_keepalive(true).unwrap();
    sock.bind("0.0.0.0:90".parse().unwrap()).unwrap();
    let l = sock.listen(16).unwrap();
    assert_eq!(l.local_addr().unwrap(), "0.0.0.0:90".parse().unwrap());
    assert_eq!(l.ttl().unwrap(), 17);
    let mut c = p.client.connect("server:90").await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    assert_eq!(s.linger().unwrap(), Some(Duration::ZERO));
    assert_eq!(s.ttl().unwrap(), 17);
    assert!(s.nodelay().unwrap() && s.keepalive().unwrap());
    assert!(!c.nodelay().unwrap() && !c.keepalive().unwrap());
    {
        let seen = seen.lock().unwrap();
        let syn_ack = seen.iter().find(|x| x.1 && x.2).unwrap();
        assert_eq!((syn_ack.0, syn_ack.4), (0x28, 3000));
    }
    // Zero linger inherited: dropping the accepted stream resets.
    drop(s);
    let mut buf = [0u8; 4];
    let err = c.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert!(seen.lock().unwrap().iter().any(|x| x.3));
}

#[tokio::test(start_paused = true)]
async fn settings_that_do_nothing_are_refused_and_bad_values_rejected() {
    let (p, _seen) = pair(73, &["10.0.0.1"]);
    let sock = p.client.socket_v4().unwrap();
    assert!(!sock.nodelay().unwrap(), "Nagle on by default");
    sock.set_nodelay(true).unwrap();
    assert!(sock.nodelay().unwrap());
    sock.set_keepalive(false).unwrap();
    assert!(!sock.keepalive().unwrap());
    assert_eq!(
        sock.set_tcp_keepalive(&utcp::TcpKeepalive::new().with_retries(0))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert!(!sock.keepalive().unwrap());
    assert_eq!(
        sock.set_tcp_user_timeout(Some(Duration::ZERO))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        sock.set_reuseaddr(false).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    #[allow(deprecated)]
    {
        assert_eq!(
            sock.set_linger(Some(Duration::from_secs(1)))
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
        sock.set_linger(Some(Duration::ZERO)).unwrap();
        assert_eq!(sock.linger().unwrap(), Some(Duration::ZERO));
        sock.set_linger(None).unwrap();
        assert_eq!(sock.linger().unwrap(), None);
    }
    for e in [
        sock.set_recv_buffer_size(0),
        sock.set_send_buffer_size(0),
        sock.set_ttl(0),
        sock.set_ttl(256),
        sock.set_tos_v4(256),
        sock.set_tclass_v6(300),
    ] {
        assert_eq!(e.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    // Defaults are the stack's.
    assert_eq!(sock.recv_buffer_size().unwrap(), 64 * 1024);
    assert_eq!(sock.ttl().unwrap(), 64);
    assert_eq!(sock.tos_v4().unwrap(), 0);
    assert!(sock.take_error().unwrap().is_none());
    // Binding: family, ownership, once.
    let bad = sock.bind("[fd00::1]:0".parse().unwrap()).unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput);
    let bad = sock.bind("10.9.9.9:0".parse().unwrap()).unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::AddrNotAvailable);
    sock.bind("10.0.0.1:0".parse().unwrap()).unwrap();
    let again = sock.bind("10.0.0.1:0".parse().unwrap()).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::InvalidInput);
    let v6 = sock
        .connect("[fd00::2]:80".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(v6.kind(), ErrorKind::InvalidInput);
}

#[tokio::test(start_paused = true)]
async fn ipv6_socket_sets_the_traffic_class_and_listens_dual_stack() {
    let (p, seen) = pair(74, &["10.0.0.1", "fd00::1"]);
    // The server needs an IPv6 address too: a second server-side host.
    let b6 = p.net.add_host("server6", &["fd00::2".parse().unwrap()]);
    p.net.link(&p.a, &b6, LinkConfig::default());
    let tclass: Arc<Mutex<Vec<u8>>> = Arc::default();
    let t = tclass.clone();
    p.net.set_filter(&p.a, &b6, move |pkt| {
        t.lock()
            .unwrap()
            .push(((pkt.data[0] & 0x0f) << 4) | (pkt.data[1] >> 4));
        FilterAction::Pass
    });
    let server6 = utcp::Stack::new(b6, StackConfig::default());
    let l6 = server6.bind("[::]:80").unwrap();
    let sock = p.client.socket_v6().unwrap();
    sock.set_tclass_v6(0x2e).unwrap();
    assert_eq!(sock.tclass_v6().unwrap(), 0x2e);
    assert_eq!(sock.local_addr().unwrap(), "[::]:0".parse().unwrap());
    let c = sock.connect("[fd00::2]:80".parse().unwrap()).await.unwrap();
    let (_s, peer) = l6.accept().await.unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    let tclass = tclass.lock().unwrap().clone();
    assert!(
        tclass.len() >= 2 && tclass.iter().all(|&t| t == 0x2e),
        "{tclass:?}"
    );
    drop(seen);
    // An unbound v6 socket listens on [::] with a free port.
    let l = p.server.socket_v6().unwrap().listen(8).unwrap();
    let addr = l.local_addr().unwrap();
    assert!(addr.ip().is_unspecified() && addr.port() != 0);
    let c4 = p.client.connect(("10.0.0.2", addr.port())).await.unwrap();
    let (s, peer) = l.accept().await.unwrap();
    assert_eq!(
        peer,
        SocketAddr::new(
            "10.0.0.1"
                .parse::<Ipv4Addr>()
                .unwrap()
                .to_ipv6_mapped()
                .into(),
            c4.local_addr().unwrap().port()
        )
    );
    assert_eq!(
        s.stats().mss,
        1448,
        "the IPv4 MSS on a dual-stack listener (1460 less 12 for timestamps)"
    );
}

#[tokio::test(start_paused = true)]
async fn to_socket_addrs_forms_resolve_through_the_name_table_then_literals() {
    let (p, _seen) = pair(75, &["10.0.0.1"]);
    p.net.add_name("db", &["10.0.0.2".parse().unwrap()]);
    let l = p.server.bind(("0.0.0.0", 5432)).unwrap();
    utcp_integration_tests::spawn_echo(l);
    let port = 5432u16;
    let ip: Ipv4Addr = "10.0.0.2".parse().unwrap();
    let addr = SocketAddr::new(ip.into(), port);
    let mut streams = vec![
        p.client.connect("db:5432").await.unwrap(),
        p.client.connect(String::from("server:5432")).await.unwrap(),
        p.client.connect(("db", port)).await.unwrap(),
        p.client.connect((String::from("db"), port)).await.unwrap(),
        p.client.connect("10.0.0.2:5432").await.unwrap(),
        p.client.connect(addr).await.unwrap(),
        p.client.connect(SocketAddrV4::new(ip, port)).await.unwrap(),
        p.client.connect((IpAddr::from(ip), port)).await.unwrap(),
        p.client.connect((ip, port)).await.unwrap(),
        p.client.connect(&addr).await.unwrap(),
        p.client.connect(&[addr][..]).await.unwrap(),
    ];
    for s in &mut streams {
        assert_eq!(s.peer_addr().unwrap(), addr);
        s.write_all(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"ping");
    }
    let unknown = p.client.connect("nowhere:1").await.unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound);
    assert!(unknown.to_string().contains("DNS"), "{unknown}");
    let bad_port = p.client.connect("db:http").await.unwrap_err();
    assert_eq!(bad_port.kind(), ErrorKind::InvalidInput);
    let none: &[SocketAddr] = &[];
    let empty = p.client.connect(none).await.unwrap_err();
    assert_eq!(empty.kind(), ErrorKind::InvalidInput);
    // Tried in turn: the first refuses (nobody on port 1), the second works.
    let two = [SocketAddr::new(ip.into(), 1), addr];
    let s = p.client.connect(&two[..]).await.unwrap();
    assert_eq!(s.peer_addr().unwrap(), addr);
}

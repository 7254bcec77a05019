//! Stack-level socket options and the ambient stack, on the in-memory
//! network in virtual time: what leaves on the wire is read back with a sim
//! filter.

use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use utcp_runtime::proto::{CongestionAlgorithm, wire};
use utcp_runtime::sim::{FilterAction, LinkConfig, SimDevice, SimNetwork};
use utcp_runtime::{SocketOpts, Stack, StackConfig};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Two hosts; the client owns two IPv4 addresses. Every packet either side
/// sends is recorded (TOS byte, SYN flag, ACK flag, window, source).
#[allow(clippy::type_complexity)]
fn pair() -> (
    SimNetwork,
    Stack,
    Stack,
    Arc<Mutex<Vec<(u8, bool, bool, u16, SocketAddr)>>>,
) {
    let net = SimNetwork::new(3);
    let a = net.add_host("client", &[ip("10.0.0.1"), ip("10.0.0.11")]);
    let b = net.add_host("server", &[ip("10.0.0.2")]);
    net.link(&a, &b, LinkConfig::default());
    let seen = Arc::new(Mutex::new(Vec::new()));
    record(&net, &a, &b, &seen);
    record(&net, &b, &a, &seen);
    let cfg = || StackConfig {
        seed: Some(1),
        ..StackConfig::default()
    };
    (net, Stack::new(a, cfg()), Stack::new(b, cfg()), seen)
}

#[allow(clippy::type_complexity)]
fn record(
    net: &SimNetwork,
    from: &SimDevice,
    to: &SimDevice,
    seen: &Arc<Mutex<Vec<(u8, bool, bool, u16, SocketAddr)>>>,
) {
    let seen = seen.clone();
    net.set_filter(from, to, move |p| {
        if let Ok(seg) = wire::parse_ip_tcp(p.data, true) {
            seen.lock().unwrap().push((
                p.data[1],
                seg.tcp.flags.syn(),
                seg.tcp.flags.ack(),
                seg.tcp.window,
                SocketAddr::new(seg.src, seg.tcp.src_port),
            ));
        }
        FilterAction::Pass
    });
}

#[tokio::test(start_paused = true)]
async fn connect_with_from_an_ip_with_port_zero_picks_an_ephemeral_port() {
    let (_net, client, server, seen) = pair();
    let l = server.listen("10.0.0.2:80".parse().unwrap()).unwrap();
    let opts = SocketOpts {
        recv_buffer: Some(4096),
        tos: Some(0xb8),
        ..SocketOpts::default()
    };
    let c = client
        .connect_with(
            Some("10.0.0.11:0".parse().unwrap()),
            "10.0.0.2:80".parse().unwrap(),
            &opts,
        )
        .unwrap();
    poll_fn(|cx| c.poll_connected(cx)).await.unwrap();
    let s = poll_fn(|cx| l.poll_accept(cx)).await.unwrap();
    assert_eq!(c.local_addr().ip(), ip("10.0.0.11"));
    assert_ne!(c.local_addr().port(), 0);
    assert_eq!(s.peer_addr(), c.local_addr());
    let seen = seen.lock().unwrap();
    let syn = seen.iter().find(|p| p.1 && !p.2).expect("a SYN");
    assert_eq!((syn.0, syn.3, syn.4), (0xb8, 4096, c.local_addr()));
    // Every segment of the client carries the TOS byte, none of the server's.
    for p in seen.iter() {
        let want = if p.4 == c.local_addr() { 0xb8 } else { 0 };
        assert_eq!(p.0, want, "{p:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn connect_with_a_fixed_port_uses_it_and_unspecified_ip_picks_ours() {
    let (_net, client, server, _seen) = pair();
    let _l = server.listen("10.0.0.2:80".parse().unwrap()).unwrap();
    let c = client
        .connect_with(
            Some("0.0.0.0:4444".parse().unwrap()),
            "10.0.0.2:80".parse().unwrap(),
            &SocketOpts::default(),
        )
        .unwrap();
    poll_fn(|cx| c.poll_connected(cx)).await.unwrap();
    assert_eq!(c.local_addr(), "10.0.0.1:4444".parse().unwrap());
    let err = client
        .connect_with(
            Some("10.0.0.99:0".parse().unwrap()),
            "10.0.0.2:80".parse().unwrap(),
            &SocketOpts::default(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrNotAvailable);
    let zero = SocketOpts {
        send_buffer: Some(0),
        ..SocketOpts::default()
    };
    let err = client
        .connect_with(None, "10.0.0.2:80".parse().unwrap(), &zero)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(client.stats().connections, 1, "no slot leaked");
}

#[tokio::test(start_paused = true)]
async fn listen_with_gives_accepted_connections_its_options_before_the_syn_ack() {
    let (_net, client, server, seen) = pair();
    let opts = SocketOpts {
        recv_buffer: Some(3000),
        send_buffer: Some(1000),
        tos: Some(0x28),
        ttl: Some(9),
        congestion: Some(CongestionAlgorithm::NewReno),
        nodelay: Some(true),
        keepalive: Some(true),
        keepalive_time: Some(Duration::from_secs(30)),
        keepalive_interval: Some(Duration::from_secs(3)),
        keepalive_retries: Some(4),
        user_timeout: Some(Duration::from_secs(10)),
    };
    let l = server
        .listen_with("0.0.0.0:81".parse().unwrap(), 0, false, &opts)
        .unwrap();
    assert_eq!(l.opts(), opts);
    let c = client
        .connect_start("10.0.0.2:81".parse().unwrap())
        .unwrap();
    poll_fn(|cx| c.poll_connected(cx)).await.unwrap();
    let s = poll_fn(|cx| l.poll_accept(cx)).await.unwrap();
    assert_eq!(s.ttl(), 9);
    assert_eq!(s.congestion(), CongestionAlgorithm::NewReno);
    assert_eq!(s.stats().congestion, CongestionAlgorithm::NewReno);
    assert_eq!(c.congestion(), CongestionAlgorithm::Cubic, "the default");
    assert!(s.keepalive() && !c.keepalive());
    assert!(s.nodelay() && !c.nodelay(), "Nagle on by default");
    assert_eq!(
        s.keepalive_params(),
        (Duration::from_secs(30), Duration::from_secs(3), 4)
    );
    assert_eq!(s.user_timeout(), Some(Duration::from_secs(10)));
    assert_eq!(c.user_timeout(), None);
    let seen = seen.lock().unwrap();
    let syn_ack = seen.iter().find(|p| p.1 && p.2).expect("a SYN-ACK");
    assert_eq!((syn_ack.0, syn_ack.3), (0x28, 3000));
}

#[tokio::test(start_paused = true)]
async fn lookup_host_reads_the_sim_name_table() {
    let (net, client, _server, _seen) = pair();
    net.add_name("db", &[ip("10.0.0.2")]);
    assert_eq!(client.lookup_host("server"), Some(vec![ip("10.0.0.2")]));
    assert_eq!(client.lookup_host("db"), Some(vec![ip("10.0.0.2")]));
    assert_eq!(client.lookup_host("nowhere"), None);
}

#[tokio::test(start_paused = true)]
async fn enter_guards_nest_and_restore() {
    let (_net, client, server, _seen) = pair();
    assert!(Stack::try_current().is_none());
    let err = Stack::current().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
    assert!(err.to_string().contains("enter"), "{err}");
    let outer = client.enter();
    assert_eq!(
        Stack::current().unwrap().local_addrs(),
        client.local_addrs()
    );
    {
        let _inner = server.enter();
        assert_eq!(
            Stack::current().unwrap().local_addrs(),
            server.local_addrs()
        );
    }
    assert_eq!(
        Stack::current().unwrap().local_addrs(),
        client.local_addrs()
    );
    drop(outer);
    assert!(Stack::try_current().is_none());
}

#[test]
fn scope_follows_a_task_across_workers_and_leaves_threads_clean() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_net, client, _server, _seen) = pair();
        let want = client.local_addrs();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let want = want.clone();
                tokio::spawn(client.scope(async move {
                    for _ in 0..20 {
                        tokio::task::yield_now().await;
                        assert_eq!(Stack::current().unwrap().local_addrs(), want);
                    }
                }))
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // Unscoped tasks on the same workers see no stack.
        let bare = tokio::spawn(async { Stack::try_current().is_none() });
        assert!(bare.await.unwrap());
    });
}

#[tokio::test(start_paused = true)]
async fn try_new_rejects_invalid_and_silently_overwritten_configs() {
    use utcp_runtime::proto::ConfigError;
    let net = SimNetwork::new(9);
    let dev = net.add_host("h", &[ip("10.0.0.1")]);
    let with = |f: &dyn Fn(&mut StackConfig)| {
        let mut c = StackConfig::default();
        f(&mut c);
        Stack::try_new(dev.clone(), c).map(|_| ())
    };
    assert_eq!(with(&|_| {}), Ok(()));
    assert_eq!(
        with(&|c| c.endpoint.ephemeral_ports = std::ops::RangeInclusive::new(60000, 50000)),
        Err(ConfigError::BadPortRange {
            start: 60000,
            end: 50000
        })
    );
    assert_eq!(
        with(&|c| c.endpoint.conn.recv_buffer = 0),
        Err(ConfigError::Zero("recv_buffer"))
    );
    assert_eq!(
        with(&|c| c.mss_limit = Some(0)),
        Err(ConfigError::Zero("mss_limit"))
    );
    assert!(matches!(
        with(&|c| c.endpoint.conn.mss = 1000),
        Err(ConfigError::Overwritten {
            field: "endpoint.conn.mss",
            ..
        })
    ));
    assert!(matches!(
        with(&|c| c.endpoint.secret = [1; 16]),
        Err(ConfigError::Overwritten {
            field: "endpoint.secret",
            ..
        })
    ));
    // The error names the field.
    let e = with(&|c| c.endpoint.conn.mss = 0).unwrap_err();
    assert!(e.to_string().contains("endpoint.conn.mss"), "{e}");
}

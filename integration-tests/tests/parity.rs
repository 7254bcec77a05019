//! tokio parity (issue 11): one module of cases written against tokio's API
//! (`parity/cases.rs`), run twice with the same assertions — under
//! `tokio::net` on kernel loopback (no root needed) and under `utcp::net` on
//! the in-memory network in virtual time — then the utcp-only parts: the
//! ambient stack (`enter`, `scope`), the name table, and the MSS of an IPv4
//! connection on a dual-stack listener.

// Loading one file twice, under two different `net`s, is the point.
#![allow(clippy::duplicate_mod)]

/// The cases under `tokio::net`.
#[path = "parity"]
mod on_tokio {
    pub use tokio::net;
    pub mod cases;
}

/// The same cases under `utcp::net`.
#[path = "parity"]
mod on_utcp {
    pub use utcp::net;
    pub mod cases;
}

use std::time::Duration;
use utcp::sim::{LinkConfig, SimNetwork};
use utcp::{Stack, StackConfig};

/// The in-memory counterpart of loopback: one host owning 127.0.0.1,
/// 127.0.0.2 and ::1, linked to itself.
fn loopback_stack(seed: u64) -> (SimNetwork, Stack) {
    let net = SimNetwork::new(seed);
    let addrs = ["127.0.0.1", "127.0.0.2", "::1"].map(|a| a.parse().unwrap());
    let host = net.add_host("localhost", &addrs);
    net.link(
        &host,
        &host,
        LinkConfig::default().delay(Duration::from_micros(50)),
    );
    let stack = Stack::new(
        host,
        StackConfig {
            seed: Some(seed),
            ..StackConfig::default()
        },
    );
    (net, stack)
}

/// Every case at most this long (kernel loopback runs in real time).
const LIMIT: Duration = Duration::from_secs(20);

macro_rules! parity {
    ($($case:ident),* $(,)?) => {
        /// The cases on the kernel's TCP over loopback, through `tokio::net`.
        mod kernel_loopback {
            $(
                #[tokio::test]
                async fn $case() {
                    tokio::time::timeout(super::LIMIT, super::on_tokio::cases::$case())
                        .await
                        .expect("case timed out")
                        .unwrap();
                }
            )*
        }

        /// The cases on utcp's in-memory network, through `utcp::net`, in
        /// virtual time, with the stack entered as the ambient one.
        mod in_memory {
            $(
                #[tokio::test(start_paused = true)]
                async fn $case() {
                    let (_net, stack) = super::loopback_stack(11);
                    let _guard = stack.enter();
                    tokio::time::timeout(super::LIMIT, super::on_utcp::cases::$case())
                        .await
                        .expect("case timed out")
                        .unwrap();
                }
            )*
        }
    };
}

parity!(
    to_socket_addrs_forms_connect,
    try_read_would_block_then_peek_does_not_consume,
    try_calls_vectored_and_buf,
    vectored_write_and_readiness,
    two_readable_waiters_are_both_woken,
    socket_options_on_streams,
    zero_linger_then_drop_sends_rst,
    halves_and_reunite,
    tcp_socket_bind_ip_port_zero_then_connect,
    tcp_socket_listen_and_v6,
    dual_stack_listener_accepts_ipv4,
);

/// utcp only: the ambient stack and the name table.
mod ambient {
    use super::loopback_stack;
    use std::io::ErrorKind;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use utcp::net::{TcpListener, TcpSocket, TcpStream};
    use utcp::sim::{LinkConfig, SimNetwork};
    use utcp::{Stack, StackConfig};

    #[tokio::test(start_paused = true)]
    async fn a_future_made_under_enter_is_awaited_after_the_guard_is_dropped() {
        let (_net, stack) = loopback_stack(21);
        let (bind, connect_later) = {
            let _guard = stack.enter();
            let bind = TcpListener::bind("127.0.0.1:7");
            (bind, |a| TcpStream::connect(a))
        };
        assert!(Stack::try_current().is_none(), "the guard restored nothing");
        let l = bind.await.unwrap();
        // Made without a stack (and none at the poll either): NotConnected.
        let e = connect_later("127.0.0.1:7").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotConnected);
        let connecting = {
            let _guard = stack.enter();
            TcpStream::connect("127.0.0.1:7")
        };
        let c = connecting.await.unwrap();
        let (_s, peer) = l.accept().await.unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn guards_nest_and_the_innermost_wins() {
        let (_n1, outer) = loopback_stack(22);
        let net = SimNetwork::new(23);
        let other = Stack::new(
            net.add_host("other", &["10.9.0.1".parse().unwrap()]),
            StackConfig::default(),
        );
        let _g1 = outer.enter();
        {
            let _g2 = other.enter();
            let l = TcpListener::bind("0.0.0.0:80").await.unwrap();
            assert_eq!(l.local_addr().unwrap(), "0.0.0.0:80".parse().unwrap());
            // 127.0.0.1 is not `other`'s.
            let e = TcpListener::bind("127.0.0.1:80").await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::AddrNotAvailable);
        }
        TcpListener::bind("127.0.0.1:80").await.unwrap();
    }

    #[test]
    fn scope_works_on_a_multi_thread_runtime_for_tasks_that_move() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (_net, stack) = loopback_stack(24);
            let l = stack
                .scope(TcpListener::bind("127.0.0.1:9000"))
                .await
                .unwrap();
            let server = tokio::spawn(async move {
                for _ in 0..4 {
                    let (mut s, _) = l.accept().await.unwrap();
                    tokio::spawn(async move {
                        let (mut r, mut w) = s.split();
                        tokio::io::copy(&mut r, &mut w).await.unwrap();
                    });
                }
            });
            let clients: Vec<_> = (0..4u8)
                .map(|i| {
                    tokio::spawn(stack.scope(async move {
                        let mut s = TcpStream::connect("127.0.0.1:9000").await.unwrap();
                        for k in 0..20u8 {
                            // Yield between steps so the task may resume on
                            // the other worker; the scope follows it.
                            tokio::task::yield_now().await;
                            assert!(Stack::try_current().is_some());
                            s.write_all(&[i, k]).await.unwrap();
                            let mut b = [0u8; 2];
                            s.read_exact(&mut b).await.unwrap();
                            assert_eq!(b, [i, k]);
                        }
                        // A socket made inside the scope uses its stack.
                        TcpSocket::new_v4().unwrap();
                    }))
                })
                .collect();
            for c in clients {
                tokio::time::timeout(Duration::from_secs(30), c)
                    .await
                    .expect("client timed out")
                    .unwrap();
            }
            server.await.unwrap();
        });
    }

    #[tokio::test(start_paused = true)]
    async fn connect_db_resolves_through_the_sim_name_table() {
        let net = SimNetwork::new(25);
        let app = net.add_host("app", &["10.0.0.1".parse().unwrap()]);
        let db = net.add_host("db", &["10.0.0.5".parse().unwrap()]);
        net.link(&app, &db, LinkConfig::default());
        let app = Stack::new(app, StackConfig::default());
        let db = Stack::new(db, StackConfig::default());
        let l = db.scope(TcpListener::bind("0.0.0.0:5432")).await.unwrap();
        let _guard = app.enter();
        let c = TcpStream::connect("db:5432").await.unwrap();
        assert_eq!(c.peer_addr().unwrap(), "10.0.0.5:5432".parse().unwrap());
        let (_s, _) = l.accept().await.unwrap();
        let addrs: Vec<_> = utcp::net::lookup_host(("db", 1)).await.unwrap().collect();
        assert_eq!(addrs, ["10.0.0.5:1".parse().unwrap()]);
        // Never system DNS: a name the table lacks is NotFound.
        let e = TcpStream::connect("example.com:80").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[tokio::test(start_paused = true)]
    async fn without_an_ambient_stack_calls_fail_with_not_connected() {
        assert!(Stack::try_current().is_none());
        for e in [
            TcpStream::connect("127.0.0.1:1").await.unwrap_err(),
            TcpListener::bind("127.0.0.1:0").await.unwrap_err(),
            TcpSocket::new_v4().unwrap_err(),
            TcpSocket::new_v6().unwrap_err(),
            utcp::net::lookup_host("db:1").await.err().unwrap(),
        ] {
            assert_eq!(e.kind(), ErrorKind::NotConnected);
            assert!(e.to_string().contains("enter"), "{e}");
        }
    }

    /// Compile-time: a scoped future is Send (spawnable on a multi-thread
    /// runtime); the stack and the name-resolving futures are Send too.
    #[allow(dead_code)]
    fn scoped_futures_are_send(stack: &Stack) {
        fn send<T: Send>(_: &T) {}
        fn send_sync<T: Send + Sync + Unpin>() {}
        send_sync::<Stack>();
        send(&stack.scope(TcpStream::connect("db:5432")));
        send(&stack.scope(TcpListener::bind(("0.0.0.0", 80))));
        send(&utcp::net::lookup_host(String::from("db:1")));
    }

    #[tokio::test(start_paused = true)]
    async fn dual_stack_listener_gives_an_ipv4_client_the_ipv4_mss() {
        let (_net, stack) = loopback_stack(26); // MTU 1500
        let _guard = stack.enter();
        let l = TcpListener::bind("[::]:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        // 1460, less the 12 bytes the timestamps option takes per segment.
        assert!(s.stats().timestamps);
        assert_eq!(s.stats().mss, 1448);
        assert_eq!(c.stats().mss, 1448);
        // An IPv6 client of the same listener gets the IPv6 MSS.
        let c6 = TcpStream::connect(("::1", port)).await.unwrap();
        let (s6, _) = l.accept().await.unwrap();
        assert_eq!((s6.stats().mss, c6.stats().mss), (1428, 1428));
    }
}

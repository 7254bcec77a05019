//! The adapters behind utcp's cargo features, end to end on the in-memory
//! network: hyper-util's legacy `Client` through `utcp::hyper::UtcpConnector`,
//! tonic-health over `utcp::tonic::incoming`, tokio-rustls on utcp streams,
//! and the `stream` feature's `TcpListener::incoming`. (axum is served to
//! curl over a TUN device in `kernel::extra`.)

use futures::StreamExt;
use futures::stream::FusedStream;
use http_body_util::{BodyExt, Empty, Full};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::StackExt;
use utcp::hyper::{UtcpConnectInfo, UtcpConnector, UtcpIo};
use utcp::sim::LinkConfig;
use utcp_integration_tests::{Pair, init_tracing, pattern};

/// 2 % loss each way, a few milliseconds of delay.
fn lossy() -> LinkConfig {
    LinkConfig::default()
        .delay(Duration::from_millis(3))
        .loss(0.02)
}

/// A hyper HTTP/1.1 server on `listener` answering every request with
/// `"<path> served"`, counting the connections it accepted.
fn spawn_counting_http(listener: utcp::TcpListener, accepted: Arc<AtomicUsize>) {
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let body = format!("{} served", req.uri().path());
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            bytes::Bytes::from(body),
                        )))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(UtcpIo::new(s), svc)
                    .await;
            });
        }
    });
}

#[tokio::test(start_paused = true)]
async fn hyper_util_client_makes_20_keep_alive_requests_on_one_connection_over_loss() {
    init_tracing();
    let p = Pair::new(1601, lossy());
    let accepted = Arc::new(AtomicUsize::new(0));
    spawn_counting_http(p.server.bind("10.0.0.2:80").unwrap(), accepted.clone());

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<bytes::Bytes>>(UtcpConnector::new(p.client.clone()));
    let mut ends = Vec::new();
    for i in 0..20 {
        // "server" is the in-memory network's name for 10.0.0.2.
        let uri = format!("http://server/req/{i}").parse().unwrap();
        let res = tokio::time::timeout(Duration::from_secs(60), client.get(uri))
            .await
            .expect("response within 60 s")
            .unwrap();
        assert_eq!(res.status(), 200);
        let info = *res
            .extensions()
            .get::<UtcpConnectInfo>()
            .expect("the connector's connect info");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, format!("/req/{i} served").as_bytes());
        ends.push(info);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection for all");
    assert!(ends.iter().all(|e| *e == ends[0]), "one 4-tuple: {ends:?}");
    assert_eq!(ends[0].remote, p.server_addr(80));
    assert_eq!(
        ends[0].local.ip(),
        "10.0.0.1".parse::<std::net::IpAddr>().unwrap()
    );
    println!(
        "20 requests on {:?}; client tx_packets {}, server accepted {}",
        ends[0],
        p.client.stats().tx_packets,
        accepted.load(Ordering::SeqCst)
    );
}

#[tokio::test(start_paused = true)]
async fn utcp_connector_errors_are_clear() {
    use tower_service::Service;
    let p = Pair::new(1602, LinkConfig::default());
    let mut c = UtcpConnector::new(p.client.clone());
    let err = |r: Result<UtcpIo, std::io::Error>| r.unwrap_err().kind();
    // A relative URI has no host.
    let e = err(c.call("/just/a/path".parse().unwrap()).await);
    assert_eq!(e, std::io::ErrorKind::InvalidInput);
    // https is refused by default: the connector speaks plain TCP.
    let e = err(c.call("https://server/".parse().unwrap()).await);
    assert_eq!(e, std::io::ErrorKind::Unsupported);
    // A name nobody registered.
    let e = err(c.call("http://nowhere/".parse().unwrap()).await);
    assert_eq!(e, std::io::ErrorKind::NotFound);
    // Port 80 by default, refused since nothing listens there.
    let e = err(c.call("http://10.0.0.2/".parse().unwrap()).await);
    assert_eq!(e, std::io::ErrorKind::ConnectionRefused);
    // With enforce_http off, https goes to 443 in plain TCP (for a TLS layer).
    let _l = p.server.bind("10.0.0.2:443").unwrap();
    c.enforce_http(false);
    let io = c.call("https://server/".parse().unwrap()).await.unwrap();
    assert_eq!(io.get_ref().peer_addr().unwrap(), p.server_addr(443));
}

#[tokio::test(start_paused = true)]
async fn tonic_health_check_and_watch_over_utcp_incoming() {
    use tonic_health::ServingStatus;
    use tonic_health::pb::health_check_response::ServingStatus as Wire;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    init_tracing();
    let p = Pair::new(1603, lossy());
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("utcp.Echo", ServingStatus::Serving)
        .await;
    let incoming = utcp::tonic::incoming(p.server.bind("10.0.0.2:50051").unwrap());
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(incoming),
    );

    // The client: hyper-util's legacy Client over HTTP/2 with utcp's connector.
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build::<_, tonic::body::Body>(UtcpConnector::new(p.client.clone()));
    let mut client = HealthClient::with_origin(http, "http://server:50051".parse().unwrap());
    let req = || HealthCheckRequest {
        service: "utcp.Echo".into(),
    };

    // Unary: Check.
    let res = client.check(req()).await.unwrap().into_inner();
    assert_eq!(res.status(), Wire::Serving);
    let unknown = client
        .check(HealthCheckRequest {
            service: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    // Server streaming: Watch sees the status now, then each change.
    let mut watch = client.watch(req()).await.unwrap().into_inner();
    let first = watch.message().await.unwrap().expect("the current status");
    assert_eq!(first.status(), Wire::Serving);
    reporter
        .set_service_status("utcp.Echo", ServingStatus::NotServing)
        .await;
    let second = tokio::time::timeout(Duration::from_secs(30), watch.message())
        .await
        .expect("the change within 30 s")
        .unwrap()
        .expect("a second status");
    assert_eq!(second.status(), Wire::NotServing);
    reporter
        .set_service_status("utcp.Echo", ServingStatus::Serving)
        .await;
    let third = watch.message().await.unwrap().expect("a third status");
    assert_eq!(third.status(), Wire::Serving);

    // Shutting the server's stack down closes the listener: the incoming
    // stream ends and serve_with_incoming returns Ok.
    p.server.shutdown(Duration::from_secs(1)).await;
    let served = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve_with_incoming returns once the listener closed")
        .unwrap();
    assert!(served.is_ok(), "{served:?}");
}

#[tokio::test(start_paused = true)]
async fn tls_handshake_and_1_mib_echo_over_loss() {
    use tokio_rustls::rustls::{self, pki_types};
    init_tracing();
    let p = Pair::new(1604, lossy());
    let cert = rcgen::generate_simple_self_signed(vec!["server.utcp".to_owned()]).unwrap();
    let cert_der = cert.cert.der().clone();
    let key = pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let provider = || Arc::new(rustls::crypto::ring::default_provider());
    let server_cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client_cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();

    let listener = p.server.bind("10.0.0.2:443").unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await?;
        let tls = acceptor.accept(s).await?;
        let (mut r, mut w) = tokio::io::split(tls);
        let n = tokio::io::copy(&mut r, &mut w).await?;
        w.shutdown().await?;
        std::io::Result::Ok(n)
    });

    let s = p.client.connect("server:443").await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_cfg));
    let name = pki_types::ServerName::try_from("server.utcp").unwrap();
    let tls = connector.connect(name, s).await.unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let data = pattern(1 << 20, 1604);
    let (mut r, mut w) = tokio::io::split(tls);
    let payload = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&payload).await?;
        w.shutdown().await?;
        std::io::Result::Ok(())
    });
    let mut back = Vec::with_capacity(data.len());
    tokio::time::timeout(Duration::from_secs(300), r.read_to_end(&mut back))
        .await
        .expect("echo within 300 s")
        .unwrap();
    writer.await.unwrap().unwrap();
    assert_eq!(server.await.unwrap().unwrap(), data.len() as u64);
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed bytes differ");
    println!(
        "1 MiB TLS echo byte-exact; packets sent: client {}, server {}",
        p.client.stats().tx_packets,
        p.server.stats().tx_packets
    );
}

#[tokio::test(start_paused = true)]
async fn incoming_yields_connections_and_ends_when_the_listener_closes() {
    let p = Pair::new(1605, LinkConfig::default());
    let mut incoming = p.server.bind("10.0.0.2:7").unwrap().incoming();
    assert_eq!(incoming.get_ref().local_addr().unwrap(), p.server_addr(7));
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(p.client.connect("10.0.0.2:7").await.unwrap());
    }
    for c in &clients {
        let s = incoming.next().await.expect("a connection").unwrap();
        assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
    }
    assert!(!incoming.is_terminated());
    p.server.shutdown(Duration::from_secs(1)).await;
    assert!(
        incoming.next().await.is_none(),
        "ends once the listener closed"
    );
    assert!(incoming.is_terminated());
    assert!(incoming.next().await.is_none(), "and stays ended");
}

/// Counts the events whose message contains `needle`.
struct CountEvents {
    needle: &'static str,
    seen: Arc<AtomicUsize>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" {
                    self.0 = format!("{v:?}");
                }
            }
        }
        let mut m = Message(String::new());
        event.record(&mut m);
        if m.0.contains(self.needle) {
            self.seen.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn axum_serve_on_a_closed_listener_logs_once_and_waits() {
    use axum::{Router, extract::ConnectInfo, routing::get};
    use tracing_subscriber::layer::SubscriberExt;
    use utcp::axum::UtcpConnectInfo;
    let seen = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(CountEvents {
        needle: "utcp listener closed",
        seen: seen.clone(),
    });
    // This thread's default: the current-thread runtime polls every task here.
    let _guard = tracing::subscriber::set_default(subscriber);
    let p = Pair::new(1606, LinkConfig::default());
    let app = Router::new().route(
        "/",
        get(|ConnectInfo(c): ConnectInfo<UtcpConnectInfo>| async move { c.remote.to_string() }),
    );
    let listener = p.server.bind("10.0.0.2:80").unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<UtcpConnectInfo>(),
        )
        .await
    });
    let mut s = p.client.connect("10.0.0.2:80").await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: server\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response.ends_with(&s.local_addr().unwrap().to_string()),
        "{response}"
    );

    p.server.shutdown(Duration::from_secs(1)).await;
    // A minute of virtual time: a retry loop would log every second.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(seen.load(Ordering::SeqCst), 1, "logged once");
    assert!(
        !server.is_finished(),
        "axum::serve waits, it does not return"
    );
    server.abort();
}

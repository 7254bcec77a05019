use http_body_util::BodyExt;
use std::time::Duration;
use utcp::StackExt;
use utcp::sim::LinkConfig;
use utcp_integration_tests::{Pair, spawn_http};

const PAGE: &str = "<html><body>served by hyper over utcp</body></html>\n";

#[tokio::test(start_paused = true)]
async fn hyper_server_and_client_over_utcp() {
    let p = Pair::new(
        61,
        LinkConfig::default()
            .delay(Duration::from_millis(3))
            .loss(0.02),
    );
    spawn_http(p.server.bind(p.server_addr(80)).unwrap(), PAGE);
    let s = p.client.connect(p.server_addr(80)).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    for _ in 0..3 {
        let req = hyper::Request::get("/")
            .header("host", "10.0.0.2")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], PAGE.as_bytes());
    }
}

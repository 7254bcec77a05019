use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::sim::{FilterAction, LinkConfig};
use utcp::{StackExt, State};
use utcp_integration_tests::{Pair, wait_until};
use utcp_proto::wire;

fn link() -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(5))
}

/// The client closes first; its ACK of the server's FIN is lost once. The
/// server retransmits the FIN, the client's TIME_WAIT record re-ACKs it and
/// restarts 2·MSL.
#[tokio::test(start_paused = true)]
async fn time_wait_reacks_a_retransmitted_fin_and_restarts_2msl() {
    let p = Pair::new(51, link());
    let server_fin = Arc::new(AtomicU32::new(0));
    let seen_fin = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    {
        let (f, s) = (server_fin.clone(), seen_fin.clone());
        p.net.set_filter(&p.b, &p.a, move |pkt| {
            if let Ok(seg) = wire::parse_ip_tcp(pkt.data, true)
                && seg.tcp.flags.fin()
            {
                f.store(seg.tcp.seq.get().wrapping_add(1), Ordering::SeqCst);
                s.store(true, Ordering::SeqCst);
            }
            FilterAction::Pass
        });
        let (f, s, d) = (server_fin.clone(), seen_fin.clone(), dropped.clone());
        p.net.set_filter(&p.a, &p.b, move |pkt| {
            if let Ok(seg) = wire::parse_ip_tcp(pkt.data, true) {
                let acks_fin =
                    s.load(Ordering::SeqCst) && seg.tcp.ack.get() == f.load(Ordering::SeqCst);
                if acks_fin && !seg.tcp.flags.fin() && !d.swap(true, Ordering::SeqCst) {
                    return FilterAction::Drop;
                }
            }
            FilterAction::Pass
        });
    }
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let mut c = p.client.connect(p.server_addr(7)).await.unwrap();
    let (mut s, _) = l.accept().await.unwrap();
    c.shutdown().await.unwrap();
    let mut b = Vec::new();
    s.read_to_end(&mut b).await.unwrap();
    s.shutdown().await.unwrap();
    c.read_to_end(&mut b).await.unwrap();
    drop(c); // TIME_WAIT record from here on
    let t_first_ack = tokio::time::Instant::now();
    assert!(
        wait_until(|| s.state() == State::Closed, Duration::from_secs(10)).await,
        "server stuck in {:?}",
        s.state()
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the first ACK of FIN was not dropped"
    );
    let t_reack = tokio::time::Instant::now();
    assert!(
        t_reack - t_first_ack >= Duration::from_millis(200),
        "the FIN was retransmitted after an RTO"
    );
    assert!(
        s.state_history()
            .ends_with(&[State::LastAck, State::Closed])
    );
    // 2·MSL restarted at the retransmitted FIN: still in TIME_WAIT 60 s after
    // the first ACK, gone 60 s after the re-ACK.
    tokio::time::sleep_until(t_first_ack + Duration::from_secs(60)).await;
    assert_eq!(p.client.stats().time_wait, 1);
    assert!(wait_until(|| p.client.stats().connections == 0, Duration::from_secs(2)).await);
    assert!(tokio::time::Instant::now() - t_reack >= Duration::from_secs(59));
}

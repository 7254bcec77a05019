//! Keepalive against the kernel: Linux answers utcp's probes (SEQ =
//! SND.UNA − 1, no data) with an ACK, which keeps the connection.

use super::*;
use std::sync::mpsc;
use tokio::io::AsyncReadExt;
use utcp::{StackExt, State, TcpKeepalive};

#[test]
fn kernel_answers_utcp_keepalive_probes_and_the_connection_stays() {
    if !can_run(
        "kernel_answers_utcp_keepalive_probes_and_the_connection_stays",
        Link::Tun,
        &[],
    ) {
        return;
    }
    let _serial = serial();
    let net = Net::new(Link::Tun, 1500);
    // Idle 1 s, then every 1 s, 2 probes: unanswered, the connection would
    // fail 3 s after the last segment; the test idles 5.5 s. (Probes at
    // least 1 s apart: Linux rate-limits its answers to out-of-window pure
    // ACKs to one per 500 ms, tcp_invalid_ratelimit.)
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let mut utcp = spawn_utcp(net.utcp_ns(), move |sig| async move {
        let stack = Net::open_stack(Link::Tun, 1500, false)?;
        let l = stack.bind(sa("10.77.0.2:7"))?;
        sig.ready();
        let (mut s, _) = tokio::time::timeout(Duration::from_secs(10), l.accept())
            .await
            .map_err(|_| io::Error::other("no connection"))??;
        s.set_tcp_keepalive(
            &TcpKeepalive::new()
                .with_time(Duration::from_secs(1))
                .with_interval(Duration::from_secs(1))
                .with_retries(2),
        )?;
        tokio::time::sleep(Duration::from_millis(5_500)).await;
        let st = s.stats();
        let state = s.state();
        done_tx.send(()).ok();
        // The kernel writes once it heard we are done: the connection works.
        let mut buf = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf))
            .await
            .map_err(|_| io::Error::other("no data after idling"))??;
        sig.until_stopped(Duration::from_secs(10)).await;
        stack.shutdown(Duration::from_secs(1)).await;
        io::Result::Ok((st.keepalive_probes, state, buf))
    });
    utcp.wait_ready();
    let kernel = net.kernel.spawn(move || -> io::Result<()> {
        let mut s = KTcpStream::connect_timeout(&sa("10.77.0.2:7"), Duration::from_secs(5))?;
        done_rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| io::Error::other("utcp side never finished idling"))?;
        s.write_all(b"ok")?;
        Ok(())
    });
    kernel
        .join()
        .expect("kernel side panicked")
        .expect("enter the namespace")
        .expect("kernel side");
    let (probes, state, buf) = utcp.finish();
    assert_eq!(state, State::Established, "the answered probes kept it");
    assert!(
        (3..=6).contains(&probes),
        "{probes} probes in 5.5 s at 1 s idle"
    );
    assert_eq!(&buf, b"ok");
}

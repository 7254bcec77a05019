//! TIME_WAIT records behave the same whether the application still holds
//! the stream or let it go: FIN re-ACK with the 2·MSL restart, reopening by
//! SYN, the exact RST, the ACK rate limit, and the table's limit. Segments
//! from the peer are crafted and injected into the in-memory network; the
//! TIME_WAIT side's replies are caught by a filter.

use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::sim::{FilterAction, LinkConfig};
use utcp::{StackConfig, StackExt, State, TcpStream};
use utcp_integration_tests::{CLIENT, Pair, SERVER, wait_until};
use utcp_proto::wire::{self, TcpFlags, TcpOptions, TcpRepr};
use utcp_proto::{EndpointConfig, SeqNum};

/// A segment caught on its way out: flags, SEQ, ACK, payload length.
type Caught = (TcpFlags, u32, u32, usize);

/// The client closed first and sits in TIME_WAIT (a record), its stream
/// held or released.
struct ClientInTimeWait {
    p: Pair,
    /// The client's stream, when held.
    stream: Option<TcpStream>,
    client: SocketAddr,
    server: SocketAddr,
    /// The client's SND.NXT and RCV.NXT (from its ACK of the server's FIN).
    snd_nxt: u32,
    rcv_nxt: u32,
    /// Segments the client sent after entering TIME_WAIT.
    out: Arc<Mutex<Vec<Caught>>>,
}

fn link() -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(1))
}

async fn client_in_time_wait(seed: u64, held: bool, cfg: StackConfig) -> ClientInTimeWait {
    let p = Pair::with(seed, link(), link(), cfg, &[CLIENT], &[SERVER]);
    let out = Arc::new(Mutex::new(Vec::new()));
    let o = out.clone();
    let reset_server = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let quiet = reset_server.clone();
    // Once the client is in TIME_WAIT, the server stack (its connection
    // CLOSED) would answer the client's replies to our crafted segments
    // with RSTs — exact ones, which end the record. Those are dropped.
    p.net.set_filter(&p.b, &p.a, move |pkt| {
        if quiet.load(std::sync::atomic::Ordering::SeqCst)
            && wire::parse_ip_tcp(pkt.data, true).is_ok_and(|s| s.tcp.flags.rst())
        {
            return FilterAction::Drop;
        }
        FilterAction::Pass
    });
    p.net.set_filter(&p.a, &p.b, move |pkt| {
        if let Ok(s) = wire::parse_ip_tcp(pkt.data, true) {
            let len = s.payload.len();
            o.lock()
                .unwrap()
                .push((s.tcp.flags, s.tcp.seq.get(), s.tcp.ack.get(), len));
        }
        FilterAction::Pass
    });
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let mut c = p.client.connect(p.server_addr(7)).await.unwrap();
    let (mut s, _) = l.accept().await.unwrap();
    c.write_all(b"hello").await.unwrap();
    c.shutdown().await.unwrap();
    let mut b = Vec::new();
    s.read_to_end(&mut b).await.unwrap();
    s.shutdown().await.unwrap();
    c.read_to_end(&mut b).await.unwrap();
    assert!(wait_until(|| c.state() == State::TimeWait, Duration::from_secs(5)).await);
    assert!(wait_until(|| s.state() == State::Closed, Duration::from_secs(5)).await);
    let (client, server) = (c.local_addr().unwrap(), c.peer_addr().unwrap());
    let (_, snd_nxt, rcv_nxt, _) = *out.lock().unwrap().last().expect("the ACK of the FIN");
    out.lock().unwrap().clear();
    reset_server.store(true, std::sync::atomic::Ordering::SeqCst);
    let stats = p.client.stats();
    assert_eq!(
        (stats.time_wait, stats.tasks),
        (1, 1),
        "a record, no task: {stats:?}"
    );
    let stream = if held { Some(c) } else { None };
    ClientInTimeWait {
        p,
        stream,
        client,
        server,
        snd_nxt,
        rcv_nxt,
        out,
    }
}

impl ClientInTimeWait {
    /// A segment from the server to the client's 4-tuple.
    fn inject(&self, flags: TcpFlags, seq: u32, ack: u32, payload: &[u8]) {
        let repr = TcpRepr {
            src_port: self.server.port(),
            dst_port: self.client.port(),
            seq: SeqNum::new(seq),
            ack: SeqNum::new(ack),
            flags,
            window: 65_535,
            urgent: 0,
            options: TcpOptions::default(),
        };
        let mut buf = BytesMut::new();
        wire::emit_ip_tcp(
            &mut buf,
            self.server.ip(),
            self.client.ip(),
            64,
            &repr,
            payload,
        );
        buf.extend_from_slice(payload); // the headers are emitted alone
        self.p.net.inject(&self.p.b, &self.p.a, buf.freeze());
    }

    fn take_out(&self) -> Vec<Caught> {
        std::mem::take(&mut *self.out.lock().unwrap())
    }

    /// <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, `n` times.
    fn acks(&self, n: usize) -> Vec<Caught> {
        vec![(TcpFlags::ACK, self.snd_nxt, self.rcv_nxt, 0); n]
    }

    /// The record is there; a held stream reads TIME_WAIT.
    fn assert_in_time_wait(&self) {
        assert_eq!(self.p.client.stats().time_wait, 1);
        if let Some(s) = &self.stream {
            assert_eq!(s.state(), State::TimeWait);
        }
    }

    /// The record is gone; a held stream reads CLOSED, and its history ends
    /// with TIME_WAIT → CLOSED.
    async fn assert_closed(&self) {
        let client = &self.p.client;
        assert!(
            wait_until(|| client.stats().connections == 0, Duration::from_secs(1)).await,
            "{:?}",
            client.stats()
        );
        if let Some(s) = &self.stream {
            assert_eq!(s.state(), State::Closed);
            assert!(
                s.state_history()
                    .ends_with(&[State::FinWait2, State::TimeWait, State::Closed]),
                "{:?}",
                s.state_history()
            );
        }
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test(start_paused = true)]
async fn time_wait_record_reacks_fins_and_restarts_2msl_held_or_not() {
    for held in [true, false] {
        let t = client_in_time_wait(61, held, StackConfig::default()).await;
        let entered = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_secs(10)).await;
        // Two retransmitted FINs 100 ms apart: each is ACKed (not rate-limited).
        t.inject(TcpFlags::FIN | TcpFlags::ACK, t.rcv_nxt - 1, t.snd_nxt, &[]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        t.inject(TcpFlags::FIN | TcpFlags::ACK, t.rcv_nxt - 1, t.snd_nxt, &[]);
        let last_fin = tokio::time::Instant::now();
        settle().await;
        assert_eq!(t.take_out(), t.acks(2), "held: {held}");
        // 2·MSL restarted at the last FIN: still there 60 s after entering.
        tokio::time::sleep_until(entered + Duration::from_secs(61)).await;
        t.assert_in_time_wait();
        tokio::time::sleep_until(last_fin + Duration::from_secs(60) + Duration::from_millis(10))
            .await;
        t.assert_closed().await;
        assert_eq!(t.take_out(), vec![], "nothing sent at the end");
    }
}

#[tokio::test(start_paused = true)]
async fn time_wait_record_closes_on_an_exact_rst_only_held_or_not() {
    for held in [true, false] {
        let t = client_in_time_wait(62, held, StackConfig::default()).await;
        for seq in [t.rcv_nxt + 1, t.rcv_nxt - 1, t.rcv_nxt + 1000] {
            t.inject(TcpFlags::RST, seq, 0, &[]);
        }
        settle().await;
        t.assert_in_time_wait();
        t.inject(TcpFlags::RST, t.rcv_nxt, 0, &[]);
        settle().await;
        t.assert_closed().await;
        assert_eq!(t.take_out(), vec![], "an RST is never answered");
    }
}

#[tokio::test(start_paused = true)]
async fn time_wait_record_rate_limits_its_acks_held_or_not() {
    for held in [true, false] {
        let t = client_in_time_wait(63, held, StackConfig::default()).await;
        for _ in 0..5 {
            t.inject(TcpFlags::PSH | TcpFlags::ACK, t.rcv_nxt, t.snd_nxt, b"x");
        }
        settle().await;
        assert_eq!(t.take_out(), t.acks(1), "one ACK for five segments");
        assert_eq!(t.p.client.stats().time_wait_acks_rate_limited, 4);
        tokio::time::sleep(Duration::from_millis(500)).await;
        t.inject(TcpFlags::ACK, t.rcv_nxt + 100, t.snd_nxt, &[]);
        settle().await;
        assert_eq!(t.take_out(), t.acks(1), "one more after the interval");
        t.assert_in_time_wait();
    }
}

/// The server closes first and sits in TIME_WAIT (stream held or not); the
/// same client port connects again with a higher ISN, which the endpoint's
/// record lets reopen the 4-tuple at once.
#[tokio::test(start_paused = true)]
async fn time_wait_record_reopens_on_a_new_syn_held_or_not() {
    for held in [true, false] {
        let p = Pair::new(64, link());
        let l = p.server.bind(p.server_addr(7)).unwrap();
        let local: SocketAddr = format!("{CLIENT}:41000").parse().unwrap();
        let mut c = p
            .client
            .connect_from(local, p.server_addr(7))
            .await
            .unwrap();
        let (mut s, _) = l.accept().await.unwrap();
        s.write_all(b"bye").await.unwrap();
        s.shutdown().await.unwrap();
        let mut b = Vec::new();
        c.read_to_end(&mut b).await.unwrap();
        drop(c);
        s.read_to_end(&mut b).await.unwrap();
        assert!(wait_until(|| s.state() == State::TimeWait, Duration::from_secs(5)).await);
        let s = if held {
            Some(s)
        } else {
            drop(s);
            None
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(p.server.stats().time_wait, 1);
        assert!(wait_until(|| p.client.stats().connections == 0, Duration::from_secs(5)).await);
        let t0 = tokio::time::Instant::now();
        let mut c2 = p
            .client
            .connect_from(local, p.server_addr(7))
            .await
            .unwrap();
        assert!(t0.elapsed() < Duration::from_millis(100), "held: {held}");
        let (mut s2, from) = l.accept().await.unwrap();
        assert_eq!(from, local);
        assert_eq!(p.server.stats().time_wait, 0);
        if let Some(s) = &s {
            assert_eq!(s.state(), State::Closed);
            assert!(
                s.state_history()
                    .ends_with(&[State::TimeWait, State::Closed]),
                "{:?}",
                s.state_history()
            );
        }
        c2.write_all(b"again").await.unwrap();
        let mut buf = [0u8; 5];
        s2.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"again");
    }
}

/// Beyond `max_time_wait` a closing connection skips TIME_WAIT, counted.
#[tokio::test(start_paused = true)]
async fn time_wait_limit_skips_time_wait_and_counts_it_held_or_not() {
    for held in [true, false] {
        let cfg = StackConfig {
            endpoint: EndpointConfig {
                max_time_wait: 1,
                ..EndpointConfig::default()
            },
            ..StackConfig::default()
        };
        let first = client_in_time_wait(65, held, cfg).await;
        let p = &first.p;
        let l = p.server.bind(p.server_addr(8)).unwrap();
        let mut c = p.client.connect(p.server_addr(8)).await.unwrap();
        let (mut s, _) = l.accept().await.unwrap();
        c.shutdown().await.unwrap();
        let mut b = Vec::new();
        s.read_to_end(&mut b).await.unwrap();
        s.shutdown().await.unwrap();
        c.read_to_end(&mut b).await.unwrap();
        let client = &p.client;
        assert!(
            wait_until(
                || client.stats().time_wait_overflows == 1,
                Duration::from_secs(5)
            )
            .await,
            "{:?}",
            client.stats()
        );
        assert_eq!(c.state(), State::Closed);
        assert!(
            c.state_history()
                .ends_with(&[State::FinWait2, State::TimeWait, State::Closed]),
            "{:?}",
            c.state_history()
        );
        if !held {
            drop(c);
        }
        let stats = client.stats();
        assert_eq!(
            (stats.time_wait, stats.connections, stats.tasks),
            (1, 1, 1),
            "{stats:?}"
        );
        first.assert_in_time_wait();
    }
}

/// A held stream keeps the bytes it had not read when its connection
/// became a record: they stay readable, then EOF.
#[tokio::test(start_paused = true)]
async fn unread_bytes_stay_readable_after_the_connection_became_a_record() {
    let p = Pair::new(66, link());
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let mut c = p.client.connect(p.server_addr(7)).await.unwrap();
    let (mut s, _) = l.accept().await.unwrap();
    c.shutdown().await.unwrap();
    let mut b = Vec::new();
    s.read_to_end(&mut b).await.unwrap();
    s.write_all(b"last words").await.unwrap();
    s.shutdown().await.unwrap();
    assert!(wait_until(|| c.state() == State::TimeWait, Duration::from_secs(5)).await);
    assert_eq!(p.client.stats().tasks, 1, "the connection task ended");
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"last words");
    assert!(c.write_all(b"x").await.is_err());
}

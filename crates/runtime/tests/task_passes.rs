//! A connection task answers each wake with one pass: the kick that woke
//! it is taken before the pass, not counted again after it (which cost
//! every wake a second, idle pass: churn over TUN fell by about a fifth).
//! One request and reply a round trip apart, on virtual time: the client's
//! task is woken by the application's write and by the reply's arrival
//! (the ACK of its request rides on the reply), so each round costs it
//! about two passes.

mod common;

use common::{SimPair, read_some, sim_pair, write_all};
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn each_wake_costs_one_pass() {
    let SimPair {
        stack_a: sa,
        stack_b: _sb,
        client: c,
        server: s,
        ..
    } = sim_pair(11, Duration::from_millis(5)).await;
    // The server echoes whatever comes.
    let server = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        loop {
            match read_some(&s, &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => write_all(&s, &buf[..n]).await.unwrap(),
            }
        }
    });
    // Settle the handshake's passes, then count.
    tokio::time::sleep(Duration::from_millis(50)).await;
    const ROUNDS: u64 = 50;
    let before = sa.stats().task_passes;
    let mut buf = [0u8; 64];
    for i in 0..ROUNDS {
        write_all(&c, &[i as u8; 64]).await.unwrap();
        let mut got = 0;
        while got < 64 {
            got += read_some(&c, &mut buf[got..]).await.unwrap();
        }
        assert_eq!(buf, [i as u8; 64]);
    }
    let passes = sa.stats().task_passes - before;
    println!("{passes} passes of the client's task for {ROUNDS} rounds");
    assert!(
        passes <= ROUNDS * 5 / 2,
        "{passes} passes for {ROUNDS} request / reply rounds: more than one per wake"
    );
    drop(c);
    server.abort();
}

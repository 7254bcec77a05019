//! A runtime that shuts down drops the stack's tasks wherever they are,
//! also a connection task spawned but never polled yet. Each still ends the
//! stack's count of live tasks (so `Stack::shutdown` on another runtime
//! does not wait for tasks that are gone), and the connection's 4-tuple is
//! freed with it.

use std::net::SocketAddr;
use utcp_runtime::sim::{LinkConfig, SimNetwork};
use utcp_runtime::{Stack, StackConfig};

#[test]
fn tasks_dropped_with_their_runtime_end_their_count_polled_or_not() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (stack, _peer) = rt.block_on(async {
        let net = SimNetwork::new(7);
        let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
        let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
        net.link(&a, &b, LinkConfig::default());
        let stack = Stack::new(a, StackConfig::default());
        let peer = Stack::new(b, StackConfig::default());
        // Let the device tasks make their first poll.
        tokio::task::yield_now().await;
        (stack, peer)
    });
    // The device task.
    assert_eq!(stack.stats().tasks, 1);
    // Outside the runtime: the connection's task is spawned on the stack's
    // runtime, which is not running, so it is never polled.
    let remote: SocketAddr = "10.0.0.2:80".parse().unwrap();
    let conn = stack.connect_start(remote).unwrap();
    assert_eq!(stack.stats().tasks, 2);
    assert_eq!(stack.stats().connections, 1);
    drop(rt);
    assert_eq!(
        stack.stats().tasks,
        0,
        "the unpolled connection task and the device task ended their count"
    );
    assert_eq!(stack.stats().connections, 0, "the 4-tuple is free again");
    drop(conn);
}

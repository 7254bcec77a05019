//! In-memory bulk transfer on a current-thread runtime (divan):
//! `cargo bench -p utcp --bench bulk`. Two stacks on the in-memory network
//! (ideal link), one connection per sample, 8 MiB written in 64 KiB chunks
//! and read by the other end: the whole path through both stacks' tasks, in
//! real time.

use divan::Bencher;
use divan::counter::BytesCount;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::sim::{LinkConfig, SimNetwork};
use utcp::{Stack, StackConfig, StackExt};

fn main() {
    divan::main();
}

const TOTAL: usize = 8 << 20;
const CHUNK: usize = 64 * 1024;

#[divan::bench(sample_count = 20, sample_size = 1)]
fn bulk_8mib_current_thread(bencher: Bencher) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let net = SimNetwork::new(1);
    let a = net.add_host("client", &["10.0.0.1".parse().unwrap()]);
    let b = net.add_host("server", &["10.0.0.2".parse().unwrap()]);
    net.link(&a, &b, LinkConfig::default());
    let addr: SocketAddr = "10.0.0.2:7".parse().unwrap();
    // Stacks spawn their tasks on the runtime they are made in.
    let (client, server, listener) = rt.block_on(async {
        let client = Stack::new(a, StackConfig::default());
        let server = Stack::new(b, StackConfig::default());
        let listener = server.bind(addr).expect("bind");
        (client, server, listener)
    });
    let chunk = vec![0x42u8; CHUNK];
    bencher.counter(BytesCount::new(TOTAL)).bench_local(|| {
        rt.block_on(async {
            let (accepted, connected) = tokio::join!(listener.accept(), client.connect(addr));
            let (mut s, _) = accepted.expect("accept");
            let mut c = connected.expect("connect");
            let reader = async {
                let mut buf = vec![0u8; CHUNK];
                let mut got = 0;
                while got < TOTAL {
                    let n = s.read(&mut buf).await.expect("read");
                    assert!(n > 0, "early EOF");
                    got += n;
                }
            };
            let writer = async {
                for _ in 0..TOTAL / CHUNK {
                    c.write_all(&chunk).await.expect("write");
                }
            };
            tokio::join!(reader, writer);
        })
    });
    drop(server);
}

//! The in-memory network's packet rate (divan):
//! `cargo bench -p utcp-runtime --bench sim_packets`. One host sends
//! batches of 1,500-byte packets to another over an ideal link, and the
//! other reads them in batches of 64 and slices each as the stack's parser
//! does: the device path every in-memory figure runs on, without TCP.

use bytes::Bytes;
use divan::Bencher;
use divan::counter::ItemsCount;
use std::net::IpAddr;
use std::task::{Context, Poll, Waker};
use utcp_runtime::device::sim::{LinkConfig, SimNetwork};
use utcp_runtime::device::{Device, Offload, RxPacket, TxPacket};

fn main() {
    divan::main();
}

const PACKETS: usize = 4096;

#[divan::bench(args = [1, 8, 32], sample_count = 50)]
fn packets_1500b(bencher: Bencher, batch: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let _guard = rt.enter();
    let net = SimNetwork::new(1);
    let a = net.add_host("a", &["10.0.0.1".parse::<IpAddr>().unwrap()]);
    let b = net.add_host("b", &["10.0.0.2".parse::<IpAddr>().unwrap()]);
    net.link(&a, &b, LinkConfig::default());
    let mut header = vec![
        0x45, 0, 0x05, 0xdc, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    header.resize(40, 0);
    let payload = Bytes::from(vec![0xab; 1460]);
    let txs: Vec<TxPacket<'_>> = (0..batch)
        .map(|_| TxPacket {
            header: &header,
            payload: &payload,
            payload_tail: &[],
            meta: Offload::default(),
        })
        .collect();
    let mut rx: Vec<RxPacket> = Vec::with_capacity(64);
    let mut cx = Context::from_waker(Waker::noop());
    bencher.counter(ItemsCount::new(PACKETS)).bench_local(|| {
        let mut got = 0;
        while got < PACKETS {
            a.send(&txs).expect("send");
            let mut due = batch;
            while due > 0 {
                match b.poll_recv(&mut cx, &mut rx, 64) {
                    Poll::Ready(Ok(n)) => due -= n,
                    other => panic!("nothing due on an ideal link: {other:?}"),
                }
                for p in rx.drain(..) {
                    divan::black_box(p.data.slice(20..));
                }
            }
            got += batch;
        }
    });
}

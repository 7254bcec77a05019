use bytes::Bytes;
use std::time::Duration;
use utcp::StackExt;
use utcp::sim::LinkConfig;
use utcp_integration_tests::{Pair, echo_roundtrip, pattern, spawn_echo};
use utcp_proto::SeqNum;
use utcp_proto::wire::{self, TcpFlags, TcpOptions, TcpRepr};

/// A valid IPv4 + TCP packet from `src_port` to port 7.
fn packet(src_port: u16, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
    let repr = TcpRepr {
        src_port,
        dst_port: 7,
        seq: SeqNum::new(1000),
        ack: SeqNum::new(0),
        flags,
        window: 1000,
        urgent: 0,
        options: TcpOptions::default(),
    };
    let mut buf = bytes::BytesMut::new();
    let (src, dst) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
    wire::emit_ip_tcp(&mut buf, src, dst, 64, &repr, payload);
    buf.extend_from_slice(payload);
    buf.to_vec()
}

#[tokio::test(start_paused = true)]
async fn malformed_segments_are_dropped_without_disturbing_the_connection() {
    let p = Pair::new(41, LinkConfig::default().delay(Duration::from_millis(5)));
    spawn_echo(p.server.bind(p.server_addr(7)).unwrap());
    let (net, a, b) = (p.net.clone(), p.a.clone(), p.b.clone());
    let injector = tokio::spawn(async move {
        let good = packet(55_555, TcpFlags::ACK | TcpFlags::PSH, b"payload");
        let mut x: u64 = 0x1234_5678;
        for i in 0..2000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bad: Vec<u8> = match i % 8 {
                0 => (0..(x % 120) as usize)
                    .map(|j| (x >> (j % 56)) as u8)
                    .collect(), // random bytes
                1 => good[..(x as usize % good.len())].to_vec(), // truncated
                2 => {
                    let mut v = good.clone();
                    let bit = (x as usize) % (v.len() * 8);
                    v[bit / 8] ^= 1 << (bit % 8); // one flipped bit
                    v
                }
                3 => {
                    let mut v = good.clone();
                    v[20 + 12] = 0x10; // data offset 1
                    v
                }
                4 => {
                    let mut v = good.clone();
                    v[20 + 12] = 0xf0; // data offset 15, past the segment
                    v
                }
                5 => {
                    let mut v = good.clone();
                    v[9] = 17; // UDP
                    v
                }
                6 => {
                    let mut v = packet(55_556, TcpFlags::SYN, &[]);
                    v[20 + 12] = 0x60;
                    v.truncate(22); // option area cut
                    v
                }
                _ => {
                    let mut v = good.clone();
                    v[0] = 0x35; // version 3
                    v
                }
            };
            net.inject(&a, &b, Bytes::from(bad));
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    });
    let data = pattern(512 * 1024, 41);
    let back = echo_roundtrip(&p.client, p.server_addr(7), &data)
        .await
        .unwrap();
    assert!(back == data);
    injector.await.unwrap();
    let st = p.server.stats();
    assert!(st.rx_malformed >= 1500, "{st:?}");
}

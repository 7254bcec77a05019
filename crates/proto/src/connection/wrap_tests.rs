//! White-box tests for triggers that would take gigabytes of traffic to reach
//! from outside (the sequence space wrapping back onto ISS).

use super::{Connection, State};
use crate::config::Config;
use crate::seq::SeqNum;
use crate::time::Instant;
use crate::wire::{self, TcpFlags, TcpOptions, TcpRepr};
use bytes::{Bytes, BytesMut};

const ISS: SeqNum = SeqNum::new(1_000_000);
const IRS: SeqNum = SeqNum::new(5_000_000);

fn established() -> Connection {
    let local = "10.0.0.1:40000".parse().unwrap();
    let remote = "10.0.0.2:80".parse().unwrap();
    let mut c = Connection::connect(Config::default(), local, remote, ISS, Instant::ZERO).unwrap();
    let mut buf = BytesMut::new();
    let syn = c.poll_transmit(Instant::ZERO, &mut buf).unwrap();
    assert!(syn.repr.flags.syn());
    let syn_ack = TcpRepr {
        src_port: 80,
        dst_port: 40000,
        seq: IRS,
        ack: ISS + 1,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: 65_535,
        urgent: 0,
        options: TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        },
    };
    let now = Instant::from_millis(10);
    c.handle_segment(
        now,
        super::Segment {
            repr: syn_ack,
            payload: Bytes::new(),
        },
    );
    while c.poll_transmit(now, &mut buf).is_some() {}
    assert_eq!(c.state(), State::Established);
    c
}

/// Every segment the connection sends now, as (SEQ, payload).
fn sent(c: &mut Connection, now: Instant) -> Vec<(SeqNum, Bytes)> {
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    while let Some(t) = c.poll_transmit(now, &mut buf) {
        // The bytes parse (checksums included) and say the same.
        let mut packet = BytesMut::from(&buf[buf.len() - t.header_len..]);
        packet.extend_from_slice(&t.payload);
        let parsed = wire::parse_ip_tcp(&packet, true).unwrap();
        assert_eq!(parsed.tcp.seq, t.repr.seq);
        out.push((t.repr.seq, t.payload));
    }
    out
}

#[test]
fn established_after_2_pow_32_minus_1_acked_bytes_sends_data_at_snd_una() {
    // After 2^32 − 1 acknowledged bytes SND.UNA lands on ISS again. "Our SYN
    // is unacknowledged" must not be read from SND.UNA = ISS: the next byte
    // goes at SND.UNA, exactly once, and the stream stays in place.
    let mut c = established();
    c.snd.una = ISS;
    c.snd.max = ISS;
    c.snd.wl2 = ISS;
    // Two small writes back to back: Nagle would hold the second.
    c.set_nodelay(true);
    let now = Instant::from_millis(20);
    assert_eq!(c.send(b"first").unwrap(), 5);
    let a = sent(&mut c, now);
    assert_eq!(a, vec![(ISS, Bytes::from_static(b"first"))]);
    assert_eq!(c.send(b"second").unwrap(), 6);
    let b = sent(&mut c, now);
    assert_eq!(b, vec![(ISS + 5, Bytes::from_static(b"second"))]);
    // The peer acknowledges both: nothing is left and nothing is re-sent.
    let ack = TcpRepr {
        src_port: 80,
        dst_port: 40000,
        seq: IRS + 1,
        ack: ISS + 11,
        flags: TcpFlags::ACK,
        window: 65_535,
        urgent: 0,
        options: TcpOptions::default(),
    };
    c.handle_segment(
        now,
        super::Segment {
            repr: ack,
            payload: Bytes::new(),
        },
    );
    assert_eq!(c.send_queued(), 0);
    assert!(sent(&mut c, now).is_empty());
    // A FIN queued now sits right after the data.
    c.shutdown(now);
    let fin = sent(&mut c, now);
    assert_eq!(fin, vec![(ISS + 11, Bytes::new())]);
}

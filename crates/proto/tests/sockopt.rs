//! Per-connection socket options: buffer sizes seen in the SYN / SYN-ACK
//! window, the TOS byte in every IP header, and when they may change.

use bytes::BytesMut;
use std::net::SocketAddr;
use utcp_proto::wire::{self, Ipv4Repr, Ipv6Repr, TcpFlags, TcpOptions, TcpRepr};
use utcp_proto::{Config, Connection, Error, Instant, SeqNum};

fn addrs(v6: bool) -> (SocketAddr, SocketAddr) {
    if v6 {
        (
            "[fd00::1]:40000".parse().unwrap(),
            "[fd00::2]:80".parse().unwrap(),
        )
    } else {
        (
            "10.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
        )
    }
}

fn active(v6: bool) -> Connection {
    let (l, r) = addrs(v6);
    Connection::connect(Config::default(), l, r, SeqNum::new(1000), Instant::ZERO).unwrap()
}

/// The next segment's whole IP header bytes and TCP header.
fn next(c: &mut Connection) -> (BytesMut, TcpRepr) {
    let mut buf = BytesMut::new();
    let _ = c.poll_transmit(Instant::ZERO, &mut buf).expect("a segment");
    let parsed = wire::parse_ip_tcp(&buf, true).expect("valid checksums");
    (buf, parsed.tcp)
}

#[test]
fn syn_sent_recv_buffer_size_is_the_syn_window() {
    let mut c = active(false);
    c.set_recv_buffer_size(4096).unwrap();
    assert_eq!(c.recv_buffer_size(), 4096);
    let (_, syn) = next(&mut c);
    assert!(syn.flags.syn());
    assert_eq!(syn.window, 4096);
}

#[test]
fn syn_sent_recv_buffer_size_is_fixed_after_the_first_segment() {
    let mut c = active(false);
    let _ = next(&mut c);
    assert!(matches!(
        c.set_recv_buffer_size(4096),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(c.recv_buffer_size(), Config::default().recv_buffer);
}

#[test]
fn zero_buffer_sizes_are_rejected() {
    let mut c = active(false);
    assert!(matches!(
        c.set_recv_buffer_size(0),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        c.set_send_buffer_size(0),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn listen_recv_buffer_size_is_the_syn_ack_window() {
    let (l, r) = addrs(false);
    let syn = TcpRepr {
        src_port: r.port(),
        dst_port: l.port(),
        seq: SeqNum::new(5000),
        ack: SeqNum::new(0),
        flags: TcpFlags::SYN,
        window: 65535,
        urgent: 0,
        options: TcpOptions {
            mss: Some(1460),
            ..Default::default()
        },
    };
    let mut c = Connection::accept(
        Config::default(),
        l,
        r,
        SeqNum::new(1000),
        Instant::ZERO,
        &syn,
    )
    .unwrap();
    c.set_recv_buffer_size(2000).unwrap();
    let (_, syn_ack) = next(&mut c);
    assert!(syn_ack.flags.syn() && syn_ack.flags.ack());
    assert_eq!(syn_ack.window, 2000);
}

#[test]
fn send_buffer_size_limits_the_queue() {
    let mut c = active(false);
    c.set_send_buffer_size(10).unwrap();
    assert_eq!(c.send_buffer_size(), 10);
    assert_eq!(c.send(&[7u8; 100]), Ok(10));
    assert_eq!(c.send_space(), 0);
}

#[test]
fn tos_is_written_into_the_ipv4_header() {
    let mut c = active(false);
    assert_eq!(c.tos(), 0);
    c.set_tos(0xb8);
    assert_eq!(c.tos(), 0xb8);
    let (buf, _) = next(&mut c);
    assert_eq!(Ipv4Repr::parse(&buf).unwrap().0.dscp_ecn, 0xb8);
}

#[test]
fn tclass_is_written_into_the_ipv6_header() {
    let mut c = active(true);
    c.set_tos(0x28);
    let (buf, _) = next(&mut c);
    assert_eq!(Ipv6Repr::parse(&buf).unwrap().0.traffic_class, 0x28);
}

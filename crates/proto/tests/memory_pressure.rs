//! ESTABLISHED under the stack's receive-memory pressure (Linux's
//! `tcp_mem`, told by the runtime through `Connection::set_memory_pressure`):
//! above the pressure threshold the window does not grow and out-of-order
//! data goes first; above the limit new data is dropped and counted; the
//! advertised right edge never moves left (RFC 9293 §3.8.6); once the
//! pressure lifts a window update goes out.

mod common;

use common::*;
use utcp_proto::MemoryPressure;

#[test]
fn established_pressure_stops_window_growth_and_drops_out_of_order_data() {
    let mut t = TestConn::established();
    t.inject(200, PSH_ACK.seq(R + 1).ack(L + 1).data(&[7; 1000]));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1001).win(64_536)]);
    // A hole, then pressure: the held range is pruned at once.
    t.inject(210, PSH_ACK.seq(R + 2001).ack(L + 1).data(&[9; 500]));
    t.expect_sent(210, [ACK.seq(L + 1).ack(R + 1001).win(64_536)]);
    t.memory_pressure(215, MemoryPressure::Pressure);
    assert_eq!(t.stats().rcv_ooo_pruned, 500);
    // In-order data is still taken; the right edge (R+1001+64,536) stays, so
    // the window is what remains of it.
    t.inject(220, PSH_ACK.seq(R + 1001).ack(L + 1).data(&[8; 1000]));
    t.expect_sent(220, [ACK.seq(L + 1).ack(R + 2001).win(63_536)]);
    // The application reads everything: no window update, the window does
    // not grow.
    assert_eq!(t.recv_all().len(), 2000);
    t.expect_nothing(230);
    // New out-of-order data is refused, answered with RCV.NXT.
    t.inject(240, PSH_ACK.seq(R + 3001).ack(L + 1).data(&[9; 100]));
    t.expect_sent(240, [ACK.seq(L + 1).ack(R + 2001).win(63_536)]);
    assert_eq!(t.stats().rcv_ooo_pruned, 600);
    // The pressure lifts: a window update offers the whole buffer again.
    t.memory_pressure(250, MemoryPressure::Normal);
    t.expect_sent(250, [ACK.seq(L + 1).ack(R + 2001).win(65_535)]);
}

#[test]
fn established_over_the_memory_limit_drops_new_data_and_keeps_the_right_edge() {
    let mut t = TestConn::established();
    t.inject(200, PSH_ACK.seq(R + 1).ack(L + 1).data(&[7; 1000]));
    t.expect_sent(200, [ACK.seq(L + 1).ack(R + 1001).win(64_536)]);
    t.memory_pressure(205, MemoryPressure::Limit);
    // Dropped and counted; the ACK repeats RCV.NXT with the same right edge.
    t.inject(210, PSH_ACK.seq(R + 1001).ack(L + 1).data(&[8; 1000]));
    t.expect_sent(210, [ACK.seq(L + 1).ack(R + 1001).win(64_536)]);
    assert_eq!(t.stats().rcv_memory_drops, 1000);
    assert_eq!(t.conn.readable(), 1000);
    // Once memory frees, the retransmission is taken.
    t.memory_pressure(220, MemoryPressure::Normal);
    t.expect_sent(220, [ACK.seq(L + 1).ack(R + 1001).win(64_536)]);
    t.inject(230, PSH_ACK.seq(R + 1001).ack(L + 1).data(&[8; 1000]));
    t.expect_sent(230, [ACK.seq(L + 1).ack(R + 2001).win(63_536)]);
    assert_eq!(t.recv_all().len(), 2000);
}

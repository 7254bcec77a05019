//! A connection's inbox: segments on their way from the device task to the
//! connection's task.
//!
//! It holds nothing on the heap while empty. A lone segment (a handshake's,
//! a request, an ACK) waits in an inline slot; only a connection that is
//! handed several segments in one batch spills into a queue, which it keeps
//! while it stays busy (so steady bulk traffic allocates nothing per
//! segment) and lets go once no segment spilled for [`SPILL_IDLE`]. The
//! device task takes the inbox's lock once per segment and wakes the task
//! only when the inbox was empty, so once per batch; the task takes the
//! lock once per batch and moves every waiting segment out at once.

use crate::rmem::Inbound;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How long a connection keeps its spill queue after a batch last spilled
/// into it.
pub(crate) const SPILL_IDLE: Duration = Duration::from_secs(1);

/// What the device task and the connection's task share.
#[derive(Debug)]
pub(crate) struct Inbox {
    q: Mutex<Queue>,
    /// The most segments it holds (DESIGN: at least max(batch size,
    /// receive window / MSS)).
    cap: usize,
}

#[derive(Debug, Default)]
struct Queue {
    /// The oldest waiting segment; `None` means the inbox is empty.
    first: Option<Inbound>,
    /// The segments after it, in arrival order.
    rest: VecDeque<Inbound>,
    /// The task no longer takes segments (TIME_WAIT or ended).
    closed: bool,
}

/// Why a segment was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The inbox holds `cap` segments.
    Full,
    /// The connection's task no longer takes segments.
    Closed,
}

/// Segments the task took from its inbox, oldest first; its spill queue is
/// swapped with the inbox's, so both keep their room while the connection
/// is busy.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    first: Option<Inbound>,
    rest: VecDeque<Inbound>,
}

impl Batch {
    /// The next segment, oldest first.
    pub(crate) fn pop(&mut self) -> Option<Inbound> {
        self.first.take().or_else(|| self.rest.pop_front())
    }

    /// Whether segments spilled into its queue.
    fn spilled(&self) -> bool {
        !self.rest.is_empty()
    }

    /// Frees its spill queue's room (it must be empty).
    fn release(&mut self) {
        debug_assert!(self.first.is_none() && self.rest.is_empty());
        self.rest = VecDeque::new();
    }

    /// Heap bytes its spill queue holds.
    #[cfg(test)]
    fn heap(&self) -> usize {
        self.rest.capacity() * std::mem::size_of::<Inbound>()
    }
}

impl Inbox {
    pub(crate) fn new(cap: usize) -> Inbox {
        Inbox {
            q: Mutex::new(Queue::default()),
            cap: cap.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.q.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a segment (the device task). `Ok(true)`: the inbox was
    /// empty, so the task must be woken; `Ok(false)`: a wake is on its
    /// way already. A full or closed inbox drops the segment (a NIC ring's
    /// drop) and says why.
    pub(crate) fn push(&self, inb: Inbound) -> Result<bool, Refused> {
        let mut q = self.lock();
        if q.closed {
            return Err(Refused::Closed);
        }
        if q.first.is_none() {
            q.first = Some(inb);
            return Ok(true);
        }
        if 1 + q.rest.len() >= self.cap {
            return Err(Refused::Full);
        }
        q.rest.push_back(inb);
        Ok(false)
    }

    /// Moves every waiting segment into `batch` (the task; `batch` must be
    /// empty). Returns whether any did.
    pub(crate) fn take(&self, batch: &mut Batch) -> bool {
        debug_assert!(batch.first.is_none() && batch.rest.is_empty());
        let mut q = self.lock();
        batch.first = q.first.take();
        std::mem::swap(&mut q.rest, &mut batch.rest);
        batch.first.is_some()
    }

    /// Closes the inbox and appends what still waits in it to `batch`, in
    /// arrival order (the task's last step).
    pub(crate) fn close_into(&self, batch: &mut Batch) {
        let mut q = self.lock();
        q.closed = true;
        let first = q.first.take();
        let rest = std::mem::take(&mut q.rest);
        drop(q);
        // After whatever the batch still holds (`pop` takes `first`, then
        // `rest`).
        batch.rest.extend(first);
        batch.rest.extend(rest);
    }

    /// Frees the inbox's spill queue if it is empty.
    fn release(&self) {
        let mut q = self.lock();
        if q.first.is_none() {
            q.rest = VecDeque::new();
        }
    }

    /// Heap bytes the inbox's spill queue holds.
    #[cfg(test)]
    fn heap(&self) -> usize {
        self.lock().rest.capacity() * std::mem::size_of::<Inbound>()
    }
}

/// The task's side: its batch, and when the connection last spilled.
#[derive(Debug, Default)]
pub(crate) struct Taker {
    pub(crate) batch: Batch,
    /// When a batch last spilled (while either queue holds room).
    spilled: crate::idle::IdleClock,
}

impl Taker {
    /// Takes what waits in `inbox` into the batch.
    pub(crate) fn take(&mut self, inbox: &Inbox, now: utcp_proto::Instant) -> bool {
        let any = inbox.take(&mut self.batch);
        if self.batch.spilled() {
            self.spilled.touch(now);
        }
        any
    }

    /// Called with the batch drained, before the task sleeps: frees both
    /// spill queues once the connection went [`SPILL_IDLE`] without
    /// spilling; otherwise returns when to look again.
    pub(crate) fn idle(
        &mut self,
        inbox: &Inbox,
        now: utcp_proto::Instant,
    ) -> Option<utcp_proto::Instant> {
        match self.spilled.poll(now, SPILL_IDLE) {
            crate::idle::Idle::Nothing => None,
            crate::idle::Idle::Until(at) => Some(at),
            crate::idle::Idle::Due => {
                self.batch.release();
                inbox.release();
                None
            }
        }
    }

    /// Heap bytes the task's spill queue holds.
    #[cfg(test)]
    fn heap(&self) -> usize {
        self.batch.heap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use utcp_proto::wire::{TcpFlags, TcpOptions, TcpRepr};
    use utcp_proto::{Instant, Segment, SeqNum};

    fn seg(n: u32) -> Inbound {
        let repr = TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq: SeqNum::new(n),
            ack: SeqNum::new(0),
            flags: TcpFlags::default(),
            window: 0,
            urgent: 0,
            options: TcpOptions::default(),
        };
        Inbound {
            seg: Segment {
                repr,
                payload: Bytes::new(),
            },
            truesize: 0,
        }
    }

    fn seqs(b: &mut Batch) -> Vec<u32> {
        std::iter::from_fn(|| b.pop())
            .map(|i| i.seg.repr.seq.get())
            .collect()
    }

    #[test]
    fn lone_segments_never_touch_the_heap() {
        let inbox = Inbox::new(8);
        let mut t = Taker::default();
        for n in 0..100 {
            assert!(
                matches!(inbox.push(seg(n)), Ok(true)),
                "an empty inbox asks for a wake"
            );
            assert!(t.take(&inbox, Instant::ZERO));
            assert_eq!(seqs(&mut t.batch), vec![n]);
        }
        assert_eq!(inbox.heap() + t.heap(), 0);
        assert_eq!(t.idle(&inbox, Instant::ZERO), None);
    }

    #[test]
    fn a_batch_comes_out_in_order_with_one_wake() {
        let inbox = Inbox::new(8);
        let wakes: Vec<bool> = (0..5).map(|n| inbox.push(seg(n)).unwrap()).collect();
        assert_eq!(wakes, [true, false, false, false, false]);
        let mut t = Taker::default();
        assert!(t.take(&inbox, Instant::ZERO));
        assert_eq!(seqs(&mut t.batch), [0, 1, 2, 3, 4]);
        assert!(!t.take(&inbox, Instant::ZERO), "nothing left behind");
    }

    #[test]
    fn a_full_inbox_refuses_and_keeps_what_it_holds() {
        let inbox = Inbox::new(3);
        for n in 0..3 {
            inbox.push(seg(n)).unwrap();
        }
        assert_eq!(inbox.push(seg(3)).unwrap_err(), Refused::Full);
        let mut t = Taker::default();
        t.take(&inbox, Instant::ZERO);
        assert_eq!(seqs(&mut t.batch), [0, 1, 2]);
    }

    #[test]
    fn a_busy_connection_keeps_its_spill_queue_and_an_idle_one_frees_it() {
        let inbox = Inbox::new(64);
        let mut t = Taker::default();
        let mut now = Instant::ZERO;
        // Steady batches: the two spill queues trade places, no new room.
        for round in 0..50u32 {
            for n in 0..10 {
                inbox.push(seg(round * 10 + n)).unwrap();
            }
            t.take(&inbox, now);
            assert_eq!(seqs(&mut t.batch).len(), 10);
            // The first look-again time holds while it is ahead.
            assert_eq!(t.idle(&inbox, now), Some(Instant::ZERO + SPILL_IDLE));
            now += Duration::from_millis(10);
        }
        // Reached while the connection still spills: moved on.
        let last = Instant::from_millis(490);
        assert_eq!(
            t.idle(&inbox, Instant::ZERO + SPILL_IDLE),
            Some(last + SPILL_IDLE)
        );
        assert!(inbox.heap() + t.heap() > 0);
        assert_eq!(t.idle(&inbox, last + SPILL_IDLE), None);
        assert_eq!(inbox.heap() + t.heap(), 0, "idle: no heap");
        assert_eq!(
            t.idle(&inbox, last + SPILL_IDLE * 2),
            None,
            "nothing to look at again"
        );
    }

    #[test]
    fn closing_hands_over_what_waits_after_what_the_task_holds() {
        let inbox = Inbox::new(8);
        for n in 0..3 {
            inbox.push(seg(n)).unwrap();
        }
        let mut t = Taker::default();
        t.take(&inbox, Instant::ZERO);
        assert_eq!(t.batch.pop().unwrap().seg.repr.seq.get(), 0);
        inbox.push(seg(3)).unwrap();
        inbox.push(seg(4)).unwrap();
        inbox.close_into(&mut t.batch);
        assert_eq!(seqs(&mut t.batch), [1, 2, 3, 4]);
        assert_eq!(inbox.push(seg(5)).unwrap_err(), Refused::Closed);
        // Closed with the task holding nothing.
        let inbox = Inbox::new(8);
        inbox.push(seg(7)).unwrap();
        let mut b = Batch::default();
        inbox.close_into(&mut b);
        assert_eq!(seqs(&mut b), [7]);
    }
}

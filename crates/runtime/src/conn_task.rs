//! One task per connection: inbox in → transmit → re-arm the timer → wake
//! handles. On entering TIME_WAIT the task hands the connection's record to
//! the endpoint's TIME_WAIT table, frees the connection's buffers and its
//! inbox, and ends; the record answers the 4-tuple from then on.

use crate::conn::Shared;
use crate::idle::{Idle, IdleClock};
use crate::inbox::Taker;
use crate::listener::ListenerShared;
use crate::stack::{StackInner, Tx};
use bytes::BytesMut;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use tracing::Instrument;
use utcp_proto::{Event, Instant, MemoryPressure, State, TimeWait};

pub(crate) async fn run(
    stack: Arc<StackInner>,
    shared: Arc<Shared>,
    listener: Option<Arc<ListenerShared>>,
) {
    let span = shared.lock().conn.span().clone();
    drive(stack, shared, listener).instrument(span).await
}

/// Header bytes of a batch, and each segment's place in them.
type Scratch = (BytesMut, Vec<Tx>);

thread_local! {
    /// Transmit scratch shared by every connection task on this worker thread:
    /// headers are written here and handed to the device before the task next
    /// awaits, so no connection keeps buffers of its own for it.
    static SCRATCH: std::cell::RefCell<Scratch> =
        std::cell::RefCell::new((BytesMut::with_capacity(16 * 1024), Vec::with_capacity(256)));
}

/// The most segments a connection task hands the device per pass.
const MAX_TX_PER_PASS: usize = 64;

enum Exit {
    Closed,
    TimeWait(TimeWait),
    Stopped,
}

async fn drive(stack: Arc<StackInner>, shared: Arc<Shared>, listener: Option<Arc<ListenerShared>>) {
    let handle = shared.handle;
    let far = tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365);
    let sleep = tokio::time::sleep_until(far);
    tokio::pin!(sleep);
    let mut armed: Option<Instant> = None;
    // What the task took from its inbox (the device task queues there and
    // wakes the task through `shared.notify`).
    let mut taker = Taker::default();
    // When the connection last did work.
    let mut idle = IdleClock::default();
    let mut listener = listener;
    // The listener whose accept queue holds this connection once established.
    let mut queued_on: Option<Arc<ListenerShared>> = None;
    let mut stopping = false;
    // This connection's share of the stack's receive memory, and where the
    // stack stood at the last pass.
    let mut charged = 0usize;
    let mut level = MemoryPressure::Normal;
    // The connection's drop counters already added to the stack's.
    let mut counted = (0u64, 0u64);
    // Its bytes collapsed already added to the stack's.
    let mut collapsed = 0u64;

    // The pass left segments to send (MAX_TX_PER_PASS).
    let mut more;
    let exit = loop {
        let now = stack.clock.now();
        let mut connected = false;
        let (state, deadline) = {
            let mut g = shared.lock();
            // The stack's receive memory (tcp_mem) before any segment.
            let was = level;
            level = stack.rmem.level();
            if level != was {
                g.conn.set_memory_pressure(level);
            }
            // Drain the whole inbox first so one ACK answers a batch; from
            // TIME_WAIT on, what is left goes to the endpoint's record.
            if g.conn.state() != State::TimeWait {
                taker.take(&shared.inbox, now);
            }
            let mut worked = false;
            while g.conn.state() != State::TimeWait
                && let Some(inb) = taker.batch.pop()
            {
                worked = true;
                stack.rmem.sub(stack.rmem.inbox_charge(&inb));
                g.conn.handle_segment_sized(now, inb.seg, inb.truesize);
            }
            stack
                .rmem
                .update(&mut charged, stack.rmem.conn_charge(&g.conn));
            let c = g.conn.recv_collapsed();
            if c != collapsed {
                stack
                    .rmem
                    .collapsed
                    .fetch_add(c - collapsed, Ordering::Relaxed);
                collapsed = c;
            }
            if level != MemoryPressure::Normal || was != MemoryPressure::Normal {
                let st = g.conn.stats();
                let (pruned, drops) = (st.rcv_ooo_pruned, st.rcv_memory_drops);
                let (p0, d0) = counted;
                stack
                    .rmem
                    .ooo_pruned
                    .fetch_add(pruned - p0, Ordering::Relaxed);
                stack.rmem.drops.fetch_add(drops - d0, Ordering::Relaxed);
                counted = (pruned, drops);
            }
            if g.conn.poll_timeout().is_some_and(|d| d <= now) {
                g.conn.handle_timeout(now);
            }
            // At most MAX_TX_PER_PASS segments, so one connection does not
            // keep its worker from the others; the rest go next pass.
            more = SCRATCH.with_borrow_mut(|(buf, txs)| {
                buf.clear();
                txs.clear();
                while txs.len() < MAX_TX_PER_PASS {
                    let Some(t) = g.conn.poll_transmit(now, buf) else {
                        return false;
                    };
                    txs.push(Tx::new(buf.len(), t));
                }
                true
            });
            worked |= SCRATCH.with_borrow(|(_, txs)| !txs.is_empty());
            // Only the side that can go on is woken.
            let (mut readers, mut writers) = (false, false);
            while let Some(ev) = g.conn.poll_event() {
                worked = true;
                match ev {
                    Event::Connected => {
                        connected = true;
                        (readers, writers) = (true, true);
                    }
                    Event::StateChanged { from, to } => {
                        if g.history.is_empty() && from != State::Closed && from != State::Listen {
                            g.history.push(from);
                        }
                        g.push_history(to);
                        count_transition(&stack, from, to);
                        (readers, writers) = (true, true);
                    }
                    Event::Congestion(e) => {
                        // For the record only: nobody waits on it.
                        g.push_congestion(e);
                    }
                    Event::Readable => readers = true,
                    Event::Writable => writers = true,
                    Event::Error(_) | Event::Closed => (readers, writers) = (true, true),
                }
            }
            if readers {
                g.wake_readers();
            }
            if writers {
                g.wake_writers();
            }
            if worked {
                idle.touch(now);
            }
            let release = match idle.poll(now, IDLE_RELEASE) {
                Idle::Nothing => None,
                Idle::Until(at) => Some(at),
                Idle::Due => {
                    let freed = g.conn.release_idle_memory();
                    tracing::trace!(freed, "idle: queue room given back");
                    None
                }
            };
            let deadline = match (g.conn.poll_timeout(), release) {
                (Some(d), Some(r)) => Some(d.min(r)),
                (d, r) => d.or(r),
            };
            (g.conn.state(), deadline)
        };
        // Outside the connection's lock: hand the batch to the device.
        SCRATCH.with_borrow_mut(|(buf, txs)| {
            if !txs.is_empty() {
                stack.send_batch(buf, txs);
                txs.clear();
            }
        });
        if connected && state != State::Closed {
            // Its segments now bypass the endpoint (`StackInner::fast`).
            stack.fast_insert(&shared);
        }
        if connected && let Some(l) = listener.take() {
            if !l.push(shared.clone()) {
                // The listener is gone: reset what it never accepted.
                let mut g = shared.lock();
                g.released = true;
                g.conn.abort(stack.clock.now());
                continue;
            }
            queued_on = Some(l);
        }
        if stopping {
            break Exit::Stopped;
        }
        if state == State::Closed {
            break Exit::Closed;
        }
        if state == State::TimeWait
            && let Some(rec) = shared.lock().conn.time_wait_record()
        {
            break Exit::TimeWait(rec);
        }
        // An idle connection lets its inbox's spill queue go.
        let deadline = match (deadline, taker.idle(&shared.inbox, now)) {
            (Some(d), Some(i)) => Some(d.min(i)),
            (d, i) => d.or(i),
        };
        if deadline != armed {
            armed = deadline;
            let at = deadline.map(|d| stack.clock.to_tokio(d)).unwrap_or(far);
            sleep.as_mut().reset(at);
        }
        if more {
            // Let the worker's other tasks run, then send the rest.
            tokio::task::yield_now().await;
            continue;
        }
        // One future kept across waits: the kick (a user call, or segments
        // in an inbox that was empty), the timer, the stack's stop.
        let stop = std::future::poll_fn(|cx| {
            let kicked = shared.notify.poll(cx);
            if stack.stopping.load(Ordering::SeqCst) {
                return Poll::Ready(true);
            }
            if kicked || (armed.is_some() && sleep.as_mut().poll(cx).is_ready()) {
                return Poll::Ready(false);
            }
            Poll::Pending
        })
        .await;
        if stop && !stopping {
            // Reset what is still open (a connection opened after the
            // stack-wide reset included), so that no handle waits for a
            // task that is gone; one last pass flushes the RST and wakes
            // the handles.
            shared.lock().conn.abort(stack.clock.now());
            stopping = true;
        }
    };

    // The connection's buffers go with it (a retired TIME_WAIT stream keeps
    // only unread bytes, no longer counted).
    stack.rmem.sub(charged);

    if let Some(l) = queued_on {
        // Ended before it was accepted: its backlog slot is freed with its
        // 4-tuple, so it leaves the accept queue too (which stays bounded).
        l.unqueue(&shared);
    }

    let retransmitted = shared.lock().conn.stats().segments_retransmitted;
    if let Exit::TimeWait(rec) = exit {
        stack.enter_time_wait(handle, &shared, rec, taker.batch);
    } else {
        shared.inbox.close_into(&mut taker.batch);
        while let Some(inb) = taker.batch.pop() {
            stack.rmem.sub(stack.rmem.inbox_charge(&inb));
        }
        finish(&stack, handle, Some(shared));
    }
    // Its retransmissions stay in the MIB (counted live until now).
    stack
        .counters
        .ended_retrans
        .fetch_add(retransmitted, Ordering::Relaxed);
    // `Stack::shutdown`'s grace waits for this, not on a clock.
    stack.conn_ended.notify_waiters();
}

/// The TCP MIB's state-change counters (`crate::observe::TcpMib`), as
/// Linux's `tcp_set_state` keeps them.
fn count_transition(stack: &StackInner, from: State, to: State) {
    let c = &stack.counters;
    let synced = |s: State| matches!(s, State::Established | State::CloseWait);
    if synced(to) && !synced(from) {
        c.curr_estab.fetch_add(1, Ordering::Relaxed);
    } else if synced(from) && !synced(to) {
        c.curr_estab.fetch_sub(1, Ordering::Relaxed);
    }
    if to == State::Closed {
        if synced(from) {
            c.estab_resets.fetch_add(1, Ordering::Relaxed);
        } else if matches!(from, State::SynSent | State::SynReceived) {
            c.attempt_fails.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How long a connection goes without work (no segment in or out, no event)
/// before it gives its queues' room back
/// ([`Connection::release_idle_memory`](utcp_proto::Connection::release_idle_memory)),
/// so that an idle connection holds almost nothing (DESIGN) while a busy one
/// allocates nothing per segment.
const IDLE_RELEASE: std::time::Duration = crate::inbox::SPILL_IDLE;

/// Frees the 4-tuple and wakes the handles.
fn finish(stack: &Arc<StackInner>, handle: utcp_proto::ConnHandle, shared: Option<Arc<Shared>>) {
    if let Some(s) = &shared {
        stack.fast_remove(s);
    }
    stack.endpoint().remove(handle);
    if let Some(shared) = shared {
        let mut g = shared.lock();
        g.wake_all();
    }
}

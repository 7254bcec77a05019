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
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use tokio::time::Sleep;
use utcp_proto::{Event, Instant, MemoryPressure, State, TimeWait};

/// Header bytes of a batch, and each segment's place in them.
type Scratch = (BytesMut, Vec<Tx>);

thread_local! {
    /// Transmit scratch shared by every connection task on this worker thread:
    /// headers are written here and handed to the device before the task next
    /// returns, so no connection keeps buffers of its own for it.
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

/// A connection's task: a hand-written future (as quinn's connection
/// driver) that keeps its timer and its wait across wakes instead of
/// rebuilding them each pass. Each poll runs passes until there is nothing
/// left to do: inbox in, timers, at most [`MAX_TX_PER_PASS`] segments out in
/// one flush, the reader or writer side woken that can go on; then it waits
/// on the kick (a user call, or segments in an inbox that was empty), the
/// timer and the stack's stop.
///
/// Dropped unfinished (its runtime shutting down, before or after its first
/// poll, or a panic in a pass) it still frees the connection's 4-tuple, and
/// it always ends the stack's count of live tasks, so `Stack::shutdown`
/// never waits for a task that is gone.
pub(crate) struct Driver {
    stack: Arc<StackInner>,
    shared: Arc<Shared>,
    span: tracing::Span,
    /// The connection's timer, made on the first deadline (inside the
    /// runtime: the driver itself may be made on any thread) and re-armed
    /// only when its deadline moves.
    sleep: Option<Pin<Box<Sleep>>>,
    pass: Pass,
    /// Set once the task finished normally (its 4-tuple freed by `finish`).
    done: bool,
}

/// What a [`Driver`] keeps between passes, apart from its timer.
struct Pass {
    /// The deadline the timer is armed for (`None`: far away).
    armed: Option<Instant>,
    /// What the task took from its inbox (the device task queues there and
    /// wakes the task through `shared.notify`).
    taker: Taker,
    /// When the connection last did work.
    idle: IdleClock,
    /// The listener to queue the connection on once it is established.
    listener: Option<Arc<ListenerShared>>,
    /// The listener whose accept queue holds this connection once established.
    queued_on: Option<Arc<ListenerShared>>,
    /// The stack is stopping: the connection was reset; one last pass.
    stopping: bool,
    /// This connection's share of the stack's receive memory.
    charged: usize,
    /// Where the stack's receive memory stood at the last pass.
    level: MemoryPressure,
    /// The connection's drop counters already added to the stack's.
    counted: (u64, u64),
    /// Its bytes collapsed already added to the stack's.
    collapsed: u64,
}

/// How a pass ended.
enum Step {
    /// Wait for a kick or the timer; `more`: segments are left to send
    /// (the pass stopped at [`MAX_TX_PER_PASS`]), so yield and go on.
    /// `deadline`: the connection's next one (its timers, its idle
    /// release), as the pass that started at `now` left it.
    Wait {
        more: bool,
        now: Instant,
        deadline: Option<Instant>,
    },
    /// Run another pass at once.
    Again,
    /// The task is over.
    Exit(Exit),
}

/// The connection task of `shared` (counted in the stack's live tasks by
/// `attach_conn` already).
pub(crate) fn run(
    stack: Arc<StackInner>,
    shared: Arc<Shared>,
    listener: Option<Arc<ListenerShared>>,
) -> Driver {
    let span = shared.lock().conn.span().clone();
    Driver {
        stack,
        shared,
        span,
        sleep: None,
        pass: Pass {
            armed: None,
            taker: Taker::default(),
            idle: IdleClock::default(),
            listener,
            queued_on: None,
            stopping: false,
            charged: 0,
            level: MemoryPressure::Normal,
            counted: (0, 0),
            collapsed: 0,
        },
        done: false,
    }
}

/// The timer's instant when no deadline is set.
fn far() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365)
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let _enter = this.span.enter();
        // The kick that woke this poll is taken before the pass that
        // answers it: left set, it would count as a new one after the pass
        // and buy a second, idle pass on every wake.
        this.shared.notify.poll(cx);
        loop {
            let (stack, shared) = (&this.stack, &this.shared);
            match this.pass.run(stack, shared) {
                Step::Again => continue,
                Step::Exit(exit) => {
                    this.pass.finish(stack, shared, exit);
                    this.done = true;
                    return Poll::Ready(());
                }
                Step::Wait {
                    more,
                    now,
                    deadline,
                } => {
                    let p = &mut this.pass;
                    // An idle connection lets its inbox's spill queue go.
                    let deadline = match (deadline, p.taker.idle(&shared.inbox, now)) {
                        (Some(d), Some(i)) => Some(d.min(i)),
                        (d, i) => d.or(i),
                    };
                    if deadline != p.armed {
                        p.armed = deadline;
                        let at = deadline.map(|d| stack.clock.to_tokio(d));
                        match (&mut this.sleep, at) {
                            (Some(sleep), at) => sleep.as_mut().reset(at.unwrap_or_else(far)),
                            (None, Some(at)) => {
                                this.sleep = Some(Box::pin(tokio::time::sleep_until(at)))
                            }
                            (None, None) => {}
                        }
                    }
                    if more {
                        // Let the worker's other tasks run, then send the
                        // rest: a task that wakes itself while polled is
                        // queued behind them (tokio treats it as a yield).
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    let kicked = shared.notify.poll(cx);
                    if stack.stopping.load(Ordering::SeqCst) {
                        if !p.stopping {
                            // Reset what is still open (a connection opened
                            // after the stack-wide reset included), so that
                            // no handle waits for a task that is gone; one
                            // last pass flushes the RST and wakes the handles.
                            shared.lock().conn.abort(stack.clock.now());
                            p.stopping = true;
                        }
                        continue;
                    }
                    let fired = p.armed.is_some()
                        && this
                            .sleep
                            .as_mut()
                            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                    if kicked || fired {
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.done {
            if std::thread::panicking() {
                tracing::error!(parent: &self.span, "connection task panicked; freeing its 4-tuple");
            } else {
                // Dropped unfinished: its runtime is shutting down.
                tracing::debug!(parent: &self.span, "connection task cancelled; freeing its 4-tuple");
            }
            self.stack.fast_remove(&self.shared);
            self.stack.endpoint().remove(self.shared.handle);
        }
        self.stack.task_ended();
    }
}

impl Pass {
    /// One pass: the inbox, the timers, the transmits, the wakes.
    fn run(&mut self, stack: &Arc<StackInner>, shared: &Arc<Shared>) -> Step {
        let now = stack.clock.now();
        stack.counters.task_passes.fetch_add(1, Ordering::Relaxed);
        let mut connected = false;
        let (state, deadline, more) = {
            let mut g = shared.lock();
            // The stack's receive memory (tcp_mem) before any segment.
            let was = self.level;
            self.level = stack.rmem.level();
            if self.level != was {
                g.conn.set_memory_pressure(self.level);
            }
            // Drain the whole inbox first so one ACK answers a batch; from
            // TIME_WAIT on, what is left goes to the endpoint's record.
            if g.conn.state() != State::TimeWait {
                self.taker.take(&shared.inbox, now);
            }
            let mut worked = false;
            while g.conn.state() != State::TimeWait
                && let Some(inb) = self.taker.batch.pop()
            {
                worked = true;
                stack.rmem.sub(stack.rmem.inbox_charge(&inb));
                g.conn.handle_segment_sized(now, inb.seg, inb.truesize);
            }
            stack
                .rmem
                .update(&mut self.charged, stack.rmem.conn_charge(&g.conn));
            let c = g.conn.recv_collapsed();
            if c != self.collapsed {
                stack
                    .rmem
                    .collapsed
                    .fetch_add(c - self.collapsed, Ordering::Relaxed);
                self.collapsed = c;
            }
            if self.level != MemoryPressure::Normal || was != MemoryPressure::Normal {
                let st = g.conn.stats();
                let (pruned, drops) = (st.rcv_ooo_pruned, st.rcv_memory_drops);
                let (p0, d0) = self.counted;
                stack
                    .rmem
                    .ooo_pruned
                    .fetch_add(pruned - p0, Ordering::Relaxed);
                stack.rmem.drops.fetch_add(drops - d0, Ordering::Relaxed);
                self.counted = (pruned, drops);
            }
            if g.conn.poll_timeout().is_some_and(|d| d <= now) {
                g.conn.handle_timeout(now);
            }
            // At most MAX_TX_PER_PASS segments, so one connection does not
            // keep its worker from the others; the rest go next pass.
            let more = SCRATCH.with_borrow_mut(|(buf, txs)| {
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
                        count_transition(stack, from, to);
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
                self.idle.touch(now);
            }
            let release = match self.idle.poll(now, IDLE_RELEASE) {
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
            (g.conn.state(), deadline, more)
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
            stack.fast_insert(shared);
        }
        if connected && let Some(l) = self.listener.take() {
            if !l.push(shared.clone()) {
                // The listener is gone: reset what it never accepted.
                let mut g = shared.lock();
                g.released = true;
                g.conn.abort(stack.clock.now());
                return Step::Again;
            }
            self.queued_on = Some(l);
        }
        if self.stopping {
            return Step::Exit(Exit::Stopped);
        }
        if state == State::Closed {
            return Step::Exit(Exit::Closed);
        }
        if state == State::TimeWait
            && let Some(rec) = shared.lock().conn.time_wait_record()
        {
            return Step::Exit(Exit::TimeWait(rec));
        }
        Step::Wait {
            more,
            now,
            deadline,
        }
    }

    /// The task's end: its memory, its accept-queue slot, its 4-tuple (or
    /// its TIME_WAIT record), its counters, `shutdown`'s wait.
    fn finish(&mut self, stack: &Arc<StackInner>, shared: &Arc<Shared>, exit: Exit) {
        // The connection's buffers go with it (a retired TIME_WAIT stream
        // keeps only unread bytes, no longer counted).
        stack.rmem.sub(self.charged);
        self.charged = 0;
        if let Some(l) = self.queued_on.take() {
            // Ended before it was accepted: its backlog slot is freed with
            // its 4-tuple, so it leaves the accept queue too (which stays
            // bounded).
            l.unqueue(shared);
        }
        let retransmitted = shared.lock().conn.stats().segments_retransmitted;
        let batch = std::mem::take(&mut self.taker.batch);
        if let Exit::TimeWait(rec) = exit {
            stack.enter_time_wait(shared.handle, shared, rec, batch);
        } else {
            let mut batch = batch;
            shared.inbox.close_into(&mut batch);
            while let Some(inb) = batch.pop() {
                stack.rmem.sub(stack.rmem.inbox_charge(&inb));
            }
            finish(stack, shared.handle, Some(shared.clone()));
        }
        // Its retransmissions stay in the MIB (counted live until now).
        stack
            .counters
            .ended_retrans
            .fetch_add(retransmitted, Ordering::Relaxed);
        // `Stack::shutdown`'s grace waits for this, not on a clock.
        stack.conn_ended.notify_waiters();
    }
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

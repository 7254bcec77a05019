//! One task per connection: inbox in → transmit → re-arm the timer → wake
//! handles. In TIME_WAIT, once the application let go, the task frees the
//! connection and keeps only a [`TimeWait`] record and one 2·MSL sleep.

use crate::conn::Shared;
use crate::listener::ListenerShared;
use crate::stack::StackInner;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::Instrument;
use utcp_proto::{Event, Instant, Route, Segment, State, TimeWait, TimeWaitAction};

pub(crate) async fn run(
    stack: Arc<StackInner>,
    shared: Arc<Shared>,
    inbox: mpsc::Receiver<Segment>,
    listener: Option<Arc<ListenerShared>>,
) {
    let span = shared.lock().conn.span().clone();
    drive(stack, shared, inbox, listener).instrument(span).await
}

/// Header bytes of a batch, and (offset, length, payload) per segment.
type Scratch = (BytesMut, Vec<(usize, usize, Bytes)>);

thread_local! {
    /// Transmit scratch shared by every connection task on this worker thread:
    /// headers are written here and handed to the device before the task next
    /// awaits, so no connection keeps buffers of its own for it.
    static SCRATCH: std::cell::RefCell<Scratch> =
        std::cell::RefCell::new((BytesMut::with_capacity(16 * 1024), Vec::with_capacity(256)));
}

enum Exit {
    Closed,
    TimeWait(TimeWait),
    Stopped,
}

async fn drive(
    stack: Arc<StackInner>,
    shared: Arc<Shared>,
    mut inbox: mpsc::Receiver<Segment>,
    listener: Option<Arc<ListenerShared>>,
) {
    let handle = shared.handle;
    let mut stop = stack.stop.subscribe();
    let far = tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365);
    let sleep = tokio::time::sleep_until(far);
    tokio::pin!(sleep);
    let mut armed: Option<Instant> = None;
    let mut pending: Option<Segment> = None;
    let mut listener = listener;
    // The listener whose accept queue holds this connection once established.
    let mut queued_on: Option<Arc<ListenerShared>> = None;
    let mut stopping = false;

    let exit = loop {
        let now = stack.clock.now();
        let mut connected = false;
        let (state, released, deadline) = {
            let mut g = shared.lock();
            if let Some(seg) = pending.take() {
                g.conn.handle_segment(now, seg);
            }
            // Drain the whole inbox first so one ACK answers a batch.
            while let Ok(seg) = inbox.try_recv() {
                g.conn.handle_segment(now, seg);
            }
            if g.conn.poll_timeout().is_some_and(|d| d <= now) {
                g.conn.handle_timeout(now);
            }
            SCRATCH.with_borrow_mut(|(buf, txs)| {
                buf.clear();
                txs.clear();
                while let Some(t) = g.conn.poll_transmit(now, buf) {
                    txs.push((buf.len() - t.header_len, t.header_len, t.payload));
                }
            });
            let mut wake = false;
            while let Some(ev) = g.conn.poll_event() {
                match ev {
                    Event::Connected => connected = true,
                    Event::StateChanged { from, to } => {
                        if g.history.is_empty() && from != State::Closed && from != State::Listen {
                            g.history.push(from);
                        }
                        if g.history.len() < 32 {
                            g.history.push(to);
                        }
                    }
                    _ => {}
                }
                wake = true;
            }
            if wake {
                g.wake_all();
            }
            (g.conn.state(), g.released, g.conn.poll_timeout())
        };
        // Outside the connection's lock: hand the batch to the device.
        SCRATCH.with_borrow_mut(|(buf, txs)| {
            if !txs.is_empty() {
                stack.send_batch(buf, txs);
                txs.clear();
            }
        });
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
        if state == State::TimeWait && released {
            let rec = shared.lock().conn.time_wait_record(now);
            if let Some(rec) = rec {
                break Exit::TimeWait(rec);
            }
        }
        if deadline != armed {
            armed = deadline;
            let at = deadline.map(|d| stack.clock.to_tokio(d)).unwrap_or(far);
            sleep.as_mut().reset(at);
        }
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => {
                // Reset what is still open (a connection opened after the
                // stack-wide reset included), so that no handle waits for a
                // task that is gone; one last pass flushes the RST and wakes
                // the handles.
                shared.lock().conn.abort(stack.clock.now());
                stopping = true;
            }
            seg = inbox.recv() => pending = seg,
            _ = shared.notify.notified() => {}
            _ = &mut sleep, if armed.is_some() => {}
        }
    };

    if let Some(l) = queued_on {
        // Ended before it was accepted: its backlog slot is freed with its
        // 4-tuple, so it leaves the accept queue too (which stays bounded).
        l.unqueue(&shared);
    }

    if let Exit::TimeWait(rec) = exit {
        let allowed = stack.endpoint().enter_time_wait(handle);
        shared.lock().final_state = Some(State::TimeWait);
        // Free the connection and its buffers: the endpoint's reference goes,
        // and ours with this task. What remains is a separate, record-sized
        // task (4-tuple, SND.NXT, RCV.NXT, one 2·MSL sleep).
        stack.detach_shared(handle);
        drop(shared);
        if !allowed {
            tracing::debug!(
                from = "TIME_WAIT",
                to = "CLOSED",
                cause = "TIME_WAIT limit",
                "state"
            );
            finish(&stack, handle, None, None);
            return;
        }
        stack.task_started();
        let task = time_wait_task(stack, rec, inbox, stop, handle);
        tokio::spawn(task.instrument(tracing::Span::current()));
    } else {
        finish(&stack, handle, Some(shared), None);
    }
}

/// The task that replaces a connection's in TIME_WAIT.
pub(crate) async fn time_wait_task(
    stack: Arc<StackInner>,
    rec: TimeWait,
    mut inbox: mpsc::Receiver<Segment>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    handle: utcp_proto::ConnHandle,
) {
    let reopen = time_wait(&stack, rec, &mut inbox, &mut stop).await;
    finish(&stack, handle, None, reopen);
    stack.task_ended();
}

/// The record-sized TIME_WAIT: re-ACK retransmitted FINs, close on RST or
/// after 2·MSL, or hand a new SYN to the listener.
async fn time_wait(
    stack: &Arc<StackInner>,
    mut tw: TimeWait,
    inbox: &mut mpsc::Receiver<Segment>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<(Segment, utcp_proto::SeqNum)> {
    let mut buf = BytesMut::with_capacity(128);
    loop {
        let sleep = tokio::time::sleep_until(stack.clock.to_tokio(tw.deadline));
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return None,
            seg = inbox.recv() => {
                let seg = seg?;
                let now = stack.clock.now();
                match tw.handle_segment(now, &seg.repr, seg.payload.len()) {
                    TimeWaitAction::Ignore => {}
                    TimeWaitAction::Ack => {
                        buf.clear();
                        let t = tw.ack(&mut buf);
                        stack.send_batch(&buf, &[(0, t.header_len, Bytes::new())]);
                    }
                    TimeWaitAction::Reopen { iss_above } => {
                        tracing::debug!(from = "TIME_WAIT", to = "CLOSED", cause = "new SYN reopens the 4-tuple", "state");
                        return Some((seg, iss_above));
                    }
                    TimeWaitAction::Close => {
                        tracing::debug!(from = "TIME_WAIT", to = "CLOSED", cause = "RST", "state");
                        return None;
                    }
                }
            }
            _ = sleep => {
                if tw.expired(stack.clock.now()) {
                    tracing::debug!(from = "TIME_WAIT", to = "CLOSED", cause = "2MSL timeout", "state");
                    return None;
                }
            }
        }
    }
}

/// Frees the 4-tuple; a reopening SYN becomes a new connection.
fn finish(
    stack: &Arc<StackInner>,
    handle: utcp_proto::ConnHandle,
    shared: Option<Arc<Shared>>,
    reopen: Option<(Segment, utcp_proto::SeqNum)>,
) {
    let mut ep = stack.endpoint();
    let tuple = ep.tuple(handle);
    ep.remove(handle);
    let mut replies = BytesMut::new();
    let mut txs = Vec::new();
    if let (Some((seg, iss_above)), Some(t)) = (reopen, tuple) {
        let now = stack.clock.now();
        match ep.reopen(
            now,
            t.remote.ip(),
            t.local.ip(),
            &seg.repr,
            seg.payload.len(),
            iss_above,
        ) {
            Route::Incoming {
                listener,
                handle,
                conn,
            } => {
                let l = stack.listener(listener);
                let s = stack.spawn_conn(&mut ep, handle, *conn, l);
                s.notify.notify_one();
            }
            Route::Reset => {
                // Nobody listens any more: the endpoint's RST leaves now, not
                // with the device task's next batch.
                while let Some(t) = ep.poll_transmit(&mut replies) {
                    txs.push((replies.len() - t.header_len, t.header_len, t.payload));
                }
            }
            Route::Drop(utcp_proto::DropReason::BacklogFull) => {
                stack
                    .counters
                    .backlog_drops
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            _ => {}
        }
    }
    drop(ep);
    if !txs.is_empty() {
        stack
            .counters
            .resets_sent
            .fetch_add(txs.len() as u64, std::sync::atomic::Ordering::Relaxed);
        stack.send_batch(&replies, &txs);
    }
    if let Some(shared) = shared {
        let mut g = shared.lock();
        g.wake_all();
    }
}

//! A connection as the runtime shares it between its task and the
//! application's handles: one `Mutex<Connection>` plus wakers, never held
//! across `.await`.

use crate::stack::StackInner;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use tokio::io::ReadBuf;
use utcp_proto::{CongestionEvent, ConnHandle, Connection, Error, State, Stats, TimeWaitId};

/// How many congestion-window changes a connection keeps for
/// [`ConnRef::congestion_events`].
pub const CONGESTION_EVENTS_KEPT: usize = 256;

/// Wakes a connection's task: a flag and the task's waker, so a wake takes
/// no lock and the task keeps nothing to rebuild between waits.
#[derive(Debug, Default)]
pub(crate) struct Kick {
    pending: AtomicBool,
    waker: atomic_waker::AtomicWaker,
}

impl Kick {
    /// There is work for the task: it runs a pass soon (at once if it
    /// waits; after the pass it is in, if it runs).
    pub(crate) fn notify_one(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }

    /// The task: whether it was kicked since it last looked; it is woken at
    /// the next kick either way.
    pub(crate) fn poll(&self, cx: &Context<'_>) -> bool {
        self.waker.register(cx.waker());
        self.pending.swap(false, Ordering::AcqRel)
    }
}

/// What the task and the handles share.
pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    /// Wakes the connection's task: a user call that has something to send,
    /// or segments in an inbox that was empty.
    pub(crate) notify: Kick,
    /// Segments from the device task.
    pub(crate) inbox: crate::inbox::Inbox,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) handle: ConnHandle,
}

pub(crate) struct Inner {
    pub(crate) conn: Connection,
    /// Tasks waiting to read (or for read readiness): every one is woken.
    pub(crate) readers: Vec<Waker>,
    /// Tasks waiting to write (or for write readiness, or the handshake).
    pub(crate) writers: Vec<Waker>,
    /// The application dropped every handle (or never had one: not accepted).
    pub(crate) released: bool,
    /// Once the connection was retired (its record went to the endpoint's
    /// TIME_WAIT table): TIME_WAIT, then CLOSED when the record ends.
    pub(crate) final_state: Option<State>,
    /// The TIME_WAIT record, while it may still be live.
    pub(crate) tw: Option<TimeWaitId>,
    /// States passed through, in order (bounded).
    pub(crate) history: Vec<State>,
    /// The latest congestion-window changes, oldest first (bounded; empty,
    /// and holding no memory, on a connection that never lost anything).
    pub(crate) congestion: std::collections::VecDeque<CongestionEvent>,
    /// The connection's error was returned to the application once; later
    /// writes fail with `BrokenPipe` (STYLE's error table, as EPIPE).
    pub(crate) error_reported: bool,
}

impl Shared {
    pub(crate) fn new(conn: Connection, handle: ConnHandle, inbox: usize) -> Arc<Shared> {
        Arc::new(Shared {
            local: conn.local_addr(),
            remote: conn.remote_addr(),
            handle,
            inner: Mutex::new(Inner {
                conn,
                readers: Vec::new(),
                writers: Vec::new(),
                released: false,
                final_state: None,
                tw: None,
                history: Vec::new(),
                congestion: std::collections::VecDeque::new(),
                error_reported: false,
            }),
            notify: Kick::default(),
            inbox: crate::inbox::Inbox::new(inbox),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock is a bug elsewhere; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    /// `e` goes to the application: remember that the error was reported.
    fn report(&mut self, e: Error) -> io::Error {
        if self.conn.error().is_some() {
            self.error_reported = true;
        }
        e.into()
    }

    /// Records a congestion-window change, keeping the latest
    /// [`CONGESTION_EVENTS_KEPT`].
    pub(crate) fn push_congestion(&mut self, e: CongestionEvent) {
        if self.congestion.len() == CONGESTION_EVENTS_KEPT {
            self.congestion.pop_front();
        }
        self.congestion.push_back(e);
    }

    /// Records a state in the bounded history.
    pub(crate) fn push_history(&mut self, s: State) {
        if self.history.len() < 32 && self.history.last() != Some(&s) {
            self.history.push(s);
        }
    }

    pub(crate) fn wake_all(&mut self) {
        self.wake_readers();
        self.wake_writers();
    }

    /// Wakes the tasks waiting to read (or for read readiness).
    pub(crate) fn wake_readers(&mut self) {
        for w in self.readers.drain(..) {
            w.wake();
        }
    }

    /// Wakes the tasks waiting to write (or for write readiness, or the
    /// handshake).
    pub(crate) fn wake_writers(&mut self) {
        for w in self.writers.drain(..) {
            w.wake();
        }
    }

    /// Whether a read would not wait: data, EOF, or an error to report.
    fn read_ready(&self) -> bool {
        self.conn.readable() > 0
            || self.conn.peer_closed()
            || self.conn.error().is_some()
            || self.conn.state() == State::Closed
            || self.final_state.is_some()
    }

    /// Whether a write would not wait: room in the send buffer once the
    /// handshake is done, or an error (the write fails at once).
    fn write_ready(&self) -> bool {
        if self.conn.error().is_some() || self.error_reported {
            return true;
        }
        match self.conn.state() {
            State::SynSent | State::SynReceived => false,
            s if !s.can_send() => true,
            _ => self.conn.send_space() > 0 || self.final_state.is_some(),
        }
    }
}

/// Adds the task to a waiter list once (a task polling again replaces
/// nothing: its waker is already there).
fn park(list: &mut Vec<Waker>, cx: &Context<'_>) {
    if !list.iter().any(|w| w.will_wake(cx.waker())) {
        list.push(cx.waker().clone());
    }
}

/// What a readiness poll found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// A read would not wait.
    pub readable: bool,
    /// A write would not wait.
    pub writable: bool,
    /// The read side is at EOF or failed.
    pub read_closed: bool,
    /// The write side is shut down or failed.
    pub write_closed: bool,
}

/// A handle on one connection of a [`Stack`](crate::Stack): the runtime side of
/// `utcp::TcpStream`. Reads and writes copy straight between the caller's
/// buffer and the connection's buffers (one copy each way).
pub struct ConnRef {
    pub(crate) shared: Arc<Shared>,
    pub(crate) stack: Arc<StackInner>,
}

impl std::fmt::Debug for ConnRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnRef")
            .field("local", &self.shared.local)
            .field("remote", &self.shared.remote)
            .finish()
    }
}

impl ConnRef {
    /// Local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// Remote address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared.remote
    }

    /// The connection's state.
    pub fn state(&self) -> State {
        let g = self.shared.lock();
        g.final_state.unwrap_or_else(|| g.conn.state())
    }

    /// Every state the connection passed through, oldest first (the first
    /// is SYN_SENT or SYN_RECEIVED; at most 32 are kept).
    pub fn state_history(&self) -> Vec<State> {
        self.shared.lock().history.clone()
    }

    /// The latest changes of the congestion window (loss episodes,
    /// timeouts, repaired tail losses, undos), oldest first; at most
    /// [`CONGESTION_EVENTS_KEPT`].
    pub fn congestion_events(&self) -> Vec<CongestionEvent> {
        self.shared.lock().congestion.iter().copied().collect()
    }

    /// A TCP_INFO-like snapshot.
    pub fn stats(&self) -> Stats {
        self.shared.lock().conn.stats()
    }

    /// Waits until the handshake completes or fails.
    pub fn poll_connected(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut g = self.shared.lock();
        let st = g.conn.state();
        if let Some(e) = g.conn.error() {
            return Poll::Ready(Err(g.report(e)));
        }
        match st {
            State::SynSent | State::SynReceived => {
                park(&mut g.writers, cx);
                Poll::Pending
            }
            State::Closed => Poll::Ready(Err(Error::NotConnected.into())),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Polls for read and write readiness; `Pending` (with the task parked on
    /// each direction asked for) when neither asked-for direction is ready.
    /// Several tasks may wait at once: each is woken.
    pub fn poll_ready(&self, cx: &mut Context<'_>, read: bool, write: bool) -> Poll<Readiness> {
        let mut g = self.shared.lock();
        let r = Readiness {
            readable: read && g.read_ready(),
            writable: write && g.write_ready(),
            read_closed: read && (g.conn.peer_closed() || g.conn.error().is_some()),
            write_closed: write
                && (g.conn.error().is_some() || g.error_reported || !g.conn.state().can_send()),
        };
        if r.readable || r.writable {
            return Poll::Ready(r);
        }
        if read {
            park(&mut g.readers, cx);
        }
        if write {
            park(&mut g.writers, cx);
        }
        Poll::Pending
    }

    /// Reads into `buf`; `Ready(Ok(()))` with nothing filled is EOF. Only the
    /// bytes about to be copied are initialized in `buf`, not all of it.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut g = self.shared.lock();
        // At least one byte of room: an empty slice would read as EOF.
        let want = g.conn.readable().max(1).min(buf.remaining());
        let dst = buf.initialize_unfilled_to(want);
        match g.conn.recv(dst) {
            Ok(Some(n)) => {
                buf.advance(n);
                // Under receive-memory pressure the task recounts what this
                // read freed (it may lift the pressure for everyone).
                let recount =
                    n > 0 && self.stack.rmem.level() != utcp_proto::MemoryPressure::Normal;
                if g.conn.take_flush_hint() || recount {
                    drop(g);
                    self.shared.notify.notify_one();
                }
                Poll::Ready(Ok(()))
            }
            Ok(None) => {
                park(&mut g.readers, cx);
                Poll::Pending
            }
            // Once the error was reported (by any call), reads see EOF, as
            // with a kernel socket after ECONNRESET.
            Err(_) if g.error_reported => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(g.report(e))),
        }
    }

    /// Reads up to `max` bytes without a copy (a slice of the buffer they
    /// arrived in); `Ready(Ok(empty))` is EOF (or `max` of 0).
    pub fn poll_read_bytes(
        &self,
        cx: &mut Context<'_>,
        max: usize,
    ) -> Poll<io::Result<bytes::Bytes>> {
        let mut g = self.shared.lock();
        match g.conn.recv_bytes(max) {
            Ok(Some(b)) => {
                let recount =
                    !b.is_empty() && self.stack.rmem.level() != utcp_proto::MemoryPressure::Normal;
                if g.conn.take_flush_hint() || recount {
                    drop(g);
                    self.shared.notify.notify_one();
                }
                Poll::Ready(Ok(b))
            }
            Ok(None) => {
                park(&mut g.readers, cx);
                Poll::Pending
            }
            Err(_) if g.error_reported => Poll::Ready(Ok(bytes::Bytes::new())),
            Err(e) => Poll::Ready(Err(g.report(e))),
        }
    }

    /// Copies received bytes into `buf` without consuming them; `Ready(Ok(0))`
    /// with room in `buf` is EOF.
    pub fn poll_peek(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        let mut g = self.shared.lock();
        let dst = buf.initialize_unfilled();
        match g.conn.peek(dst) {
            Ok(Some(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(n))
            }
            Ok(None) => {
                park(&mut g.readers, cx);
                Poll::Pending
            }
            Err(_) if g.error_reported => Poll::Ready(Ok(0)),
            Err(e) => Poll::Ready(Err(g.report(e))),
        }
    }

    /// Reads what is there without waiting.
    ///
    /// # Errors
    /// `WouldBlock` when nothing is readable yet; the connection's error once
    /// (then EOF, as `poll_read`).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut g = self.shared.lock();
        match g.conn.recv(buf) {
            Ok(Some(n)) => {
                if g.conn.take_flush_hint() {
                    drop(g);
                    self.shared.notify.notify_one();
                }
                Ok(n)
            }
            Ok(None) => Err(io::ErrorKind::WouldBlock.into()),
            Err(_) if g.error_reported => Ok(0),
            Err(e) => Err(g.report(e)),
        }
    }

    /// Queues what fits without waiting.
    ///
    /// # Errors
    /// `WouldBlock` while the send buffer is full or the handshake is not
    /// done; otherwise as `poll_write`.
    pub fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        match self.poll_write(&mut Context::from_waker(Waker::noop()), data) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// The connection's error, if it failed and the error was not returned
    /// yet (as `SO_ERROR`: reading it clears it).
    pub fn take_error(&self) -> Option<io::Error> {
        let mut g = self.shared.lock();
        match g.conn.error() {
            Some(e) if !g.error_reported => Some(g.report(e)),
            _ => None,
        }
    }

    /// The IP TTL / hop limit of the connection's segments.
    pub fn ttl(&self) -> u8 {
        self.shared.lock().conn.hop_limit()
    }

    /// Sets the IP TTL / hop limit of the connection's later segments.
    ///
    /// # Errors
    /// `InvalidInput` for 0.
    pub fn set_ttl(&self, ttl: u8) -> io::Result<()> {
        Ok(self.shared.lock().conn.set_hop_limit(ttl)?)
    }

    /// The connection's congestion controller.
    pub fn congestion(&self) -> utcp_proto::CongestionAlgorithm {
        self.shared.lock().conn.congestion()
    }

    /// Chooses the congestion controller (`TCP_CONGESTION`) before the
    /// connection's first byte of data.
    ///
    /// # Errors
    /// `InvalidInput` once data was sent.
    pub fn set_congestion(&self, algorithm: utcp_proto::CongestionAlgorithm) -> io::Result<()> {
        Ok(self.shared.lock().conn.set_congestion(algorithm)?)
    }

    /// Runs `f` on the connection at the stack's time, then wakes the
    /// connection's task so that a timer the call moved is re-armed (and
    /// anything it let go is sent).
    fn with_timers<T>(&self, f: impl FnOnce(&mut Connection, utcp_proto::Instant) -> T) -> T {
        let now = self.stack.clock.now();
        let out = f(&mut self.shared.lock().conn, now);
        self.shared.notify.notify_one();
        out
    }

    /// Whether Nagle's algorithm is off (`TCP_NODELAY`).
    pub fn nodelay(&self) -> bool {
        self.shared.lock().conn.nodelay()
    }

    /// Turns Nagle's algorithm off (`true`) or on; turned off, a segment
    /// it held leaves at once.
    pub fn set_nodelay(&self, nodelay: bool) {
        self.with_timers(|c, _| c.set_nodelay(nodelay));
    }

    /// Whether quick ACKs are on (`TCP_QUICKACK` as Linux reads it).
    pub fn quickack(&self) -> bool {
        self.shared.lock().conn.quickack()
    }

    /// `TCP_QUICKACK`: `true` ACKs the next batches at once (an ACK owed now
    /// leaves at once); `false` makes the connection interactive (ACKs wait
    /// for data or the delayed-ACK timer). Not permanent, as Linux.
    pub fn set_quickack(&self, quickack: bool) {
        self.with_timers(|c, _| c.set_quickack(quickack));
    }

    /// Whether keepalive probes are on (`SO_KEEPALIVE`).
    pub fn keepalive(&self) -> bool {
        self.shared.lock().conn.keepalive()
    }

    /// The keepalive settings: idle time, interval, count (`TCP_KEEPIDLE`,
    /// `TCP_KEEPINTVL`, `TCP_KEEPCNT`).
    pub fn keepalive_params(&self) -> (utcp_proto::Duration, utcp_proto::Duration, u32) {
        let g = self.shared.lock();
        (
            g.conn.keepalive_time(),
            g.conn.keepalive_interval(),
            g.conn.keepalive_retries(),
        )
    }

    /// Turns keepalive probes on or off (`SO_KEEPALIVE`).
    pub fn set_keepalive(&self, on: bool) {
        self.with_timers(|c, now| c.set_keepalive(now, on));
    }

    /// Sets the keepalive settings given (`None` keeps one as it is).
    ///
    /// # Errors
    /// `InvalidInput` for a zero time, interval or count; nothing is
    /// changed then.
    pub fn set_keepalive_params(
        &self,
        time: Option<utcp_proto::Duration>,
        interval: Option<utcp_proto::Duration>,
        retries: Option<u32>,
    ) -> io::Result<()> {
        if time.is_some_and(|d| d.is_zero())
            || interval.is_some_and(|d| d.is_zero())
            || retries == Some(0)
        {
            return Err(Error::InvalidInput("a keepalive time, interval or count of 0").into());
        }
        self.with_timers(|c, now| {
            if let Some(d) = time {
                c.set_keepalive_time(now, d)?;
            }
            if let Some(d) = interval {
                c.set_keepalive_interval(d)?;
            }
            if let Some(n) = retries {
                c.set_keepalive_retries(n)?;
            }
            Ok::<(), Error>(())
        })?;
        Ok(())
    }

    /// The user timeout (`TCP_USER_TIMEOUT`), if set.
    pub fn user_timeout(&self) -> Option<utcp_proto::Duration> {
        self.shared.lock().conn.user_timeout()
    }

    /// Sets or clears the user timeout (`TCP_USER_TIMEOUT`).
    ///
    /// # Errors
    /// `InvalidInput` for `Some(0)`.
    pub fn set_user_timeout(&self, timeout: Option<utcp_proto::Duration>) -> io::Result<()> {
        Ok(self.with_timers(|c, now| c.set_user_timeout(now, timeout))?)
    }

    /// Queues bytes to send; `Pending` while the send buffer is full.
    pub fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut g = self.shared.lock();
        if matches!(g.conn.state(), State::SynSent | State::SynReceived) && g.conn.error().is_none()
        {
            park(&mut g.writers, cx);
            return Poll::Pending;
        }
        if g.error_reported {
            return Poll::Ready(Err(Error::BrokenPipe.into()));
        }
        match g.conn.send(data) {
            Ok(0) => {
                park(&mut g.writers, cx);
                Poll::Pending
            }
            Ok(n) => {
                let hint = g.conn.take_flush_hint();
                drop(g);
                if hint {
                    self.shared.notify.notify_one();
                }
                Poll::Ready(Ok(n))
            }
            Err(e) => Poll::Ready(Err(g.report(e))),
        }
    }

    /// Queues the bytes of several buffers, in order, with one copy into the
    /// send buffer; `Pending` while nothing fits.
    pub fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let Some(first) = bufs.iter().position(|b| !b.is_empty()) else {
            return Poll::Ready(Ok(0));
        };
        let n = match self.poll_write(cx, &bufs[first]) {
            Poll::Ready(Ok(n)) => n,
            other => return other,
        };
        let mut total = n;
        if n == bufs[first].len() {
            let mut g = self.shared.lock();
            for b in &bufs[first + 1..] {
                match g.conn.send(b) {
                    Ok(k) => {
                        total += k;
                        if k < b.len() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            g.conn.take_flush_hint();
            drop(g);
            self.shared.notify.notify_one();
        }
        Poll::Ready(Ok(total))
    }

    /// Shuts down writing: FIN after the queued data.
    ///
    /// # Errors
    /// `NotConnected` once the connection failed (reset, timed out), as a
    /// kernel socket's `shutdown` then.
    pub fn shutdown_write(&self) -> io::Result<()> {
        let now = self.stack.clock.now();
        let mut g = self.shared.lock();
        if g.conn.error().is_some() {
            return Err(Error::NotConnected.into());
        }
        g.conn.shutdown(now);
        g.conn.take_flush_hint();
        drop(g);
        self.shared.notify.notify_one();
        Ok(())
    }

    /// Closes (FIN, or RST with unread data) and lets the connection finish
    /// in the background.
    pub fn close(&self) {
        let now = self.stack.clock.now();
        let mut g = self.shared.lock();
        g.released = true;
        if g.final_state.is_some() {
            // Retired: the TIME_WAIT record lives on in the endpoint.
            let tw = g.tw.take();
            drop(g);
            if let Some(id) = tw {
                self.stack.release_time_wait(id);
            }
            return;
        }
        g.conn.close(now);
        drop(g);
        self.shared.notify.notify_one();
    }

    /// Aborts with RST (in TIME_WAIT, as ABORT there, nothing is sent: RFC
    /// 9293 §3.10.5).
    pub fn abort(&self) {
        let now = self.stack.clock.now();
        let mut g = self.shared.lock();
        if g.final_state.is_some() {
            drop(g);
            self.close();
            return;
        }
        g.released = true;
        g.conn.abort(now);
        drop(g);
        self.shared.notify.notify_one();
    }
}

//! A listener as the runtime shares it: its accept queue of established
//! connections and the acceptors' wakers.

use crate::conn::{ConnRef, Shared};
use crate::socket::SocketOpts;
use crate::stack::StackInner;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use utcp_proto::{Connection, ListenerId};

pub(crate) struct ListenerShared {
    pub(crate) id: ListenerId,
    pub(crate) addr: SocketAddr,
    pub(crate) state: Mutex<ListenerState>,
    /// What every accepted connection gets before its SYN-ACK (the TTL
    /// lives in the endpoint's listener entry instead).
    pub(crate) opts: Mutex<SocketOpts>,
    /// Decides each SYN first (accept-any with a verdict).
    pub(crate) hook: Option<crate::verdict::SynHook>,
}

pub(crate) struct ListenerState {
    pub(crate) queue: VecDeque<Arc<Shared>>,
    /// Every pending acceptor (a shared listener may be accepted on from
    /// several tasks); all are woken on a new connection or on close.
    pub(crate) wakers: Vec<Waker>,
    pub(crate) closed: bool,
    /// Why it closed, when not by the application or a shutdown (the
    /// device failed): what `accept` returns.
    pub(crate) error: Option<(io::ErrorKind, String)>,
}

/// Acceptors remembered at most; beyond this every one is woken (and the
/// ones still waiting register again), so cancelled acceptors cannot pile up.
const MAX_ACCEPT_WAKERS: usize = 64;

impl ListenerState {
    pub(crate) fn wake_all(&mut self) {
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }
}

impl ListenerShared {
    /// Queues an established connection; `false` when the listener is closed.
    pub(crate) fn push(&self, conn: Arc<Shared>) -> bool {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if g.closed {
            return false;
        }
        g.queue.push_back(conn);
        g.wake_all();
        true
    }

    /// Gives a connection just accepted (nothing sent yet) the listener's
    /// socket options.
    pub(crate) fn configure(&self, now: utcp_proto::Instant, conn: &mut Connection) {
        let mut opts = *self.opts.lock().unwrap_or_else(|e| e.into_inner());
        if conn.state() == utcp_proto::State::Established {
            // From a SYN cookie: the endpoint built it with the listener's
            // receive buffer already (its SYN-ACK offered that window).
            opts.recv_buffer = None;
        }
        if let Err(e) = opts.apply(now, conn) {
            // `set_opts` validated them: a broken invariant, not a peer's doing.
            tracing::error!(error = %e, "listener options not applied");
        }
    }

    /// Takes a connection that ended before it was accepted out of the
    /// queue (its backlog slot is already free).
    pub(crate) fn unqueue(&self, conn: &Arc<Shared>) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.queue.retain(|c| !Arc::ptr_eq(c, conn));
    }
}

/// The runtime side of `utcp::TcpListener`. Dropping it stops listening and
/// resets connections that were not accepted.
pub struct ListenerRef {
    pub(crate) shared: Arc<ListenerShared>,
    pub(crate) stack: Arc<StackInner>,
}

impl std::fmt::Debug for ListenerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerRef")
            .field("addr", &self.shared.addr)
            .finish()
    }
}

impl ListenerRef {
    /// The bound address (unspecified IP and port 0 for accept-any).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The TTL / hop limit of the connections this listener accepts.
    pub fn ttl(&self) -> u8 {
        let ep = self.stack.endpoint();
        // A closed listener: the stack's default.
        ep.listener_hop_limit(self.shared.id)
            .unwrap_or(ep.config().hop_limit)
    }

    /// Sets the TTL / hop limit of the connections accepted from now on.
    ///
    /// # Errors
    /// `InvalidInput` for 0; `NotConnected` once the listener is closed.
    pub fn set_ttl(&self, ttl: u8) -> io::Result<()> {
        Ok(self
            .stack
            .endpoint()
            .set_listener_hop_limit(self.shared.id, ttl)?)
    }

    /// The socket options accepted connections get, the TTL included.
    pub fn opts(&self) -> SocketOpts {
        let opts = *self.shared.opts.lock().unwrap_or_else(|e| e.into_inner());
        SocketOpts {
            ttl: Some(self.ttl()),
            ..opts
        }
    }

    /// Sets the socket options of the connections accepted from now on
    /// (applied before their SYN-ACK); `None` fields keep the stack's
    /// defaults.
    ///
    /// # Errors
    /// `InvalidInput` for a zero buffer size or TTL; `NotConnected` once the
    /// listener is closed.
    pub fn set_opts(&self, opts: &SocketOpts) -> io::Result<()> {
        opts.validate()?;
        if let Some(t) = opts.ttl {
            self.set_ttl(t)?;
        }
        self.stack
            .endpoint()
            .set_listener_recv_buffer(self.shared.id, opts.recv_buffer)?;
        *self.shared.opts.lock().unwrap_or_else(|e| e.into_inner()) =
            SocketOpts { ttl: None, ..*opts };
        Ok(())
    }

    /// The next established connection.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<ConnRef>> {
        let mut g = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = g.queue.pop_front() {
            drop(g);
            self.stack.endpoint().release_backlog(shared.handle);
            return Poll::Ready(Ok(ConnRef {
                shared,
                stack: self.stack.clone(),
            }));
        }
        if g.closed {
            return Poll::Ready(Err(match &g.error {
                Some((kind, msg)) => io::Error::new(*kind, msg.clone()),
                None => io::Error::new(io::ErrorKind::NotConnected, "listener closed"),
            }));
        }
        if !g.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            if g.wakers.len() >= MAX_ACCEPT_WAKERS {
                g.wake_all();
            }
            g.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for ListenerRef {
    fn drop(&mut self) {
        self.stack.close_listener(&self.shared);
    }
}

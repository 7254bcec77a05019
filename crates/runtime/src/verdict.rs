//! Accept-any with a decision per SYN (for tun2socks-style proxies): the
//! listener's hook sees each SYN before anything is answered and returns a
//! [`Verdict`]; a deferred SYN is decided later through its [`PendingSyn`].
//!
//! The hook runs on the stack's device task with no lock held, so it may
//! call into the stack (connect upstream, decide a `PendingSyn`), but it
//! must not block: a slow decision is a deferred one.

use crate::stack::StackInner;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use utcp_proto::{DropReason, IncomingSyn, ListenerId, PendingId, Route, SynVerdict};

/// The hook of a listener that decides per SYN.
pub(crate) type SynHook = Box<dyn Fn(&SynInfo) -> Verdict + Send + Sync + 'static>;

/// A SYN put to a listener's hook: the connection the client asks for, the
/// options of its SYN, and [`defer`](Self::defer) to decide later.
pub struct SynInfo {
    syn: IncomingSyn,
    stack: Weak<StackInner>,
    id: PendingId,
    pending: OnceLock<PendingSyn>,
}

impl std::fmt::Debug for SynInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SynInfo").field("syn", &self.syn).finish()
    }
}

impl SynInfo {
    /// The original destination: the stream's `local_addr()` if accepted.
    pub fn local_addr(&self) -> SocketAddr {
        self.syn.local
    }

    /// The client.
    pub fn peer_addr(&self) -> SocketAddr {
        self.syn.remote
    }

    /// The client's MSS option, if its SYN carried one.
    pub fn mss(&self) -> Option<u16> {
        self.syn.mss
    }

    /// The client's window scale option, if its SYN carried one.
    pub fn window_scale(&self) -> Option<u8> {
        self.syn.window_scale
    }

    /// Whether the client offered SACK.
    pub fn sack_permitted(&self) -> bool {
        self.syn.sack_permitted
    }

    /// Whether the client offered timestamps.
    pub fn timestamps(&self) -> bool {
        self.syn.timestamps
    }

    /// The handle that decides this SYN later: return
    /// `Verdict::Defer(syn.defer())` and keep a clone (every call returns
    /// the same SYN's handle).
    pub fn defer(&self) -> PendingSyn {
        self.pending
            .get_or_init(|| PendingSyn {
                inner: Arc::new(PendingInner {
                    stack: self.stack.clone(),
                    id: self.id,
                    decided: AtomicBool::new(false),
                }),
            })
            .clone()
    }
}

/// What a listener's hook decides for a SYN.
#[derive(Debug)]
pub enum Verdict {
    /// Answer it now with a SYN-ACK (or a SYN cookie while the SYN queue is
    /// full); the connection reaches `accept` once established.
    Accept,
    /// Answer it with an RST: the client's connect fails with
    /// `ConnectionRefused`; nothing is created.
    Reset,
    /// Send nothing: the client retransmits, and its next SYN is asked
    /// again.
    Drop,
    /// Decide later through the [`PendingSyn`] (from [`SynInfo::defer`]).
    /// The SYN holds a slot of the SYN queue meanwhile (a listener whose
    /// SYN queue is full drops SYNs it defers), the client's
    /// retransmissions are absorbed, and without a decision it is dropped
    /// when its SYN-ACK retry budget ends (about 63 s by default). When
    /// every clone of the `PendingSyn` is dropped undecided, the SYN is
    /// reset.
    Defer(PendingSyn),
}

/// A deferred SYN: [`complete`](Self::complete) or [`reset`](Self::reset)
/// it once (the first decision counts). Cheap to clone.
///
/// (`utcp::StackExt::bind_any_with` shows a proxy's use.)
#[derive(Clone, Debug)]
pub struct PendingSyn {
    inner: Arc<PendingInner>,
}

#[derive(Debug)]
struct PendingInner {
    stack: Weak<StackInner>,
    id: PendingId,
    decided: AtomicBool,
}

impl PendingSyn {
    /// The original destination.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.id.tuple().local
    }

    /// The client.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.id.tuple().remote
    }

    /// Accepts the SYN: its SYN-ACK goes now (or a SYN cookie while the SYN
    /// queue is full), and the connection reaches `accept` once
    /// established.
    ///
    /// # Errors
    /// `NotConnected` when the SYN no longer waits (decided before, its
    /// budget ended, its listener or the stack stopped); `ResourceBusy`
    /// when the listener's accept queue is full or the stack holds its
    /// most connections (the SYN is dropped; the client's retransmission
    /// is asked again).
    pub fn complete(&self) -> io::Result<()> {
        self.decide(SynVerdict::Accept)
    }

    /// Resets the SYN: the client's connect fails with `ConnectionRefused`.
    ///
    /// # Errors
    /// `NotConnected` when the SYN no longer waits.
    pub fn reset(&self) -> io::Result<()> {
        self.decide(SynVerdict::Reset)
    }

    fn decide(&self, verdict: SynVerdict) -> io::Result<()> {
        if self.inner.decided.swap(true, Ordering::AcqRel) {
            return Err(not_pending());
        }
        let stack = self.inner.stack.upgrade().ok_or_else(not_pending)?;
        stack.apply_verdict(self.inner.id, verdict)
    }
}

impl Drop for PendingInner {
    fn drop(&mut self) {
        if !*self.decided.get_mut()
            && let Some(stack) = self.stack.upgrade()
        {
            // Nobody can decide it any more: the client learns at once.
            let _ = stack.apply_verdict(self.id, SynVerdict::Reset);
        }
    }
}

fn not_pending() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the SYN no longer waits (decided, its budget ended, or its listener stopped)",
    )
}

/// A SYN the endpoint asked about during a batch.
pub(crate) struct Ask {
    pub(crate) listener: ListenerId,
    pub(crate) id: PendingId,
    pub(crate) syn: IncomingSyn,
}

impl StackInner {
    /// Puts each asked SYN to its listener's hook (no lock held), then
    /// applies the verdicts under one endpoint lock.
    pub(crate) fn decide_asks(self: &Arc<Self>, asks: &mut Vec<Ask>) {
        if asks.is_empty() {
            return;
        }
        let mut verdicts = Vec::with_capacity(asks.len());
        for ask in asks.drain(..) {
            let info = SynInfo {
                syn: ask.syn,
                stack: Arc::downgrade(self),
                id: ask.id,
                pending: OnceLock::new(),
            };
            let verdict = match self.listener(ask.listener) {
                Some(l) => match &l.hook {
                    Some(hook) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        hook(&info)
                    }))
                    .unwrap_or_else(|_| {
                        tracing::error!(syn = ?info.syn, "the listener's SYN hook panicked; SYN dropped");
                        Verdict::Drop
                    }),
                    None => Verdict::Accept,
                },
                None => Verdict::Drop,
            };
            let (verdict, keep) = match verdict {
                Verdict::Accept => (SynVerdict::Accept, None),
                Verdict::Reset => (SynVerdict::Reset, None),
                Verdict::Drop => (SynVerdict::Drop, None),
                Verdict::Defer(p) if p.inner.id == ask.id => (SynVerdict::Defer, Some(p)),
                Verdict::Defer(p) => {
                    tracing::warn!(
                        syn = ?info.syn,
                        other = ?p.inner.id.tuple(),
                        "a SYN deferred with another SYN's PendingSyn; dropped"
                    );
                    (SynVerdict::Drop, None)
                }
            };
            if verdict != SynVerdict::Defer
                && let Some(p) = info.pending.get()
            {
                // Decided here: a handle the hook kept decides nothing.
                p.inner.decided.store(true, Ordering::Release);
            }
            verdicts.push((ask.id, verdict, keep, info));
        }
        let now = self.clock.now();
        let mut starts = Vec::new();
        let mut ep = self.endpoint();
        for (id, verdict, keep, info) in &verdicts {
            let r = ep.decide(now, *id, *verdict);
            if let Some(Route::Drop(DropReason::SynQueueFull)) = &r {
                // Deferred without a SYN-queue slot: dropped; the handle's
                // decisions find nothing.
                if let Some(p) = keep {
                    p.inner.decided.store(true, Ordering::Release);
                }
                tracing::debug!(syn = ?info.syn, "deferred SYN dropped: the SYN queue is full");
            }
            if let Some(r) = r {
                // A full accept queue was counted; the client's
                // retransmission is asked again.
                let _ = self.after_verdict(&mut ep, r, &mut starts);
            }
        }
        self.flush_endpoint(ep);
        self.start_incoming(&mut starts);
        // The handles and infos drop here, outside the lock: a deferred SYN
        // whose every handle is gone is reset (`PendingInner::drop`).
        drop(verdicts);
        self.tw_timer.notify_one();
    }

    /// Applies a later verdict (from a [`PendingSyn`]).
    pub(crate) fn apply_verdict(
        self: &Arc<Self>,
        id: PendingId,
        verdict: SynVerdict,
    ) -> io::Result<()> {
        let now = self.clock.now();
        let mut starts = Vec::new();
        let mut ep = self.endpoint();
        let r = ep.decide(now, id, verdict);
        let result = match r {
            None => Err(not_pending()),
            Some(r) => self.after_verdict(&mut ep, r, &mut starts),
        };
        self.flush_endpoint(ep);
        self.start_incoming(&mut starts);
        result
    }

    /// What a verdict's route asks of the runtime: a new connection's task.
    fn after_verdict(
        self: &Arc<Self>,
        ep: &mut utcp_proto::Endpoint<crate::stack::ConnEntry>,
        route: Route,
        starts: &mut Vec<crate::stack::Start>,
    ) -> io::Result<()> {
        match route {
            Route::Incoming {
                listener,
                handle,
                conn,
            } => {
                self.incoming(ep, listener, handle, *conn, starts);
                Ok(())
            }
            Route::Drop(reason @ (DropReason::BacklogFull | DropReason::ConnectionLimit)) => {
                if reason == DropReason::BacklogFull {
                    self.counters
                        .backlog_drops
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    "the listener's accept queue is full (or the stack holds its most connections)",
                ))
            }
            _ => Ok(()),
        }
    }
}

//! The ambient stack: the [`Stack`] that `utcp::net`'s constructors use when
//! they are given none, set for a thread with [`Stack::enter`] (like
//! `tokio::runtime::Handle::enter`) or for a future with [`Stack::scope`],
//! wherever it is polled.

use crate::Stack;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    /// The innermost stack entered on this thread, or set by the scope being
    /// polled on it.
    static CURRENT: RefCell<Option<Stack>> = const { RefCell::new(None) };
}

/// Sets the thread's ambient stack to `stack`, returning the one it replaces.
/// During thread teardown (the slot already destroyed) nothing is set.
fn replace(stack: Option<Stack>) -> Option<Stack> {
    CURRENT.try_with(|c| c.replace(stack)).unwrap_or_default()
}

/// The ambient stack of this thread while it lives; returned by
/// [`Stack::enter`]. Dropping it restores the stack entered before it (guards
/// nest). It stays on the thread that made it (`!Send`), as tokio's
/// `EnterGuard` does; do not hold it across an `.await` (use
/// [`Stack::scope`] for a future).
#[derive(Debug)]
#[must_use = "the stack is the ambient one only while the guard lives"]
pub struct EnterGuard {
    prev: Option<Stack>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        replace(self.prev.take());
    }
}

/// A future that runs with a stack as its ambient stack; returned by
/// [`Stack::scope`].
#[must_use = "futures do nothing unless polled"]
pub struct Scope<F> {
    stack: Stack,
    fut: Pin<Box<F>>,
}

impl<F> std::fmt::Debug for Scope<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("stack", &self.stack)
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for Scope<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Set for this poll on whichever worker runs it; the guard restores
        // the thread's own stack afterwards, also if the future panics.
        let _guard = self.stack.enter();
        self.fut.as_mut().poll(cx)
    }
}

impl Stack {
    /// Makes this stack the ambient stack of the current thread until the
    /// guard is dropped: `utcp::net::TcpStream::connect(addr)`,
    /// `TcpListener::bind(addr)` and `TcpSocket::new_v4()` called on this
    /// thread meanwhile use it. Guards nest; the innermost wins. The stack is
    /// captured when such a call is made, so a future made under the guard
    /// may be awaited after it is dropped.
    ///
    /// # Examples
    /// ```
    /// use utcp_runtime::{Stack, StackConfig, sim::SimNetwork};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let net = SimNetwork::new(1);
    /// let stack = Stack::new(net.add_host("a", &["10.0.0.1".parse().unwrap()]), StackConfig::default());
    /// assert!(Stack::try_current().is_none());
    /// {
    ///     let _guard = stack.enter();
    ///     assert!(Stack::try_current().is_some());
    /// }
    /// assert!(Stack::try_current().is_none());
    /// # }
    /// ```
    pub fn enter(&self) -> EnterGuard {
        EnterGuard {
            prev: replace(Some(self.clone())),
            _not_send: PhantomData,
        }
    }

    /// Runs `fut` with this stack as its ambient stack, on whichever thread
    /// polls it (for multi-thread runtimes, where a task moves between
    /// workers and a thread's [`enter`](Self::enter) guard does not follow).
    ///
    /// # Examples
    /// ```
    /// use utcp_runtime::{Stack, StackConfig, sim::SimNetwork};
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
    /// let net = SimNetwork::new(1);
    /// let stack = Stack::new(net.add_host("a", &["10.0.0.1".parse().unwrap()]), StackConfig::default());
    /// let seen = tokio::spawn(stack.scope(async {
    ///     tokio::task::yield_now().await;
    ///     Stack::try_current().map(|s| s.local_addrs())
    /// }));
    /// assert_eq!(seen.await.unwrap(), Some(vec!["10.0.0.1".parse().unwrap()]));
    /// # }
    /// ```
    ///
    /// # Cancel safety
    /// As cancel safe as `fut`.
    pub fn scope<F: Future>(&self, fut: F) -> Scope<F> {
        Scope {
            stack: self.clone(),
            fut: Box::pin(fut),
        }
    }

    /// The ambient stack of the calling thread (or of the scope being
    /// polled), if any.
    pub fn try_current() -> Option<Stack> {
        CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
    }

    /// The ambient stack, as [`try_current`](Self::try_current).
    ///
    /// # Errors
    /// `NotConnected` when there is none, with a message naming
    /// [`enter`](Self::enter) and [`scope`](Self::scope).
    pub fn current() -> io::Result<Stack> {
        Stack::try_current().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "no ambient utcp stack: call `stack.enter()` on this thread \
                 or run the future in `stack.scope(fut)`",
            )
        })
    }
}

//! SIGTERM and SIGINT, taken over before a program says it is ready.
//!
//! A test (or a supervisor) may send SIGTERM the moment it has read a
//! program's ready line. Until a handler is registered the default action
//! applies and the process dies of the signal instead of shutting down, so
//! the handlers are registered first and awaited later.

use std::io;

/// SIGTERM and SIGINT handlers (Ctrl-C off Unix), registered on creation.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// let mut stop = utcp_examples::signals::Shutdown::register()?;
/// println!("ready");
/// stop.recv().await;
/// # Ok(()) }
/// ```
pub struct Shutdown {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Shutdown {
    /// Registers the handlers; call it inside the Tokio runtime, before the
    /// ready line.
    pub fn register() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Waits for the first SIGTERM or SIGINT since [`Shutdown::register`].
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

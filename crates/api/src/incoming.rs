//! `Incoming`: a listener's accepted connections as a `futures_core::Stream`
//! (feature `stream`).

use crate::{TcpListener, TcpStream};
use futures_core::Stream;
use futures_core::stream::FusedStream;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

impl TcpListener {
    /// The accepted connections as a [`Stream`] of `io::Result<TcpStream>`
    /// (feature `stream`), as `tokio_stream::wrappers::TcpListenerStream`
    /// does for tokio's listener. The stream ends (yields `None`) when the
    /// listener closes: once its stack was shut down ([`Stack::shutdown`]
    /// or the last stack handle dropped), the error `accept` reports as
    /// `NotConnected`. Other errors are yielded as items and the stream goes
    /// on. Dropping the stream drops the listener.
    ///
    /// The peer's address is the stream's
    /// [`peer_addr`](TcpStream::peer_addr).
    ///
    /// [`Stack::shutdown`]: crate::Stack::shutdown
    ///
    /// # Examples
    /// ```
    /// use futures_core::Stream;
    /// use std::pin::pin;
    /// use std::time::Duration;
    /// use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
    ///
    /// /// The next item, as `StreamExt::next` (futures-util) would give it.
    /// async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    ///     std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx)).await
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// let net = SimNetwork::new(1);
    /// let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    /// let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    /// net.link(&a, &b, LinkConfig::default());
    /// let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
    /// let mut incoming = server.bind("10.0.0.2:80")?.incoming();
    /// let c = client.connect("10.0.0.2:80").await?;
    /// let s = next(&mut incoming).await.expect("a connection")?;
    /// assert_eq!(s.peer_addr()?, c.local_addr()?);
    /// // Shutting the stack down closes the listener: the stream ends.
    /// server.shutdown(Duration::from_secs(1)).await;
    /// assert!(next(&mut incoming).await.is_none());
    /// # Ok(()) }
    /// ```
    pub fn incoming(self) -> Incoming {
        Incoming {
            listener: self,
            done: false,
        }
    }
}

/// The connections a [`TcpListener`] accepts, as a [`Stream`] of
/// `io::Result<TcpStream>`; made by [`TcpListener::incoming`]. Ends when
/// the listener closes (its stack shut down), and stays ended
/// ([`FusedStream`]).
///
/// # Cancel safety
/// Polling is cancel safe: a connection leaves the accept queue only when
/// it is yielded.
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Incoming {
    listener: TcpListener,
    done: bool,
}

impl Incoming {
    /// The listener (its [`local_addr`](TcpListener::local_addr), say).
    pub fn get_ref(&self) -> &TcpListener {
        &self.listener
    }

    /// Gives the listener back.
    pub fn into_inner(self) -> TcpListener {
        self.listener
    }
}

impl Stream for Incoming {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.listener.poll_accept(cx) {
            Poll::Ready(Ok((s, _))) => Poll::Ready(Some(Ok(s))),
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::NotConnected => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl FusedStream for Incoming {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

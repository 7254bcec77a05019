//! Read and write halves of a [`TcpStream`].

use crate::TcpStream;
use crate::stream::StreamInner;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Borrowed read half, from [`TcpStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a TcpStream);

/// Borrowed write half, from [`TcpStream::split`].
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a TcpStream);

/// Owned read half, from [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    inner: Arc<StreamInner>,
}

/// Owned write half, from [`TcpStream::into_split`]. Dropping it shuts down
/// writing (FIN), as in tokio.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    inner: Arc<StreamInner>,
    shutdown_on_drop: bool,
}

pub(crate) fn split(s: &mut TcpStream) -> (ReadHalf<'_>, WriteHalf<'_>) {
    (ReadHalf(s), WriteHalf(s))
}

pub(crate) fn into_split(s: TcpStream) -> (OwnedReadHalf, OwnedWriteHalf) {
    let inner = s.inner;
    (
        OwnedReadHalf {
            inner: inner.clone(),
        },
        OwnedWriteHalf {
            inner,
            shutdown_on_drop: true,
        },
    )
}

impl OwnedWriteHalf {
    /// Drops the half without shutting down writing.
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }

    /// Rejoins the halves, if they come from the same stream.
    ///
    /// # Errors
    /// Gives both halves back when they belong to different streams.
    pub fn reunite(
        mut self,
        read: OwnedReadHalf,
    ) -> Result<TcpStream, (OwnedReadHalf, OwnedWriteHalf)> {
        if Arc::ptr_eq(&self.inner, &read.inner) {
            self.shutdown_on_drop = false;
            drop(read);
            Ok(TcpStream {
                inner: self.inner.clone(),
            })
        } else {
            Err((read, self))
        }
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            let _ = self.inner.conn.shutdown_write();
        }
    }
}

impl AsyncRead for ReadHalf<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.0.inner.conn.poll_read(cx, buf)
    }
}

impl AsyncRead for OwnedReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.inner.conn.poll_read(cx, buf)
    }
}

macro_rules! write_impl {
    ($t:ty, $inner:ident) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                data: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.$inner().conn.poll_write(cx, data)
            }
            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.$inner().conn.shutdown_write())
            }
        }
    };
}

impl WriteHalf<'_> {
    fn stream_inner(&self) -> &StreamInner {
        &self.0.inner
    }
}

impl OwnedWriteHalf {
    fn stream_inner(&self) -> &StreamInner {
        &self.inner
    }
}

write_impl!(WriteHalf<'_>, stream_inner);
write_impl!(OwnedWriteHalf, stream_inner);

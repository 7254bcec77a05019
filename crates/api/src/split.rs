//! Read and write halves of a [`TcpStream`].

use crate::TcpStream;
use crate::stream::StreamInner;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, Ready};

/// Borrowed read half, from [`TcpStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a TcpStream);

/// Borrowed write half, from [`TcpStream::split`].
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a TcpStream);

/// Owned read half, from [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    stream: TcpStream,
}

/// Owned write half, from [`TcpStream::into_split`]. Dropping it shuts down
/// writing (FIN), as in tokio.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    stream: TcpStream,
    shutdown_on_drop: bool,
}

pub(crate) fn split(s: &mut TcpStream) -> (ReadHalf<'_>, WriteHalf<'_>) {
    (ReadHalf(s), WriteHalf(s))
}

pub(crate) fn into_split(s: TcpStream) -> (OwnedReadHalf, OwnedWriteHalf) {
    (
        OwnedReadHalf {
            stream: TcpStream {
                inner: s.inner.clone(),
            },
        },
        OwnedWriteHalf {
            stream: s,
            shutdown_on_drop: true,
        },
    )
}

/// The halves given to `reunite` came from different streams; both are
/// given back.
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same socket")
    }
}

impl std::error::Error for ReuniteError {}

fn reunite(read: OwnedReadHalf, mut write: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
    if Arc::ptr_eq(&write.stream.inner, &read.stream.inner) {
        write.shutdown_on_drop = false;
        drop(read);
        Ok(TcpStream {
            inner: write.stream.inner.clone(),
        })
    } else {
        Err(ReuniteError(read, write))
    }
}

impl OwnedReadHalf {
    /// Rejoins the halves into the stream they came from.
    ///
    /// # Errors
    /// [`ReuniteError`], holding both halves, when they belong to different
    /// streams.
    pub fn reunite(self, other: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
        reunite(self, other)
    }

    /// Receives data without removing it (see [`TcpStream::peek`]).
    ///
    /// # Errors
    /// The connection's error, once.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is consumed.
    pub async fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        crate::stream::peek(&self.stream.inner.conn, buf).await
    }

    /// Polls for data to peek at (see [`TcpStream::poll_peek`]).
    ///
    /// # Errors
    /// As [`peek`](Self::peek).
    pub fn poll_peek(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        self.stream.inner.conn.poll_peek(cx, buf)
    }

    /// Reads what is there without waiting (see [`TcpStream::try_read`]).
    ///
    /// # Errors
    /// `WouldBlock` when nothing is readable yet.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.inner.conn.try_read(buf)
    }

    /// Reads into several buffers without waiting (see
    /// [`TcpStream::try_read_vectored`]).
    ///
    /// # Errors
    /// `WouldBlock` when nothing is readable yet.
    pub fn try_read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        crate::stream::try_read_vectored(&self.stream.inner.conn, bufs)
    }

    /// Reads into `buf`'s spare room without waiting (see
    /// [`TcpStream::try_read_buf`]).
    ///
    /// # Errors
    /// `WouldBlock` when nothing is readable yet.
    pub fn try_read_buf<B: bytes::BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        crate::stream::try_read_buf(&self.stream.inner.conn, buf)
    }

    /// Waits for the readiness asked for (see [`TcpStream::ready`]).
    ///
    /// # Errors
    /// As [`TcpStream::ready`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        crate::stream::ready(&self.stream.inner.conn, interest).await
    }

    /// Waits until a read would not wait (see [`TcpStream::readable`]).
    ///
    /// # Errors
    /// As [`TcpStream::ready`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn readable(&self) -> io::Result<()> {
        self.ready(Interest::READABLE).await.map(|_| ())
    }

    /// The peer's address.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.stream.inner.peer_addr())
    }

    /// The local address.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.stream.inner.local_addr())
    }
}

impl OwnedWriteHalf {
    /// Drops the half without shutting down writing.
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }

    /// Rejoins the halves into the stream they came from.
    ///
    /// # Errors
    /// [`ReuniteError`], holding both halves, when they belong to different
    /// streams.
    pub fn reunite(self, other: OwnedReadHalf) -> Result<TcpStream, ReuniteError> {
        reunite(other, self)
    }

    /// Queues what fits without waiting (see [`TcpStream::try_write`]).
    ///
    /// # Errors
    /// `WouldBlock` while the send buffer is full.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.stream.inner.conn.try_write(buf)
    }

    /// Queues several buffers without waiting (see
    /// [`TcpStream::try_write_vectored`]).
    ///
    /// # Errors
    /// `WouldBlock` while the send buffer is full.
    pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        crate::stream::try_write_vectored(&self.stream.inner.conn, bufs)
    }

    /// Waits for the readiness asked for (see [`TcpStream::ready`]).
    ///
    /// # Errors
    /// As [`TcpStream::ready`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        crate::stream::ready(&self.stream.inner.conn, interest).await
    }

    /// Waits until a write would not wait (see [`TcpStream::writable`]).
    ///
    /// # Errors
    /// As [`TcpStream::ready`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn writable(&self) -> io::Result<()> {
        self.ready(Interest::WRITABLE).await.map(|_| ())
    }

    /// The peer's address.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.stream.inner.peer_addr())
    }

    /// The local address.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.stream.inner.local_addr())
    }

    /// Whether Nagle's algorithm is off ([`TcpStream::nodelay`]).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.stream.nodelay()
    }

    /// Turns Nagle's algorithm off or on ([`TcpStream::set_nodelay`]).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.stream.set_nodelay(nodelay)
    }
}

impl ReadHalf<'_> {
    /// Receives data without removing it (see [`TcpStream::peek`]).
    ///
    /// # Errors
    /// The connection's error, once.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is consumed.
    pub async fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.peek(buf).await
    }

    /// Polls for data to peek at (see [`TcpStream::poll_peek`]).
    ///
    /// # Errors
    /// As [`peek`](Self::peek).
    pub fn poll_peek(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        self.0.poll_peek(cx, buf)
    }

    /// Reads what is there without waiting (see [`TcpStream::try_read`]).
    ///
    /// # Errors
    /// `WouldBlock` when nothing is readable yet.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }

    /// Reads into several buffers without waiting (see
    /// [`TcpStream::try_read_vectored`]).
    ///
    /// # Errors
    /// `WouldBlock` when nothing is readable yet.
    pub fn try_read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        crate::stream::try_read_vectored(&self.0.inner.conn, bufs)
    }

    /// Reads into `buf`'s spare room without waiting (see
    /// [`TcpStream::try_read_buf`]).
    ///
    /// # Errors
    /// `WouldBlock` when nothing is readable yet.
    pub fn try_read_buf<B: bytes::BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        crate::stream::try_read_buf(&self.0.inner.conn, buf)
    }

    /// Waits for the readiness asked for (see [`TcpStream::ready`]).
    ///
    /// # Errors
    /// As [`TcpStream::ready`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        crate::stream::ready(&self.0.inner.conn, interest).await
    }

    /// Waits until a read would not wait (see [`TcpStream::readable`]).
    ///
    /// # Errors
    /// As [`TcpStream::ready`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn readable(&self) -> io::Result<()> {
        self.ready(Interest::READABLE).await.map(|_| ())
    }

    /// The peer's address.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl WriteHalf<'_> {
    /// Queues what fits without waiting (see [`TcpStream::try_write`]).
    ///
    /// # Errors
    /// `WouldBlock` while the send buffer is full.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    /// Queues several buffers without waiting (see
    /// [`TcpStream::try_write_vectored`]).
    ///
    /// # Errors
    /// `WouldBlock` while the send buffer is full.
    pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        crate::stream::try_write_vectored(&self.0.inner.conn, bufs)
    }

    /// Waits for the readiness asked for (see [`TcpStream::ready`]).
    ///
    /// # Errors
    /// As [`TcpStream::ready`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        crate::stream::ready(&self.0.inner.conn, interest).await
    }

    /// Waits until a write would not wait (see [`TcpStream::writable`]).
    ///
    /// # Errors
    /// As [`TcpStream::ready`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn writable(&self) -> io::Result<()> {
        self.ready(Interest::WRITABLE).await.map(|_| ())
    }

    /// The peer's address.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    /// Whether Nagle's algorithm is off ([`TcpStream::nodelay`]).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.0.nodelay()
    }

    /// Turns Nagle's algorithm off or on ([`TcpStream::set_nodelay`]).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.0.set_nodelay(nodelay)
    }
}

impl AsRef<TcpStream> for ReadHalf<'_> {
    fn as_ref(&self) -> &TcpStream {
        self.0
    }
}

impl AsRef<TcpStream> for WriteHalf<'_> {
    fn as_ref(&self) -> &TcpStream {
        self.0
    }
}

impl AsRef<TcpStream> for OwnedReadHalf {
    fn as_ref(&self) -> &TcpStream {
        &self.stream
    }
}

impl AsRef<TcpStream> for OwnedWriteHalf {
    fn as_ref(&self) -> &TcpStream {
        &self.stream
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            let _ = self.stream.inner.conn.shutdown_write();
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
        self.stream.inner.conn.poll_read(cx, buf)
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
            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.$inner().conn.poll_write_vectored(cx, bufs)
            }
            fn is_write_vectored(&self) -> bool {
                true
            }
            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(crate::stream::shutdown(&self.$inner().conn))
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
        &self.stream.inner
    }
}

write_impl!(WriteHalf<'_>, stream_inner);
write_impl!(OwnedWriteHalf, stream_inner);

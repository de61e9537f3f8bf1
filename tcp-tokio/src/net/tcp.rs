//! The halves of a [`TcpStream`], as in `tokio::net::tcp`.

use std::error::Error;
use std::fmt;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::stream::StreamInner;
use super::TcpStream;

/// The read half of [`TcpStream::split`]: borrowed, free to create.
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a StreamInner);

/// The write half of [`TcpStream::split`]. `shutdown` sends FIN; dropping it does nothing.
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a StreamInner);

/// The owned read half of [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    inner: Arc<StreamInner>,
}

/// The owned write half of [`TcpStream::into_split`]. Dropping it shuts down writing (FIN
/// after the queued bytes), as tokio's does.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    inner: Arc<StreamInner>,
    shutdown_on_drop: bool,
}

/// [`OwnedReadHalf::reunite`] was given halves of two different streams; both are returned.
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same socket")
    }
}

impl Error for ReuniteError {}

impl<'a> ReadHalf<'a> {
    pub(crate) fn new(inner: &'a Arc<StreamInner>) -> Self {
        ReadHalf(inner)
    }

    pub(crate) fn stream_inner(&self) -> &StreamInner {
        self.0
    }

    /// Our address. See [`TcpStream::local_addr`].
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.0.local_addr())
    }

    /// The peer's address. See [`TcpStream::peer_addr`].
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.0.peer_addr())
    }

    /// Read without consuming. See [`TcpStream::peek`].
    ///
    /// # Examples
    /// See [`TcpStream::peek`].
    ///
    /// # Errors
    /// As [`TcpStream::peek`].
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is consumed.
    pub async fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.0.poll_peek(cx, &mut ReadBuf::new(buf))).await
    }
}

impl<'a> WriteHalf<'a> {
    pub(crate) fn new(inner: &'a Arc<StreamInner>) -> Self {
        WriteHalf(inner)
    }

    pub(crate) fn stream_inner(&self) -> &StreamInner {
        self.0
    }

    /// Our address. See [`TcpStream::local_addr`].
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.0.local_addr())
    }

    /// The peer's address. See [`TcpStream::peer_addr`].
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.0.peer_addr())
    }
}

impl OwnedReadHalf {
    pub(crate) fn new(inner: Arc<StreamInner>) -> Self {
        OwnedReadHalf { inner }
    }

    pub(crate) fn stream_inner(&self) -> &StreamInner {
        &self.inner
    }

    /// Put the two halves of one stream back together.
    ///
    /// # Errors
    /// [`ReuniteError`] (holding both halves) if they come from different streams.
    pub fn reunite(self, other: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
        reunite(self, other)
    }

    /// Our address. See [`TcpStream::local_addr`].
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local_addr())
    }

    /// The peer's address. See [`TcpStream::peer_addr`].
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.peer_addr())
    }

    /// Read without consuming. See [`TcpStream::peek`].
    ///
    /// # Examples
    /// See [`TcpStream::peek`].
    ///
    /// # Errors
    /// As [`TcpStream::peek`].
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is consumed.
    pub async fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.inner.poll_peek(cx, &mut ReadBuf::new(buf))).await
    }

    /// Wait until a read would not block. See [`TcpStream::readable`].
    ///
    /// # Examples
    /// See [`TcpStream::readable`].
    ///
    /// # Errors
    /// As [`TcpStream::readable`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn readable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.inner.poll_read_ready(cx)).await
    }

    /// A snapshot of the connection's state and counters. See [`TcpStream::info`].
    pub fn info(&self) -> tcpcore::TcpInfo {
        self.inner.lock().conn.info()
    }

    /// Read without waiting. See [`TcpStream::try_read`].
    ///
    /// # Errors
    /// As [`TcpStream::try_read`].
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.try_read(buf)
    }
}

impl OwnedWriteHalf {
    pub(crate) fn new(inner: Arc<StreamInner>) -> Self {
        OwnedWriteHalf { inner, shutdown_on_drop: true }
    }

    pub(crate) fn stream_inner(&self) -> &StreamInner {
        &self.inner
    }

    /// Put the two halves of one stream back together.
    ///
    /// # Errors
    /// [`ReuniteError`] (holding both halves) if they come from different streams.
    pub fn reunite(self, other: OwnedReadHalf) -> Result<TcpStream, ReuniteError> {
        reunite(other, self)
    }

    /// Drop the half without shutting down writing.
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }

    /// Our address. See [`TcpStream::local_addr`].
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local_addr())
    }

    /// The peer's address. See [`TcpStream::peer_addr`].
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.peer_addr())
    }

    /// Wait until a write would not block. See [`TcpStream::writable`].
    ///
    /// # Examples
    /// See [`TcpStream::writable`].
    ///
    /// # Errors
    /// As [`TcpStream::writable`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn writable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.inner.poll_write_ready(cx)).await
    }

    /// A snapshot of the connection's state and counters. See [`TcpStream::info`].
    pub fn info(&self) -> tcpcore::TcpInfo {
        self.inner.lock().conn.info()
    }

    /// Write without waiting. See [`TcpStream::try_write`].
    ///
    /// # Errors
    /// As [`TcpStream::try_write`].
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.try_write(&[IoSlice::new(buf)])
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            let _ = self.inner.shutdown();
        }
    }
}

fn reunite(read: OwnedReadHalf, mut write: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
    if !Arc::ptr_eq(&read.inner, &write.inner) {
        return Err(ReuniteError(read, write));
    }
    write.shutdown_on_drop = false;
    let inner = write.inner.clone();
    drop((read, write));
    Ok(TcpStream { inner })
}

macro_rules! async_read {
    ($($t:ty, $get:ident;)*) => {$(
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.$get().poll_read(cx, buf)
            }
        }
    )*};
}

macro_rules! async_write {
    ($($t:ty, $get:ident;)*) => {$(
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.$get().poll_write(cx, &[IoSlice::new(buf)])
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.$get().poll_write(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.$get().shutdown())
            }
        }
    )*};
}

async_read! {
    ReadHalf<'_>, stream_inner;
    OwnedReadHalf, stream_inner;
}

async_write! {
    WriteHalf<'_>, stream_inner;
    OwnedWriteHalf, stream_inner;
}

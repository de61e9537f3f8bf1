//! The halves of a [`TcpStream`], as in `tokio::net::tcp`: each holds the stream itself
//! (borrowed, or shared through an `Arc`), so all four are `AsRef<TcpStream>`.

use std::error::Error;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BufMut;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, Ready};

use super::stream::StreamInner;
use super::TcpStream;

/// The read half of [`TcpStream::split`]: borrowed, free to create.
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a TcpStream);

/// The write half of [`TcpStream::split`]. `shutdown` sends FIN; dropping it does nothing.
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a TcpStream);

/// The owned read half of [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    inner: Arc<TcpStream>,
}

/// The owned write half of [`TcpStream::into_split`]. Dropping it shuts down writing (FIN
/// after the queued bytes), as tokio's does.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    inner: Arc<TcpStream>,
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
    pub(crate) fn new(stream: &'a TcpStream) -> Self {
        ReadHalf(stream)
    }
}

impl<'a> WriteHalf<'a> {
    pub(crate) fn new(stream: &'a TcpStream) -> Self {
        WriteHalf(stream)
    }
}

impl OwnedReadHalf {
    pub(crate) fn new(inner: Arc<TcpStream>) -> Self {
        OwnedReadHalf { inner }
    }

    /// Put the two halves of one stream back together.
    ///
    /// # Errors
    /// [`ReuniteError`] (holding both halves) if they come from different streams.
    pub fn reunite(self, other: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
        reunite(self, other)
    }

    /// A snapshot of the connection's state and counters. See [`TcpStream::info`].
    pub fn info(&self) -> tcpcore::TcpInfo {
        self.inner.info()
    }
}

impl OwnedWriteHalf {
    pub(crate) fn new(inner: Arc<TcpStream>) -> Self {
        OwnedWriteHalf { inner, shutdown_on_drop: true }
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

    /// A snapshot of the connection's state and counters. See [`TcpStream::info`].
    pub fn info(&self) -> tcpcore::TcpInfo {
        self.inner.info()
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            let _ = self.inner.inner.shutdown();
        }
    }
}

fn reunite(read: OwnedReadHalf, mut write: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
    if !Arc::ptr_eq(&read.inner, &write.inner) {
        return Err(ReuniteError(read, write));
    }
    write.shutdown_on_drop = false;
    drop(write);
    // The two halves hold the only references, and the write half is gone.
    Ok(Arc::into_inner(read.inner).expect("a stream's owned halves are its only owners"))
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
        &self.inner
    }
}

impl AsRef<TcpStream> for OwnedWriteHalf {
    fn as_ref(&self) -> &TcpStream {
        &self.inner
    }
}

/// The doc-test preamble: two stacks, a listener and a connected `stream` holding "hi" from
/// the peer.
macro_rules! doc_setup {
    () => {
        r#"# #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
# let (a, b) = tcp_tokio::MemLink::pair();
# let server = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
# let client = tcp_tokio::Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
# let l = server.bind("10.0.0.1:80").await?;
# let c = client.connect("10.0.0.1:80").await?;
# c.try_write(b"hi")?;
# #[allow(unused_mut)]
# let (mut stream, _) = l.accept().await?;"#
    };
}

/// What the read halves share with each other (and with [`TcpStream`]).
macro_rules! read_half_methods {
    ($($t:ty, $split:literal;)*) => {$(
        impl $t {
            /// Wait for data and copy it into `buf` without consuming it. See
            /// [`TcpStream::poll_peek`].
            ///
            /// # Errors
            /// As [`TcpStream::peek`].
            pub fn poll_peek(
                &mut self,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<usize>> {
                self.as_ref().poll_peek(cx, buf)
            }

            /// Read without consuming: the next read returns the same bytes. See
            /// [`TcpStream::peek`].
            ///
            /// # Examples
            /// ```
            #[doc = doc_setup!()]
            #[doc = concat!("let (mut r, _w) = stream.", $split, "();")]
            /// let mut buf = [0; 2];
            /// let n = r.peek(&mut buf).await?;
            /// assert_eq!(&buf[..n], &b"hi"[..n]);
            /// # Ok(()) }
            /// ```
            ///
            /// # Errors
            /// As [`TcpStream::peek`].
            ///
            /// # Cancel safety
            /// Cancel safe: nothing is consumed.
            pub async fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let stream = self.as_ref();
                std::future::poll_fn(|cx| stream.poll_peek(cx, &mut ReadBuf::new(buf))).await
            }

            /// Wait until the stream is ready for any of `interest`. See
            /// [`TcpStream::ready`]; a read half can wait for writability too.
            ///
            /// # Examples
            /// ```
            #[doc = doc_setup!()]
            #[doc = concat!("let (r, _w) = stream.", $split, "();")]
            /// let ready = r.ready(tokio::io::Interest::READABLE).await?;
            /// assert!(ready.is_readable());
            /// # Ok(()) }
            /// ```
            ///
            /// # Errors
            /// As [`TcpStream::ready`].
            ///
            /// # Cancel safety
            /// Cancel safe.
            pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
                self.as_ref().ready(interest).await
            }

            /// Wait until a read would not block. See [`TcpStream::readable`].
            ///
            /// # Examples
            /// ```
            #[doc = doc_setup!()]
            #[doc = concat!("let (r, _w) = stream.", $split, "();")]
            /// r.readable().await?;
            /// assert_eq!(r.try_read(&mut [0; 8])?, 2);
            /// # Ok(()) }
            /// ```
            ///
            /// # Errors
            /// As [`TcpStream::readable`].
            ///
            /// # Cancel safety
            /// Cancel safe.
            pub async fn readable(&self) -> io::Result<()> {
                self.as_ref().readable().await
            }

            /// Read without waiting. See [`TcpStream::try_read`].
            ///
            /// # Errors
            /// As [`TcpStream::try_read`].
            pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.as_ref().try_read(buf)
            }

            /// Read into several buffers without waiting. See
            /// [`TcpStream::try_read_vectored`].
            ///
            /// # Errors
            /// As [`TcpStream::try_read`].
            pub fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                self.as_ref().try_read_vectored(bufs)
            }

            /// Read into a `BufMut` without waiting. See [`TcpStream::try_read_buf`].
            ///
            /// # Errors
            /// As [`TcpStream::try_read`].
            pub fn try_read_buf<B: BufMut>(&self, buf: &mut B) -> io::Result<usize> {
                self.as_ref().try_read_buf(buf)
            }

            /// The peer's address. See [`TcpStream::peer_addr`].
            ///
            /// # Errors
            /// Never; the `Result` matches tokio.
            pub fn peer_addr(&self) -> io::Result<SocketAddr> {
                self.as_ref().peer_addr()
            }

            /// Our address. See [`TcpStream::local_addr`].
            ///
            /// # Errors
            /// Never; the `Result` matches tokio.
            pub fn local_addr(&self) -> io::Result<SocketAddr> {
                self.as_ref().local_addr()
            }

            pub(crate) fn stream_inner(&self) -> &StreamInner {
                &self.as_ref().inner
            }
        }

        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.stream_inner().poll_read(cx, buf)
            }
        }
    )*};
}

/// What the write halves share with each other (and with [`TcpStream`]).
macro_rules! write_half_methods {
    ($($t:ty, $split:literal;)*) => {$(
        impl $t {
            /// Wait until the stream is ready for any of `interest`. See
            /// [`TcpStream::ready`]; a write half can wait for readability too.
            ///
            /// # Examples
            /// ```
            #[doc = doc_setup!()]
            #[doc = concat!("let (_r, w) = stream.", $split, "();")]
            /// let ready = w.ready(tokio::io::Interest::WRITABLE).await?;
            /// assert!(ready.is_writable());
            /// # Ok(()) }
            /// ```
            ///
            /// # Errors
            /// As [`TcpStream::ready`].
            ///
            /// # Cancel safety
            /// Cancel safe.
            pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
                self.as_ref().ready(interest).await
            }

            /// Wait until a write would not block. See [`TcpStream::writable`].
            ///
            /// # Examples
            /// ```
            #[doc = doc_setup!()]
            #[doc = concat!("let (_r, w) = stream.", $split, "();")]
            /// w.writable().await?;
            /// assert_eq!(w.try_write(b"hello")?, 5);
            /// # Ok(()) }
            /// ```
            ///
            /// # Errors
            /// As [`TcpStream::writable`].
            ///
            /// # Cancel safety
            /// Cancel safe.
            pub async fn writable(&self) -> io::Result<()> {
                self.as_ref().writable().await
            }

            /// Write without waiting. See [`TcpStream::try_write`].
            ///
            /// # Errors
            /// As [`TcpStream::try_write`].
            pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                self.as_ref().try_write(buf)
            }

            /// Write from several buffers without waiting. See
            /// [`TcpStream::try_write_vectored`].
            ///
            /// # Errors
            /// As [`TcpStream::try_write`].
            pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                self.as_ref().try_write_vectored(bufs)
            }

            /// The peer's address. See [`TcpStream::peer_addr`].
            ///
            /// # Errors
            /// Never; the `Result` matches tokio.
            pub fn peer_addr(&self) -> io::Result<SocketAddr> {
                self.as_ref().peer_addr()
            }

            /// Our address. See [`TcpStream::local_addr`].
            ///
            /// # Errors
            /// Never; the `Result` matches tokio.
            pub fn local_addr(&self) -> io::Result<SocketAddr> {
                self.as_ref().local_addr()
            }

            pub(crate) fn stream_inner(&self) -> &StreamInner {
                &self.as_ref().inner
            }
        }

        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.stream_inner().poll_write(cx, &[IoSlice::new(buf)])
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.stream_inner().poll_write(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.stream_inner().shutdown())
            }
        }
    )*};
}

read_half_methods! {
    ReadHalf<'_>, "split";
    OwnedReadHalf, "into_split";
}

write_half_methods! {
    WriteHalf<'_>, "split";
    OwnedWriteHalf, "into_split";
}

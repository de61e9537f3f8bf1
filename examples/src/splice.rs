//! The forwarder's TCP splice: `tokio::io::copy_bidirectional`'s job, half-closes carried
//! through, with fewer copies and system calls and no memory while a flow is idle.
//!
//! Per byte, the forwarder's cost is mostly the kernel's: each `send(2)` on the upstream
//! socket runs TCP's output, the veth and, inline, the receiving namespace's whole input
//! path. tokio's 8 KiB buffers make that one 8 KiB skb per call. Here:
//! - client → upstream: our stream lends its receive buffer in place
//!   ([`TcpStream::poll_read_with`]) to one `writev` on the kernel socket of all it holds
//!   (up to the receive window, megabytes in bulk): no copy of our own, and the kernel
//!   builds 64 KiB TSO skbs;
//! - upstream → client: reads of 256 KiB once a read filled the 16 KiB a burst starts with,
//!   written into our stream; the buffer is freed whenever the kernel socket has nothing
//!   more, so an idle flow holds none.
//!
//! Measured with `tun_forward_bench` (offload on, client to server, 200 MiB to 1 GiB, a
//! loaded 2-vCPU VM): the forwarder's CPU time per GiB fell from 1.50 s (tokio's
//! `copy_bidirectional`) to 0.80 s with 256 KiB buffers, and to 0.60–0.67 s lending the
//! receive buffer; the heap of an idle forwarded flow from 19.6 to 3.2 KB.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tcp_tokio::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The buffer a burst starts with: a request or a small answer fits.
const SMALL: usize = 16 << 10;
/// The buffer once a read filled the small one: bulk data.
const LARGE: usize = 256 << 10;

/// One direction: bytes read from one side, not yet written to the other.
#[derive(Debug, Default)]
struct Pipe {
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// The reader reached end of stream (all of it written once `pos == end`).
    eof: bool,
    /// The writer was shut down after the end of stream: this direction is done.
    done: bool,
    /// Bytes read from the reader.
    bytes: u64,
}

impl Pipe {
    /// Move bytes from `r` to `w` until either must wait, or the direction is done.
    fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut r: Pin<&mut R>,
        mut w: Pin<&mut W>,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        loop {
            if self.done {
                return Poll::Ready(Ok(()));
            }
            if self.pos == self.end && !self.eof {
                if self.buf.is_empty() {
                    self.buf = vec![0; SMALL];
                }
                let mut rb = ReadBuf::new(&mut self.buf);
                match r.as_mut().poll_read(cx, &mut rb) {
                    Poll::Pending => {
                        // Idle with nothing buffered: hold no memory. The writer has
                        // everything; push it on (a no-op for sockets).
                        self.buf = Vec::new();
                        (self.pos, self.end) = (0, 0);
                        ready!(w.as_mut().poll_flush(cx))?;
                        return Poll::Pending;
                    }
                    Poll::Ready(r) => r?,
                }
                let n = rb.filled().len();
                if n == 0 {
                    self.eof = true;
                } else {
                    (self.pos, self.end) = (0, n);
                    self.bytes += n as u64;
                    if n == self.buf.len() && self.buf.len() < LARGE {
                        // A full read: more is coming; take the large buffer next time.
                        let mut large = vec![0; LARGE];
                        large[..n].copy_from_slice(&self.buf[..n]);
                        self.buf = large;
                    }
                }
            }
            while self.pos < self.end {
                let n = ready!(w.as_mut().poll_write(cx, &self.buf[self.pos..self.end]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.pos += n;
            }
            if self.eof {
                ready!(w.as_mut().poll_shutdown(cx))?;
                self.done = true;
                self.buf = Vec::new();
            }
        }
    }
}

impl Pipe {
    /// Move bytes from our stream to the kernel's without a buffer of our own: the stream
    /// lends its receive buffer ([`TcpStream::poll_read_with`]) to one non-blocking
    /// `writev` on the kernel socket, which saves one copy per byte.
    fn poll_direct(
        &mut self,
        cx: &mut Context<'_>,
        ours: &TcpStream,
        theirs: &mut tokio::net::TcpStream,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.done {
                return Poll::Ready(Ok(()));
            }
            if self.eof {
                ready!(Pin::new(&mut *theirs).poll_shutdown(cx))?;
                self.done = true;
                continue;
            }
            ready!(theirs.poll_write_ready(cx))?;
            let mut lent = false;
            let r = ready!(ours.poll_read_with(cx, |a, b| {
                lent = true;
                theirs.try_write_vectored(&[IoSlice::new(a), IoSlice::new(b)])
            }));
            match r {
                Ok(0) if !lent => self.eof = true,
                Ok(n) => self.bytes += n as u64,
                // The kernel socket is full: `poll_write_ready` waits for room.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Copies both ways between our stream and a kernel one until both directions reached end
/// of stream (each end carried to the other side with `shutdown`), or either failed.
pub struct Splice<'a> {
    ours: &'a mut TcpStream,
    theirs: &'a mut tokio::net::TcpStream,
    up: Pipe,
    down: Pipe,
}

impl std::fmt::Debug for Splice<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Splice").field("up", &self.up).field("down", &self.down).finish()
    }
}

/// What a [`Splice`] ends with.
#[derive(Debug)]
pub struct Spliced {
    /// Bytes read from our stream (and written to the kernel's, unless it failed).
    pub up: u64,
    /// Bytes read from the kernel's stream.
    pub down: u64,
    /// `Ok` when both directions ended cleanly.
    pub result: io::Result<()>,
}

/// Splice `ours` and `theirs` (see [`Splice`]).
pub fn splice<'a>(ours: &'a mut TcpStream, theirs: &'a mut tokio::net::TcpStream) -> Splice<'a> {
    Splice { ours, theirs, up: Pipe::default(), down: Pipe::default() }
}

impl Future for Splice<'_> {
    type Output = Spliced;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Spliced> {
        let this = self.get_mut();
        let up = this.up.poll_direct(cx, this.ours, this.theirs);
        let down = this.down.poll_copy(cx, Pin::new(&mut *this.theirs), Pin::new(&mut *this.ours));
        let result = match (up, down) {
            (Poll::Ready(Err(e)), _) | (_, Poll::Ready(Err(e))) => Err(e),
            (Poll::Ready(Ok(())), Poll::Ready(Ok(()))) => Ok(()),
            _ => return Poll::Pending,
        };
        Poll::Ready(Spliced { up: this.up.bytes, down: this.down.bytes, result })
    }
}

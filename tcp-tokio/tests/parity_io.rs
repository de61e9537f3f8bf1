//! tokio parity, I/O half: the same list of call sites is compiled against `tokio::net` and
//! against `tcp_tokio::net`, so a method missing here, or with another signature than
//! tokio 1.54's, fails to compile (and a call site that tokio itself rejects cannot creep
//! into the list). Then the behavioural ones run over two in-memory stacks on a paused
//! clock.
//!
//! Socket options (`ttl`, `linger`, `quickack`, …) and `TcpSocket` have their own parity
//! list; what needs a kernel file descriptor is listed in the `tcp_tokio::net` docs.

use std::cell::Cell;
use std::io::{self, ErrorKind, IoSlice, IoSliceMut};
use std::time::Duration;

use tcp_tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use tcp_tokio::net::{TcpListener, TcpStream};
use tcp_tokio::{MemLink, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::time::timeout;

use tcp_tokio::net as ours;
use tokio::net as theirs;

/// The call sites, written once and compiled against both `net` modules.
macro_rules! io_surface {
    ($m:ident, $net:ident) => {
        #[allow(dead_code, clippy::type_complexity)]
        mod $m {
            use std::fmt::Debug;
            use std::io::{self, IoSlice, IoSliceMut};
            use std::net::SocketAddr;
            use std::task::{Context, Poll};

            use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, Ready};

            use crate::$net::tcp::WriteHalf;
            use crate::$net::tcp::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError};
            use crate::$net::{TcpListener, TcpStream};

            /// The synchronous methods, by exact signature.
            pub(crate) fn signatures() {
                let _: fn(&TcpStream) -> io::Result<SocketAddr> = TcpStream::local_addr;
                let _: fn(&TcpStream) -> io::Result<SocketAddr> = TcpStream::peer_addr;
                let _: fn(&TcpStream) -> io::Result<Option<io::Error>> = TcpStream::take_error;
                let _: fn(
                    &TcpStream,
                    &mut Context<'_>,
                    &mut ReadBuf<'_>,
                ) -> Poll<io::Result<usize>> = TcpStream::poll_peek;
                let _: fn(&TcpStream, &mut Context<'_>) -> Poll<io::Result<()>> =
                    TcpStream::poll_read_ready;
                let _: fn(&TcpStream, &mut Context<'_>) -> Poll<io::Result<()>> =
                    TcpStream::poll_write_ready;
                let _: fn(&TcpStream, &mut [u8]) -> io::Result<usize> = TcpStream::try_read;
                let _: fn(&TcpStream, &mut [IoSliceMut<'_>]) -> io::Result<usize> =
                    TcpStream::try_read_vectored;
                let _: fn(&TcpStream, &mut Vec<u8>) -> io::Result<usize> =
                    TcpStream::try_read_buf::<Vec<u8>>;
                let _: fn(&TcpStream, &mut bytes::BytesMut) -> io::Result<usize> =
                    TcpStream::try_read_buf::<bytes::BytesMut>;
                let _: fn(&TcpStream, &[u8]) -> io::Result<usize> = TcpStream::try_write;
                let _: fn(&TcpStream, &[IoSlice<'_>]) -> io::Result<usize> =
                    TcpStream::try_write_vectored;
                let _: fn(&TcpStream) -> io::Result<bool> = TcpStream::nodelay;
                let _: fn(&TcpStream, bool) -> io::Result<()> = TcpStream::set_nodelay;
                let _: for<'a> fn(&'a mut TcpStream) -> (ReadHalf<'a>, WriteHalf<'a>) =
                    TcpStream::split;
                let _: fn(TcpStream) -> (OwnedReadHalf, OwnedWriteHalf) = TcpStream::into_split;

                let _: fn(
                    &mut ReadHalf<'static>,
                    &mut Context<'_>,
                    &mut ReadBuf<'_>,
                ) -> Poll<io::Result<usize>> = ReadHalf::poll_peek;
                let _: fn(&ReadHalf<'static>, &mut [u8]) -> io::Result<usize> = ReadHalf::try_read;
                let _: fn(&ReadHalf<'static>, &mut [IoSliceMut<'_>]) -> io::Result<usize> =
                    ReadHalf::try_read_vectored;
                let _: fn(&ReadHalf<'static>, &mut Vec<u8>) -> io::Result<usize> =
                    ReadHalf::try_read_buf::<Vec<u8>>;
                let _: fn(&ReadHalf<'static>) -> io::Result<SocketAddr> = ReadHalf::local_addr;
                let _: fn(&ReadHalf<'static>) -> io::Result<SocketAddr> = ReadHalf::peer_addr;

                let _: fn(&WriteHalf<'static>, &[u8]) -> io::Result<usize> = WriteHalf::try_write;
                let _: fn(&WriteHalf<'static>, &[IoSlice<'_>]) -> io::Result<usize> =
                    WriteHalf::try_write_vectored;
                let _: fn(&WriteHalf<'static>) -> io::Result<SocketAddr> = WriteHalf::local_addr;
                let _: fn(&WriteHalf<'static>) -> io::Result<SocketAddr> = WriteHalf::peer_addr;

                let _: fn(OwnedReadHalf, OwnedWriteHalf) -> Result<TcpStream, ReuniteError> =
                    OwnedReadHalf::reunite;
                let _: fn(
                    &mut OwnedReadHalf,
                    &mut Context<'_>,
                    &mut ReadBuf<'_>,
                ) -> Poll<io::Result<usize>> = OwnedReadHalf::poll_peek;
                let _: fn(&OwnedReadHalf, &mut [u8]) -> io::Result<usize> = OwnedReadHalf::try_read;
                let _: fn(&OwnedReadHalf, &mut [IoSliceMut<'_>]) -> io::Result<usize> =
                    OwnedReadHalf::try_read_vectored;
                let _: fn(&OwnedReadHalf, &mut Vec<u8>) -> io::Result<usize> =
                    OwnedReadHalf::try_read_buf::<Vec<u8>>;
                let _: fn(&OwnedReadHalf) -> io::Result<SocketAddr> = OwnedReadHalf::local_addr;
                let _: fn(&OwnedReadHalf) -> io::Result<SocketAddr> = OwnedReadHalf::peer_addr;

                let _: fn(OwnedWriteHalf, OwnedReadHalf) -> Result<TcpStream, ReuniteError> =
                    OwnedWriteHalf::reunite;
                let _: fn(OwnedWriteHalf) = OwnedWriteHalf::forget;
                let _: fn(&OwnedWriteHalf, &[u8]) -> io::Result<usize> = OwnedWriteHalf::try_write;
                let _: fn(&OwnedWriteHalf, &[IoSlice<'_>]) -> io::Result<usize> =
                    OwnedWriteHalf::try_write_vectored;
                let _: fn(&OwnedWriteHalf) -> io::Result<SocketAddr> = OwnedWriteHalf::local_addr;
                let _: fn(&OwnedWriteHalf) -> io::Result<SocketAddr> = OwnedWriteHalf::peer_addr;

                let _: fn(&TcpListener) -> io::Result<SocketAddr> = TcpListener::local_addr;
                let _: fn(
                    &TcpListener,
                    &mut Context<'_>,
                ) -> Poll<io::Result<(TcpStream, SocketAddr)>> = TcpListener::poll_accept;
            }

            /// The traits each type implements.
            pub(crate) fn traits() {
                fn stream<
                    T: AsyncRead + AsyncWrite + AsRef<TcpStream> + Debug + Send + Sync + Unpin,
                >() {
                }
                fn read<T: AsyncRead + AsRef<TcpStream> + Debug + Send + Sync + Unpin>() {}
                fn write<T: AsyncWrite + AsRef<TcpStream> + Debug + Send + Sync + Unpin>() {}
                fn error<T: std::error::Error + Debug + Send + Sync + 'static>() {}
                stream::<TcpStream>();
                read::<ReadHalf<'static>>();
                read::<OwnedReadHalf>();
                write::<WriteHalf<'static>>();
                write::<OwnedWriteHalf>();
                error::<ReuniteError>();
                // The halves of a failed reunite are public fields.
                let _: fn(ReuniteError) -> (OwnedReadHalf, OwnedWriteHalf) = |e| (e.0, e.1);
            }

            /// The async methods, called with the receivers tokio takes, results typed.
            pub(crate) async fn calls(
                s: &TcpStream,
                r: &mut ReadHalf<'_>,
                w: &WriteHalf<'_>,
                or: &mut OwnedReadHalf,
                ow: &OwnedWriteHalf,
                l: &TcpListener,
            ) {
                let _: io::Result<TcpStream> = TcpStream::connect("10.0.0.1:80").await;
                let _: io::Result<Ready> = s.ready(Interest::READABLE | Interest::WRITABLE).await;
                let _: io::Result<()> = s.readable().await;
                let _: io::Result<()> = s.writable().await;
                let _: io::Result<usize> = s.peek(&mut [0u8; 4]).await;
                let _: io::Result<usize> = s.try_io(Interest::READABLE, || s.try_read(&mut [0; 4]));
                let _: io::Result<usize> =
                    s.async_io(Interest::WRITABLE, || s.try_write(b"x")).await;

                let _: io::Result<usize> = r.peek(&mut [0u8; 4]).await;
                let _: io::Result<Ready> = r.ready(Interest::READABLE).await;
                let _: io::Result<()> = r.readable().await;
                let _: io::Result<Ready> = w.ready(Interest::WRITABLE).await;
                let _: io::Result<()> = w.writable().await;

                let _: io::Result<usize> = or.peek(&mut [0u8; 4]).await;
                let _: io::Result<Ready> = or.ready(Interest::READABLE).await;
                let _: io::Result<()> = or.readable().await;
                let _: io::Result<Ready> = ow.ready(Interest::WRITABLE).await;
                let _: io::Result<()> = ow.writable().await;

                let _: io::Result<TcpListener> = TcpListener::bind("10.0.0.1:80").await;
                let _: io::Result<(TcpStream, SocketAddr)> = l.accept().await;
            }
        }
    };
}

io_surface!(tokio_surface, theirs);
io_surface!(our_surface, ours);

const SERVER: &str = "10.0.0.1:80";
/// Longer than anything a lossless in-memory link needs.
const BOUND: Duration = Duration::from_secs(5);

/// A connected (client, server-side) pair; the stacks and listener are kept alive.
async fn connected() -> (Stack, Stack, TcpListener, TcpStream, TcpStream) {
    let (a, b) = MemLink::pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b).unwrap();
    let listener = server.bind(SERVER).await.unwrap();
    let c = client.connect(SERVER).await.unwrap();
    let (s, _) = listener.accept().await.unwrap();
    (server, client, listener, c, s)
}

/// Wait (bounded) until `s` has data to read.
async fn data_arrives(s: &TcpStream) {
    timeout(BOUND, s.readable()).await.expect("no data arrived").unwrap();
}

#[test]
fn the_surface_compiles_against_both() {
    tokio_surface::signatures();
    tokio_surface::traits();
    our_surface::signatures();
    our_surface::traits();
}

#[tokio::test(start_paused = true)]
async fn the_async_calls_run() {
    let (_s, client, l, mut c, s) = connected().await;
    // The list's `connect` dials the listener through the default stack (its `accept`
    // returns that connection); its `bind` fails on the client's address, as typed.
    client.set_default();
    // Data both ways, so every read-side wait finishes.
    c.write_all(b"ping").await.unwrap();
    s.try_write(b"pong").unwrap();
    let c2 = client.connect(SERVER).await.unwrap();
    let (s2, _) = l.accept().await.unwrap();
    c2.try_write(b"data").unwrap();
    data_arrives(&s).await;
    data_arrives(&s2).await;
    data_arrives(&c).await;
    let (mut r, w) = c.split();
    let (mut or, ow) = s2.into_split();
    timeout(BOUND, our_surface::calls(&s, &mut r, &w, &mut or, &ow, &l)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn try_io_without_readiness_is_would_block_and_skips_the_closure() {
    let (_s, _c, _l, _c1, s) = connected().await;
    let called = Cell::new(false);
    let r = s.try_io(Interest::READABLE, || {
        called.set(true);
        Ok(())
    });
    assert_eq!(r.unwrap_err().kind(), ErrorKind::WouldBlock);
    assert!(!called.get());
}

#[tokio::test(start_paused = true)]
async fn try_io_on_a_ready_stream_runs_the_closure() {
    let (_s, _c, _l, c, s) = connected().await;
    c.try_write(b"abc").unwrap();
    data_arrives(&s).await;
    let mut buf = [0; 8];
    let n = s.try_io(Interest::READABLE, || s.try_read(&mut buf)).unwrap();
    assert_eq!(&buf[..n], b"abc");
    // Writable from the start: the closure's own result comes back.
    let r: io::Result<u8> = s.try_io(Interest::WRITABLE, || Err(ErrorKind::Other.into()));
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Other);
}

#[tokio::test(start_paused = true)]
async fn async_io_waits_for_data_and_after_would_block_for_the_next_event() {
    let (_s, _c, _l, mut c, s) = connected().await;
    c.write_all(b"one").await.unwrap();
    let calls = Cell::new(0);
    let mut buf = [0u8; 16];
    let n = {
        let io = s.async_io(Interest::READABLE, || {
            calls.set(calls.get() + 1);
            if calls.get() == 1 {
                // As if another reader took the data first.
                return Err(ErrorKind::WouldBlock.into());
            }
            s.try_read(&mut buf)
        });
        tokio::pin!(io);
        // Ready (data is there), the closure says WouldBlock: it waits, without calling
        // again, although the stream still looks readable.
        let early = timeout(Duration::from_millis(500), &mut io).await;
        assert!(early.is_err(), "{early:?} after {} calls", calls.get());
        assert_eq!(calls.get(), 1);
        c.write_all(b"two").await.unwrap();
        timeout(BOUND, &mut io).await.unwrap().unwrap()
    };
    assert_eq!(calls.get(), 2);
    assert_eq!(&buf[..n], &b"onetwo"[..n]);
}

#[tokio::test(start_paused = true)]
async fn ready_with_both_interests_reports_each_side() {
    let (_s, _c, _l, mut c, mut s) = connected().await;
    let both = Interest::READABLE | Interest::WRITABLE;
    let ready = s.ready(both).await.unwrap();
    assert!(ready.is_writable() && !ready.is_readable());
    assert!(!ready.is_read_closed() && !ready.is_write_closed() && !ready.is_error());

    c.write_all(b"x").await.unwrap();
    let ready = timeout(BOUND, s.ready(Interest::READABLE)).await.unwrap().unwrap();
    assert!(ready.is_readable() && !ready.is_read_closed() && !ready.is_writable());
    assert!(s.ready(both).await.unwrap().is_writable());

    // The peer's FIN: readable and read-closed; we can still send.
    c.shutdown().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    let ready = s.ready(both).await.unwrap();
    assert!(ready.is_readable() && ready.is_read_closed());
    assert!(ready.is_writable() && !ready.is_write_closed());

    // Our shutdown too: both directions closed (EPOLLHUP).
    s.shutdown().await.unwrap();
    let ready = s.ready(Interest::WRITABLE).await.unwrap();
    assert!(ready.is_writable() && ready.is_write_closed() && !ready.is_readable());
}

#[tokio::test(start_paused = true)]
async fn a_reset_is_ready_as_error_and_taken_once() {
    let (_s, _c, _l, c, s) = connected().await;
    assert!(s.take_error().unwrap().is_none());
    // Dropping with unread data resets the connection.
    s.try_write(b"unread").unwrap();
    timeout(BOUND, c.readable()).await.unwrap().unwrap();
    drop(c);
    let ready = timeout(BOUND, s.ready(Interest::ERROR)).await.unwrap().unwrap();
    assert!(ready.is_error() && !ready.is_readable(), "masked to the interest: {ready:?}");
    let err = s.take_error().unwrap().expect("the reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert!(s.take_error().unwrap().is_none(), "SO_ERROR is cleared by reading it");
    // FA-02: reported once in all (Linux `sk_err`): once taken, reads end the stream.
    assert_eq!(s.try_read(&mut [0; 4]).unwrap(), 0);
}

/// What a stream reports after the peer's RST, in order: data read, the errors' kinds.
macro_rules! after_reset {
    ($s:expr) => {{
        let s = $s;
        let mut seen = Vec::new();
        let mut buf = [0u8; 64];
        let mut peek = [0u8; 64];
        let n = s.peek(&mut peek).await.unwrap();
        seen.push(format!("peek {:?}", String::from_utf8_lossy(&peek[..n])));
        for _ in 0..3 {
            seen.push(match s.try_read(&mut buf) {
                Ok(n) => format!("read {:?}", String::from_utf8_lossy(&buf[..n])),
                Err(e) => format!("read {:?}", e.kind()),
            });
        }
        seen.push(format!("peek {:?}", s.peek(&mut peek).await.map_err(|e| e.kind())));
        seen.push(format!("write {:?}", s.try_write(b"x").map_err(|e| e.kind())));
        seen
    }};
}

/// FA-02 (kernel parity): after the peer's RST a stream with unread data reads that data
/// first, then `ConnectionReset` once, then end of stream; writes fail with `BrokenPipe`.
/// Checked against tokio over the kernel's loopback (the peer resets with `SO_LINGER` 0),
/// and ours over a `MemLink` must report the same sequence (Linux `tcp_reset` keeps the
/// receive queue; `tcp_recvmsg` reports `sk_err` once, after it).
#[tokio::test(flavor = "current_thread")]
async fn fa_02_reads_after_a_reset_match_the_kernel() {
    let l = theirs::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut c = theirs::TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    c.write_all(b"hello").await.unwrap();
    timeout(BOUND, s.readable()).await.unwrap().unwrap();
    c.set_zero_linger().unwrap();
    drop(c);
    timeout(BOUND, s.ready(Interest::ERROR)).await.unwrap().unwrap();
    let kernel = after_reset!(&s);

    let ours = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let mem = std::thread::spawn(move || {
        ours.block_on(async {
            let (_s, _c, _l, mut c, s) = connected().await;
            c.write_all(b"hello").await.unwrap();
            data_arrives(&s).await;
            c.set_zero_linger().unwrap();
            drop(c);
            timeout(BOUND, s.ready(Interest::ERROR)).await.unwrap().unwrap();
            after_reset!(&s)
        })
    })
    .join()
    .unwrap();
    assert_eq!(
        kernel,
        [
            "peek \"hello\"",
            "read \"hello\"",
            "read ConnectionReset",
            "read \"\"",
            "peek Ok(0)",
            "write Err(BrokenPipe)"
        ]
    );
    assert_eq!(mem, kernel);
}

#[tokio::test(start_paused = true)]
async fn every_half_is_as_ref_the_stream() {
    let (_s, _c, _l, mut c, s) = connected().await;
    let addr = c.local_addr().unwrap();
    let stream: *const TcpStream = &c;
    let (r, w): (ReadHalf<'_>, WriteHalf<'_>) = c.split();
    assert!(std::ptr::eq(r.as_ref(), stream) && std::ptr::eq(w.as_ref(), stream));
    let (r, w): (OwnedReadHalf, OwnedWriteHalf) = s.into_split();
    assert!(std::ptr::eq(r.as_ref(), w.as_ref()));
    assert_eq!(r.as_ref().peer_addr().unwrap(), addr);
    // The stream's own methods through a half.
    assert!(w.as_ref().nodelay().is_ok());
}

#[tokio::test(start_paused = true)]
async fn try_read_buf_fills_a_vec_as_a_socket_read_does() {
    let (_s, _c, _l, mut c, s) = connected().await;
    let data: Vec<u8> = (0..100).collect();
    c.write_all(&data).await.unwrap();
    data_arrives(&s).await;
    // An empty Vec: `chunk_mut` reserves 64 bytes, and one read fills only those.
    let mut got = Vec::new();
    assert_eq!(s.try_read_buf(&mut got).unwrap(), 64);
    // Spare capacity is filled, not grown past.
    got.reserve_exact(10);
    let room = got.capacity() - got.len();
    assert_eq!(s.try_read_buf(&mut got).unwrap(), room.min(36));
    while got.len() < 100 {
        s.try_read_buf(&mut got).unwrap();
    }
    assert_eq!(got, data);
    assert_eq!(s.try_read_buf(&mut got).unwrap_err().kind(), ErrorKind::WouldBlock);
    let mut b = bytes::BytesMut::with_capacity(8);
    c.write_all(b"bytes").await.unwrap();
    data_arrives(&s).await;
    assert_eq!(s.try_read_buf(&mut b).unwrap(), 5);
    assert_eq!(&b[..], b"bytes");
}

#[tokio::test(start_paused = true)]
async fn try_read_vectored_fills_buffers_in_order() {
    let (_s, _c, _l, mut c, s) = connected().await;
    c.write_all(b"abcdefgh").await.unwrap();
    data_arrives(&s).await;
    let (mut a, mut b, mut z) = ([0u8; 3], [0u8; 0], [0u8; 4]);
    let n = {
        let mut bufs = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b), IoSliceMut::new(&mut z)];
        s.try_read_vectored(&mut bufs).unwrap()
    };
    assert_eq!((n, &a, &z), (7, b"abc", b"defg"));
    let mut last = [0u8; 4];
    assert_eq!(s.try_read_vectored(&mut [IoSliceMut::new(&mut last)]).unwrap(), 1);
    assert_eq!(last[0], b'h');
    c.shutdown().await.unwrap();
    timeout(BOUND, s.readable()).await.unwrap().unwrap();
    assert_eq!(s.try_read_vectored(&mut [IoSliceMut::new(&mut last)]).unwrap(), 0, "EOF");
}

#[tokio::test(start_paused = true)]
async fn halves_read_write_and_wait_like_the_stream() {
    let (_s, _c, _l, c, mut s) = connected().await;
    let (mut r, w) = c.into_split();
    w.writable().await.unwrap();
    assert_eq!(w.try_write_vectored(&[IoSlice::new(b"ab"), IoSlice::new(b"c")]).unwrap(), 3);
    let mut got = [0; 3];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"abc");
    s.write_all(b"reply").await.unwrap();
    let mut peeked = [0; 5];
    let n = timeout(BOUND, r.peek(&mut peeked)).await.unwrap().unwrap();
    assert_eq!(&peeked[..n], &b"reply"[..n]);
    r.readable().await.unwrap();
    let mut v = Vec::with_capacity(16);
    assert_eq!(r.try_read_buf(&mut v).unwrap(), 5);
    // `forget` leaves writing open: the peer sees no FIN, and the stream still writes.
    w.forget();
    assert!(r.as_ref().try_write(b"!").is_ok());
    let mut one = [0; 1];
    s.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"!");
}

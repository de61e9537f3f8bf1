//! Heap allocations on the I/O path, counted on the one runtime thread: waking readiness
//! waiters adds none to the driver's path, and a non-blocking call that would block
//! allocates nothing (tokio's `WouldBlock` does not either).

#[path = "../../tcpcore/tests/alloc_util/mod.rs"]
mod alloc_util;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

use tcp_tokio::net::TcpStream;
use tcp_tokio::{MemLink, Stack};

const SERVER: &str = "10.0.0.1:80";
const WAITERS: usize = 100;

/// Counts its wakes.
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

type Readable<'a> = Pin<Box<dyn Future<Output = io::Result<()>> + 'a>>;

/// Send one byte from `c` to `s` while `waiters` futures await `s.readable()` beside one
/// `poll_read_ready` waker; returns the allocations made from the write until every waker
/// has fired.
async fn one_segment(c: &TcpStream, s: &TcpStream, waiters: usize, byte: u8) -> u64 {
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    // Registering allocates (the futures, the list's slots): not measured.
    let mut waiting: Vec<Readable<'_>> =
        (0..waiters).map(|_| Box::pin(s.readable()) as _).collect();
    for f in &mut waiting {
        assert!(f.as_mut().poll(&mut cx).is_pending());
    }
    assert!(s.poll_read_ready(&mut cx).is_pending());
    let before = alloc_util::allocs();
    c.try_write(&[byte]).unwrap();
    // Bounded: the drivers need a few polls to carry the segment across.
    let mut spins = 0;
    while count.0.load(Ordering::Relaxed) < waiters + 1 {
        spins += 1;
        assert!(spins < 1_000, "waiters not woken");
        tokio::task::yield_now().await;
    }
    let allocs = alloc_util::allocs() - before;
    for f in &mut waiting {
        assert!(f.as_mut().poll(&mut cx).is_ready());
    }
    drop(waiting);
    assert_eq!(s.try_read(&mut [0; 1]).unwrap(), 1);
    allocs
}

/// The stacks and a connected (client, server-side) pair.
async fn connected() -> (Stack, Stack, TcpStream, TcpStream) {
    let (a, b) = MemLink::pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b).unwrap();
    let listener = server.bind(SERVER).await.unwrap();
    let c = client.connect(SERVER).await.unwrap();
    let (s, _) = listener.accept().await.unwrap();
    (server, client, c, s)
}

/// A segment that wakes 100 waiting `readable()` futures costs exactly the allocations of
/// the same segment waking one `poll_read_ready` waker.
#[tokio::test(start_paused = true)]
async fn waking_a_hundred_waiters_allocates_nothing_more_than_one_waker() {
    let (_s, _c, c, s) = connected().await;
    // Warm up both paths (runtime queues, the driver's waker vector, the list's capacity).
    for byte in 0..2 {
        one_segment(&c, &s, WAITERS, byte).await;
        one_segment(&c, &s, 0, byte).await;
    }
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for byte in 0..4 {
        with.push(one_segment(&c, &s, WAITERS, byte).await);
        without.push(one_segment(&c, &s, 0, byte).await);
    }
    println!("allocations per segment: with {WAITERS} waiters {with:?}, without {without:?}");
    assert_eq!(with, without);
}

/// Zero heap allocations per segment in steady state, at the tokio level: a segment written
/// by one stack, carried by both drivers over MemLink and read by the other, with its wakers
/// fired, allocates nothing (the drivers reuse their slice lists, MemLink its buffers).
#[tokio::test(start_paused = true)]
async fn a_segment_through_both_drivers_allocates_nothing() {
    let (_s, _c, c, s) = connected().await;
    for byte in 0..4 {
        one_segment(&c, &s, 0, byte).await;
    }
    let mut measured = Vec::with_capacity(8);
    for byte in 0..8 {
        measured.push(one_segment(&c, &s, 0, byte).await);
    }
    assert!(measured.iter().all(|&n| n == 0), "allocations per segment: {measured:?}");
}

#[tokio::test(start_paused = true)]
async fn would_block_allocates_nothing() {
    let (_s, _c, c, _server_side) = connected().await;
    // Fill the client's send buffer (the server does not read, nor write).
    let chunk = vec![0u8; 64 * 1024];
    while c.try_write(&chunk).is_ok() {
        tokio::task::yield_now().await;
    }
    let before = alloc_util::allocs();
    let read = c.try_read(&mut [0; 1]).unwrap_err();
    let read_vectored = c.try_read_vectored(&mut [io::IoSliceMut::new(&mut [0; 1])]).unwrap_err();
    let write = c.try_write(b"x").unwrap_err();
    assert_eq!(alloc_util::allocs() - before, 0);
    for e in [read, read_vectored, write] {
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}

/// MEM-01: a `readable().await` then `try_read` loop allocates nothing per segment once warm:
/// the waiter list a readiness future takes its slot in is kept when the future leaves.
#[tokio::test(start_paused = true)]
async fn mem_01_waiting_again_allocates_nothing() {
    let (_s, _c, c, s) = connected().await;
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    let mut measured = Vec::with_capacity(8);
    for byte in 0..12u8 {
        let before = alloc_util::allocs();
        {
            let mut readable = std::pin::pin!(s.readable());
            assert!(readable.as_mut().poll(&mut cx).is_pending());
            c.try_write(&[byte]).unwrap();
            let mut spins = 0;
            while readable.as_mut().poll(&mut cx).is_pending() {
                spins += 1;
                assert!(spins < 1_000, "waiter not woken");
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(s.try_read(&mut [0; 1]).unwrap(), 1);
        if byte >= 4 {
            measured.push(alloc_util::allocs() - before);
        }
    }
    assert!(measured.iter().all(|&n| n == 0), "allocations per wait: {measured:?}");
}

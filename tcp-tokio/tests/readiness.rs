//! Readiness with many waiters: every task awaiting `readable()`, `writable()` or `ready()`
//! on one shared stream is woken, as tokio's `ScheduledIo` wakes every waiter. Two
//! in-memory stacks on a paused clock; waits are bounded by `timeout`, never by sleeps.

use std::sync::Arc;
use std::time::Duration;

use tcp_tokio::net::TcpStream;
use tcp_tokio::{MemLink, Stack};
use tokio::io::{AsyncReadExt, Interest};
use tokio::task::JoinSet;
use tokio::time::timeout;

const SERVER: &str = "10.0.0.1:80";
const WAITERS: usize = 100;
/// Longer than any retransmission or delayed ACK a single segment needs on a lossless link.
const BOUND: Duration = Duration::from_secs(5);

/// A connected (client, server-side) pair; the stacks and listener are kept alive.
async fn connected() -> (Stack, Stack, TcpStream, TcpStream) {
    let (a, b) = MemLink::pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b).unwrap();
    let listener = server.bind(SERVER).await.unwrap();
    let c = client.connect(SERVER).await.unwrap();
    let (s, _) = listener.accept().await.unwrap();
    (server, client, c, s)
}

/// Let every spawned task run up to its first `Pending` (the current-thread runtime polls
/// the tasks queued before us first).
async fn let_tasks_register() {
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
}

/// Wait (bounded) for every task of `set` to finish; returns how many did.
async fn finished(set: &mut JoinSet<()>) -> usize {
    let mut n = 0;
    let _ = timeout(BOUND, async {
        while let Some(r) = set.join_next().await {
            r.unwrap();
            n += 1;
        }
    })
    .await;
    n
}

#[tokio::test(start_paused = true)]
async fn one_segment_wakes_all_hundred_readable_waiters() {
    let (_s, _c, mut c, s) = connected().await;
    let s = Arc::new(s);
    let mut set = JoinSet::new();
    for _ in 0..WAITERS {
        let s = s.clone();
        set.spawn(async move { s.readable().await.unwrap() });
    }
    let_tasks_register().await;
    assert_eq!(set.len(), WAITERS, "a waiter finished before any data arrived");
    // One byte: one segment.
    tokio::io::AsyncWriteExt::write_all(&mut c, b"x").await.unwrap();
    assert_eq!(finished(&mut set).await, WAITERS);
}

#[tokio::test(start_paused = true)]
async fn acked_data_wakes_all_writable_waiters() {
    let (_s, _c, c, mut s) = connected().await;
    // Fill the send buffer: the server does not read, so the window closes.
    let chunk = vec![7u8; 64 * 1024];
    let mut sent = 0;
    loop {
        match c.try_write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
        // Let the driver send what was queued so the buffer drains into the peer's window.
        let_tasks_register().await;
    }
    let c = Arc::new(c);
    let mut set = JoinSet::new();
    for i in 0..WAITERS {
        let c = c.clone();
        // Half through `writable()`, half through `ready(WRITABLE)`.
        set.spawn(async move {
            if i % 2 == 0 {
                c.writable().await.unwrap();
            } else {
                assert!(c.ready(Interest::WRITABLE).await.unwrap().is_writable());
            }
        });
    }
    let_tasks_register().await;
    assert_eq!(set.len(), WAITERS, "a waiter finished while the send buffer was full");
    // Reading opens the window; the acknowledgements free send-buffer space.
    let mut buf = vec![0u8; sent];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(finished(&mut set).await, WAITERS);
}

#[tokio::test(start_paused = true)]
async fn readable_and_writable_waiters_on_one_stream_wake_independently() {
    let (_s, _c, mut c, s) = connected().await;
    let s = Arc::new(s);
    let mut readers = JoinSet::new();
    for _ in 0..10 {
        let s = s.clone();
        readers.spawn(async move { s.readable().await.unwrap() });
    }
    // A fresh stream has send room: writable waiters finish at once, readers stay.
    let mut writers = JoinSet::new();
    for _ in 0..10 {
        let s = s.clone();
        writers.spawn(async move { s.writable().await.unwrap() });
    }
    assert_eq!(finished(&mut writers).await, 10);
    assert_eq!(readers.len(), 10);
    tokio::io::AsyncWriteExt::write_all(&mut c, b"x").await.unwrap();
    assert_eq!(finished(&mut readers).await, 10);
}

#[tokio::test(start_paused = true)]
async fn cancelled_waiters_do_not_stop_the_others_waking() {
    let (_s, _c, mut c, s) = connected().await;
    let s = Arc::new(s);
    let mut set = JoinSet::new();
    let mut cancelled = JoinSet::new();
    for i in 0..20 {
        let s = s.clone();
        if i % 2 == 0 {
            set.spawn(async move { s.readable().await.unwrap() });
        } else {
            // Each gives up after a short wait, releasing its place in the waiter list.
            cancelled.spawn(async move {
                assert!(timeout(Duration::from_millis(1), s.readable()).await.is_err());
            });
        }
    }
    assert_eq!(finished(&mut cancelled).await, 10);
    assert_eq!(set.len(), 10);
    tokio::io::AsyncWriteExt::write_all(&mut c, b"x").await.unwrap();
    assert_eq!(finished(&mut set).await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_waiter_is_lost_across_threads() {
    let (_s, _c, mut c, s) = connected().await;
    let s = Arc::new(s);
    // Each round: waiters on several threads race the driver delivering one byte; a waiter
    // that registers after the event sees the data, one before it is woken.
    for round in 0..20u8 {
        let mut set = JoinSet::new();
        for _ in 0..WAITERS {
            let s = s.clone();
            set.spawn(async move { s.readable().await.unwrap() });
        }
        tokio::io::AsyncWriteExt::write_all(&mut c, &[round]).await.unwrap();
        assert_eq!(finished(&mut set).await, WAITERS, "round {round}");
        let mut b = [0; 1];
        assert_eq!(s.try_read(&mut b).unwrap(), 1);
        assert_eq!(b[0], round);
    }
}

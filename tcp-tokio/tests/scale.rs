//! Many concurrent connections through one pair of stacks.

use tcp_tokio::{EndpointConfig, ListenOptions, MemLink, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// 10,000 concurrent connections, each echoing 64 KiB, on a paused clock.
#[tokio::test(start_paused = true)]
async fn ten_thousand_connections_echo_64k() {
    const CONNS: usize = 10_000;
    const SIZE: usize = 64 << 10;
    let (a, b) = MemLink::builder().queue_len(1 << 16).pair();
    let mut cfg = EndpointConfig { somaxconn: 1 << 16, ..EndpointConfig::default() };
    // 20,000 connections: keep each one's buffers small.
    cfg.conn.send_buffer = 32 << 10;
    cfg.conn.recv_buffer = 32 << 10;
    let stack =
        |ip: &str, seed| Stack::builder().address(ip.parse().unwrap()).config(cfg).seed(seed);
    let server = stack("10.0.0.1", 1).build(a).unwrap();
    let client = stack("10.0.0.2", 2).build(b).unwrap();
    let opts = ListenOptions { backlog: 1 << 16, syn_backlog: 1 << 16, ..Default::default() };
    let listener = server.bind_with("10.0.0.1:7", opts).await.unwrap();
    let accept = tokio::spawn(async move {
        let mut echoes = Vec::with_capacity(CONNS);
        for _ in 0..CONNS {
            let (mut s, _) = listener.accept().await.unwrap();
            echoes.push(tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let n = tokio::io::copy(&mut r, &mut w).await.unwrap();
                w.shutdown().await.unwrap();
                n
            }));
        }
        let mut total = 0;
        for e in echoes {
            total += e.await.unwrap();
        }
        total
    });
    let started = std::time::Instant::now();
    let clients: Vec<_> = (0..CONNS)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let data: Vec<u8> = (0..SIZE).map(|j| (i + j) as u8).collect();
                let mut c = client.connect("10.0.0.1:7").await.unwrap();
                let (mut r, mut w) = c.split();
                let send = async {
                    w.write_all(&data).await.unwrap();
                    w.shutdown().await.unwrap();
                };
                let recv = async {
                    let mut got = Vec::with_capacity(SIZE);
                    r.read_to_end(&mut got).await.unwrap();
                    got
                };
                let ((), got) = tokio::join!(send, recv);
                assert!(got == data, "connection {i} echoed wrong bytes");
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(accept.await.unwrap(), (CONNS * SIZE) as u64);
    eprintln!(
        "{CONNS} connections × {SIZE} B echoed in {:?} (wall clock); server {:?}",
        started.elapsed(),
        server.stats().passive_opens
    );
}

/// The same machinery on a multi-threaded runtime, on the real clock: 64 connections each
/// echoing 1 MiB while the driver, the streams and the tasks run on different workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_runtime_echo() {
    const CONNS: usize = 64;
    const SIZE: usize = 1 << 20;
    let (a, b) = MemLink::pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b).unwrap();
    let listener = server.bind("10.0.0.1:7").await.unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                tokio::io::copy(&mut r, &mut w).await.unwrap();
            });
        }
    });
    let clients: Vec<_> = (0..CONNS)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let data: Vec<u8> = (0..SIZE).map(|j| (i * 7 + j) as u8).collect();
                let c = client.connect("10.0.0.1:7").await.unwrap();
                let (mut r, mut w) = c.into_split();
                let d = data.clone();
                let send = tokio::spawn(async move {
                    w.write_all(&d).await.unwrap();
                    drop(w); // FIN
                });
                let mut got = Vec::with_capacity(SIZE);
                r.read_to_end(&mut got).await.unwrap();
                send.await.unwrap();
                assert!(got == data, "connection {i} echoed wrong bytes");
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
}

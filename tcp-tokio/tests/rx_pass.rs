//! RX-12 in the driver: while segments keep arriving, the application gets to read after every
//! few hundred KiB the driver received, even when it reads in the runtime's `block_on` future,
//! so what it copies out of the receive buffer is still in the CPU's cache and the window the
//! ACKs offer keeps moving. A driver pass used to read until tokio's cooperative budget
//! stopped it (~64 super-segments, 4 MiB), then wake itself, and a current-thread runtime polls
//! `block_on` again only after 61 task polls: against Linux's BBR over a TUN (whose next packet
//! each ACK sets off, so the device never ran dry) the reader took 4–6 MiB at a time and the
//! stack's thread spent ~10 % more CPU per segment.

use std::net::SocketAddr;
use std::time::Duration;

use tcp_tokio::{MemLink, Stack};
use tcpcore::EndpointConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOTAL: usize = 32 << 20;

/// RX-12: 32 MiB over an in-memory link with offloads (64 KiB super-segments) and a queue deep
/// enough that the sender's whole batches wait for the receiver's driver; the receiving
/// application, the `block_on` future of a current-thread runtime, never finds more than 1 MiB
/// received and not yet read when it reads.
#[tokio::test(start_paused = true)]
async fn rx_12_a_block_on_reader_reads_at_least_every_mib_received() {
    let max = max_backlog(MemLink::builder().queue_len(16_384)).await;
    assert!(max <= 1 << 20, "the reader found {max} bytes waiting: more than 1 MiB");
}

/// RX-12: the same without offloads (MTU-sized packets: the byte bound, not only the packet
/// budget, ends a pass).
#[tokio::test(start_paused = true)]
async fn rx_12_a_block_on_reader_reads_at_least_every_mib_received_without_offloads() {
    let max = max_backlog(MemLink::builder().queue_len(16_384).offload(false)).await;
    assert!(max <= 1 << 20, "the reader found {max} bytes waiting: more than 1 MiB");
}

/// The most bytes received but not yet read that the receiver's application saw at a read.
async fn max_backlog(link: tcp_tokio::MemLinkBuilder) -> u64 {
    let (a, b) = link.pair();
    // A window and a flight of 8 MiB, so that MiBs wait in the link for the receiver.
    let mut config = EndpointConfig::default();
    config.conn.recv_buffer = 8 << 20;
    config.conn.send_buffer = 8 << 20;
    config.conn.initial_cwnd = 8000;
    let stack = |addr: &str, seed, dev| {
        let b = Stack::builder().address(addr.parse().unwrap()).seed(seed).config(config);
        b.build(dev).unwrap()
    };
    let (server, client) = (stack("10.0.0.1", 1, a), stack("10.0.0.2", 2, b));
    let listener = server.bind("10.0.0.1:80".parse::<SocketAddr>().unwrap()).await.unwrap();
    let send = tokio::spawn(async move {
        let mut c = client.connect("10.0.0.1:80".parse::<SocketAddr>().unwrap()).await.unwrap();
        let data = vec![7u8; 256 * 1024];
        for _ in 0..TOTAL / data.len() {
            c.write_all(&data).await.unwrap();
        }
        c.shutdown().await.unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).await.unwrap();
        // Nothing lost: a hole filled late would deliver MiBs at once.
        assert_eq!(c.info().retransmits, 0);
        (client, c)
    });
    let (mut s, _) = listener.accept().await.unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    let mut max = 0;
    let read = async {
        loop {
            // What the driver had received when the application got to run.
            max = max.max(s.info().bytes_received - got);
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got += n as u64;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read).await.expect("transfer timed out");
    assert_eq!(got, TOTAL as u64);
    eprintln!("RX-12: at most {max} bytes waiting when the reader ran");
    drop(s);
    send.await.unwrap();
    max
}

//! The driver's receive pass with a large batch of segments waiting for it.
//!
//! RX-08: the receiver still ACKs at least every 64 KiB of them (each GRO'd super-segment, as
//! Linux does), not once per driver pass (up to 256 packets: 370 kB at MTU 1500, 16 MiB of
//! super-segments). Stretch ACKs that large made the kernel's BBR sender overestimate the path
//! over a TUN.
//!
//! RX-12: while segments keep arriving, the application gets to read after every few hundred
//! KiB the driver received, even when it reads in the runtime's `block_on` future, so what it
//! copies out of the receive buffer is still in the CPU's cache and the window the ACKs offer
//! keeps moving. Without that bound a pass reads until tokio's cooperative budget stops it
//! (~64 super-segments, 4 MiB), and a current-thread runtime polls `block_on` again only after
//! 61 task polls: against Linux's BBR over a TUN (whose next packet each ACK sets off, so the
//! device never runs dry) the reader took 4–6 MiB at a time and the stack's thread spent
//! ~10 % more CPU per segment.

use std::net::SocketAddr;
use std::time::Duration;

use tcp_tokio::{MemLink, MemLinkBuilder, Stack};
use tcpcore::EndpointConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// RX-08: 8 MiB from one stack to another over an in-memory link with offloads (64 KiB
/// super-segments each way), a queue deep enough that the sender's whole transmit batch waits
/// for the receiver's driver: the receiver sends at least one segment (its ACKs) per 64 KiB
/// received.
#[tokio::test(start_paused = true)]
async fn rx_08_a_batch_of_super_segments_is_acked_at_least_every_64_kib() {
    acks_per_64_kib(MemLink::builder().queue_len(4096)).await;
}

/// RX-08: the same at MTU 1500 without offloads.
#[tokio::test(start_paused = true)]
async fn rx_08_a_batch_of_segments_is_acked_at_least_every_64_kib() {
    acks_per_64_kib(MemLink::builder().queue_len(4096).offload(false)).await;
}

/// RX-12: 32 MiB over an in-memory link with offloads (64 KiB super-segments) and a queue deep
/// enough that the sender's whole batches wait for the receiver's driver; the receiving
/// application, the `block_on` future of a current-thread runtime, never finds more than 1 MiB
/// received and not yet read when it reads.
#[tokio::test(start_paused = true)]
async fn rx_12_a_block_on_reader_reads_at_least_every_mib_received() {
    backlog_below_1_mib(MemLink::builder().queue_len(16_384)).await;
}

/// RX-12: the same without offloads (MTU-sized packets: the byte bound, not only the packet
/// budget, ends a pass).
#[tokio::test(start_paused = true)]
async fn rx_12_a_block_on_reader_reads_at_least_every_mib_received_without_offloads() {
    backlog_below_1_mib(MemLink::builder().queue_len(16_384).offload(false)).await;
}

async fn acks_per_64_kib(link: MemLinkBuilder) {
    const TOTAL: usize = 8 << 20;
    let t = transfer(link, EndpointConfig::default(), TOTAL).await;
    let acks = t.segs_out;
    eprintln!("RX-08: {acks} segments sent for {} KiB received", TOTAL / 1024);
    assert!(
        acks >= (TOTAL / (64 * 1024)) as u64,
        "{acks} ACKs for {TOTAL} bytes: fewer than one per 64 KiB"
    );
}

async fn backlog_below_1_mib(link: MemLinkBuilder) {
    // A window and a flight of 8 MiB, so that MiBs wait in the link for the receiver.
    let mut config = EndpointConfig::default();
    config.conn.recv_buffer = 8 << 20;
    config.conn.send_buffer = 8 << 20;
    config.conn.initial_cwnd = 8000;
    let t = transfer(link, config, 32 << 20).await;
    // Nothing lost: a hole filled late would deliver MiBs at once.
    assert_eq!(t.retransmits, 0);
    let max = t.max_backlog;
    eprintln!("RX-12: at most {max} bytes waiting when the reader ran");
    assert!(max <= 1 << 20, "the reader found {max} bytes waiting: more than 1 MiB");
}

/// What one transfer showed.
struct Transfer {
    /// The most bytes received but not yet read that the receiver's application saw at a read.
    max_backlog: u64,
    /// Segments the receiver sent (its ACKs).
    segs_out: u64,
    /// The sender's retransmissions.
    retransmits: u64,
}

/// `total` bytes from a client stack to a server stack over `link`, read by the test's own
/// future (the runtime's `block_on`), 256 KiB at a time.
async fn transfer(link: MemLinkBuilder, config: EndpointConfig, total: usize) -> Transfer {
    let (a, b) = link.pair();
    let stack = |addr: &str, seed, dev| {
        let b = Stack::builder().address(addr.parse().unwrap()).seed(seed).config(config);
        b.build(dev).unwrap()
    };
    let (server, client) = (stack("10.0.0.1", 1, a), stack("10.0.0.2", 2, b));
    let listener = server.bind("10.0.0.1:80".parse::<SocketAddr>().unwrap()).await.unwrap();
    let send = tokio::spawn(async move {
        let mut c = client.connect("10.0.0.1:80".parse::<SocketAddr>().unwrap()).await.unwrap();
        let data = vec![7u8; 256 * 1024];
        for _ in 0..total / data.len() {
            c.write_all(&data).await.unwrap();
        }
        c.shutdown().await.unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).await.unwrap();
        let retransmits = c.info().retransmits;
        (client, c, retransmits)
    });
    let (mut s, _) = listener.accept().await.unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let (mut got, mut max_backlog) = (0u64, 0);
    let read = async {
        loop {
            // What the driver had received when the application got to run.
            max_backlog = max_backlog.max(s.info().bytes_received - got);
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got += n as u64;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read).await.expect("transfer timed out");
    assert_eq!(got, total as u64);
    let segs_out = s.info().segs_out;
    drop(s);
    let (_client, _c, retransmits) = send.await.unwrap();
    Transfer { max_backlog, segs_out, retransmits }
}

//! RX-08 in the driver: a receiver that finds a large batch of segments waiting still ACKs at
//! least every 64 KiB of them (each GRO'd super-segment, as Linux does), instead of once per
//! driver pass (up to 256 packets: 370 kB at MTU 1500, 16 MiB of super-segments). Stretch
//! ACKs that large made the kernel's BBR sender overestimate the path over a TUN.

use std::net::SocketAddr;
use std::time::Duration;

use tcp_tokio::{MemLink, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOTAL: usize = 8 << 20;

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

async fn acks_per_64_kib(link: tcp_tokio::MemLinkBuilder) {
    let (a, b) = link.pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b).unwrap();
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
        (client, c)
    });
    let (mut s, _) = listener.accept().await.unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    let read = async {
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got += n;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read).await.expect("transfer timed out");
    assert_eq!(got, TOTAL);
    let acks = s.info().segs_out;
    eprintln!("RX-08: {acks} segments sent for {} KiB received", TOTAL / 1024);
    assert!(
        acks >= (TOTAL / (64 * 1024)) as u64,
        "{acks} ACKs for {TOTAL} bytes: fewer than one per 64 KiB"
    );
    drop(s);
    send.await.unwrap();
}

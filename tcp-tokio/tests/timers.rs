//! The driver's timer heap stays proportional to the live connections, whatever the
//! connections' timers do.

use std::time::Duration;

use tcp_tokio::{EndpointConfig, MemLink, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A keepalive connection (deadline 2 h away, pushed later by every segment) carrying one
/// byte every 60 ms: each short timer (RTO, delayed ACK) that fires must not leave a stale
/// long-deadline entry behind. Ten virtual minutes are 10,000 segments; the heap holds a
/// few entries per connection all along.
#[tokio::test(start_paused = true)]
async fn timer_heap_stays_proportional_to_live_connections() {
    let (a, b) = MemLink::builder().delay(Duration::from_millis(5)).pair();
    let mut cfg = EndpointConfig::default();
    cfg.conn.keepalive = true;
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).config(cfg).seed(1);
    let server = server.build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).config(cfg).seed(2);
    let client = client.build(b).unwrap();
    let listener = server.bind("10.0.0.1:80").await.unwrap();
    let mut c = client.connect("10.0.0.1:80").await.unwrap();
    let (mut s, _) = listener.accept().await.unwrap();
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        let mut total = 0;
        while total < 10_000 {
            total += s.read(&mut buf).await.unwrap();
        }
        total
    });
    let mut largest = 0;
    for i in 0..10_000u32 {
        c.write_all(&[i as u8]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        largest = largest.max(client.timer_heap_len()).max(server.timer_heap_len());
    }
    assert_eq!(reader.await.unwrap(), 10_000);
    // One live connection per stack: a bounded handful of entries, not one per segment.
    assert!(largest <= 64, "the timer heap grew to {largest} entries for one connection");
}

//! The apps of `interop.rs` (hyper, `Framed`, `copy_bidirectional`), unchanged, over a link
//! that loses, reorders and duplicates packets. A paused clock makes retransmission timeouts
//! free, so the test takes well under a second. Its own file, so its own process: the apps
//! connect through the process default stack.

use std::time::Duration;

use tcp_tokio::net::{TcpListener, TcpStream};
use tcp_tokio::{MemLink, Stack};

include!("interop/apps.rs");

#[tokio::test(start_paused = true)]
async fn apps_run_unchanged_over_a_lossy_link() {
    let (a, b) = MemLink::builder()
        .loss(0.01)
        .reorder(0.01)
        .reorder_delay(Duration::from_micros(200))
        .duplicate(0.005)
        .delay(Duration::from_micros(50))
        .seed(4)
        .pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b).unwrap();
    client.set_default();

    hyper_app(server.bind("10.0.0.1:0").await.unwrap()).await;
    framed_app(server.bind("10.0.0.1:0").await.unwrap()).await;
    let backend = server.bind("10.0.0.1:0").await.unwrap();
    proxy_app(backend, server.bind("10.0.0.1:0").await.unwrap()).await;
}

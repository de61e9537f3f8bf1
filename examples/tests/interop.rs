//! Kernel-shaped apps run over the stack unchanged: a hyper 1.x server and client, a
//! tokio-util `Framed` codec and `tokio::io::copy_bidirectional`. The apps live in
//! `interop/apps.rs`, compiled twice: over `tcp_tokio::net` and over `tokio::net` (the
//! kernel's loopback), with only the `use` line for `TcpListener` and `TcpStream` changed.

use tcp_tokio::{MemLink, MemLinkBuilder, Stack};

mod on_stack {
    use tcp_tokio::net::{TcpListener, TcpStream};
    include!("interop/apps.rs");
}

mod on_kernel {
    use tokio::net::{TcpListener, TcpStream};
    include!("interop/apps.rs");
}

/// A server stack on one end of `link`; the client stack on the other end becomes the
/// process default, so the apps' `TcpStream::connect` uses it.
fn stacks(link: MemLinkBuilder) -> Stack {
    let (a, b) = link.pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b).unwrap();
    client.set_default();
    server
}

async fn run_apps_on(server: &Stack) {
    on_stack::hyper_app(server.bind("10.0.0.1:0").await.unwrap()).await;
    on_stack::framed_app(server.bind("10.0.0.1:0").await.unwrap()).await;
    let backend = server.bind("10.0.0.1:0").await.unwrap();
    on_stack::proxy_app(backend, server.bind("10.0.0.1:0").await.unwrap()).await;
}

/// Every app over a perfect link, on a multi-threaded runtime. (The default stack is
/// process-wide, so this file has one test on the stack; `interop_lossy.rs` runs the apps
/// over a lossy link in its own process.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_run_unchanged_over_the_stack() {
    let server = stacks(MemLink::builder());
    run_apps_on(&server).await;
}

/// The same apps over the kernel's TCP, to show they are ordinary tokio code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_run_over_the_kernel() {
    use tokio::net::TcpListener;
    on_kernel::hyper_app(TcpListener::bind("127.0.0.1:0").await.unwrap()).await;
    on_kernel::framed_app(TcpListener::bind("127.0.0.1:0").await.unwrap()).await;
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    on_kernel::proxy_app(backend, TcpListener::bind("127.0.0.1:0").await.unwrap()).await;
}

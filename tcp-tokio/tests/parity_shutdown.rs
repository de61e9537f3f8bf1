//! Parity with the kernel's tokio `TcpStream` for shutting down writing (CL-12): each
//! scenario is written once and run twice, over the kernel's loopback with `tokio::net`
//! and over two in-memory stacks with `tcp_tokio::net`, and the two records of what every
//! call returned must be equal. Waits are on events (a read's end of stream or data),
//! each bounded by a timeout; the stacks run on a paused clock, the kernel on the real one.

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// Longer than anything the scenarios wait for needs, kernel or stack.
const BOUND: Duration = Duration::from_secs(5);

/// What one call returned, comparable across the two implementations.
fn outcome<T: std::fmt::Debug>(r: io::Result<T>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({:?})", e.kind()),
    }
}

/// Read once into a small buffer, bounded: what came (bytes or end of stream) or the error.
async fn read_once<R: AsyncReadExt + Unpin>(r: &mut R) -> String {
    let mut buf = [0u8; 64];
    match timeout(BOUND, r.read(&mut buf)).await.expect("the read completes") {
        Ok(n) => format!("read {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => format!("read Err({:?})", e.kind()),
    }
}

/// Run `f` on a current-thread runtime, with the clock paused or not.
fn run<F: Future>(paused: bool, f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(paused)
        .build()
        .unwrap()
        .block_on(f)
}

/// Define `$name() -> (kernel record, our record)`: `$body` run with `$c` (the client
/// stream) and `$s` (the accepted one) of each implementation, returning its `Vec<String>`.
macro_rules! scenario {
    ($name:ident, |$c:ident, $s:ident| $body:block) => {
        fn $name() -> (Vec<String>, Vec<String>) {
            let kernel = run(false, async {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = l.local_addr().unwrap();
                #[allow(unused_mut)]
                let (mut $c, mut $s) = {
                    let (c, s) = tokio::join!(tokio::net::TcpStream::connect(addr), l.accept());
                    (c.unwrap(), s.unwrap().0)
                };
                $body
            });
            let ours = run(true, async {
                let (a, b) = tcp_tokio::MemLink::pair();
                let addr = |ip: &str| ip.parse().unwrap();
                let server = tcp_tokio::Stack::builder().address(addr("10.0.0.1")).seed(1);
                let client = tcp_tokio::Stack::builder().address(addr("10.0.0.2")).seed(2);
                let (server, client) = (server.build(a).unwrap(), client.build(b).unwrap());
                let l = server.bind("10.0.0.1:80").await.unwrap();
                #[allow(unused_mut)]
                let (mut $c, mut $s) = {
                    let (c, s) = tokio::join!(client.connect("10.0.0.1:80"), l.accept());
                    (c.unwrap(), s.unwrap().0)
                };
                let record = $body;
                drop((server, client));
                record
            });
            (kernel, ours)
        }
    };
}

scenario!(owned_write_half_shut_down_twice_then_dropped, |c, s| {
    let mut rec = Vec::new();
    let (mut r, mut w) = c.into_split();
    w.write_all(b"hello").await.unwrap();
    rec.push(outcome(w.shutdown().await));
    rec.push(outcome(w.shutdown().await));
    rec.push(read_once(&mut s).await);
    rec.push(read_once(&mut s).await);
    drop(w);
    // Writing was shut down, not the stream: the read half still receives.
    s.write_all(b"reply").await.unwrap();
    rec.push(read_once(&mut r).await);
    rec.push(outcome(s.shutdown().await));
    rec.push(read_once(&mut r).await);
    rec
});

scenario!(dropping_an_owned_write_half_shuts_down_writing, |c, s| {
    let mut rec = Vec::new();
    let (mut r, w) = c.into_split();
    drop(w);
    rec.push(read_once(&mut s).await);
    s.write_all(b"still open").await.unwrap();
    rec.push(read_once(&mut r).await);
    rec.push(outcome(s.shutdown().await));
    rec.push(read_once(&mut r).await);
    rec
});

scenario!(write_half_shut_down_twice_and_after_the_close, |c, s| {
    let mut rec = Vec::new();
    {
        let (_r, mut w) = c.split();
        rec.push(outcome(w.shutdown().await));
        rec.push(outcome(w.shutdown().await));
    }
    rec.push(read_once(&mut s).await);
    rec.push(outcome(s.shutdown().await));
    // Our end now has both FINs: TIME-WAIT, which the kernel's socket sees as closed.
    rec.push(read_once(&mut c).await);
    rec.push(outcome(c.shutdown().await));
    let (_r, mut w) = c.split();
    rec.push(outcome(w.shutdown().await));
    rec
});

scenario!(shutdown_after_a_reset, |c, s| {
    let mut rec = Vec::new();
    s.set_zero_linger().unwrap();
    drop(s);
    rec.push(read_once(&mut c).await);
    rec.push(outcome(c.shutdown().await));
    let (_r, mut w) = c.split();
    rec.push(outcome(w.shutdown().await));
    rec
});

/// Run a scenario on both and compare the records.
fn same(scenario: fn() -> (Vec<String>, Vec<String>)) {
    let (kernel, ours) = scenario();
    assert_eq!(ours, kernel, "tcp_tokio (left) and the kernel's tokio (right) differ");
}

/// CL-12: shutting down an owned write half twice succeeds both times and sends one FIN;
/// dropping it afterwards changes nothing, and the read half keeps receiving.
#[test]
fn cl_12_owned_write_half_shut_down_twice_then_dropped() {
    same(owned_write_half_shut_down_twice_then_dropped);
}

/// CL-12: dropping an owned write half shuts down writing (FIN), as tokio's drop does;
/// the read half keeps receiving.
#[test]
fn cl_12_dropping_an_owned_write_half_shuts_down_writing() {
    same(dropping_an_owned_write_half_shuts_down_writing);
}

/// CL-12: a borrowed write half shuts down twice without error; once both FINs are
/// exchanged, shutting down again is `NotConnected`, as on the kernel's closed socket.
#[test]
fn cl_12_write_half_shut_down_twice_and_after_the_close() {
    same(write_half_shut_down_twice_and_after_the_close);
}

/// CL-12: after a reset, shutting down is `NotConnected` (stream and half).
#[test]
fn cl_12_shutdown_after_a_reset() {
    same(shutdown_after_a_reset);
}

//! Connection rate: connect, 1-byte echo, close, one connection after another, through the
//! tokio API over [`MemLink`] (MTU 1500) and through tokio's own `TcpStream` over the
//! kernel's loopback, in the same run. Also with 32 such clients at once.
//!
//! `cargo bench -p benches --bench connection_rate`

use std::time::Duration;

use benches::{echo_one_server, echo_rounds, stacks, Flavor, SERVER_IP};
use criterion::{Criterion, SamplingMode, Throughput};
use tcp_tokio::ListenOptions;

/// Clients at once in the parallel variant.
const PARALLEL: u64 = 32;

fn connection_rate(c: &mut Criterion) {
    let mut g = c.benchmark_group("connection_rate");
    g.throughput(Throughput::Elements(1))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();

        // The userspace stack: an accept loop spawning one echo task per connection.
        let (server, client) = rt.block_on(async { stacks(1500, true) });
        let opts = ListenOptions { backlog: 4096, ..Default::default() };
        let listener = rt.block_on(server.bind_with((SERVER_IP, 7), opts)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        rt.spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(echo_one_server(s));
            }
        });
        for parallel in [1, PARALLEL] {
            let id = format!("tcp_tokio_memlink/{}/x{parallel}", flavor.name());
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let client = client.clone();
                    let connect = move || {
                        let client = client.clone();
                        async move { client.connect(addr).await }
                    };
                    rt.block_on(echo_rounds(iters, parallel, connect))
                });
            });
        }

        // The kernel: the same over 127.0.0.1.
        let listener =
            rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("kernel bind");
        let addr = listener.local_addr().expect("addr");
        rt.spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(echo_one_server(s));
            }
        });
        for parallel in [1, PARALLEL] {
            let id = format!("kernel_loopback/{}/x{parallel}", flavor.name());
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let connect = move || tokio::net::TcpStream::connect(addr);
                    rt.block_on(echo_rounds(iters, parallel, connect))
                });
            });
        }
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    connection_rate(&mut c);
    c.final_summary();
}

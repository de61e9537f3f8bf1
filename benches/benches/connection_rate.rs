//! Connection rate: connect, 1-byte echo, close, one connection after another, through the
//! tokio API over [`MemLink`] (MTU 1500) and through tokio's own `TcpStream` over the
//! kernel's loopback, in the same run. Also with 32 such clients at once.
//!
//! `cargo bench -p benches --bench connection_rate`

use std::time::{Duration, Instant};

use benches::{echo_one_client, echo_one_server, stacks, Flavor, SERVER_IP};
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
        let (server, client) = rt.block_on(async { stacks(1500) });
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
                    rt.block_on(async {
                        let started = Instant::now();
                        let tasks: Vec<_> = (0..parallel)
                            .map(|k| {
                                let client = client.clone();
                                let n = iters / parallel + u64::from(k < iters % parallel);
                                tokio::spawn(async move {
                                    for _ in 0..n {
                                        let s = client.connect(addr).await.expect("connect");
                                        echo_one_client(s).await.expect("echo");
                                    }
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.expect("join");
                        }
                        started.elapsed()
                    })
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
                    rt.block_on(async {
                        let started = Instant::now();
                        let tasks: Vec<_> = (0..parallel)
                            .map(|k| {
                                let n = iters / parallel + u64::from(k < iters % parallel);
                                tokio::spawn(async move {
                                    for _ in 0..n {
                                        let s = tokio::net::TcpStream::connect(addr)
                                            .await
                                            .expect("connect");
                                        echo_one_client(s).await.expect("echo");
                                    }
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.expect("join");
                        }
                        started.elapsed()
                    })
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

//! Bulk throughput: 256 MiB over one connection through the tokio API, over [`MemLink`] at
//! MTU 1500 (with its default offloads, GSO/GRO and checksums, and without) and MTU 65535
//! (64 KiB), and the same through tokio's own `TcpStream` over the
//! kernel's loopback, in the same run. The client task writes 64 KiB at a time, the server
//! task reads 64 KiB at a time; an iteration is connect, 256 MiB, FIN, EOF.
//!
//! `cargo bench -p benches --bench throughput`

use std::time::Duration;

use benches::{bulk_once, stacks, Flavor, BULK, SERVER_IP};
use criterion::{Criterion, SamplingMode, Throughput};

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("throughput_256MiB");
    g.throughput(Throughput::Bytes(BULK))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for flavor in Flavor::ALL {
        let rt = flavor.runtime();
        for (mtu, offload) in [(1500, true), (1500, false), (65535, true)] {
            let (server, client) = rt.block_on(async { stacks(mtu, offload) });
            let listener = rt.block_on(server.bind((SERVER_IP, 5001))).expect("bind");
            let addr = listener.local_addr().expect("addr");
            let off = if offload { "" } else { "_no_offload" };
            let id = format!("tcp_tokio_memlink_mtu{mtu}{off}/{}", flavor.name());
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut took = Duration::ZERO;
                        for _ in 0..iters {
                            took += bulk_once(async {
                                tokio::join!(client.connect(addr), listener.accept())
                            })
                            .await;
                        }
                        took
                    })
                });
            });
        }

        let listener =
            rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("kernel bind");
        let addr = listener.local_addr().expect("addr");
        g.bench_function(format!("kernel_loopback/{}", flavor.name()), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut took = Duration::ZERO;
                    for _ in 0..iters {
                        took += bulk_once(async {
                            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept())
                        })
                        .await;
                    }
                    took
                })
            });
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c);
    c.final_summary();
}

//! Bulk throughput: 256 MiB over one connection through the tokio API, over [`MemLink`] at
//! MTU 1500 and MTU 65535 (64 KiB), and the same through tokio's own `TcpStream` over the
//! kernel's loopback, in the same run. The client task writes 64 KiB at a time, the server
//! task reads 64 KiB at a time; an iteration is connect, 256 MiB, FIN, EOF.
//!
//! `cargo bench -p benches --bench throughput`

use std::time::{Duration, Instant};

use benches::{recv_bulk, send_bulk, stacks, Flavor, BULK, SERVER_IP};
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
        for mtu in [1500, 65535] {
            let (server, client) = rt.block_on(async { stacks(mtu) });
            let listener = rt.block_on(server.bind((SERVER_IP, 5001))).expect("bind");
            let addr = listener.local_addr().expect("addr");
            let id = format!("tcp_tokio_memlink_mtu{mtu}/{}", flavor.name());
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut took = Duration::ZERO;
                        for _ in 0..iters {
                            let started = Instant::now();
                            let (c, s) = tokio::join!(client.connect(addr), listener.accept());
                            let (c, (s, _)) = (c.expect("connect"), s.expect("accept"));
                            let send = tokio::spawn(send_bulk(c, BULK));
                            let recv = tokio::spawn(recv_bulk(s));
                            send.await.expect("join").expect("send");
                            assert_eq!(recv.await.expect("join").expect("recv"), BULK);
                            took += started.elapsed();
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
                        let started = Instant::now();
                        let (c, s) =
                            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
                        let (c, (s, _)) = (c.expect("connect"), s.expect("accept"));
                        let send = tokio::spawn(send_bulk(c, BULK));
                        let recv = tokio::spawn(recv_bulk(s));
                        send.await.expect("join").expect("send");
                        assert_eq!(recv.await.expect("join").expect("recv"), BULK);
                        took += started.elapsed();
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

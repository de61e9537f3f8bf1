//! The stack on a real TUN against the kernel's own TCP, each test in a network namespace of
//! its own (so nothing touches the host and tests run in parallel). Needs root; without it
//! each test prints why it skipped.

#![cfg(target_os = "linux")]

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::{
    kernel_side, kernel_to_stack, mbps, stack_to_kernel, with_stack, KERNEL_IP, STACK_IP,
};
use tokio::io::AsyncWriteExt;

const MIB: u64 = 1 << 20;

fn bulk(name: &str, offload: bool, setup: fn(), total: u64) {
    let name = name.to_owned();
    with_stack(offload, 1500, setup, move |stack| async move {
        let run = async {
            let t = kernel_to_stack(&stack, (STACK_IP, 5001).into(), total).await;
            eprintln!(
                "{name}: kernel → stack {} MiB in {:.2?} ({:.0} Mbit/s)",
                total / MIB,
                t,
                mbps(total, t.as_secs_f64())
            );
            let t = stack_to_kernel(&stack, (KERNEL_IP, 5002).into(), total).await;
            eprintln!(
                "{name}: stack → kernel {} MiB in {:.2?} ({:.0} Mbit/s)",
                total / MIB,
                t,
                mbps(total, t.as_secs_f64())
            );
        };
        tokio::time::timeout(Duration::from_secs(300), run).await.expect("transfer timed out");
    });
}

#[test]
fn bulk_100mib_each_way_offload_off() {
    if common::root_or_skip("bulk_100mib_each_way_offload_off") {
        bulk("offload off", false, || {}, 100 * MIB);
    }
}

#[test]
fn bulk_100mib_each_way_offload_on() {
    if common::root_or_skip("bulk_100mib_each_way_offload_on") {
        bulk("offload on", true, || {}, 100 * MIB);
    }
}

#[test]
fn five_percent_loss_each_way_20mib() {
    if common::tools_or_skip("five_percent_loss_each_way_20mib", &["iptables"]) {
        bulk("5% loss, offload off", false, common::five_percent_loss, 20 * MIB);
    }
}

#[test]
fn five_percent_loss_each_way_20mib_offload_on() {
    if common::tools_or_skip("five_percent_loss_each_way_20mib_offload_on", &["iptables"]) {
        bulk("5% loss, offload on", true, common::five_percent_loss, 20 * MIB);
    }
}

#[test]
fn two_hundred_concurrent_kernel_clients() {
    if !common::root_or_skip("two_hundred_concurrent_kernel_clients") {
        return;
    }
    const CLIENTS: usize = 200;
    const BYTES: usize = 32 * 1024;
    with_stack(
        false,
        1500,
        || {},
        |stack| async move {
            let listener = stack.bind(SocketAddr::from((STACK_IP, 7))).await.unwrap();
            let server = tokio::spawn(async move {
                let mut tasks = Vec::new();
                for _ in 0..CLIENTS {
                    let (mut s, _) = listener.accept().await.unwrap();
                    tasks.push(tokio::spawn(async move {
                        let (mut r, mut w) = s.split();
                        tokio::io::copy(&mut r, &mut w).await.unwrap();
                        w.shutdown().await.unwrap();
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
            });
            let clients = kernel_side(|| {
                let barrier = Arc::new(std::sync::Barrier::new(CLIENTS));
                let threads: Vec<_> = (0..CLIENTS)
                    .map(|i| {
                        let barrier = barrier.clone();
                        std::thread::spawn(move || -> io::Result<()> {
                            let mut s = TcpStream::connect((STACK_IP, 7))?;
                            barrier.wait();
                            let data: Vec<u8> = (0..BYTES).map(|j| (i * 7 + j) as u8).collect();
                            let mut w = s.try_clone()?;
                            let sent = data.clone();
                            let writer = std::thread::spawn(move || -> io::Result<()> {
                                w.write_all(&sent)?;
                                w.shutdown(Shutdown::Write)
                            });
                            let mut back = Vec::with_capacity(BYTES);
                            s.read_to_end(&mut back)?;
                            writer.join().unwrap()?;
                            assert!(back == data, "client {i} got its bytes back altered");
                            Ok(())
                        })
                    })
                    .collect();
                threads.into_iter().map(|t| t.join().unwrap()).collect::<io::Result<Vec<()>>>()
            });
            let run = async {
                clients.await.expect("a kernel client failed");
                server.await.unwrap();
            };
            tokio::time::timeout(Duration::from_secs(120), run).await.expect("timed out");
        },
    );
}

#[test]
fn syn_to_a_closed_port_is_refused() {
    if !common::root_or_skip("syn_to_a_closed_port_is_refused") {
        return;
    }
    with_stack(
        false,
        1500,
        || {},
        |stack| async move {
            let _listener = stack.bind(SocketAddr::from((STACK_IP, 80))).await.unwrap();
            let err = kernel_side(|| TcpStream::connect((STACK_IP, 81)).map(|_| ()))
                .await
                .expect_err("nothing listens on port 81");
            assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        },
    );
}

#[test]
fn ping_to_the_stack_is_answered() {
    if !common::tools_or_skip("ping_to_the_stack_is_answered", &["ping"]) {
        return;
    }
    for offload in [false, true] {
        with_stack(
            offload,
            1500,
            || {},
            |stack| async move {
                let ip = STACK_IP.to_string();
                kernel_side(move || {
                    common::run(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "1000", &ip]);
                })
                .await;
                // Using the stack here also keeps it, and so the TUN, alive during the ping.
                assert_eq!(stack.stats().icmp_echo_replies, 3);
            },
        );
    }
}

#[test]
fn errors_are_clear() {
    use tcp_tun::Tun;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _g = rt.enter();
    let e = Tun::builder().name("a-name-that-is-too-long").build().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    let e = Tun::builder().kernel_address("10.0.0.1".parse().unwrap(), 33).build().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("bad address"), "{e}");
    let e = Tun::builder().mtu(20).build().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    if !common::root_or_skip("errors_are_clear (name in use)") {
        return;
    }
    common::in_netns(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _g = rt.enter();
        let _first = Tun::builder().name("dup0").build().unwrap();
        let e = Tun::builder().name("dup0").build().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        // `lo` exists and is not a TUN.
        let e = Tun::builder().name("lo").build().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        // A bad address reaches the kernel only if it passes our checks; this one does not.
        let e = Tun::builder()
            .name("bad0")
            .kernel_address("255.255.255.255".parse().unwrap(), 24)
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    });
}

/// The threads of the kernel whose name starts with `prefix`.
fn kernel_threads(prefix: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .count()
}

#[test]
fn threaded_napi_is_on_without_offloads() {
    use tcp_tun::Tun;
    if !common::root_or_skip("threaded_napi_is_on_without_offloads") {
        return;
    }
    common::in_netns(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _g = rt.enter();
        // Thread names are cut at 15 bytes: "napi/" + name + "-" + id.
        let tun = Tun::builder().name("napi0").build().unwrap();
        assert!(kernel_threads("napi/napi0-") >= 1, "no NAPI thread for napi0");
        drop(tun);
        let _off = Tun::builder().name("napi1").threaded_napi(false).build().unwrap();
        let _gso = Tun::builder().name("napi2").offload(true).build().unwrap();
        assert_eq!(kernel_threads("napi/napi1-"), 0);
        assert_eq!(kernel_threads("napi/napi2-"), 0);
    });
}

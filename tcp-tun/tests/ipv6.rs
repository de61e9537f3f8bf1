//! The stack on a real TUN over IPv6 against the kernel's own TCP: bulk data both ways with
//! offloads on (the stack's TSO6 super-segments, the kernel's GRO'd ones) and off, in a
//! network namespace of the test's own. Needs root; without it each test prints why it
//! skipped.

#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::{in_netns, kernel_side, Pattern, TUN_NAME};
use tcp_tokio::Stack;
use tcp_tun::Tun;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KERNEL_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 1);
const STACK_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 2);
const TOTAL: u64 = 32 << 20;

/// `TOTAL` bytes of the pattern kernel → stack, then stack → kernel, each checked byte by
/// byte by its receiver.
fn both_ways(offload: bool) {
    in_netns(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let tun = Tun::builder()
                .name(TUN_NAME)
                .kernel_address(IpAddr::V6(KERNEL_IP6), 64)
                .mtu(1500)
                .offload(offload)
                .build()
                .expect("TUN");
            let stats = tun.stats();
            let stack = Stack::builder().address(IpAddr::V6(STACK_IP6)).build(tun).unwrap();
            let run = async {
                kernel_to_stack(&stack).await;
                stack_to_kernel(&stack).await;
            };
            tokio::time::timeout(Duration::from_secs(120), run).await.expect("timed out");
            let st = stats.get();
            // With offloads both directions used super-segments (TSO6 out, GRO in).
            assert_eq!(st.tx_super > 0, offload, "{st:?}");
            assert_eq!(st.rx_super > 0, offload, "{st:?}");
        });
    });
}

async fn kernel_to_stack(stack: &Stack) {
    let pattern = Arc::new(Pattern::new());
    let listener = stack.bind(SocketAddr::from((STACK_IP6, 5001))).await.unwrap();
    let p = pattern.clone();
    let client = kernel_side(move || {
        let mut s = TcpStream::connect((STACK_IP6, 5001)).expect("connect over IPv6");
        let mut sent = 0;
        while sent < TOTAL {
            let chunk = p.at(sent, (TOTAL - sent).min(64 << 10) as usize);
            s.write_all(chunk).unwrap();
            sent += chunk.len() as u64;
        }
        s.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
    });
    let server = async {
        let (mut s, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), IpAddr::V6(KERNEL_IP6));
        let mut buf = vec![0u8; 256 << 10];
        let mut got = 0;
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            pattern.check(got, &buf[..n]);
            got += n as u64;
        }
        assert_eq!(got, TOTAL, "bytes the stack received");
        s.shutdown().await.unwrap();
    };
    tokio::join!(client, server);
}

async fn stack_to_kernel(stack: &Stack) {
    let pattern = Arc::new(Pattern::new());
    let listener = TcpListener::bind((KERNEL_IP6, 5002)).unwrap();
    let p = pattern.clone();
    let server = kernel_side(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 256 << 10];
        let mut got = 0;
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                return got;
            }
            p.check(got, &buf[..n]);
            got += n as u64;
        }
    });
    let client = async {
        let mut s = stack.connect(SocketAddr::from((KERNEL_IP6, 5002))).await.unwrap();
        let mut sent = 0;
        while sent < TOTAL {
            let chunk = pattern.at(sent, (TOTAL - sent).min(64 << 10) as usize);
            s.write_all(chunk).await.unwrap();
            sent += chunk.len() as u64;
        }
        s.shutdown().await.unwrap();
    };
    let (got, ()) = tokio::join!(server, client);
    assert_eq!(got, TOTAL, "bytes the kernel received");
}

#[test]
fn ipv6_bulk_each_way_offload_on() {
    if common::root_or_skip("ipv6_bulk_each_way_offload_on") {
        both_ways(true);
    }
}

#[test]
fn ipv6_bulk_each_way_offload_off() {
    if common::root_or_skip("ipv6_bulk_each_way_offload_off") {
        both_ways(false);
    }
}

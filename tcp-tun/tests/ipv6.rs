//! The stack on a real TUN over IPv6 against the kernel's own TCP: bulk data both ways with
//! offloads on (the stack's TSO6 super-segments, the kernel's GRO'd ones) and off, in a
//! network namespace of the test's own. Needs root; without it each test prints why it
//! skipped. The kernel side's address is set over rtnetlink (no iproute2).

#![cfg(target_os = "linux")]

mod common;

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use common::{in_netns, kernel_to_stack, stack_to_kernel, TUN_NAME};
use tcp_tokio::Stack;
use tcp_tun::Tun;

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
                kernel_to_stack(&stack, (STACK_IP6, 5001).into(), TOTAL).await;
                stack_to_kernel(&stack, (KERNEL_IP6, 5002).into(), TOTAL).await;
            };
            tokio::time::timeout(Duration::from_secs(120), run).await.expect("timed out");
            let st = stats.get();
            // With offloads both directions used super-segments (TSO6 out, GRO in).
            assert_eq!(st.tx_super > 0, offload, "{st:?}");
            assert_eq!(st.rx_super > 0, offload, "{st:?}");
        });
    });
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

/// RFC 8200 §5: an IPv6 link has an MTU of at least 1280; a smaller one with an IPv6
/// address is refused before anything is created.
#[test]
fn ipv6_address_needs_mtu_1280() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _enter = rt.enter();
    let e = Tun::builder()
        .name(TUN_NAME)
        .kernel_address(IpAddr::V6(KERNEL_IP6), 64)
        .mtu(1279)
        .build()
        .expect_err("MTU 1279 with IPv6");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
}

/// The kernel side's address is usable as soon as `build` returns: a kernel socket binds to
/// it at once (a tentative address, waiting for the kernel to finish duplicate address
/// detection, gives `EADDRNOTAVAIL`; RFC 4862 §5.4).
#[test]
fn ipv6_address_usable_when_build_returns() {
    if !common::root_or_skip("ipv6_address_usable_when_build_returns") {
        return;
    }
    in_netns(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _enter = rt.enter();
        let _tun = Tun::builder()
            .name(TUN_NAME)
            .kernel_address(IpAddr::V6(KERNEL_IP6), 64)
            .build()
            .expect("TUN");
        std::net::TcpListener::bind((KERNEL_IP6, 0)).expect("bind to the kernel side's address");
    });
}

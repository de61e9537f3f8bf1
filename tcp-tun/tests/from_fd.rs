//! `Tun::from_fd`: a TUN descriptor opened and configured by someone else (here the test, in
//! the role of a VPN service or a parent process) is handed over, and the stack talks TCP
//! with the kernel through it, in a network namespace of the test's own. Needs root; without
//! it each test prints why it skipped.

#![cfg(target_os = "linux")]

mod common;

use std::io;
use std::net::IpAddr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use common::{in_netns, kernel_to_stack, run, stack_to_kernel, KERNEL_IP, STACK_IP, TUN_NAME};
use tcp_tokio::Stack;
use tcp_tun::Tun;

const TOTAL: u64 = 16 << 20;

/// Open `/dev/net/tun` and attach it to `name` with `flags`, as a VPN service would.
fn open_tun(name: &str, flags: libc::c_int) -> OwnedFd {
    // SAFETY: the path is NUL-terminated and outlives the call.
    let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    assert!(fd >= 0, "open /dev/net/tun: {}", io::Error::last_os_error());
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    if flags != 0 {
        // SAFETY: all-zero bytes are a valid `ifreq`.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        req.ifr_ifru.ifru_flags = flags as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes one `ifreq`, `req`, alive for the call.
        let r =
            unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&fd), libc::TUNSETIFF, &mut req) };
        assert_eq!(r, 0, "TUNSETIFF: {}", io::Error::last_os_error());
    }
    fd
}

/// The caller's part: address and link up, with iproute2.
fn configure(name: &str) {
    run(&["ip", "addr", "add", &format!("{KERNEL_IP}/24"), "dev", name]);
    run(&["ip", "link", "set", name, "up"]);
}

/// Hand over a TUN opened with `flags`, then `TOTAL` bytes kernel → stack and stack → kernel,
/// each checked byte by byte by its receiver.
fn both_ways(flags: libc::c_int, offload: bool) {
    in_netns(move || {
        let fd = open_tun(TUN_NAME, flags);
        configure(TUN_NAME);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let tun = Tun::from_fd(fd).expect("from_fd");
            assert_eq!(tun.name(), TUN_NAME);
            assert_eq!(tun.offload(), offload);
            assert!(!tun.threaded_napi());
            let stats = tun.stats();
            let stack = Stack::builder().address(IpAddr::V4(STACK_IP)).build(tun).unwrap();
            let run = async {
                kernel_to_stack(&stack, (STACK_IP, 5001).into(), TOTAL).await;
                stack_to_kernel(&stack, (KERNEL_IP, 5002).into(), TOTAL).await;
            };
            tokio::time::timeout(Duration::from_secs(120), run).await.expect("timed out");
            let st = stats.get();
            assert_eq!(st.tx_super > 0, offload, "{st:?}");
            assert_eq!(st.rx_super > 0, offload, "{st:?}");
        });
    });
}

#[test]
fn from_fd_bulk_each_way() {
    if common::root_or_skip("from_fd_bulk_each_way") {
        both_ways(libc::IFF_TUN | libc::IFF_NO_PI, false);
    }
}

/// `IFF_VNET_HDR` on the descriptor means offloads: super-segments both ways.
#[test]
fn from_fd_with_vnet_hdr_uses_offloads() {
    if common::root_or_skip("from_fd_with_vnet_hdr_uses_offloads") {
        both_ways(libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_VNET_HDR, true);
    }
}

/// Descriptors the stack cannot use are refused with `InvalidInput`, saying why.
#[test]
fn from_fd_refuses_what_is_not_a_usable_tun() {
    if !common::root_or_skip("from_fd_refuses_what_is_not_a_usable_tun") {
        return;
    }
    in_netns(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _enter = rt.enter();
        let refused = |fd: OwnedFd, why: &str| {
            let e = Tun::from_fd(fd).expect_err(why);
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{why}: {e}");
            assert!(e.to_string().contains(why), "{e}");
        };
        let null = std::fs::File::open("/dev/null").unwrap();
        refused(null.into(), "not a TUN descriptor");
        refused(open_tun("", 0), "not a TUN descriptor");
        refused(open_tun("tcptap0", libc::IFF_TAP | libc::IFF_NO_PI), "is a TAP");
        // A TUN opened without IFF_NO_PI is not among these: Linux 6.18's TUNGETIFF reports
        // IFF_NO_PI whether or not it was set.
    });
}

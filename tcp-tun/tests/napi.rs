//! Threaded NAPI where users run the stack: in a namespace whose sysfs is the process's
//! `/sys` (the root namespace, or `ip netns exec`), and in a thread that moved into a
//! namespace of its own while `/sys` still shows another one. Needs root; without it each
//! test prints why it skipped.

#![cfg(target_os = "linux")]

mod common;

use std::io;
use std::net::IpAddr;

use common::{in_netns, KERNEL_IP, TUN_NAME};
use tcp_tun::Tun;

/// Build a TUN asking for threaded NAPI in the calling thread's namespace; returns whether
/// the `Tun` says it got it and what `/sys/class/net/NAME/threaded` (the process's `/sys`)
/// says, if anything.
fn build_with_napi() -> (bool, Option<String>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let tun = Tun::builder()
            .name(TUN_NAME)
            .kernel_address(IpAddr::V4(KERNEL_IP), 24)
            .threaded_napi(true)
            .build()
            .expect("TUN");
        let sys = std::fs::read_to_string(format!("/sys/class/net/{TUN_NAME}/threaded")).ok();
        (tun.threaded_napi(), sys.map(|s| s.trim().to_owned()))
    })
}

/// As `ip netns exec` does: this thread gets a mount namespace of its own with a sysfs of
/// its network namespace on `/sys`.
fn mount_own_sysfs() {
    // SAFETY: `unshare` takes a flag word only; CLONE_NEWNS gives only this thread a private
    // copy of the mount table.
    let r = unsafe { libc::unshare(libc::CLONE_NEWNS) };
    assert_eq!(r, 0, "unshare(CLONE_NEWNS): {}", io::Error::last_os_error());
    let mount = |src: &std::ffi::CStr, dst: &std::ffi::CStr, fs: &std::ffi::CStr, flags| {
        // SAFETY: all pointers are NUL-terminated strings alive for the call (an empty
        // string stands for none), and the data argument is NULL.
        let r = unsafe {
            libc::mount(
                if src.is_empty() { std::ptr::null() } else { src.as_ptr() },
                dst.as_ptr(),
                if fs.is_empty() { std::ptr::null() } else { fs.as_ptr() },
                flags,
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "mount {dst:?}: {}", io::Error::last_os_error());
    };
    mount(c"", c"/", c"", libc::MS_REC | libc::MS_PRIVATE);
    mount(c"sysfs", c"/sys", c"sysfs", 0);
}

/// `/sys` is this namespace's sysfs (a private mount there fails with EBUSY): threaded NAPI
/// is switched on through `/sys` directly. Before, the device was made again without NAPI.
#[test]
fn threaded_napi_when_sys_is_this_namespaces() {
    if !common::root_or_skip("threaded_napi_when_sys_is_this_namespaces") {
        return;
    }
    let (on, sys) = in_netns(|| {
        mount_own_sysfs();
        build_with_napi()
    });
    assert!(on, "threaded NAPI was not switched on");
    assert_eq!(sys.as_deref(), Some("1"));
}

/// `/sys` shows another namespace (this thread moved with `unshare`): threaded NAPI goes
/// through a private sysfs mount, and the process's `/sys` never shows the interface.
#[test]
fn threaded_napi_when_sys_is_another_namespaces() {
    if !common::root_or_skip("threaded_napi_when_sys_is_another_namespaces") {
        return;
    }
    let (on, sys) = in_netns(build_with_napi);
    assert!(on, "threaded NAPI was not switched on");
    // The test's own namespace has no such interface (another one of this name in the
    // root namespace would be another device, never touched).
    if let Some(v) = sys {
        eprintln!("{TUN_NAME} of another namespace under /sys says threaded = {v}");
    }
}

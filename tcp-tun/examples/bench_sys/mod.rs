//! Shared by the TUN benches: running iproute2/iptables, entering named network namespaces,
//! and choosing the congestion control of a kernel socket.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::Command;

/// Run a command; its standard output, or an error with its standard error.
pub(crate) fn run(args: &[&str]) -> io::Result<String> {
    let out = Command::new(args[0]).args(&args[1..]).output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr).trim())))
    }
}

/// Move the calling thread into the named namespace.
pub(crate) fn enter(ns: &str) -> io::Result<()> {
    let f = std::fs::File::open(format!("/var/run/netns/{ns}"))?;
    // SAFETY: `f` is an open namespace file, alive for the call; `setns` moves only the
    // calling thread.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Give the kernel socket `s` the congestion control `cc` (`TCP_CONGESTION`).
pub(crate) fn set_cc(s: &TcpStream, cc: &str) -> io::Result<()> {
    // SAFETY: `s` is an open socket; the option value is a byte string of the given length.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            cc.as_ptr().cast(),
            cc.len() as libc::socklen_t,
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("congestion control {cc:?}: {e}")));
    }
    Ok(())
}

/// Pin the calling thread to `cpu` (`sched_setaffinity`), for `--pin`: on a shared machine
/// the scheduler otherwise often stacks the stack's thread and its kernel peer on one CPU
/// (a sync wake-up pulls the wakee to the waker's CPU when none is idle).
#[allow(dead_code)] // tun_bench only
pub(crate) fn pin(cpu: usize) {
    // SAFETY: `set` is a valid, exclusive cpu_set_t; pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// `TCP_NOTSENT_LOWAT` on the kernel socket `s`: its writer waits until fewer than `bytes`
/// are queued but not yet sent.
#[allow(dead_code)] // tun_bench only
pub(crate) fn set_notsent_lowat(s: &TcpStream, bytes: u32) -> io::Result<()> {
    // SAFETY: `s` is an open socket; the option value is a u32 of the given length.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&bytes as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

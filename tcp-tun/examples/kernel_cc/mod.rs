//! Shared by the TUN benches: choosing the congestion control of a kernel socket.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;

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

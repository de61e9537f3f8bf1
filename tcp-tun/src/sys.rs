//! The system calls: opening `/dev/net/tun`, the interface ioctls, and reads and writes of
//! packets. Every `unsafe` block of the crate is here.

use std::ffi::CStr;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Open `/dev/net/tun` non-blocking and close-on-exec.
pub(crate) fn open_clone_device() -> io::Result<OwnedFd> {
    const PATH: &CStr = c"/dev/net/tun";
    // SAFETY: `PATH` is a NUL-terminated string that outlives the call; `open` has no other
    // memory effects.
    let fd =
        unsafe { libc::open(PATH.as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `ifreq` naming `name` (at most 15 bytes, checked by the caller), the rest zeroed.
pub(crate) fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: `ifreq` is a plain C struct (a name array and a union of integers, sockaddrs and
    // a pointer) for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req
}

/// `ioctl(fd, request, &mut req)` for the requests that take an `ifreq`.
fn ioctl_ifreq(fd: RawFd, request: libc::Ioctl, req: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: every request passed here (TUNSETIFF, TUNGETIFF, SIOCSIF*, SIOCGIFFLAGS,
    // SIOCGIFMTU, SIOCGIFINDEX) reads and/or writes one `struct ifreq`, and `req` is a valid,
    // exclusive one for the whole call.
    let r = unsafe { libc::ioctl(fd, request, std::ptr::from_mut(req)) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioctl(fd, request, value)` for the TUN requests that take an integer by value
/// (`TUNSETOFFLOAD`).
fn ioctl_value(fd: RawFd, request: libc::Ioctl, value: libc::c_ulong) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its argument by value; no memory is passed.
    let r = unsafe { libc::ioctl(fd, request, value) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioctl(fd, request, &value)` for the TUN requests that read one `int`
/// (`TUNSETVNETHDRSZ`).
fn ioctl_int_ptr(fd: RawFd, request: libc::Ioctl, value: libc::c_int) -> io::Result<()> {
    let v = value;
    // SAFETY: TUNSETVNETHDRSZ reads one `int` through the pointer, which points at `v`, alive
    // for the whole call; the kernel does not write through it.
    let r = unsafe { libc::ioctl(fd, request, std::ptr::from_ref(&v)) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Attach `fd` (a fresh `/dev/net/tun`) to the interface `name` with `flags`
/// (`TUNSETIFF`). Returns the name the kernel chose (it fills in patterns like `tun%d`).
pub(crate) fn set_iff(fd: &OwnedFd, name: &str, flags: libc::c_int) -> io::Result<String> {
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    ioctl_ifreq(fd.as_raw_fd(), libc::TUNSETIFF, &mut req)?;
    Ok(ifr_name(&req))
}

/// The interface name an `ifreq` carries.
fn ifr_name(req: &libc::ifreq) -> String {
    let bytes: Vec<u8> = req.ifr_name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The name of the interface `fd` is attached to and its TUN flags (`TUNGETIFF`).
pub(crate) fn get_iff(fd: &OwnedFd) -> io::Result<(String, libc::c_int)> {
    let mut req = ifreq("");
    ioctl_ifreq(fd.as_raw_fd(), libc::TUNGETIFF, &mut req)?;
    // SAFETY: TUNGETIFF just wrote the `ifru_flags` member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    // The kernel's flags are an unsigned short; keep their bits.
    Ok((ifr_name(&req), libc::c_int::from(flags as u16)))
}

/// The virtio-net header size of a TUN descriptor (`TUNGETVNETHDRSZ`).
pub(crate) fn vnet_hdr_size(fd: &OwnedFd) -> io::Result<usize> {
    let mut v: libc::c_int = 0;
    // SAFETY: TUNGETVNETHDRSZ writes one `int` through the pointer, which points at `v`,
    // alive and exclusively borrowed for the whole call.
    let r =
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNGETVNETHDRSZ, std::ptr::from_mut(&mut v)) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    usize::try_from(v).map_err(io::Error::other)
}

/// Put the open file description of `fd` in non-blocking mode (`fcntl(F_SETFL)`).
pub(crate) fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: F_GETFL and F_SETFL take no pointers; `fd` is open for the calls.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Set the virtio-net header size (`TUNSETVNETHDRSZ`).
pub(crate) fn set_vnet_hdr_size(fd: &OwnedFd, size: usize) -> io::Result<()> {
    let size = libc::c_int::try_from(size).map_err(io::Error::other)?;
    ioctl_int_ptr(fd.as_raw_fd(), libc::TUNSETVNETHDRSZ, size)
}

/// Set the offload mask (`TUNSETOFFLOAD`): what the kernel may hand us unfinished.
pub(crate) fn set_offload(fd: &OwnedFd, mask: libc::c_uint) -> io::Result<()> {
    ioctl_value(fd.as_raw_fd(), libc::TUNSETOFFLOAD, libc::c_ulong::from(mask))
}

/// A datagram socket for the `SIOCSIF*` interface ioctls.
fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: `socket` takes no pointers.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `socket` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn sockaddr_v4(ip: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(ip.octets()) },
        sin_zero: [0; 8],
    };
    // SAFETY: `sockaddr_in` and `sockaddr` are both 16-byte plain C structs; the kernel reads
    // the `ifr_addr` of an `ifreq` as a `sockaddr_in` when its family is AF_INET.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// Give the interface an IPv4 address and netmask (`SIOCSIFADDR`, `SIOCSIFNETMASK`).
pub(crate) fn set_ipv4(name: &str, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
    let sock = control_socket()?;
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_addr = sockaddr_v4(ip);
    ioctl_ifreq(sock.as_raw_fd(), libc::SIOCSIFADDR, &mut req)?;
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_netmask = sockaddr_v4(Ipv4Addr::from(mask));
    ioctl_ifreq(sock.as_raw_fd(), libc::SIOCSIFNETMASK, &mut req)
}

/// Give the interface an IPv6 address with its prefix length, over rtnetlink
/// (`RTM_NEWADDR`, as `ip -6 addr add ADDR/PREFIX dev NAME nodad` does).
///
/// `IFA_F_NODAD` makes the address usable at once. Without it (the `SIOCSIFADDR` ioctl has
/// no way to pass it) the address starts tentative, and although a TUN is `IFF_NOARP` so
/// duplicate address detection is skipped, the kernel clears the tentative flag from a
/// work queue some time after the link comes up: a connection opened in that window finds
/// no source address (RFC 4862 §5.4: a tentative address is not used).
pub(crate) fn set_ipv6(name: &str, ip: Ipv6Addr, prefix: u8) -> io::Result<()> {
    let index = u32::try_from(ifindex(name)?).map_err(io::Error::other)?;
    // SAFETY: `socket` takes no pointers.
    let fd = unsafe {
        libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `socket` just returned this descriptor and nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };

    // nlmsghdr (16) + ifaddrmsg (8) + IFA_LOCAL and IFA_ADDRESS rtattrs (4 + 16 each).
    const LEN: usize = 16 + 8 + 2 * 20;
    let mut msg = [0u8; LEN];
    let flags = libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL;
    msg[0..4].copy_from_slice(&(LEN as u32).to_ne_bytes());
    msg[4..6].copy_from_slice(&libc::RTM_NEWADDR.to_ne_bytes());
    msg[6..8].copy_from_slice(&(flags as u16).to_ne_bytes());
    msg[8..12].copy_from_slice(&1u32.to_ne_bytes()); // sequence number
    msg[16] = libc::AF_INET6 as u8;
    msg[17] = prefix;
    msg[18] = libc::IFA_F_NODAD as u8;
    msg[19] = libc::RT_SCOPE_UNIVERSE;
    msg[20..24].copy_from_slice(&index.to_ne_bytes());
    for (at, kind) in [(24, libc::IFA_LOCAL), (44, libc::IFA_ADDRESS)] {
        msg[at..at + 2].copy_from_slice(&20u16.to_ne_bytes());
        msg[at + 2..at + 4].copy_from_slice(&kind.to_ne_bytes());
        msg[at + 4..at + 20].copy_from_slice(&ip.octets());
    }
    // SAFETY: `msg` is valid for reads of its length for the whole call; an unconnected
    // netlink socket sends to the kernel.
    let n = unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // The answer is an NLMSG_ERROR: its error field (after the 16-byte header) is 0 for the
    // acknowledgement, or a negative errno.
    let mut ack = [0u8; 256];
    // SAFETY: `ack` is valid for writes of its length for the whole call.
    let n = unsafe { libc::recv(sock.as_raw_fd(), ack.as_mut_ptr().cast(), ack.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let kind = u16::from_ne_bytes([ack[4], ack[5]]);
    if n < 20 || libc::c_int::from(kind) != libc::NLMSG_ERROR {
        return Err(io::Error::other("unexpected rtnetlink answer to RTM_NEWADDR"));
    }
    match i32::from_ne_bytes([ack[16], ack[17], ack[18], ack[19]]) {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(-e)),
    }
}

/// The interface MTU (`SIOCGIFMTU`), by name in the calling thread's network namespace.
pub(crate) fn mtu(name: &str) -> io::Result<usize> {
    let sock = control_socket()?;
    let mut req = ifreq(name);
    ioctl_ifreq(sock.as_raw_fd(), libc::SIOCGIFMTU, &mut req)?;
    // SAFETY: SIOCGIFMTU just wrote the `ifru_mtu` member of the union.
    usize::try_from(unsafe { req.ifr_ifru.ifru_mtu }).map_err(io::Error::other)
}

/// Set the interface MTU (`SIOCSIFMTU`).
pub(crate) fn set_mtu(name: &str, mtu: usize) -> io::Result<()> {
    let sock = control_socket()?;
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_mtu = libc::c_int::try_from(mtu)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "MTU too large"))?;
    ioctl_ifreq(sock.as_raw_fd(), libc::SIOCSIFMTU, &mut req)
}

/// Bring the interface up (`SIOCGIFFLAGS`, then `SIOCSIFFLAGS` with `IFF_UP | IFF_RUNNING`).
pub(crate) fn set_up(name: &str) -> io::Result<()> {
    let sock = control_socket()?;
    let mut req = ifreq(name);
    ioctl_ifreq(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS just wrote the `ifru_flags` member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    ioctl_ifreq(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req)
}

/// `IFF_NAPI` (linux/if_tun.h; not in the `libc` crate): the kernel takes the packets written
/// to the TUN through a NAPI context of the device (with GRO) instead of processing each one
/// inside the `write(2)` call.
pub(crate) const IFF_NAPI: libc::c_int = 0x0010;

/// The interface index of `name` in the calling thread's network namespace
/// (`SIOCGIFINDEX`).
pub(crate) fn ifindex(name: &str) -> io::Result<libc::c_int> {
    let sock = control_socket()?;
    let mut req = ifreq(name);
    ioctl_ifreq(sock.as_raw_fd(), libc::SIOCGIFINDEX, &mut req)?;
    // SAFETY: SIOCGIFINDEX just wrote the `ifru_ifindex` member of the union.
    Ok(unsafe { req.ifr_ifru.ifru_ifindex })
}

/// Turn on threaded NAPI (`/sys/class/net/NAME/threaded` = 1, Linux ≥ 5.12) for the
/// interface `name` of the calling thread's network namespace.
///
/// A sysfs shows the interfaces of the network namespace that mounted it, and the process's
/// `/sys` may belong to another namespace than the calling thread's (a thread that moved
/// with `unshare`/`setns`), where the same name can be another interface. So a short-lived
/// thread takes a private mount namespace and mounts a sysfs of this network namespace on
/// its `/sys` (nothing is mounted anywhere else; the mount disappears with the thread):
/// - the mount succeeds: `/sys` was another namespace's, and the write goes through the new
///   mount;
/// - the mount fails with `EBUSY`: Linux refuses to stack a superblock on a mount point
///   where that same superblock is already on top, and a sysfs superblock is one per network
///   namespace, so `/sys` already is this namespace's (the root namespace, or under
///   `ip netns exec`) and the write goes there directly;
/// - no `CAP_SYS_ADMIN` for the private mount: the write goes to `/sys` directly if the
///   interface of that name there has this namespace's interface index.
///
/// In the two direct cases the interface index under `/sys` must match as well.
pub(crate) fn set_threaded_napi(name: &str) -> io::Result<()> {
    let index = ifindex(name)?;
    let dir = format!("/sys/class/net/{name}");
    std::thread::Builder::new()
        .name("tcp-tun-sysfs".into())
        .spawn(move || -> io::Result<()> {
            let direct = || -> io::Result<()> {
                let seen = std::fs::read_to_string(format!("{dir}/ifindex"))?;
                if seen.trim().parse::<libc::c_int>().ok() != Some(index) {
                    return Err(io::Error::other(format!(
                        "{dir} is another network namespace's interface"
                    )));
                }
                std::fs::write(format!("{dir}/threaded"), "1")
            };
            // SAFETY: `unshare` takes a flag word only. CLONE_NEWNS (which implies
            // CLONE_FS) gives only this thread a private copy of the mount table; the
            // thread inherited the network namespace of the caller and ends below.
            if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
                let e = io::Error::last_os_error();
                return match e.raw_os_error() {
                    Some(libc::EPERM) => direct(),
                    _ => Err(e),
                };
            }
            mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE)?;
            match mount(Some(c"sysfs"), c"/sys", Some(c"sysfs"), 0) {
                Ok(()) => std::fs::write(format!("{dir}/threaded"), "1"),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EPERM)) => direct(),
                Err(e) => Err(e),
            }
        })?
        .join()
        .map_err(|_| io::Error::other("the sysfs thread panicked"))?
}

/// `mount(2)` with no data argument.
fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
) -> io::Result<()> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is NULL or a NUL-terminated string alive for the call; the
    // data argument is NULL, which every filesystem and flag used here accepts.
    let r =
        unsafe { libc::mount(ptr(source), target.as_ptr(), ptr(fstype), flags, std::ptr::null()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `read(2)` one packet into `buf`.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.unsigned_abs())
}

/// `readv(2)` one packet: the virtio-net header into `hdr`, the IP packet into `buf`.
pub(crate) fn read_with_header(fd: RawFd, hdr: &mut [u8], buf: &mut [u8]) -> io::Result<usize> {
    let iov = [
        libc::iovec { iov_base: hdr.as_mut_ptr().cast(), iov_len: hdr.len() },
        libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() },
    ];
    // SAFETY: both iovecs describe live, exclusively borrowed buffers of the stated lengths,
    // and the array outlives the call.
    let n = unsafe { libc::readv(fd, iov.as_ptr(), 2) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.unsigned_abs())
}

/// `write(2)` one packet.
pub(crate) fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.unsigned_abs())
}

/// `writev(2)` one packet given as slices (a virtio-net header first when offloads are on).
pub(crate) fn writev(fd: RawFd, parts: &[&[u8]]) -> io::Result<usize> {
    const MAX: usize = 64;
    let mut iov = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; MAX];
    let count = parts.len().min(MAX);
    for (v, p) in iov.iter_mut().zip(parts) {
        *v = libc::iovec { iov_base: p.as_ptr().cast_mut().cast(), iov_len: p.len() };
    }
    // SAFETY: the first `count` iovecs describe live slices of the stated lengths that the
    // kernel only reads (`writev` never writes through `iov_base`); the array outlives the
    // call. `count` ≤ 64 < IOV_MAX.
    let n = unsafe { libc::writev(fd, iov.as_ptr(), count as libc::c_int) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.unsigned_abs())
}

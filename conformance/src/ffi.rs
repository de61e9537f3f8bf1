//! The C side of packetdrill's `struct packetdrill_interface` (packetdrill.h): the C types,
//! errno, and the raw-pointer plumbing. Every `unsafe` of the crate lives here.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::errno::*;
use crate::shared::Shared;

/// `struct iovec`.
#[repr(C)]
pub(crate) struct IoVec {
    pub(crate) base: *mut u8,
    pub(crate) len: usize,
}

/// `struct msghdr` (x86_64/aarch64 glibc layout).
#[repr(C)]
pub(crate) struct MsgHdr {
    pub(crate) name: *mut c_void,
    pub(crate) namelen: u32,
    pub(crate) iov: *mut IoVec,
    pub(crate) iovlen: usize,
    pub(crate) control: *mut c_void,
    pub(crate) controllen: usize,
    pub(crate) flags: c_int,
}

/// `struct pollfd`.
#[repr(C)]
pub(crate) struct PollFd {
    pub(crate) fd: c_int,
    pub(crate) events: i16,
    pub(crate) revents: i16,
}

/// `struct epoll_event` (packed on x86_64).
#[derive(Clone, Copy)]
#[repr(C, packed)]
pub(crate) struct EpollEvent {
    pub(crate) events: u32,
    pub(crate) data: u64,
}

/// `struct timeval`.
#[repr(C)]
pub(crate) struct TimeVal {
    pub(crate) sec: i64,
    pub(crate) usec: i64,
}

extern "C" {
    /// glibc's thread-local errno, which packetdrill reads after each call.
    fn __errno_location() -> *mut c_int;
}

/// Set errno and return -1, or return the value: the C convention.
pub(crate) fn ret<T: TryInto<isize>>(r: Res<T>) -> isize {
    match r {
        Ok(v) => v.try_into().unwrap_or(isize::MAX),
        Err(e) => {
            // SAFETY: __errno_location returns a valid pointer to this thread's errno.
            unsafe { *__errno_location() = e };
            -1
        }
    }
}

/// [`ret`] for calls that return 0 on success.
pub(crate) fn ret0(r: Res<()>) -> c_int {
    ret(r.map(|()| 0)) as c_int
}

/// The shared state behind packetdrill's `userdata`.
pub(crate) fn shared<'a>(ud: *mut c_void) -> &'a Shared {
    // SAFETY: `ud` is the `Box<Shared>` leaked by `packetdrill_interface_init`; it lives
    // until packetdrill calls `free`, after its last call.
    unsafe { &*(ud as *const Shared) }
}

/// Drop the state leaked by `packetdrill_interface_init`.
pub(crate) fn free_shared(ud: *mut c_void) {
    if !ud.is_null() {
        // SAFETY: `ud` came from `Box::into_raw` and packetdrill frees it exactly once.
        drop(unsafe { Box::from_raw(ud as *mut Shared) });
    }
}

/// The bytes at `p` (a C buffer of `len` bytes; empty for null).
pub(crate) fn bytes<'a>(p: *const c_void, len: usize) -> &'a [u8] {
    if p.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: packetdrill passes a buffer of at least `len` readable bytes.
    unsafe { std::slice::from_raw_parts(p as *const u8, len) }
}

/// The writable bytes at `p`.
pub(crate) fn bytes_mut<'a>(p: *mut c_void, len: usize) -> &'a mut [u8] {
    if p.is_null() || len == 0 {
        return &mut [];
    }
    // SAFETY: packetdrill passes a buffer of at least `len` writable bytes, not aliased
    // during the call.
    unsafe { std::slice::from_raw_parts_mut(p as *mut u8, len) }
}

/// The elements of a C array (empty for null).
pub(crate) fn array_mut<'a, T>(p: *mut T, n: usize) -> &'a mut [T] {
    if p.is_null() || n == 0 {
        return &mut [];
    }
    // SAFETY: packetdrill passes an array of `n` initialized elements, not aliased.
    unsafe { std::slice::from_raw_parts_mut(p, n) }
}

/// One `T` written through a C out-pointer (ignored when null).
pub(crate) fn write_out<T>(p: *mut T, v: T) {
    if !p.is_null() {
        // SAFETY: a non-null out-pointer from packetdrill points at a writable T
        // (possibly unaligned for packed structs, hence write_unaligned).
        unsafe { p.write_unaligned(v) };
    }
}

/// Read a T through a C pointer (`None` when null).
pub(crate) fn read_in<T: Copy>(p: *const T) -> Option<T> {
    // SAFETY: a non-null pointer from packetdrill points at an initialized T.
    (!p.is_null()).then(|| unsafe { p.read_unaligned() })
}

/// The iovecs of a gather/scatter call as byte slices.
pub(crate) fn iovecs<'a>(iov: *const IoVec, n: usize) -> Vec<&'a mut [u8]> {
    array_mut(iov as *mut IoVec, n)
        .iter()
        .map(|v| bytes_mut(v.base as *mut c_void, v.len))
        .collect()
}

/// The message header of `sendmsg`/`recvmsg`.
pub(crate) fn msghdr<'a>(msg: *const MsgHdr) -> Option<&'a mut MsgHdr> {
    // SAFETY: packetdrill passes a valid msghdr it does not touch during the call.
    (!msg.is_null()).then(|| unsafe { &mut *(msg as *mut MsgHdr) })
}

/// Write one control message (`struct cmsghdr` and an `int`) into a `msg_control` buffer of
/// `room` bytes; returns the bytes used (`CMSG_SPACE(sizeof(int))`), 0 if it does not fit.
pub(crate) fn put_cmsg(
    control: *mut c_void,
    room: usize,
    level: c_int,
    ty: c_int,
    v: c_int,
) -> usize {
    let hdr = std::mem::size_of::<usize>() + 8;
    let space = (hdr + 4).next_multiple_of(std::mem::size_of::<usize>());
    if control.is_null() || room < space {
        return 0;
    }
    let out = bytes_mut(control, space);
    out.fill(0);
    out[..std::mem::size_of::<usize>()].copy_from_slice(&(hdr + 4).to_ne_bytes());
    let l = std::mem::size_of::<usize>();
    out[l..l + 4].copy_from_slice(&level.to_ne_bytes());
    out[l + 4..l + 8].copy_from_slice(&ty.to_ne_bytes());
    out[hdr..hdr + 4].copy_from_slice(&v.to_ne_bytes());
    space
}

/// The flags string of `--so_flags`.
pub(crate) fn flags_str(flags: *const c_char) -> String {
    if flags.is_null() {
        return String::new();
    }
    // SAFETY: packetdrill passes a NUL-terminated string.
    unsafe { CStr::from_ptr(flags) }.to_string_lossy().into_owned()
}

/// Parse a `struct sockaddr_in`/`sockaddr_in6`.
pub(crate) fn sockaddr(p: *const c_void, len: u32) -> Res<SocketAddr> {
    let b = bytes(p, len as usize);
    let family = b.get(..2).map(|f| u16::from_ne_bytes([f[0], f[1]]) as i32).ok_or(EINVAL)?;
    let port = b.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]])).ok_or(EINVAL)?;
    match family {
        AF_INET if b.len() >= 16 => {
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        AF_INET6 if b.len() >= 28 => {
            let ip: [u8; 16] = b[8..24].try_into().map_err(|_| EINVAL)?;
            let ip = Ipv6Addr::from(ip);
            Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)))
        }
        AF_INET | AF_INET6 => Err(EINVAL),
        _ => Err(EAFNOSUPPORT),
    }
}

/// Write `addr` as a C sockaddr into `out` (capacity `*len`), updating `*len`.
pub(crate) fn put_sockaddr(addr: SocketAddr, out: *mut c_void, len: *mut u32) {
    let Some(cap) = read_in(len) else { return };
    let mut b = [0u8; 28];
    let n = match addr {
        SocketAddr::V4(a) => {
            b[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.ip().octets());
            16
        }
        SocketAddr::V6(a) => {
            b[..2].copy_from_slice(&(AF_INET6 as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[8..24].copy_from_slice(&a.ip().octets());
            28
        }
    };
    let dst = bytes_mut(out, cap as usize);
    let k = dst.len().min(n);
    dst[..k].copy_from_slice(&b[..k]);
    write_out(len, n as u32);
}

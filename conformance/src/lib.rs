//! packetdrill conformance for tcpcore.
//!
//! The library is a shared object for packetdrill's `--so_filename` mode: it implements
//! `struct packetdrill_interface` (packetdrill.h) over one tcpcore `Endpoint` in virtual
//! time, so packetdrill scripts written for Linux run against the stack with no kernel, TUN
//! or network involved. The `conformance` binary builds packetdrill and runs the suites.
//!
//! `--so_flags` takes comma-separated `key=value` pairs: `local_ip=A` (IPv4) and
//! `local_ip6=A`: the local address of active opens, which must match packetdrill's
//! `--local_ip` (the runner passes the same address to both); `sysctl.NAME=V`: a sysctl the
//! script sets, mapped onto the endpoint configuration (`stack::apply_sysctl`).

mod errno;
mod ffi;
mod interface;
mod shared;
mod sockets;
mod sockopt;
mod stack;
mod tcp_info;

use std::ffi::{c_char, c_void};

use interface as i;

/// `struct packetdrill_interface`, field for field (packetdrill.h).
#[repr(C)]
pub struct PacketdrillInterface {
    userdata: *mut c_void,
    free: extern "C" fn(*mut c_void),
    socket: extern "C" fn(*mut c_void, i32, i32, i32) -> i32,
    bind: extern "C" fn(*mut c_void, i32, *const c_void, u32) -> i32,
    listen: extern "C" fn(*mut c_void, i32, i32) -> i32,
    accept: extern "C" fn(*mut c_void, i32, *mut c_void, *mut u32) -> i32,
    connect: extern "C" fn(*mut c_void, i32, *const c_void, u32) -> i32,
    read: extern "C" fn(*mut c_void, i32, *mut c_void, usize) -> isize,
    readv: extern "C" fn(*mut c_void, i32, *const ffi::IoVec, i32) -> isize,
    recv: extern "C" fn(*mut c_void, i32, *mut c_void, usize, i32) -> isize,
    recvfrom:
        extern "C" fn(*mut c_void, i32, *mut c_void, usize, i32, *mut c_void, *mut u32) -> isize,
    recvmsg: extern "C" fn(*mut c_void, i32, *mut ffi::MsgHdr, i32) -> isize,
    write: extern "C" fn(*mut c_void, i32, *const c_void, usize) -> isize,
    writev: extern "C" fn(*mut c_void, i32, *const ffi::IoVec, i32) -> isize,
    send: extern "C" fn(*mut c_void, i32, *const c_void, usize, i32) -> isize,
    sendto: extern "C" fn(*mut c_void, i32, *const c_void, usize, i32, *const c_void, u32) -> isize,
    sendmsg: extern "C" fn(*mut c_void, i32, *const ffi::MsgHdr, i32) -> isize,
    fcntl: extern "C" fn(*mut c_void, i32, i32, std::ffi::c_long) -> i32,
    ioctl: extern "C" fn(*mut c_void, i32, u64, *mut i32) -> i32,
    close: extern "C" fn(*mut c_void, i32) -> i32,
    shutdown: extern "C" fn(*mut c_void, i32, i32) -> i32,
    getsockopt: extern "C" fn(*mut c_void, i32, i32, i32, *mut c_void, *mut u32) -> i32,
    setsockopt: extern "C" fn(*mut c_void, i32, i32, i32, *const c_void, u32) -> i32,
    poll: extern "C" fn(*mut c_void, *mut ffi::PollFd, u64, i32) -> i32,
    netdev_send: extern "C" fn(*mut c_void, *const c_void, usize) -> i32,
    netdev_receive: extern "C" fn(*mut c_void, *mut c_void, *mut usize, *mut i64) -> i32,
    usleep: extern "C" fn(*mut c_void, u32) -> i32,
    gettimeofday: extern "C" fn(*mut c_void, *mut ffi::TimeVal, *mut c_void) -> i32,
    epoll_create: extern "C" fn(*mut c_void, i32) -> i32,
    epoll_ctl: extern "C" fn(*mut c_void, i32, i32, i32, *mut ffi::EpollEvent) -> i32,
    epoll_wait: extern "C" fn(*mut c_void, i32, *mut ffi::EpollEvent, i32, i32) -> i32,
    pipe: extern "C" fn(*mut c_void, *mut i32) -> i32,
    splice: extern "C" fn(*mut c_void, i32, *mut i64, i32, *mut i64, usize, u32) -> isize,
}

/// packetdrill's entry point: fill `ifc` with a fresh stack.
#[no_mangle]
pub extern "C" fn packetdrill_interface_init(flags: *const c_char, ifc: *mut PacketdrillInterface) {
    let flags = ffi::flags_str(flags);
    let mut cfg = stack::config();
    for kv in flags.split([',', ' ']) {
        if let Some((name, v)) = kv.strip_prefix("sysctl.").and_then(|s| s.split_once('=')) {
            stack::apply_sysctl(&mut cfg, name, v);
        }
    }
    let mut host = sockets::Host::new(cfg);
    for kv in flags.split([',', ' ']) {
        match kv.split_once('=') {
            Some(("local_ip", v)) => host.local4 = v.parse().unwrap_or(host.local4),
            Some(("local_ip6", v)) => host.local6 = v.parse().unwrap_or(host.local6),
            _ => {}
        }
    }
    let userdata = Box::into_raw(Box::new(shared::Shared::new(host))) as *mut c_void;
    let table = PacketdrillInterface {
        userdata,
        free: i::free,
        socket: i::socket,
        bind: i::bind,
        listen: i::listen,
        accept: i::accept,
        connect: i::connect,
        read: i::read,
        readv: i::readv,
        recv: i::recv,
        recvfrom: i::recvfrom,
        recvmsg: i::recvmsg,
        write: i::write,
        writev: i::writev,
        send: i::send,
        sendto: i::sendto,
        sendmsg: i::sendmsg,
        fcntl: i::fcntl,
        ioctl: i::ioctl,
        close: i::close,
        shutdown: i::shutdown,
        getsockopt: i::getsockopt,
        setsockopt: i::setsockopt,
        poll: i::poll,
        netdev_send: i::netdev_send,
        netdev_receive: i::netdev_receive,
        usleep: i::usleep,
        gettimeofday: i::gettimeofday,
        epoll_create: i::epoll_create,
        epoll_ctl: i::epoll_ctl,
        epoll_wait: i::epoll_wait,
        pipe: i::pipe,
        splice: i::splice,
    };
    ffi::write_out(ifc, table);
}

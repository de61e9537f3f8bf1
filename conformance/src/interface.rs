//! `struct packetdrill_interface`: each entry point maps its C arguments (via [`crate::ffi`])
//! onto the socket layer, blocks in virtual time where the call would block, and wakes the
//! other thread afterwards.

use std::ffi::{c_int, c_long, c_void};
use std::task::Poll;
use std::time::Duration;

use crate::errno::*;
use crate::ffi::{self, ret, ret0, shared, EpollEvent, IoVec, MsgHdr, PollFd, TimeVal};
use crate::sockets::{EpollItem, Host, Kind};
use crate::sockopt;
use crate::zerocopy::MSG_ERRQUEUE;

/// `MSG_MORE`: more data follows (corks this write's tail).
const MSG_MORE: c_int = 0x8000;
/// The level of the `setsockopt` on descriptor -1 by which the patched packetdrill shows
/// the shim a script's shell command (`conformance/packetdrill.patch`).
const SHELL_COMMAND: c_int = 0x5d11;

/// `MSG_FASTOPEN`: connect with TCP Fast Open and send the data on the SYN.
const MSG_FASTOPEN: c_int = 0x2000_0000;

/// Run `f` on the shared state, then wake blocked calls.
fn with<R>(ud: *mut c_void, f: impl FnOnce(&crate::shared::Shared) -> R) -> R {
    let s = shared(ud);
    let r = f(s);
    s.notify();
    r
}

fn locked<R>(ud: *mut c_void, f: impl FnOnce(&mut Host) -> R) -> R {
    with(ud, |s| f(&mut s.lock()))
}

fn is_nonblock(ud: *mut c_void, fd: c_int, flags: c_int) -> bool {
    flags & MSG_DONTWAIT != 0 || locked(ud, |h| h.socks.get(&fd).is_some_and(|s| s.nonblock))
}

pub(crate) extern "C" fn free(ud: *mut c_void) {
    ffi::free_shared(ud);
}

pub(crate) extern "C" fn socket(ud: *mut c_void, domain: c_int, ty: c_int, proto: c_int) -> c_int {
    ret(locked(ud, |h| h.socket(domain, ty, proto))) as c_int
}

pub(crate) extern "C" fn bind(ud: *mut c_void, fd: c_int, addr: *const c_void, len: u32) -> c_int {
    ret0(ffi::sockaddr(addr, len).and_then(|a| locked(ud, |h| h.bind(fd, a))))
}

pub(crate) extern "C" fn listen(ud: *mut c_void, fd: c_int, backlog: c_int) -> c_int {
    ret0(locked(ud, |h| h.listen(fd, backlog)))
}

pub(crate) extern "C" fn accept(
    ud: *mut c_void,
    fd: c_int,
    addr: *mut c_void,
    len: *mut u32,
) -> c_int {
    let nb = is_nonblock(ud, fd, 0);
    let r = with(ud, |s| s.block(nb, None, |h| h.accept(fd)).unwrap_or(Err(EAGAIN)));
    ret(r.map(|(nfd, peer)| {
        ffi::put_sockaddr(peer, addr, len);
        nfd
    })) as c_int
}

pub(crate) extern "C" fn connect(
    ud: *mut c_void,
    fd: c_int,
    addr: *const c_void,
    len: u32,
) -> c_int {
    let nb = is_nonblock(ud, fd, 0);
    let r = ffi::sockaddr(addr, len).and_then(|a| locked(ud, |h| h.connect(fd, a)));
    // TCP_FASTOPEN_CONNECT with a cookie: the SYN waits for the first write.
    let deferred = || locked(ud, |h| h.conn(fd).is_ok_and(|c| c.fast_open_syn_room().is_some()));
    let r = match r {
        Ok(_) if deferred() => Ok(()),
        Ok(_) if nb => Err(EINPROGRESS),
        Ok(()) => {
            with(ud, |s| s.block(false, None, |h| h.connect_done(fd))).unwrap_or(Err(ETIMEDOUT))
        }
        Err(e) => Err(e),
    };
    ret0(r)
}

fn do_read(ud: *mut c_void, fd: c_int, mut bufs: Vec<&mut [u8]>, flags: c_int) -> isize {
    let nb = is_nonblock(ud, fd, flags);
    let peek = flags & MSG_PEEK != 0;
    let r = with(ud, |s| s.block(nb, None, |h| h.read(fd, &mut bufs, peek)));
    ret(r.unwrap_or(Err(EAGAIN)))
}

/// A NULL buffer with a length is `EFAULT`, as the kernel's copy to or from user memory
/// reports (the shim can only recognise NULL as a bad address).
fn bad_buffer(buf: *const c_void, n: usize) -> bool {
    buf.is_null() && n > 0
}

pub(crate) extern "C" fn read(ud: *mut c_void, fd: c_int, buf: *mut c_void, n: usize) -> isize {
    if bad_buffer(buf, n) {
        return ret::<isize>(Err(EFAULT));
    }
    do_read(ud, fd, vec![ffi::bytes_mut(buf, n)], 0)
}

pub(crate) extern "C" fn readv(ud: *mut c_void, fd: c_int, iov: *const IoVec, n: c_int) -> isize {
    do_read(ud, fd, ffi::iovecs(iov, n.max(0) as usize), 0)
}

pub(crate) extern "C" fn recv(
    ud: *mut c_void,
    fd: c_int,
    buf: *mut c_void,
    n: usize,
    flags: c_int,
) -> isize {
    if bad_buffer(buf, n) {
        return ret::<isize>(Err(EFAULT));
    }
    do_read(ud, fd, vec![ffi::bytes_mut(buf, n)], flags)
}

pub(crate) extern "C" fn recvfrom(
    ud: *mut c_void,
    fd: c_int,
    buf: *mut c_void,
    n: usize,
    flags: c_int,
    _addr: *mut c_void,
    _len: *mut u32,
) -> isize {
    if bad_buffer(buf, n) {
        return ret::<isize>(Err(EFAULT));
    }
    do_read(ud, fd, vec![ffi::bytes_mut(buf, n)], flags)
}

pub(crate) extern "C" fn recvmsg(
    ud: *mut c_void,
    fd: c_int,
    msg: *mut MsgHdr,
    flags: c_int,
) -> isize {
    // As Linux, `msg_flags` and `msg_controllen` are written back only on success.
    let Some(m) = ffi::msghdr(msg) else { return ret::<isize>(Err(EFAULT)) };
    let room = m.controllen;
    if flags & MSG_ERRQUEUE != 0 {
        let Some((level, ty, err)) = locked(ud, |h| h.zerocopy_take(fd)) else {
            return ret::<isize>(Err(EAGAIN));
        };
        m.controllen = ffi::put_cmsg(m.control, room, level, ty, &err);
        m.flags = MSG_ERRQUEUE;
        return 0;
    }
    let n = do_read(ud, fd, ffi::iovecs(m.iov, m.iovlen), flags);
    if n >= 0 {
        m.controllen = 0;
        m.flags = 0;
        if let Some(inq) = locked(ud, |h| sockopt::inq_hint(h, fd)) {
            let data = inq.to_ne_bytes();
            m.controllen = ffi::put_cmsg(m.control, room, SOL_TCP, TCP_CM_INQ, &data);
        }
    }
    n
}

/// A write: all of `data` for a blocking socket (waiting for room), as much as fits for a
/// non-blocking one; the bytes taken count for `MSG_ZEROCOPY` notifications.
fn do_write(ud: *mut c_void, fd: c_int, data: &[u8], flags: c_int) -> isize {
    let n = write_all(ud, fd, data, flags);
    if n >= 0 {
        locked(ud, |h| {
            if let Some(s) = h.socks.get_mut(&fd) {
                s.zerocopy.on_send(n as usize, flags, s.opts.zerocopy);
            }
        });
    }
    n
}

fn write_all(ud: *mut c_void, fd: c_int, data: &[u8], flags: c_int) -> isize {
    let nb = is_nonblock(ud, fd, flags);
    // A blocking write into a deferred Fast Open SYN returns once the handshake is over
    // (Linux waits for the connection in `tcp_sendmsg`), with its error if it failed.
    let mut fast_open =
        !nb && locked(ud, |h| h.conn(fd).is_ok_and(|c| c.fast_open_syn_room().is_some()));
    let mut done = 0;
    loop {
        let more = flags & MSG_MORE != 0;
        let r = with(ud, |s| s.block(nb, None, |h| h.write(fd, &data[done..], more, nb)));
        match r {
            Some(Ok(n)) => done += n,
            Some(Err(_)) | None if done > 0 => return done as isize,
            Some(Err(e)) => return ret::<isize>(Err(e)),
            None => return ret::<isize>(Err(EAGAIN)),
        }
        if std::mem::take(&mut fast_open) {
            let r = with(ud, |s| s.block(false, None, |h| h.connect_done(fd)));
            if let Some(Err(e)) = r {
                return ret::<isize>(Err(e));
            }
        }
        if nb || done == data.len() {
            return done as isize;
        }
    }
}

fn gather(iov: *const IoVec, n: usize) -> Vec<u8> {
    ffi::iovecs(iov, n).concat()
}

pub(crate) extern "C" fn write(ud: *mut c_void, fd: c_int, buf: *const c_void, n: usize) -> isize {
    if bad_buffer(buf, n) {
        return ret::<isize>(Err(EFAULT));
    }
    do_write(ud, fd, ffi::bytes(buf, n), 0)
}

pub(crate) extern "C" fn writev(ud: *mut c_void, fd: c_int, iov: *const IoVec, n: c_int) -> isize {
    do_write(ud, fd, &gather(iov, n.max(0) as usize), 0)
}

pub(crate) extern "C" fn send(
    ud: *mut c_void,
    fd: c_int,
    buf: *const c_void,
    n: usize,
    flags: c_int,
) -> isize {
    if bad_buffer(buf, n) {
        return ret::<isize>(Err(EFAULT));
    }
    do_write(ud, fd, ffi::bytes(buf, n), flags)
}

pub(crate) extern "C" fn sendto(
    ud: *mut c_void,
    fd: c_int,
    buf: *const c_void,
    n: usize,
    flags: c_int,
    addr: *const c_void,
    len: u32,
) -> isize {
    if bad_buffer(buf, n) {
        return ret::<isize>(Err(EFAULT));
    }
    if flags & MSG_FASTOPEN != 0 {
        return fast_open_send(ud, fd, ffi::bytes(buf, n), flags, ffi::sockaddr(addr, len).ok());
    }
    if n == 0 && release_fast_open_syn(ud, fd) {
        // Linux: an empty send on a deferred Fast Open connect sends the SYN (cookie only).
        return ret::<isize>(Err(EINPROGRESS));
    }
    do_write(ud, fd, ffi::bytes(buf, n), flags)
}

/// Send a deferred Fast Open SYN now; whether there was one.
fn release_fast_open_syn(ud: *mut c_void, fd: c_int) -> bool {
    locked(ud, |h| {
        let Ok(c) = h.conn(fd) else { return false };
        if c.fast_open_syn_room().is_none() {
            return false;
        }
        c.release_syn();
        h.stack.drive();
        true
    })
}

/// `sendto`/`sendmsg` with `MSG_FASTOPEN` (RFC 7413 §4.2.1): on an unconnected socket,
/// connect with Fast Open and put the data on the SYN (a cookie request when none is
/// cached: the data then waits for the handshake, `EINPROGRESS` when non-blocking).
fn fast_open_send(
    ud: *mut c_void,
    fd: c_int,
    data: &[u8],
    flags: c_int,
    addr: Option<std::net::SocketAddr>,
) -> isize {
    let nb = is_nonblock(ud, fd, flags);
    let started = locked(ud, |h| {
        if !matches!(h.sock(fd)?.kind, crate::sockets::Kind::Idle) {
            return Ok(false);
        }
        if !h.stack.ep.config().fast_open.client {
            return Err(EOPNOTSUPP);
        }
        // Linux: no usable address (AF_UNSPEC) is EOPNOTSUPP here.
        h.connect_fast_open(fd, addr.ok_or(EOPNOTSUPP)?, true).map(|()| true)
    });
    match started {
        Err(e) => return ret::<isize>(Err(e)),
        Ok(false) => {
            // A connect that deferred its Fast Open SYN takes the data; one whose SYN is
            // out is still opening.
            let opening = locked(ud, |h| {
                h.conn(fd).is_ok_and(|c| {
                    matches!(c.state(), tcpcore::State::SynSent | tcpcore::State::SynReceived)
                        && c.fast_open_syn_room().is_none()
                })
            });
            if opening {
                return ret::<isize>(Err(EALREADY));
            }
            return do_write(ud, fd, data, flags);
        }
        Ok(true) => {}
    }
    let deferred = locked(ud, |h| h.conn(fd).is_ok_and(|c| c.fast_open_syn_room().is_some()));
    if deferred && !data.is_empty() {
        return do_write(ud, fd, data, flags);
    }
    if deferred {
        locked(ud, |h| {
            if let Ok(c) = h.conn(fd) {
                c.release_syn();
            }
            h.stack.drive();
        });
    }
    if nb {
        return ret::<isize>(Err(EINPROGRESS));
    }
    match with(ud, |s| s.block(false, None, |h| h.connect_done(fd))) {
        Some(Ok(())) => do_write(ud, fd, data, flags),
        Some(Err(e)) => ret::<isize>(Err(e)),
        None => ret::<isize>(Err(ETIMEDOUT)),
    }
}

pub(crate) extern "C" fn sendmsg(
    ud: *mut c_void,
    fd: c_int,
    msg: *const MsgHdr,
    flags: c_int,
) -> isize {
    let Some(m) = ffi::msghdr(msg) else { return ret::<isize>(Err(EFAULT)) };
    if flags & MSG_FASTOPEN != 0 {
        let addr = ffi::sockaddr(m.name, m.namelen).ok();
        return fast_open_send(ud, fd, &gather(m.iov, m.iovlen), flags, addr);
    }
    do_write(ud, fd, &gather(m.iov, m.iovlen), flags)
}

/// `fcntl(fd, cmd, arg)`. Declared with a fixed third argument: on the x86_64 and aarch64
/// C ABIs a variadic caller passes it in the same register.
pub(crate) extern "C" fn fcntl(ud: *mut c_void, fd: c_int, cmd: c_int, arg: c_long) -> c_int {
    let r = locked(ud, |h| {
        let s = h.sock(fd)?;
        match cmd {
            F_GETFL => Ok(O_RDWR | if s.nonblock { O_NONBLOCK } else { 0 }),
            F_SETFL => {
                s.nonblock = arg as c_int & O_NONBLOCK != 0;
                Ok(0)
            }
            _ => Err(EINVAL),
        }
    });
    ret(r) as c_int
}

/// `ioctl(fd, request, int *arg)`, as [`fcntl`] for the variadic argument.
pub(crate) extern "C" fn ioctl(ud: *mut c_void, fd: c_int, req: u64, arg: *mut c_int) -> c_int {
    let r = locked(ud, |h| {
        let c = h.conn(fd).ok();
        let v = match (req, c) {
            (FIONREAD, Some(c)) => c.readable_bytes(),
            (SIOCOUTQ, Some(c)) => c.send_queued(),
            (SIOCOUTQNSD, Some(c)) => c.send_queued().saturating_sub(c.info().unacked as usize),
            (FIONREAD | SIOCOUTQ | SIOCOUTQNSD, None) => return Err(EINVAL),
            _ => return Err(ENOTTY),
        };
        Ok(v as c_int)
    });
    ret0(r.map(|v| ffi::write_out(arg, v)))
}

const ENOTTY: Errno = 25;
const SOL_TCP: c_int = 6;
/// Linux `TCP_CM_INQ` (= `TCP_INQ`): the control message `recvmsg` adds with `TCP_INQ` on.
const TCP_CM_INQ: c_int = sockopt::TCP_INQ;

pub(crate) extern "C" fn close(ud: *mut c_void, fd: c_int) -> c_int {
    ret0(locked(ud, |h| h.close(fd)))
}

pub(crate) extern "C" fn shutdown(ud: *mut c_void, fd: c_int, how: c_int) -> c_int {
    ret0(locked(ud, |h| h.shutdown(fd, how)))
}

pub(crate) extern "C" fn getsockopt(
    ud: *mut c_void,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut u32,
) -> c_int {
    let cap = ffi::read_in(len).unwrap_or(0) as usize;
    let out = ffi::bytes_mut(val, cap);
    let r = locked(ud, |h| sockopt::get(h, fd, level, name, out));
    ret0(r.map(|n| ffi::write_out(len, n as u32)))
}

pub(crate) extern "C" fn setsockopt(
    ud: *mut c_void,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: u32,
) -> c_int {
    let v = ffi::bytes(val, len as usize);
    if fd == -1 && level == SHELL_COMMAND {
        locked(ud, |h| h.stack.shell_command(&String::from_utf8_lossy(v)));
        return 0;
    }
    ret0(locked(ud, |h| sockopt::set(h, fd, level, name, v)))
}

/// A virtual deadline `ms` milliseconds from now (negative: none).
fn deadline(h: &Host, ms: c_int) -> Option<tcpcore::Instant> {
    (ms >= 0).then(|| h.stack.now + Duration::from_millis(ms as u64))
}

pub(crate) extern "C" fn poll(ud: *mut c_void, fds: *mut PollFd, n: u64, timeout: c_int) -> c_int {
    let fds = ffi::array_mut(fds, n as usize);
    let r = with(ud, |s| {
        let d = deadline(&s.lock(), timeout);
        s.block(false, d, |h| {
            let mut ready = 0;
            for p in fds.iter_mut() {
                let ev = h.poll_events(p.fd);
                p.revents = ev & (p.events | POLLERR | POLLHUP | POLLNVAL);
                ready += i32::from(p.revents != 0);
            }
            if ready > 0 {
                Poll::Ready(Ok(ready))
            } else {
                Poll::Pending
            }
        })
    });
    ret(r.unwrap_or(Ok(0))) as c_int
}

pub(crate) extern "C" fn netdev_send(ud: *mut c_void, buf: *const c_void, n: usize) -> c_int {
    let p = ffi::bytes(buf, n);
    locked(ud, |h| h.stack.receive(p));
    0
}

/// The stack's next packet: virtual time moves to the stack's next timer until it emits one.
pub(crate) extern "C" fn netdev_receive(
    ud: *mut c_void,
    buf: *mut c_void,
    count: *mut usize,
    time_usecs: *mut i64,
) -> c_int {
    let cap = ffi::read_in(count).unwrap_or(0);
    let r = with(ud, |s| {
        s.block(false, None, |h| match h.stack.out.pop_front() {
            Some((t, p)) => Poll::Ready(Ok((t, p))),
            None => Poll::Pending,
        })
    });
    let Some(Ok((t, p))) = r else {
        ffi::write_out(count, 0);
        return -1;
    };
    let n = p.len().min(cap);
    ffi::bytes_mut(buf, cap)[..n].copy_from_slice(&p[..n]);
    ffi::write_out(count, n);
    ffi::write_out(time_usecs, (crate::stack::EPOCH_USECS + t.as_micros()) as i64);
    0
}

pub(crate) extern "C" fn usleep(ud: *mut c_void, usec: u32) -> c_int {
    shared(ud).sleep(Duration::from_micros(usec.into()));
    0
}

/// The virtual clock. Each call moves it 1 µs: packetdrill spins on `gettimeofday` for the
/// last few microseconds before an event, which must end.
pub(crate) extern "C" fn gettimeofday(
    ud: *mut c_void,
    tv: *mut TimeVal,
    _tz: *mut c_void,
) -> c_int {
    let us = shared(ud).advance(Duration::from_micros(1));
    ffi::write_out(tv, TimeVal { sec: (us / 1_000_000) as i64, usec: (us % 1_000_000) as i64 });
    0
}

pub(crate) extern "C" fn epoll_create(ud: *mut c_void, size: c_int) -> c_int {
    if size <= 0 {
        return ret::<c_int>(Err(EINVAL)) as c_int;
    }
    locked(ud, |h| h.install(Kind::Epoll(Vec::new()), false, false))
}

pub(crate) extern "C" fn epoll_ctl(
    ud: *mut c_void,
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut EpollEvent,
) -> c_int {
    let ev = ffi::read_in(ev as *const EpollEvent).map(|e| (e.events, e.data));
    let r = locked(ud, |h| {
        if !h.socks.contains_key(&fd) {
            return Err(EBADF);
        }
        let Kind::Epoll(list) = &mut h.sock(epfd)?.kind else { return Err(EINVAL) };
        let pos = list.iter().position(|i| i.fd == fd);
        let item = |(events, data)| EpollItem { fd, events, data, reported: None };
        match (op, pos, ev) {
            (EPOLL_CTL_ADD, None, Some(e)) => list.push(item(e)),
            (EPOLL_CTL_ADD, Some(_), _) => return Err(EEXIST),
            (EPOLL_CTL_MOD, Some(i), Some(e)) => list[i] = item(e),
            (EPOLL_CTL_DEL, Some(i), _) => drop(list.remove(i)),
            (EPOLL_CTL_MOD | EPOLL_CTL_DEL, None, _) => return Err(ENOENT),
            _ => return Err(EINVAL),
        }
        Ok(0)
    });
    ret(r) as c_int
}

/// `epoll_wait`: level-triggered, or with `EPOLLET` edge-triggered (a descriptor reported
/// once is reported again only after a wakeup, `Host::wakeup_signature`); `EPOLLONESHOT`
/// disarms an entry once reported.
pub(crate) extern "C" fn epoll_wait(
    ud: *mut c_void,
    epfd: c_int,
    events: *mut EpollEvent,
    max: c_int,
    timeout: c_int,
) -> c_int {
    let out = ffi::array_mut(events, max.max(0) as usize);
    let r = with(ud, |s| {
        let d = deadline(&s.lock(), timeout);
        s.block(false, d, |h| {
            let mut list = match h.socks.get(&epfd).map(|s| &s.kind) {
                Some(Kind::Epoll(l)) => l.clone(),
                _ => return Poll::Ready(Err(EBADF)),
            };
            let mut n = 0;
            for item in &mut list {
                let mask = item.events & !(EPOLLET | EPOLLONESHOT);
                if mask == 0 {
                    continue; // disarmed (EPOLLONESHOT): not even errors are reported
                }
                let ev = (h.poll_events(item.fd) as u16 as u32) & (mask | 0x18);
                let sig = h.wakeup_signature(item.fd);
                let edge_seen = item.events & EPOLLET != 0 && item.reported == Some(sig);
                if ev != 0 && n < out.len() && !edge_seen {
                    out[n] = EpollEvent { events: ev, data: item.data };
                    item.reported = Some(sig);
                    n += 1;
                    if item.events & EPOLLONESHOT != 0 {
                        // Disarmed until EPOLL_CTL_MOD (Linux keeps only its private bits).
                        item.events &= EPOLLET | EPOLLONESHOT;
                    }
                }
            }
            if let Some(Kind::Epoll(l)) = h.socks.get_mut(&epfd).map(|s| &mut s.kind) {
                *l = list;
            }
            if n > 0 {
                Poll::Ready(Ok(n as c_int))
            } else {
                Poll::Pending
            }
        })
    });
    ret(r.unwrap_or(Ok(0))) as c_int
}

pub(crate) extern "C" fn pipe(_ud: *mut c_void, _fds: *mut c_int) -> c_int {
    ret::<c_int>(Err(EOPNOTSUPP)) as c_int
}

pub(crate) extern "C" fn splice(
    _ud: *mut c_void,
    _fd_in: c_int,
    _off_in: *mut i64,
    _fd_out: c_int,
    _off_out: *mut i64,
    _len: usize,
    _flags: u32,
) -> isize {
    ret::<isize>(Err(EOPNOTSUPP))
}

//! Linux errno values and constants of the socket API, as packetdrill (built for Linux)
//! passes and expects them. Defined here so the shim needs no libc crate.

/// An errno value; the `Err` of every socket operation.
pub(crate) type Errno = i32;
/// A socket call's result.
pub(crate) type Res<T> = Result<T, Errno>;

pub(crate) const EBADF: Errno = 9;
pub(crate) const EAGAIN: Errno = 11;
pub(crate) const EFAULT: Errno = 14;
pub(crate) const EINVAL: Errno = 22;
pub(crate) const EPIPE: Errno = 32;
pub(crate) const ENOPROTOOPT: Errno = 92;
pub(crate) const EPROTONOSUPPORT: Errno = 93;
pub(crate) const EOPNOTSUPP: Errno = 95;
pub(crate) const EAFNOSUPPORT: Errno = 97;
pub(crate) const EADDRINUSE: Errno = 98;
pub(crate) const EADDRNOTAVAIL: Errno = 99;
pub(crate) const ECONNABORTED: Errno = 103;
pub(crate) const ECONNRESET: Errno = 104;
pub(crate) const EISCONN: Errno = 106;
pub(crate) const ENOTCONN: Errno = 107;
pub(crate) const ETIMEDOUT: Errno = 110;
pub(crate) const ECONNREFUSED: Errno = 111;
pub(crate) const EALREADY: Errno = 114;
pub(crate) const EINPROGRESS: Errno = 115;

pub(crate) const AF_INET: i32 = 2;
pub(crate) const AF_INET6: i32 = 10;
pub(crate) const SOCK_STREAM: i32 = 1;
pub(crate) const SOCK_NONBLOCK: i32 = 0o4000;
pub(crate) const SOCK_CLOEXEC: i32 = 0o2000000;
pub(crate) const IPPROTO_TCP: i32 = 6;
pub(crate) const O_NONBLOCK: i32 = 0o4000;
pub(crate) const O_RDWR: i32 = 2;
pub(crate) const F_GETFL: i32 = 3;
pub(crate) const F_SETFL: i32 = 4;
pub(crate) const MSG_PEEK: i32 = 2;
pub(crate) const MSG_DONTWAIT: i32 = 0x40;
pub(crate) const SHUT_RD: i32 = 0;
pub(crate) const SHUT_WR: i32 = 1;
pub(crate) const SHUT_RDWR: i32 = 2;
/// `FIONREAD` = `SIOCINQ`: unread bytes.
pub(crate) const FIONREAD: u64 = 0x541B;
/// `SIOCOUTQ` = `TIOCOUTQ`: bytes in the send queue, sent or not.
pub(crate) const SIOCOUTQ: u64 = 0x5411;
/// `SIOCOUTQNSD`: bytes in the send queue not yet sent.
pub(crate) const SIOCOUTQNSD: u64 = 0x894B;

pub(crate) const POLLIN: i16 = 0x1;
pub(crate) const POLLOUT: i16 = 0x4;
pub(crate) const POLLERR: i16 = 0x8;
pub(crate) const POLLHUP: i16 = 0x10;
pub(crate) const POLLNVAL: i16 = 0x20;
pub(crate) const POLLRDNORM: i16 = 0x40;
pub(crate) const POLLWRNORM: i16 = 0x100;
pub(crate) const POLLRDHUP: i16 = 0x2000;

pub(crate) const EPOLL_CTL_ADD: i32 = 1;
pub(crate) const EPOLL_CTL_DEL: i32 = 2;
pub(crate) const EPOLL_CTL_MOD: i32 = 3;
pub(crate) const EPOLLET: u32 = 1 << 31;
pub(crate) const EPOLLONESHOT: u32 = 1 << 30;
pub(crate) const ENOENT: Errno = 2;
pub(crate) const EEXIST: Errno = 17;
pub(crate) const EACCES: Errno = 13;
pub(crate) const ENETUNREACH: Errno = 101;
pub(crate) const EHOSTUNREACH: Errno = 113;

/// The errno Linux reports for a connection that failed.
pub(crate) fn of_conn_error(e: tcpcore::ConnectionError) -> Errno {
    match e {
        tcpcore::ConnectionError::Refused => ECONNREFUSED,
        tcpcore::ConnectionError::Reset => ECONNRESET,
        tcpcore::ConnectionError::TimedOut => ETIMEDOUT,
        tcpcore::ConnectionError::Aborted => ECONNABORTED,
        tcpcore::ConnectionError::NetworkUnreachable => ENETUNREACH,
        tcpcore::ConnectionError::HostUnreachable => EHOSTUNREACH,
        tcpcore::ConnectionError::Prohibited => EACCES,
        // Linux `icmp_err_convert`: protocol unreachable (the usual case) is ENOPROTOOPT.
        tcpcore::ConnectionError::ProtocolError => ENOPROTOOPT,
    }
}

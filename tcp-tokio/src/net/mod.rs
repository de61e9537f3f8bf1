//! TCP and UDP networking types with tokio's names and paths: swap `tokio::net` for
//! `tcp_tokio::net` and the code runs on the userspace stack.
//!
//! Signatures are tokio 1.54's (the `parity_io` test compiles one list of call sites
//! against both) and semantics the kernel's. Readiness (`ready`, `readable`, `writable`, `async_io`) wakes every task
//! waiting on a stream, as tokio does; the `poll_*` methods wake only the last caller, also
//! as tokio does.
//!
//! # Deliberately absent
//! A connection of this stack lives in the process, not in the kernel, so what hands over,
//! lends or selects a kernel socket has nothing to work on:
//! - `TcpStream::from_std`, `TcpStream::into_std`, `TryFrom<std::net::TcpStream>`, the
//!   same three on `TcpListener`, and `TcpSocket::from_std_stream`: a `std::net` socket is
//!   a kernel file descriptor whose connection state is the kernel's; it cannot move into
//!   or out of this stack.
//! - `AsRawFd` and `AsFd` on the streams, listeners and sockets, and `FromRawFd` and
//!   `IntoRawFd` on `TcpSocket` (on Windows, the `RawSocket` equivalents): there is no
//!   descriptor to lend, and none to poll; readiness comes from the methods above.
//! - `TcpSocket::bind_device` and `TcpSocket::device` (`SO_BINDTODEVICE`): a
//!   [`Stack`](crate::Stack) has exactly one [`Device`](crate::Device), so the interface is
//!   chosen by the stack a socket is made on.
//!
//! `UdpSocket`, the Unix-domain sockets and `lookup_host` are not TCP and are not provided:
//! use tokio's.

mod addr;
mod listener;
mod options;
mod ready;
mod socket;
mod stream;
pub mod tcp;
pub(crate) mod udp;

pub(crate) use addr::to_addrs;
pub use addr::ToSocketAddrs;
pub use listener::TcpListener;
pub use options::TcpKeepalive;
pub use socket::TcpSocket;
pub(crate) use stream::StreamInner;
pub use stream::TcpStream;
pub use udp::UdpSocket;

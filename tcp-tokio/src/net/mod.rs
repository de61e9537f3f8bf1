//! TCP and UDP networking types with tokio's names and paths: swap `tokio::net` for
//! `tcp_tokio::net` and the code runs on the userspace stack.

mod addr;
mod listener;
mod socket;
mod stream;
pub mod tcp;
pub(crate) mod udp;

pub(crate) use addr::to_addrs;
pub use addr::ToSocketAddrs;
pub use listener::TcpListener;
pub use socket::TcpSocket;
pub(crate) use stream::StreamInner;
pub use stream::TcpStream;
pub use udp::UdpSocket;

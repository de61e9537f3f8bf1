//! A Linux TUN interface as a [`tcp_tokio::Device`]: the kernel on one side of a point-to-point
//! link, the userspace stack on the other.
//!
//! [`Tun::builder`] opens `/dev/net/tun` (`IFF_TUN | IFF_NO_PI`), gives the kernel side of
//! the interface an address, sets the MTU and brings the link up. The stack then takes
//! another address of that subnet:
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! use tcp_tokio::Stack;
//! use tcp_tun::Tun;
//!
//! let tun = Tun::builder()
//!     .name("tcptun0")
//!     .kernel_address("10.77.0.1".parse().unwrap(), 24)
//!     .mtu(1500)
//!     .build()?;
//! let stack = Stack::builder().address("10.77.0.2".parse().unwrap()).build(tun)?;
//! let listener = stack.bind("10.77.0.2:8080").await?;
//! // `curl http://10.77.0.2:8080/` from the host now reaches `listener`.
//! # drop(listener); Ok(()) }
//! ```
//!
//! An interface that someone else opened and configured (a VPN service on Android, a parent
//! process) is taken over with [`Tun::from_fd`].
//!
//! # Offloads
//! With [`TunBuilder::offload`] the device is opened with `IFF_VNET_HDR` and
//! `TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)`: the kernel then hands over TCP
//! super-segments of up to 64 KiB (one read instead of ~45) with their checksum left for us
//! to complete, and the device hands them to the stack whole; on send, runs of full-sized
//! segments of one connection that the stack emits back to back are coalesced into one
//! super-segment with `gso_size` = their payload length, which the kernel takes in one write
//! (see [`Tun`]). The offload mask is always set explicitly (0 without offloads), because it
//! survives on a persistent device.
//!
//! # Threaded NAPI
//! Without offloads the device is created with `IFF_NAPI` and its NAPI switched to threaded
//! mode ([`TunBuilder::threaded_napi`]): the kernel's receive path for the packets the stack
//! writes (IP, TCP, waking the reader) then runs in a kernel thread of its own, in batches
//! with GRO, instead of inside each `write(2)` on the stack's thread.
//!
//! All `unsafe` code of the workspace's I/O lives in this crate, each block with its SAFETY
//! argument.

#[cfg(target_os = "linux")]
mod sys;
#[cfg(target_os = "linux")]
mod tun;
#[cfg(target_os = "linux")]
mod vnet;

#[cfg(target_os = "linux")]
pub use tun::{Tun, TunBuilder, TunStats, TunStatsHandle};

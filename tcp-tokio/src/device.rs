//! The link under a [`Stack`](crate::Stack): anything that moves whole IP packets.

use std::io::{self, IoSlice, IoSliceMut};
use std::task::{Context, Poll};

/// A network interface that receives and sends whole IP packets (IPv4 or IPv6, no link-layer
/// header), in batches, into and out of the caller's buffers.
///
/// The trait is poll-based so that a TUN file descriptor wrapped in
/// [`tokio::io::unix::AsyncFd`](https://docs.rs/tokio/latest/tokio/io/unix/struct.AsyncFd.html)
/// can implement it directly; [`MemLink`](crate::MemLink) is the in-memory implementation.
/// One driver task owns the device and is its only caller, so methods take `&mut self`.
///
/// # Contract
/// - [`Device::poll_recv`] fills `bufs[0..n]` with `n ≥ 1` packets, packet `i` being
///   `bufs[i][..lens[i]]`, and returns `Ready(Ok(n))`; with nothing to read it registers
///   `cx`'s waker and returns `Pending`. A packet larger than its buffer is dropped by the
///   device.
/// - [`Device::poll_send`] takes packets from the front of `packets` and returns how many it
///   took (`≥ 1` unless `packets` is empty). A device that cannot take any now registers the
///   waker and returns `Pending`; a device modelling a NIC ring may instead drop packets when
///   its queue is full and still report them as taken, as a real NIC does.
/// - Errors are reported once and are not fatal: the driver logs them and keeps polling.
pub trait Device: Send + 'static {
    /// Receive up to `bufs.len()` packets. See the trait documentation.
    ///
    /// # Errors
    /// Any I/O error of the underlying interface.
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        lens: &mut [usize],
    ) -> Poll<io::Result<usize>>;

    /// Send packets from the front of `packets`; returns how many were taken.
    ///
    /// # Errors
    /// Any I/O error of the underlying interface; the packets are then considered lost.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        packets: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;

    /// The largest IP packet the link carries (bytes, IP header included). The stack derives
    /// its MSS from it.
    fn mtu(&self) -> usize;

    /// What the device can offload. The default is nothing.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
}

/// Offloads a [`Device`] supports, for a later GSO/GRO-aware driver. Today's driver reads
/// only [`Capabilities::max_batch`]; the other fields describe what a TUN with `IFF_VNET_HDR`
/// offers so that both sides of the trait can grow without breaking each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Most packets worth passing in one `poll_recv`/`poll_send` call (the driver caps its
    /// own batch at this). Default 32.
    pub max_batch: usize,
    /// Largest TCP super-segment the device splits into MTU-sized packets on send
    /// (generic segmentation offload, TSO4/TSO6 on a TUN); `None` when it cannot.
    pub gso_max_size: Option<usize>,
    /// The device may hand over coalesced super-segments larger than the MTU on receive
    /// (generic receive offload); receive buffers must then hold 64 KiB.
    pub gro: bool,
    /// The device verifies TCP/IP checksums on receive (the stack still checks today).
    pub rx_checksum: bool,
    /// The device fills in TCP checksums on send (the stack still computes them today).
    pub tx_checksum: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            max_batch: 32,
            gso_max_size: None,
            gro: false,
            rx_checksum: false,
            tx_checksum: false,
        }
    }
}

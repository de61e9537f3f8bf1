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

    /// Send packets from the front of `packets`; returns how many were taken. `meta[i]`
    /// describes `packets[i]` (the two slices have the same length): a GSO super-segment to
    /// cut up, a TCP checksum to complete. Only a device whose [`Capabilities`] offer those
    /// offloads gets such packets.
    ///
    /// # Errors
    /// Any I/O error of the underlying interface; the packets are then considered lost.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        packets: &[IoSlice<'_>],
        meta: &[TxMeta],
    ) -> Poll<io::Result<usize>>;

    /// The largest IP packet the link carries (bytes, IP header included). The stack derives
    /// its MSS from it.
    fn mtu(&self) -> usize;

    /// What the device can offload. The default is nothing.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
}

/// What a [`Device`] is told about an outgoing packet besides its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TxMeta {
    /// The packet is a TCP super-segment to be cut into segments of this many payload bytes,
    /// each with a copy of the headers (sequence numbers, lengths and checksums adjusted; PSH
    /// and FIN on the last only), as Linux's GSO does. Only with
    /// [`Capabilities::gso_max_size`].
    pub gso_size: Option<u16>,
    /// The TCP checksum field holds only the pseudo-header sum: the device adds the TCP header
    /// and payload and stores the complement (Linux `CHECKSUM_PARTIAL`). Only with
    /// [`Capabilities::tx_checksum`].
    pub csum_partial: bool,
}

impl TxMeta {
    /// The metadata of a packet the stack wrote.
    pub(crate) fn of(t: &tcpcore::Transmit) -> Self {
        TxMeta { gso_size: t.gso_size, csum_partial: t.csum_partial }
    }
}

/// Offloads a [`Device`] supports; the driver configures the stack from them when it is
/// built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Most packets worth passing in one `poll_recv`/`poll_send` call (the driver caps its
    /// own batch at this). Default 32.
    pub max_batch: usize,
    /// Largest TCP super-segment (whole IP packet, at most 65535 bytes) the device cuts into
    /// MTU-sized packets on send (generic segmentation offload, TSO4/TSO6 on a TUN); `None`
    /// when it cannot. The stack then sends bulk data in super-segments.
    pub gso_max_size: Option<usize>,
    /// The device may hand over coalesced super-segments larger than the MTU on receive
    /// (generic receive offload); receive buffers then hold 64 KiB.
    pub gro: bool,
    /// The device vouches for the TCP checksums of what it hands over (it verified them, or
    /// the packets never left memory); the stack does not check them.
    pub rx_checksum: bool,
    /// The device completes TCP checksums on send ([`TxMeta::csum_partial`]); the stack
    /// leaves them partial.
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

impl Capabilities {
    /// The engine's view of these offloads.
    pub(crate) fn offload(&self) -> tcpcore::Offload {
        tcpcore::Offload {
            gso_max_size: self.gso_max_size.unwrap_or(0).min(65_535),
            tx_checksum: self.tx_checksum,
            rx_checksum: self.rx_checksum,
        }
    }
}

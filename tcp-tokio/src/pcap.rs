//! [`PcapTap`]: a [`Device`] wrapper that records a live stack's packets as a pcap file.

use std::io::{self, IoSlice, IoSliceMut, Write};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use tcpcore::pcap::{captured_len, file_header, record_header};

use crate::device::{Capabilities, Device, TxMeta};

/// Records every packet a [`Device`] receives and sends to `out` as a classic pcap file
/// (`LINKTYPE_RAW`: bare IPv4/IPv6 packets) that Wireshark and tcpdump read, while passing
/// everything through unchanged.
///
/// Timestamps are wall-clock time at the tap's creation plus [`tokio::time`] elapsed since,
/// so a capture made on a paused test clock shows virtual time. The driver task writes each
/// record as the packet passes, so give it a buffered or in-memory writer (a
/// [`std::io::BufWriter`] around a file); it is flushed when the stack ends. A write error
/// is logged once and ends the capture, not the stack.
///
/// With a device that offers segmentation offload ([`Capabilities::gso_max_size`]) the
/// capture shows the super-segments the stack hands over, and with checksum offload their
/// checksums are partial, as tcpdump on a Linux host with TSO shows them.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// use std::fs::File;
/// use std::io::BufWriter;
/// use tcp_tokio::{MemLink, PcapTap, Stack};
///
/// let (a, _b) = MemLink::pair();
/// let path = std::env::temp_dir().join("tcp-tokio-doc.pcap");
/// let tap = PcapTap::new(a, BufWriter::new(File::create(&path)?))?;
/// let stack = Stack::builder().address("10.0.0.1".parse().unwrap()).build(tap)?;
/// # drop(stack); let _ = std::fs::remove_file(path); Ok(()) }
/// ```
#[derive(Debug)]
pub struct PcapTap<D, W: Write> {
    device: D,
    /// `None` once a write failed.
    out: Option<W>,
    /// Microseconds since the Unix epoch at `start`.
    epoch_micros: u64,
    start: tokio::time::Instant,
}

impl<D: Device, W: Write + Send + 'static> PcapTap<D, W> {
    /// Wrap `device`, writing the pcap file header to `out` at once.
    ///
    /// # Errors
    /// The error of writing the file header.
    pub fn new(device: D, mut out: W) -> io::Result<Self> {
        out.write_all(&file_header())?;
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Ok(PcapTap {
            device,
            out: Some(out),
            epoch_micros: u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX),
            start: tokio::time::Instant::now(),
        })
    }

    /// Append one packet's record; on error, log it and stop capturing.
    fn record(&mut self, packet: &[u8]) {
        let Some(out) = self.out.as_mut() else { return };
        let elapsed = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let header = record_header(self.epoch_micros.saturating_add(elapsed), packet.len());
        let written = out
            .write_all(&header)
            .and_then(|()| out.write_all(&packet[..captured_len(packet.len())]));
        if let Err(e) = written {
            tracing::warn!(error = %e, "pcap tap: write failed, capture stopped");
            self.out = None;
        }
    }
}

impl<D: Device, W: Write + Send + 'static> Device for PcapTap<D, W> {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        lens: &mut [usize],
    ) -> Poll<io::Result<usize>> {
        let r = self.device.poll_recv(cx, bufs, lens);
        if let Poll::Ready(Ok(n)) = r {
            for (buf, &len) in bufs.iter().zip(lens.iter()).take(n) {
                self.record(&buf[..len.min(buf.len())]);
            }
        }
        r
    }

    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        packets: &[IoSlice<'_>],
        meta: &[TxMeta],
    ) -> Poll<io::Result<usize>> {
        let r = self.device.poll_send(cx, packets, meta);
        if let Poll::Ready(Ok(n)) = r {
            for p in packets.iter().take(n) {
                self.record(p);
            }
        }
        r
    }

    fn mtu(&self) -> usize {
        self.device.mtu()
    }

    fn capabilities(&self) -> Capabilities {
        self.device.capabilities()
    }
}

impl<D, W: Write> Drop for PcapTap<D, W> {
    fn drop(&mut self) {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = out.flush() {
                tracing::warn!(error = %e, "pcap tap: flush failed");
            }
        }
    }
}

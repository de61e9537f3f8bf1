//! What a [`Stack`] shows of itself: the connection listing (the `ss -ti` view), per-state
//! counts (the `netstat` view) and stack-wide totals of every packet in and out.

use std::net::SocketAddr;
use std::sync::Mutex;

use tcpcore::{Connection, EndpointStats, State, StateCounts, TcpInfo};

use crate::lock;
use crate::stack::Stack;

/// One connection of a [`Stack`], as [`Stack::connections`] lists it (a line of `ss -ti`).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ConnectionEntry {
    /// The stack's end.
    pub local: SocketAddr,
    /// The peer's end.
    pub remote: SocketAddr,
    /// The connection's state.
    pub state: State,
    /// Bytes written and not yet acknowledged by the peer (`ss`'s Send-Q).
    pub send_queue: usize,
    /// Bytes received and not yet read by the application (`ss`'s Recv-Q).
    pub recv_queue: usize,
    /// RTT, windows and counters (`ss -i`, Linux `TCP_INFO`).
    pub info: TcpInfo,
}

impl ConnectionEntry {
    fn of(conn: &Connection) -> Self {
        let seq = conn.seq_vars();
        ConnectionEntry {
            local: conn.local_addr(),
            remote: conn.remote_addr(),
            state: conn.state(),
            send_queue: seq.send_buffered,
            recv_queue: seq.recv_buffered,
            info: conn.info(),
        }
    }
}

/// Stack-wide counters: every IP packet the driver moved, and what was lost where, next to
/// the endpoint's counters ([`Stack::totals`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct StackStats {
    /// IP packets received: from the device (a receive-offload super-segment counts once)
    /// and over loopback.
    pub packets_in: u64,
    /// Bytes of those packets, IP headers included.
    pub bytes_in: u64,
    /// IP packets sent, to the device and over loopback; each segment a device cuts from a
    /// GSO super-segment counts.
    pub packets_out: u64,
    /// Bytes of those packets on the wire, IP headers included.
    pub bytes_out: u64,
    /// Packets sent to one of the stack's own addresses (counted in and out too).
    pub loopback_packets: u64,
    /// Segments retransmitted, by every connection (live or gone).
    pub retransmits: u64,
    /// Packets received for an address that is not the stack's (dropped).
    pub drops_not_local: u64,
    /// Segments connections dropped (unacceptable, bad ACK, PAWS, …), live or gone.
    pub drops_connection: u64,
    /// Packets the endpoint dropped before any connection (by reason in `endpoint`).
    pub drops_endpoint: u64,
    /// Packets lost to device send errors.
    pub drops_send_error: u64,
    /// Device receive errors.
    pub recv_errors: u64,
    /// Device send errors (each may lose several packets).
    pub send_errors: u64,
    /// The endpoint's counters (demultiplexing, listeners, SYN cookies, TIME-WAIT, ICMP).
    pub endpoint: EndpointStats,
}

/// The driver's own counts (plain numbers: only it writes them).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    pub(crate) packets_in: u64,
    pub(crate) bytes_in: u64,
    pub(crate) packets_out: u64,
    pub(crate) bytes_out: u64,
    pub(crate) loopback: u64,
    pub(crate) not_local: u64,
    pub(crate) recv_errors: u64,
    pub(crate) send_errors: u64,
    pub(crate) send_lost: u64,
    /// Retransmissions and drops of connections that are gone.
    pub(crate) closed_retransmits: u64,
    pub(crate) closed_drops: u64,
}

impl Counts {
    /// One packet of `len` bytes in.
    pub(crate) fn received(&mut self, len: usize) {
        self.packets_in += 1;
        self.bytes_in += len as u64;
    }

    /// `segments` packets of `bytes` in all out.
    pub(crate) fn sent(&mut self, segments: u64, bytes: u64) {
        self.packets_out += segments;
        self.bytes_out += bytes;
    }

    /// A connection leaves the table: keep its counters.
    pub(crate) fn connection_closed(&mut self, conn: &Connection) {
        let info = conn.info();
        self.closed_retransmits += info.retransmits;
        self.closed_drops += info.drops;
    }
}

/// [`Counts`] as the driver last published them, for [`Stack::totals`].
#[derive(Debug, Default)]
pub(crate) struct Totals(Mutex<Counts>);

impl Totals {
    /// Publish the driver's counts (once per pass, not per packet).
    pub(crate) fn publish(&self, c: &Counts) {
        *lock(&self.0) = *c;
    }

    fn load(&self) -> Counts {
        *lock(&self.0)
    }
}

/// The packets a device puts on the wire for one packet the stack wrote, and their bytes:
/// one, or for a GSO super-segment one per `gso_size` bytes of payload, each with a copy of
/// the headers.
pub(crate) fn wire_segments(packet: &[u8], gso_size: Option<u16>) -> (u64, u64) {
    let len = packet.len() as u64;
    let (Some(mss), Some(headers)) = (gso_size.filter(|&g| g > 0), headers_len(packet)) else {
        return (1, len);
    };
    let segments = len.saturating_sub(headers).div_ceil(u64::from(mss)).max(1);
    (segments, len + (segments - 1) * headers)
}

/// The IP and TCP header bytes of a packet the stack wrote.
fn headers_len(packet: &[u8]) -> Option<u64> {
    let ip = match packet.first()? >> 4 {
        4 => usize::from(packet[0] & 0x0f) * 4,
        6 => 40,
        _ => return None,
    };
    let tcp = usize::from(packet.get(ip + 12)? >> 4) * 4;
    Some((ip + tcp) as u64)
}

impl Stack {
    /// Every connection the stack drives, with its 4-tuple, state, queues and
    /// [`TcpInfo`]: the `ss -ti` view. Half-open connections of listeners (SYN-RECEIVED) and
    /// TIME-WAIT entries are kept compactly by the endpoint, not as connections: they are
    /// counted by [`Stack::state_counts`] but not listed.
    pub fn connections(&self) -> Vec<ConnectionEntry> {
        let st = lock(&self.shared.ep);
        let mut out = Vec::with_capacity(st.live);
        for cell in st.conns.iter().flatten() {
            let inner = lock(&cell.inner);
            if !inner.removed {
                out.push(ConnectionEntry::of(&inner.conn));
            }
        }
        out
    }

    /// Connections per state, the `netstat` view: those [`Stack::connections`] lists plus
    /// the endpoint's SYN-RECEIVED (half-open) and TIME-WAIT entries. A server that never
    /// closes what its peers closed shows as a growing CLOSE-WAIT count (CL-11).
    pub fn state_counts(&self) -> StateCounts {
        let st = lock(&self.shared.ep);
        let mut counts = st.ep.state_counts(std::iter::empty());
        for cell in st.conns.iter().flatten() {
            let inner = lock(&cell.inner);
            if !inner.removed {
                counts.add(inner.conn.state());
            }
        }
        counts
    }

    /// Stack-wide totals: every packet and byte in and out, retransmissions, and drops by
    /// where they happened, with the endpoint's counters ([`Stack::stats`]) inside.
    pub fn totals(&self) -> StackStats {
        let st = lock(&self.shared.ep);
        let c = self.shared.totals.load();
        let (mut retransmits, mut drops) = (c.closed_retransmits, c.closed_drops);
        for cell in st.conns.iter().flatten() {
            let inner = lock(&cell.inner);
            if !inner.removed {
                let info = inner.conn.info();
                retransmits += info.retransmits;
                drops += info.drops;
            }
        }
        let endpoint = *st.ep.stats();
        StackStats {
            packets_in: c.packets_in,
            bytes_in: c.bytes_in,
            packets_out: c.packets_out,
            bytes_out: c.bytes_out,
            loopback_packets: c.loopback,
            retransmits,
            drops_not_local: c.not_local,
            drops_connection: drops,
            drops_endpoint: endpoint.total_drops(),
            drops_send_error: c.send_lost,
            recv_errors: c.recv_errors,
            send_errors: c.send_errors,
            endpoint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gso_super_segment_counts_each_wire_segment() {
        // IPv4 (20-byte header) + TCP with 12 bytes of options (32) + 3000 bytes.
        let mut p = vec![0u8; 52 + 3000];
        p[0] = 0x45;
        p[20 + 12] = 8 << 4;
        assert_eq!(wire_segments(&p, None), (1, 3052));
        assert_eq!(wire_segments(&p, Some(1448)), (3, 3052 + 2 * 52));
        assert_eq!(wire_segments(&p, Some(1500)), (2, 3052 + 52));
    }
}

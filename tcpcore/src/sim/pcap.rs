//! Writing captured traffic as a classic pcap file (the libpcap format Wireshark and tcpdump
//! read), with `LINKTYPE_RAW` so each record is a bare IPv4 or IPv6 packet and timestamps
//! taken from virtual time.
//!
//! Layout (all fields little-endian): a 24-byte global header (magic, version 2.4, zone 0,
//! sigfigs 0, snaplen, link type), then per packet a 16-byte record header (seconds,
//! microseconds, captured length, original length) followed by the captured bytes.

use crate::Instant;

/// The pcap magic number for microsecond timestamps, as written (little-endian) at offset 0.
pub const PCAP_MAGIC: u32 = 0xa1b2_c3d4;

/// `LINKTYPE_RAW`: each record is a raw IP packet, version given by its first nibble.
pub const LINKTYPE_RAW: u32 = 101;

/// The largest number of bytes recorded per packet.
const SNAPLEN: u32 = 65_535;

/// A new capture: the global header.
pub(crate) fn start() -> Vec<u8> {
    let mut out = Vec::with_capacity(1 << 16);
    out.extend_from_slice(&PCAP_MAGIC.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&SNAPLEN.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
    out
}

/// Append one packet, seen at `at`.
pub(crate) fn record(out: &mut Vec<u8>, at: Instant, packet: &[u8]) {
    let micros = at.as_micros();
    let secs = u32::try_from(micros / 1_000_000).unwrap_or(u32::MAX);
    let usecs = (micros % 1_000_000) as u32;
    let orig = u32::try_from(packet.len()).unwrap_or(u32::MAX);
    let incl = orig.min(SNAPLEN);
    out.extend_from_slice(&secs.to_le_bytes());
    out.extend_from_slice(&usecs.to_le_bytes());
    out.extend_from_slice(&incl.to_le_bytes());
    out.extend_from_slice(&orig.to_le_bytes());
    out.extend_from_slice(&packet[..incl as usize]);
}

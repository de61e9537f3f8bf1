//! The classic pcap file format (libpcap's, which Wireshark and tcpdump read) with
//! `LINKTYPE_RAW`, so each record is a bare IPv4 or IPv6 packet: the simulator's link
//! captures and tcp-tokio's pcap tap write it.
//!
//! Layout (all fields little-endian): a 24-byte file header (magic, version 2.4, zone 0,
//! sigfigs 0, snaplen, link type), then per packet a 16-byte record header (seconds,
//! microseconds, captured length, original length) followed by the captured bytes. Only
//! byte arrays here: the caller writes them where it likes.

/// The pcap magic number for microsecond timestamps, as written (little-endian) at offset 0.
pub const PCAP_MAGIC: u32 = 0xa1b2_c3d4;

/// `LINKTYPE_RAW`: each record is a raw IP packet, version given by its first nibble.
pub const LINKTYPE_RAW: u32 = 101;

/// The largest number of bytes recorded per packet.
pub const SNAPLEN: usize = 65_535;

/// The 24-byte file header that starts a capture.
pub fn file_header() -> [u8; 24] {
    let mut h = [0; 24];
    h[0..4].copy_from_slice(&PCAP_MAGIC.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // Zone and sigfigs: 0.
    h[16..20].copy_from_slice(&(SNAPLEN as u32).to_le_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_RAW.to_le_bytes());
    h
}

/// The 16-byte header of the record of a packet of `len` bytes seen `micros` microseconds
/// after the Unix epoch (or any epoch); the record's data is the packet's first
/// [`captured_len`]`(len)` bytes.
pub fn record_header(micros: u64, len: usize) -> [u8; 16] {
    let secs = u32::try_from(micros / 1_000_000).unwrap_or(u32::MAX);
    let usecs = (micros % 1_000_000) as u32;
    let orig = u32::try_from(len).unwrap_or(u32::MAX);
    let mut h = [0; 16];
    h[0..4].copy_from_slice(&secs.to_le_bytes());
    h[4..8].copy_from_slice(&usecs.to_le_bytes());
    h[8..12].copy_from_slice(&(captured_len(len) as u32).to_le_bytes());
    h[12..16].copy_from_slice(&orig.to_le_bytes());
    h
}

/// How many bytes of a packet of `len` bytes a record holds.
pub fn captured_len(len: usize) -> usize {
    len.min(SNAPLEN)
}

/// A new capture in memory: the file header.
#[cfg(feature = "sim")]
pub(crate) fn start() -> Vec<u8> {
    let mut out = Vec::with_capacity(1 << 16);
    out.extend_from_slice(&file_header());
    out
}

/// Append one packet, seen at `at` (virtual time), to a capture in memory.
#[cfg(feature = "sim")]
pub(crate) fn record(out: &mut Vec<u8>, at: crate::Instant, packet: &[u8]) {
    out.extend_from_slice(&record_header(at.as_micros(), packet.len()));
    out.extend_from_slice(&packet[..captured_len(packet.len())]);
}

//! TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018).

use super::SeqNum;

/// One SACK block: the half-open range `[left, right)` of received sequence space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SackBlock {
    /// First sequence number of the block.
    pub left: SeqNum,
    /// Sequence number just past the block.
    pub right: SeqNum,
}

/// The timestamps option (RFC 7323 §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timestamps {
    /// TSval: the sender's timestamp clock.
    pub tsval: u32,
    /// TSecr: the echoed TSval of the peer.
    pub tsecr: u32,
}

/// The options of one segment that the engine understands. Unknown options are skipped by
/// their length when parsing and never emitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2), only meaningful on SYNs.
    pub mss: Option<u16>,
    /// Window scale shift (kind 3), clamped to 14 on parse (RFC 7323 §2.3).
    pub window_scale: Option<u8>,
    /// SACK-permitted (kind 4).
    pub sack_permitted: bool,
    /// Timestamps (kind 8).
    pub timestamps: Option<Timestamps>,
    /// SACK blocks (kind 5): the first `sack_count` entries are valid.
    pub sack_blocks: [SackBlock; 4],
    /// How many of `sack_blocks` are valid (0..=4).
    pub sack_count: u8,
}

impl TcpOptions {
    /// The valid SACK blocks.
    pub fn sacks(&self) -> &[SackBlock] {
        &self.sack_blocks[..usize::from(self.sack_count.min(4))]
    }

    /// Bytes these options take on the wire, padded to a multiple of 4.
    pub fn wire_len(&self) -> usize {
        todo!("wire helper")
    }

    /// Parse the option bytes of a TCP header (the bytes after the fixed 20).
    pub fn parse(bytes: &[u8]) -> Result<TcpOptions, super::ParseError> {
        let _ = bytes;
        todo!("wire helper")
    }

    /// Write the options into `buf` (which is exactly `self.wire_len()` long), padding with NOP
    /// / EOL. Layout follows Linux so traces look familiar.
    pub fn emit(&self, buf: &mut [u8]) {
        let _ = buf;
        todo!("wire helper")
    }
}

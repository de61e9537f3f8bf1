//! The TCP header (RFC 9293 §3.1).

use super::{SeqNum, TcpOptions};

/// TCP control flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN-Echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// True when every flag of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the flags of `other` added.
    pub const fn with(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }

    /// SYN is set.
    pub const fn syn(self) -> bool {
        self.0 & 0x02 != 0
    }
    /// ACK is set.
    pub const fn ack(self) -> bool {
        self.0 & 0x10 != 0
    }
    /// RST is set.
    pub const fn rst(self) -> bool {
        self.0 & 0x04 != 0
    }
    /// FIN is set.
    pub const fn fin(self) -> bool {
        self.0 & 0x01 != 0
    }
    /// PSH is set.
    pub const fn psh(self) -> bool {
        self.0 & 0x08 != 0
    }
    /// URG is set.
    pub const fn urg(self) -> bool {
        self.0 & 0x20 != 0
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        self.with(rhs)
    }
}

/// A TCP header in plain form. The payload travels beside it (see [`super::Segment`] and
/// [`super::emit`]) so the sender can emit straight out of its ring buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number of the first byte (or of the SYN/FIN).
    pub seq: SeqNum,
    /// Acknowledgment number; meaningful only with [`TcpFlags::ACK`].
    pub ack: SeqNum,
    /// Control flags.
    pub flags: TcpFlags,
    /// Window field as on the wire (unscaled).
    pub window: u16,
    /// Urgent pointer as on the wire.
    pub urgent: u16,
    /// Options.
    pub options: TcpOptions,
}

impl TcpRepr {
    /// Header length on the wire: 20 plus the padded options.
    pub fn header_len(&self) -> usize {
        20 + self.options.wire_len()
    }

    /// Sequence space this segment occupies with `payload_len` bytes of data (SYN and FIN
    /// count one each; RFC 9293 §3.4).
    pub fn seq_len(&self, payload_len: usize) -> u32 {
        payload_len as u32 + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }
}

//! The TCP header (RFC 9293 §3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! |                        Sequence Number                        |
//! |                    Acknowledgment Number                      |
//! |  Data |       |C|E|U|A|P|R|S|F|                               |
//! | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//! |           Checksum            |         Urgent Pointer        |
//! |                           [Options]                           |
//! ```

use std::net::IpAddr;

use super::{checksum, EmitError, ParseError, SeqNum, TcpOptions};

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;
/// Longest TCP header: data offset 15.
pub const MAX_HEADER_LEN: usize = 60;
/// Offset of the checksum field in the header.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;

mod field {
    pub(super) const SRC_PORT: usize = 0;
    pub(super) const DST_PORT: usize = 2;
    pub(super) const SEQ: usize = 4;
    pub(super) const ACK: usize = 8;
    pub(super) const DATA_OFF: usize = 12;
    pub(super) const FLAGS: usize = 13;
    pub(super) const WINDOW: usize = 14;
    pub(super) const CHECKSUM: usize = 16;
    pub(super) const URGENT: usize = 18;
}

/// A read-only view of a TCP segment (header and payload) whose lengths have been validated.
///
/// The only constructor, [`TcpPacket::new_checked`], guarantees that the buffer holds the
/// whole header announced by the data offset, so no accessor can panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    /// Invariant: `HEADER_LEN <= header_len() <= buffer.len()`.
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wrap `buffer` (the whole segment: the IP payload), checking that it holds the fixed
    /// header ([`ParseError::Truncated`]) and that the data offset is at least 5 and within
    /// the buffer ([`ParseError::BadTcpHeaderLen`]).
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        let Some(hdr) = b.get(..HEADER_LEN) else {
            return Err(ParseError::Truncated);
        };
        let off = usize::from(hdr[field::DATA_OFF] >> 4) * 4;
        if off < HEADER_LEN || off > b.len() {
            return Err(ParseError::BadTcpHeaderLen);
        }
        Ok(TcpPacket { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn u16_at(&self, at: usize) -> u16 {
        // Every field offset `at` has `at + 1 < HEADER_LEN <= buffer.len()`.
        u16::from_be_bytes([self.b()[at], self.b()[at + 1]])
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = self.b();
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.u16_at(field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.u16_at(field::DST_PORT)
    }

    /// Sequence number.
    pub fn seq(&self) -> SeqNum {
        SeqNum(self.u32_at(field::SEQ))
    }

    /// Acknowledgment number.
    pub fn ack(&self) -> SeqNum {
        SeqNum(self.u32_at(field::ACK))
    }

    /// Header length in bytes (data offset × 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::DATA_OFF] >> 4) * 4
    }

    /// The eight control bits of byte 13 (CWR, ECE, URG, ACK, PSH, RST, SYN, FIN).
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.b()[field::FLAGS])
    }

    /// Window field (unscaled).
    pub fn window(&self) -> u16 {
        self.u16_at(field::WINDOW)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Urgent pointer field.
    pub fn urgent(&self) -> u16 {
        self.u16_at(field::URGENT)
    }

    /// The option bytes: between the fixed header and the data offset.
    pub fn options(&self) -> &[u8] {
        self.b().get(HEADER_LEN..self.header_len()).unwrap_or_default()
    }

    /// The payload: everything after the header.
    pub fn payload(&self) -> &[u8] {
        self.b().get(self.header_len()..).unwrap_or_default()
    }

    /// True when the checksum over the pseudo-header of `src` and `dst` and the whole segment
    /// verifies (RFC 9293 §3.1).
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let b = self.b();
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        let acc = checksum::pseudo_header(src, dst, super::ipv4::PROTO_TCP, len);
        checksum::is_valid(checksum::sum(b, acc))
    }
}

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

    /// Parse the header of a checked segment: options first ([`ParseError::BadOption`]),
    /// then the flags ([`ParseError::BadFlags`]). The checksum is not verified here; see
    /// [`TcpPacket::verify_checksum`].
    ///
    /// Rejected flag combinations: SYN with FIN, SYN with RST, and none of FIN, SYN, RST,
    /// PSH, ACK, URG (a "null scan"). RFC 9293 §3.10.7 would process some of these in some
    /// states, but no legitimate stack sends them and they are classic probes.
    #[inline]
    pub fn parse(packet: &TcpPacket<&[u8]>) -> Result<TcpRepr, ParseError> {
        let mut repr = TcpRepr::default();
        repr.parse_from(packet)?;
        Ok(repr)
    }

    /// [`TcpRepr::parse`] into `self`, which holds the defaults: a [`super::Segment`] is
    /// parsed in place rather than built beside it and copied (issue 12).
    #[inline]
    pub(crate) fn parse_from(&mut self, packet: &TcpPacket<&[u8]>) -> Result<(), ParseError> {
        // The fixed header as one array (`new_checked` guarantees it), so that no field read
        // below is bounds-checked; the options are parsed into the result in place.
        let Some(h) = packet.b().first_chunk::<HEADER_LEN>() else {
            return Err(ParseError::Truncated);
        };
        let be16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
        let be32 = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        self.src_port = be16(field::SRC_PORT);
        self.dst_port = be16(field::DST_PORT);
        self.seq = SeqNum(be32(field::SEQ));
        self.ack = SeqNum(be32(field::ACK));
        self.flags = TcpFlags(h[field::FLAGS]);
        self.window = be16(field::WINDOW);
        self.urgent = be16(field::URGENT);
        self.options.parse_into(packet.options())?;
        let flags = self.flags;
        if (flags.syn() && (flags.fin() || flags.rst())) || flags.0 & 0x3f == 0 {
            return Err(ParseError::BadFlags);
        }
        Ok(())
    }

    /// Write the header and options into the start of `buf`, with a zero checksum field (the
    /// caller fills it in once the payload is in place; see [`super::emit`]). Returns
    /// [`TcpRepr::header_len`]. The reserved bits are zero.
    ///
    /// # Errors
    ///
    /// [`EmitError::BufferTooSmall`] when `buf` is shorter than the header.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let len = self.header_len();
        let hdr = buf.get_mut(..len).ok_or(EmitError::BufferTooSmall)?;
        let (fixed, opts) = hdr.split_at_mut(HEADER_LEN);
        fixed[field::SRC_PORT..field::SRC_PORT + 2].copy_from_slice(&self.src_port.to_be_bytes());
        fixed[field::DST_PORT..field::DST_PORT + 2].copy_from_slice(&self.dst_port.to_be_bytes());
        fixed[field::SEQ..field::SEQ + 4].copy_from_slice(&self.seq.get().to_be_bytes());
        fixed[field::ACK..field::ACK + 4].copy_from_slice(&self.ack.get().to_be_bytes());
        // `len <= MAX_HEADER_LEN` because the options never exceed 40 bytes.
        fixed[field::DATA_OFF] = ((len / 4) as u8) << 4;
        fixed[field::FLAGS] = self.flags.0;
        fixed[field::WINDOW..field::WINDOW + 2].copy_from_slice(&self.window.to_be_bytes());
        fixed[field::CHECKSUM..field::CHECKSUM + 2].copy_from_slice(&[0, 0]);
        fixed[field::URGENT..field::URGENT + 2].copy_from_slice(&self.urgent.to_be_bytes());
        self.options.emit(opts);
        Ok(len)
    }
}

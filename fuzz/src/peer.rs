//! The fuzz-driven peer of the `endpoint` target: it builds segments from the live connection's
//! real 4-tuple and sequence numbers with fuzz-chosen flags, offsets, windows, options,
//! lengths and damage, remembers which of its sequence space it really sent, and checks every
//! packet the endpoint emits.

use std::net::{IpAddr, SocketAddr};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use tcpcore::wire::{self, icmp, SackBlock, SeqNum, TcpFlags, TcpOptions, TcpRepr, Timestamps};
use tcpcore::{Instant, SeqVars};

use crate::{stream_fill, stream_mismatch};

/// Salt of the peer's byte stream: the byte at sequence number `s` is `stream_byte(PEER, s)`,
/// whatever segment carries it, so retransmissions and overlaps always agree.
pub const PEER: u32 = 0x7065_6572;
/// Salt of the stream our application writes (byte `k` of the stream at `k`).
pub const OURS: u32 = 0x6f75_7273;

/// Control flags of a segment: the common combinations, or any byte.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum FlagSel {
    /// ACK.
    Ack,
    /// ACK + PSH.
    AckPsh,
    /// SYN.
    Syn,
    /// SYN + ACK.
    SynAck,
    /// FIN + ACK.
    FinAck,
    /// RST.
    Rst,
    /// RST + ACK.
    RstAck,
    /// URG + ACK.
    UrgAck,
    /// Any flags, valid or not.
    Bits(u8),
}

impl FlagSel {
    fn flags(self) -> TcpFlags {
        let (a, s, f, r, u) =
            (TcpFlags::ACK, TcpFlags::SYN, TcpFlags::FIN, TcpFlags::RST, TcpFlags::URG);
        match self {
            FlagSel::Ack => a,
            FlagSel::AckPsh => a | TcpFlags::PSH,
            FlagSel::Syn => s,
            FlagSel::SynAck => s | a,
            FlagSel::FinAck => f | a,
            FlagSel::Rst => r,
            FlagSel::RstAck => r | a,
            FlagSel::UrgAck => u | a,
            FlagSel::Bits(b) => TcpFlags(b),
        }
    }
}

/// Where a segment's sequence number starts, before the fuzz offset.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum SeqBase {
    /// Just past everything the peer sent so far (new data).
    Next,
    /// What the endpoint last acknowledged (RCV.NXT as seen on the wire).
    Expected,
    /// The right edge of the window the endpoint last advertised (unscaled field).
    WindowEdge,
    /// The peer's initial sequence number.
    Isn,
}

/// What a segment's acknowledgment number (or a SACK block) is relative to.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum AckBase {
    /// SND.UNA of the live connection (else the furthest sequence number seen).
    SndUna,
    /// SND.NXT of the live connection.
    SndNxt,
    /// SND.MAX of the live connection.
    SndMax,
    /// Our ISS (from the connection, else from the SYN or SYN-ACK seen).
    Iss,
    /// Just past the furthest segment the endpoint sent.
    Seen,
}

/// Damage done to a built packet before it is delivered.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Mangle {
    /// None: a well-formed packet.
    None,
    /// XOR the TCP checksum field.
    Checksum(u16),
    /// XOR one byte (index modulo the length).
    Byte(u16, u8),
    /// Cut the packet short.
    Truncate(u16),
    /// Add to the IP length field (and fix the IPv4 header checksum).
    IpLength(i16),
    /// Replace the TCP data offset nibble.
    DataOffset(u8),
}

/// One segment from the peer.
#[derive(Arbitrary, Clone, Debug)]
pub struct SegSpec {
    /// Control flags.
    pub flags: FlagSel,
    /// Sequence number: base and offset.
    pub seq: (SeqBase, i16),
    /// Acknowledgment number: base and offset.
    pub ack: (AckBase, i16),
    /// Window field (unscaled, as on the wire).
    pub window: u16,
    /// Payload length (modulo 2048).
    pub len: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// MSS option.
    pub mss: Option<u16>,
    /// Window scale option.
    pub ws: Option<u8>,
    /// SACK-permitted option.
    pub sack_perm: bool,
    /// Timestamps: offsets added to the peer's clock (TSval) and to our last TSval (TSecr).
    pub ts: Option<(i16, i16)>,
    /// SACK blocks: base, offset of the left edge, length (at most 4 used).
    pub sacks: Vec<(AckBase, i16, u16)>,
    /// Damage.
    pub mangle: Mangle,
}

/// What the peer saw of the endpoint's packets to it.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    iss: Option<SeqNum>,
    max_end: Option<SeqNum>,
    ack: Option<SeqNum>,
    window: u16,
    tsval: u32,
}

/// The fuzz peer: its address, the endpoint's address it talks to, its ISN, the parts of its
/// sequence space it really sent, and what it saw of the endpoint.
#[derive(Debug)]
pub struct Peer {
    /// The peer's address.
    pub addr: SocketAddr,
    /// The endpoint's address the peer talks to.
    pub local: SocketAddr,
    /// The peer's ISN (segment sequence numbers are offsets from it).
    pub isn: SeqNum,
    /// Sequence space sent, as merged half-open ranges of offsets from `isn`.
    sent: Vec<(i64, i64)>,
    seen: Seen,
}

/// A segment's source/destination matches `from` -> `to`.
fn is_tuple(seg: &wire::Segment<'_>, from: SocketAddr, to: SocketAddr) -> bool {
    seg.src == from.ip()
        && seg.dst == to.ip()
        && seg.tcp.src_port == from.port()
        && seg.tcp.dst_port == to.port()
}

impl Peer {
    /// A peer at `addr` talking to `local`, with ISN `isn`.
    pub fn new(addr: SocketAddr, local: SocketAddr, isn: SeqNum) -> Self {
        Peer { addr, local, isn, sent: Vec::new(), seen: Seen::default() }
    }

    fn rel(&self, s: SeqNum) -> i64 {
        i64::from(s.since(self.isn) as i32)
    }

    /// Remember that the peer sent `[seq, seq + len)`.
    fn record(&mut self, seq: SeqNum, len: u32) {
        if len == 0 {
            return;
        }
        let (mut lo, mut hi) = (self.rel(seq), self.rel(seq) + i64::from(len));
        self.sent.retain(|&(a, b)| {
            let overlaps = a <= hi && lo <= b;
            if overlaps {
                lo = lo.min(a);
                hi = hi.max(b);
            }
            !overlaps
        });
        self.sent.push((lo, hi));
    }

    /// Whether the peer sent every sequence number in `[from, to)`.
    pub fn covered(&self, from: SeqNum, to: SeqNum) -> bool {
        let (lo, hi) = (self.rel(from), self.rel(to));
        lo >= hi || self.sent.iter().any(|&(a, b)| a <= lo && hi <= b)
    }

    fn ack_base(&self, base: AckBase, v: Option<&SeqVars>) -> SeqNum {
        let seen = self.seen.max_end.or(self.seen.iss).unwrap_or_default();
        match (base, v) {
            (AckBase::SndUna, Some(v)) => v.snd_una,
            (AckBase::SndNxt, Some(v)) => v.snd_nxt,
            (AckBase::SndMax, Some(v)) => v.snd_max,
            (AckBase::Iss, Some(v)) => v.iss,
            (AckBase::Iss, None) => self.seen.iss.unwrap_or_default(),
            _ => seen,
        }
    }

    fn next(&self) -> SeqNum {
        let max = self.sent.iter().map(|&(_, b)| b).max().unwrap_or(0);
        self.isn + (max as u32)
    }

    /// Build the packet `spec` describes into a fresh buffer, damage included. `v` is the live
    /// connection's variables, if there is one.
    pub fn build(&self, now: Instant, spec: &SegSpec, v: Option<&SeqVars>) -> Vec<u8> {
        let expected = self.seen.ack.unwrap_or(self.isn);
        let base = match spec.seq.0 {
            SeqBase::Next => self.next(),
            SeqBase::Expected => expected,
            SeqBase::WindowEdge => expected + u32::from(self.seen.window),
            SeqBase::Isn => self.isn,
        };
        let seq = base + spec.seq.1 as i32 as u32;
        let ack = self.ack_base(spec.ack.0, v) + spec.ack.1 as i32 as u32;
        let mut options = TcpOptions {
            mss: spec.mss,
            window_scale: spec.ws,
            sack_permitted: spec.sack_perm,
            ..Default::default()
        };
        if let Some((val, ecr)) = spec.ts {
            let clock = (now.as_micros() / 1000) as u32;
            options.timestamps = Some(Timestamps {
                tsval: clock.wrapping_add(val as i32 as u32),
                tsecr: self.seen.tsval.wrapping_add(ecr as i32 as u32),
            });
        }
        for (slot, &(b, off, len)) in options.sack_blocks.iter_mut().zip(&spec.sacks) {
            let left = self.ack_base(b, v) + off as i32 as u32;
            *slot = SackBlock { left, right: left + u32::from(len) };
            options.sack_count += 1;
        }
        let tcp = TcpRepr {
            src_port: self.addr.port(),
            dst_port: self.local.port(),
            seq,
            ack,
            flags: spec.flags.flags(),
            window: spec.window,
            urgent: spec.urgent,
            options,
        };
        let mut payload = vec![0u8; usize::from(spec.len % 2048)];
        let data_seq = seq + u32::from(tcp.flags.syn());
        stream_fill(PEER, data_seq.0, &mut payload);
        let mut buf = vec![0u8; 60 + tcp.header_len() + payload.len()];
        let n = wire::emit(&mut buf, self.addr.ip(), self.local.ip(), &tcp, [&payload, &[]])
            .expect("the peer's segment fits");
        buf.truncate(n);
        mangle(&mut buf, spec.mangle);
        buf
    }

    /// The peer is about to deliver `packet`: if it parses as a segment from the peer to the
    /// endpoint, check that its data is the peer's stream at its sequence number (damage
    /// that still parses may change it: such a packet is not delivered) and remember the
    /// sequence space it occupies. Returns whether to deliver it.
    pub fn sending(&mut self, packet: &[u8]) -> bool {
        let Ok(seg) = wire::parse(packet) else { return true };
        if !is_tuple(&seg, self.addr, self.local) {
            return true;
        }
        let data_seq = seg.tcp.seq + u32::from(seg.tcp.flags.syn());
        if stream_mismatch(PEER, data_seq.0, seg.payload).is_some() {
            return false;
        }
        self.record(seg.tcp.seq, seg.tcp.seq_len(seg.payload.len()));
        true
    }

    /// Whether `packet` is a TCP segment of the peer's own 4-tuple (in either direction).
    pub fn is_own_tuple(&self, packet: &[u8]) -> bool {
        wire::parse(packet).is_ok_and(|seg| {
            is_tuple(&seg, self.addr, self.local) || is_tuple(&seg, self.local, self.addr)
        })
    }
}

/// Check one packet the endpoint emitted: it parses (TCP or ICMP, checksums valid). A segment
/// from the endpoint to the peer is remembered (ISS, furthest sequence number, ACK, window,
/// TSval) and returned for [`check_endpoint_reply`] or [`check_conn_segment`].
pub fn emitted<'a>(peer: &mut Peer, packet: &'a [u8]) -> Option<wire::Segment<'a>> {
    let seg = match wire::parse(packet) {
        Ok(seg) => seg,
        Err(e) => {
            let is_icmp = icmp::parse(packet).is_ok();
            assert!(is_icmp, "emitted packet does not parse ({e:?}): {packet:02x?}");
            return None;
        }
    };
    if !is_tuple(&seg, peer.local, peer.addr) {
        return None;
    }
    let t = &seg.tcp;
    let end = t.seq + t.seq_len(seg.payload.len());
    if t.flags.syn() {
        peer.seen.iss = Some(t.seq);
    }
    if peer.seen.max_end.is_none_or(|m| end > m) {
        peer.seen.max_end = Some(end);
    }
    if t.flags.ack() {
        peer.seen.ack = Some(t.ack);
        peer.seen.window = t.window;
    }
    if let Some(ts) = t.options.timestamps {
        peer.seen.tsval = ts.tsval;
    }
    Some(seg)
}

/// A reply of the endpoint itself (no connection) to the peer: a SYN-ACK or TIME-WAIT ACK
/// acknowledges the byte before its ACK number, which the peer must have sent. (A reset
/// may acknowledge an empty segment's sequence number, so resets are not checked.)
pub fn check_endpoint_reply(peer: &Peer, seg: &wire::Segment<'_>) {
    let t = &seg.tcp;
    if t.flags.ack() && !t.flags.rst() {
        assert!(
            peer.covered(t.ack - 1, t.ack),
            "endpoint acknowledged {:?}, which the peer never sent: {t:?}",
            t.ack
        );
    }
}

/// A segment of the live connection `v` to the peer: it acknowledges only sequence space the
/// peer sent after its SYN, and its data is our application's stream at its offset, within
/// what the application wrote. Resets are not checked for their ACK: a reset connection the
/// application still holds (unread data, not yet accepted) answers a stray segment as if it
/// did not exist (RFC 9293 §3.10.7.1), acknowledging that segment's sequence number.
pub fn check_conn_segment(peer: &Peer, seg: &wire::Segment<'_>, v: &SeqVars, written: u64) {
    let t = &seg.tcp;
    if t.flags.ack() && !t.flags.rst() {
        assert!(
            peer.covered(v.irs + 1, t.ack),
            "connection acknowledged {:?} (IRS {:?}) beyond what the peer sent: {t:?}",
            t.ack,
            v.irs
        );
    }
    if !seg.payload.is_empty() {
        let data_seq = t.seq + u32::from(t.flags.syn());
        let offset = data_seq.since(v.iss + 1);
        let end = u64::from(offset) + seg.payload.len() as u64;
        assert!(end <= written, "sent bytes {offset}..{end} of a stream of {written}: {t:?}");
        if let Some(i) = stream_mismatch(OURS, offset, seg.payload) {
            panic!(
                "sent byte {} differs from what the application wrote: {t:?}",
                offset + i as u32
            );
        }
    }
}

/// Apply `m` to the packet in `buf`.
fn mangle(buf: &mut Vec<u8>, m: Mangle) {
    let v4 = buf.first().is_some_and(|b| b >> 4 == 4);
    let ip_len = if v4 { 20 } else { 40 };
    match m {
        Mangle::None => {}
        Mangle::Checksum(x) => {
            let at = ip_len + 16;
            let c = u16::from_be_bytes([buf[at], buf[at + 1]]) ^ x.max(1);
            buf[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        Mangle::Byte(i, x) => {
            let i = usize::from(i) % buf.len();
            buf[i] ^= x.max(1);
        }
        Mangle::Truncate(n) => buf.truncate(usize::from(n) % buf.len()),
        Mangle::IpLength(d) => {
            let at = if v4 { 2 } else { 4 };
            let len = u16::from_be_bytes([buf[at], buf[at + 1]]).wrapping_add(d as u16);
            buf[at..at + 2].copy_from_slice(&len.to_be_bytes());
            if v4 {
                buf[10..12].fill(0);
                let c = wire::checksum::checksum(&buf[..20]);
                buf[10..12].copy_from_slice(&c.to_be_bytes());
            }
        }
        Mangle::DataOffset(d) => buf[ip_len + 12] = (d << 4) | (buf[ip_len + 12] & 0x0f),
    }
}

/// An ICMP "fragmentation needed" (IPv4) or "packet too big" (IPv6) from a router, quoting a
/// segment from `local` to `remote` with sequence number `seq`, reporting `mtu`.
pub fn too_big(local: SocketAddr, remote: SocketAddr, seq: SeqNum, mtu: u16) -> Vec<u8> {
    let mut quote = vec![0u8; 48];
    let ip_len = match (local.ip(), remote.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let h: &mut [u8; 20] = (&mut quote[..20]).try_into().expect("20 bytes");
            wire::ipv4::emit_header(h, s, d, 1500);
            20
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let h: &mut [u8; 40] = (&mut quote[..40]).try_into().expect("40 bytes");
            wire::ipv6::emit_header(h, s, d, 1460);
            40
        }
        _ => unreachable!("one family per run"),
    };
    quote.truncate(ip_len + 8);
    quote[ip_len..ip_len + 2].copy_from_slice(&local.port().to_be_bytes());
    quote[ip_len + 2..ip_len + 4].copy_from_slice(&remote.port().to_be_bytes());
    quote[ip_len + 4..ip_len + 8].copy_from_slice(&seq.0.to_be_bytes());
    let quote = icmp::QuotedTcp::new_checked(&quote).expect("a well-formed quote");
    let (router, repr): (IpAddr, _) = match local.ip() {
        IpAddr::V4(_) => {
            ([10, 0, 0, 254].into(), icmp::IcmpRepr::FragNeeded { next_hop_mtu: mtu, quote })
        }
        IpAddr::V6(_) => (
            "fd00::fe".parse().expect("an address"),
            icmp::IcmpRepr::PacketTooBig { mtu: u32::from(mtu), quote },
        ),
    };
    let mut buf = vec![0u8; 128];
    let n = icmp::emit(&mut buf, router, local.ip(), &repr).expect("the message fits");
    buf.truncate(n);
    buf
}

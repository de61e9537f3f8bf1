//! IP reassembly before demux, so TCP, UDP and ICMP all see whole datagrams: IPv4 (RFC 791
//! §3.2, with RFC 815's hole list kept as sorted received ranges) and IPv6 (RFC 8200 §4.5).
//!
//! - Fragments are keyed by source, destination, identification and, for IPv4, protocol
//!   (RFC 791 §3.2; RFC 8200 §4.5), in the endpoint's keyed hash table.
//! - A fragment overlapping another discards the whole datagram (RFC 5722 §4, which Linux
//!   applies to IPv4 as well since 4.19); one lying wholly inside data already received is a
//!   duplicate and only itself dropped (RFC 5722 erratum 3089, Linux `IPFRAG_DUP`).
//! - An IPv6 atomic fragment (offset 0, M clear) is a whole datagram: it is processed at once
//!   and never touches a pending reassembly with the same identification (RFC 6946 §4).
//! - Memory is charged per datagram (its buffer's capacity plus [`ENTRY_OVERHEAD`]) against
//!   a budget (Linux `ipfrag_high_thresh`, 4 MiB); a fragment that would exceed it is dropped
//!   and counted, so a flood never holds more.
//! - A datagram not complete [`crate::EndpointConfig::ipfrag_time`] (30 s) after its first
//!   fragment arrived is dropped; if its first fragment (offset 0) had arrived, the sender gets
//!   "fragment reassembly time exceeded" (ICMPv4 11/1, ICMPv6 3/1), as Linux `ip_expire`.
//!
//! Hostile input is never an error: every rejected fragment is counted by reason in
//! [`crate::EndpointStats`]. Buffers come from a small pool and go back to it when the caller
//! returns a [`Reassembled`] packet ([`Endpoint::recycle`]): no allocation per datagram once
//! the pool is warm.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use super::demux::{Demux, FourTuple};
use super::{DatagramEvent, Endpoint};
use crate::rng::SipKey;
use crate::wire::frag::{V6FragHeader, V6_FRAG_HEADER_LEN};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::{checksum, icmp};
use crate::Instant;

/// Memory charged per pending datagram on top of its data buffer: the entry with its
/// header copy, its list of runs (room for 64), its table slot and expiry record (Linux
/// charges each fragment's `truesize`, similar in spirit).
pub const ENTRY_OVERHEAD: usize = 1536;
/// Longest header kept from the first fragment: an IPv4 header with options (60 bytes), or
/// the IPv6 header and the extension headers before the Fragment header. Fragments with a
/// longer unfragmentable part are dropped as malformed.
const MAX_HEAD: usize = 256;
/// Most disjoint runs of data a pending datagram may have (a legitimate 64 KiB datagram in
/// 1280-byte fragments has at most 52); more discards the datagram.
const MAX_RUNS: usize = 64;
/// Buffers kept for reuse.
const POOL: usize = 16;

/// A whole IP packet reassembled from fragments (or an IPv6 atomic fragment without its
/// Fragment header): the payload of [`DatagramEvent::Reassembled`]. Pass
/// [`Reassembled::packet`] to [`Endpoint::handle`] like any received packet, then give it
/// back with [`Endpoint::recycle`] so its buffer is reused.
#[derive(Debug)]
pub struct Reassembled {
    packet: Vec<u8>,
}

impl Reassembled {
    /// The whole IP packet.
    pub fn packet(&self) -> &[u8] {
        &self.packet
    }
}

/// One datagram being reassembled.
#[derive(Debug)]
struct Entry {
    tuple: FourTuple,
    /// Unique per entry: tells its expiry record from those of earlier entries in the
    /// same slot (which may share its deadline when the clock has not moved).
    gen: u64,
    /// The first fragment's (offset 0) IP header(s) up to the fragmentable part; `head_len`
    /// is 0 until it arrives.
    head: [u8; MAX_HEAD],
    head_len: usize,
    /// IPv6: the Next Header of the first fragment's Fragment header.
    next_header: u8,
    /// The fragmentable part as far as received; bytes outside `runs` are zero.
    data: Vec<u8>,
    /// Received byte ranges `[start, end)`, sorted, disjoint and not adjacent.
    runs: Vec<(usize, usize)>,
    /// The fragmentable part's length, known once the last fragment (MF/M clear) arrived.
    total: Option<usize>,
    /// Bytes charged against the budget.
    charge: usize,
}

/// What one fragment did.
enum Added {
    /// Stored.
    Stored,
    /// A duplicate of data already received: dropped alone.
    Duplicate,
}

/// Why a fragment (and for some reasons its whole datagram) was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reject {
    /// Bad lengths: not a multiple of 8 with more to come, beyond 64 KiB, inconsistent with
    /// the last fragment, a too-long header chain, too many runs.
    Malformed,
    /// It overlaps data of another fragment (RFC 5722): the whole datagram goes.
    Overlap,
    /// The memory budget is spent.
    Budget,
}

/// The reassembly queues of one endpoint.
#[derive(Debug)]
pub(super) struct Reassembler {
    table: Demux<usize>,
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    /// `(deadline, slot, gen)` in arrival order (deadlines only grow); records of
    /// datagrams completed or discarded since are skipped, and pruned once they dominate.
    expiry: VecDeque<(Instant, usize, u64)>,
    next_gen: u64,
    mem: usize,
    pool: Vec<Vec<u8>>,
    /// Run lists for reuse, each with room for [`MAX_RUNS`].
    runs_pool: Vec<Vec<(usize, usize)>>,
}

impl Reassembler {
    pub(super) fn new(key: SipKey) -> Self {
        Reassembler {
            table: Demux::new(key),
            entries: Vec::new(),
            free: Vec::new(),
            // Pruned beyond 64 records, so this room suffices until many datagrams are pending.
            expiry: VecDeque::with_capacity(128),
            next_gen: 0,
            mem: 0,
            pool: Vec::new(),
            runs_pool: Vec::new(),
        }
    }

    /// Bytes charged by pending datagrams.
    pub(super) fn memory(&self) -> usize {
        self.mem
    }

    /// Pending datagrams.
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    /// The earliest deadline (perhaps of a datagram already gone: a harmless early wake).
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.expiry.front().map(|e| e.0)
    }

    fn take_buf(&mut self) -> Vec<u8> {
        let mut b = self.pool.pop().unwrap_or_default();
        b.clear();
        b
    }

    pub(super) fn recycle(&mut self, buf: Vec<u8>) {
        if self.pool.len() < POOL {
            self.pool.push(buf);
        }
    }

    /// Take datagram `slot` out of the tables; its run list goes back to the pool.
    fn remove(&mut self, slot: usize) -> Option<Entry> {
        let mut e = self.entries.get_mut(slot)?.take()?;
        self.table.remove(e.tuple);
        self.free.push(slot);
        self.mem -= e.charge;
        let mut runs = std::mem::take(&mut e.runs);
        runs.clear();
        if self.runs_pool.len() < POOL {
            self.runs_pool.push(runs);
        }
        Some(e)
    }

    /// Remove datagram `slot` and return its buffer to the pool.
    fn discard(&mut self, slot: usize) {
        if let Some(e) = self.remove(slot) {
            self.recycle(e.data);
        }
    }

    /// The slot of the datagram `tuple`, made if new and the budget allows.
    fn entry(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        budget: usize,
        timeout: core::time::Duration,
    ) -> Result<usize, Reject> {
        if let Some(&slot) = self.table.get(tuple) {
            return Ok(slot);
        }
        if self.mem + ENTRY_OVERHEAD > budget {
            return Err(Reject::Budget);
        }
        let deadline = now + timeout;
        let gen = self.next_gen;
        self.next_gen += 1;
        let e = Entry {
            tuple,
            gen,
            head: [0; MAX_HEAD],
            head_len: 0,
            next_header: 0,
            data: self.take_buf(),
            runs: self.runs_pool.pop().unwrap_or_else(|| Vec::with_capacity(MAX_RUNS)),
            total: None,
            charge: ENTRY_OVERHEAD,
        };
        self.mem += ENTRY_OVERHEAD;
        let slot = match self.free.pop() {
            Some(i) => {
                self.entries[i] = Some(e);
                i
            }
            None => {
                self.entries.push(Some(e));
                self.entries.len() - 1
            }
        };
        self.table.insert(tuple, slot);
        self.expiry.push_back((deadline, slot, gen));
        if self.expiry.len() > 64 && self.expiry.len() > 2 * self.table.len() {
            let entries = &self.entries;
            self.expiry.retain(|&(_, s, g)| {
                entries.get(s).and_then(Option::as_ref).is_some_and(|e| e.gen == g)
            });
        }
        Ok(slot)
    }

    /// Add `data` at `offset` to datagram `slot` (`more`: more fragments follow).
    fn add(
        &mut self,
        slot: usize,
        offset: usize,
        data: &[u8],
        more: bool,
        budget: usize,
    ) -> Result<Added, Reject> {
        let mem = self.mem;
        let Some(Some(e)) = self.entries.get_mut(slot) else { return Err(Reject::Malformed) };
        let end = offset + data.len();
        for &(s, t) in &e.runs {
            if offset < t && s < end {
                return if s <= offset && end <= t {
                    Ok(Added::Duplicate)
                } else {
                    Err(Reject::Overlap)
                };
            }
        }
        // RFC 791 §3.2 / RFC 8200 §4.5: the last fragment fixes the length; data beyond it,
        // or a second "last" fragment elsewhere, means the datagram is corrupt.
        let max_end = e.runs.last().map_or(0, |r| r.1);
        match (more, e.total) {
            (false, Some(t)) if t != end => return Err(Reject::Malformed),
            (false, None) if max_end > end => return Err(Reject::Malformed),
            (true, Some(t)) if end > t => return Err(Reject::Malformed),
            (false, _) => e.total = Some(end),
            (true, _) => {}
        }
        if !data.is_empty() {
            if e.runs.len() >= MAX_RUNS {
                return Err(Reject::Malformed);
            }
            if e.data.len() < end {
                let grow = (end - e.data.len()).saturating_sub(e.data.capacity() - e.data.len());
                if mem + grow > budget {
                    return Err(Reject::Budget);
                }
                let before = e.data.capacity();
                e.data.reserve_exact(end - e.data.len());
                e.data.resize(end, 0);
                let grown = e.data.capacity().saturating_sub(before);
                e.charge += grown;
                self.mem += grown;
            }
            e.data[offset..end].copy_from_slice(data);
            insert_run(&mut e.runs, (offset, end));
        }
        Ok(Added::Stored)
    }
}

/// Insert `r` into the sorted, disjoint `runs` (it overlaps none), merging neighbours.
fn insert_run(runs: &mut Vec<(usize, usize)>, r: (usize, usize)) {
    let i = runs.partition_point(|x| x.0 < r.0);
    runs.insert(i, r);
    if i + 1 < runs.len() && runs[i].1 == runs[i + 1].0 {
        runs[i].1 = runs[i + 1].1;
        runs.remove(i + 1);
    }
    if i > 0 && runs[i - 1].1 == runs[i].0 {
        runs[i - 1].1 = runs[i].1;
        runs.remove(i);
    }
}

/// The table key of a fragment: the addresses, and the identification and protocol in the
/// port fields (IPv4: identification and protocol; IPv6: the 32-bit identification split).
fn frag_key(src: IpAddr, dst: IpAddr, ident: u32, proto: u8) -> FourTuple {
    let (a, b) = if src.is_ipv4() {
        (ident as u16, u16::from(proto))
    } else {
        ((ident >> 16) as u16, ident as u16)
    };
    FourTuple { local: SocketAddr::new(dst, a), remote: SocketAddr::new(src, b) }
}

/// A fragment taken apart.
struct Fragment<'a> {
    key: FourTuple,
    /// The IP header(s) before the fragmentable part.
    head: &'a [u8],
    /// IPv6: the Fragment header's Next Header.
    next_header: u8,
    offset: usize,
    more: bool,
    data: &'a [u8],
}

/// Take a fragment apart (the IP header was validated by the caller's parse).
fn split(packet: &[u8]) -> Option<Fragment<'_>> {
    if packet.first()? >> 4 == 4 {
        let ip = Ipv4Packet::new_checked(packet).ok()?;
        let key = frag_key(ip.src().into(), ip.dst().into(), u32::from(ip.ident()), ip.protocol());
        let head = packet.get(..ip.header_len())?;
        let offset = usize::from(ip.frag_offset()) * 8;
        let data = packet.get(ip.header_len()..usize::from(ip.total_len()))?;
        return Some(Fragment { key, head, next_header: 0, offset, more: ip.more_frags(), data });
    }
    let ip = Ipv6Packet::new_checked(packet).ok()?;
    let (ipv6::NEXT_FRAGMENT, at) = ip.upper_layer().ok()? else { return None };
    let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
    let fh = V6FragHeader::parse(packet.get(at..end)?)?;
    let key = frag_key(ip.src().into(), ip.dst().into(), fh.ident, 0);
    let data = packet.get(at + V6_FRAG_HEADER_LEN..end)?;
    let head = packet.get(..at)?;
    Some(Fragment {
        key,
        head,
        next_header: fh.next_header,
        offset: fh.offset,
        more: fh.more,
        data,
    })
}

/// The offset of the Next Header field that names the Fragment header in an IPv6
/// unfragmentable part `head` (the fixed header's, or the last extension header's).
fn next_header_field(head: &[u8]) -> usize {
    let (mut field, mut at) = (6, ipv6::HEADER_LEN);
    while let Some(&len) = head.get(at + 1) {
        field = at;
        at += (usize::from(len) + 1) * 8;
    }
    field
}

/// Write the headers of the reassembled packet in front of its data (`buf` holds the
/// fragmentable part). `None` when the result exceeds the IP length fields.
fn finish(mut buf: Vec<u8>, head: &[u8], next_header: u8) -> Option<Vec<u8>> {
    let total = head.len() + buf.len();
    buf.splice(0..0, head.iter().copied());
    if buf.first()? >> 4 == 4 {
        // RFC 791 §3.2: the reassembled header has MF and the offset cleared.
        let total = u16::try_from(total).ok()?;
        buf[2..4].copy_from_slice(&total.to_be_bytes());
        buf[6..8].fill(0);
        buf[10..12].fill(0);
        let c = checksum::checksum(&buf[..head.len()]);
        buf[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        // RFC 8200 §4.5: the Fragment header goes; its Next Header takes its place.
        let plen = u16::try_from(total - ipv6::HEADER_LEN).ok()?;
        buf[4..6].copy_from_slice(&plen.to_be_bytes());
        let field = next_header_field(head);
        buf[field] = next_header;
    }
    Some(buf)
}

impl Endpoint {
    /// An IP fragment (the parse said [`crate::wire::ParseError::Fragment`]): add it to its
    /// datagram's reassembly; a completed datagram comes back as
    /// [`DatagramEvent::Reassembled`].
    pub(super) fn on_fragment<'a>(
        &mut self,
        now: Instant,
        packet: &[u8],
    ) -> Option<DatagramEvent<'a>> {
        self.stats.frags_in += 1;
        let Some(f) = split(packet) else {
            self.stats.frag_malformed += 1;
            return None;
        };
        // The IPv4 total length, or the IPv6 payload length, of the whole datagram.
        let fixed = if f.key.local.is_ipv4() { 0 } else { ipv6::HEADER_LEN };
        let too_long = f.head.len() - fixed + f.offset + f.data.len() > usize::from(u16::MAX);
        let bad_len = f.more && (f.data.is_empty() || f.data.len() % 8 != 0);
        if bad_len || f.head.len() > MAX_HEAD || too_long {
            self.stats.frag_malformed += 1;
            return None;
        }
        if f.offset == 0 && !f.more {
            // RFC 6946 §4: an atomic fragment is a whole datagram; pending reassemblies with
            // its identification are left alone.
            self.stats.frag_atomic += 1;
            let mut buf = self.frags.take_buf();
            buf.extend_from_slice(f.data);
            return self.reassembled(finish(buf, f.head, f.next_header));
        }
        let (budget, timeout) = (self.cfg.ipfrag_high_thresh, self.cfg.ipfrag_time);
        let result = self
            .frags
            .entry(now, f.key, budget, timeout)
            .and_then(|slot| Ok((slot, self.frags.add(slot, f.offset, f.data, f.more, budget)?)));
        self.refresh_deadline(); // a new datagram queued its expiry
        let slot = match result {
            Ok((slot, Added::Stored)) => slot,
            Ok((_, Added::Duplicate)) => {
                self.stats.frag_duplicates += 1;
                return None;
            }
            Err(reject) => {
                match reject {
                    Reject::Malformed => self.stats.frag_malformed += 1,
                    Reject::Overlap => self.stats.frag_overlaps += 1,
                    Reject::Budget => self.stats.frag_budget_drops += 1,
                }
                if let (Reject::Malformed | Reject::Overlap, Some(&slot)) =
                    (reject, self.frags.table.get(f.key))
                {
                    self.frags.discard(slot);
                }
                tracing::trace!(?reject, "dropped an IP fragment");
                return None;
            }
        };
        let Some(Some(e)) = self.frags.entries.get_mut(slot) else { return None };
        if f.offset == 0 && e.head_len == 0 {
            e.head[..f.head.len()].copy_from_slice(f.head);
            e.head_len = f.head.len();
            e.next_header = f.next_header;
        }
        let complete = e.total.is_some_and(|t| e.runs.first() == Some(&(0, t)));
        if !complete {
            return None;
        }
        let e = self.frags.remove(slot)?;
        self.reassembled(finish(e.data, &e.head[..e.head_len], e.next_header))
    }

    fn reassembled<'a>(&mut self, packet: Option<Vec<u8>>) -> Option<DatagramEvent<'a>> {
        match packet {
            Some(packet) => {
                self.stats.frag_reassembled += 1;
                Some(DatagramEvent::Reassembled(Reassembled { packet }))
            }
            None => {
                self.stats.frag_malformed += 1;
                None
            }
        }
    }

    /// Give back the buffer of a [`Reassembled`] packet once handled, for reuse.
    pub fn recycle(&mut self, r: Reassembled) {
        self.frags.recycle(r.packet);
    }

    /// Datagrams waiting for fragments, and the memory they hold (charged bytes).
    pub fn reassembly_usage(&self) -> (usize, usize) {
        (self.frags.len(), self.frags.memory())
    }

    /// Give up the datagrams whose time ran out, sending "fragment reassembly time exceeded"
    /// for those whose first fragment had arrived (RFC 792, RFC 4443 §3.3; Linux
    /// `ip_expire`, `ip6_frag_expire`: only then, since only it identifies the datagram).
    pub(super) fn expire_fragments(&mut self, now: Instant) {
        while let Some(&(at, slot, gen)) = self.frags.expiry.front() {
            if at > now {
                break;
            }
            self.frags.expiry.pop_front();
            let Some(e) = self.frags.entries.get(slot).and_then(Option::as_ref) else { continue };
            if e.gen != gen {
                continue;
            }
            // The first run's length, if it starts the datagram: the quote's data.
            let first = e.runs.first().filter(|r| r.0 == 0).map_or(0, |r| r.1);
            let Some(e) = self.frags.remove(slot) else { continue };
            self.stats.frag_timeouts += 1;
            if e.head_len > 0 {
                let (ty, code) = if e.tuple.local.is_ipv4() {
                    (icmp::V4_TIME_EXCEEDED, 1)
                } else {
                    (icmp::V6_TIME_EXCEEDED, 1)
                };
                let (to, from) = (e.tuple.remote.ip(), e.tuple.local.ip());
                self.queue_icmp_error(
                    now,
                    from,
                    to,
                    (ty, code),
                    [&e.head[..e.head_len], &e.data[..first]],
                );
            }
            self.frags.recycle(e.data);
        }
    }
}

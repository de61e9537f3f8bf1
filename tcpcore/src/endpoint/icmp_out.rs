//! ICMP errors the endpoint sends (port unreachable for UDP, fragment reassembly time
//! exceeded) and their rate limit, as Linux's `icmp_send`/`icmpv6_send`:
//! - never about a packet from a multicast, broadcast or unspecified source, nor about an
//!   ICMP error message (RFC 1122 §3.2.2; RFC 4443 §2.4 (e));
//! - the quote is as much of the offending packet as fits in 576 bytes (IPv4, RFC 1812
//!   §4.3.2.3) or in the 1280-byte IPv6 minimum MTU (RFC 4443 §2.4 (c));
//! - per destination, a token bucket of one message per `icmp_ratelimit` (1 s) with a burst
//!   of 6 (Linux `inet_peer_xrlim_allow`, `XRLIM_BURST_FACTOR`); destinations share one of
//!   [`PEER_BUCKETS`] buckets by keyed hash, so memory is fixed; and over all destinations,
//!   `icmp_msgs_per_sec` (1000) with a burst of `icmp_msgs_burst` (50) (Linux
//!   `icmp_global_allow`).
//!
//! The quote is copied into a preallocated buffer when the error is queued and written out
//! by `poll_transmit`: no allocation per message.

use std::net::IpAddr;

use core::time::Duration;

use super::{Endpoint, Reply};
use crate::rng::SipKey;
use crate::wire::{icmp, ipv4, ipv6};
use crate::Instant;

/// Buckets of the per-destination rate limit.
const PEER_BUCKETS: usize = 256;
/// Burst of the per-destination limit, in messages (Linux `XRLIM_BURST_FACTOR`).
const PEER_BURST: u32 = 6;
/// Largest IPv4 ICMP error: 576 bytes (RFC 1812 §4.3.2.3; Linux quotes up to this).
const MAX_ERROR_V4: usize = 576;
/// Largest ICMPv6 error: the minimum MTU (RFC 4443 §2.4 (c)).
const MAX_ERROR_V6: usize = 1280;
/// Errors that can wait in the output queue at once; beyond it they are dropped (counted).
pub(super) const ERROR_SLOTS: u8 = 32;

/// The two token buckets.
#[derive(Debug)]
pub(super) struct IcmpLimiter {
    key: SipKey,
    /// Per bucket: microseconds of credit and when it was last updated (`None`: never used,
    /// full).
    peers: Box<[(u64, Option<Instant>)]>,
    /// Global credit in microseconds, and when it was last updated.
    global: (u64, Option<Instant>),
}

impl IcmpLimiter {
    pub(super) fn new(key: SipKey) -> Self {
        IcmpLimiter {
            key,
            peers: vec![(0, None); PEER_BUCKETS].into_boxed_slice(),
            global: (0, None),
        }
    }

    /// One more message to `dst` allowed now? `interval` is `icmp_ratelimit`; `rate` and
    /// `burst` are `icmp_msgs_per_sec` and `icmp_msgs_burst`. The global credit is taken
    /// first, as Linux's `icmpv4_global_allow` runs before the per-destination check.
    fn allow(
        &mut self,
        now: Instant,
        dst: IpAddr,
        interval: Duration,
        (rate, burst): (u32, u32),
    ) -> bool {
        let cost = 1_000_000 / u64::from(rate.max(1));
        if !take(&mut self.global, now, cost, cost * u64::from(burst)) {
            return false;
        }
        let mut bytes = [0u8; 16];
        let b = match dst {
            IpAddr::V4(a) => {
                bytes[..4].copy_from_slice(&a.octets());
                &bytes[..4]
            }
            IpAddr::V6(a) => {
                bytes.copy_from_slice(&a.octets());
                &bytes[..]
            }
        };
        let i = (self.key.hash(b) % PEER_BUCKETS as u64) as usize;
        let cost = u64::try_from(interval.as_micros()).unwrap_or(u64::MAX);
        take(&mut self.peers[i], now, cost, cost.saturating_mul(u64::from(PEER_BURST)))
    }
}

/// Token bucket in microseconds of credit: refill with elapsed time up to `cap`, then take
/// `cost` if there is that much. A bucket never used is full.
fn take(state: &mut (u64, Option<Instant>), now: Instant, cost: u64, cap: u64) -> bool {
    let tokens = match state.1 {
        None => cap,
        Some(t) => state.0.saturating_add((now - t).as_micros() as u64).min(cap),
    };
    let ok = tokens >= cost;
    *state = (if ok { tokens - cost } else { tokens }, Some(now));
    ok
}

/// Whether `packet` (a quote's start) is an ICMP error message, about which no error is sent.
fn is_icmp_error(packet: &[u8]) -> bool {
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let ty = packet.get(ihl).copied();
            packet.get(9) == Some(&icmp::PROTO_ICMP)
                && matches!(
                    ty,
                    Some(
                        icmp::V4_DEST_UNREACHABLE
                            | 4
                            | 5
                            | icmp::V4_TIME_EXCEEDED
                            | icmp::V4_PARAMETER_PROBLEM
                    )
                )
        }
        // RFC 4443 §2.1: types below 128 are errors. Quotes with extension headers before
        // ICMPv6 count as not an error (we never get them from our own parse path).
        Some(6) => {
            packet.get(6) == Some(&icmp::NEXT_ICMPV6)
                && packet.get(ipv6::HEADER_LEN).is_some_and(|t| *t < 128)
        }
        _ => true,
    }
}

impl Endpoint {
    /// Queue ICMP error `(ty, code)` from `src` to `dst` quoting the concatenation of
    /// `quote` (the offending packet from its IP header on), unless a rule above forbids it
    /// or the rate limit says no (counted in `icmp_errors_rate_limited`).
    pub(super) fn queue_icmp_error(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        (ty, code): (u8, u8),
        quote: [&[u8]; 2],
    ) {
        let bad_dst = match dst {
            IpAddr::V4(a) => a.is_multicast() || a.is_broadcast() || a.is_unspecified(),
            IpAddr::V6(a) => a.is_multicast() || a.is_unspecified(),
        };
        if bad_dst || src.is_ipv4() != dst.is_ipv4() || is_icmp_error(quote[0]) {
            return;
        }
        let limits = (self.cfg.icmp_msgs_per_sec, self.cfg.icmp_msgs_burst);
        if self.err_pool.is_full()
            || !self.icmp_limit.allow(now, dst, self.cfg.icmp_ratelimit, limits)
        {
            self.stats.icmp_errors_rate_limited += 1;
            return;
        }
        let max = if dst.is_ipv4() {
            MAX_ERROR_V4 - ipv4::HEADER_LEN
        } else {
            MAX_ERROR_V6 - ipv6::HEADER_LEN
        } - icmp::HEADER_LEN;
        let Some(slot) = self.err_pool.store_parts(quote, max) else { return };
        let len = quote[0].len().saturating_add(quote[1].len()).min(max) as u16;
        if self.push_reply(Reply::IcmpError { src, dst, ty, code, slot, len }) {
            self.stats.icmp_errors_sent += 1;
        } else {
            self.err_pool.release(slot);
        }
    }

    /// RFC 1122 §4.1.3.1: a datagram to a port no socket is bound to gets ICMP port
    /// unreachable (ICMPv4 3/3, ICMPv6 1/4; Linux `__udp4_lib_rcv`, `NOPORTS`).
    pub(super) fn port_unreachable(
        &mut self,
        now: Instant,
        packet: &[u8],
        src: IpAddr,
        dst: IpAddr,
    ) {
        let tc = if src.is_ipv4() {
            (icmp::V4_DEST_UNREACHABLE, 3)
        } else {
            (icmp::V6_DEST_UNREACHABLE, 4)
        };
        // Only the IP packet itself, not link padding beyond its length fields.
        let len = match packet.first().map(|b| b >> 4) {
            Some(4) => {
                packet.get(2..4).map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            }
            _ => packet
                .get(4..6)
                .map_or(0, |b| ipv6::HEADER_LEN + usize::from(u16::from_be_bytes([b[0], b[1]]))),
        };
        let quote = packet.get(..len).unwrap_or(packet);
        self.queue_icmp_error(now, dst, src, tc, [quote, &[]]);
    }

    /// Write a queued ICMP error into `buf`, releasing its buffer. `None` if it does not fit.
    pub(super) fn emit_icmp_error(
        &mut self,
        buf: &mut [u8],
        (src, dst): (IpAddr, IpAddr),
        (ty, code): (u8, u8),
        (slot, len): (u8, u16),
    ) -> Option<usize> {
        let quote = self.err_pool.get(slot, len);
        let n = icmp::emit_error(buf, src, dst, (ty, code), quote).ok();
        self.err_pool.release(slot);
        n
    }
}

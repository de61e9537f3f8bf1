//! SYN cookies (RFC 4987 §3.6), in the Linux encoding: the SYN-ACK's ISN carries a keyed hash
//! of the 4-tuple, a one-minute counter and an index into a small MSS table, so a listener
//! under a SYN flood keeps no state per SYN. When the SYN carried timestamps, the low bits of
//! our TSval carry window scale and SACK-permitted so they survive too.

use super::demux::FourTuple;
use super::isn::hash_tuple_with;
use crate::rng::SipKey;
use crate::wire::SeqNum;
use crate::Instant;

/// Bits of the ISN below the counter (Linux `COOKIEBITS`).
const COOKIE_BITS: u32 = 24;
const COOKIE_MASK: u32 = (1 << COOKIE_BITS) - 1;
/// A cookie is valid for this many counter periods (Linux `MAX_SYNCOOKIE_AGE`).
const MAX_AGE: u32 = 2;
/// Length of one counter period in seconds (Linux: one minute).
const PERIOD_SECS: u64 = 60;
/// MSS values a cookie can carry (Linux `msstab`, IPv4 and IPv6).
const MSS_V4: [u16; 4] = [536, 1300, 1440, 1460];
const MSS_V6: [u16; 4] = [1220, 1420, 1440, 8940];
/// TSval low bits used for options: 4 bits of window scale (15 = none), SACK and ECN (Linux
/// `TS_OPT_WSCALE_MASK`, `TS_OPT_SACK`, `TS_OPT_ECN`).
const TS_OPT_BITS: u32 = 6;
const TS_OPT_MASK: u32 = (1 << TS_OPT_BITS) - 1;
const WSCALE_NONE: u32 = 0xf;
const TS_OPT_SACK: u32 = 1 << 4;
const TS_OPT_ECN: u32 = 1 << 5;

/// What a verified cookie restores. Only [`CookieJar::verify`] can build one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VerifiedCookie {
    /// The peer's MSS, rounded down to the table.
    pub(crate) mss: u16,
    /// Window scale and SACK-permitted, if the handshake carried timestamps.
    pub(crate) wscale: Option<u8>,
    pub(crate) sack_permitted: bool,
    /// The SYN asked for ECN and the SYN-ACK accepted it (RFC 3168 §6.1.1).
    pub(crate) ecn: bool,
}

/// The secrets of the cookie hash.
#[derive(Debug)]
pub(crate) struct CookieJar {
    key1: SipKey,
    key2: SipKey,
}

fn counter(now: Instant) -> u32 {
    (now.as_micros() / 1_000_000 / PERIOD_SECS) as u32
}

fn table(ipv4: bool) -> &'static [u16; 4] {
    if ipv4 {
        &MSS_V4
    } else {
        &MSS_V6
    }
}

impl CookieJar {
    pub(crate) fn new(key1: SipKey, key2: SipKey) -> Self {
        CookieJar { key1, key2 }
    }

    /// The cookie ISN for a SYN with sequence number `peer_isn` and MSS option `mss`.
    pub(crate) fn encode(
        &self,
        t: FourTuple,
        peer_isn: SeqNum,
        mss: Option<u16>,
        now: Instant,
    ) -> SeqNum {
        let tab = table(t.remote.is_ipv4());
        let mss = mss.unwrap_or(tab[0]);
        let idx = tab.iter().rposition(|&m| m <= mss).unwrap_or(0) as u32;
        let count = counter(now);
        let h1 = hash_tuple_with(&self.key1, t.local, t.remote, 0) as u32;
        let h2 = hash_tuple_with(&self.key2, t.local, t.remote, count) as u32;
        SeqNum(
            h1.wrapping_add(peer_isn.0)
                .wrapping_add(count << COOKIE_BITS)
                .wrapping_add(h2.wrapping_add(idx) & COOKIE_MASK),
        )
    }

    /// Check the ACK that completes a cookie handshake: `ack` and `seq` are the ACK's fields,
    /// `tsecr` its echoed timestamp if any. Wrong or older than [`MAX_AGE`] periods → `None`.
    pub(crate) fn verify(
        &self,
        t: FourTuple,
        seq: SeqNum,
        ack: SeqNum,
        tsecr: Option<u32>,
        now: Instant,
    ) -> Option<VerifiedCookie> {
        let peer_isn = seq - 1;
        let cookie = (ack - 1).0;
        let count = counter(now);
        let h1 = hash_tuple_with(&self.key1, t.local, t.remote, 0) as u32;
        let c = cookie.wrapping_sub(h1).wrapping_sub(peer_isn.0);
        let age = count.wrapping_sub(c >> COOKIE_BITS) & (u32::MAX >> COOKIE_BITS);
        if age >= MAX_AGE {
            return None;
        }
        let issued = count.wrapping_sub(age);
        let h2 = hash_tuple_with(&self.key2, t.local, t.remote, issued) as u32;
        let idx = c.wrapping_sub(h2) & COOKIE_MASK;
        let mss = *table(t.remote.is_ipv4()).get(idx as usize)?;
        let (wscale, sack_permitted, ecn) = match tsecr {
            Some(ts) => {
                let opts = ts & TS_OPT_MASK;
                let ws = opts & 0xf;
                let wscale = (ws != WSCALE_NONE).then_some(ws.min(14) as u8);
                (wscale, opts & TS_OPT_SACK != 0, opts & TS_OPT_ECN != 0)
            }
            None => (None, false, false),
        };
        Some(VerifiedCookie { mss, wscale, sack_permitted, ecn })
    }
}

/// The TSval of a cookie SYN-ACK: our clock `tsval` with its low bits replaced by the options,
/// never ahead of the clock (Linux `cookie_init_timestamp`).
pub(crate) fn encode_ts(tsval: u32, wscale: Option<u8>, sack_permitted: bool, ecn: bool) -> u32 {
    let opts = wscale.map_or(WSCALE_NONE, |w| u32::from(w.min(14)))
        | if sack_permitted { TS_OPT_SACK } else { 0 }
        | if ecn { TS_OPT_ECN } else { 0 };
    let ts = (tsval & !TS_OPT_MASK) | opts;
    if ts.wrapping_sub(tsval) as i32 > 0 {
        ts.wrapping_sub(TS_OPT_MASK + 1)
    } else {
        ts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn tuple() -> FourTuple {
        FourTuple {
            local: "10.0.0.2:80".parse::<SocketAddr>().unwrap(),
            remote: "10.0.0.1:40000".parse::<SocketAddr>().unwrap(),
        }
    }

    fn jar() -> CookieJar {
        CookieJar::new(SipKey(1, 2), SipKey(3, 4))
    }

    #[test]
    fn lq_04_cookie_round_trip_mss_table_and_age() {
        let j = jar();
        let isn = SeqNum(0xdead_beef);
        let t0 = Instant::from_secs(1000);
        let c = j.encode(tuple(), isn, Some(1400), t0);
        let v = j.verify(tuple(), isn + 1, c + 1, None, t0).expect("fresh cookie verifies");
        assert_eq!(v.mss, 1300, "MSS rounds down to the table");
        assert!(j
            .verify(tuple(), isn + 1, c + 1, None, t0 + core::time::Duration::from_secs(60))
            .is_some());
        assert!(
            j.verify(tuple(), isn + 1, c + 1, None, t0 + core::time::Duration::from_secs(180))
                .is_none(),
            "stale"
        );
        assert!(j.verify(tuple(), isn + 1001, c + 1, None, t0).is_none(), "other peer ISN");
        // Off by less than the table size only moves the MSS index (as in Linux); beyond, fails.
        assert!(j.verify(tuple(), isn + 1, c + 1000, None, t0).is_none(), "other cookie");
        let mut other = tuple();
        other.remote.set_port(40001);
        assert!(j.verify(other, isn + 1, c + 1, None, t0).is_none(), "other 4-tuple");
    }

    #[test]
    fn lq_04_timestamp_bits_carry_wscale_and_sack() {
        let ts = encode_ts(1_000_000, Some(7), true, false);
        assert!(ts <= 1_000_000 && 1_000_000 - ts < 64);
        let j = jar();
        let t0 = Instant::from_secs(5);
        let c = j.encode(tuple(), SeqNum(1), Some(1460), t0);
        let v = j.verify(tuple(), SeqNum(2), c + 1, Some(ts), t0).unwrap();
        assert_eq!((v.mss, v.wscale, v.sack_permitted, v.ecn), (1460, Some(7), true, false));
        let ts = encode_ts(99, None, false, false);
        let v = j.verify(tuple(), SeqNum(2), c + 1, Some(ts), t0).unwrap();
        assert_eq!((v.wscale, v.sack_permitted, v.ecn), (None, false, false));
    }

    /// ECN-01: an accepted ECN request survives a cookie handshake in the TSval bits, as in
    /// Linux (`TS_OPT_ECN`).
    #[test]
    fn ecn_01_timestamp_bits_carry_ecn() {
        let j = jar();
        let t0 = Instant::from_secs(5);
        let c = j.encode(tuple(), SeqNum(1), Some(1460), t0);
        let ts = encode_ts(1_000_000, Some(7), true, true);
        let v = j.verify(tuple(), SeqNum(2), c + 1, Some(ts), t0).unwrap();
        assert_eq!((v.wscale, v.sack_permitted, v.ecn), (Some(7), true, true));
        let v = j.verify(tuple(), SeqNum(2), c + 1, None, t0).unwrap();
        assert!(!v.ecn, "without timestamps ECN is not remembered");
    }
}

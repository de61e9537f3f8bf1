//! Ephemeral port selection (RFC 6056 §3.3.3, "Simple Hash-Based Port Selection") and the
//! bind conflicts it respects (PT-01): an active open never takes a port that a listener or
//! a connection accepted on a port holds on its address (Linux `__inet_hash_connect` skips
//! ports whose bind bucket came from a bind), so a stack never connects to itself; active
//! opens share ports only by 4-tuple, as Linux's do. A listener on port 0 takes a port no
//! listener and no live connection uses (Linux `inet_csk_find_open_port`). A socket that has
//! bound an address but neither listens nor connects yet holds it as a reservation
//! ([`Endpoint::bind`]), which every other bind, listen and port choice respects.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};

use super::{Endpoint, FourTuple, ListenOptions};
use crate::rng::SipKey;
use crate::EndpointError;

/// Chooses local ports for active opens: a keyed-hash offset per destination plus a
/// counter, so ports are unpredictable to off-path attackers yet spread across the range.
#[derive(Debug)]
pub(crate) struct PortAllocator {
    key: SipKey,
    start: u16,
    count: u32,
    next: u32,
    /// The last destination's offset: a client opening connection after connection to one
    /// server (a proxy to its backend) hashes it once.
    last: Option<(IpAddr, SocketAddr, u32)>,
}

impl PortAllocator {
    pub(crate) fn new(key: SipKey, start: u16, end: u16) -> Self {
        let (start, end) = if start <= end { (start, end) } else { (end, start) };
        PortAllocator { key, start, count: u32::from(end - start) + 1, next: 0, last: None }
    }

    /// The ports to try for `local_ip → remote`, in order, each with its index in the walk.
    /// The walk borrows nothing, so the caller can test each port against its own tables;
    /// it then reports the one it took with [`PortAllocator::took`].
    pub(crate) fn walk(&mut self, local_ip: IpAddr, remote: SocketAddr) -> Walk {
        // RFC 6056 §3.3.3: offset = F(local IP, remote IP, remote port, secret key).
        let offset = match self.last {
            Some((ip, r, offset)) if ip == local_ip && r == remote => offset,
            _ => {
                let local = SocketAddr::new(local_ip, 0);
                let offset = super::isn::hash_tuple(&self.key, local, remote) as u32;
                self.last = Some((local_ip, remote, offset));
                offset
            }
        };
        Walk { start: self.start, count: self.count, base: offset.wrapping_add(self.next), i: 0 }
    }

    /// The caller took the port at index `i` of its walk: the next walk starts after it.
    pub(crate) fn took(&mut self, i: u32) {
        self.next = self.next.wrapping_add(i + 1);
    }
}

/// The candidate ports of one [`PortAllocator::walk`]: each port of the range once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Walk {
    start: u16,
    count: u32,
    base: u32,
    i: u32,
}

impl Iterator for Walk {
    type Item = (u32, u16);

    fn next(&mut self) -> Option<(u32, u16)> {
        if self.i >= self.count {
            return None;
        }
        let i = self.i;
        self.i += 1;
        // `count` ≤ 65536 and the step is below it, so the port fits in `start..=end`.
        let step = self.base.wrapping_add(i) % self.count;
        Some((i, self.start + step as u16))
    }
}

/// Whether binding `a` conflicts with something bound to `b`: the same port and family, and
/// the same IP or either of them the wildcard.
pub(crate) fn conflicts(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Live connections per local (port, IP), split by how they were opened, and the
/// reservations of bound sockets.
///
/// Hash maps by port (an O(1) probe: a search of an ordered tree by (port, IP) cost two
/// hundred instructions per connection opened or closed). A port is almost always held on
/// one address: `by_port` keeps that one inline (36 bytes an entry, about what the tree
/// spent per entry), `more` the others (several local addresses, or a wildcard beside a
/// specific one). An entry goes when nothing holds it any more. The ports are this
/// endpoint's own (a listener's, or one the keyed walk above chose for an active open),
/// never a peer's choice, so the maps need no keyed hash.
#[derive(Debug, Default)]
pub(crate) struct HeldPorts {
    by_port: HashMap<u16, (IpAddr, Held), BuildHasherDefault<PortHasher>>,
    more: HashMap<u16, Vec<(IpAddr, Held)>, BuildHasherDefault<PortHasher>>,
}

/// A multiplicative hash of a port number (see [`HeldPorts`]: not attacker-chosen).
#[derive(Default)]
pub(crate) struct PortHasher(u64);

impl Hasher for PortHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u16(&mut self, n: u16) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Held {
    active: u32,
    passive: u32,
    /// Sockets bound here that neither listen nor connect yet ([`Endpoint::bind`]).
    bound: u32,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.active == 0 && self.passive == 0 && self.bound == 0
    }

    fn connections(&self) -> u32 {
        self.active + self.passive
    }
}

impl HeldPorts {
    /// The entry of `local`, made if missing.
    fn entry(&mut self, local: SocketAddr) -> &mut Held {
        let (port, ip) = (local.port(), local.ip());
        let first = self.by_port.entry(port).or_insert((ip, Held::default()));
        if first.0 == ip {
            return &mut first.1;
        }
        let more = self.more.entry(port).or_default();
        let i = match more.iter().position(|(a, _)| *a == ip) {
            Some(i) => i,
            None => {
                more.push((ip, Held::default()));
                more.len() - 1
            }
        };
        &mut more[i].1
    }

    /// A connection now uses `local`; `passive` when a listener accepted it.
    pub(crate) fn hold(&mut self, local: SocketAddr, passive: bool) {
        let h = self.entry(local);
        if passive {
            h.passive += 1;
        } else {
            h.active += 1;
        }
    }

    /// A connection that [`HeldPorts::hold`] counted is gone.
    pub(crate) fn release(&mut self, local: SocketAddr, passive: bool) {
        self.lower(local, |h| {
            if passive {
                h.passive = h.passive.saturating_sub(1);
            } else {
                h.active = h.active.saturating_sub(1);
            }
            true
        });
    }

    /// A socket reserved `local` ([`Endpoint::bind`]).
    fn reserve(&mut self, local: SocketAddr) {
        self.entry(local).bound += 1;
    }

    /// A reservation of `local` ended; false if there was none.
    fn unreserve(&mut self, local: SocketAddr) -> bool {
        self.lower(local, |h| {
            let had = h.bound > 0;
            h.bound = h.bound.saturating_sub(1);
            had
        })
    }

    /// Apply `f` (which lowers a count) to `local`'s entry, then forget it if it holds
    /// nothing. Returns `f`'s answer, false when `local` has no entry.
    fn lower(&mut self, local: SocketAddr, f: impl FnOnce(&mut Held) -> bool) -> bool {
        let (port, ip) = (local.port(), local.ip());
        let Entry::Occupied(mut first) = self.by_port.entry(port) else { return false };
        if first.get().0 == ip {
            let done = f(&mut first.get_mut().1);
            if first.get().1.is_empty() {
                // Another address of the port takes the inline place, if there is one.
                match self.more.get_mut(&port).and_then(Vec::pop) {
                    Some(next) => *first.get_mut() = next,
                    None => {
                        first.remove(); // no second probe of the map
                    }
                }
                if self.more.get(&port).is_some_and(Vec::is_empty) {
                    self.more.remove(&port);
                }
            }
            return done;
        }
        let Some(more) = self.more.get_mut(&port) else { return false };
        let Some(i) = more.iter().position(|(a, _)| *a == ip) else { return false };
        let done = f(&mut more[i].1);
        if more[i].1.is_empty() {
            more.swap_remove(i);
            if more.is_empty() {
                self.more.remove(&port);
            }
        }
        done
    }

    /// Connections on `local`'s port whose address conflicts with `local`'s, and which
    /// `counts` says hold it.
    fn any(&self, local: SocketAddr, counts: impl Fn(&Held) -> bool) -> bool {
        let port = local.port();
        let Some((ip, h)) = self.by_port.get(&port) else { return false };
        let hit = |ip: IpAddr, h: &Held| counts(h) && conflicts(local, SocketAddr::new(ip, port));
        hit(*ip, h)
            || (!self.more.is_empty()
                && self.more.get(&port).is_some_and(|m| m.iter().any(|(ip, h)| hit(*ip, h))))
    }
}

impl Endpoint {
    /// Whether an active open from `local` to `remote` may use `local`'s port (PT-01):
    /// not the remote itself, no listener or accepted connection on it, and a 4-tuple
    /// neither live nor in TIME-WAIT.
    pub(super) fn port_free_for_connect(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        let t = FourTuple { local, remote };
        local != remote
            && !self.listeners.iter().flatten().any(|l| conflicts(local, l.addr))
            && !self.held.any(local, |h| h.passive > 0 || h.bound > 0)
            && !self.table.contains(t)
            && self.time_wait.get(t).is_none()
    }

    /// Listen on a free port of `ip` (an unspecified IP listens on every address of its
    /// family), as `bind` to port 0 then `listen` do: a port of the ephemeral range that no
    /// listener and no live connection uses on a conflicting address. Returns the address.
    ///
    /// # Errors
    /// [`EndpointError::InvalidAddress`] for a multicast IP;
    /// [`EndpointError::AddrNotAvailable`] when every port of the range is taken.
    pub fn listen_ephemeral(
        &mut self,
        ip: IpAddr,
        opts: ListenOptions,
    ) -> Result<SocketAddr, EndpointError> {
        let addr = self.free_port(ip)?;
        self.listen_with(addr, opts)?;
        Ok(addr)
    }

    /// A port of the ephemeral range on `ip` that no listener, no live connection and no
    /// reservation uses on a conflicting address.
    fn free_port(&mut self, ip: IpAddr) -> Result<SocketAddr, EndpointError> {
        if ip.is_multicast() {
            return Err(EndpointError::InvalidAddress);
        }
        let (i, port) = self
            .ports
            .walk(ip, SocketAddr::new(ip, 0))
            .find(|&(_, p)| {
                let local = SocketAddr::new(ip, p);
                !self.listeners.iter().flatten().any(|l| conflicts(local, l.addr))
                    && !self.held.any(local, |h| !h.is_empty())
            })
            .ok_or(EndpointError::AddrNotAvailable)?;
        self.ports.took(i);
        Ok(SocketAddr::new(ip, port))
    }

    /// Reserve `addr` for a socket that binds it before it listens or connects (`bind(2)`):
    /// port 0 takes a free port of the ephemeral range, as [`Endpoint::listen_ephemeral`]
    /// chooses one. While reserved, no other bind or listen gets a conflicting address and no
    /// active open takes the port. The owner ends the reservation with [`Endpoint::unbind`]
    /// when it closes, or just before it listens ([`Endpoint::listen_with`]) or connects
    /// ([`Endpoint::connect_from`]) on it. `reuse_addr` (`SO_REUSEADDR`) lets the address be
    /// one that live connections use, as long as no listener or reservation does (Linux
    /// `inet_csk_bind_conflict`); TIME-WAIT entries never conflict. Returns the address.
    ///
    /// # Errors
    /// [`EndpointError::AddrInUse`] on a conflict; [`EndpointError::InvalidAddress`] for a
    /// multicast IP; [`EndpointError::AddrNotAvailable`] when port 0 finds no free port.
    pub fn bind(
        &mut self,
        addr: SocketAddr,
        reuse_addr: bool,
    ) -> Result<SocketAddr, EndpointError> {
        if addr.ip().is_multicast() {
            return Err(EndpointError::InvalidAddress);
        }
        let addr = if addr.port() == 0 {
            self.free_port(addr.ip())?
        } else {
            let taken = self.listeners.iter().flatten().any(|l| conflicts(addr, l.addr))
                || self.held.any(addr, |h| h.bound > 0 || (!reuse_addr && h.connections() > 0));
            if taken {
                return Err(EndpointError::AddrInUse);
            }
            addr
        };
        self.held.reserve(addr);
        Ok(addr)
    }

    /// End a reservation made by [`Endpoint::bind`]; false if `addr` had none.
    pub fn unbind(&mut self, addr: SocketAddr) -> bool {
        self.held.unreserve(addr)
    }

    /// Whether a socket's reservation ([`Endpoint::bind`]) conflicts with `addr`.
    pub(super) fn reserved(&self, addr: SocketAddr) -> bool {
        self.held.any(addr, |h| h.bound > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PT-01: an address whose last connection closed holds nothing (for its own address and
    /// for the wildcard), its reservation counts again when reused, and no entry outlives
    /// what it held, however many ports come and go.
    #[test]
    fn pt_01_released_addresses_hold_nothing_and_empty_entries_stay_bounded() {
        let mut held = HeldPorts::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let any = |h: &HeldPorts, a| h.any(a, |x: &Held| !x.is_empty());
        for port in 1000..3000u16 {
            let a = SocketAddr::new(ip, port);
            held.hold(a, port % 2 == 0);
            assert!(any(&held, a));
            held.release(a, port % 2 == 0);
            assert!(!any(&held, a));
            assert!(!any(&held, SocketAddr::new([0u8; 4].into(), port)));
        }
        assert!(held.by_port.is_empty(), "{} entries", held.by_port.len());
        let a = SocketAddr::new(ip, 2999);
        held.reserve(a);
        assert!(held.any(a, |x| x.bound > 0));
        assert!(held.unreserve(a));
        assert!(!held.unreserve(a));
        assert!(!any(&held, a));
    }

    /// PT-01: one port held on several addresses (a wildcard beside specific ones): each
    /// address counts for itself and for the wildcard until its own last holder goes, in
    /// whatever order they go.
    #[test]
    fn pt_01_one_port_on_several_addresses_counts_each_until_released() {
        let mut held = HeldPorts::default();
        let port = 4000;
        let a = SocketAddr::new([10, 0, 0, 1].into(), port);
        let b = SocketAddr::new([10, 0, 0, 2].into(), port);
        let any_v4 = SocketAddr::new([0u8; 4].into(), port);
        let holds = |h: &HeldPorts, at| h.any(at, |x: &Held| !x.is_empty());
        held.hold(a, false);
        held.reserve(b);
        held.hold(b, true);
        assert!(holds(&held, a) && holds(&held, b) && holds(&held, any_v4));
        held.release(a, false);
        assert!(!holds(&held, a), "a's last holder went");
        assert!(holds(&held, b) && holds(&held, any_v4));
        held.hold(a, true);
        assert!(holds(&held, a));
        assert!(held.unreserve(b));
        assert!(!held.unreserve(b), "one reservation, ended once");
        held.release(b, true);
        assert!(!holds(&held, b) && holds(&held, any_v4));
        held.release(a, true);
        assert!(!holds(&held, any_v4));
        assert!(held.by_port.is_empty() && held.more.is_empty());
    }
}

//! Ephemeral port selection (RFC 6056 §3.3.3, "Simple Hash-Based Port Selection").

use std::net::{IpAddr, SocketAddr};

use crate::rng::SipKey;

/// Chooses local ports for active opens: a keyed-hash offset per destination plus a
/// counter, so ports are unpredictable to off-path attackers yet spread across the range.
#[derive(Debug)]
pub(crate) struct PortAllocator {
    key: SipKey,
    start: u16,
    count: u32,
    next: u32,
}

impl PortAllocator {
    pub(crate) fn new(key: SipKey, start: u16, end: u16) -> Self {
        let (start, end) = if start <= end { (start, end) } else { (end, start) };
        PortAllocator { key, start, count: u32::from(end - start) + 1, next: 0 }
    }

    /// The first port in the walk for `local_ip → remote` for which `free` says yes.
    pub(crate) fn allocate(
        &mut self,
        local_ip: IpAddr,
        remote: SocketAddr,
        mut free: impl FnMut(u16) -> bool,
    ) -> Option<u16> {
        let offset = super::isn::hash_tuple(&self.key, SocketAddr::new(local_ip, 0), remote) as u32;
        for i in 0..self.count {
            let step = offset.wrapping_add(self.next).wrapping_add(i) % self.count;
            let port = self.start + step as u16;
            if free(port) {
                self.next = self.next.wrapping_add(i + 1);
                return Some(port);
            }
        }
        None
    }
}

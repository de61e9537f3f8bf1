//! TCP Fast Open (RFC 7413) at the endpoint: the server's cookies (a keyed hash of the
//! client's address, with the previous key still accepted after a rotation), the decision
//! on a SYN at a listener, the per-listener limit on pending Fast Open children, and the
//! client's cookie cache per server.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{ConnectionHandle, DatagramEvent, Endpoint, FourTuple};
use crate::conn::{Connection, SynInfo};
use crate::rng::SipKey;
use crate::wire::{FastOpenOption, Segment};
use crate::Instant;

/// The cookie key as Linux reads `tcp_fastopen_key` and `TCP_FASTOPEN_KEY`: 16 bytes, the
/// two little-endian halves of a SipHash key.
pub(crate) fn key_from_bytes(b: [u8; 16]) -> SipKey {
    let half = |i: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(w)
    };
    SipKey(half(0), half(8))
}

/// RFC 7413 §4.1.2: the cookie is a MAC of the client's address (and ours), here
/// SipHash-2-4 over both addresses, 8 bytes (as Linux computes it, so cookies agree with
/// its for the same key).
pub(crate) fn cookie(key: &SipKey, client: IpAddr, server: IpAddr) -> [u8; 8] {
    let mut data = [0u8; 32];
    let n = match (client, server) {
        (IpAddr::V4(c), IpAddr::V4(s)) => {
            data[..4].copy_from_slice(&c.octets());
            data[4..8].copy_from_slice(&s.octets());
            8
        }
        (c, s) => {
            data[..16].copy_from_slice(&v6(c));
            data[16..].copy_from_slice(&v6(s));
            32
        }
    };
    key.hash(&data[..n]).to_le_bytes()
}

fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// What a cookie on a SYN is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CookieCheck {
    /// Made with the current key.
    Valid,
    /// Made with the previous key: accepted, and the SYN-ACK would hand out a fresh one.
    Stale,
    /// Forged, or older than the previous key.
    Invalid,
}

/// A cached server cookie (Linux keeps these in `tcp_metrics`).
#[derive(Clone, Copy, Debug)]
struct Cached {
    cookie: Option<FastOpenOption>,
    mss: Option<u16>,
    /// Cookie requests that went unanswered (as Linux's `try_exp`): 1 after a kind-34
    /// request, when the next asks in the experimental kind; 2 after that one, when kind 34
    /// is used for good.
    try_exp: u8,
    /// Insertion order, for eviction.
    stamp: u64,
}

/// The endpoint's Fast Open keys and the client's cookie cache.
#[derive(Debug)]
pub(crate) struct FastOpen {
    /// The current key and, after a rotation, the previous one.
    keys: (SipKey, Option<SipKey>),
    cache: BTreeMap<IpAddr, Cached>,
    order: BTreeMap<u64, IpAddr>,
    stamp: u64,
    /// Fast Open children not yet past their handshake, over all listeners.
    pub(crate) pending: u32,
}

impl FastOpen {
    pub(crate) fn new(cfg: &crate::FastOpenConfig, seeded: SipKey) -> Self {
        FastOpen {
            keys: (cfg.key.map_or(seeded, key_from_bytes), None),
            cache: BTreeMap::new(),
            order: BTreeMap::new(),
            stamp: 0,
            pending: 0,
        }
    }

    fn check(&self, c: &[u8], key: Option<SipKey>, client: IpAddr, server: IpAddr) -> CookieCheck {
        let (primary, backup) = match key {
            Some(k) => (k, None),
            None => self.keys,
        };
        if c == cookie(&primary, client, server) {
            CookieCheck::Valid
        } else if backup.is_some_and(|k| c == cookie(&k, client, server)) {
            CookieCheck::Stale
        } else {
            CookieCheck::Invalid
        }
    }

    /// The cookie for `client` under the current key (or the listener's own `key`).
    fn make(&self, key: Option<SipKey>, client: IpAddr, server: IpAddr) -> [u8; 8] {
        cookie(&key.unwrap_or(self.keys.0), client, server)
    }

    /// The cached cookie (or the kind of request to send) and MSS of `server`.
    pub(crate) fn cached(&self, server: IpAddr) -> (Option<FastOpenOption>, Option<u16>) {
        self.cache.get(&server).map_or((None, None), |c| {
            let request = (c.try_exp == 1).then(|| FastOpenOption::request(true));
            (c.cookie.or(request), c.mss)
        })
    }

    /// Remember what `server`'s SYN-ACK said: its cookie (kept if it sent none) and MSS.
    /// A request in kind `sent_exp` that got no cookie moves `try_exp` on.
    fn learn(
        &mut self,
        server: IpAddr,
        cookie: Option<FastOpenOption>,
        mss: Option<u16>,
        sent_exp: bool,
        max: usize,
    ) {
        if max == 0 {
            return;
        }
        let cookie = cookie.filter(|c| c.len > 0);
        let try_exp = if sent_exp { 2 } else { 1 };
        if let Some(e) = self.cache.get_mut(&server) {
            if cookie.is_none() && e.cookie.is_none() && try_exp > e.try_exp {
                e.try_exp = try_exp;
            }
            e.cookie = cookie.or(e.cookie);
            e.mss = mss.or(e.mss);
            return;
        }
        let try_exp = if cookie.is_none() { try_exp } else { 0 };
        while self.cache.len() >= max {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            self.cache.remove(&oldest);
        }
        self.stamp += 1;
        self.order.insert(self.stamp, server);
        self.cache.insert(server, Cached { cookie, mss, try_exp, stamp: self.stamp });
    }

    /// Forget every entry.
    fn flush(&mut self) {
        self.cache.clear();
        self.order.clear();
    }

    /// Forget `server`'s entry.
    fn forget(&mut self, server: IpAddr) {
        if let Some(e) = self.cache.remove(&server) {
            self.order.remove(&e.stamp);
        }
    }
}

/// What Fast Open makes of a SYN at a listener.
pub(super) enum FastOpenSyn<'a> {
    /// Nothing: a plain SYN (any data on it is dropped; the client sends it again).
    No,
    /// Answer with a cookie in the SYN-ACK, in the client's option kind (`exp`).
    SendCookie { exp: bool },
    /// A child in SYN-RECEIVED that took the SYN's data, in the accept queue already.
    Child(DatagramEvent<'a>),
}

impl Endpoint {
    /// Replace the Fast Open key; the previous one stays valid (so cookies handed out
    /// before the rotation still work) until the next rotation, as Linux's backup key.
    pub fn rotate_fast_open_key(&mut self, key: [u8; 16]) {
        let old = self.fast_open.keys.0;
        self.fast_open.keys = (key_from_bytes(key), Some(old));
    }

    /// Set the Fast Open keys: `primary` makes cookies, both are accepted (Linux
    /// `tcp_fastopen_key` written as "primary,backup").
    pub fn set_fast_open_keys(&mut self, primary: [u8; 16], backup: Option<[u8; 16]>) {
        self.fast_open.keys = (key_from_bytes(primary), backup.map(key_from_bytes));
    }

    /// The cookie this endpoint's server side gives `client` connecting to `server` (for
    /// tests and tools).
    pub fn fast_open_cookie(&self, client: IpAddr, server: IpAddr) -> [u8; 8] {
        self.fast_open.make(None, client, server)
    }

    /// The client's cached cookie for `server`, if any.
    pub fn cached_fast_open_cookie(&self, server: IpAddr) -> Option<FastOpenOption> {
        self.fast_open.cached(server).0
    }

    /// Forget the client's cached cookie for `server` (Linux `ip tcp_metrics delete`).
    pub fn forget_fast_open_cookie(&mut self, server: IpAddr) {
        self.fast_open.forget(server);
    }

    /// Forget every cached cookie (Linux `ip tcp_metrics flush`).
    pub fn flush_fast_open_cookies(&mut self) {
        self.fast_open.flush();
    }

    /// Change the Fast Open settings of a live endpoint (Linux's `tcp_fastopen` sysctl
    /// applies at once); a new `key` replaces both keys.
    pub fn set_fast_open_config(&mut self, cfg: crate::FastOpenConfig) {
        if cfg.key.is_some() && cfg.key != self.cfg.fast_open.key {
            self.fast_open.keys = (key_from_bytes(cfg.key.unwrap_or_default()), None);
        }
        self.cfg.fast_open = cfg;
    }

    /// The Fast Open queue length of listener `li`: its option, or its backlog when every
    /// listener does Fast Open; 0 when the server side is off.
    fn fast_open_queue(&self, li: u32) -> u32 {
        let Some(Some(l)) = self.listeners.get(li as usize) else { return 0 };
        let fo = &self.cfg.fast_open;
        if !fo.server {
            return 0;
        }
        match l.opts.fast_open_queue {
            0 if fo.server_all_listeners => l.backlog as u32,
            q => q,
        }
    }

    /// RFC 7413 §4.2.2: a SYN at listener `li` that no SYN cookie answers. A valid cookie
    /// (or none, where the listener does not require one) and room in the listener's Fast
    /// Open queue make a child that takes the SYN's data at once; a cookie request or an
    /// invalid cookie earn a fresh cookie in the SYN-ACK, and the data is dropped.
    pub(super) fn fast_open_syn<'a>(
        &mut self,
        now: Instant,
        li: u32,
        tuple: FourTuple,
        syn: SynInfo,
        seg: &Segment<'_>,
    ) -> FastOpenSyn<'a> {
        let qlen = self.fast_open_queue(li);
        let opt = seg.tcp.options.fast_open;
        if qlen == 0 || (seg.payload.is_empty() && opt.is_none()) {
            return FastOpenSyn::No;
        }
        let Some(Some(l)) = self.listeners.get(li as usize) else { return FastOpenSyn::No };
        if l.fast_open_pending >= qlen {
            // Linux `tcp_fastopen_queue_check`: TCPFastOpenListenOverflow; a plain SYN.
            self.stats.fast_open_queue_full += 1;
            return FastOpenSyn::No;
        }
        let key = l.opts.fast_open_key.map(key_from_bytes);
        let (client, server) = (tuple.remote.ip(), tuple.local.ip());
        let no_cookie = self.cfg.fast_open.server_no_cookie && !seg.payload.is_empty();
        let check = match opt {
            _ if no_cookie => CookieCheck::Valid,
            None => return FastOpenSyn::No,
            Some(o) if o.len == 0 => {
                self.stats.fast_open_cookie_requests += 1;
                return FastOpenSyn::SendCookie { exp: o.exp };
            }
            Some(o) => self.fast_open.check(o.cookie(), key, client, server),
        };
        if check == CookieCheck::Invalid {
            self.stats.fast_open_cookie_rejected += 1;
            tracing::trace!(remote = %tuple.remote, "bad Fast Open cookie");
            return FastOpenSyn::SendCookie { exp: opt.is_some_and(|o| o.exp) };
        }
        FastOpenSyn::Child(self.fast_open_child(now, li, tuple, syn, seg.payload))
    }

    /// The child of a Fast Open SYN: in SYN-RECEIVED with the SYN's data, queued for
    /// `accept` before the handshake completes (RFC 7413 §4.2.2), counted in its listener's
    /// Fast Open queue until the client's ACK (or a reset, or its end).
    fn fast_open_child<'a>(
        &mut self,
        now: Instant,
        li: u32,
        tuple: FourTuple,
        syn: SynInfo,
        data: &[u8],
    ) -> DatagramEvent<'a> {
        let p = self.params(now, tuple);
        let mut conn = Connection::accept_syn_boxed(self.passive_cfg(li), p, syn, now);
        conn.attach_budget(self.budget.clone());
        conn.accept_fast_open(data);
        let handle: ConnectionHandle = self.insert(tuple, Some(li));
        if let Some(Some(slot)) = self.slots.get_mut(handle.0) {
            slot.fast_open_listener = li;
        }
        if let Some(Some(l)) = self.listeners.get_mut(li as usize) {
            l.accept_queue.push_back(handle);
            l.fast_open_pending += 1;
        }
        self.fast_open.pending += 1;
        self.stats.passive_opens += 1;
        self.stats.fast_open_accepted += 1;
        tracing::trace!(remote = %tuple.remote, data = data.len(), "Fast Open child");
        DatagramEvent::NewConnection(handle, conn)
    }

    /// The Fast Open cookie option for a SYN-ACK to `tuple` at listener `li`.
    pub(super) fn fast_open_cookie_option(
        &self,
        li: u32,
        tuple: FourTuple,
        exp: bool,
    ) -> FastOpenOption {
        let key = self
            .listeners
            .get(li as usize)
            .and_then(Option::as_ref)
            .and_then(|l| l.opts.fast_open_key)
            .map(key_from_bytes);
        let c = self.fast_open.make(key, tuple.remote.ip(), tuple.local.ip());
        FastOpenOption::with_cookie(&c, exp)
    }

    /// A segment for connection `h` while Fast Open bookkeeping may care: a client's
    /// SYN-ACK teaches the cookie cache; a child's first ACK or RST ends its place in the
    /// listener's Fast Open queue.
    pub(super) fn fast_open_on_segment(
        &mut self,
        h: ConnectionHandle,
        tuple: FourTuple,
        seg: &Segment<'_>,
    ) {
        let Some(Some(slot)) = self.slots.get_mut(h.0) else { return };
        let f = seg.tcp.flags;
        if slot.fast_open_client != 0 && f.syn() && f.ack() {
            let sent_exp = slot.fast_open_client == 2;
            slot.fast_open_client = 0;
            let o = &seg.tcp.options;
            let max = self.cfg.fast_open.cookie_cache;
            self.fast_open.learn(tuple.remote.ip(), o.fast_open, o.mss, sent_exp, max);
            return;
        }
        if slot.fast_open_listener != super::NO_LISTENER && !f.syn() && (f.ack() || f.rst()) {
            let li = slot.fast_open_listener;
            slot.fast_open_listener = super::NO_LISTENER;
            self.fast_open_done(li);
        }
    }

    /// A Fast Open child of listener `li` left its queue.
    pub(super) fn fast_open_done(&mut self, li: u32) {
        self.fast_open.pending = self.fast_open.pending.saturating_sub(1);
        if let Some(Some(l)) = self.listeners.get_mut(li as usize) {
            l.fast_open_pending = l.fast_open_pending.saturating_sub(1);
        }
    }

    /// An active open that may use Fast Open: give the connection the cached cookie.
    pub(super) fn fast_open_connect(&mut self, h: ConnectionHandle, conn: &mut Connection) {
        let fo = self.cfg.fast_open;
        if !fo.client {
            return;
        }
        let (cookie, mss) = self.fast_open.cached(conn.remote_addr().ip());
        conn.set_fast_open(cookie, mss, fo.client_no_cookie);
        if let Some(Some(slot)) = self.slots.get_mut(h.0) {
            slot.fast_open_client = if cookie.is_some_and(|c| c.exp) { 2 } else { 1 };
        }
    }
}

//! The network: nodes, links, the virtual clock, the event queue and the step loop.

use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::path::Path;

use super::link::{Link, LinkConfig, LinkStats, Verdict};
use super::packet::{destination, BufferPool, InFlight, TraceHash, MAX_PACKET};
use super::{Node, NodeId, SimError};
use crate::pcap;
use crate::rng::Rng;
use crate::Instant;

/// How many packets one node may emit in one drain before the others get their turn; a node
/// that never stops transmitting shows up as a livelock instead of hanging the simulator.
const MAX_BURST: usize = 1 << 16;

/// Network-wide counters, for what no single link can account for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Steps taken.
    pub steps: u64,
    /// Node deadlines fired (calls to [`Node::handle_timeout`]).
    pub timers_fired: u64,
    /// Packets handed to nodes, duplicates included.
    pub delivered: u64,
    /// Packets dropped because their IP header could not be read (empty, an unknown version,
    /// or shorter than the fixed header).
    pub dropped_malformed: u64,
    /// Packets dropped because no node owns their destination address (and there is no
    /// [default route](Network::set_default_route) other than the sender), or the sender has
    /// no link to the node that does.
    pub dropped_no_route: u64,
}

/// The earliest thing that can happen next.
#[derive(Clone, Copy, Debug)]
enum Next {
    /// The packet at the top of the event queue arrives.
    Packet,
    /// This node's deadline fires.
    Timer(usize),
}

/// A simulated network of [`Node`]s joined by faulty links, run in virtual time.
///
/// See the [module documentation](super) for the step loop and the determinism guarantees.
#[derive(Debug)]
pub struct Network<N: Node> {
    /// The nodes, indexed by [`NodeId::index`].
    nodes: Vec<N>,
    /// Address to node index, sorted by address (no duplicates).
    routes: Vec<(IpAddr, usize)>,
    /// The node that receives packets for addresses no node owns, if any.
    default_route: Option<usize>,
    /// Every directed link, in creation order.
    links: Vec<Link>,
    /// `link_ids[from][to]` is the index in `links` of the link `from -> to`, if any.
    link_ids: Vec<Vec<Option<usize>>>,
    /// Node pairs `(low, high)` currently cut by [`Network::set_partition`].
    cuts: Vec<(usize, usize)>,
    /// Drops for lack of a link, per `(from, to)` pair.
    unlinked: Vec<(usize, usize, u64)>,
    /// Packets in flight, earliest `(arrival, seq)` on top.
    events: BinaryHeap<InFlight>,
    /// Recycled packet buffers.
    pool: BufferPool,
    /// The buffer nodes transmit into; always `MAX_PACKET` long.
    scratch: Vec<u8>,
    /// The virtual clock; never decreases.
    now: Instant,
    /// The source of every link's generator.
    rng: Rng,
    /// Insertion counter for events.
    next_seq: u64,
    /// Hash of every delivery so far.
    trace: TraceHash,
    /// Network-wide counters.
    stats: NetStats,
}

impl<N: Node> Network<N> {
    /// An empty network at time zero whose every random choice derives from `seed`.
    pub fn new(seed: u64) -> Self {
        Network {
            nodes: Vec::new(),
            routes: Vec::new(),
            default_route: None,
            links: Vec::new(),
            link_ids: Vec::new(),
            cuts: Vec::new(),
            unlinked: Vec::new(),
            events: BinaryHeap::new(),
            pool: BufferPool::default(),
            scratch: vec![0; MAX_PACKET],
            now: Instant::ZERO,
            rng: Rng::new(seed),
            next_seq: 0,
            trace: TraceHash::default(),
            stats: NetStats::default(),
        }
    }

    /// Attach `node`; packets whose destination is one of `addrs` go to it.
    ///
    /// # Panics
    ///
    /// If an address already belongs to a node.
    #[track_caller]
    pub fn add_node(&mut self, node: N, addrs: &[IpAddr]) -> NodeId {
        let id = self.nodes.len();
        for &addr in addrs {
            match self.routes.binary_search_by(|r| r.0.cmp(&addr)) {
                Ok(i) => panic!("address {addr} already belongs to node{}", self.routes[i].1),
                Err(i) => self.routes.insert(i, (addr, id)),
            }
        }
        self.nodes.push(node);
        self.link_ids.push(Vec::new());
        NodeId(id)
    }

    /// Send packets whose destination no node owns to `node` (`None`: drop them as no
    /// route, the default), as a default route pointing at a gateway would: an any-IP
    /// interceptor, a router, a TUN forwarder. The node's own packets to such addresses are
    /// still dropped as no route, never looped back to it.
    ///
    /// # Panics
    ///
    /// If the node is unknown.
    #[track_caller]
    pub fn set_default_route(&mut self, node: Option<NodeId>) {
        if let Some(n) = node {
            assert!(n.0 < self.nodes.len(), "unknown node {n}");
        }
        self.default_route = node.map(|n| n.0);
    }

    /// Join `a` and `b` with a link in each direction, both configured as `cfg`.
    #[track_caller]
    pub fn link(&mut self, a: NodeId, b: NodeId, cfg: LinkConfig) {
        self.link_dir(a, b, cfg);
        self.link_dir(b, a, cfg);
    }

    /// Add the one-way link `from -> to`, or reconfigure it if it exists (its counters,
    /// queue, capture and fault state carry on; packets in flight keep their arrival times).
    ///
    /// # Panics
    ///
    /// If a probability in `cfg` is outside `0..=1`, or a node is unknown.
    #[track_caller]
    pub fn link_dir(&mut self, from: NodeId, to: NodeId, cfg: LinkConfig) {
        cfg.validate();
        assert!(to.0 < self.nodes.len(), "unknown node {to}");
        if let Some(l) = self.link_id(from, to) {
            self.links[l].cfg = cfg;
            return;
        }
        let mut link = Link::new(from.0, to.0, cfg, Rng::new(self.rng.next_u64()));
        link.cut = self.cuts.contains(&pair(from.0, to.0));
        let row = &mut self.link_ids[from.0];
        if row.len() <= to.0 {
            row.resize(to.0 + 1, None);
        }
        row[to.0] = Some(self.links.len());
        self.links.push(link);
    }

    /// Pre-allocate room for `packets` packets of up to `size` bytes in flight, so that a
    /// run staying within that makes no allocation at all, not even while warming up.
    pub fn reserve(&mut self, packets: usize, size: usize) {
        let more = packets.saturating_sub(self.pool.owned());
        self.pool.grow(more, size.min(MAX_PACKET));
        let room = self.pool.owned().saturating_sub(self.events.len());
        self.events.reserve(room);
    }

    /// Cut (`cut = true`) or heal the links between `a` and `b`, both ways. While cut, every
    /// packet sent either way, or arriving either way, is dropped and counted as partition.
    pub fn set_partition(&mut self, a: NodeId, b: NodeId, cut: bool) {
        let key = pair(a.0, b.0);
        self.cuts.retain(|&c| c != key);
        if cut {
            self.cuts.push(key);
        }
        for (from, to) in [(a, b), (b, a)] {
            if let Some(l) = self.link_id(from, to) {
                self.links[l].cut = cut;
            }
        }
    }

    /// The node `id`.
    pub fn node(&self, id: NodeId) -> &N {
        &self.nodes[id.0]
    }

    /// The node `id`, mutably (for application calls between steps).
    pub fn node_mut(&mut self, id: NodeId) -> &mut N {
        &mut self.nodes[id.0]
    }

    /// How many nodes are attached.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Packets currently on links (duplicates included).
    pub fn in_flight(&self) -> usize {
        self.events.len()
    }

    /// Network-wide counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// The counters of the link `from -> to` (all zero if it does not exist, except
    /// `dropped_no_route`).
    pub fn link_stats(&self, from: NodeId, to: NodeId) -> LinkStats {
        let mut stats =
            self.link_id(from, to).map_or_else(LinkStats::default, |l| self.links[l].stats);
        let unlinked = self.unlinked.iter().find(|u| (u.0, u.1) == (from.0, to.0));
        stats.dropped_no_route = unlinked.map_or(0, |u| u.2);
        stats
    }

    /// A running hash over `(time, from, to, bytes)` of every packet delivered so far, in
    /// delivery order. Equal for two runs with the same seed and the same nodes.
    pub fn trace_hash(&self) -> u64 {
        self.trace.value()
    }

    /// Process the next event, if any: see the [module documentation](super). Returns false
    /// (without advancing time) when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.step_until(Instant::from_micros(u64::MAX))
    }

    /// Step until `until` holds (checked before each step) or nothing is left to happen.
    pub fn drive(&mut self, mut until: impl FnMut(&mut Self) -> bool) {
        while !until(self) && self.step() {}
    }

    /// Like [`Network::drive`], but give up after `max_steps` steps. Returns how many steps
    /// were taken once `until` holds.
    ///
    /// # Errors
    ///
    /// [`SimError::Livelock`] if `max_steps` steps pass without `until` holding, and
    /// [`SimError::Idle`] if nothing is left to happen while `until` is still false.
    pub fn drive_bounded(
        &mut self,
        max_steps: u64,
        mut until: impl FnMut(&mut Self) -> bool,
    ) -> Result<u64, SimError> {
        let mut steps = 0;
        loop {
            if until(self) {
                return Ok(steps);
            }
            if steps == max_steps {
                return Err(SimError::Livelock { steps });
            }
            if !self.step() {
                return Err(SimError::Idle);
            }
            steps += 1;
        }
    }

    /// Process every event due at or before `t`, then move the clock to `t` (if it is not
    /// already later).
    pub fn run_until(&mut self, t: Instant) {
        while self.step_until(t) {}
        self.now = self.now.max(t);
    }

    /// Start recording the link `from -> to` as a pcap file (restarting any capture already
    /// running there). Packets are recorded as delivered, after corruption.
    ///
    /// # Panics
    ///
    /// If there is no such link.
    #[track_caller]
    pub fn capture(&mut self, from: NodeId, to: NodeId) {
        let l = self.link_id(from, to);
        let l = l.unwrap_or_else(|| panic!("no link {from} -> {to} to capture"));
        self.links[l].capture = Some(pcap::start());
    }

    /// The capture of `from -> to` so far, as pcap file bytes, if one is running.
    pub fn pcap(&self, from: NodeId, to: NodeId) -> Option<&[u8]> {
        self.links[self.link_id(from, to)?].capture.as_deref()
    }

    /// Stop the capture of `from -> to` and return its pcap file bytes.
    pub fn take_pcap(&mut self, from: NodeId, to: NodeId) -> Option<Vec<u8>> {
        let l = self.link_id(from, to)?;
        self.links[l].capture.take()
    }

    /// Write the capture of `from -> to` so far to `path` (it keeps running).
    ///
    /// # Errors
    ///
    /// `NotFound` if no capture is running on that link, or the error from writing the file.
    pub fn write_pcap(
        &self,
        from: NodeId,
        to: NodeId,
        path: impl AsRef<Path>,
    ) -> std::io::Result<()> {
        let bytes = self.pcap(from, to).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no capture on that link")
        })?;
        std::fs::write(path, bytes)
    }

    /// One step, unless the next event is later than `limit` (or there is none).
    fn step_until(&mut self, limit: Instant) -> bool {
        self.drain_all();
        let Some((at, next)) = self.next_event() else { return false };
        if at > limit {
            return false;
        }
        self.now = at;
        match next {
            Next::Packet => {
                let packet = self.events.pop();
                self.arrive(packet.expect("next_event saw a packet"));
            }
            Next::Timer(i) => {
                self.stats.timers_fired += 1;
                self.nodes[i].handle_timeout(at);
            }
        }
        self.drain_all();
        for node in &mut self.nodes {
            node.after_step(at);
        }
        self.stats.steps += 1;
        true
    }

    /// The earliest event: the first packet arrival or node deadline, packets first on ties,
    /// then the node added first. Past deadlines are due now.
    fn next_event(&mut self) -> Option<(Instant, Next)> {
        let mut best = self.events.peek().map(|p| (p.at, Next::Packet));
        for (i, node) in self.nodes.iter_mut().enumerate() {
            let Some(t) = node.poll_timeout() else { continue };
            if best.is_none_or(|(b, _)| t < b) {
                best = Some((t, Next::Timer(i)));
            }
        }
        best.map(|(t, next)| (t.max(self.now), next))
    }

    /// Hand an arrived packet to its node (unless its link was cut meanwhile).
    fn arrive(&mut self, packet: InFlight) {
        let link = &mut self.links[packet.link];
        if link.cut {
            link.stats.dropped_partition += 1;
        } else {
            let bytes = &packet.bytes[..];
            link.stats.delivered += 1;
            link.stats.bytes_delivered += bytes.len() as u64;
            if let Some(capture) = &mut link.capture {
                pcap::record(capture, self.now, bytes);
            }
            self.trace.delivery(self.now, link.from, link.to, bytes);
            self.stats.delivered += 1;
            self.nodes[link.to].handle(self.now, bytes);
        }
        self.pool.recycle(packet.bytes);
    }

    /// Move every node's pending output onto the links, nodes in order.
    fn drain_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.drain(i);
        }
    }

    /// Move node `i`'s pending output onto the links (at most `MAX_BURST` packets).
    fn drain(&mut self, i: usize) {
        for _ in 0..MAX_BURST {
            let Some(len) = self.nodes[i].poll_transmit(self.now, &mut self.scratch) else {
                return;
            };
            assert!(len <= MAX_PACKET, "node{i} returned a {len}-byte packet");
            self.send(i, len);
        }
    }

    /// Route the `len` bytes in the scratch buffer from node `from` and offer them to a link.
    fn send(&mut self, from: usize, len: usize) {
        let Some(dst) = destination(&self.scratch[..len]) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let to = match self.routes.binary_search_by(|r| r.0.cmp(&dst)) {
            Ok(r) => self.routes[r].1,
            Err(_) => match self.default_route.filter(|&d| d != from) {
                Some(d) => d,
                None => {
                    self.stats.dropped_no_route += 1;
                    return;
                }
            },
        };
        let Some(l) = self.link_id(NodeId(from), NodeId(to)) else {
            self.count_unlinked(from, to);
            return;
        };
        match self.links[l].transmit(self.now, &mut self.scratch[..len]) {
            Verdict::Drop => {}
            Verdict::Deliver { at, copy_at } => {
                self.enqueue(l, at, len);
                if let Some(at) = copy_at {
                    self.enqueue(l, at, len);
                }
            }
        }
    }

    /// Put a copy of the first `len` scratch bytes on link `l`, arriving at `at`.
    fn enqueue(&mut self, link: usize, at: Instant, len: usize) {
        let bytes = self.pool.copy_of(&self.scratch[..len]);
        // Size the queue with the pool, so it never grows on its own in steady state.
        let room = self.pool.owned().saturating_sub(self.events.len());
        self.events.reserve(room);
        self.events.push(InFlight { at, seq: self.next_seq, link, bytes });
        self.next_seq += 1;
    }

    /// Count a packet dropped because `from` has no link to `to`.
    fn count_unlinked(&mut self, from: usize, to: usize) {
        self.stats.dropped_no_route += 1;
        match self.unlinked.iter_mut().find(|u| (u.0, u.1) == (from, to)) {
            Some(u) => u.2 += 1,
            None => self.unlinked.push((from, to, 1)),
        }
    }

    /// Index in `links` of the link `from -> to`.
    fn link_id(&self, from: NodeId, to: NodeId) -> Option<usize> {
        self.link_ids.get(from.0)?.get(to.0).copied().flatten()
    }
}

/// The unordered pair `{a, b}` as `(low, high)`.
fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

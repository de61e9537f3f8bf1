//! The seeded, virtual-time network simulator.
//!
//! A [`Network`] owns a set of [`Node`]s (each an endpoint plus its applications), directed
//! links between them with configurable faults ([`LinkConfig`]), a virtual clock and one seeded
//! [`Rng`](crate::rng::Rng). Nodes exchange whole IP packets (IPv4 or IPv6 bytes); the simulator
//! reads only the version nibble and the destination address, so it works with any node that
//! speaks IP, including hand-written test nodes.
//!
//! # Determinism
//!
//! Every random choice (loss, jitter, reordering, duplication, corruption) comes from the
//! network's seed: each link draws its own generator from the network's generator when it is
//! created. Events are ordered by `(time, insertion counter)` and nodes are visited in the
//! order they were added, so the same seed and the same nodes give the same run, bit for bit.
//! [`Network::trace_hash`] summarises a run so tests can compare two of them.
//!
//! # The step loop
//!
//! [`Network::step`] first drains every node's pending output into the links, then processes
//! the earliest event (a packet arrival, or the earliest node deadline from
//! [`Node::poll_timeout`]), drains every node's output again and finally calls
//! [`Node::after_step`] on every node. Packet arrivals win ties with timers; among timers the
//! node added first wins. Time never goes backwards: a deadline already in the past fires at
//! the current time.
//!
//! # Example
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use tcpcore::sim::{LinkConfig, Network, Node};
//! use tcpcore::Instant;
//!
//! /// Sends one IPv4 header to 10.0.0.2 and counts what it receives.
//! struct Once { dst: [u8; 4], sent: bool, got: usize }
//!
//! impl Node for Once {
//!     fn handle(&mut self, _now: Instant, _packet: &[u8]) { self.got += 1; }
//!     fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<usize> {
//!         if self.sent { return None; }
//!         self.sent = true;
//!         buf[..20].fill(0);
//!         buf[0] = 0x45;
//!         buf[16..20].copy_from_slice(&self.dst);
//!         Some(20)
//!     }
//!     fn poll_timeout(&mut self) -> Option<Instant> { None }
//!     fn handle_timeout(&mut self, _now: Instant) {}
//! }
//!
//! let mut net = Network::new(7);
//! let a = net.add_node(Once { dst: [10, 0, 0, 2], sent: false, got: 0 },
//!                      &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))]);
//! let b = net.add_node(Once { dst: [10, 0, 0, 1], sent: true, got: 0 },
//!                      &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))]);
//! net.link(a, b, LinkConfig::default());
//! net.drive(|net| net.node(b).got == 1);
//! assert_eq!(net.now(), Instant::from_millis(1));
//! ```

mod apps;
mod host;
mod invariants;
mod link;
mod network;
mod packet;
mod stream;

pub use crate::pcap::{LINKTYPE_RAW, PCAP_MAGIC};
pub use apps::{response_len, BulkApp, Model, ModelApp};
pub use host::{Acceptor, App, Decider, Finished, Host};
pub use invariants::{check_connection, ConnWatch};
pub use link::{LinkConfig, LinkStats, Loss};
pub use network::{NetStats, Network};
pub use stream::{pattern_fill, StreamHash};

use crate::Instant;

/// Something attached to the simulated network: an endpoint plus its applications.
///
/// The methods mirror the engine's sans-IO contract. The simulator calls them in this order
/// within one step: `handle` or `handle_timeout` for the event, `poll_transmit` until it
/// returns `None`, then `after_step`.
pub trait Node {
    /// An IP packet arrived for this node.
    fn handle(&mut self, now: Instant, packet: &[u8]);

    /// Write the next outgoing IP packet into `buf` and return its length, or `None` when
    /// there is nothing to send. `buf` is at least 65,536 bytes long.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize>;

    /// The earliest deadline at which [`Node::handle_timeout`] must be called, if any.
    fn poll_timeout(&mut self) -> Option<Instant>;

    /// Time has reached (at least) the deadline; spurious calls must be harmless.
    fn handle_timeout(&mut self, now: Instant);

    /// Called on every node after every simulator step, for application logic and invariant
    /// checks. Output produced here is sent at the start of the next step, at the same time.
    fn after_step(&mut self, now: Instant) {
        let _ = now;
    }
}

/// A node's handle in its [`Network`], in the order nodes were added (0, 1, 2, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(usize);

impl NodeId {
    /// The node's position in the order nodes were added.
    pub const fn index(self) -> usize {
        self.0
    }
}

impl core::fmt::Display for NodeId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "node{}", self.0)
    }
}

/// Why [`Network::drive_bounded`] stopped before its predicate held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SimError {
    /// `steps` steps passed without the predicate holding: something keeps the network busy
    /// forever (a timer re-armed at the same instant, a packet ping-pong with zero delay...).
    Livelock {
        /// How many steps were taken.
        steps: u64,
    },
    /// Nothing is left to happen (no packet in flight, no deadline) and the predicate is
    /// still false: the run is stuck.
    Idle,
}

impl core::fmt::Display for SimError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SimError::Livelock { steps } => {
                write!(f, "livelock: {steps} steps without reaching the goal")
            }
            SimError::Idle => f.write_str("network idle before reaching the goal"),
        }
    }
}

impl std::error::Error for SimError {}

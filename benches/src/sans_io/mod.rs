//! Side-by-side runs of two sans-IO engines, tcpcore and smoltcp, driven the same way in one
//! thread: two endpoints (two smoltcp `Interface`s) joined by an in-memory [`Link`] of whole
//! IP packets, MTU-sized, no GSO, the same application copy size ([`crate::APP_BUF`]) and the
//! same fixed 256 KiB buffers, virtual time advancing 1 µs per step. Each engine keeps its
//! own defaults otherwise (tcpcore offers timestamps and SACK as Linux does; smoltcp 0.12
//! offers neither timestamps nor SACK by default).
//!
//! Checksums are either computed (the sender fills them in, the receiver verifies them) or
//! offloaded (the TCP checksum is left to the device on send and vouched for on receive;
//! both engines still compute and verify the IPv4 header checksum).

pub mod link;
pub mod smoltcp_pair;
pub mod tcpcore_pair;

pub use link::{Link, Pipe};

/// Send and receive buffer size of every connection of both engines (no auto-tuning).
pub const BUFFER: usize = 256 << 10;

/// The server's port.
pub const PORT: u16 = 7;

/// How the TCP checksum is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Csum {
    /// Computed on send and verified on receive.
    Computed,
    /// Left to the device on send, vouched for by the device on receive.
    Offloaded,
}

impl Csum {
    /// Short name for bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Csum::Computed => "csum",
            Csum::Offloaded => "offload",
        }
    }
}

/// What one bench case does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// One connection, client to server, bytes in [`crate::APP_BUF`] writes and reads.
    Bulk,
    /// Sequential connections: handshake, one byte each way, the server closes first.
    Echo,
    /// 64-byte request, 64-byte response, on one connection.
    RequestResponse,
}

/// One case: the work, the link MTU and the checksum mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Case {
    /// What is measured.
    pub work: Work,
    /// The link MTU (IP packet size).
    pub mtu: usize,
    /// Checksums computed or offloaded.
    pub csum: Csum,
}

impl Case {
    /// Every case of the group: bulk at MTU 1500 and 65535, echo connections and 64-byte
    /// round trips at MTU 1500, each with checksums computed and offloaded.
    pub fn all() -> Vec<Case> {
        let mut v = Vec::new();
        for (work, mtu) in [
            (Work::Bulk, 1500),
            (Work::Bulk, 65535),
            (Work::Echo, 1500),
            (Work::RequestResponse, 1500),
        ] {
            for csum in [Csum::Computed, Csum::Offloaded] {
                v.push(Case { work, mtu, csum });
            }
        }
        v
    }

    /// The case's name, e.g. `bulk_1500_csum`.
    pub fn name(&self) -> String {
        let w = match self.work {
            Work::Bulk => format!("bulk_{}", self.mtu),
            Work::Echo => "handshake_echo_close".to_string(),
            Work::RequestResponse => "rr64".to_string(),
        };
        format!("{w}_{}", self.csum.name())
    }

    /// What one unit of work is (for rates).
    pub fn unit(&self) -> &'static str {
        match self.work {
            Work::Bulk => "Gbit/s",
            Work::Echo => "k conn/s",
            Work::RequestResponse => "k rt/s",
        }
    }

    /// Units of work in one summary round (a few hundred ms on a fast core).
    pub fn round_units(&self) -> u64 {
        match self.work {
            Work::Bulk => 512 << 20,
            Work::Echo => 20_000,
            Work::RequestResponse => 100_000,
        }
    }

    /// Rate in [`Case::unit`] of `units` done in `secs`.
    pub fn rate(&self, units: u64, secs: f64) -> f64 {
        match self.work {
            Work::Bulk => units as f64 * 8.0 / secs / 1e9,
            Work::Echo | Work::RequestResponse => units as f64 / secs / 1e3,
        }
    }
}

/// One engine's client and server over a [`Link`], ready to run a [`Case`]'s work.
pub trait Pair {
    /// The engine's name.
    const NAME: &'static str;

    /// A client and a server for `case` (the bulk and request/response cases also open
    /// their connection here).
    fn new(case: Case) -> Self;

    /// Run `units` of the case's work: bytes for bulk, connections for echo, round trips for
    /// request/response.
    fn run(&mut self, units: u64);

    /// Packets carried both ways since the pair was made (setup included).
    fn packets(&self) -> u64;
}

/// Request and response size of [`Work::RequestResponse`].
pub const RR_SIZE: usize = 64;

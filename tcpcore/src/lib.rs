//! A sans-IO TCP/IP engine.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cc;
pub mod config;
pub mod conn;
pub mod endpoint;
mod error;
mod event;
pub mod rng;
mod stats;
mod time;
pub mod wire;

pub use config::{ConnConfig, EndpointConfig};
pub use conn::{ConnParams, Connection, SeqVars, State, TcpInfo};
pub use endpoint::{ConnectionHandle, DatagramEvent, Endpoint, FourTuple};
pub use error::{ConnectionError, EndpointError, ReadError, WriteError};
pub use event::Event;
pub use stats::EndpointStats;
pub use time::Instant;

/// One IP packet written by `poll_transmit` into the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Length of the packet at the start of the buffer.
    pub len: usize,
}
#[cfg(feature = "sim")]
pub mod sim;

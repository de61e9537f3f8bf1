//! A sans-IO TCP/IP engine.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
mod error;
mod event;
pub mod rng;
mod time;
pub mod wire;

pub use config::{ConnConfig, EndpointConfig};
pub use error::{ConnectionError, EndpointError, ReadError, WriteError};
pub use event::Event;
pub use time::Instant;
#[cfg(feature = "sim")]
pub mod sim;

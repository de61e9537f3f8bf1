//! The `io::ErrorKind` each engine error maps to, as the Linux kernel reports it.
//!
//! `From<tcpcore::ConnectionError> for io::Error` cannot live in this crate (both types are
//! foreign: the orphan rule), so the conversions are functions. Each `io::Error` made here
//! carries the engine's error as its inner error, so callers can
//! [`downcast`](std::io::Error::downcast) it back.

use std::io;

use tcpcore::{ConnectionError, EndpointError, ReadError, WriteError};

/// The kernel's error kind for a failed connection: `ECONNREFUSED`, `ECONNRESET`,
/// `ETIMEDOUT`, or `ECONNABORTED` after our own abort.
pub fn connection_error(e: ConnectionError) -> io::Error {
    let kind = match e {
        ConnectionError::Refused => io::ErrorKind::ConnectionRefused,
        ConnectionError::Reset => io::ErrorKind::ConnectionReset,
        ConnectionError::TimedOut => io::ErrorKind::TimedOut,
        ConnectionError::Aborted => io::ErrorKind::ConnectionAborted,
    };
    io::Error::new(kind, e)
}

/// A read error: `WouldBlock`, `NotConnected`, or the connection's failure.
pub fn read_error(e: ReadError) -> io::Error {
    match e {
        ReadError::WouldBlock => io::Error::new(io::ErrorKind::WouldBlock, e),
        ReadError::NotConnected => io::Error::new(io::ErrorKind::NotConnected, e),
        ReadError::Failed(e) => connection_error(e),
    }
}

/// A write error. A write after a reset, or after `shutdown`, is `BrokenPipe` (`EPIPE`),
/// as on Linux; after a timeout it is `TimedOut`.
pub fn write_error(e: WriteError) -> io::Error {
    let kind = match e {
        WriteError::Blocked => io::ErrorKind::WouldBlock,
        WriteError::NotConnected => io::ErrorKind::NotConnected,
        WriteError::Closed => io::ErrorKind::BrokenPipe,
        WriteError::Failed(ConnectionError::TimedOut) => io::ErrorKind::TimedOut,
        WriteError::Failed(ConnectionError::Refused) => io::ErrorKind::ConnectionRefused,
        WriteError::Failed(ConnectionError::Reset | ConnectionError::Aborted) => {
            io::ErrorKind::BrokenPipe
        }
    };
    io::Error::new(kind, e)
}

/// An error opening a connection or a listener: `AddrInUse`, `AddrNotAvailable`, or
/// `InvalidInput` for an unusable address.
pub fn endpoint_error(e: EndpointError) -> io::Error {
    let kind = match e {
        EndpointError::AddrInUse => io::ErrorKind::AddrInUse,
        EndpointError::AddrNotAvailable => io::ErrorKind::AddrNotAvailable,
        EndpointError::InvalidAddress => io::ErrorKind::InvalidInput,
    };
    io::Error::new(kind, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_the_kernel() {
        use io::ErrorKind as K;
        assert_eq!(connection_error(ConnectionError::Refused).kind(), K::ConnectionRefused);
        assert_eq!(connection_error(ConnectionError::Reset).kind(), K::ConnectionReset);
        assert_eq!(connection_error(ConnectionError::TimedOut).kind(), K::TimedOut);
        assert_eq!(write_error(WriteError::Failed(ConnectionError::Reset)).kind(), K::BrokenPipe);
        assert_eq!(write_error(WriteError::Closed).kind(), K::BrokenPipe);
        assert_eq!(read_error(ReadError::NotConnected).kind(), K::NotConnected);
        assert_eq!(endpoint_error(EndpointError::AddrInUse).kind(), K::AddrInUse);
        assert_eq!(endpoint_error(EndpointError::AddrNotAvailable).kind(), K::AddrNotAvailable);
        let e = connection_error(ConnectionError::Reset);
        assert_eq!(
            e.into_inner().unwrap().downcast::<ConnectionError>().ok().as_deref(),
            Some(&ConnectionError::Reset)
        );
    }
}

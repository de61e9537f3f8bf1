//! The `io::ErrorKind` each engine error maps to, as the Linux kernel reports it.
//!
//! The mapping itself is tcpcore's `From<…> for io::Error`; these named functions keep the
//! call sites readable. Each `io::Error` carries the engine's error as its inner error, so
//! callers can [`downcast`](std::io::Error::downcast) it back, except `WouldBlock`: a bare
//! kind, which allocates nothing, as tokio's own (a `try_read` loop meets it often).

use std::io;

use tcpcore::{ConnectionError, EndpointError, ReadError, WriteError};

/// A connection failure as the kernel reports it (tcpcore's `From` impl).
pub fn connection_error(e: ConnectionError) -> io::Error {
    e.into()
}

/// A read error: `WouldBlock`, `NotConnected`, or the connection's failure.
pub fn read_error(e: ReadError) -> io::Error {
    match e {
        ReadError::WouldBlock => io::ErrorKind::WouldBlock.into(),
        e => e.into(),
    }
}

/// A write error. A write after a reset, or after `shutdown`, is `BrokenPipe` (`EPIPE`),
/// as on Linux; after a timeout it is `TimedOut`.
pub fn write_error(e: WriteError) -> io::Error {
    match e {
        WriteError::Blocked => io::ErrorKind::WouldBlock.into(),
        e => e.into(),
    }
}

/// An error opening a connection or a listener: `AddrInUse`, `AddrNotAvailable`, or
/// `InvalidInput` for an unusable address.
pub fn endpoint_error(e: EndpointError) -> io::Error {
    e.into()
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
        assert_eq!(connection_error(ConnectionError::HostUnreachable).kind(), K::HostUnreachable);
        let net = ConnectionError::NetworkUnreachable;
        assert_eq!(connection_error(net).kind(), K::NetworkUnreachable);
        assert_eq!(write_error(WriteError::Failed(net)).kind(), K::NetworkUnreachable);
        assert_eq!(write_error(WriteError::Failed(ConnectionError::Reset)).kind(), K::BrokenPipe);
        assert_eq!(write_error(WriteError::Closed).kind(), K::BrokenPipe);
        assert_eq!(read_error(ReadError::NotConnected).kind(), K::NotConnected);
        assert_eq!(read_error(ReadError::WouldBlock).kind(), K::WouldBlock);
        assert_eq!(write_error(WriteError::Blocked).kind(), K::WouldBlock);
        assert_eq!(endpoint_error(EndpointError::AddrInUse).kind(), K::AddrInUse);
        assert_eq!(endpoint_error(EndpointError::AddrNotAvailable).kind(), K::AddrNotAvailable);
        let e = connection_error(ConnectionError::Reset);
        assert_eq!(
            e.into_inner().unwrap().downcast::<ConnectionError>().ok().as_deref(),
            Some(&ConnectionError::Reset)
        );
    }
}

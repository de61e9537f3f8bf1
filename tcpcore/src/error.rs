//! Errors returned to the application. Peer misbehaviour is never an error here: it is dropped
//! and counted. These are outcomes the app must see, or mistakes the caller made.

/// Why a connection ended abnormally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionError {
    /// Our SYN was answered by a RST (`ECONNREFUSED`).
    Refused,
    /// The peer reset an established connection (`ECONNRESET`).
    Reset,
    /// Retransmissions, keepalive probes or the user timeout ran out (`ETIMEDOUT`).
    TimedOut,
    /// The application aborted the connection (sent RST).
    Aborted,
    /// ICMP reported the network unreachable (`ENETUNREACH`): an ICMPv4 net unreachable,
    /// unknown or prohibited, or ICMPv6 no route (RFC 1122 §4.2.3.9; Linux
    /// `icmp_err_convert`). Aborts SYN-SENT when hard; else reported on a later timeout.
    NetworkUnreachable,
    /// ICMP reported the host unreachable (`EHOSTUNREACH`): ICMPv4 host unreachable,
    /// unknown, prohibited or filtered, time exceeded, or ICMPv6 address unreachable.
    HostUnreachable,
    /// ICMPv6 reported the destination administratively prohibited (`EACCES`, Linux
    /// `icmpv6_err_convert`).
    Prohibited,
    /// ICMP reported that the peer does not speak TCP: ICMPv4 protocol unreachable
    /// (`ENOPROTOOPT`) or a parameter problem (`EPROTO`).
    ProtocolError,
}

impl core::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ConnectionError::Refused => "connection refused",
            ConnectionError::Reset => "connection reset by peer",
            ConnectionError::TimedOut => "connection timed out",
            ConnectionError::Aborted => "connection aborted locally",
            ConnectionError::NetworkUnreachable => "network is unreachable",
            ConnectionError::HostUnreachable => "no route to host",
            ConnectionError::Prohibited => "destination administratively prohibited",
            ConnectionError::ProtocolError => "protocol error reported by ICMP",
        })
    }
}

impl std::error::Error for ConnectionError {}

/// Why `write` accepted nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteError {
    /// The send buffer is full; wait for [`crate::Event::Writable`].
    Blocked,
    /// The handshake has not completed; wait for [`crate::Event::Connected`]. (Data may be
    /// queued in SYN-SENT; this is returned only for a connection that can never send.)
    NotConnected,
    /// Writing was shut down by this side (`EPIPE`).
    Closed,
    /// The connection failed; writes fail with `EPIPE` after a reset (FA-02).
    Failed(ConnectionError),
}

impl core::fmt::Display for WriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WriteError::Blocked => f.write_str("send buffer full"),
            WriteError::NotConnected => f.write_str("not connected"),
            WriteError::Closed => f.write_str("write side already shut down"),
            WriteError::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for WriteError {}

/// Why `read` returned no bytes (end of stream is `Ok(0)`, as with `std::io::Read`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadError {
    /// Nothing buffered yet; wait for [`crate::Event::Readable`].
    WouldBlock,
    /// The handshake has not completed.
    NotConnected,
    /// The connection failed.
    Failed(ConnectionError),
}

impl core::fmt::Display for ReadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReadError::WouldBlock => f.write_str("no data buffered"),
            ReadError::NotConnected => f.write_str("not connected"),
            ReadError::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Why `connect` or `listen` could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndpointError {
    /// The local address/port is already bound (`EADDRINUSE`).
    AddrInUse,
    /// No ephemeral port is free, or the address is not ours (`EADDRNOTAVAIL`).
    AddrNotAvailable,
    /// The address is unusable (port 0 for a peer, multicast, mixed families).
    InvalidAddress,
    /// The connection request is no longer waiting for a decision: it was decided already,
    /// it expired, or interception was turned off (`ENOENT`).
    RequestGone,
}

impl core::fmt::Display for EndpointError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            EndpointError::AddrInUse => "address in use",
            EndpointError::AddrNotAvailable => "address not available",
            EndpointError::InvalidAddress => "invalid address",
            EndpointError::RequestGone => "connection request no longer pending",
        })
    }
}

impl std::error::Error for EndpointError {}

// The kernel's error kinds, so an async adapter's users see what tokio's TcpStream gives.
// (`std::io::Error` is only an error type here: the engine still does no I/O.)

impl ConnectionError {
    /// The `io::ErrorKind` the kernel's errno maps to. `ENOPROTOOPT` and `EPROTO` have no
    /// kind of their own: [`ConnectionError::ProtocolError`] is `Other`.
    pub fn kind(self) -> std::io::ErrorKind {
        use std::io::ErrorKind as K;
        match self {
            ConnectionError::Refused => K::ConnectionRefused,
            ConnectionError::Reset => K::ConnectionReset,
            ConnectionError::TimedOut => K::TimedOut,
            ConnectionError::Aborted => K::ConnectionAborted,
            ConnectionError::NetworkUnreachable => K::NetworkUnreachable,
            ConnectionError::HostUnreachable => K::HostUnreachable,
            ConnectionError::Prohibited => K::PermissionDenied,
            ConnectionError::ProtocolError => K::Other,
        }
    }
}

impl From<ConnectionError> for std::io::Error {
    fn from(e: ConnectionError) -> Self {
        std::io::Error::new(e.kind(), e)
    }
}

impl From<ReadError> for std::io::Error {
    fn from(e: ReadError) -> Self {
        use std::io::ErrorKind as K;
        match e {
            ReadError::WouldBlock => std::io::Error::new(K::WouldBlock, e),
            ReadError::NotConnected => std::io::Error::new(K::NotConnected, e),
            ReadError::Failed(e) => e.into(),
        }
    }
}

impl From<WriteError> for std::io::Error {
    /// A write after a reset, or after shutdown, is `BrokenPipe` (`EPIPE`) as on Linux (FA-02).
    fn from(e: WriteError) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e {
            WriteError::Blocked => K::WouldBlock,
            WriteError::NotConnected => K::NotConnected,
            WriteError::Closed => K::BrokenPipe,
            WriteError::Failed(ConnectionError::Reset | ConnectionError::Aborted) => K::BrokenPipe,
            WriteError::Failed(e) => e.kind(),
        };
        std::io::Error::new(kind, e)
    }
}

impl From<EndpointError> for std::io::Error {
    fn from(e: EndpointError) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e {
            EndpointError::AddrInUse => K::AddrInUse,
            EndpointError::AddrNotAvailable => K::AddrNotAvailable,
            EndpointError::InvalidAddress => K::InvalidInput,
            EndpointError::RequestGone => K::NotFound,
        };
        std::io::Error::new(kind, e)
    }
}

//! Events a connection reports to the application.

use crate::ConnectionError;

/// Something the application may want to act on. Events are edge-triggered hints: after
/// `Readable` read until `WouldBlock`, after `Writable` write until `Blocked`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed (ESTABLISHED).
    Connected,
    /// New data (or the end of the stream) can be read.
    Readable,
    /// Send-buffer space became free.
    Writable,
    /// The peer sent FIN: after the buffered data, reads return end of stream.
    PeerFinished,
    /// The connection is finished: `None` after a clean close, else why it failed.
    Closed(Option<ConnectionError>),
}

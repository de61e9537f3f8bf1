//! Corking (Linux `TCP_CORK` and `MSG_MORE`): the application says more data follows, so a
//! final partial segment waits instead of leaving alone (RFC 9293 §3.8.6.2.1 leaves when to
//! send a partial segment to the sender). Unlike Linux there is no 200 ms ceiling: corked
//! data leaves when the cork is removed, a plain write follows, or `set_nodelay(true)`
//! pushes it.

use super::Connection;
use crate::WriteError;

/// The cork state of a connection.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cork {
    /// `TCP_CORK` is set.
    on: bool,
    /// The last write said more follows (`MSG_MORE`); its tail carries no PSH.
    pub(crate) more: bool,
    /// Send what is held once, cork or not (Linux `TCP_NAGLE_PUSH`, from `TCP_NODELAY`).
    push: bool,
}

impl Connection {
    /// Linux `TCP_CORK`: while on, a final partial segment is held; full segments still go.
    pub fn set_cork(&mut self, on: bool) {
        self.unsync_timers();
        self.cork.on = on;
    }

    /// Whether `TCP_CORK` is on.
    pub fn cork(&self) -> bool {
        self.cork.on
    }

    /// [`Connection::write`] with Linux's `MSG_MORE`: more data follows, so the final
    /// partial segment waits (without PSH) for a later plain write, `set_nodelay(true)` or
    /// the end of the stream.
    ///
    /// # Errors
    /// As [`Connection::write`].
    pub fn write_more(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        self.unsync_timers();
        let n = self.write(data)?;
        self.cork.more = true;
        Ok(n)
    }

    /// `TCP_NODELAY` set: what is queued goes now, corked or not (Linux pushes once).
    pub(crate) fn push_corked(&mut self) {
        self.cork.push = true;
    }

    /// A final partial segment waits for more data.
    pub(crate) fn corked(&self) -> bool {
        (self.cork.on || self.cork.more) && !self.cork.push
    }

    /// The tail of the buffer left: a push is done, and `MSG_MORE` with it.
    pub(crate) fn tail_sent(&mut self) {
        self.cork.push = false;
        self.cork.more = false;
    }
}

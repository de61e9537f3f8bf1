//! The per-connection cell shared by a stream (or its halves) and the driver.
//!
//! Lock order: the endpoint lock (`Shared::ep`) before a cell; a cell before the driver's
//! notify queue is never taken (the notify push happens after the cell is unlocked). Wakers
//! are taken under the lock and woken after it is released.

use std::sync::Mutex;
use std::task::Waker;
use std::time::Duration;

use tcpcore::{Connection, ConnectionHandle, Event};

/// One connection and the state its users and the driver share.
pub(crate) struct Cell {
    /// The endpoint's handle; valid until `Inner::removed`.
    pub(crate) handle: ConnectionHandle,
    pub(crate) inner: Mutex<Inner>,
}

/// What the cell's lock protects.
pub(crate) struct Inner {
    pub(crate) conn: Connection,
    /// Woken on Readable, PeerFinished, Connected and Closed.
    pub(crate) read_waker: Option<Waker>,
    /// Woken on Writable, Connected and Closed.
    pub(crate) write_waker: Option<Waker>,
    /// The cell is in the driver's work queue (or on its way there): at most once.
    pub(crate) queued: bool,
    /// The deadline of this cell's one live entry in the driver's timer heap.
    pub(crate) armed: Option<tcpcore::Instant>,
    /// The generation of that entry: entries with another are stale.
    pub(crate) timer_gen: u64,
    /// The driver told the endpoint the connection is closed; the handle may be reused and
    /// the driver ignores the cell from now on.
    pub(crate) removed: bool,
    /// `SO_LINGER`: `Some(0)` makes dropping the stream abort (RST).
    pub(crate) linger: Option<Duration>,
}

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the connection itself: its buffers would fill the screen.
        let mut d = f.debug_struct("Connection");
        d.field("handle", &self.handle.0);
        if let Ok(inner) = self.inner.try_lock() {
            d.field("local", &inner.conn.local_addr())
                .field("remote", &inner.conn.remote_addr())
                .field("state", &inner.conn.state());
        }
        d.finish_non_exhaustive()
    }
}

impl Cell {
    pub(crate) fn new(handle: ConnectionHandle, conn: Connection, queued: bool) -> Self {
        Cell {
            handle,
            inner: Mutex::new(Inner {
                conn,
                read_waker: None,
                write_waker: None,
                queued,
                armed: None,
                timer_gen: 0,
                removed: false,
                linger: None,
            }),
        }
    }
}

impl Inner {
    /// Drain the engine's events and move the wakers they concern into `out`.
    pub(crate) fn take_wakers(&mut self, out: &mut Vec<Waker>) {
        let (mut read, mut write) = (false, false);
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Readable | Event::PeerFinished => read = true,
                Event::Writable => write = true,
                Event::Connected | Event::Closed(_) => (read, write) = (true, true),
            }
        }
        if read {
            out.extend(self.read_waker.take());
        }
        if write {
            out.extend(self.write_waker.take());
        }
    }

    /// After an application call: whether the driver must be told about this cell (it has
    /// something to transmit, or `force`). Marks the cell queued; the caller pushes it with
    /// [`crate::stack::Shared::schedule`] after unlocking.
    pub(crate) fn needs_driver(&mut self, force: bool) -> bool {
        if self.queued || self.removed {
            return false;
        }
        if force || self.conn.wants_transmit() {
            self.queued = true;
            return true;
        }
        false
    }
}

/// Store `waker` in `slot` unless it already holds one that wakes the same task.
pub(crate) fn register(slot: &mut Option<Waker>, waker: &Waker) {
    if slot.as_ref().is_none_or(|w| !w.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}

//! The per-connection cell shared by a stream (or its halves) and the driver.
//!
//! Lock order: the endpoint lock (`Shared::ep`) before a cell; a cell before the driver's
//! notify queue is never taken (the notify push happens after the cell is unlocked). Wakers
//! are taken under the lock and woken after it is released.
//!
//! Two kinds of waiting, as in tokio: the `poll_*` methods keep one waker per direction (only
//! the last task to poll is woken), while the futures of `readable()`, `writable()`,
//! `ready()` and `async_io()` each own a slot in [`Waiters`], so every one of them is woken.

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
    /// The readiness futures waiting on this connection, every one woken by an event.
    pub(crate) waiters: Waiters,
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
                waiters: Waiters::default(),
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
        let mut dirs = 0;
        while let Some(event) = self.conn.poll_event() {
            dirs |= match event {
                Event::Readable | Event::PeerFinished => READ,
                Event::Writable => WRITE,
                Event::Connected | Event::Closed(_) => READ | WRITE,
            };
        }
        if dirs & READ != 0 {
            out.extend(self.read_waker.take());
        }
        if dirs & WRITE != 0 {
            out.extend(self.write_waker.take());
        }
        if dirs != 0 {
            self.waiters.wake(dirs, out);
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

/// A [`Waiters`] slot waits for the read direction (data, end of stream, errors).
pub(crate) const READ: u8 = 1;
/// A [`Waiters`] slot waits for the write direction (send-buffer space, errors).
pub(crate) const WRITE: u8 = 2;

/// The tasks awaiting readiness on one connection: one slot per waiting future, kept by the
/// future until it is dropped, so a cancelled wait leaves nothing behind. Slots are
/// allocated when a future first waits (the list keeps its capacity); waking moves the
/// wakers into the driver's reusable vector, so an arriving segment allocates nothing.
///
/// A slab rather than `tokio::sync::Notify`: the wakers stay under the cell's lock and are
/// woken by the driver after it unlocks, like the `poll_*` wakers, with no second lock
/// taken per segment and no change to the driver.
#[derive(Default)]
pub(crate) struct Waiters {
    slots: Vec<Slot>,
    /// Indices of unused slots.
    free: Vec<usize>,
}

/// One future's place in [`Waiters`].
#[derive(Default)]
struct Slot {
    /// [`READ`] and/or [`WRITE`]; 0 for an unused slot.
    dirs: u8,
    /// `None` once woken, until the future waits again.
    waker: Option<Waker>,
}

impl Waiters {
    /// Wait for `dirs` with `waker` in the slot `*slot`, taking a slot first if it has none.
    pub(crate) fn register(&mut self, slot: &mut Option<usize>, dirs: u8, waker: &Waker) {
        let i = *slot.get_or_insert_with(|| match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
        });
        let s = &mut self.slots[i];
        s.dirs = dirs;
        register(&mut s.waker, waker);
    }

    /// Give slot `i` back (its future is dropped).
    pub(crate) fn release(&mut self, i: usize) {
        self.slots[i] = Slot::default();
        self.free.push(i);
        if self.free.len() == self.slots.len() {
            // Nobody waits: the event path then has nothing to scan.
            self.slots.clear();
            self.free.clear();
        }
    }

    /// Whether slot `i` was woken since its future last waited.
    pub(crate) fn is_woken(&self, i: usize) -> bool {
        self.slots[i].waker.is_none()
    }

    /// Move the wakers of every slot waiting for one of `dirs` into `out`.
    pub(crate) fn wake(&mut self, dirs: u8, out: &mut Vec<Waker>) {
        for s in self.slots.iter_mut().filter(|s| s.dirs & dirs != 0) {
            out.extend(s.waker.take());
        }
    }

    /// Slots in use (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

/// Store `waker` in `slot` unless it already holds one that wakes the same task.
pub(crate) fn register(slot: &mut Option<Waker>, waker: &Waker) {
    if slot.as_ref().is_none_or(|w| !w.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn waiters_wake_by_direction_and_release_their_slots() {
        let (r, w) = (Arc::new(Count(AtomicUsize::new(0))), Arc::new(Count(AtomicUsize::new(0))));
        let (rw, ww) = (Waker::from(r.clone()), Waker::from(w.clone()));
        let mut list = Waiters::default();
        let (mut a, mut b, mut c) = (None, None, None);
        list.register(&mut a, READ, &rw);
        list.register(&mut b, READ, &rw);
        list.register(&mut c, WRITE, &ww);
        // Registering again keeps the slot.
        list.register(&mut a, READ, &rw);
        assert_eq!(list.len(), 3);
        let mut out = Vec::new();
        list.wake(READ, &mut out);
        assert_eq!(out.len(), 2, "both readers, not the writer");
        list.wake(READ, &mut out);
        assert_eq!(out.len(), 2, "a woken slot holds no waker until it waits again");
        list.wake(READ | WRITE, &mut out);
        out.drain(..).for_each(Waker::wake);
        assert_eq!((r.0.load(Ordering::Relaxed), w.0.load(Ordering::Relaxed)), (2, 1));
        list.release(b.unwrap());
        let mut d = None;
        list.register(&mut d, WRITE, &ww);
        assert_eq!((d, list.slots.len()), (b, 3), "a released slot is reused");
        for i in [a.unwrap(), c.unwrap(), d.unwrap()] {
            list.release(i);
        }
        assert_eq!((list.len(), list.slots.len()), (0, 0));
    }
}

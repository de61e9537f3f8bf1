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
    /// The generation of that entry: entries with another are stale. 32 bits: a stale entry
    /// would need 2^32 re-arms of its cell before its deadline to be taken for the live one,
    /// and would then only fire early (harmless, as any early timeout).
    pub(crate) timer_gen: u32,
    /// The driver told the endpoint the connection is closed; the handle may be reused and
    /// the driver ignores the cell from now on.
    pub(crate) removed: bool,
    /// `SO_LINGER` of zero: dropping the stream aborts (RST). Kept apart from other values
    /// (see [`Inner::set_linger`]).
    zero_linger: bool,
    /// Any other `SO_LINGER` value, recorded only: boxed, as it is rarely set (8 bytes in
    /// every connection instead of 16).
    other_linger: Option<Box<Duration>>,
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
                zero_linger: false,
                other_linger: None,
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

    /// `SO_LINGER` as last set.
    pub(crate) fn linger(&self) -> Option<Duration> {
        match (&self.other_linger, self.zero_linger) {
            (Some(d), _) => Some(**d),
            (None, true) => Some(Duration::ZERO),
            (None, false) => None,
        }
    }

    /// Set `SO_LINGER`; only zero changes what dropping the stream does.
    pub(crate) fn set_linger(&mut self, linger: Option<Duration>) {
        self.zero_linger = linger == Some(Duration::ZERO);
        self.other_linger = linger.filter(|d| !d.is_zero()).map(Box::new);
    }

    /// `SO_LINGER` is zero: dropping the stream aborts the connection.
    pub(crate) fn zero_linger(&self) -> bool {
        self.zero_linger
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
///
/// Boxed, allocated when a future first waits and kept (with its capacity) from then on, so
/// waiting again allocates nothing: a connection used only through `poll_*` and
/// `AsyncRead`/`AsyncWrite`, or idle from the start, pays one pointer for it.
#[derive(Default)]
pub(crate) struct Waiters(Option<Box<Slots>>);

impl std::fmt::Debug for Waiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.0.as_ref().map_or(0, |l| l.slots.len() - l.free.len());
        f.debug_struct("Waiters").field("waiting", &waiting).finish()
    }
}

/// The slots of a [`Waiters`] list, allocated with its first waiter.
#[derive(Default)]
struct Slots {
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
        let list = self.0.get_or_insert_with(Box::default);
        let i = *slot.get_or_insert_with(|| match list.free.pop() {
            Some(i) => i,
            None => {
                list.slots.push(Slot::default());
                list.slots.len() - 1
            }
        });
        let s = &mut list.slots[i];
        s.dirs = dirs;
        register(&mut s.waker, waker);
    }

    /// Give slot `i` back (its future is dropped).
    pub(crate) fn release(&mut self, i: usize) {
        let Some(list) = self.0.as_mut() else { return };
        list.slots[i] = Slot::default();
        list.free.push(i);
        if list.free.len() == list.slots.len() {
            // Nobody waits: the event path has nothing to scan.
            list.slots.clear();
            list.free.clear();
        }
    }

    /// Whether slot `i` was woken since its future last waited.
    pub(crate) fn is_woken(&self, i: usize) -> bool {
        self.0.as_ref().is_none_or(|list| list.slots[i].waker.is_none())
    }

    /// Move the wakers of every slot waiting for one of `dirs` into `out`.
    pub(crate) fn wake(&mut self, dirs: u8, out: &mut Vec<Waker>) {
        let Some(list) = self.0.as_mut() else { return };
        for s in list.slots.iter_mut().filter(|s| s.dirs & dirs != 0) {
            out.extend(s.waker.take());
        }
    }

    /// Slots in use (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |list| list.slots.len() - list.free.len())
    }

    /// Slots allocated, used or not (for tests).
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.0.as_ref().map_or(0, |list| list.slots.len())
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
        assert_eq!((d, list.capacity()), (b, 3), "a released slot is reused");
        for i in [a.unwrap(), c.unwrap(), d.unwrap()] {
            list.release(i);
        }
        assert_eq!((list.len(), list.capacity()), (0, 0));
    }
}

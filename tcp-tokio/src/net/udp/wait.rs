//! How a UDP socket's pending operation waits, as tokio's do: the async methods (`recv`,
//! `send_to`, `readable`, `ready`, …) each take a slot in the socket's waiter list, so every
//! waiting future is woken (two tasks receiving on one `Arc<UdpSocket>` both make progress);
//! the `poll_*` methods keep one waker per direction, and only the last task to poll is
//! woken; the `try_*` methods never wait.

use std::io;
use std::task::{Context, Poll};

use super::{UdpCell, UdpInner};
use crate::cell::{register, READ, WRITE};
use crate::lock;

/// How an operation that would block waits.
pub(super) enum Wait<'a, 'b> {
    /// Not at all (`try_*`): it fails with `WouldBlock`.
    Never,
    /// In the direction's one waker (`poll_*`).
    Poll(&'a Context<'b>),
    /// In the waiter list, in the slot of the future that owns the [`Waiter`].
    List(&'a Context<'b>, &'a mut Option<usize>),
}

impl Wait<'_, '_> {
    /// Wait for `dirs` ([`READ`] and/or [`WRITE`]): `Pending`, or for [`Wait::Never`] the
    /// `blocked` error. Call with the cell locked, after finding the socket not ready, so no
    /// event slips in between.
    pub(super) fn park<T>(
        self,
        inner: &mut UdpInner,
        dirs: u8,
        blocked: impl FnOnce() -> io::Error,
    ) -> Poll<io::Result<T>> {
        match self {
            Wait::Never => return Poll::Ready(Err(blocked())),
            Wait::Poll(cx) => {
                if dirs & READ != 0 {
                    register(&mut inner.read_waker, cx.waker());
                }
                if dirs & WRITE != 0 {
                    register(&mut inner.write_waker, cx.waker());
                }
            }
            Wait::List(cx, slot) => inner.waiters.register(slot, dirs, cx.waker()),
        }
        Poll::Pending
    }
}

/// An async method's place in the socket's waiter list, given back when its future is
/// dropped, so a cancelled wait leaves nothing behind.
pub(super) struct Waiter<'a> {
    cell: &'a UdpCell,
    slot: Option<usize>,
}

impl<'a> Waiter<'a> {
    pub(super) fn new(cell: &'a UdpCell) -> Self {
        Waiter { cell, slot: None }
    }

    /// Wait in this waiter's slot, for the task of `cx`.
    pub(super) fn with<'c, 'b>(&'c mut self, cx: &'c Context<'b>) -> Wait<'c, 'b> {
        Wait::List(cx, &mut self.slot)
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            lock(&self.cell.inner).waiters.release(i);
        }
    }
}

//! The state both packetdrill threads share (the script thread and the thread that runs
//! blocking system calls), and how a blocking call waits in virtual time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::task::Poll;
use std::thread::{self, ThreadId};
use std::time::Duration;

use tcpcore::Instant;

use crate::errno::{Res, EAGAIN};
use crate::sockets::Host;

/// Real time a blocked call on packetdrill's syscall thread waits before checking again
/// (normally it is woken at once by the script thread; this only bounds a missed wakeup).
const RECHECK: Duration = Duration::from_millis(50);

/// The host behind a mutex, and the condition variable blocked calls wait on.
pub(crate) struct Shared {
    host: Mutex<Host>,
    cv: Condvar,
    /// The script's thread, which owns the virtual clock: when it blocks, nobody else can
    /// move time, so it moves time itself.
    main: ThreadId,
    /// Calls waiting on the syscall thread.
    blocked: AtomicUsize,
}

impl Shared {
    /// A new host; the calling thread is the script thread.
    pub(crate) fn new(host: Host) -> Self {
        Shared {
            host: Mutex::new(host),
            cv: Condvar::new(),
            main: thread::current().id(),
            blocked: AtomicUsize::new(0),
        }
    }

    /// Lock the host (a panic on the other thread does not hide the state).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Host> {
        let mut g = self.host.lock().unwrap_or_else(|e| e.into_inner());
        g.sync();
        g
    }

    /// Before the script thread moves time on: give a call on the syscall thread that the
    /// last event made ready a moment (real time) to return, so packetdrill reads its end
    /// time before the clock moves past it.
    pub(crate) fn let_blocked_finish(&self) {
        if self.blocked.load(Ordering::SeqCst) > 0 {
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Wake every blocked call to re-check its condition.
    pub(crate) fn notify(&self) {
        self.cv.notify_all();
    }

    /// Run `op` until it is ready. `nonblock`: fail with `EAGAIN` instead of waiting.
    /// Returns `None` when the virtual `deadline` passes first. On the script thread, waiting
    /// means moving virtual time to the stack's next timer (or the deadline); on the syscall
    /// thread it means sleeping until the script thread changes something.
    pub(crate) fn block<T>(
        &self,
        nonblock: bool,
        deadline: Option<Instant>,
        mut op: impl FnMut(&mut Host) -> Poll<Res<T>>,
    ) -> Option<Res<T>> {
        let mut g = self.lock();
        loop {
            g.sync();
            if let Poll::Ready(r) = op(&mut g) {
                return Some(r);
            }
            if nonblock {
                return Some(Err(EAGAIN));
            }
            if deadline.is_some_and(|d| g.stack.now >= d) {
                return None;
            }
            if thread::current().id() == self.main {
                let next = [g.stack.next_deadline(), deadline].into_iter().flatten().min()?;
                let now = g.stack.now;
                g.stack.advance_to(next.max(now + Duration::from_micros(1)));
            } else {
                self.blocked.fetch_add(1, Ordering::SeqCst);
                g = self.cv.wait_timeout(g, RECHECK).unwrap_or_else(|e| e.into_inner()).0;
                self.blocked.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

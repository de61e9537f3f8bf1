//! The state both packetdrill threads share (the script thread and the thread that runs
//! blocking system calls), and how a blocking call waits in virtual time.
//!
//! Only the script thread moves virtual time (besides the 1 µs each clock read costs). For a
//! blocking call's return time to be exact, the script thread must not move time while the
//! syscall thread still has something to observe: a change (a packet, an earlier advance of
//! time) that its blocked call has not yet checked its condition against, or a return whose
//! end time packetdrill has not yet read (`end_syscall` reads the clock right after the call
//! returns). A generation counter of changes and a second condition variable make that a
//! handshake instead of a real-time grace period.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
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

/// Real time the script thread waits at most for the syscall thread to observe a change
/// (a bound against a hang if packetdrill never reads the end time; not a grace period).
const SETTLE_LIMIT: Duration = Duration::from_secs(2);

/// `seen` when no call is blocked on the syscall thread.
const NOT_BLOCKED: u64 = u64::MAX;

/// The host behind a mutex, and the condition variables both threads wait on.
pub(crate) struct Shared {
    host: Mutex<Host>,
    /// Blocked calls on the syscall thread wait here for a change.
    cv: Condvar,
    /// The script thread waits here for the syscall thread to catch up (`is_settled`).
    settled: Condvar,
    /// The script's thread, which owns the virtual clock: when it blocks, nobody else can
    /// move time, so it moves time itself.
    main: ThreadId,
    /// Number of changes made to the host; bumped with the host locked.
    generation: AtomicU64,
    /// The generation a call blocked on the syscall thread last checked its condition
    /// against ([`NOT_BLOCKED`] when none is blocked); written with the host locked.
    seen: AtomicU64,
    /// A call on the syscall thread returned and packetdrill has not yet read its end time.
    unread_end: AtomicBool,
    /// The syscall thread's kernel thread id once it read a call's end time and has yet to go
    /// back to sleep (0: none): after the read it still takes packetdrill's own lock to
    /// record the result (the descriptor `accept` returned, for one).
    finishing: AtomicU64,
}

impl Shared {
    /// A new host; the calling thread is the script thread.
    pub(crate) fn new(host: Host) -> Self {
        Shared {
            host: Mutex::new(host),
            cv: Condvar::new(),
            settled: Condvar::new(),
            main: thread::current().id(),
            generation: AtomicU64::new(0),
            seen: AtomicU64::new(NOT_BLOCKED),
            unread_end: AtomicBool::new(false),
            finishing: AtomicU64::new(0),
        }
    }

    /// Lock the host (a panic on the other thread does not hide the state).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Host> {
        let mut g = self.host.lock().unwrap_or_else(|e| e.into_inner());
        g.sync();
        g
    }

    fn on_main(&self) -> bool {
        thread::current().id() == self.main
    }

    /// Record a change (call with the host locked) and wake blocked calls to re-check.
    fn changed(&self) {
        self.generation.fetch_add(1, SeqCst);
        self.cv.notify_all();
    }

    /// Wake every blocked call to re-check its condition: something may have changed.
    pub(crate) fn notify(&self) {
        let _g = self.lock();
        self.changed();
    }

    /// The syscall thread has observed every change and packetdrill has read the end time
    /// of its last return.
    fn is_settled(&self) -> bool {
        let seen = self.seen.load(SeqCst);
        (seen == NOT_BLOCKED || seen >= self.generation.load(SeqCst))
            && !self.unread_end.load(SeqCst)
    }

    /// On the script thread: wait until [`Self::is_settled`] (bounded by [`SETTLE_LIMIT`]).
    /// Returns the guard and whether it is settled.
    fn settle<'a>(&self, mut g: MutexGuard<'a, Host>) -> (MutexGuard<'a, Host>, bool) {
        let limit = std::time::Instant::now() + SETTLE_LIMIT;
        while !self.is_settled() {
            let left = limit.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return (g, false);
            }
            g = self.settled.wait_timeout(g, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        (g, true)
    }

    /// Move virtual time on by `by` and return the wall clock in microseconds. On the script
    /// thread, first let the syscall thread catch up; on the syscall thread this is
    /// packetdrill reading a blocking call's end time.
    pub(crate) fn advance(&self, by: Duration) -> u64 {
        self.advance_inner(by, false)
    }

    /// The script thread sleeps `by` (packetdrill's `usleep`, its own lock released): as
    /// [`Self::advance`], and the syscall thread also finishes a returned call first.
    pub(crate) fn sleep(&self, by: Duration) {
        self.advance_inner(by, true);
    }

    fn advance_inner(&self, by: Duration, sleeping: bool) -> u64 {
        let mut g = self.lock();
        if self.on_main() {
            g = self.settle(g).0;
            if sleeping && self.finishing.load(SeqCst) != 0 {
                drop(g);
                self.let_syscall_thread_finish();
                g = self.lock();
            }
        } else if self.unread_end.swap(false, SeqCst) {
            self.finishing.store(thread_id(), SeqCst);
            self.settled.notify_all();
        }
        let t = g.stack.now + by;
        g.stack.advance_to(t);
        self.changed();
        g.stack.wall_usecs()
    }

    /// On the script thread while packetdrill's own lock is free (its `usleep`): after the
    /// syscall thread read a call's end time, wait (bounded) until it sleeps again, so that
    /// it has recorded the call's result before the script moves on, as packetdrill's
    /// `enqueue_system_call` does with `is_thread_sleeping`.
    fn let_syscall_thread_finish(&self) {
        let tid = self.finishing.swap(0, SeqCst);
        if tid == 0 {
            return;
        }
        let stat = format!("/proc/self/task/{tid}/stat");
        let limit = std::time::Instant::now() + SETTLE_LIMIT;
        while std::time::Instant::now() < limit {
            let Ok(text) = std::fs::read_to_string(&stat) else { return };
            // The state follows the parenthesised command name.
            match text.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()) {
                Some('R') => thread::yield_now(),
                _ => return,
            }
        }
    }

    /// Run `op` until it is ready. `nonblock`: fail with `EAGAIN` instead of waiting.
    /// Returns `None` when the virtual `deadline` passes first. On the script thread, waiting
    /// means moving virtual time to the stack's next timer (or the deadline), once the
    /// syscall thread has caught up; on the syscall thread it means sleeping until the
    /// script thread changes something.
    pub(crate) fn block<T>(
        &self,
        nonblock: bool,
        deadline: Option<Instant>,
        mut op: impl FnMut(&mut Host) -> Poll<Res<T>>,
    ) -> Option<Res<T>> {
        let main = self.on_main();
        let mut g = self.lock();
        if !main {
            self.unread_end.store(false, SeqCst);
        }
        let r = loop {
            g.sync();
            let seen = self.generation.load(SeqCst);
            if let Poll::Ready(r) = op(&mut g) {
                break Some(r);
            }
            if nonblock {
                break Some(Err(EAGAIN));
            }
            if deadline.is_some_and(|d| g.stack.now >= d) {
                break None;
            }
            if main {
                if !self.is_settled() {
                    let ok;
                    (g, ok) = self.settle(g);
                    if ok {
                        continue; // the other thread's call may have changed the state
                    }
                }
                let next = [g.stack.next_deadline(), deadline].into_iter().flatten().min();
                let Some(next) = next else { break None };
                let now = g.stack.now;
                g.stack.advance_to(next.max(now + Duration::from_micros(1)));
                self.changed();
            } else {
                self.seen.store(seen, SeqCst);
                self.settled.notify_all();
                g = self.cv.wait_timeout(g, RECHECK).unwrap_or_else(|e| e.into_inner()).0;
            }
        };
        if !main {
            // Returning: packetdrill reads the end time next (`advance`).
            self.seen.store(NOT_BLOCKED, SeqCst);
            self.unread_end.store(true, SeqCst);
            self.settled.notify_all();
        }
        r
    }
}

/// The calling thread's kernel thread id (0 if `/proc` does not say).
fn thread_id() -> u64 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

//! The endpoint-wide memory budget, as Linux `tcp_mem`: the buffer memory of all of an
//! endpoint's connections is summed, and above the pressure threshold
//! (`EndpointConfig::mem_pressure`, Linux `tcp_mem[1]`) connections stop growing their
//! buffers and offer small windows (Linux `tcp_under_memory_pressure`: no send-buffer
//! expansion, `rcv_ssthresh` clamped to four segments) until memory is given back.
//!
//! A connection reports its buffer memory ([`Connection::buffer_bytes`]) when it changes,
//! checked once per input, output or timer call (`update_timers`), not per byte moved;
//! the sum is an atomic shared with the endpoint, because connections are driven apart
//! from it (possibly on other threads).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use super::Connection;

#[derive(Debug)]
struct Shared {
    allocated: AtomicUsize,
    pressure: usize,
}

/// An endpoint's budget, shared with its connections.
#[derive(Clone, Debug)]
pub(crate) struct MemBudget(Arc<Shared>);

impl MemBudget {
    pub(crate) fn new(pressure: usize) -> Self {
        MemBudget(Arc::new(Shared { allocated: AtomicUsize::new(0), pressure }))
    }

    /// Buffer bytes held by all connections.
    pub(crate) fn allocated(&self) -> usize {
        self.0.allocated.load(Relaxed)
    }

    pub(crate) fn under_pressure(&self) -> bool {
        self.allocated() > self.0.pressure
    }
}

/// What one connection has reported to its endpoint's budget (none for a connection made
/// without an endpoint).
#[derive(Debug, Default)]
pub(crate) struct Charge {
    budget: Option<MemBudget>,
    charged: usize,
}

impl Charge {
    /// Report `bytes` as this connection's buffer memory.
    pub(crate) fn sync(&mut self, bytes: usize) {
        if bytes == self.charged {
            return;
        }
        if let Some(b) = &self.budget {
            if bytes > self.charged {
                b.0.allocated.fetch_add(bytes - self.charged, Relaxed);
            } else {
                b.0.allocated.fetch_sub(self.charged - bytes, Relaxed);
            }
        }
        self.charged = bytes;
    }

    pub(crate) fn under_pressure(&self) -> bool {
        self.budget.as_ref().is_some_and(MemBudget::under_pressure)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.sync(0);
    }
}

impl Connection {
    /// Count this connection's buffers in `budget` from now on (the endpoint does this for
    /// every connection it opens).
    pub(crate) fn attach_budget(&mut self, budget: MemBudget) {
        let bytes = self.mem.charged;
        self.mem.sync(0);
        self.mem.budget = Some(budget);
        self.mem.sync(bytes);
    }

    /// Report the buffer memory if it changed.
    pub(crate) fn sync_budget(&mut self) {
        let bytes = self.buffer_bytes();
        self.mem.sync(bytes);
    }
}

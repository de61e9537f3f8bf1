//! Congestion control behind the [`Controller`] trait (RFC 5681). The connection's recovery
//! logic (duplicate ACKs, fast retransmit, NewReno partial ACKs) decides *when* loss happened;
//! a controller decides *how much* may be in flight.

mod new_reno;

pub use new_reno::NewReno;

use crate::Instant;

/// A congestion controller: owns `cwnd` and `ssthresh`, in bytes.
pub trait Controller: Send + Sync + core::fmt::Debug {
    /// Current congestion window in bytes.
    fn window(&self) -> u32;
    /// Current slow-start threshold in bytes.
    fn ssthresh(&self) -> u32;
    /// `acked` bytes of new data were acknowledged outside loss recovery.
    fn on_ack(&mut self, now: Instant, acked: u32, mss: u32);
    /// Loss was detected by duplicate ACKs with `in_flight` bytes outstanding (RFC 5681 §3.2
    /// step 2); fast recovery starts.
    fn on_loss(&mut self, now: Instant, in_flight: u32, mss: u32);
    /// Fast recovery ended with a full acknowledgment (RFC 6582 §3.2 step 3).
    fn on_recovery_end(&mut self, now: Instant, in_flight: u32, mss: u32);
    /// The retransmission timer expired (RFC 5681 §3.1, equation 4 and the loss window).
    fn on_rto(&mut self, now: Instant, in_flight: u32, mss: u32);
}

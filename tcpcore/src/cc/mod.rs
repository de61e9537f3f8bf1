//! Congestion control behind the [`Controller`] trait (RFC 5681). The connection's recovery
//! logic (duplicate ACKs, fast retransmit, NewReno partial ACKs) decides *when* loss happened;
//! a controller decides *how much* may be in flight.

mod cubic;
mod new_reno;

pub use cubic::{Cubic, SlowStartPhase};
pub use new_reno::NewReno;

use crate::wire::seq::SeqNum;
use crate::Instant;
use core::time::Duration;

/// What one acknowledgment of new data (outside loss recovery) tells the controller.
#[derive(Clone, Copy, Debug)]
pub struct AckInfo {
    /// When the ACK arrived.
    pub now: Instant,
    /// Bytes newly acknowledged (SND.UNA advance).
    pub acked: u32,
    /// Sender MSS in bytes.
    pub mss: u32,
    /// The RTT sample this ACK produced, if any (Karn's rule applied, RFC 6298 §3).
    pub rtt_sample: Option<Duration>,
    /// Smoothed RTT after this ACK (RFC 6298 §2), the `RTT` of RFC 9438 §4.2.
    pub srtt: Option<Duration>,
    /// SND.UNA after this ACK.
    pub snd_una: SeqNum,
    /// Highest sequence number sent so far (the `SND.NXT` that ends an RTT round in
    /// RFC 9406 §4.3).
    pub snd_max: SeqNum,
}

/// A congestion controller: owns `cwnd` and `ssthresh`, in bytes.
pub trait Controller: Send + Sync + core::fmt::Debug {
    /// Current congestion window in bytes.
    fn window(&self) -> u32;
    /// Current slow-start threshold in bytes.
    fn ssthresh(&self) -> u32;
    /// New data was acknowledged outside loss recovery.
    fn on_ack(&mut self, ack: &AckInfo);
    /// Loss was detected by duplicate ACKs with `in_flight` bytes outstanding (RFC 5681 §3.2
    /// step 2); fast recovery starts.
    fn on_loss(&mut self, now: Instant, in_flight: u32, mss: u32);
    /// Fast recovery ended with a full acknowledgment (RFC 6582 §3.2 step 3).
    fn on_recovery_end(&mut self, now: Instant, in_flight: u32, mss: u32);
    /// The retransmission timer expired (RFC 5681 §3.1, equation 4 and the loss window).
    fn on_rto(&mut self, now: Instant, in_flight: u32, mss: u32);
    /// The connection sets the window during a proportional reduction (RFC 6937 PRR in
    /// Linux's CWR state after an ECN-Echo, `tcp_cwnd_reduction`), and to ssthresh at its end.
    fn set_window(&mut self, cwnd: u32, mss: u32);
    /// The sender was idle longer than the RTO and restarts (RFC 5681 §4.1): the connection
    /// computed the restart `cwnd` and `ssthresh` (Linux `tcp_cwnd_restart`).
    fn on_idle_restart(&mut self, now: Instant, cwnd: u32, ssthresh: u32, mss: u32);
    /// The pacing rate this controller asks for, in bytes per second (Linux: a module that
    /// sets `sk_pacing_rate` itself, as BBR does, and with it `SK_PACING_NEEDED`). `None`,
    /// the default: the connection paces, if configured to, at Linux's default rate from
    /// cwnd and SRTT (`tcp_update_pacing_rate`). A controller returning `Some` is always
    /// paced, whatever the connection's pacing switch (`conn/pacing.rs`).
    fn pacing_rate(&self) -> Option<u64> {
        None
    }
}

/// The configured controller, held inline by the connection: choosing it at run time costs
/// no allocation per connection (a `Box<dyn Controller>` did, in every handshake).
#[derive(Clone, Debug)]
pub(crate) enum AnyController {
    /// A controller with a fixed pacing rate, for the pacing tests.
    #[cfg(test)]
    Fixed(crate::conn::pacing_tests::FixedRate),
    NewReno(NewReno),
    Cubic(Cubic),
}

/// Forward a [`Controller`] method to the variant.
macro_rules! forward {
    ($self:ident, $c:ident => $call:expr) => {
        match $self {
            #[cfg(test)]
            AnyController::Fixed($c) => $call,
            AnyController::NewReno($c) => $call,
            AnyController::Cubic($c) => $call,
        }
    };
}

impl Controller for AnyController {
    fn window(&self) -> u32 {
        forward!(self, c => c.window())
    }
    fn ssthresh(&self) -> u32 {
        forward!(self, c => c.ssthresh())
    }
    fn on_ack(&mut self, ack: &AckInfo) {
        forward!(self, c => c.on_ack(ack))
    }
    fn on_loss(&mut self, now: Instant, in_flight: u32, mss: u32) {
        forward!(self, c => c.on_loss(now, in_flight, mss))
    }
    fn on_recovery_end(&mut self, now: Instant, in_flight: u32, mss: u32) {
        forward!(self, c => c.on_recovery_end(now, in_flight, mss))
    }
    fn on_rto(&mut self, now: Instant, in_flight: u32, mss: u32) {
        forward!(self, c => c.on_rto(now, in_flight, mss))
    }
    fn on_idle_restart(&mut self, now: Instant, cwnd: u32, ssthresh: u32, mss: u32) {
        forward!(self, c => c.on_idle_restart(now, cwnd, ssthresh, mss))
    }
    fn set_window(&mut self, cwnd: u32, mss: u32) {
        forward!(self, c => c.set_window(cwnd, mss))
    }
    fn pacing_rate(&self) -> Option<u64> {
        forward!(self, c => c.pacing_rate())
    }
}

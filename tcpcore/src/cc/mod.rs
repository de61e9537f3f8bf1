//! Congestion control behind the [`Controller`] trait (RFC 5681). The connection's recovery
//! logic (duplicate ACKs, fast retransmit, NewReno partial ACKs) decides *when* loss happened;
//! a controller decides *how much* may be in flight.

mod bbr;
mod cubic;
mod hystart;
mod new_reno;

pub use bbr::{Bbr, BbrState};
pub use cubic::{Cubic, SlowStartPhase};
pub use hystart::HyStartExit;
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
    /// The connection paces its data (Linux: `sk_pacing_status` is not `SK_PACING_NONE`).
    pub paced: bool,
    /// The pacing rate in bytes per second, kept whether or not data is paced (as Linux keeps
    /// `sk_pacing_rate`): the controller's own, or Linux's default from cwnd and SRTT
    /// (`conn/pacing.rs`); 0 before the first RTT sample.
    pub pacing_rate: u64,
}

/// A delivery rate sample (draft-ietf-ccwg-bbr §4.1, the `RS` of its pseudocode), taken on
/// every ACK that newly delivers data (cumulatively or selectively) or on which losses are
/// detected, in and out of loss recovery. Produced from the per-segment send state the
/// scoreboard keeps (`P.delivered`, `P.delivered_time`, `P.first_send_time`,
/// `P.is_app_limited`, `P.tx_in_flight`, `P.lost`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RateSample {
    /// When the ACK arrived.
    pub now: Instant,
    /// Sender MSS in bytes (`C.SMSS`).
    pub mss: u32,
    /// `C.delivered` after this ACK: bytes delivered over the connection's life.
    pub total_delivered: u64,
    /// `C.lost` after this ACK: bytes marked lost over the connection's life.
    pub total_lost: u64,
    /// `RS.delivered`: bytes delivered between the send of the newest packet this ACK
    /// delivered and now; 0 when the ACK delivered nothing.
    pub delivered: u64,
    /// `RS.prior_delivered`: `P.delivered` of that packet (a round ends when it reaches the
    /// `C.delivered` recorded at the round's start).
    pub prior_delivered: u64,
    /// `RS.interval`: the longer of the send and ACK intervals; zero when no sample.
    pub interval: Duration,
    /// `RS.delivery_rate` in bytes per second; 0 when there is no reliable sample (the
    /// interval was below the minimum RTT).
    pub delivery_rate: u64,
    /// `RS.is_app_limited`: the packet was sent while the application left cwnd unused.
    pub is_app_limited: bool,
    /// `RS.tx_in_flight`: bytes in flight just after that packet was sent.
    pub tx_in_flight: u32,
    /// `RS.lost`: bytes marked lost between that packet's send and now.
    pub lost: u64,
    /// `RS.newly_acked`: bytes newly delivered by this ACK (cumulatively or by SACK).
    pub newly_acked: u32,
    /// `RS.newly_lost`: bytes newly marked lost on this ACK.
    pub newly_lost: u32,
    /// `C.inflight` after this ACK (RFC 6675 `pipe`).
    pub in_flight: u32,
    /// `RS.rtt`: the RTT of the newest packet delivered, if it gave one.
    pub rtt: Option<Duration>,
    /// `C.is_cwnd_limited`: cwnd was fully used in the last round.
    pub is_cwnd_limited: bool,
    /// The connection is in loss recovery (fast recovery or after a timeout).
    pub in_recovery: bool,
    /// `C.has_selective_acks`: SACK was negotiated.
    pub has_sack: bool,
}

/// One packet newly marked lost (draft-ietf-ccwg-bbr §5.5.10.2, `HandleLostPacket(P)`),
/// with its send-time snapshot.
#[derive(Clone, Copy, Debug, Default)]
pub struct LostPacket {
    /// When the loss was detected.
    pub now: Instant,
    /// Sender MSS in bytes.
    pub mss: u32,
    /// Bytes in the packet (`P.size`).
    pub size: u32,
    /// `P.tx_in_flight`: bytes in flight just after it was sent.
    pub tx_in_flight: u32,
    /// `C.lost - P.lost`: bytes marked lost since it was sent, itself included.
    pub lost_since_sent: u64,
    /// `P.is_app_limited`.
    pub is_app_limited: bool,
    /// `C.delivered` now.
    pub total_delivered: u64,
    /// `C.has_selective_acks`.
    pub has_sack: bool,
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
    /// The controller consumes delivery rate samples ([`Controller::on_rate_sample`],
    /// [`Controller::on_packet_lost`]): the connection keeps the per-segment send state
    /// they need.
    fn wants_rate_samples(&self) -> bool {
        false
    }
    /// The controller sets the window itself during loss recovery (a model-based one, as
    /// Linux's `cong_control` hook): the connection applies neither PRR (RFC 6937) nor
    /// NewReno window inflation, and `cwnd - pipe` is what may be sent.
    fn owns_recovery(&self) -> bool {
        false
    }
    /// The controller holds the sending rate below what the path could take (BBR's
    /// ProbeRTT): the connection marks itself application-limited while this holds, so
    /// the low rate samples are not taken for the path's (draft-ietf-ccwg-bbr §5.3.4.3).
    fn sends_app_limited(&self) -> bool {
        false
    }
    /// Data is about to be sent with `in_flight` bytes outstanding (`C.inflight`);
    /// `app_limited` is the connection's `C.app_limited != 0`
    /// (draft-ietf-ccwg-bbr §5.2.2).
    fn on_transmit(&mut self, _now: Instant, _in_flight: u32, _app_limited: bool) {}
    /// A rate sample from an ACK (only when [`Controller::wants_rate_samples`]).
    fn on_rate_sample(&mut self, _rs: &RateSample) {}
    /// A packet was newly marked lost, before the ACK's [`Controller::on_rate_sample`]
    /// (only when [`Controller::wants_rate_samples`]).
    fn on_packet_lost(&mut self, _p: &LostPacket) {}
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
    /// Boxed: BBR's model is several times CUBIC's size, and an inline variant would grow
    /// every connection; a BBR connection pays one allocation when its controller is made.
    Bbr(Box<Bbr>),
}

/// Forward a [`Controller`] method to the variant.
macro_rules! forward {
    ($self:ident, $c:ident => $call:expr) => {
        match $self {
            #[cfg(test)]
            AnyController::Fixed($c) => $call,
            AnyController::NewReno($c) => $call,
            AnyController::Cubic($c) => $call,
            AnyController::Bbr($c) => $call,
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
    fn wants_rate_samples(&self) -> bool {
        forward!(self, c => c.wants_rate_samples())
    }
    fn owns_recovery(&self) -> bool {
        forward!(self, c => c.owns_recovery())
    }
    fn sends_app_limited(&self) -> bool {
        forward!(self, c => c.sends_app_limited())
    }
    fn on_transmit(&mut self, now: Instant, in_flight: u32, app_limited: bool) {
        forward!(self, c => c.on_transmit(now, in_flight, app_limited))
    }
    fn on_rate_sample(&mut self, rs: &RateSample) {
        forward!(self, c => c.on_rate_sample(rs))
    }
    fn on_packet_lost(&mut self, p: &LostPacket) {
        forward!(self, c => c.on_packet_lost(p))
    }
}

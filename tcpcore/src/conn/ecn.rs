//! Explicit Congestion Notification (RFC 3168), negotiated as Linux does (`tcp_ecn`): the
//! SYN exchange, ECT(0) on new data, CE echoed with ECE until CWR, and one congestion-window
//! reduction per window of data on ECE, carried out by PRR as in Linux's CWR state.

use super::{CaState, Connection, State, SynInfo};
use crate::cc::Controller;
use crate::config::{ConnConfig, EcnMode};
use crate::wire::{ecn, Segment, SeqNum, TcpFlags};
use crate::Instant;

/// A connection's ECN state: four flags in one byte (MEM-01: the connection is 8 bytes
/// smaller for it). The reduction's end and its PRR counters ([`EcnCwr`]) live in the
/// connection's `Rare` state: only a connection that saw ECE needs them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ecn(u8);

impl Ecn {
    /// Negotiated on the SYN exchange (Linux `TCP_ECN_OK`).
    const ON: u8 = 1;
    /// Receiver: a CE mark arrived; every ACK carries ECE until a CWR arrives (RFC 3168
    /// §6.1.3; Linux `TCP_ECN_DEMAND_CWR`).
    const ECHO: u8 = 2;
    /// Sender: the window was reduced; the next new data segment carries CWR (§6.1.2;
    /// Linux `TCP_ECN_QUEUE_CWR`).
    const CWR_DUE: u8 = 4;
    /// Sender: a reduction is in progress until SND.UNA passes [`EcnCwr::high`] (Linux's
    /// CWR state).
    const REDUCING: u8 = 8;

    fn get(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }

    /// ECN was negotiated.
    pub(crate) fn on(self) -> bool {
        self.get(Self::ON)
    }

    /// A reduction on ECE is in progress (Linux's CWR state).
    pub(crate) fn reducing(self) -> bool {
        self.get(Self::REDUCING)
    }
}

/// A congestion-window reduction on ECE (Linux's CWR state), written when one starts.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EcnCwr {
    /// SND.MAX at the last reduction: ECE until something beyond it is acknowledged reduces
    /// nothing more (§6.1.2: "at most once per window of data").
    pub(crate) high: SeqNum,
    /// PRR (RFC 6937) of the reduction: the flight at its start (RecoverFS), bytes
    /// delivered and sent since.
    pub(crate) recover_fs: u32,
    pub(crate) prr_delivered: u32,
    pub(crate) prr_out: u32,
}

/// The flags of a SYN-ACK answering `syn`: ECE when the SYN asked for ECN and we accept it
/// (RFC 3168 §6.1.1: an ECN-setup SYN-ACK has ECE set and CWR clear).
pub(crate) fn syn_ack_flags(cfg: &ConnConfig, syn: &SynInfo) -> TcpFlags {
    let flags = TcpFlags::SYN | TcpFlags::ACK;
    if syn.ecn && cfg.ecn != EcnMode::Off {
        flags | TcpFlags::ECE
    } else {
        flags
    }
}

impl Connection {
    /// Passive open: ECN is on when the peer's SYN asked and we accept (any mode but `Off`).
    pub(crate) fn ecn_on_syn(&mut self, syn: &SynInfo) {
        self.ecn.set(Ecn::ON, self.passive && syn.ecn && self.cfg.ecn != EcnMode::Off);
    }

    /// Active open: ECN is on when we asked and the SYN-ACK is an ECN-setup SYN-ACK. One
    /// with both ECE and CWR set is a broken peer reflecting our flags (RFC 3168 §6.1.1):
    /// no ECN. Linux (`tcp_ecn_rcv_synack`) decides the same, even when only the first SYN
    /// asked.
    pub(crate) fn ecn_on_syn_ack(&mut self, seg: &Segment<'_>) {
        let f = seg.tcp.flags;
        let on = self.cfg.ecn == EcnMode::Request
            && f.contains(TcpFlags::ECE)
            && !f.contains(TcpFlags::CWR);
        self.ecn.set(Ecn::ON, on);
    }

    /// The ECN flags of our SYN or SYN-ACK: ECE and CWR on the first SYN only when asking
    /// (RFC 3168 §6.1.1; Linux drops them from retransmitted SYNs, `tcp_ecn_clear_syn`, in
    /// case a middlebox drops ECN-setup SYNs), ECE on every SYN-ACK accepting ECN.
    pub(crate) fn ecn_syn_flags(&self, first: bool) -> TcpFlags {
        match self.state {
            State::SynSent if first && self.cfg.ecn == EcnMode::Request => {
                TcpFlags::ECE | TcpFlags::CWR
            }
            State::SynReceived if self.ecn.on() => TcpFlags::ECE,
            _ => TcpFlags::default(),
        }
    }

    /// Receiver side of a data segment (RFC 3168 §6.1.3): CWR ends the echo, CE (re)starts
    /// it. A new CE mark is acknowledged at once (Linux `__tcp_ecn_check_ce` enters quick-ack
    /// mode for two ACKs: the sender may have a very small window).
    #[inline]
    pub(crate) fn ecn_on_data(&mut self, seg: &Segment<'_>) {
        if self.ecn.on() {
            self.ecn_on_data_on(seg);
        }
    }

    /// [`Connection::ecn_on_data`] with ECN negotiated.
    fn ecn_on_data_on(&mut self, seg: &Segment<'_>) {
        if seg.tcp.flags.contains(TcpFlags::CWR) {
            self.ecn.set(Ecn::ECHO, false);
        }
        if seg.ecn == ecn::CE {
            self.info.cold.ecn_ce_received += 1;
            if !self.ecn.get(Ecn::ECHO) {
                self.ecn.set(Ecn::ECHO, true);
                self.ack.quick = self.ack.quick.max(2);
                self.ack.now = true;
            }
        }
    }

    /// Sender side of an acceptable ACK, before it is applied (RFC 3168 §6.1.2): ECE
    /// starts a reduction, as a loss would (the controller's `on_loss` sets ssthresh), then
    /// carried out by PRR (RFC 6937) as Linux's CWR state does, without retransmitting; once
    /// per window of data, and never during loss recovery, which already reduced (Linux
    /// `tcp_enter_cwr` only from the Open and Disorder states).
    #[inline]
    pub(crate) fn ecn_on_ack(&mut self, now: Instant, seg: &Segment<'_>) {
        if self.ecn.on() {
            self.ecn_on_ack_on(now, seg);
        }
    }

    /// [`Connection::ecn_on_ack`] with ECN negotiated.
    fn ecn_on_ack_on(&mut self, now: Instant, seg: &Segment<'_>) {
        // The CWR state ends when something *above* `high` is acknowledged: the first new
        // segment, which carried CWR, has reached the receiver (Linux `tcp_fastretrans_alert`);
        // ACKs up to `high` may still echo the CE that caused this reduction. Then cwnd is
        // ssthresh (Linux `tcp_end_cwnd_reduction`).
        if self.ecn.reducing() && seg.tcp.ack > self.rare.ecn_cwr.high {
            self.ecn.set(Ecn::REDUCING, false);
            self.cc.set_window(self.cc.ssthresh(), self.effective_mss());
        }
        if !seg.tcp.flags.contains(TcpFlags::ECE) || self.ecn.reducing() {
            return;
        }
        if matches!(self.ca_state(), CaState::Recovery | CaState::Loss) {
            return;
        }
        // From the window in flight, no more than cwnd (as `enter_sack_recovery`): RFC
        // 6937's RecoverFS. The controller sets ssthresh; PRR takes cwnd down from here.
        let cwnd = self.cc.window();
        let recover_fs = self.snd_max.since(self.snd_una).min(cwnd);
        self.cc.on_loss(now, recover_fs, self.effective_mss());
        self.cc.set_window(cwnd, self.effective_mss());
        self.ecn.set(Ecn::CWR_DUE, true);
        self.ecn.set(Ecn::REDUCING, true);
        self.rare.ecn_cwr = EcnCwr { high: self.snd_max, recover_fs, ..EcnCwr::default() };
        self.info.cold.ecn_reductions += 1;
        tracing::debug!(ssthresh = self.cc.ssthresh(), "ECN-Echo: congestion window reduction");
    }

    /// One ACK of `delivered` new bytes in the CWR state: cwnd = pipe + sndcnt (RFC 6937
    /// §3.1, as Linux's `tcp_cwnd_reduction` without retransmitted data acknowledged:
    /// proportional above ssthresh, PRR-CRB below it).
    pub(crate) fn ecn_prr(&mut self, delivered: u32) {
        let e = &mut self.rare.ecn_cwr;
        e.prr_delivered = e.prr_delivered.saturating_add(delivered);
        let (prr_delivered, prr_out) = (u64::from(e.prr_delivered), u64::from(e.prr_out));
        let pipe =
            if self.sack_active() { self.sack_pipe() } else { self.snd_max.since(self.snd_una) };
        let ssthresh = self.cc.ssthresh();
        let mss = self.effective_mss();
        let sndcnt = if pipe > ssthresh {
            let prior = u64::from(self.rare.ecn_cwr.recover_fs.max(1));
            (prr_delivered * u64::from(ssthresh)).div_ceil(prior).saturating_sub(prr_out)
        } else {
            u64::from((ssthresh - pipe).min(delivered))
        };
        let sndcnt = if prr_out == 0 { sndcnt.max(u64::from(mss)) } else { sndcnt };
        let cwnd = u64::from(pipe) + sndcnt;
        self.cc.set_window(cwnd.min(u64::from(u32::MAX)) as u32, mss);
    }

    /// Loss recovery (fast retransmit or RTO) starts: it takes over a CWR-state reduction
    /// in progress. Returns whether there was one: the window was already reduced for this
    /// window of data, so recovery does not reduce it again (RFC 3168 §6.1.2; Linux
    /// `tcp_enter_recovery` keeps a reduction in progress).
    pub(crate) fn ecn_end_for_recovery(&mut self) -> bool {
        let reducing = self.ecn.reducing();
        self.ecn.set(Ecn::REDUCING, false);
        if reducing {
            let cwnd = self.cc.window().min(self.cc.ssthresh());
            self.cc.set_window(cwnd, self.effective_mss());
        }
        reducing
    }

    /// The ECN field and extra flags of a segment about to be sent (RFC 3168 §6.1.2,
    /// §6.1.4, §6.1.5): ECT(0) and a pending CWR only on new data, never on pure ACKs,
    /// retransmissions or window probes; ECE on every ACK while echoing CE.
    /// `len` payload bytes go out (PRR's `prr_out` in the CWR state).
    pub(crate) fn ecn_mark(&mut self, flags: TcpFlags, new_data: bool, len: u32) -> (u8, TcpFlags) {
        if !self.ecn.on() || flags.syn() || flags.rst() {
            return (ecn::NOT_ECT, flags);
        }
        if self.ecn.reducing() {
            let e = &mut self.rare.ecn_cwr;
            e.prr_out = e.prr_out.saturating_add(len);
        }
        let mut flags = flags;
        if self.ecn.get(Ecn::ECHO) && flags.ack() {
            flags = flags | TcpFlags::ECE;
        }
        if !new_data {
            return (ecn::NOT_ECT, flags);
        }
        if self.ecn.get(Ecn::CWR_DUE) {
            self.ecn.set(Ecn::CWR_DUE, false);
            flags = flags | TcpFlags::CWR;
        }
        (ecn::ECT0, flags)
    }
}

//! Per-connection counters and the `TcpInfo` snapshot (like Linux `TCP_INFO`).

use core::time::Duration;

use super::{Connection, State};
use crate::cc::Controller;
use crate::wire::SeqNum;
use crate::Instant;

/// Raw counters kept by a connection: those every segment moves inline, the others
/// (losses, probes, hostile input) allocated the first time one counts.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) segs_in: u64,
    pub(crate) segs_out: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_acked: u64,
    pub(crate) bytes_received: u64,
    pub(crate) cold: super::lazy::Lazy<ColdCounters>,
}

/// Counters of rarer events.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ColdCounters {
    pub(crate) bytes_retransmitted: u64,
    pub(crate) retransmits: u64,
    pub(crate) fast_retransmits: u64,
    pub(crate) timeouts: u64,
    pub(crate) drops: u64,
    pub(crate) ooo_dropped: u64,
    pub(crate) challenge_acks: u64,
    pub(crate) challenge_acks_suppressed: u64,
    pub(crate) probes_out: u64,
    pub(crate) resets_in: u64,
    pub(crate) resets_out: u64,
    pub(crate) pmtu_reductions: u64,
    pub(crate) icmp_ignored: u64,
    pub(crate) rto_retransmits: u64,
    pub(crate) fast_retransmits_segs: u64,
    pub(crate) tlp_probes: u64,
    pub(crate) rack_marked_lost: u64,
    pub(crate) dsacks_in: u64,
    pub(crate) sack_blocks_ignored: u64,
    pub(crate) paws_rejected: u64,
    pub(crate) ecn_ce_received: u64,
    pub(crate) ecn_reductions: u64,
}

super::lazy::shared_default!(ColdCounters);

/// A snapshot of one connection's state and counters.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TcpInfo {
    /// Connection state.
    pub state: State,
    /// Smoothed RTT (RFC 6298), if sampled yet.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "srtt_us", serialize_with = "crate::time::serde_micros::option")
    )]
    pub srtt: Option<Duration>,
    /// RTT variance.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "rttvar_us", serialize_with = "crate::time::serde_micros::duration")
    )]
    pub rttvar: Duration,
    /// Current retransmission timeout, including backoff.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "rto_us", serialize_with = "crate::time::serde_micros::duration")
    )]
    pub rto: Duration,
    /// Congestion window in bytes.
    pub cwnd: u32,
    /// Slow-start threshold in bytes.
    pub ssthresh: u32,
    /// Peer's current window in bytes.
    pub snd_wnd: u32,
    /// Window we last advertised, in bytes.
    pub rcv_wnd: u32,
    /// Payload bytes per full segment we send.
    pub snd_mss: u32,
    /// Our window-scale shift and the peer's.
    pub wscale: (u8, u8),
    /// Timestamps negotiated.
    pub timestamps: bool,
    /// SACK negotiated.
    pub sack: bool,
    /// Bytes sent but not yet acknowledged.
    pub unacked: u32,
    /// Segments received.
    pub segs_in: u64,
    /// Segments sent.
    pub segs_out: u64,
    /// Payload bytes sent, retransmissions included.
    pub bytes_sent: u64,
    /// Payload bytes retransmitted.
    pub bytes_retransmitted: u64,
    /// Payload bytes the peer acknowledged.
    pub bytes_acked: u64,
    /// Payload bytes received in order.
    pub bytes_received: u64,
    /// Segments retransmitted (any cause).
    pub retransmits: u64,
    /// Fast retransmits (entries into recovery).
    pub fast_retransmits: u64,
    /// Retransmission timeouts.
    pub timeouts: u64,
    /// Segments dropped by the state machine (unacceptable, bad ACK, …).
    pub drops: u64,
    /// Out-of-order segments dropped because the hole limit was reached.
    pub ooo_dropped: u64,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// Challenge ACKs suppressed by the rate limit.
    pub challenge_acks_suppressed: u64,
    /// Zero-window and keepalive probes sent.
    pub probes_out: u64,
    /// Resets received and acted on.
    pub resets_in: u64,
    /// Resets sent.
    pub resets_out: u64,
    /// Out-of-order ranges currently held.
    pub ooo_ranges: usize,
    /// Times ICMP lowered the path MTU (RFC 1191, RFC 8201).
    pub pmtu_reductions: u64,
    /// Path MTU reports ignored: quoted segment not in flight (RFC 5927 §4.1), before the
    /// handshake, or no smaller than the current MTU.
    pub icmp_ignored: u64,
    /// Segments retransmitted after a retransmission timeout, before SND.UNA passed the
    /// point it was at (repairs that cost an RTO).
    pub rto_retransmits: u64,
    /// Segments retransmitted without a timeout: SACK/RACK/NewReno fast recovery and tail
    /// loss probes (repairs that cost no RTO).
    pub fast_retransmits_segs: u64,
    /// Tail loss probes sent (RFC 8985 §7).
    pub tlp_probes: u64,
    /// Segments RACK marked lost (RFC 8985 §6.2).
    pub rack_marked_lost: u64,
    /// D-SACK blocks received (RFC 2883).
    pub dsacks_in: u64,
    /// SACK blocks ignored as bogus (reversed, beyond SND.MAX, below SND.UNA).
    pub sack_blocks_ignored: u64,
    /// Entries in the SACK scoreboard now (at most `SCOREBOARD_CAPACITY`).
    pub scoreboard_entries: usize,
    /// Most loop iterations the SACK blocks of one ACK cost on the scoreboard.
    pub sack_max_work_per_ack: u32,
    /// Segments dropped as old duplicates by PAWS (RFC 7323 §5.3), also counted in `drops`.
    pub paws_rejected: u64,
    /// Current receive buffer capacity in bytes (grown by auto-tuning).
    pub rcv_buf: usize,
    /// Current send buffer capacity in bytes (grown by auto-tuning).
    pub snd_buf: usize,
    /// When data last arrived, or the handshake completed if none has (Linux
    /// `tcpi_last_data_recv` is the time since then).
    pub last_data_recv: Option<Instant>,
    /// The sender's loss-recovery state (Linux `tcpi_ca_state`).
    pub ca_state: CaState,
    /// Bytes in flight the peer has SACKed (RFC 6675; Linux `tcpi_sacked` counts segments).
    pub sacked: u32,
    /// Bytes in flight deemed lost and not yet retransmitted (RACK, RFC 8985; Linux
    /// `tcpi_lost`, in segments).
    pub lost: u32,
    /// ECN negotiated (RFC 3168; Linux `TCPI_OPT_ECN` in `tcpi_options`).
    pub ecn: bool,
    /// The data of the SYN was acknowledged (client) or accepted (server) by TCP Fast Open
    /// (RFC 7413; Linux `TCPI_OPT_SYN_DATA` in `tcpi_options`).
    pub syn_data: bool,
    /// Data segments received with CE marked (RFC 3168 §6.1.3).
    pub ecn_ce_received: u64,
    /// Congestion-window reductions in response to ECN-Echo (RFC 3168 §6.1.2).
    pub ecn_reductions: u64,
}

/// The sender's loss-recovery state, as Linux's `tcp_ca_state` names it (CWR comes with
/// ECN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum CaState {
    /// Nothing amiss.
    Open,
    /// Duplicate ACKs or SACKs seen, not (yet) recovery.
    Disorder,
    /// Reducing the congestion window after an ECN-Echo (RFC 3168 §6.1.2).
    Cwr,
    /// Fast recovery (RFC 6675 / RFC 6582).
    Recovery,
    /// After a retransmission timeout, until the data outstanding then is acknowledged.
    Loss,
}

/// Most entries a connection's SACK scoreboard holds (its memory is bounded: it grows with
/// the flight up to this many entries).
pub const SCOREBOARD_CAPACITY: usize = super::scoreboard::CAPACITY;

/// The sequence-space variables of a connection (RFC 9293 §3.3.1), for invariant checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqVars {
    /// Initial send sequence number.
    pub iss: SeqNum,
    /// Oldest unacknowledged sequence number.
    pub snd_una: SeqNum,
    /// Next sequence number to send (rewound by a retransmission timeout).
    pub snd_nxt: SeqNum,
    /// Highest sequence number sent plus one.
    pub snd_max: SeqNum,
    /// Peer's window in bytes.
    pub snd_wnd: u32,
    /// Largest window the peer ever offered.
    pub max_snd_wnd: u32,
    /// Initial receive sequence number.
    pub irs: SeqNum,
    /// Next sequence number expected.
    pub rcv_nxt: SeqNum,
    /// Right edge of the window we advertised.
    pub rcv_adv: SeqNum,
    /// Bytes in the send buffer.
    pub send_buffered: usize,
    /// Unread bytes in the receive buffer.
    pub recv_buffered: usize,
    /// Send buffer size now (auto-tuning grows it up to `max_send_buffer`).
    pub send_capacity: usize,
    /// Receive buffer size now (auto-tuning grows it up to `max_recv_buffer`).
    pub recv_capacity: usize,
    /// The most bytes the receive buffer may hold: its capacity plus the slack that lets a
    /// window edge announced beyond it by scale round-off be honoured (RFC 7323 §2.4).
    pub recv_limit: usize,
}

impl Connection {
    /// The sequence-space variables, for invariant checks in tests and simulations.
    pub fn seq_vars(&self) -> SeqVars {
        SeqVars {
            iss: self.iss,
            snd_una: self.snd_una,
            snd_nxt: self.snd_nxt,
            snd_max: self.snd_max,
            snd_wnd: self.snd_wnd,
            max_snd_wnd: self.max_snd_wnd,
            irs: self.irs,
            rcv_nxt: self.rcv_nxt,
            rcv_adv: self.rcv_adv,
            send_buffered: self.send_buf.len(),
            recv_buffered: self.recv_buf.unread(),
            send_capacity: self.send_buf.capacity(),
            recv_capacity: self.recv_buf.capacity(),
            recv_limit: self.recv_buf.limit(),
        }
    }

    /// A snapshot of this connection's state and counters.
    pub fn info(&self) -> TcpInfo {
        let c = &self.info;
        TcpInfo {
            state: self.state,
            srtt: self.rtt.srtt(),
            rttvar: self.rtt.rttvar(),
            rto: self.rtt.rto(),
            cwnd: self.cc.window(),
            ssthresh: self.cc.ssthresh(),
            snd_wnd: self.snd_wnd,
            rcv_wnd: self.rcv_wnd(),
            snd_mss: self.effective_mss(),
            wscale: (self.rcv_wscale, self.snd_wscale),
            timestamps: self.ts_recent.is_some(),
            sack: self.sack_ok,
            unacked: self.snd_max.since(self.snd_una),
            segs_in: c.segs_in,
            segs_out: c.segs_out,
            bytes_sent: c.bytes_sent,
            bytes_retransmitted: c.cold.bytes_retransmitted,
            bytes_acked: c.bytes_acked,
            bytes_received: c.bytes_received,
            retransmits: c.cold.retransmits,
            fast_retransmits: c.cold.fast_retransmits,
            timeouts: c.cold.timeouts,
            drops: c.cold.drops,
            ooo_dropped: c.cold.ooo_dropped,
            challenge_acks: c.cold.challenge_acks,
            challenge_acks_suppressed: c.cold.challenge_acks_suppressed,
            probes_out: c.cold.probes_out,
            resets_in: c.cold.resets_in,
            resets_out: c.cold.resets_out,
            ooo_ranges: self.recv_buf.ooo_ranges().len(),
            pmtu_reductions: c.cold.pmtu_reductions,
            icmp_ignored: c.cold.icmp_ignored,
            rto_retransmits: c.cold.rto_retransmits,
            fast_retransmits_segs: c.cold.fast_retransmits_segs,
            tlp_probes: c.cold.tlp_probes,
            rack_marked_lost: c.cold.rack_marked_lost,
            dsacks_in: c.cold.dsacks_in,
            sack_blocks_ignored: c.cold.sack_blocks_ignored,
            scoreboard_entries: self.scoreboard_stats().0,
            sack_max_work_per_ack: self.scoreboard_stats().1,
            paws_rejected: c.cold.paws_rejected,
            rcv_buf: self.recv_buf.capacity(),
            snd_buf: self.send_buf.capacity(),
            last_data_recv: self.ack.last_data,
            ca_state: self.ca_state(),
            sacked: self.sack_tx.sb.as_ref().map_or(0, |sb| sb.sacked_bytes),
            lost: self.sack_tx.sb.as_ref().map_or(0, |sb| sb.lost_bytes),
            ecn: self.ecn.on(),
            syn_data: self.syn_data_acked(),
            ecn_ce_received: c.cold.ecn_ce_received,
            ecn_reductions: c.cold.ecn_reductions,
        }
    }

    /// Linux's `icsk_ca_state` for this sender.
    pub(crate) fn ca_state(&self) -> CaState {
        let sacked = self.sack_tx.sb.as_ref().is_some_and(|sb| sb.sacked_bytes > 0);
        if self.sack_tx.after_rto {
            CaState::Loss
        } else if self.recovery.active {
            CaState::Recovery
        } else if self.ecn.reducing() {
            CaState::Cwr
        } else if self.recovery.dupacks > 0 || sacked {
            CaState::Disorder
        } else {
            CaState::Open
        }
    }
}

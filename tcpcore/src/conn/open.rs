//! Opening pieces shared by a [`Connection`] and the endpoint's stateless paths (SYN queue
//! entries and SYN cookies send SYN-ACKs before any connection exists): what a SYN said, and
//! the options and SYN-ACK we answer with (RFC 9293 §3.7.1, RFC 7323, RFC 2018).

use super::{ConnParams, Connection, State};
use crate::config::{ConnConfig, SharedConnConfig};
use crate::wire::{Segment, SeqNum, TcpFlags, TcpOptions, TcpRepr, Timestamps};
use crate::Instant;
use std::net::SocketAddr;

/// What a peer's SYN offered: everything a passive open needs. Kept by SYN-queue entries and
/// rebuilt from SYN cookies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynInfo {
    /// The peer's initial sequence number.
    pub seq: SeqNum,
    /// The SYN's window field (never scaled, RFC 7323 §2.2).
    pub window: u16,
    /// MSS option.
    pub mss: Option<u16>,
    /// Window-scale option.
    pub wscale: Option<u8>,
    /// SACK-permitted option.
    pub sack_permitted: bool,
    /// TSval of the timestamps option.
    pub tsval: Option<u32>,
    /// An ECN-setup SYN: ECE and CWR both set (RFC 3168 §6.1.1).
    pub ecn: bool,
}

impl SynInfo {
    /// What `seg` (a SYN) offered.
    pub fn from_segment(seg: &Segment<'_>) -> Self {
        let o = &seg.tcp.options;
        SynInfo {
            seq: seg.tcp.seq,
            window: seg.tcp.window,
            mss: o.mss,
            wscale: o.window_scale,
            sack_permitted: o.sack_permitted,
            tsval: o.timestamps.map(|t| t.tsval),
            ecn: seg.tcp.flags.contains(TcpFlags::ECE.with(TcpFlags::CWR)),
        }
    }
}

/// The part of a peer's SYN that our SYN-ACK (and its retransmissions) answers: whether it
/// offered window scaling, SACK and timestamps, and its TSval (RFC 7323 §3.2: the SYN-ACK's
/// TSecr). 8 bytes where a [`SynInfo`] takes 24.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PeerSyn {
    /// TSval of the SYN, when `offered` has [`PeerSyn::TS`].
    tsval: u32,
    /// `WSCALE`, `SACK` and `TS` bits: which of those options the SYN carried.
    offered: u8,
}

impl PeerSyn {
    const WSCALE: u8 = 1;
    const SACK: u8 = 2;
    const TS: u8 = 4;

    /// What a SYN-ACK's options depend on in `syn` ([`syn_options`]).
    pub(crate) fn to_syn_info(self) -> SynInfo {
        SynInfo {
            wscale: (self.offered & Self::WSCALE != 0).then_some(0),
            sack_permitted: self.offered & Self::SACK != 0,
            tsval: (self.offered & Self::TS != 0).then_some(self.tsval),
            ..SynInfo::default()
        }
    }
}

impl From<&SynInfo> for PeerSyn {
    fn from(syn: &SynInfo) -> Self {
        let mut offered = 0;
        if syn.wscale.is_some() {
            offered |= Self::WSCALE;
        }
        if syn.sack_permitted {
            offered |= Self::SACK;
        }
        if syn.tsval.is_some() {
            offered |= Self::TS;
        }
        PeerSyn { tsval: syn.tsval.unwrap_or(0), offered }
    }
}

/// The MSS we advertise: the MTU less IP and TCP headers (RFC 9293 §3.7.1).
pub(crate) fn our_mss(cfg: &ConnConfig, ipv4: bool) -> u16 {
    let ip = if ipv4 { 20 } else { 40 };
    let mss = cfg.mtu.saturating_sub(ip + 20).max(64);
    // Linux clamps TCP_MAXSEG to [TCP_MIN_MSS (88), MAX_TCP_WINDOW] when it is set.
    cfg.max_segment.map_or(mss, |m| mss.min(m.max(88)))
}

/// The send MSS a SYN (or SYN-ACK) negotiates (RFC 9293 §3.7.1): the peer's, clamped
/// against a hostile tiny value (the SACK-panic class of attacks relies on one), at most ours.
pub(crate) fn syn_snd_mss(cfg: &ConnConfig, remote: &SocketAddr, syn: &SynInfo) -> u32 {
    let peer_mss = syn.mss.map_or(super::default_mss(remote), |m| u32::from(m).max(64));
    peer_mss.min(u32::from(our_mss(cfg, remote.is_ipv4())))
}

/// Payload bytes per full segment after a SYN exchange: [`syn_snd_mss`] less the
/// timestamps option every segment then carries (RFC 7323 §3.2).
pub(crate) fn negotiated_mss(cfg: &ConnConfig, remote: &SocketAddr, syn: &SynInfo) -> u32 {
    let ts = cfg.timestamps && syn.tsval.is_some();
    syn_snd_mss(cfg, remote, syn).saturating_sub(if ts { 12 } else { 0 }).max(1)
}

/// The window-scale shift we offer: the smallest that lets the whole receive buffer be
/// advertised (RFC 7323 §2.3) once auto-tuning has grown it to its maximum (the shift is
/// fixed by the SYN), 0 when scaling is off.
pub(crate) fn our_wscale(cfg: &ConnConfig) -> u8 {
    if !cfg.window_scaling {
        return 0;
    }
    let most = cfg.recv_buffer.max(cfg.max_recv_buffer);
    let mut shift = 0u8;
    while shift < 14 && (most >> shift) > 65_535 {
        shift += 1;
    }
    shift
}

/// Our timestamp clock: milliseconds plus a per-connection offset (RFC 7323 §5.4).
pub(crate) fn ts_clock(now: Instant, offset: u32) -> u32 {
    ((now.as_micros() / 1000) as u32).wrapping_add(offset)
}

/// Options of our SYN (`peer` is `None`: offer everything configured) or of our SYN-ACK
/// (answer only what the peer offered).
pub(crate) fn syn_options(
    cfg: &ConnConfig,
    ipv4: bool,
    peer: Option<&SynInfo>,
    tsval: u32,
) -> TcpOptions {
    let mut o = TcpOptions { mss: Some(our_mss(cfg, ipv4)), ..TcpOptions::default() };
    if cfg.window_scaling && peer.is_none_or(|p| p.wscale.is_some()) {
        o.window_scale = Some(our_wscale(cfg));
    }
    o.sack_permitted = cfg.sack && peer.is_none_or(|p| p.sack_permitted);
    if cfg.timestamps {
        o.timestamps = match peer {
            None => Some(Timestamps { tsval, tsecr: 0 }),
            Some(p) => p.tsval.map(|tsecr| Timestamps { tsval, tsecr }),
        };
    }
    o
}

/// The window field of a SYN or SYN-ACK: the buffer, unscaled (RFC 7323 §2.2).
pub(crate) fn syn_window(cfg: &ConnConfig) -> u16 {
    cfg.recv_buffer.min(65_535) as u16
}

/// The SYN-ACK a listener sends for `syn` before any connection exists (SYN-queue entries,
/// SYN cookies). `tsval` lets cookies encode options in it (RFC 4987 §3.6; Linux).
pub(crate) fn syn_ack_repr(
    cfg: &ConnConfig,
    params: &ConnParams,
    syn: &SynInfo,
    tsval: u32,
) -> TcpRepr {
    TcpRepr {
        src_port: params.local.port(),
        dst_port: params.remote.port(),
        seq: params.iss,
        ack: syn.seq + 1,
        flags: super::ecn::syn_ack_flags(cfg, syn),
        window: syn_window(cfg),
        urgent: 0,
        options: syn_options(cfg, params.remote.is_ipv4(), Some(syn), tsval),
    }
}

impl Connection {
    /// Passive open from what a SYN offered (RFC 9293 §3.10.7.2): a connection in
    /// SYN-RECEIVED whose SYN-ACK goes out on the first `poll_transmit`, unless the endpoint
    /// already sent it (see [`Connection::syn_ack_sent`]).
    pub fn accept_syn(
        cfg: impl Into<SharedConnConfig>,
        params: ConnParams,
        syn: SynInfo,
        now: Instant,
    ) -> Self {
        let cfg = cfg.into();
        let mss = negotiated_mss(&cfg, &params.remote, &syn);
        let mut c = Connection::new(cfg, params, State::SynReceived, true, mss);
        c.take_peer_syn(&syn, now);
        c
    }

    /// [`Connection::accept_syn`], built in its box: the endpoint hands connections out
    /// boxed, and every move of one copies some 800 bytes.
    pub(crate) fn accept_syn_boxed(
        cfg: SharedConnConfig,
        params: ConnParams,
        syn: SynInfo,
        now: Instant,
    ) -> Box<Self> {
        // The controller starts with the segment size the SYN negotiates (RFC 5681 §3.1:
        // IW counts in SMSS), built once.
        let mss = negotiated_mss(&cfg, &params.remote, &syn);
        let mut c = Box::new(Connection::new(cfg, params, State::SynReceived, true, mss));
        c.take_peer_syn(&syn, now);
        c
    }

    fn take_peer_syn(&mut self, syn: &SynInfo, now: Instant) {
        self.take_syn(syn, now);
        if Self::debug_on() {
            self.span().in_scope(|| tracing::debug!("passive open"));
        }
    }

    /// The endpoint already sent this connection's SYN-ACK, first at `first_sent`;
    /// `retransmitted` withholds the RTT sample (Karn, RFC 6298 §3).
    pub fn syn_ack_sent(&mut self, first_sent: Instant, retransmitted: bool) {
        self.unsync_timers();
        if self.state != State::SynReceived || self.snd_nxt != self.iss {
            return;
        }
        self.snd_nxt = self.iss + 1;
        self.snd_max = self.snd_nxt;
        self.rcv_adv = self.rcv_nxt + u32::from(syn_window(&self.cfg));
        if !retransmitted {
            self.rtt_probe = Some((self.snd_nxt, first_sent));
        }
    }
}

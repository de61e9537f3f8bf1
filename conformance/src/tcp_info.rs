//! tcpcore's `TcpInfo` in Linux's `struct tcp_info` layout (include/uapi/linux/tcp.h).

use tcpcore::{CaState, Instant, State, TcpInfo};

/// Bytes written: the fields below end at `tcpi_total_rto_time` (offset 248, Linux 6.7);
/// newer fields (accurate ECN counters, which packetdrill's copy of the struct has) and room
/// to grow stay zero.
pub(crate) const LEN: usize = 512;

const TCPI_OPT_TIMESTAMPS: u8 = 1;
const TCPI_OPT_SACK: u8 = 2;
const TCPI_OPT_WSCALE: u8 = 4;
const TCPI_OPT_ECN: u8 = 8;
const TCPI_OPT_SYN_DATA: u8 = 32;
/// Linux `TCP_INFINITE_SSTHRESH`.
const INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

/// Linux's `TCP_*` state numbers (include/net/tcp_states.h).
fn linux_state(s: State) -> u8 {
    match s {
        State::Established => 1,
        State::SynSent => 2,
        State::SynReceived => 3,
        State::FinWait1 => 4,
        State::FinWait2 => 5,
        State::TimeWait => 6,
        State::Closed => 7,
        State::CloseWait => 8,
        State::LastAck => 9,
        State::Listen => 10,
        State::Closing => 11,
    }
}

struct Writer([u8; LEN]);

impl Writer {
    fn u32(&mut self, off: usize, v: u32) {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn u64(&mut self, off: usize, v: u64) {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }
}

/// The bytes of `struct tcp_info` for a connection at `now` (`None`: a socket with none,
/// which Linux reports as all zeros but the CLOSE state). Fields tcpcore does not track stay
/// zero.
pub(crate) fn linux_layout(info: Option<TcpInfo>, now: Instant) -> [u8; LEN] {
    let mut w = Writer([0; LEN]);
    let Some(i) = info else {
        w.0[0] = linux_state(State::Closed);
        return w.0;
    };
    let mss = i.snd_mss.max(1);
    w.0[0] = linux_state(i.state);
    // tcpi_ca_state: Linux's TCP_CA_Open 0, Disorder 1, CWR 2, Recovery 3, Loss 4.
    w.0[1] = match i.ca_state {
        CaState::Open => 0,
        CaState::Disorder => 1,
        CaState::Cwr => 2,
        CaState::Recovery => 3,
        CaState::Loss => 4,
        _ => 0,
    };
    let mut opts = 0;
    if i.timestamps {
        opts |= TCPI_OPT_TIMESTAMPS;
    }
    if i.sack {
        opts |= TCPI_OPT_SACK;
    }
    if i.wscale != (0, 0) {
        opts |= TCPI_OPT_WSCALE;
    }
    if i.ecn {
        opts |= TCPI_OPT_ECN;
    }
    if i.syn_data {
        opts |= TCPI_OPT_SYN_DATA;
    }
    w.0[5] = opts;
    // tcpi_snd_wscale:4 (low nibble, the peer's shift), tcpi_rcv_wscale:4 (ours).
    w.0[6] = (i.wscale.1 & 0xf) | ((i.wscale.0 & 0xf) << 4);
    w.u32(8, i.rto.as_micros() as u32);
    w.u32(16, i.snd_mss);
    w.u32(20, i.snd_mss); // tcpi_rcv_mss: tcpcore does not estimate it; the MSS is close.
    w.u32(24, i.unacked.div_ceil(mss)); // tcpi_unacked, in segments
    w.u32(28, i.sacked.div_ceil(mss)); // tcpi_sacked
    w.u32(32, i.lost.div_ceil(mss)); // tcpi_lost
    if let Some(t) = i.last_data_recv {
        w.u32(52, now.saturating_duration_since(t).as_millis() as u32); // tcpi_last_data_recv
    }
    w.u32(68, i.srtt.map_or(0, |d| d.as_micros() as u32));
    w.u32(72, i.rttvar.as_micros() as u32);
    let ssthresh =
        if i.ssthresh >= INFINITE_SSTHRESH { INFINITE_SSTHRESH } else { i.ssthresh / mss };
    w.u32(76, ssthresh);
    w.u32(80, i.cwnd / mss);
    w.u32(84, i.snd_mss); // tcpi_advmss
    w.u32(88, 3); // tcpi_reordering: Linux's initial tcp_reordering
    w.u32(100, i.retransmits as u32); // tcpi_total_retrans
    w.u64(120, i.bytes_acked);
    w.u64(128, i.bytes_received);
    w.u32(136, i.segs_out as u32);
    w.u32(140, i.segs_in as u32);
    w.u64(200, i.bytes_sent);
    w.u64(208, i.bytes_retransmitted);
    w.u32(228, i.snd_wnd);
    w.u32(232, i.rcv_wnd);
    w.0
}

//! Path MTU discovery: acting on a smaller path MTU reported by ICMPv4 "fragmentation needed"
//! (RFC 1191) or ICMPv6 "packet too big" (RFC 8201), which the endpoint routes here as
//! [`crate::DatagramEvent::PathMtu`].
//!
//! Every segment we send carries DF (IPv4) or cannot be fragmented on the way (IPv6), so a
//! router that cannot forward it drops it and says how large a packet fits. ICMP is easy to
//! forge, hence three defences:
//! - RFC 5927 §4.1: the quoted sequence number must be in flight (SND.UNA ≤ SEG.SEQ <
//!   SND.MAX; our SND.MAX is RFC 9293's SND.NXT, ours being rewound by retransmissions);
//! - the MSS never grows from ICMP (RFC 1191 §6.3: only a *smaller* PMTU is believed);
//! - a floor ([`MIN_PMTU_V4`], [`MIN_PMTU_V6`]): a forged tiny MTU would make every
//!   segment mostly header (RFC 5927 §7). Reports below the floor lower the path MTU to the
//!   floor only.

use super::Connection;
use crate::wire::{ipv4, ipv6, tcp, SeqNum};
use crate::Instant;

/// Smallest IPv4 path MTU we adopt: 552 bytes, Linux's `min_pmtu` (`ip_rt_min_pmtu`,
/// 512 + 20 + 20), giving an MSS of 512. RFC 1191 §3 permits down to 68, but so small an MTU
/// is only ever seen in attacks (RFC 5927 §7.2).
pub const MIN_PMTU_V4: u16 = 552;
/// Smallest IPv6 path MTU: the minimum link MTU of RFC 8200 §5, giving an MSS of 1220.
pub const MIN_PMTU_V6: u16 = 1280;

impl Connection {
    /// A smaller path MTU was reported by ICMP for a segment starting at `quoted_seq`
    /// (from [`crate::DatagramEvent::PathMtu`]).
    ///
    /// Ignored (and counted in [`crate::TcpInfo::icmp_ignored`]) before the handshake
    /// completes (SYNs are small), when `quoted_seq` is not in flight (RFC 5927 §4.1), or when
    /// the resulting MSS is not smaller than the current one. Otherwise the MSS becomes
    /// `max(mtu, floor)` less the IP and TCP headers (timestamps are then taken from it as
    /// usual), and every unacknowledged segment is sent again at the new size: RFC 1191 §6.5
    /// treats the drop "as a retransmission ... without congestion control implications", so
    /// SND.NXT is rewound to SND.UNA and the congestion window is left alone (as Linux
    /// `tcp_simple_retransmit`). Only segments sent after this call are smaller; call
    /// [`Connection::poll_transmit`] afterwards.
    pub fn handle_path_mtu(&mut self, now: Instant, mtu: u16, quoted_seq: SeqNum) {
        self.unsync_timers();
        let _span = self.span().entered();
        if !self.state.is_synchronized() || !quoted_seq.in_range(self.snd_una, self.snd_max) {
            self.info.cold.icmp_ignored += 1;
            tracing::trace!(
                seq = quoted_seq.0,
                una = self.snd_una.0,
                "ICMP quotes a segment not in flight"
            );
            return;
        }
        let (floor, ip_header) = if self.remote.is_ipv4() {
            (MIN_PMTU_V4, ipv4::HEADER_LEN)
        } else {
            (MIN_PMTU_V6, ipv6::HEADER_LEN)
        };
        let headers = (ip_header + tcp::HEADER_LEN) as u32;
        let mss = u32::from(mtu.max(floor)).saturating_sub(headers);
        if mss >= self.snd_mss {
            self.info.cold.icmp_ignored += 1;
            return;
        }
        tracing::debug!(mtu, old = self.snd_mss, new = mss, "path MTU lowered");
        self.snd_mss = mss;
        self.info.cold.pmtu_reductions += 1;
        // RFC 1191 §6.5: the quoted segment (and any other too-large one in flight) was
        // dropped by the router; send everything unacknowledged again at the new size.
        if self.snd_nxt > self.snd_una {
            self.snd_nxt = self.snd_una;
            self.recovery.retransmit_head = false;
        }
        self.update_timers(now);
    }

    /// The path MTU the current segment size assumes: the MSS plus IP and TCP headers.
    pub fn path_mtu(&self) -> u32 {
        let ip = if self.remote.is_ipv4() { ipv4::HEADER_LEN } else { ipv6::HEADER_LEN };
        self.snd_mss + (ip + tcp::HEADER_LEN) as u32
    }
}

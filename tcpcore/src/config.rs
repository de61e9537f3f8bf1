//! Configuration. Every default mirrors Linux; each field names the RFC or sysctl it follows.

use core::ops::{Deref, DerefMut};
use core::time::Duration;
use std::sync::Arc;

/// Which congestion controller new connections use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CongestionAlgorithm {
    /// NewReno (RFC 5681, RFC 6582).
    NewReno,
    /// CUBIC (RFC 9438) with Linux's HyStart in slow start ([`SlowStartExit`]), as Linux.
    #[default]
    Cubic,
    /// BBR version 3 (draft-ietf-ccwg-bbr), model-based and paced, as Linux's `bbr`
    /// module (Linux's is BBRv1 upstream, BBRv3 in Google's tree).
    Bbr,
}

/// How CUBIC leaves its initial slow start before a loss does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SlowStartExit {
    /// HyStart with both of its detectors, the ACK train and the delay increase, as Linux's
    /// CUBIC (`hystart_detect = 3`): either one ends slow start at once (`cc/hystart.rs`).
    #[default]
    HyStart,
    /// HyStart++ (RFC 9406): a delay increase enters Conservative Slow Start, which ends in
    /// congestion avoidance after 5 rounds or returns to slow start if the RTT falls back.
    HyStartPlusPlus,
    /// No early exit: slow start ends at the first loss or ECN mark (Linux `hystart = 0`).
    /// CUBIC's slow start then grows cwnd by every byte acknowledged, as with HyStart.
    Off,
}

/// Whether a connection uses ECN (RFC 3168), as Linux's `net.ipv4.tcp_ecn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EcnMode {
    /// Neither ask for ECN nor accept it (`tcp_ecn = 0`).
    Off,
    /// Ask for ECN on our SYNs and accept it when asked (`tcp_ecn = 1`).
    Request,
    /// Accept ECN when the peer's SYN asks, never ask (`tcp_ecn = 2`, Linux's default).
    #[default]
    Accept,
}

impl EcnMode {
    /// The mode of a `net.ipv4.tcp_ecn` value (Linux treats every value but 1 and 2 as 0).
    pub fn from_sysctl(value: u32) -> Self {
        match value {
            1 => EcnMode::Request,
            2 => EcnMode::Accept,
            _ => EcnMode::Off,
        }
    }
}

/// Per-connection settings. Cheap to copy; connections with the same settings share one
/// copy ([`SharedConnConfig`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConnConfig {
    /// Interface MTU; our advertised MSS is derived from it (RFC 9293 §3.7.1).
    pub mtu: u16,
    /// Initial send buffer capacity in bytes (`net.ipv4.tcp_wmem` default).
    pub send_buffer: usize,
    /// Largest send buffer auto-tuning may grow to (`net.ipv4.tcp_wmem` max, 4 MiB; Linux
    /// `tcp_sndbuf_expand`): while the application finds the buffer full and the congestion
    /// window has room, the buffer grows to twice the congestion window. The growth is room
    /// for data in flight: bytes not yet sent stay within `send_buffer`. At or below
    /// `send_buffer`, auto-tuning is off.
    pub max_send_buffer: usize,
    /// Initial receive buffer capacity in bytes; the advertised window never exceeds its free
    /// space (`net.ipv4.tcp_rmem` default).
    pub recv_buffer: usize,
    /// Largest receive buffer auto-tuning may grow to (`net.ipv4.tcp_rmem` max, 6 MiB; Linux
    /// `tcp_moderate_rcvbuf`). The window scale we offer is sized for it (RFC 7323 §2.3). At
    /// or below `recv_buffer`, auto-tuning is off.
    pub max_recv_buffer: usize,
    /// Most out-of-order ranges (holes) held at once; further holes are dropped (RX-09,
    /// SEC-05). The receive buffer bounds them too, as Linux bounds its out-of-order queue by
    /// the receive buffer: one range per KiB of it (a 4 MiB buffer holds 4096). Default: no
    /// bound of its own (`usize::MAX`).
    pub max_ooo_ranges: usize,
    /// Offer window scaling (RFC 7323 §2).
    pub window_scaling: bool,
    /// Offer timestamps (RFC 7323 §3).
    pub timestamps: bool,
    /// Offer SACK (RFC 2018).
    pub sack: bool,
    /// Initial RTO (RFC 6298 §2.1: 1 s).
    pub initial_rto: Duration,
    /// Lower clamp of the RTO (Linux `TCP_RTO_MIN`, 200 ms).
    pub min_rto: Duration,
    /// Upper clamp of the RTO (Linux `TCP_RTO_MAX`, 120 s).
    pub max_rto: Duration,
    /// SYN retransmissions before `connect` fails (`tcp_syn_retries`, 6).
    pub syn_retries: u8,
    /// SYN-ACK retransmissions before a half-open entry is dropped (`tcp_synack_retries`, 5).
    pub synack_retries: u8,
    /// Data/FIN retransmissions before the connection fails (`tcp_retries2`, 15).
    pub data_retries: u8,
    /// Abort when sent data stays unacknowledged this long (RFC 5482 `TCP_USER_TIMEOUT`).
    pub user_timeout: Option<Duration>,
    /// Maximum segment lifetime; TIME-WAIT lasts twice this (Linux: 2 MSL = 60 s).
    pub msl: Duration,
    /// Timeout of an orphaned FIN-WAIT-2 (`tcp_fin_timeout`, 60 s).
    pub fin_wait2_timeout: Duration,
    /// Keepalive (`SO_KEEPALIVE`), off by default.
    pub keepalive: bool,
    /// Idle time before the first keepalive probe (`tcp_keepalive_time`, 7200 s).
    pub keepalive_idle: Duration,
    /// Interval between keepalive probes (`tcp_keepalive_intvl`, 75 s).
    pub keepalive_interval: Duration,
    /// Unanswered probes before the connection fails (`tcp_keepalive_probes`, 9).
    pub keepalive_probes: u8,
    /// Delayed-ACK timeout (Linux ATO max 40 ms at HZ=1000 for quick paths; RFC 9293 §3.8.6.3
    /// allows up to 500 ms).
    pub delayed_ack: Duration,
    /// Segments acknowledged immediately at the start of a connection (Linux quick-ack mode).
    pub quick_acks: u8,
    /// Disable Nagle's algorithm (`TCP_NODELAY`; RFC 896 is on by default).
    pub nodelay: bool,
    /// Challenge ACKs per second per connection (RFC 5961 §7).
    pub challenge_ack_limit: u32,
    /// Least time between ACKs answering unacceptable segments that carry no data (Linux
    /// `tcp_invalid_ratelimit`, 500 ms): breaks ACK loops between desynchronized peers.
    pub invalid_ack_interval: Duration,
    /// Congestion controller.
    pub congestion: CongestionAlgorithm,
    /// How CUBIC's initial slow start ends before a loss (Linux's HyStart by default).
    pub slow_start_exit: SlowStartExit,
    /// Initial congestion window in segments (RFC 6928: 10).
    pub initial_cwnd: u32,
    /// Largest segment size to advertise and to send (Linux `TCP_MAXSEG`, `user_mss`): the
    /// MSS option of our SYN carries at most this, and it caps the peer's. `None`: from the
    /// MTU only.
    pub max_segment: Option<u16>,
    /// Restart from the restart window after an idle period longer than the RTO (RFC 5681
    /// §4.1 "SHOULD"; Linux `tcp_slow_start_after_idle`, 1 by default). Off, cwnd survives
    /// idleness, as Linux with the sysctl at 0.
    pub slow_start_after_idle: bool,
    /// Time to live of the IPv4 packets this connection sends, or hop limit of its IPv6
    /// packets (`IP_TTL`, `IPV6_UNICAST_HOPS`; RFC 1122 §3.2.1.7 recommends 64, Linux
    /// `ip_default_ttl`).
    pub ttl: u8,
    /// Type of service of the IPv4 packets this connection sends, or traffic class of its
    /// IPv6 packets (`IP_TOS`, `IPV6_TCLASS`; RFC 2474 §3 DSCP). As Linux does for TCP, the
    /// two ECN bits (RFC 3168 §5) are not the socket's: they are sent as zero. 0 by default.
    pub tos: u8,
    /// ECN negotiation (RFC 3168 §6.1.1): Linux's default accepts when the peer asks.
    pub ecn: EcnMode,
    /// Pace data segments (Linux's internal TCP pacing, `SK_PACING_NEEDED`, or the `fq`
    /// qdisc): at most about a millisecond of data leaves at once, spread at 2× cwnd/SRTT in
    /// slow start and 1.2× in congestion avoidance (`conn/pacing.rs`). Off by default, as
    /// Linux without `fq`; a controller that sets its own rate (BBR) is paced regardless.
    pub pacing: bool,
    /// Cap on the pacing rate in bytes per second (Linux `SO_MAX_PACING_RATE`); as in Linux,
    /// a cap turns pacing on. `None` (the default): no cap.
    pub max_pacing_rate: Option<u64>,
    /// How late the owner may serve a connection's timers (tokio's timer wheel: up to 1 ms);
    /// pacing forgives a release that much lateness, so a coarse timer does not slow a paced
    /// sender. Zero by default: timers served on time, as the simulator does.
    pub timer_granularity: Duration,
    /// What the network device does for the stack (set by the I/O layer from the device's
    /// capabilities, as tcp-tokio's driver does); nothing by default.
    pub offload: Offload,
    /// TCP Fast Open for active opens (Linux `TCP_FASTOPEN_CONNECT`, RFC 7413 §4.2): the SYN
    /// waits for the first write and carries its data with the server's cookie, or asks for
    /// a cookie when none is cached. Off by default.
    pub fast_open_connect: bool,
}

impl ConnConfig {
    /// The IP header fields of the packets a connection with this configuration sends, with
    /// `ecn` as the ECN field (RFC 3168 §5: the ECN logic's, never the socket's TOS bits).
    pub(crate) fn ip_fields(&self, ecn: u8) -> crate::wire::IpFields {
        let mask = crate::wire::ecn::MASK;
        crate::wire::IpFields { ttl: self.ttl, tos: (self.tos & !mask) | (ecn & mask) }
    }
}

/// Work the network device takes off the stack, like a NIC's (or a TUN's with
/// `IFF_VNET_HDR`) TSO/GSO and checksum offloads. The I/O layer sets it from what its device
/// supports; applications leave it alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offload {
    /// Largest TCP super-segment (a whole IP packet, in bytes, at most 65535) the device cuts
    /// into MSS-sized segments on send (TSO/GSO): `poll_transmit` may then write one packet
    /// carrying several segments' worth of new data, with [`Transmit::gso_size`] set. 0 (the
    /// default) when the device cannot; buffers passed to `poll_transmit` must then hold this
    /// many bytes.
    ///
    /// [`Transmit::gso_size`]: crate::Transmit::gso_size
    pub gso_max_size: usize,
    /// The device completes TCP checksums on send, as Linux's `CHECKSUM_PARTIAL`: packets
    /// leave with only the pseudo-header sum (not complemented) in the TCP checksum field, and
    /// [`Transmit::csum_partial`] says so. Every packet the stack emits then has this form.
    ///
    /// [`Transmit::csum_partial`]: crate::Transmit::csum_partial
    pub tx_checksum: bool,
    /// The device has verified (or, for an in-memory link, need not verify) the TCP checksums
    /// of the packets it hands over; the stack skips the check. The IPv4 header checksum is
    /// still verified.
    pub rx_checksum: bool,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            mtu: 1500,
            send_buffer: 256 * 1024,
            max_send_buffer: 4 * 1024 * 1024,
            recv_buffer: 256 * 1024,
            max_recv_buffer: 6 * 1024 * 1024,
            max_ooo_ranges: usize::MAX,
            window_scaling: true,
            timestamps: true,
            sack: true,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(120),
            syn_retries: 6,
            synack_retries: 5,
            data_retries: 15,
            user_timeout: None,
            msl: Duration::from_secs(30),
            fin_wait2_timeout: Duration::from_secs(60),
            keepalive: false,
            keepalive_idle: Duration::from_secs(7200),
            keepalive_interval: Duration::from_secs(75),
            keepalive_probes: 9,
            delayed_ack: Duration::from_millis(40),
            quick_acks: 16,
            nodelay: false,
            challenge_ack_limit: 10,
            invalid_ack_interval: Duration::from_millis(500),
            congestion: CongestionAlgorithm::Cubic,
            slow_start_exit: SlowStartExit::HyStart,
            initial_cwnd: 10,
            max_segment: None,
            slow_start_after_idle: true,
            ttl: crate::wire::ipv4::DEFAULT_TTL,
            tos: 0,
            ecn: EcnMode::Accept,
            pacing: false,
            max_pacing_rate: None,
            timer_granularity: Duration::ZERO,
            offload: Offload::default(),
            fast_open_connect: false,
        }
    }
}

/// A connection's settings, shared by every connection opened with the same ones (the
/// endpoint's defaults, usually) and copied on write: a socket option set on one
/// connection gives it its own copy. A connection then holds a pointer, not 250 bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedConnConfig(Arc<ConnConfig>);

impl SharedConnConfig {
    /// These settings if they equal `cfg` (one more connection shares them), else a new copy.
    pub fn share_or_new(&self, cfg: &ConnConfig) -> SharedConnConfig {
        if *self.0 == *cfg {
            self.clone()
        } else {
            SharedConnConfig::from(*cfg)
        }
    }
}

impl From<ConnConfig> for SharedConnConfig {
    fn from(cfg: ConnConfig) -> Self {
        SharedConnConfig(Arc::new(cfg))
    }
}

impl Deref for SharedConnConfig {
    type Target = ConnConfig;
    fn deref(&self) -> &ConnConfig {
        &self.0
    }
}

impl DerefMut for SharedConnConfig {
    /// Copy on write: the first change gives this connection its own settings.
    fn deref_mut(&mut self) -> &mut ConnConfig {
        Arc::make_mut(&mut self.0)
    }
}

/// Endpoint-wide settings.
#[derive(Clone, Copy, Debug)]
pub struct EndpointConfig {
    /// Seed of every random choice: ISNs, ephemeral ports, hash keys (RFC 6528, RFC 6056).
    /// The engine has no randomness of its own: a deployment must give each endpoint a seed
    /// from a random source (tcp-tokio draws one from the OS), or every endpoint computes the
    /// same ISNs and cookies (SEC-07). The default, 0, is for tests.
    pub seed: u64,
    /// Defaults for new connections.
    pub conn: ConnConfig,
    /// RSTs per second sent for segments that match no connection (Linux `icmp_ratelimit`-like).
    pub rst_rate_limit: u32,
    /// Cap on every listener's accept queue (`net.core.somaxconn`, 4096).
    pub somaxconn: u32,
    /// Most TIME-WAIT entries kept (`tcp_max_tw_buckets`).
    pub max_time_wait: usize,
    /// First port of the ephemeral range (`ip_local_port_range`, 32768).
    pub ephemeral_start: u16,
    /// Last port of the ephemeral range (60999).
    pub ephemeral_end: u16,
    /// Receive queue limit of new UDP sockets in bytes (`net.core.rmem_default`, 212992);
    /// each datagram counts its data plus [`crate::endpoint::DATAGRAM_OVERHEAD`].
    pub udp_rcvbuf: usize,
    /// Send queue limit of new UDP sockets in bytes (`net.core.wmem_default`, 212992).
    pub udp_sndbuf: usize,
    /// Per destination, one ICMP error per this interval with a burst of 6
    /// (`net.ipv4.icmp_ratelimit`, 1000 ms; `net.ipv6.icmp.ratelimit` likewise).
    pub icmp_ratelimit: Duration,
    /// ICMP errors per second over all destinations (`net.ipv4.icmp_msgs_per_sec`, 1000).
    pub icmp_msgs_per_sec: u32,
    /// Burst of that global limit (`net.ipv4.icmp_msgs_burst`, 50).
    pub icmp_msgs_burst: u32,
    /// Memory IP reassembly may hold, in bytes (`net.ipv4.ipfrag_high_thresh`, 4 MiB):
    /// fragments beyond it are dropped and counted.
    pub ipfrag_high_thresh: usize,
    /// How long an incomplete datagram waits for its fragments (`net.ipv4.ipfrag_time`,
    /// 30 s; RFC 8200 §4.5 says 60 s, Linux uses 30 for IPv6 too).
    pub ipfrag_time: Duration,
    /// Buffer memory (send and receive rings, out-of-order ranges, SACK scoreboards) of
    /// all connections above which they stop growing their buffers and offer windows of
    /// at most four segments (Linux `tcp_mem[1]`, the pressure threshold). Linux sizes
    /// `tcp_mem` from RAM; the default, 2 GiB, is its value on a 24 GiB host and room for
    /// 4,096 connections with full default buffers.
    pub mem_pressure: usize,
    /// TCP Fast Open (RFC 7413), as Linux's `net.ipv4.tcp_fastopen` and
    /// `tcp_fastopen_key`: client on, server on only at listeners that ask for it.
    pub fast_open: FastOpenConfig,
}

/// TCP Fast Open (RFC 7413) for a whole endpoint: the bits of Linux's
/// `net.ipv4.tcp_fastopen` and its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastOpenConfig {
    /// Connections opened with [`ConnConfig::fast_open_connect`] send data on their SYN
    /// (bit 0x1; on by default, as Linux).
    pub client: bool,
    /// Listeners with a Fast Open queue ([`crate::ListenOptions::fast_open_queue`]) accept
    /// data on SYNs with a valid cookie (bit 0x2). On here: the listener option is what
    /// enables the server side, as an application expects from `TCP_FASTOPEN`.
    pub server: bool,
    /// The client sends data on its SYN without a cookie (bit 0x4, off; RFC 7413 §7.2).
    pub client_no_cookie: bool,
    /// Listeners accept SYN data without a cookie (bit 0x200, off; RFC 7413 §7.2).
    pub server_no_cookie: bool,
    /// Every listener does Fast Open, with its backlog as the queue length, without the
    /// listener option (bit 0x400, off).
    pub server_all_listeners: bool,
    /// The cookie key (`tcp_fastopen_key`, the 16 bytes Linux reads as four 32-bit words);
    /// `None`: a key derived from [`EndpointConfig::seed`]. Rotate it on a live endpoint
    /// with [`crate::Endpoint::rotate_fast_open_key`].
    pub key: Option<[u8; 16]>,
    /// Most servers whose cookie a client remembers (Linux keeps them in `tcp_metrics`).
    pub cookie_cache: usize,
}

impl Default for FastOpenConfig {
    fn default() -> Self {
        FastOpenConfig {
            client: true,
            server: true,
            client_no_cookie: false,
            server_no_cookie: false,
            server_all_listeners: false,
            key: None,
            cookie_cache: 1024,
        }
    }
}

impl FastOpenConfig {
    /// The settings of Linux's `net.ipv4.tcp_fastopen` value `bits` (1 is Linux's default),
    /// with the key and cache size of `self`.
    pub fn with_sysctl(self, bits: u32) -> Self {
        FastOpenConfig {
            client: bits & 0x1 != 0,
            server: bits & 0x2 != 0,
            client_no_cookie: bits & 0x4 != 0,
            server_no_cookie: bits & 0x200 != 0,
            server_all_listeners: bits & 0x400 != 0,
            ..self
        }
    }
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            seed: 0,
            conn: ConnConfig::default(),
            rst_rate_limit: 1000,
            somaxconn: 4096,
            max_time_wait: 65_536,
            ephemeral_start: 32768,
            ephemeral_end: 60999,
            udp_rcvbuf: 212_992,
            udp_sndbuf: 212_992,
            icmp_ratelimit: Duration::from_secs(1),
            icmp_msgs_per_sec: 1000,
            icmp_msgs_burst: 50,
            ipfrag_high_thresh: 4 * 1024 * 1024,
            ipfrag_time: Duration::from_secs(30),
            mem_pressure: 2 << 30,
            fast_open: FastOpenConfig::default(),
        }
    }
}

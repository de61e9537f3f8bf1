//! The stack under test: one tcpcore `Endpoint`, its connections, the packets it emitted and
//! not yet handed to packetdrill, and the virtual clock they all run on.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tcpcore::{Connection, ConnectionHandle, DatagramEvent, Endpoint, EndpointConfig, Instant};

/// Microseconds added to the virtual clock when it is reported as wall time, so packetdrill
/// sees a plausible `gettimeofday` (2020-09-13) rather than the epoch.
pub(crate) const EPOCH_USECS: u64 = 1_600_000_000_000_000;

/// Largest packet the stack writes: a TSO super-segment (see [`config`]).
const MAX_PACKET: usize = 65_535;

/// A connection and whether a file descriptor still refers to it.
pub(crate) struct Entry {
    /// The TCB.
    pub(crate) conn: Connection,
    /// No descriptor refers to it any more (closed, or its listener was closed): it is
    /// dropped once drained.
    pub(crate) orphan: bool,
}

/// The endpoint with its connections, output queue and virtual clock.
pub(crate) struct Stack {
    /// The demultiplexer and connection factory.
    pub(crate) ep: Endpoint,
    /// Virtual time.
    pub(crate) now: Instant,
    /// Every connection, owned here (the endpoint only routes).
    pub(crate) conns: BTreeMap<ConnectionHandle, Entry>,
    /// Packets emitted and not yet sniffed by packetdrill, with their emission time.
    pub(crate) out: VecDeque<(Instant, Vec<u8>)>,
    /// Drained connections a descriptor still refers to, removed from the endpoint and
    /// waiting for the socket layer to take them (`Host::sync`).
    pub(crate) retired: Vec<(ConnectionHandle, Connection)>,
    scratch: Vec<u8>,
}

/// The endpoint configuration Linux's defaults give the scripts
/// (`gtests/net/common/defaults.sh`): initial cwnd 10, timestamps, SACK and window scaling,
/// min RTO 200 ms, delayed ACK 40 ms, `tcp_rmem` default 540000 / max 15 MiB, `tcp_wmem`
/// default 256 KiB / max 4 MiB, `tcp_syn_retries` 5, and TSO super-segments seen as one
/// packet, as packetdrill's tun device sees them from Linux.
pub(crate) fn config() -> EndpointConfig {
    let mut cfg = EndpointConfig { seed: 1, ..EndpointConfig::default() };
    let c = &mut cfg.conn;
    c.initial_cwnd = 10;
    c.timestamps = true;
    c.sack = true;
    c.window_scaling = true;
    c.min_rto = Duration::from_millis(200);
    c.delayed_ack = Duration::from_millis(40);
    c.recv_buffer = 540_000;
    c.max_recv_buffer = 15 * 1024 * 1024;
    c.send_buffer = 256 * 1024;
    c.max_send_buffer = 4 * 1024 * 1024;
    c.syn_retries = 5;
    c.offload.gso_max_size = MAX_PACKET;
    cfg
}

/// Map a sysctl a script sets (`net.ipv4.NAME`) onto the configuration; others are ignored.
pub(crate) fn apply_sysctl(cfg: &mut EndpointConfig, name: &str, value: &str) {
    let on = value != "0";
    let c = &mut cfg.conn;
    match name {
        "tcp_timestamps" => c.timestamps = on,
        "tcp_sack" => c.sack = on,
        "tcp_window_scaling" => c.window_scaling = on,
        "tcp_slow_start_after_idle" => c.slow_start_after_idle = on,
        "tcp_ecn" => c.ecn = tcpcore::EcnMode::from_sysctl(value.parse().unwrap_or(0)),
        "tcp_fastopen" => {
            let bits = match value.strip_prefix("0x") {
                Some(hex) => u32::from_str_radix(hex, 16).unwrap_or(1),
                None => value.parse().unwrap_or(1),
            };
            cfg.fast_open = cfg.fast_open.with_sysctl(bits);
        }
        "tcp_fastopen_key" => cfg.fast_open.key = fast_open_key(value),
        _ => {}
    }
}

/// Linux's `tcp_fastopen_key` text, four 32-bit hex words (`a0bf63f7-ed803d81-...`), as
/// the 16 bytes of its key: each word in host (little-endian) order.
fn fast_open_key(text: &str) -> Option<[u8; 16]> {
    let mut key = [0; 16];
    let words: Vec<&str> = text.split('-').collect();
    if words.len() != 4 {
        return None;
    }
    for (i, w) in words.iter().enumerate() {
        let v = u32::from_str_radix(w, 16).ok()?;
        key[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    Some(key)
}

/// The sysctl settings (`NAME=VALUE`, any prefix such as `net.ipv4.` or
/// `/proc/sys/net/ipv4/` dropped) among the words of a shell command.
pub(crate) fn sysctl_words(command: &str) -> impl Iterator<Item = (&str, &str)> {
    command.split_whitespace().filter_map(|w| {
        let w = w.trim_matches(['"', '\\']);
        w.rsplit(['.', '/']).next().unwrap_or(w).split_once('=')
    })
}

impl Stack {
    /// A shell command the script runs mid-way (packetdrill shows it to the shim instead of
    /// the host): its sysctls apply to connections opened from now on, as on Linux, and
    /// `ip tcp_metrics flush` forgets the cached Fast Open cookies.
    pub(crate) fn shell_command(&mut self, command: &str) {
        let mut cfg = *self.ep.config();
        for (name, value) in sysctl_words(command) {
            apply_sysctl(&mut cfg, name, value);
        }
        self.ep.set_conn_config(cfg.conn);
        self.ep.set_fast_open_config(cfg.fast_open);
        if command.contains("tcp_metrics flush") || command.contains("tcp_fastopen_cookies=0") {
            self.ep.flush_fast_open_cookies();
        }
    }

    /// A fresh stack at virtual time zero.
    pub(crate) fn new(cfg: EndpointConfig) -> Self {
        Stack {
            ep: Endpoint::new(cfg),
            now: Instant::ZERO,
            conns: BTreeMap::new(),
            out: VecDeque::new(),
            retired: Vec::new(),
            scratch: vec![0; MAX_PACKET],
        }
    }

    /// A packet injected by the script: route it, then run the stack.
    pub(crate) fn receive(&mut self, packet: &[u8]) {
        let now = self.now;
        match self.ep.handle(now, packet) {
            Some(DatagramEvent::Connection(h, seg)) => {
                if let Some(e) = self.conns.get_mut(&h) {
                    e.conn.handle_segment(now, &seg);
                }
            }
            Some(DatagramEvent::NewConnection(h, c)) => {
                self.conns.insert(h, Entry { conn: *c, orphan: false });
            }
            Some(DatagramEvent::PathMtu(h, p)) => {
                if let Some(e) = self.conns.get_mut(&h) {
                    e.conn.handle_path_mtu(now, p.mtu, p.seq);
                }
            }
            Some(DatagramEvent::IcmpError(h, e)) => {
                if let Some(c) = self.conns.get_mut(&h) {
                    c.conn.handle_icmp_error(now, e);
                }
            }
            Some(DatagramEvent::Reassembled(r)) => {
                // A datagram this fragment completed: route it (that call drives the stack).
                self.receive(r.packet());
                self.ep.recycle(r);
                return;
            }
            // packetdrill scripts here speak TCP only: no UDP sockets are bound.
            Some(DatagramEvent::Udp(..) | DatagramEvent::UdpError(..)) | None => {}
        }
        self.drive();
    }

    /// Fire due timers, collect every packet the stack has to send (stamped with the current
    /// virtual time) and drop drained connections nobody refers to.
    pub(crate) fn drive(&mut self) {
        let now = self.now;
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now);
        }
        while let Some(t) = self.ep.poll_transmit(now, &mut self.scratch) {
            self.out.push_back((now, self.scratch[..t.len].to_vec()));
        }
        for (&h, e) in self.conns.iter_mut() {
            if e.conn.poll_timeout().is_some_and(|t| t <= now) {
                e.conn.handle_timeout(now);
            }
            while let Some(t) = e.conn.poll_transmit(now, &mut self.scratch) {
                self.out.push_back((now, self.scratch[..t.len].to_vec()));
            }
            // FA-02: closed but held for the application: its 4-tuple is free again.
            if e.conn.state() == tcpcore::State::Closed {
                self.ep.release_tuple(h, &e.conn);
            }
        }
        let drained: Vec<_> =
            self.conns.iter().filter(|(_, e)| e.conn.is_drained()).map(|(h, _)| *h).collect();
        for h in drained {
            if let Some(e) = self.conns.remove(&h) {
                self.ep.connection_closed(h, &e.conn);
                if !e.orphan {
                    self.retired.push((h, e.conn));
                }
            }
        }
    }

    /// The earliest timer of the endpoint or any connection.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .values()
            .filter_map(|e| e.conn.poll_timeout())
            .chain(self.ep.poll_timeout())
            .min()
    }

    /// Move the virtual clock to `t`, firing every timer on the way at its own deadline so
    /// the packets it sends carry the right time.
    pub(crate) fn advance_to(&mut self, t: Instant) {
        // A timer the stack does not clear would spin forever: bound the work per call.
        for _ in 0..100_000 {
            match self.next_deadline() {
                Some(d) if d <= t => {
                    self.now = self.now.max(d);
                    self.drive();
                    if self.next_deadline().is_some_and(|d2| d2 <= self.now) {
                        // Spurious or repeated deadline at this instant: step past it.
                        self.now += Duration::from_micros(1);
                    }
                }
                _ => break,
            }
        }
        self.now = self.now.max(t);
        self.drive();
    }

    /// The connection behind `h`, if the stack still has it.
    pub(crate) fn conn(&mut self, h: ConnectionHandle) -> Option<&mut Connection> {
        self.conns.get_mut(&h).map(|e| &mut e.conn)
    }

    /// The virtual time as wall-clock microseconds.
    pub(crate) fn wall_usecs(&self) -> u64 {
        EPOCH_USECS + self.now.as_micros()
    }
}

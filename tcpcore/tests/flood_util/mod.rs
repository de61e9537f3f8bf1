//! Shared by the SYN-flood, churn and demux-scale tests: a small echo application for
//! `sim::Host` whose two sides end a connection in one of several ways, and the flood
//! tests' spoofed SYNs. (The counting allocator they use is `alloc_util`.)
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tcpcore::rng::Rng;
use tcpcore::sim::{App, Host, Node};
use tcpcore::wire::{self, SeqNum, TcpFlags, TcpOptions, TcpRepr, Timestamps};
use tcpcore::{Connection, ConnectionError, Event, Instant, State};

/// A random unicast IPv4 address outside 0/8, 10/8 (the simulated hosts) and 127/8: a source
/// the endpoint accepts (multicast, broadcast and unspecified sources are dropped as
/// malformed, RFC 9293 §3.10.7.2).
pub fn spoofed_ip(rng: &mut Rng) -> IpAddr {
    let top = match 1 + rng.below(223) as u32 {
        10 | 127 => 100,
        t => t,
    };
    IpAddr::V4(Ipv4Addr::from(top << 24 | (rng.next_u32() & 0x00ff_ffff)))
}

/// A spoofed SYN from `src` to `dst` as Linux clients send it (MSS, SACK, timestamps, window
/// scale), written into `buf`; returns its length.
pub fn spoofed_syn(rng: &mut Rng, src: IpAddr, dst: SocketAddr, buf: &mut [u8]) -> usize {
    let repr = TcpRepr {
        src_port: 1024 + rng.below(64_512) as u16,
        dst_port: dst.port(),
        seq: SeqNum(rng.next_u32()),
        flags: TcpFlags::SYN,
        window: 64_240,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some(Timestamps { tsval: rng.next_u32(), tsecr: 0 }),
            ..TcpOptions::default()
        },
        ..TcpRepr::default()
    };
    wire::emit(buf, src, dst.ip(), &repr, [&[], &[]]).expect("SYN fits")
}

/// How the two sides of an echo connection end it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ending {
    /// The client closes after the reply, the server on EOF (client TIME-WAIT).
    CleanClientFirst,
    /// The server closes after echoing, the client on EOF (server TIME-WAIT).
    CleanServerFirst,
    /// The client resets after the reply.
    ClientAbort,
    /// The server resets once its echo is acknowledged.
    ServerAbort,
    /// The client vanishes (its node is cut off) while the server is idle: keepalive.
    VanishIdle,
    /// The client vanishes and the server then sends more: retransmission limit.
    VanishData,
    /// The server closes after echoing; the client acknowledges the FIN but never sends its
    /// own: the server's orphaned FIN-WAIT-2 times out.
    NeverFin,
}

/// Byte `i` of request `seed`.
pub fn request_byte(seed: u32, i: usize) -> u8 {
    (seed as usize).wrapping_mul(131).wrapping_add(i.wrapping_mul(7)) as u8
}

/// Bytes the server writes after the echo in [`Ending::VanishData`].
const EXTRA: usize = 200;

/// Client: sends `len` bytes of request `seed`, reads them back; server: echoes everything.
/// Then both end the connection as `ending` says.
#[derive(Clone, Debug)]
pub struct EchoApp {
    pub client: bool,
    pub ending: Ending,
    pub seed: u32,
    /// Request length.
    pub len: usize,
    /// When the application was made (the client's connect, the server's accept).
    pub started: Instant,
    pub written: usize,
    pub read: usize,
    /// A byte read back differed from the request.
    pub mismatch: bool,
    pub eof: bool,
    pub connected_at: Option<Instant>,
    /// Client: the whole echo was read; server: the whole echo was written.
    pub replied_at: Option<Instant>,
    pub error: Option<ConnectionError>,
    /// The server's extra data ([`Ending::VanishData`]) was written.
    pub extra_sent: bool,
    /// We closed or aborted.
    pub ended: bool,
    /// When we closed or aborted.
    pub ended_at: Option<Instant>,
}

impl EchoApp {
    pub fn client(now: Instant, ending: Ending, seed: u32, len: usize) -> Self {
        EchoApp::new(now, true, ending, seed, len)
    }

    pub fn server(now: Instant, ending: Ending, len: usize) -> Self {
        EchoApp::new(now, false, ending, 0, len)
    }

    fn new(now: Instant, client: bool, ending: Ending, seed: u32, len: usize) -> Self {
        EchoApp {
            client,
            ending,
            seed,
            len,
            started: now,
            written: 0,
            read: 0,
            mismatch: false,
            eof: false,
            connected_at: None,
            replied_at: None,
            error: None,
            extra_sent: false,
            ended: false,
            ended_at: None,
        }
    }

    /// Client: the whole reply came back byte-exact.
    pub fn ok(&self) -> bool {
        self.replied_at.is_some() && !self.mismatch
    }

    fn end(&mut self, now: Instant, conn: &mut Connection, abort: bool) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.ended_at = Some(now);
        if abort {
            conn.abort();
        } else {
            conn.close();
        }
    }

    fn poll_client(&mut self, now: Instant, conn: &mut Connection) {
        while self.written < self.len && conn.state().is_synchronized() {
            let mut chunk = [0u8; 256];
            let n = (self.len - self.written).min(chunk.len());
            for (i, b) in chunk[..n].iter_mut().enumerate() {
                *b = request_byte(self.seed, self.written + i);
            }
            match conn.write(&chunk[..n]) {
                Ok(k) if k > 0 => self.written += k,
                _ => break,
            }
        }
        let mut buf = [0u8; 256];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    for (i, &b) in buf[..n].iter().enumerate() {
                        let at = self.read + i;
                        self.mismatch |= at >= self.len || b != request_byte(self.seed, at);
                    }
                    self.read += n;
                }
                Err(_) => break,
            }
        }
        if self.read >= self.len && self.replied_at.is_none() {
            self.replied_at = Some(now);
        }
        if self.replied_at.is_none() {
            return;
        }
        match self.ending {
            Ending::CleanClientFirst => self.end(now, conn, false),
            Ending::CleanServerFirst if self.eof => self.end(now, conn, false),
            Ending::ClientAbort => self.end(now, conn, true),
            _ => {}
        }
    }

    fn poll_server(&mut self, now: Instant, conn: &mut Connection) {
        let mut buf = [0u8; 256];
        loop {
            let room = conn.writable_bytes().min(buf.len());
            if room == 0 || self.ended {
                break;
            }
            match conn.read(&mut buf[..room]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    self.read += n;
                    self.written += conn.write(&buf[..n]).unwrap_or(0);
                }
                Err(_) => break,
            }
        }
        if self.written >= self.len && self.replied_at.is_none() {
            self.replied_at = Some(now);
        }
        let Some(replied) = self.replied_at else { return };
        let acked = conn.send_queued() == 0;
        match self.ending {
            Ending::CleanClientFirst if self.eof => self.end(now, conn, false),
            Ending::CleanServerFirst | Ending::NeverFin => self.end(now, conn, false),
            Ending::ServerAbort if acked => self.end(now, conn, true),
            // Some time after the echo, when the test has cut the client off.
            Ending::VanishData
                if !self.extra_sent
                    && acked
                    && now - replied >= core::time::Duration::from_millis(300) =>
            {
                self.extra_sent = conn.write(&[0x5au8; EXTRA]).is_ok();
            }
            _ => {}
        }
    }
}

impl App for EchoApp {
    fn on_event(&mut self, now: Instant, _conn: &mut Connection, event: Event) {
        match event {
            Event::Connected => self.connected_at = Some(now),
            Event::Closed(e) => self.error = self.error.or(e),
            _ => {}
        }
    }

    fn poll(&mut self, now: Instant, conn: &mut Connection) {
        if let Some(e) = conn.error() {
            self.error = self.error.or(Some(e));
            return;
        }
        if matches!(conn.state(), State::Closed | State::Listen) {
            return;
        }
        if self.client {
            self.poll_client(now, conn);
        } else {
            self.poll_server(now, conn);
        }
    }
}

/// A [`Host`] that the simulator skips while nothing has happened to it.
///
/// `Host` looks at every connection on every simulator step (deadlines, applications), and
/// these tests make millions of steps most of which touch one host only. A packet, a due
/// timer, an application call between steps ([`Lazy::host_mut`]) or a packet it sent is
/// all that changes a host's deadline, output or set of drained connections, and [`EchoApp`] acts only on what its connection reports (or,
/// for [`Ending::VanishData`], on the next step of its own connection), so skipping an
/// untouched host changes nothing in the run.
pub struct Lazy {
    host: Host<EchoApp>,
    /// Something happened to the host since its applications last ran.
    touched: bool,
    /// The host has nothing to send until it is touched again.
    quiet: bool,
    /// The host's deadline as of its last look.
    deadline: Option<Instant>,
}

impl Lazy {
    pub fn new(host: Host<EchoApp>) -> Self {
        Lazy { host, touched: true, quiet: false, deadline: None }
    }

    pub fn host(&self) -> &Host<EchoApp> {
        &self.host
    }

    /// The host, for calls between steps (it is looked at again on the next step).
    pub fn host_mut(&mut self) -> &mut Host<EchoApp> {
        self.touched = true;
        self.quiet = false;
        &mut self.host
    }
}

impl Node for Lazy {
    fn handle(&mut self, now: Instant, packet: &[u8]) {
        self.host_mut().handle(now, packet);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.quiet {
            return None;
        }
        let sent = self.host.poll_transmit(now, buf);
        // Sending moves timers and may leave a connection drained: look again after the step.
        self.touched |= sent.is_some();
        self.quiet = sent.is_none();
        sent
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        if self.touched {
            self.deadline = self.host.poll_timeout();
        }
        self.deadline
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.touched || self.deadline.is_some_and(|d| d <= now) {
            self.host_mut().handle_timeout(now);
        }
    }

    fn after_step(&mut self, now: Instant) {
        if self.touched {
            self.host.after_step(now);
            self.deadline = self.host.poll_timeout();
            self.touched = false;
            self.quiet = false;
        }
    }
}

//! Applications for the simulator's [`Host`](super::Host): [`BulkApp`], which writes and reads
//! as fast as the connection lets it, and [`ModelApp`], which behaves like the programs that
//! run over TCP (see [`Model`]): an echo that reads only while it can write, slow and
//! stalling readers, request/response, half-close, a close with unread data.
//!
//! Every application sends a deterministic stream ([`pattern_fill`]) and checks every byte it
//! reads against the stream it expects, hashing both ([`StreamHash`]), so a test can compare
//! the two ends of each direction without keeping copies.

use core::time::Duration;

use super::stream::{pattern_fill, splitmix, StreamHash};
use super::App;
use crate::{Connection, ConnectionError, Event, Instant, ReadError, State};

/// Scratch size for [`BulkApp`] writes and checks.
const CHUNK: usize = 64 * 1024;

/// Sends `to_send` bytes of the stream `send_seed` (see [`pattern_fill`]), then shuts down
/// writing; reads everything, checking it against the stream `recv_seed` and hashing it.
#[derive(Debug)]
pub struct BulkApp {
    /// Bytes to send.
    pub to_send: u64,
    /// Bytes written into the connection so far.
    pub written: u64,
    /// Seed of the stream we send.
    pub send_seed: u64,
    /// Hash of what we wrote.
    pub sent_hash: StreamHash,
    /// Seed of the stream we expect.
    pub recv_seed: u64,
    /// Hash of what we read.
    pub recv_hash: StreamHash,
    /// Stream offset of the first byte that differed from the expected stream.
    pub first_mismatch: Option<u64>,
    /// The peer's FIN was read (end of stream).
    pub eof: bool,
    /// When everything was sent and acknowledged (FIN included) and the peer's stream ended.
    pub done_at: Option<Instant>,
    /// The connection failed with this error.
    pub error: Option<ConnectionError>,
    /// The connection was established at this time.
    pub connected_at: Option<Instant>,
    out: Box<[u8]>,
    expect: Box<[u8]>,
}

impl BulkApp {
    /// An application sending `to_send` bytes of stream `send_seed` and expecting stream
    /// `recv_seed`.
    pub fn new(to_send: u64, send_seed: u64, recv_seed: u64) -> Self {
        BulkApp {
            to_send,
            written: 0,
            send_seed,
            sent_hash: StreamHash::default(),
            recv_seed,
            recv_hash: StreamHash::default(),
            first_mismatch: None,
            eof: false,
            done_at: None,
            error: None,
            connected_at: None,
            out: vec![0; CHUNK].into_boxed_slice(),
            expect: vec![0; CHUNK].into_boxed_slice(),
        }
    }

    /// Everything sent and acknowledged, and the peer's whole stream read.
    pub fn is_done(&self) -> bool {
        self.done_at.is_some()
    }

    /// Bytes read so far.
    pub fn read_bytes(&self) -> u64 {
        self.recv_hash.len()
    }

    fn check(&mut self, data: &[u8]) {
        let mut off = 0;
        while off < data.len() {
            let n = (data.len() - off).min(self.expect.len());
            let at = self.recv_hash.len();
            pattern_fill(self.recv_seed, at, &mut self.expect[..n]);
            let got = &data[off..off + n];
            if self.first_mismatch.is_none() && got != &self.expect[..n] {
                let i = got.iter().zip(self.expect.iter()).position(|(a, b)| a != b);
                self.first_mismatch = Some(at + i.unwrap_or(0) as u64);
            }
            self.recv_hash.update(got);
            off += n;
        }
    }

    /// Write the stream up to offset `limit` (at most `to_send`), as far as the send buffer
    /// takes it; shut down writing once all `to_send` bytes are written and the handshake
    /// is done (a shutdown in SYN-SENT with nothing queued abandons the connection).
    fn write_upto(&mut self, conn: &mut Connection, limit: u64) {
        let limit = limit.min(self.to_send);
        while self.written < limit && conn.writable_bytes() > 0 {
            let n = (limit - self.written).min(CHUNK as u64) as usize;
            let n = n.min(conn.writable_bytes());
            pattern_fill(self.send_seed, self.written, &mut self.out[..n]);
            match conn.write(&self.out[..n]) {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    self.sent_hash.update(&self.out[..k]);
                    self.written += k as u64;
                }
            }
        }
        if self.written == self.to_send && conn.state() != State::SynSent {
            conn.shutdown_write();
        }
    }

    /// Read (and check) at most `max` bytes; notice the end of the stream once nothing is
    /// left unread.
    fn read_upto(&mut self, conn: &mut Connection, max: u64) {
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        // One call sees every unread byte (as up to two slices).
        conn.read_with(|bufs| {
            let mut left = max;
            for b in bufs {
                let n = b.len().min(left);
                self.check(&b[..n]);
                left -= n;
            }
            max - left
        });
        if conn.readable_bytes() > 0 {
            return;
        }
        let mut one = [0u8; 1];
        match conn.read(&mut one) {
            Ok(0) => self.eof = true,
            Ok(_) => self.check(&one),
            Err(ReadError::Failed(e)) => self.error = Some(e),
            Err(_) => {}
        }
    }

    /// Record the time everything was done: our stream written and acknowledged (FIN
    /// included), the peer's stream read to its end.
    fn note_done(&mut self, now: Instant, conn: &Connection) {
        let fin_acked = matches!(conn.state(), State::TimeWait | State::Closed);
        if self.done_at.is_none() && self.eof && self.written == self.to_send && fin_acked {
            self.done_at = Some(now);
        }
    }

    /// Record a failure; true if the connection failed.
    fn failed(&mut self, conn: &Connection) -> bool {
        self.error = self.error.or(conn.error());
        conn.error().is_some()
    }
}

impl App for BulkApp {
    fn on_event(&mut self, now: Instant, conn: &mut Connection, event: Event) {
        match event {
            Event::Connected => self.connected_at = Some(now),
            Event::Closed(e) => self.error = self.error.or(e),
            _ => {}
        }
        let _ = conn;
    }

    fn poll(&mut self, now: Instant, conn: &mut Connection) {
        if self.failed(conn) {
            return;
        }
        self.write_upto(conn, self.to_send);
        self.read_upto(conn, u64::MAX);
        self.note_done(now, conn);
    }
}

/// How a [`ModelApp`] uses its connection. Each model writes its stream and checks what it
/// reads; they differ in when they read and write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Write everything and read everything as fast as possible (as [`BulkApp`]).
    Bulk,
    /// An echo server: reads only as much as it can write back at once, so when the peer
    /// does not read, it stops reading too and its receive window closes (backpressure in
    /// both directions). Its stream is the one it reads (`send_seed == recv_seed`).
    Echo,
    /// Reads at most `bytes` every `every` (the first batch at once).
    SlowReader {
        /// Bytes per period.
        bytes: u64,
        /// The period.
        every: Duration,
    },
    /// Reads promptly until it has read `after` bytes, then not at all for `pause` (its
    /// window closes: the peer must probe it), then promptly again.
    Stall {
        /// Bytes read before the pause.
        after: u64,
        /// How long it stops reading.
        pause: Duration,
    },
    /// The client of a request/response protocol: sends a `request`-byte request, waits for
    /// the whole response ([`response_len`] of `seed` and the round), `rounds` times, then
    /// shuts down writing.
    Requester {
        /// Requests to make.
        rounds: u32,
        /// Bytes per request.
        request: u64,
        /// Seed of the response sizes.
        seed: u64,
    },
    /// The server of [`Model::Requester`]: answers each complete request with its response.
    Responder {
        /// Requests it will answer.
        rounds: u32,
        /// Bytes per request.
        request: u64,
        /// Seed of the response sizes.
        seed: u64,
    },
    /// Writes nothing until the peer's stream has ended (the server side of a half-close:
    /// the client sends its request and FIN, then reads a long answer).
    AfterEof,
    /// Reads `after` bytes, then closes while more is unread: the connection is reset
    /// (CL-10) and the peer must see `ConnectionReset`.
    CloseUnread {
        /// Bytes read before closing.
        after: u64,
    },
}

/// Size of the response to request `round` of [`Model::Requester`]: 1,024 to 3,072 bytes.
pub fn response_len(seed: u64, round: u32) -> u64 {
    1024 + splitmix(seed ^ u64::from(round)) % 2049
}

impl Model {
    /// Bytes this model sends in all, given `bytes` for the models that send a fixed stream.
    pub fn send_len(self, bytes: u64) -> u64 {
        match self {
            Model::Requester { rounds, request, .. } => u64::from(rounds) * request,
            Model::Responder { rounds, seed, .. } => {
                (0..rounds).map(|r| response_len(seed, r)).sum()
            }
            _ => bytes,
        }
    }
}

/// An application that behaves as its [`Model`] says, over the stream machinery of
/// [`BulkApp`] (`io`).
#[derive(Debug)]
pub struct ModelApp {
    /// Its streams: what it wrote and read, hashes, errors, completion.
    pub io: BulkApp,
    /// What it does.
    pub model: Model,
    /// When reading started (the slow reader's clock).
    started: Option<Instant>,
    /// A stall's start and end, once it stalled.
    pub stalled: Option<(Instant, Instant)>,
    /// Requests answered (responder) or responses received in full (requester).
    pub rounds: u32,
    /// Stream offset the requester or responder may write up to.
    limit: u64,
    /// Response bytes the requester must have read to finish the current round.
    expect: u64,
    /// When a [`Model::CloseUnread`] closed.
    pub closed_at: Option<Instant>,
    /// When it wants to run next without any event.
    wake: Option<Instant>,
}

impl ModelApp {
    /// An application following `model`, sending `model.send_len(bytes)` bytes of stream
    /// `send_seed` and expecting stream `recv_seed`.
    pub fn new(model: Model, bytes: u64, send_seed: u64, recv_seed: u64) -> Self {
        let mut app = ModelApp {
            io: BulkApp::new(model.send_len(bytes), send_seed, recv_seed),
            model,
            started: None,
            stalled: None,
            rounds: 0,
            limit: 0,
            expect: 0,
            closed_at: None,
            wake: None,
        };
        if let Model::Requester { request, seed, .. } = model {
            app.limit = request;
            app.expect = response_len(seed, 0);
        }
        app
    }

    /// Done: its streams are complete (see [`BulkApp::is_done`]), or the connection ended
    /// in an error (which the test then judges), or it closed as its model says.
    pub fn is_finished(&self) -> bool {
        self.io.done_at.is_some() || self.io.error.is_some() || self.closed_at.is_some()
    }

    /// The echo: write back what was read, then read only what can be written back.
    fn echo(&mut self, conn: &mut Connection) {
        self.io.write_upto(conn, self.io.read_bytes());
        if self.io.written == self.io.read_bytes() {
            self.io.read_upto(conn, conn.writable_bytes() as u64);
            self.io.write_upto(conn, self.io.read_bytes());
        }
    }

    /// Read in batches of `bytes` every `every`, from the first poll once connected.
    fn slow_read(&mut self, now: Instant, conn: &mut Connection, bytes: u64, every: Duration) {
        self.io.write_upto(conn, self.io.to_send);
        if matches!(conn.state(), State::SynSent | State::SynReceived) {
            return;
        }
        let start = *self.started.get_or_insert(now);
        let every_us = every.as_micros().max(1) as u64;
        let periods = now.saturating_duration_since(start).as_micros() as u64 / every_us;
        let allowed = bytes * (periods + 1);
        self.io.read_upto(conn, allowed.saturating_sub(self.io.read_bytes()));
        self.wake = (!self.io.eof).then(|| start + Duration::from_micros(every_us * (periods + 1)));
    }

    /// Read until `after`, stop for `pause`, then read everything.
    fn stall(&mut self, now: Instant, conn: &mut Connection, after: u64, pause: Duration) {
        self.io.write_upto(conn, self.io.to_send);
        match self.stalled {
            Some((_, end)) if now < end => {
                self.wake = Some(end);
                return;
            }
            Some(_) => self.wake = None,
            None => {}
        }
        let max = match self.stalled {
            Some(_) => u64::MAX,
            None => after.saturating_sub(self.io.read_bytes()),
        };
        self.io.read_upto(conn, max);
        if self.stalled.is_none() && self.io.read_bytes() >= after {
            self.stalled = Some((now, now + pause));
            self.wake = Some(now + pause);
        }
    }

    /// Send request after request, each once the previous response arrived in full.
    fn request(&mut self, conn: &mut Connection, rounds: u32, request: u64, seed: u64) {
        self.io.read_upto(conn, u64::MAX);
        while self.rounds < rounds && self.io.read_bytes() >= self.expect {
            self.rounds += 1;
            self.limit += request;
            self.expect += response_len(seed, self.rounds);
        }
        self.io.write_upto(conn, self.limit);
    }

    /// Answer every complete request.
    fn respond(&mut self, conn: &mut Connection, rounds: u32, request: u64, seed: u64) {
        self.io.read_upto(conn, u64::MAX);
        let asked = (self.io.read_bytes() / request).min(u64::from(rounds));
        while u64::from(self.rounds) < asked {
            self.limit += response_len(seed, self.rounds);
            self.rounds += 1;
        }
        self.io.write_upto(conn, self.limit);
    }

    /// Read `after` bytes, then close with the rest unread (a reset, CL-10).
    fn close_unread(&mut self, now: Instant, conn: &mut Connection, after: u64) {
        self.io.write_upto(conn, self.io.to_send);
        self.io.read_upto(conn, after.saturating_sub(self.io.read_bytes()));
        if self.io.read_bytes() >= after && conn.readable_bytes() > 0 {
            conn.close();
            self.closed_at = Some(now);
        }
    }
}

impl App for ModelApp {
    fn on_event(&mut self, now: Instant, conn: &mut Connection, event: Event) {
        self.io.on_event(now, conn, event);
    }

    fn poll(&mut self, now: Instant, conn: &mut Connection) {
        if self.io.failed(conn) || self.closed_at.is_some() {
            self.wake = None;
            return;
        }
        match self.model {
            Model::Bulk => return self.io.poll(now, conn),
            Model::Echo => self.echo(conn),
            Model::SlowReader { bytes, every } => self.slow_read(now, conn, bytes, every),
            Model::Stall { after, pause } => self.stall(now, conn, after, pause),
            Model::Requester { rounds, request, seed } => {
                self.request(conn, rounds, request, seed);
            }
            Model::Responder { rounds, request, seed } => {
                self.respond(conn, rounds, request, seed);
            }
            Model::AfterEof => {
                self.io.read_upto(conn, u64::MAX);
                if self.io.eof {
                    self.io.write_upto(conn, self.io.to_send);
                }
            }
            Model::CloseUnread { after } => self.close_unread(now, conn, after),
        }
        // A wake-up in the past would fire again at once, forever.
        self.wake = self.wake.filter(|&t| t > now);
        self.io.note_done(now, conn);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.wake
    }
}

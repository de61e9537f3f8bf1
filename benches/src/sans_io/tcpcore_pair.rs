//! tcpcore's side: two [`Endpoint`]s and their connections, driven as the crate docs show.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tcpcore::{
    Connection, ConnectionHandle, DatagramEvent, Endpoint, EndpointConfig, Event, Instant,
};

use super::{Case, Csum, Link, Pair, Pipe, Work, BUFFER, PORT, RR_SIZE};
use crate::APP_BUF;

const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

/// One endpoint and the connections it owns, indexed by handle.
struct Host {
    ep: Endpoint,
    conns: Vec<Option<Box<Connection>>>,
    /// The buffer the next packet is written into: it goes on the link when a poll fills
    /// it, replaced from the link's free list (as smoltcp's side takes a buffer per packet).
    tx_buf: Vec<u8>,
}

impl Host {
    fn new(case: Case, seed: u64) -> Self {
        let mut cfg = EndpointConfig { seed, ..EndpointConfig::default() };
        cfg.conn.mtu = u16::try_from(case.mtu).unwrap_or(u16::MAX);
        cfg.conn.send_buffer = BUFFER;
        cfg.conn.max_send_buffer = BUFFER;
        cfg.conn.recv_buffer = BUFFER;
        cfg.conn.max_recv_buffer = BUFFER;
        let offload = case.csum == Csum::Offloaded;
        cfg.conn.offload.tx_checksum = offload;
        cfg.conn.offload.rx_checksum = offload;
        Host { ep: Endpoint::new(cfg), conns: Vec::new(), tx_buf: vec![0; case.mtu] }
    }

    fn insert(&mut self, h: ConnectionHandle, c: Box<Connection>) {
        if self.conns.len() <= h.0 {
            self.conns.resize_with(h.0 + 1, || None);
        }
        self.conns[h.0] = Some(c);
    }

    fn conn(&mut self, h: ConnectionHandle) -> Option<&mut Connection> {
        self.conns.get_mut(h.0).and_then(|c| c.as_deref_mut())
    }

    fn is_empty(&self) -> bool {
        self.conns.iter().all(Option::is_none)
    }

    /// Route every packet waiting in `pipe`.
    fn receive(&mut self, now: Instant, pipe: &mut Pipe) {
        while let Some((buf, len)) = pipe.pop() {
            // Bound by reference: moving the segment (~150 bytes) out of the event copies it.
            match self.ep.handle(now, &buf[..len]) {
                Some(DatagramEvent::Connection(h, ref seg)) => {
                    if let Some(c) = self.conn(h) {
                        c.handle_segment(now, seg);
                    }
                }
                Some(DatagramEvent::NewConnection(h, c)) => self.insert(h, c),
                Some(_) | None => {}
            }
            pipe.recycle(buf);
        }
    }

    /// Run due timers, send everything there is to send into `pipe`, drop drained
    /// connections (the crate docs' steps 2, 3, 5 and 6).
    fn transmit(&mut self, now: Instant, pipe: &mut Pipe) {
        let buf = &mut self.tx_buf;
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now);
        }
        while let Some(t) = self.ep.poll_transmit(now, buf) {
            let next = pipe.alloc();
            pipe.push(std::mem::replace(buf, next), t.len);
        }
        for i in 0..self.conns.len() {
            let Some(c) = self.conns[i].as_deref_mut() else { continue };
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
            while let Some(t) = c.poll_transmit(now, buf) {
                let next = pipe.alloc();
                pipe.push(std::mem::replace(buf, next), t.len);
            }
            if c.is_drained() {
                let c = self.conns[i].take().expect("present");
                self.ep.connection_closed(ConnectionHandle(i), &c);
            }
        }
    }

    /// The earliest deadline of the endpoint and its connections: asked only when nothing
    /// was sent, as the crate docs' run loop does (and smoltcp's side asks `poll_at`).
    fn next_deadline(&self) -> Option<Instant> {
        let conns = self.conns.iter().filter_map(|c| c.as_deref()?.poll_timeout());
        conns.chain(self.ep.poll_timeout()).min()
    }
}

/// A tcpcore client and server over an in-memory link.
pub struct TcpcorePair {
    case: Case,
    client: Host,
    server: Host,
    link: Link,
    now: Instant,
    /// The open connection of the bulk and request/response cases: (client's, server's).
    open: Option<(ConnectionHandle, ConnectionHandle)>,
    data: Vec<u8>,
    rbuf: Vec<u8>,
}

impl TcpcorePair {
    /// One step: the client's packets to the server, the server's back. If no packet was
    /// in flight or sent, time jumps to the next deadline.
    fn step(&mut self) {
        let (in_flight, before) = (self.link.in_flight(), self.link.carried());
        self.now = Instant::from_micros(self.now.as_micros() + 1);
        let now = self.now;
        self.client.receive(now, &mut self.link.s2c);
        self.client.transmit(now, &mut self.link.c2s);
        self.server.receive(now, &mut self.link.c2s);
        self.server.transmit(now, &mut self.link.s2c);
        if in_flight == 0 && self.link.carried() == before {
            let (a, b) = (self.client.next_deadline(), self.server.next_deadline());
            if let Some(t) = a.into_iter().chain(b).min() {
                self.now = self.now.max(t);
            }
        }
    }

    fn connect(&mut self) -> ConnectionHandle {
        let remote = SocketAddr::new(SERVER, PORT);
        let (h, c) = self.client.ep.connect(self.now, CLIENT, remote).expect("connect");
        self.client.insert(h, Box::new(c));
        h
    }

    fn open(&mut self) -> (ConnectionHandle, ConnectionHandle) {
        let ch = self.connect();
        loop {
            self.step();
            if let Some(sh) = self.server.ep.accept(SocketAddr::new(SERVER, PORT)) {
                let c = self.client.conn(ch).expect("client conn");
                while c.poll_event().is_some() {}
                return (ch, sh);
            }
        }
    }

    fn bulk(&mut self, bytes: u64) {
        let (ch, sh) = self.open.expect("open");
        let (mut to_write, mut to_read) = (bytes, bytes);
        while to_read > 0 {
            let c = self.client.conn(ch).expect("client conn");
            while to_write > 0 {
                let n = to_write.min(APP_BUF as u64) as usize;
                match c.write(&self.data[..n]) {
                    Ok(n) => to_write -= n as u64,
                    Err(_) => break,
                }
            }
            while c.poll_event().is_some() {}
            self.step();
            let s = self.server.conn(sh).expect("server conn");
            while let Ok(n @ 1..) = s.read(&mut self.rbuf) {
                to_read -= n as u64;
            }
            while s.poll_event().is_some() {}
        }
    }

    fn request_response(&mut self, n: u64) {
        let (ch, sh) = self.open.expect("open");
        for _ in 0..n {
            let c = self.client.conn(ch).expect("client conn");
            assert_eq!(c.write(&self.data[..RR_SIZE]), Ok(RR_SIZE));
            let mut got = 0;
            while got < RR_SIZE {
                self.step();
                let s = self.server.conn(sh).expect("server conn");
                while let Ok(n @ 1..) = s.read(&mut self.rbuf[..RR_SIZE]) {
                    assert_eq!(s.write(&self.data[..n]), Ok(n));
                }
                while s.poll_event().is_some() {}
                let c = self.client.conn(ch).expect("client conn");
                while let Ok(n @ 1..) = c.read(&mut self.rbuf[..RR_SIZE]) {
                    got += n;
                }
                while c.poll_event().is_some() {}
            }
        }
    }

    /// One connection: handshake, a byte each way, the server closes, then the client.
    fn echo_one(&mut self) {
        let ch = self.connect();
        let listener = SocketAddr::new(SERVER, PORT);
        let (mut sent, mut echoed, mut sh) = (false, false, None);
        let mut b = [0u8; 1];
        loop {
            if let Some(c) = self.client.conn(ch) {
                while let Some(e) = c.poll_event() {
                    if e == Event::Connected && !sent {
                        assert_eq!(c.write(b"x"), Ok(1));
                        sent = true;
                    }
                }
                loop {
                    match c.read(&mut b) {
                        Ok(1..) => echoed = true,
                        Ok(0) => {
                            assert!(echoed, "end of stream before the echo");
                            break c.close();
                        }
                        Err(_) => break,
                    }
                }
            }
            if sh.is_none() {
                sh = self.server.ep.accept(listener);
            }
            if let Some(s) = sh.and_then(|h| self.server.conn(h)) {
                while s.poll_event().is_some() {}
                if let Ok(1) = s.read(&mut b) {
                    assert_eq!(s.write(&b), Ok(1));
                    s.close();
                }
            }
            self.step();
            if sh.is_some() && self.client.is_empty() && self.server.is_empty() {
                return;
            }
        }
    }
}

impl Pair for TcpcorePair {
    const NAME: &'static str = "tcpcore";

    fn new(case: Case) -> Self {
        let mut server = Host::new(case, 1);
        server.ep.listen(SocketAddr::new(SERVER, PORT)).expect("listen");
        let mut p = TcpcorePair {
            case,
            client: Host::new(case, 2),
            server,
            link: Link::new(case.mtu),
            now: Instant::from_secs(1),
            open: None,
            data: vec![0xa5; APP_BUF],
            rbuf: vec![0; APP_BUF],
        };
        if case.work != Work::Echo {
            p.open = Some(p.open());
        }
        p
    }

    fn run(&mut self, units: u64) {
        match self.case.work {
            Work::Bulk => self.bulk(units),
            Work::RequestResponse => self.request_response(units),
            Work::Echo => (0..units).for_each(|_| self.echo_one()),
        }
    }

    fn packets(&self) -> u64 {
        self.link.carried()
    }
}

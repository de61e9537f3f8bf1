//! smoltcp's side: two `Interface`s (medium IP) with one TCP socket each, the server's
//! listening, driven as smoltcp's examples do but with egress polled until nothing is left
//! to send (smoltcp sends at most one packet per socket per egress pass).

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{self, Checksum, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use super::{Case, Csum, Link, Pair, Pipe, Work, BUFFER, PORT, RR_SIZE};
use crate::APP_BUF;

const SERVER: IpAddress = IpAddress::v4(10, 0, 0, 1);
const CLIENT: IpAddress = IpAddress::v4(10, 0, 0, 2);

/// One interface's view of the link: packets arrive on `rx` and leave on `tx`.
struct Port<'a> {
    rx: &'a mut Pipe,
    tx: &'a mut Pipe,
    caps: &'a DeviceCapabilities,
}

/// A received packet; its buffer returns to the pipe's free list once consumed.
struct Rx<'a> {
    buf: Vec<u8>,
    len: usize,
    free: &'a mut Vec<Vec<u8>>,
}

/// Room for one packet on the outgoing pipe.
struct Tx<'a> {
    pipe: &'a mut Pipe,
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.buf[..self.len]);
        self.free.push(self.buf);
        r
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = self.pipe.alloc();
        let r = f(&mut buf[..len]);
        self.pipe.push(buf, len);
        r
    }
}

impl Device for Port<'_> {
    type RxToken<'b>
        = Rx<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = Tx<'b>
    where
        Self: 'b;

    fn receive(&mut self, _now: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        let (buf, len) = self.rx.pop()?;
        Some((Rx { buf, len, free: self.rx.free_list() }, Tx { pipe: self.tx }))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        Some(Tx { pipe: self.tx })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.caps.clone()
    }
}

/// One interface and its single TCP socket.
struct Host {
    iface: Interface,
    sockets: SocketSet<'static>,
    socket: SocketHandle,
}

impl Host {
    fn new(caps: &DeviceCapabilities, link: &mut Link, addr: IpAddress, seed: u64) -> Self {
        let mut cfg = Config::new(HardwareAddress::Ip);
        cfg.random_seed = seed;
        let mut port = Port { rx: &mut link.c2s, tx: &mut link.s2c, caps };
        let mut iface = Interface::new(cfg, &mut port, Instant::from_secs(1));
        iface.update_ip_addrs(|a| a.push(IpCidr::new(addr, 24)).expect("address"));
        let mut sockets = SocketSet::new(Vec::new());
        let socket = sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; BUFFER]),
            tcp::SocketBuffer::new(vec![0; BUFFER]),
        ));
        Host { iface, sockets, socket }
    }

    fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket<'static>>(self.socket)
    }

    /// Take every packet from `rx`, then send everything there is to send on `tx`.
    fn poll(&mut self, now: Instant, caps: &DeviceCapabilities, rx: &mut Pipe, tx: &mut Pipe) {
        let mut port = Port { rx, tx, caps };
        self.iface.poll(now, &mut port, &mut self.sockets);
        while matches!(
            self.iface.poll_egress(now, &mut port, &mut self.sockets),
            PollResult::SocketStateChanged
        ) {}
    }
}

/// A smoltcp client and server over an in-memory link.
pub struct SmoltcpPair {
    case: Case,
    caps: DeviceCapabilities,
    client: Host,
    server: Host,
    link: Link,
    now: Instant,
    next_port: u16,
    data: Vec<u8>,
    rbuf: Vec<u8>,
}

impl SmoltcpPair {
    /// One step: the client's packets to the server, the server's back. If no packet was
    /// in flight or sent, time jumps to the next deadline.
    fn step(&mut self) {
        let (in_flight, before) = (self.link.in_flight(), self.link.carried());
        self.now += smoltcp::time::Duration::from_micros(1);
        let now = self.now;
        self.client.poll(now, &self.caps, &mut self.link.s2c, &mut self.link.c2s);
        self.server.poll(now, &self.caps, &mut self.link.c2s, &mut self.link.s2c);
        if in_flight == 0 && self.link.carried() == before {
            let a = self.client.iface.poll_at(now, &self.client.sockets);
            let b = self.server.iface.poll_at(now, &self.server.sockets);
            if let Some(t) = a.into_iter().chain(b).min() {
                self.now = self.now.max(t);
            }
        }
    }

    fn connect(&mut self) {
        self.next_port = if self.next_port == u16::MAX { 49152 } else { self.next_port + 1 };
        let cx = self.client.iface.context();
        let s = self.client.sockets.get_mut::<tcp::Socket<'static>>(self.client.socket);
        s.connect(cx, (SERVER, PORT), self.next_port).expect("connect");
    }

    fn open(&mut self) {
        self.connect();
        while !(self.client.socket().may_send() && self.server.socket().may_send()) {
            self.step();
        }
    }

    fn bulk(&mut self, bytes: u64) {
        let (mut to_write, mut to_read) = (bytes, bytes);
        while to_read > 0 {
            let c = self.client.socket();
            while to_write > 0 && c.can_send() {
                let n = to_write.min(APP_BUF as u64) as usize;
                match c.send_slice(&self.data[..n]) {
                    Ok(n @ 1..) => to_write -= n as u64,
                    _ => break,
                }
            }
            self.step();
            let s = self.server.sockets.get_mut::<tcp::Socket<'static>>(self.server.socket);
            while let Ok(n @ 1..) = s.recv_slice(&mut self.rbuf) {
                to_read -= n as u64;
            }
        }
    }

    fn request_response(&mut self, n: u64) {
        for _ in 0..n {
            assert_eq!(self.client.socket().send_slice(&self.data[..RR_SIZE]), Ok(RR_SIZE));
            let mut got = 0;
            while got < RR_SIZE {
                self.step();
                let s = self.server.sockets.get_mut::<tcp::Socket<'static>>(self.server.socket);
                while let Ok(n @ 1..) = s.recv_slice(&mut self.rbuf[..RR_SIZE]) {
                    assert_eq!(s.send_slice(&self.data[..n]), Ok(n));
                }
                let c = self.client.sockets.get_mut::<tcp::Socket<'static>>(self.client.socket);
                while let Ok(n @ 1..) = c.recv_slice(&mut self.rbuf[..RR_SIZE]) {
                    got += n;
                }
            }
        }
    }

    /// One connection: handshake, a byte each way, the server closes, then the client.
    fn echo_one(&mut self) {
        self.connect();
        let (mut sent, mut echoed) = (false, false);
        let mut b = [0u8; 1];
        loop {
            let c = self.client.socket();
            if c.may_send() && !sent {
                assert_eq!(c.send_slice(b"x"), Ok(1));
                sent = true;
            }
            if let Ok(1) = c.recv_slice(&mut b) {
                echoed = true;
            }
            if echoed && c.state() == tcp::State::CloseWait {
                c.close();
            }
            let s = self.server.socket();
            if let Ok(1) = s.recv_slice(&mut b) {
                assert_eq!(s.send_slice(&b), Ok(1));
                s.close();
            }
            self.step();
            let done = self.client.socket().state() == tcp::State::Closed
                && self.server.socket().state() == tcp::State::TimeWait;
            if echoed && done {
                // Reuse the server's socket at once, as tcpcore keeps only a compact
                // TIME-WAIT entry: `listen` clears the old connection without a reset.
                let s = self.server.socket();
                s.abort();
                s.listen(PORT).expect("listen");
                return;
            }
        }
    }
}

impl Pair for SmoltcpPair {
    const NAME: &'static str = "smoltcp";

    fn new(case: Case) -> Self {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = case.mtu;
        caps.checksum = ChecksumCapabilities::default();
        if case.csum == Csum::Offloaded {
            caps.checksum.tcp = Checksum::None;
        }
        let mut link = Link::new(case.mtu);
        let client = Host::new(&caps, &mut link, CLIENT, 2);
        let mut server = Host::new(&caps, &mut link, SERVER, 1);
        server.socket().listen(PORT).expect("listen");
        let mut p = SmoltcpPair {
            case,
            caps,
            client,
            server,
            link,
            now: Instant::from_secs(1),
            next_port: 49151,
            data: vec![0xa5; APP_BUF],
            rbuf: vec![0; APP_BUF],
        };
        if case.work != Work::Echo {
            p.open();
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

//! End-to-end smoke test: two endpoints joined back to back, no faults.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tcpcore::{
    Connection, ConnectionHandle, DatagramEvent, Endpoint, EndpointConfig, Instant, State,
};

struct Host {
    ep: Endpoint,
    conns: BTreeMap<ConnectionHandle, Connection>,
}

impl Host {
    fn new(seed: u64) -> Self {
        Host {
            ep: Endpoint::new(EndpointConfig { seed, ..Default::default() }),
            conns: BTreeMap::new(),
        }
    }
    fn recv(&mut self, now: Instant, pkt: &[u8]) {
        match self.ep.handle(now, pkt) {
            Some(DatagramEvent::Connection(h, seg)) => {
                if let Some(c) = self.conns.get_mut(&h) {
                    c.handle_segment(now, &seg)
                }
            }
            Some(DatagramEvent::NewConnection(h, c)) => {
                self.conns.insert(h, *c);
            }
            Some(DatagramEvent::PathMtu(h, p)) => {
                if let Some(c) = self.conns.get_mut(&h) {
                    c.handle_path_mtu(now, p.mtu, p.seq)
                }
            }
            Some(DatagramEvent::IcmpError(h, e)) => {
                if let Some(c) = self.conns.get_mut(&h) {
                    c.handle_icmp_error(now, e)
                }
            }
            Some(DatagramEvent::Reassembled(r)) => {
                self.recv(now, r.packet());
                self.ep.recycle(r);
            }
            Some(DatagramEvent::Udp(..) | DatagramEvent::UdpError(..)) | None => {}
        }
    }
    fn send(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        let mut buf = [0u8; 1500];
        while let Some(t) = self.ep.poll_transmit(now, &mut buf) {
            out.push(buf[..t.len].to_vec());
        }
        for c in self.conns.values_mut() {
            while let Some(t) = c.poll_transmit(now, &mut buf) {
                out.push(buf[..t.len].to_vec());
            }
        }
    }
    fn timeout(&self) -> Option<Instant> {
        self.conns.values().filter_map(|c| c.poll_timeout()).chain(self.ep.poll_timeout()).min()
    }
    fn fire(&mut self, now: Instant) {
        self.ep.handle_timeout(now);
        for c in self.conns.values_mut() {
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
        }
    }
}

#[test]
fn handshake_transfer_and_close() {
    let a_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let b_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let mut a = Host::new(1);
    let mut b = Host::new(2);
    b.ep.listen(SocketAddr::new(b_ip, 80)).unwrap();
    let mut now = Instant::ZERO;
    let (h, c) = a.ep.connect(now, a_ip, SocketAddr::new(b_ip, 80)).unwrap();
    a.conns.insert(h, c);
    let total = 1 << 20;
    let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    let (mut sent_a, mut sent_b) = (0usize, 0usize);
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    let mut rbuf = vec![0u8; 65536];
    for _step in 0..200_000 {
        // Apps: write what fits, read what is there, close when done.
        for (host, sent, got) in
            [(&mut a, &mut sent_a, &mut got_a), (&mut b, &mut sent_b, &mut got_b)]
        {
            for c in host.conns.values_mut() {
                if matches!(c.state(), State::Established | State::CloseWait) && *sent < total {
                    if let Ok(n) = c.write(&data[*sent..]) {
                        *sent += n;
                    }
                    if *sent == total {
                        c.shutdown_write();
                    }
                }
                while let Ok(n) = c.read(&mut rbuf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&rbuf[..n]);
                }
            }
        }
        let mut out_a = Vec::new();
        let mut out_b = Vec::new();
        a.send(now, &mut out_a);
        b.send(now, &mut out_b);
        if out_a.is_empty() && out_b.is_empty() {
            let next = [a.timeout(), b.timeout()].into_iter().flatten().min();
            match next {
                Some(t) => {
                    now = now.max(t);
                    a.fire(now);
                    b.fire(now);
                    continue;
                }
                None => break,
            }
        }
        now += core::time::Duration::from_micros(100);
        for p in &out_a {
            b.recv(now, p);
        }
        for p in &out_b {
            a.recv(now, p);
        }
    }
    assert_eq!(got_b.len(), total, "b received everything");
    assert_eq!(got_a.len(), total, "a received everything");
    assert!(got_a == data && got_b == data, "byte-exact");
    for c in a.conns.values().chain(b.conns.values()) {
        assert_eq!(c.state(), State::Closed, "{:?}", c.info());
    }
    assert_eq!(b.ep.accept(SocketAddr::new(b_ip, 80)), Some(ConnectionHandle(0)));
    println!("finished at {now}");
}

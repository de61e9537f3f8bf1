//! Any-IP interception (AI-01) and the decision before the handshake (AI-02): a client
//! endpoint dials addresses the server endpoint does not have; the server intercepts them,
//! accepts at once or holds each SYN for a decision, and survives a spoofed-SYN flood.

mod alloc_util;
mod common;
mod intercept_util;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use alloc_util::{live_bytes, peak_bytes, reset_peak};
use common::Seg;
use intercept_util::{Net, CLIENT_V4};
use tcpcore::rng::Rng;
use tcpcore::wire::icmp::{self, IcmpRepr};
use tcpcore::wire::{self, SeqNum, TcpFlags, TcpOptions, TcpRepr, Timestamps};
use tcpcore::{
    ConnectionError, Decision, EndpointError, InterceptMode, InterceptOptions, ListenOptions,
    State, SynCookies, Unreachable,
};

/// A source whose replies go nowhere.
const LOST: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));

/// Addresses the server does not have.
fn far(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)), port)
}

fn opts(mode: InterceptMode) -> InterceptOptions {
    InterceptOptions { mode, ..InterceptOptions::default() }
}

/// Parse a TCP packet.
#[track_caller]
fn tcp(p: &[u8]) -> wire::Segment<'_> {
    wire::parse(p).expect("a TCP packet")
}

/// The single packet the server sent the client since the last call.
#[track_caller]
fn one(net: &mut Net) -> Vec<u8> {
    let mut v = net.take_to_client();
    assert_eq!(v.len(), 1, "expected one packet to the client, got {}", v.len());
    v.remove(0)
}

/// Echo `msg` from the client's `h` through the server's `s` and back.
#[track_caller]
fn echo(net: &mut Net, h: tcpcore::ConnectionHandle, s: tcpcore::ConnectionHandle, msg: &[u8]) {
    let _ = net.cconns.get_mut(&h).unwrap().write(msg).unwrap();
    net.advance(Duration::from_millis(1));
    let mut buf = [0u8; 256];
    let n = net.sconn(s).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], msg, "the server reads what the client wrote");
    let _ = net.sconn(s).write(&buf[..n]).unwrap();
    net.advance(Duration::from_millis(1));
    let n = net.cconns.get_mut(&h).unwrap().read(&mut buf).unwrap();
    assert_eq!(&buf[..n], msg, "the client reads the echo");
}

#[test]
fn ai_01_off_by_default_a_syn_to_another_address_is_reset() {
    let mut net = Net::new(InterceptOptions::default());
    assert_eq!(net.server.interception().mode, InterceptMode::Off);
    let h = net.connect(far(443));
    net.run();
    let rst = one(&mut net);
    let seg = tcp(&rst);
    assert!(seg.tcp.flags.rst(), "a closed port answers RST: {:?}", seg.tcp);
    assert_eq!(SocketAddr::new(seg.src, seg.tcp.src_port), far(443));
    assert_eq!(net.conn(h).state(), State::Closed);
    assert_eq!(net.server.stats().no_connection, 1);
    assert_eq!(net.server.accept_intercepted(), None);
}

#[test]
fn ai_01_a_syn_to_any_address_and_port_is_accepted_from_the_dialled_address() {
    let mut net = Net::new(opts(InterceptMode::Accept));
    for (i, to) in
        [far(443), far(1), "[2001:db8::77]:8080".parse().unwrap()].into_iter().enumerate()
    {
        net.take_to_client();
        let h = net.connect(to);
        net.run();
        let sa = net.take_to_client();
        let seg = tcp(&sa[0]);
        assert!(seg.tcp.flags.syn() && seg.tcp.flags.ack(), "SYN-ACK first: {:?}", seg.tcp);
        assert_eq!(SocketAddr::new(seg.src, seg.tcp.src_port), to, "from the dialled address");
        assert_eq!(net.conn(h).state(), State::Established);
        let s = net.server.accept_intercepted().expect("an intercepted connection");
        assert_eq!(net.accepted[i], s);
        assert_eq!(net.sconn(s).local_addr(), to, "the local address is the dialled one");
        assert_eq!(net.sconn(s).remote_addr(), net.conn(h).local_addr());
        echo(&mut net, h, s, b"through the interceptor");
    }
    assert_eq!(net.server.accept_intercepted(), None);
    assert_eq!(net.server.stats().passive_opens, 3);
}

#[test]
fn ai_01_a_more_specific_listener_wins() {
    let mut net = Net::new(opts(InterceptMode::Accept));
    let own: IpAddr = "10.0.0.2".parse().unwrap();
    net.server.add_local_addr(own);
    let exact = SocketAddr::new(own, 80);
    net.server.listen(exact).unwrap();
    net.server.listen("0.0.0.0:22".parse().unwrap()).unwrap();

    net.connect(exact);
    net.connect(SocketAddr::new(own, 22));
    net.connect(far(22));
    net.connect(far(80));
    net.run();
    assert!(net.cconns.values().all(|c| c.state() == State::Established));
    assert!(net.server.accept(exact).is_some(), "the exact listener takes its address");
    assert!(
        net.server.accept("0.0.0.0:22".parse().unwrap()).is_some(),
        "the wildcard listener takes the endpoint's own address"
    );
    let mut intercepted: Vec<_> = std::iter::from_fn(|| net.server.accept_intercepted())
        .map(|h| net.sconns[&h].local_addr())
        .collect();
    intercepted.sort();
    assert_eq!(intercepted, [far(22), far(80)], "the rest is intercepted");
}

#[test]
fn ai_01_turning_interception_off_resets_as_before_and_returns_the_queue() {
    let mut net = Net::new(opts(InterceptMode::Accept));
    net.connect(far(443));
    net.run();
    let queued = net.server.set_interception(InterceptOptions::default());
    assert_eq!(queued.len(), 1, "the unaccepted connection goes back to its owner");
    net.take_to_client();
    let h = net.connect(far(444));
    net.run();
    assert!(tcp(&one(&mut net)).tcp.flags.rst());
    assert_eq!(net.conn(h).state(), State::Closed);
}

#[test]
fn ai_01_the_intercepting_listener_has_a_syn_queue_and_cookies() {
    let listen = ListenOptions { syn_backlog: 2, ..ListenOptions::default() };
    let mut net = Net::new(InterceptOptions { listen, ..opts(InterceptMode::Accept) });
    // Three SYNs whose handshakes do not complete yet: the third overflows into a cookie.
    for port in [1, 2, 3] {
        // From an address whose replies are lost, so nobody resets the half-open entries.
        let syn = Seg::syn(7).packet(SocketAddr::new(LOST, 5000 + port), far(port));
        net.inject(&syn);
    }
    assert_eq!(net.server.half_open_count(), 2);
    assert_eq!(net.server.stats().cookies_sent, 1);
    // A real client still gets in through the cookie.
    let h = net.connect(far(9));
    net.run();
    assert_eq!(net.conn(h).state(), State::Established);
    assert_eq!(net.server.stats().cookies_accepted, 1);
}

/// A SYN with every option Linux sends, from `from` to `to`.
fn full_syn(from: SocketAddr, to: SocketAddr, seq: u32) -> Vec<u8> {
    let o = TcpOptions {
        mss: Some(1400),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some(Timestamps { tsval: 4242, tsecr: 0 }),
        ..TcpOptions::default()
    };
    Seg::syn(seq).opts(o).packet(from, to)
}

#[test]
fn ai_02_a_request_waits_for_complete_before_any_syn_ack() {
    let mut net = Net::new(opts(InterceptMode::Decide));
    let h = net.connect(far(8443));
    net.run();
    assert!(net.take_to_client().is_empty(), "nothing goes out before the decision");
    let req = net.server.poll_request().expect("a request");
    assert_eq!(net.server.poll_request(), None, "handed out once");
    assert_eq!(req.local(), far(8443));
    assert_eq!(req.remote(), net.conn(h).local_addr());
    assert_eq!(req.syn.mss, Some(1460));
    assert!(req.syn.wscale.is_some() && req.syn.sack_permitted && req.syn.tsval.is_some());

    // The client's SYN retransmissions are absorbed: not answered, not a second request.
    net.advance(Duration::from_millis(3500));
    assert!(net.take_to_client().is_empty());
    assert_eq!(net.server.poll_request(), None);
    assert_eq!(net.server.stats().intercept.absorbed, 2, "SYNs at 1 s and 3 s");
    assert_eq!(net.conn(h).state(), State::SynSent);

    net.server.decide(net.now, req.id, Decision::Complete).unwrap();
    net.run();
    let seg_flags: Vec<_> = net.take_to_client().iter().map(|p| tcp(p).tcp.flags).collect();
    assert!(seg_flags[0].syn() && seg_flags[0].ack(), "the SYN-ACK goes out now");
    assert_eq!(net.conn(h).state(), State::Established);
    let s = *net.accepted.last().expect("a new connection");
    assert_eq!(net.server.accept_intercepted(), Some(s));
    assert_eq!(net.sconn(s).local_addr(), far(8443));
    echo(&mut net, h, s, b"decided");
    assert_eq!(
        net.server.decide(net.now, req.id, Decision::Complete),
        Err(EndpointError::RequestGone)
    );
}

#[test]
fn ai_02_refuse_with_reset_makes_connect_fail_with_refused() {
    let mut net = Net::new(opts(InterceptMode::Decide));
    let h = net.connect(far(25));
    net.run();
    let req = net.server.poll_request().unwrap();
    net.server.decide(net.now, req.id, Decision::Reset).unwrap();
    net.run();
    let rst = one(&mut net);
    let seg = tcp(&rst);
    assert_eq!(seg.tcp.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!((seg.tcp.seq, seg.tcp.ack), (SeqNum(0), req.syn.seq + 1));
    assert_eq!(SocketAddr::new(seg.src, seg.tcp.src_port), far(25));
    assert_eq!(net.conn(h).state(), State::Closed);
    assert_eq!(net.conn(h).error(), Some(ConnectionError::Refused));
    assert_eq!(net.server.stats().intercept.reset, 1);
}

/// The ICMP error the server sends when it refuses a SYN with `how`, checked against the
/// SYN it quotes.
#[track_caller]
fn refuse_with_icmp(from: SocketAddr, to: SocketAddr, how: Unreachable) -> (u8, u8) {
    let mut net = Net::new(opts(InterceptMode::Decide));
    let syn = full_syn(from, to, 99);
    net.inject(&syn);
    let req = net.server.poll_request().unwrap();
    net.server.decide(net.now, req.id, Decision::Unreachable(how)).unwrap();
    net.run();
    let p = one(&mut net);
    let msg = icmp::parse(&p).expect("a well-formed ICMP message");
    assert_eq!((msg.src, msg.dst), (to.ip(), from.ip()), "from the dialled address");
    let IcmpRepr::Error { ty, code, quote, .. } = msg.repr else { panic!("{:?}", msg.repr) };
    assert_eq!(quote.bytes(), &syn[..], "the whole SYN is quoted");
    assert_eq!((quote.src(), quote.dst(), quote.seq()), (from, to, SeqNum(99)));
    assert_eq!(net.server.stats().intercept.unreachable, 1);
    (ty, code)
}

#[test]
fn ai_02_refuse_with_icmp_unreachable_sends_the_right_code_and_quote() {
    let v4 = (SocketAddr::new(CLIENT_V4, 4000), far(53));
    let v6: (SocketAddr, SocketAddr) =
        ("[fd00:9::1]:4000".parse().unwrap(), "[2001:db8::5]:53".parse().unwrap());
    let cases = [
        (v4, Unreachable::Host, (3, 1)),
        (v4, Unreachable::Port, (3, 3)),
        (v4, Unreachable::AdminProhibited, (3, 13)),
        (v6, Unreachable::Host, (1, 3)),
        (v6, Unreachable::Port, (1, 4)),
        (v6, Unreachable::AdminProhibited, (1, 1)),
    ];
    for ((from, to), how, want) in cases {
        assert_eq!(refuse_with_icmp(from, to, how), want, "{how:?} from {to}");
    }
}

#[test]
fn ai_02_port_unreachable_fails_the_clients_connect_with_refused() {
    let mut net = Net::new(opts(InterceptMode::Decide));
    let h = net.connect(far(5432));
    net.run();
    let req = net.server.poll_request().unwrap();
    net.server.decide(net.now, req.id, Decision::Unreachable(Unreachable::Port)).unwrap();
    net.run();
    assert_eq!(net.conn(h).state(), State::Closed);
    assert_eq!(net.conn(h).error(), Some(ConnectionError::Refused));
}

#[test]
fn ai_02_drop_sends_nothing_and_the_next_syn_is_a_new_request() {
    let mut net = Net::new(opts(InterceptMode::Decide));
    let h = net.connect(far(80));
    net.run();
    let first = net.server.poll_request().unwrap();
    net.server.decide(net.now, first.id, Decision::Drop).unwrap();
    net.run();
    assert!(net.take_to_client().is_empty(), "drop answers nothing");
    net.advance(Duration::from_millis(1100));
    let second = net.server.poll_request().expect("the retransmitted SYN asks again");
    assert_eq!(second.id.tuple(), first.id.tuple());
    assert_ne!(second.id, first.id, "a new request");
    assert!(net.take_to_client().is_empty());
    net.server.decide(net.now, second.id, Decision::Complete).unwrap();
    net.run();
    assert_eq!(net.conn(h).state(), State::Established);
    assert_eq!(net.server.stats().intercept.dropped, 1);
}

#[test]
fn ai_02_pending_requests_are_bounded_and_expire() {
    let o = InterceptOptions {
        max_pending: 4,
        decision_timeout: Duration::from_secs(5),
        listen: ListenOptions { syn_cookies: SynCookies::Never, ..ListenOptions::default() },
        ..opts(InterceptMode::Decide)
    };
    let mut net = Net::new(o);
    for port in 1..=6 {
        net.inject(&full_syn(SocketAddr::new(CLIENT_V4, 6000 + port), far(port), 1));
    }
    net.run();
    assert!(net.take_to_client().is_empty());
    assert_eq!(net.server.pending_requests(), 4);
    assert_eq!(net.server.stats().intercept.pending_overflows, 2);
    let reqs: Vec<_> = std::iter::from_fn(|| net.server.poll_request()).collect();
    assert_eq!(reqs.len(), 4);
    net.server.decide(net.now, reqs[0].id, Decision::Drop).unwrap();
    net.advance(Duration::from_millis(4999));
    assert_eq!(net.server.pending_requests(), 3, "not yet expired");
    net.advance(Duration::from_millis(1));
    assert_eq!(net.server.pending_requests(), 0, "expired after the decision timeout");
    assert_eq!(net.server.stats().intercept.expired, 3);
    assert_eq!(
        net.server.decide(net.now, reqs[1].id, Decision::Complete),
        Err(EndpointError::RequestGone)
    );
    assert!(net.take_to_client().is_empty(), "expiry answers nothing");
    assert_eq!(net.server.poll_timeout(), None, "no timer left behind");
}

#[test]
fn ai_02_a_full_pending_table_falls_back_to_cookies_when_allowed() {
    let o = InterceptOptions { max_pending: 1, ..opts(InterceptMode::Decide) };
    let mut net = Net::new(o);
    net.inject(&full_syn(SocketAddr::new(LOST, 7000), far(1), 1));
    let h = net.connect(far(2));
    net.run();
    assert_eq!(net.server.stats().intercept.overflow_cookies, 1);
    assert_eq!(net.conn(h).state(), State::Established, "a cookie lets the client in");
    let s = net.server.accept_intercepted().expect("completed without a decision");
    assert_eq!(net.sconn(s).local_addr(), far(2));
}

#[test]
fn ai_02_hostile_segments_at_pending_requests_never_panic() {
    let mut net = Net::new(opts(InterceptMode::Decide));
    let client = SocketAddr::new(CLIENT_V4, 9000);
    net.inject(&full_syn(client, far(1), 1000));
    let mut rng = Rng::new(5);
    for _ in 0..2000 {
        let repr = TcpRepr {
            src_port: client.port(),
            dst_port: 1,
            seq: SeqNum(rng.next_u32()),
            ack: SeqNum(rng.next_u32()),
            flags: TcpFlags((rng.next_u32() & 0x3f) as u8),
            window: rng.next_u32() as u16,
            ..TcpRepr::default()
        };
        let mut buf = [0u8; 128];
        let Ok(n) = wire::emit(&mut buf, client.ip(), far(1).ip(), &repr, [&[], &[]]) else {
            continue;
        };
        net.inject(&buf[..n]);
        let cut = (rng.next_u32() as usize) % n;
        net.inject(&buf[..cut]);
    }
    net.run();
    assert_eq!(net.server.pending_requests(), 1, "the request is still there");
    assert_eq!(net.server.stats().intercept.requests, 1);
}

/// A spoofed SYN from a random address outside 10/8 to a random address and port.
fn spoofed_syn(rng: &mut Rng) -> Vec<u8> {
    let ip = |rng: &mut Rng| IpAddr::V4(Ipv4Addr::from((11 << 24) + rng.next_u32() % (200 << 24)));
    let from = SocketAddr::new(ip(rng), 1024 + (rng.next_u32() % 60000) as u16);
    let to = SocketAddr::new(ip(rng), 1 + (rng.next_u32() % 65000) as u16);
    full_syn(from, to, rng.next_u32())
}

/// AI-02 under a flood: 100,000 spoofed SYNs to random destinations (10 per ms for 10 s) at
/// an endpoint that decides first, while 100 real clients dial random destinations during
/// the first second. The application completes the real ones; it drops the spoofed ones at
/// once (`decide_spoofed`), or never decides them, so they fill the table. Memory stays
/// bounded (pending table, SYN queue; the heap does not grow after the first 2 s) and every
/// real client gets in.
///
/// `TCPCORE_INTERCEPT_FLOOD_SYNS` sets the number of spoofed SYNs (default 100,000; at least
/// 20,000, at 10 per ms).
fn flood(decide_spoofed: bool) -> Net {
    let syns: u32 = std::env::var("TCPCORE_INTERCEPT_FLOOD_SYNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
        .max(20_000);
    let mut net = Net::new(opts(InterceptMode::Decide));
    net.record = false;
    let mut rng = Rng::new(77);
    let (mut max_pending, mut max_half_open) = (0, 0);
    let mut clients = Vec::new();
    let mut base = 0;
    for tick in 0..syns / 10 {
        for _ in 0..10 {
            let syn = spoofed_syn(&mut rng);
            net.inject(&syn);
        }
        if tick == 2000 {
            // The tables have reached their size and the clients are connected.
            base = live_bytes();
            reset_peak();
        }
        if tick < 1000 && tick % 10 == 5 {
            // In 100.64.0.0/10.
            let ip = Ipv4Addr::from(0x6440_0000 | (rng.next_u32() & 0x003f_ffff));
            let to = SocketAddr::new(IpAddr::V4(ip), 1 + (rng.next_u32() % 65000) as u16);
            clients.push((net.connect(to), to));
        }
        net.advance(Duration::from_millis(1));
        max_pending = max_pending.max(net.server.pending_requests());
        while let Some(req) = net.server.poll_request() {
            if req.remote().ip() == CLIENT_V4 {
                net.server.decide(net.now, req.id, Decision::Complete).unwrap();
            } else if decide_spoofed {
                net.server.decide(net.now, req.id, Decision::Drop).unwrap();
            }
        }
        max_pending = max_pending.max(net.server.pending_requests());
        max_half_open = max_half_open.max(net.server.half_open_count());
    }
    let growth = peak_bytes() - base;
    net.advance(Duration::from_secs(5));
    assert!(growth < 1 << 20, "the heap grew by {growth} bytes during the flood");
    assert!(max_pending <= 1024, "pending table bounded: {max_pending}");
    assert!(max_half_open <= 1024, "SYN queue bounded: {max_half_open}");
    for (h, to) in &clients {
        assert_eq!(net.conn(*h).state(), State::Established, "client to {to}");
    }
    let mut locals: Vec<_> = net.sconns.values().map(|c| c.local_addr()).collect();
    let mut dialled: Vec<_> = clients.iter().map(|(_, to)| *to).collect();
    locals.sort();
    dialled.sort();
    assert_eq!(locals, dialled, "only real clients got connections, on their dialled addresses");
    let st = net.server.stats().intercept;
    eprintln!(
        "flood (decide spoofed: {decide_spoofed}): max pending {max_pending}, max half-open \
         {max_half_open}, heap growth after 2 s {growth} bytes (live at 2 s: {base}), {st:?}"
    );
    net
}

#[test]
fn ai_02_a_spoofed_syn_flood_with_prompt_decisions_stays_bounded() {
    let net = flood(true);
    let st = net.server.stats().intercept;
    assert_eq!(st.requests, st.dropped + 100, "every SYN was a request");
    assert_eq!(st.completed, 100);
}

#[test]
fn ai_02_a_spoofed_syn_flood_nobody_decides_fills_the_table_and_cookies_let_clients_in() {
    let net = flood(false);
    let st = net.server.stats().intercept;
    let pending = net.server.pending_requests() as u64;
    assert_eq!(pending, 1024, "spoofed requests fill the table");
    assert_eq!(st.requests, st.completed + st.expired + pending, "each request accounted: {st:?}");
    assert!(st.overflow_cookies > 90_000, "{st:?}");
    assert_eq!(net.server.stats().cookies_accepted + st.completed, 100);
}

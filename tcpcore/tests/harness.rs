//! Checks of the shared harness itself (and a first handshake through it).
mod common;
use common::*;
use tcpcore::wire::TcpFlags;
use tcpcore::State;

#[test]
fn hs_04_scenario_handshake_client_and_server() {
    let mut sc = Sc::established(Sc::plain());
    assert_eq!(sc.conn.state(), State::Established);
    sc.expect_none();
    let srv = Sc::established_server(Sc::plain());
    assert_eq!(srv.conn.state(), State::Established);
}

#[test]
fn pair_connects_and_moves_data() {
    let mut p = Pair::new(Sc::plain(), Sc::plain(), ms(5));
    p.run_until(secs(1), |p| p.server.as_ref().is_some_and(|s| s.state() == State::Established));
    assert_eq!(p.client.state(), State::Established);
    p.client.write(b"hello").unwrap();
    p.run_for(ms(100));
    let mut b = [0u8; 16];
    assert_eq!(p.server().read(&mut b).unwrap(), 5);
    assert_eq!(&b[..5], b"hello");
    let syns: Vec<_> = p.sent(Dir::CtoS).into_iter().filter(|o| o.has(TcpFlags::SYN)).collect();
    assert_eq!(syns.len(), 1);
}

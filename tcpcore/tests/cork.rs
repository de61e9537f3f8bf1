//! Corking, as Linux's `TCP_CORK` and `MSG_MORE` (nagle/sockopt_cork_nodelay.pkt): a final
//! partial segment waits for more data.
mod common;

use common::*;
use tcpcore::wire::TcpFlags;

#[test]
fn cork_holds_partial_segments_until_uncorked_like_linux() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.set_cork(true);
    sc.conn.write(b"0123456789").unwrap();
    sc.advance(ms(50));
    sc.conn.write(b"abcdefghij").unwrap();
    sc.expect_none();
    // Full segments are not held.
    sc.conn.write(&[7u8; 1460]).unwrap();
    let full = sc.expect_one();
    assert_eq!((full.seq(), full.len()), (D, 1460));
    sc.expect_none();
    sc.conn.set_cork(false);
    let tail = sc.expect_one();
    assert_eq!((tail.seq(), tail.len()), (D + 1460, 20));
    assert!(tail.has(TcpFlags::PSH));
}

#[test]
fn write_more_holds_the_tail_without_psh_until_nodelay_pushes_like_linux() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.write_more(b"first").unwrap();
    sc.advance(ms(50));
    sc.conn.write_more(b"second").unwrap();
    sc.expect_none();
    // TCP_NODELAY set: what is queued goes at once, without PSH (more was promised).
    sc.conn.set_nodelay(true);
    let out = sc.expect_one();
    assert_eq!((out.seq(), out.len()), (D, 11));
    assert!(!out.has(TcpFlags::PSH));
    // A plain write is pushed as usual.
    sc.conn.write(b"last").unwrap();
    let last = sc.expect_one();
    assert_eq!(last.len(), 4);
    assert!(last.has(TcpFlags::PSH));
}

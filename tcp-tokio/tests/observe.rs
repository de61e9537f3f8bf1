//! What a stack shows of itself: the connection listing, per-state counts, stack totals and
//! the pcap tap.

use std::sync::{Arc, Mutex};

use tcp_tokio::{MemLink, PcapTap, Stack, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pair(link: (MemLink, MemLink)) -> (Stack, Stack) {
    let build = |ip: &str, seed, dev| {
        Stack::builder().address(ip.parse().unwrap()).seed(seed).build(dev).unwrap()
    };
    (build("10.0.0.1", 1, link.0), build("10.0.0.2", 2, link.1))
}

/// CL-11: a server that never closes what its peers closed piles up CLOSE-WAIT
/// connections; `connections()` lists them and `state_counts()` counts them (and the
/// clients' FIN-WAIT-2).
#[tokio::test(start_paused = true)]
async fn cl_11_a_close_wait_pile_up_shows_in_the_listing_and_the_counts() {
    const N: usize = 20;
    let (server, client) = pair(MemLink::pair());
    let listener = server.bind("10.0.0.1:80").await.unwrap();
    let mut kept = Vec::new();
    for _ in 0..N {
        let c = client.connect("10.0.0.1:80").await.unwrap();
        let (mut s, _) = listener.accept().await.unwrap();
        drop(c);
        // The peer's FIN: end-of-file. The server never closes.
        assert_eq!(s.read(&mut [0; 16]).await.unwrap(), 0);
        kept.push(s);
    }
    let counts = server.state_counts();
    assert_eq!(counts.get(State::CloseWait), N);
    assert_eq!(counts.total(), N);
    assert_eq!(client.state_counts().get(State::FinWait2), N);
    let listing = server.connections();
    assert_eq!(listing.len(), N);
    for e in &listing {
        assert_eq!((e.state, e.local.port()), (State::CloseWait, 80));
        assert_eq!(e.info.state, State::CloseWait);
        assert!(kept.iter().any(|s| s.peer_addr().unwrap() == e.remote));
    }
}

/// The listing shows the queues: unread bytes as Recv-Q, unacknowledged ones as Send-Q.
#[tokio::test(start_paused = true)]
async fn the_listing_shows_send_and_receive_queues() {
    let (server, client) = pair(MemLink::pair());
    let listener = server.bind("10.0.0.1:80").await.unwrap();
    let mut c = client.connect("10.0.0.1:80").await.unwrap();
    let (mut s, _) = listener.accept().await.unwrap();
    c.write_all(&[1; 1000]).await.unwrap();
    // Wait (bounded) for all 1000 bytes, reading none of them.
    for _ in 0..1000 {
        if server.connections()[0].recv_queue == 1000 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(server.connections()[0].recv_queue, 1000);
    let e = client.connections()[0];
    assert_eq!((e.send_queue, e.recv_queue), (0, 0), "acknowledged and nothing to read");
    s.read_exact(&mut [0; 1000]).await.unwrap();
    assert_eq!(server.connections()[0].recv_queue, 0);
}

/// Stack totals count every IP packet, not only the endpoint's own: with segmentation
/// offload each wire segment of a super-segment counts; without it, what one stack sends is
/// exactly what the other receives.
#[tokio::test(start_paused = true)]
async fn totals_count_every_segment_in_and_out() {
    const SIZE: usize = 1 << 20;
    for offload in [true, false] {
        let (server, client) = pair(MemLink::builder().offload(offload).pair());
        let listener = server.bind("10.0.0.1:80").await.unwrap();
        let mut c = client.connect("10.0.0.1:80").await.unwrap();
        let (mut s, _) = listener.accept().await.unwrap();
        let send = async {
            s.write_all(&vec![5; SIZE]).await.unwrap();
            s.shutdown().await.unwrap();
        };
        let mut got = Vec::new();
        let ((), n) = tokio::join!(send, c.read_to_end(&mut got));
        assert_eq!(n.unwrap(), SIZE);
        let sent = server.totals();
        let mss = c.info().snd_mss as u64;
        assert!(sent.packets_out >= SIZE as u64 / mss, "offload {offload}: {sent:?}");
        assert!(sent.bytes_out > SIZE as u64, "{sent:?}");
        assert!(sent.packets_in > 0 && sent.bytes_in > 0, "{sent:?}");
        assert!(sent.packets_out > 100 * sent.endpoint.packets_out, "{sent:?}");
        assert_eq!((sent.retransmits, sent.drops_not_local), (0, 0));
        if !offload {
            let got = client.totals();
            assert_eq!((got.packets_in, got.bytes_in), (sent.packets_out, sent.bytes_out));
        }
    }
}

/// Retransmissions of a lossy transfer are counted in the totals (and stay counted after
/// the connection is gone).
#[tokio::test(start_paused = true)]
async fn totals_count_retransmissions_of_gone_connections() {
    let (server, client) = pair(MemLink::builder().loss(0.05).seed(3).pair());
    let listener = server.bind("10.0.0.1:80").await.unwrap();
    let mut c = client.connect("10.0.0.1:80").await.unwrap();
    let (mut s, _) = listener.accept().await.unwrap();
    let send = async {
        s.write_all(&vec![5; 256 << 10]).await.unwrap();
        s.shutdown().await.unwrap();
        s
    };
    let mut got = Vec::new();
    let (s, n) = tokio::join!(send, c.read_to_end(&mut got));
    n.unwrap();
    let live = server.totals().retransmits;
    assert!(live > 0);
    assert_eq!(live, s.info().retransmits);
    drop((s, c));
    // Wait (bounded) for the server's connection to leave the table.
    for _ in 0..600 {
        if server.connection_count() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(server.connection_count(), 0);
    assert!(server.totals().retransmits >= live);
}

/// A `Write` into a buffer the test keeps a handle to.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The pcap tap writes a file Wireshark reads: the pcap magic and `LINKTYPE_RAW`, then one
/// well-formed record per packet the stack received or sent (as many as its totals count),
/// each an IPv4 packet between the two stacks.
#[tokio::test(start_paused = true)]
async fn the_pcap_tap_records_one_record_per_packet() {
    let (a, b) = MemLink::builder().offload(false).pair();
    let capture = SharedBuf::default();
    let tap = PcapTap::new(b, capture.clone()).unwrap();
    let build = |ip: &str| Stack::builder().address(ip.parse().unwrap()).seed(1);
    let server = build("10.0.0.1").build(a).unwrap();
    let client = build("10.0.0.2").build(tap).unwrap();
    let listener = server.bind("10.0.0.1:80").await.unwrap();
    let mut c = client.connect("10.0.0.1:80").await.unwrap();
    let (mut s, _) = listener.accept().await.unwrap();
    s.write_all(&[9; 10_000]).await.unwrap();
    s.shutdown().await.unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), 10_000);

    let totals = client.totals();
    let file = capture.0.lock().unwrap().clone();
    let u32_at = |i: usize| u32::from_le_bytes(file[i..i + 4].try_into().unwrap());
    assert_eq!(u32_at(0), tcpcore::pcap::PCAP_MAGIC);
    assert_eq!(u32_at(20), tcpcore::pcap::LINKTYPE_RAW);
    let (mut at, mut records, mut bytes) = (24, 0, 0);
    while at < file.len() {
        let (incl, orig) = (u32_at(at + 8) as usize, u32_at(at + 12) as usize);
        assert_eq!(incl, orig);
        let packet = &file[at + 16..at + 16 + incl];
        assert_eq!(packet[0] >> 4, 4, "record {records} is not IPv4");
        assert!(
            packet[12..20] == [10, 0, 0, 1, 10, 0, 0, 2]
                || packet[12..20] == [10, 0, 0, 2, 10, 0, 0, 1]
        );
        at += 16 + incl;
        records += 1;
        bytes += incl as u64;
    }
    assert_eq!(at, file.len(), "a truncated record");
    assert_eq!(records, totals.packets_in + totals.packets_out);
    assert_eq!(bytes, totals.bytes_in + totals.bytes_out);
    assert!(records > 10);
}

//! RR-01: request/response traffic. When the device had nothing left and the first packet of
//! a new driver pass wakes a task (a request for the task reading that connection), the
//! application's answer goes to the device before the driver reads the device again: the
//! read that finds it empty, the timers and the rest of the pass come after the answer.
//! The server's device is a probe that logs every call the driver makes on it.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tcp_tokio::{Capabilities, Device, MemLink, Stack, TxMeta};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REQUEST: &[u8; 8] = b"REQUEST!";
const ANSWER: &[u8; 8] = b"ANSWER!!";
const ROUNDS: usize = 20;

/// A driver call on the probe, with what it moved.
#[derive(Debug)]
enum Call {
    /// `poll_recv` returned packets.
    Recv(Vec<Vec<u8>>),
    /// `poll_recv` returned `Pending`.
    Empty,
    /// `poll_send` took packets.
    Send(Vec<Vec<u8>>),
}

/// The link, with every driver call logged.
struct Probe {
    link: MemLink,
    log: Arc<Mutex<Vec<Call>>>,
}

impl Device for Probe {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        lens: &mut [usize],
    ) -> Poll<io::Result<usize>> {
        let r = self.link.poll_recv(cx, bufs, lens);
        let call = match &r {
            Poll::Ready(Ok(n)) => Call::Recv(
                bufs.iter().zip(lens.iter()).take(*n).map(|(b, &l)| b[..l].to_vec()).collect(),
            ),
            Poll::Ready(Err(_)) => return r,
            Poll::Pending => Call::Empty,
        };
        self.log.lock().unwrap().push(call);
        r
    }

    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        packets: &[IoSlice<'_>],
        meta: &[TxMeta],
    ) -> Poll<io::Result<usize>> {
        let r = self.link.poll_send(cx, packets, meta);
        if let Poll::Ready(Ok(n)) = r {
            let sent = packets[..n].iter().map(|p| p.to_vec()).collect();
            self.log.lock().unwrap().push(Call::Send(sent));
        }
        r
    }

    fn mtu(&self) -> usize {
        self.link.mtu()
    }

    fn capabilities(&self) -> Capabilities {
        self.link.capabilities()
    }
}

fn carries(packets: &[Vec<u8>], what: &[u8; 8]) -> bool {
    packets.iter().any(|p| p.windows(what.len()).any(|w| w == what))
}

/// RR-01: over a perfect in-memory link, twenty 64-byte requests from a client stack each get
/// their answer from a server stack's echo task: in the server's device log, every call that
/// received a request is followed directly by the call that sends its answer.
#[tokio::test(start_paused = true)]
async fn rr_01_the_answer_leaves_before_the_device_is_read_again() {
    let (a, b) = MemLink::builder().offload(false).pair();
    let log = Arc::new(Mutex::new(Vec::new()));
    let probe = Probe { link: a, log: log.clone() };
    let server =
        Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(probe).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b).unwrap();
    let addr: SocketAddr = "10.0.0.1:7".parse().unwrap();
    let listener = server.bind(addr).await.unwrap();
    let echo = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = [0u8; 64];
        loop {
            match s.read(&mut buf).await.unwrap() {
                0 => return,
                n => s.write_all(&ANSWER.repeat(8)[..n]).await.unwrap(),
            }
        }
    });
    let run = async {
        let mut c = client.connect(addr).await.unwrap();
        c.set_nodelay(true).unwrap();
        let mut buf = [0u8; 64];
        for _ in 0..ROUNDS {
            c.write_all(&REQUEST.repeat(8)).await.unwrap();
            c.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf[..8], ANSWER);
        }
        drop(c);
        echo.await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(30), run).await.expect("round trips timed out");

    let log = log.lock().unwrap();
    let mut requests = 0;
    for (i, call) in log.iter().enumerate() {
        let Call::Recv(packets) = call else { continue };
        if !carries(packets, REQUEST) {
            continue;
        }
        requests += 1;
        let next = log.get(i + 1);
        assert!(
            matches!(next, Some(Call::Send(p)) if carries(p, ANSWER)),
            "request {requests} (call {i}) was followed by {next:?}, not by its answer"
        );
    }
    assert_eq!(requests, ROUNDS, "each request arrives in a call of its own");
}

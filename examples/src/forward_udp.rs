//! UDP flows through the forwarder: the stack's interception socket receives every
//! datagram to any address with its original destination; each (client, destination)
//! pair is a flow with a kernel UDP socket connected to that destination (marked like the
//! TCP ones), whose replies go back to the client from the destination's address. A flow
//! ends after [`ForwardConfig::udp_idle`](crate::forward::ForwardConfig::udp_idle) without
//! a datagram either way, as a NAT's UDP mapping does. When the upstream answers with port
//! unreachable (the kernel socket's `ECONNREFUSED`), the client gets port unreachable from
//! the address it dialled (AI-03).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tcp_tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::forward::{set_mark, Forwarder};

/// Datagrams queued from the client to one flow's kernel socket; beyond, they are dropped
/// (and counted), as a full socket buffer would.
const FLOW_QUEUE: usize = 256;

/// Largest datagram (IPv4's limit; reassembled datagrams can be that large).
const MAX_DATAGRAM: usize = 65_535;

/// A flow's entry in the table: where the receive loop hands its datagrams.
type Flows = HashMap<(SocketAddr, SocketAddr), mpsc::Sender<Bytes>>;

impl Forwarder {
    /// Forward each UDP flow that the interception socket `all` receives.
    pub(crate) async fn serve_udp(self, all: UdpSocket) -> io::Result<()> {
        let all = Arc::new(all);
        let mut flows = Flows::new();
        let mut sweep_at = 1024;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let (n, client, dst) = all.recv_from_to(&mut buf).await?;
            let data = Bytes::copy_from_slice(&buf[..n]);
            let live = flows.get(&(client, dst)).filter(|tx| !tx.is_closed());
            let tx = match live {
                Some(tx) => tx.clone(),
                None => {
                    let (tx, rx) = mpsc::channel(FLOW_QUEUE);
                    flows.insert((client, dst), tx.clone());
                    tokio::spawn(self.clone().forward_udp(all.clone(), client, dst, rx));
                    tx
                }
            };
            if tx.try_send(data).is_err() {
                self.stats().udp_dropped.fetch_add(1, Relaxed);
            }
            // Forget the flows that ended, now and then.
            if flows.len() >= sweep_at {
                flows.retain(|_, tx| !tx.is_closed());
                sweep_at = (flows.len() * 2).max(1024);
            }
        }
    }

    /// One UDP flow: a kernel socket connected to `dst`; datagrams from `rx` go there, its
    /// answers go back to `client` from `dst`, until the flow is idle.
    async fn forward_udp(
        self,
        all: Arc<UdpSocket>,
        client: SocketAddr,
        dst: SocketAddr,
        mut rx: mpsc::Receiver<Bytes>,
    ) {
        let stats = self.stats();
        stats.udp_flows.fetch_add(1, Relaxed);
        stats.udp_open.fetch_add(1, Relaxed);
        let start = Instant::now();
        let (mut up, mut down) = ((0u64, 0u64), (0u64, 0u64));
        let end = match self.udp_upstream(dst).await {
            Err(e) => e.to_string(),
            Ok(sock) => {
                let mut buf = vec![0u8; MAX_DATAGRAM];
                // The last datagram sent up, quoted if the upstream refuses it.
                let mut last = Bytes::new();
                loop {
                    let idle = tokio::time::sleep(self.config().udp_idle);
                    tokio::select! {
                        d = rx.recv() => {
                            let Some(d) = d else { break "closed".into() };
                            up = (up.0 + 1, up.1 + d.len() as u64);
                            stats.udp_datagrams_up.fetch_add(1, Relaxed);
                            if sock.send(&d).await.is_err() {
                                stats.udp_dropped.fetch_add(1, Relaxed);
                            }
                            last = d;
                        }
                        r = sock.recv(&mut buf) => {
                            let n = match r {
                                Ok(n) => n,
                                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                                    // The upstream's port unreachable (AI-03): the client
                                    // hears it from the address it dialled. As a NAT, the
                                    // flow stays.
                                    stats.udp_refused.fetch_add(1, Relaxed);
                                    let _ = all.send_port_unreachable(&last, dst, client);
                                    continue;
                                }
                                // Another ICMP error for an earlier datagram: keep the flow.
                                Err(_) => continue,
                            };
                            down = (down.0 + 1, down.1 + n as u64);
                            stats.udp_datagrams_down.fetch_add(1, Relaxed);
                            if all.send_from_to(&buf[..n], dst, client).await.is_err() {
                                stats.udp_dropped.fetch_add(1, Relaxed);
                            }
                        }
                        () = idle => break "idle".into(),
                    }
                }
            }
        };
        rx.close();
        stats.udp_open.fetch_sub(1, Relaxed);
        let took = start.elapsed();
        tracing::info!(
            %client, %dst, datagrams_up = up.0, bytes_up = up.1, datagrams_down = down.0,
            bytes_down = down.1, ?took, end, "udp flow: ended"
        );
    }

    /// A kernel UDP socket connected to `dst`, marked before its route is chosen.
    async fn udp_upstream(&self, dst: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
        let any = match dst.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let sock = std::net::UdpSocket::bind(SocketAddr::new(any, 0))?;
        if let Some(mark) = self.config().fwmark {
            set_mark(&sock, mark)?;
        }
        sock.set_nonblocking(true)?;
        let sock = tokio::net::UdpSocket::from_std(sock)?;
        sock.connect(dst).await?;
        Ok(sock)
    }
}

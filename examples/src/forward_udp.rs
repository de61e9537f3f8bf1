//! UDP flows through the forwarder: the stack's interception socket receives every
//! datagram to any address with its original destination; each (client, destination)
//! pair is a flow with a kernel UDP socket connected to that destination (marked like the
//! TCP ones), whose replies go back to the client from the destination's address. A flow
//! ends after [`ForwardConfig::udp_idle`](crate::forward::ForwardConfig::udp_idle) without
//! a datagram either way, as a NAT's UDP mapping does. When the upstream answers with port
//! unreachable (the kernel socket's `ECONNREFUSED`), the client gets port unreachable from
//! the address it dialled (AI-03).
//!
//! Per datagram the receive loop does no allocation and no hand-over: it finds the flow
//! (the last one first, then a hash map) and sends on its kernel socket without waiting;
//! when that socket's buffer is full the datagram is dropped and counted, as a router's
//! full queue would. Each flow's task only carries the replies and watches for idleness,
//! holding a receive buffer only while replies arrive.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tcp_tokio::net::UdpSocket;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::mpsc;

use crate::forward::{set_mark, Forwarder};

/// Largest datagram (IPv4's limit; reassembled datagrams can be that large).
const MAX_DATAGRAM: usize = 65_535;

/// Bytes of the last datagram sent up that a flow keeps, to quote in a port unreachable:
/// what fits in an IPv4 ICMP error (576 bytes less the IP, ICMP, IP and UDP headers).
const QUOTE: usize = 576 - 20 - 8 - 20 - 8;

/// One flow, shared by the receive loop (client → upstream) and the flow's task.
#[derive(Debug)]
struct Flow {
    /// Non-blocking: sends are plain system calls (tokio's `try_send` would refuse before
    /// the first readiness event), receives wait for readiness.
    sock: AsyncFd<std::net::UdpSocket>,
    /// Datagrams and bytes sent up (the receive loop writes them).
    up: AtomicU64,
    up_bytes: AtomicU64,
    /// The task ended (idle, or the upstream socket failed): the next datagram makes a new
    /// flow.
    ended: AtomicBool,
    /// The start of the last datagram sent up.
    last: Mutex<Vec<u8>>,
}

type Key = (SocketAddr, SocketAddr);

impl Forwarder {
    /// Forward each UDP flow that the interception socket `all` receives.
    pub(crate) async fn serve_udp(self, all: UdpSocket) -> io::Result<()> {
        let all = Arc::new(all);
        let mut flows: HashMap<Key, Arc<Flow>> = HashMap::new();
        let mut recent: Option<(Key, Arc<Flow>)> = None;
        // Flows whose task ended, to leave the table (which closes their socket).
        let (ended_tx, mut ended) = mpsc::unbounded_channel::<Key>();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let (n, client, dst) = tokio::select! {
                biased;
                r = all.recv_from_to(&mut buf) => r?,
                Some(key) = ended.recv() => {
                    if flows.get(&key).is_some_and(|f| f.ended.load(Relaxed)) {
                        flows.remove(&key);
                    }
                    if recent.as_ref().is_some_and(|(k, f)| *k == key && f.ended.load(Relaxed)) {
                        recent = None;
                    }
                    continue;
                }
            };
            let key = (client, dst);
            let flow = match &recent {
                Some((k, f)) if *k == key && !f.ended.load(Relaxed) => f.clone(),
                _ => {
                    let live = flows.get(&key).filter(|f| !f.ended.load(Relaxed)).cloned();
                    let flow = match live {
                        Some(f) => f,
                        None => match self.udp_upstream(dst) {
                            Ok(sock) => {
                                let f = Arc::new(Flow {
                                    sock,
                                    up: AtomicU64::new(0),
                                    up_bytes: AtomicU64::new(0),
                                    ended: AtomicBool::new(false),
                                    last: Mutex::new(Vec::new()),
                                });
                                flows.insert(key, f.clone());
                                let task = self.clone().forward_udp(all.clone(), key, f.clone());
                                let ended_tx = ended_tx.clone();
                                tokio::spawn(async move {
                                    task.await;
                                    let _ = ended_tx.send(key);
                                });
                                f
                            }
                            Err(e) => {
                                self.stats().udp_dropped.fetch_add(1, Relaxed);
                                tracing::info!(%client, %dst, error = %e, "udp flow: no upstream socket");
                                continue;
                            }
                        },
                    };
                    recent = Some((key, flow.clone()));
                    flow
                }
            };
            let d = &buf[..n];
            let stats = self.stats();
            stats.udp_datagrams_up.fetch_add(1, Relaxed);
            match flow.sock.get_ref().send(d) {
                Ok(_) => {
                    flow.up.fetch_add(1, Relaxed);
                    flow.up_bytes.fetch_add(n as u64, Relaxed);
                }
                // A full socket buffer (or an error the flow's task will see): dropped.
                Err(_) => {
                    stats.udp_dropped.fetch_add(1, Relaxed);
                }
            }
            let mut last = flow.last.lock().unwrap_or_else(|e| e.into_inner());
            last.clear();
            last.extend_from_slice(&d[..n.min(QUOTE)]);
            drop(last);
        }
    }

    /// One flow's task: the upstream's answers go back to the client from the address it
    /// dialled, until the flow is idle.
    async fn forward_udp(self, all: Arc<UdpSocket>, (client, dst): Key, flow: Arc<Flow>) {
        let stats = self.stats();
        stats.udp_flows.fetch_add(1, Relaxed);
        stats.udp_open.fetch_add(1, Relaxed);
        let start = Instant::now();
        let idle_for = self.config().udp_idle;
        let mut down = (0u64, 0u64);
        // Up traffic is seen through the flow's counter when the timer fires.
        let mut seen_up = 0;
        let idle = tokio::time::sleep(idle_for);
        tokio::pin!(idle);
        let end = loop {
            tokio::select! {
                // A port unreachable for an earlier datagram is only EPOLLERR.
                r = flow.sock.ready(Interest::READABLE | Interest::ERROR) => {
                    let mut ready = match r {
                        Ok(guard) => guard,
                        Err(e) => break e.to_string(),
                    };
                    match self.forward_down(&all, &flow, (client, dst), &mut down).await {
                        Ok(any) => {
                            // Drained to `EAGAIN`: wait for the next readiness event.
                            ready.clear_ready();
                            if any {
                                idle.as_mut().reset(tokio::time::Instant::now() + idle_for);
                            }
                        }
                        Err(e) => break e.to_string(),
                    }
                }
                () = &mut idle => {
                    let up = flow.up.load(Relaxed);
                    if up == seen_up {
                        break "idle".into();
                    }
                    seen_up = up;
                    idle.as_mut().reset(tokio::time::Instant::now() + idle_for);
                }
            }
        };
        flow.ended.store(true, Relaxed);
        stats.udp_open.fetch_sub(1, Relaxed);
        let took = start.elapsed();
        let (up, bytes_up) = (flow.up.load(Relaxed), flow.up_bytes.load(Relaxed));
        tracing::info!(
            %client, %dst, datagrams_up = up, bytes_up, datagrams_down = down.0,
            bytes_down = down.1, ?took, end, "udp flow: ended"
        );
    }

    /// Carry every answer the upstream socket holds to the client (a buffer only for the
    /// burst), until it has none (`EAGAIN`). Returns whether any datagram came; an error
    /// only for a failed socket.
    async fn forward_down(
        &self,
        all: &UdpSocket,
        flow: &Flow,
        (client, dst): Key,
        down: &mut (u64, u64),
    ) -> io::Result<bool> {
        let stats = self.stats();
        let mut buf = Vec::new();
        let mut any = false;
        loop {
            if buf.is_empty() {
                buf = vec![0u8; MAX_DATAGRAM];
            }
            let n = match flow.sock.get_ref().recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(any),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    // The upstream's port unreachable (AI-03): the client hears it from the
                    // address it dialled. As a NAT, the flow stays.
                    stats.udp_refused.fetch_add(1, Relaxed);
                    let last = flow.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let _ = all.send_port_unreachable(&last, dst, client);
                    continue;
                }
                // Another ICMP error for an earlier datagram: keep the flow.
                Err(e) if is_icmp_error(&e) => continue,
                Err(e) => return Err(e),
            };
            any = true;
            *down = (down.0 + 1, down.1 + n as u64);
            stats.udp_datagrams_down.fetch_add(1, Relaxed);
            if all.send_from_to(&buf[..n], dst, client).await.is_err() {
                stats.udp_dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// A kernel UDP socket connected to `dst`, marked before its route is chosen.
    fn udp_upstream(&self, dst: SocketAddr) -> io::Result<AsyncFd<std::net::UdpSocket>> {
        let any = match dst.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let sock = std::net::UdpSocket::bind(SocketAddr::new(any, 0))?;
        if let Some(mark) = self.config().fwmark {
            set_mark(&sock, mark)?;
        }
        sock.connect(dst)?;
        sock.set_nonblocking(true)?;
        // SAFETY: the `AsyncFd` owns the socket, so its descriptor stays open and the same
        // for the `AsyncFd`'s whole life.
        unsafe { AsyncFd::register(sock) }.map_err(io::Error::from)
    }
}

/// Errors a connected UDP socket reports from ICMP about an earlier datagram (Linux
/// `IP_RECVERR` off: refused, unreachable, too big, TTL exceeded), which do not end a flow.
fn is_icmp_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EMSGSIZE
                | libc::EPROTO
                | libc::ECONNREFUSED
                | libc::EACCES
                | libc::EPERM
        )
    )
}

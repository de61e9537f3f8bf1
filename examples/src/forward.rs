//! The transparent forwarder of `tun_forward`: every TCP connection a stack intercepts is
//! connected to the same destination with a kernel socket before its handshake completes,
//! then spliced; refused with a RST or an ICMP unreachable when the kernel's connect fails.
//! UDP flows are forwarded likewise (`forward_udp.rs`).
//!
//! The decision comes first (issue 13, AI-02): the client's SYN is answered only once the
//! upstream connect succeeded, so a closed port upstream shows up at the client as a RST
//! (`ECONNREFUSED`), and an unreachable one as ICMP host unreachable, as if the client had
//! dialled it directly. With [`ForwardConfig::fwmark`] every kernel socket carries
//! `SO_MARK`, so a policy rule (`ip rule add fwmark N lookup T`) can route the forwarder's
//! own traffic around the TUN that the namespace's default route points at.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tcp_tokio::{InterceptOptions, InterceptRequest, Interceptor, ListenOptions, Refusal, Stack};
use tcpcore::EndpointConfig;
use tokio::net::TcpSocket;

use crate::splice::{splice, Spliced};

/// How the forwarder connects upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForwardConfig {
    /// `SO_MARK` of every kernel socket (`--fwmark`), `None` for none.
    pub fwmark: Option<u32>,
    /// How long a UDP flow lives without a datagram either way (`--udp-idle`).
    pub udp_idle: Duration,
    /// How long an upstream TCP connect may take before the client's SYN is refused with
    /// ICMP host unreachable: below the interception's decision timeout (63 s), so the
    /// client hears an answer.
    pub connect_timeout: Duration,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            fwmark: None,
            udp_idle: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// The forwarder's counters, shared by its tasks (all relaxed: they are reports, not locks).
#[derive(Debug, Default)]
pub struct FlowStats {
    /// TCP flows whose upstream connect is in progress.
    pub tcp_connecting: AtomicU64,
    /// TCP flows spliced and not finished.
    pub tcp_open: AtomicU64,
    /// TCP flows that were spliced, in total.
    pub tcp_forwarded: AtomicU64,
    /// Requests refused because the upstream connect failed.
    pub tcp_refused: AtomicU64,
    /// Spliced flows that ended with an error (a reset either side), not a clean close.
    pub tcp_reset: AtomicU64,
    /// Requests whose client never completed the handshake after the upstream succeeded.
    pub tcp_handshake_failed: AtomicU64,
    /// Bytes client → upstream, of finished TCP flows.
    pub tcp_bytes_up: AtomicU64,
    /// Bytes upstream → client, of finished TCP flows.
    pub tcp_bytes_down: AtomicU64,
    /// UDP flows with a live upstream socket.
    pub udp_open: AtomicU64,
    /// UDP flows created, in total.
    pub udp_flows: AtomicU64,
    /// UDP datagrams client → upstream.
    pub udp_datagrams_up: AtomicU64,
    /// UDP datagrams upstream → client.
    pub udp_datagrams_down: AtomicU64,
    /// UDP datagrams dropped (upstream socket failed, or no room to send).
    pub udp_dropped: AtomicU64,
    /// UDP datagrams the upstream refused (port unreachable), refused to the client.
    pub udp_refused: AtomicU64,
}

impl FlowStats {
    fn json(&self) -> serde_json::Value {
        let g = |a: &AtomicU64| a.load(Relaxed);
        serde_json::json!({
            "tcp": {
                "open": { "connecting": g(&self.tcp_connecting), "spliced": g(&self.tcp_open) },
                "forwarded": g(&self.tcp_forwarded),
                "refused": g(&self.tcp_refused),
                "reset": g(&self.tcp_reset),
                "handshake_failed": g(&self.tcp_handshake_failed),
                "bytes_up": g(&self.tcp_bytes_up),
                "bytes_down": g(&self.tcp_bytes_down),
            },
            "udp": {
                "open": g(&self.udp_open),
                "flows": g(&self.udp_flows),
                "datagrams_up": g(&self.udp_datagrams_up),
                "datagrams_down": g(&self.udp_datagrams_down),
                "dropped": g(&self.udp_dropped),
                "refused": g(&self.udp_refused),
            },
        })
    }
}

/// A forwarder on a stack: [`Forwarder::run`] serves until
/// dropped; [`Forwarder::stats_json`] reports.
#[derive(Clone, Debug)]
pub struct Forwarder {
    stack: Stack,
    cfg: ForwardConfig,
    stats: Arc<FlowStats>,
}

impl Forwarder {
    /// A forwarder for the connections `stack` intercepts.
    pub fn new(stack: Stack, cfg: ForwardConfig) -> Self {
        Forwarder { stack, cfg, stats: Arc::default() }
    }

    /// The stack it forwards for.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// The configuration.
    pub fn config(&self) -> &ForwardConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> &FlowStats {
        &self.stats
    }

    /// The forwarder's flows (open per state, totals) and the stack's connections per TCP
    /// state and totals, as one pretty JSON object.
    pub fn stats_json(&self) -> String {
        let mut v = serde_json::json!({
            "flows": self.stats.json(),
            "stack_connections": self.stack.state_counts(),
        });
        v["stack"] = serde_json::to_value(self.stack.totals()).expect("counters serialize");
        let mut out = serde_json::to_string_pretty(&v).expect("a JSON value serializes");
        out.push('\n');
        out
    }

    /// Turn interception on (TCP in decide-first mode, and UDP) and return the future that
    /// forwards every flow until it is dropped (which turns interception off). Datagrams and
    /// SYNs that arrive between the two are queued, not lost.
    ///
    /// # Errors
    /// `AddrInUse` if the stack already intercepts.
    pub fn start(self) -> io::Result<impl Future<Output = io::Result<()>> + Send + 'static> {
        // Room for bursts of new flows: a thousand clients dialling at once must not find
        // the pending table (default 1024) or the accept queue full.
        let opts = InterceptOptions {
            max_pending: 4096,
            listen: ListenOptions { backlog: 4096, ..ListenOptions::default() },
            ..InterceptOptions::default()
        };
        let tcp = self.stack.intercept_with(opts)?;
        let udp = self.stack.intercept_udp()?;
        Ok(async move {
            let udp = self.clone().serve_udp(udp);
            tokio::try_join!(self.serve_tcp(tcp), udp).map(|_| ())
        })
    }

    /// [`Forwarder::start`], then serve.
    ///
    /// # Errors
    /// As [`Forwarder::start`].
    pub async fn run(self) -> io::Result<()> {
        self.start()?.await
    }

    /// The engine configuration a forwarder's stack wants: Linux's defaults, with UDP
    /// socket buffers of 4 MiB, as the one interception socket carries every UDP flow.
    pub fn stack_config() -> EndpointConfig {
        EndpointConfig { udp_rcvbuf: 4 << 20, udp_sndbuf: 4 << 20, ..EndpointConfig::default() }
    }

    /// Forward each TCP connection request `interceptor` yields on a task of its own.
    async fn serve_tcp(self, interceptor: Interceptor) -> io::Result<()> {
        loop {
            let req = interceptor.next().await;
            tokio::spawn(self.clone().forward_tcp(req));
        }
    }

    /// One TCP flow: connect upstream, then complete or refuse the client's request, then
    /// splice until both directions closed (or either side reset).
    async fn forward_tcp(self, req: InterceptRequest) {
        let (client, dst) = (req.peer_addr(), req.local_addr());
        let start = Instant::now();
        self.stats.tcp_connecting.fetch_add(1, Relaxed);
        let upstream = tokio::time::timeout(self.cfg.connect_timeout, self.connect(dst)).await;
        self.stats.tcp_connecting.fetch_sub(1, Relaxed);
        let upstream = match upstream {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return self.refuse(req, &e),
            Err(_) => return self.refuse(req, &io::ErrorKind::TimedOut.into()),
        };
        let ours = match req.accept().await {
            Ok(s) => s,
            Err(e) => {
                self.stats.tcp_handshake_failed.fetch_add(1, Relaxed);
                tracing::info!(%client, %dst, error = %e, "tcp flow: client handshake failed");
                return;
            }
        };
        self.stats.tcp_open.fetch_add(1, Relaxed);
        self.stats.tcp_forwarded.fetch_add(1, Relaxed);
        let (mut ours, mut theirs) = (ours, upstream);
        let Spliced { up, down, result } = splice(&mut ours, &mut theirs).await;
        self.stats.tcp_open.fetch_sub(1, Relaxed);
        self.stats.tcp_bytes_up.fetch_add(up, Relaxed);
        self.stats.tcp_bytes_down.fetch_add(down, Relaxed);
        let took = start.elapsed();
        match result {
            Ok(()) => tracing::info!(%client, %dst, up, down, ?took, "tcp flow: closed"),
            Err(e) => {
                // Carry the reset through: abort both sides rather than close them.
                self.stats.tcp_reset.fetch_add(1, Relaxed);
                let _ = ours.set_zero_linger();
                let _ = theirs.set_zero_linger();
                tracing::info!(%client, %dst, up, down, ?took, error = %e, "tcp flow: reset");
            }
        }
    }

    /// Refuse a request whose upstream connect failed, as the network would have answered
    /// the client: RST for a refused port, ICMP host unreachable otherwise.
    fn refuse(&self, req: InterceptRequest, e: &io::Error) {
        let how = match e.kind() {
            io::ErrorKind::ConnectionRefused => Refusal::Reset,
            _ => Refusal::HostUnreachable,
        };
        self.stats.tcp_refused.fetch_add(1, Relaxed);
        let (client, dst) = (req.peer_addr(), req.local_addr());
        tracing::info!(%client, %dst, error = %e, refusal = ?how, "tcp flow: refused");
        req.refuse(how);
    }

    /// A kernel TCP connection to `dst`, marked with the configured `SO_MARK`.
    async fn connect(&self, dst: SocketAddr) -> io::Result<tokio::net::TcpStream> {
        let sock = if dst.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        if let Some(mark) = self.cfg.fwmark {
            set_mark(&sock, mark)?;
        }
        sock.connect(dst).await
    }
}

/// `SO_MARK` on a kernel socket (needs CAP_NET_ADMIN), for policy routing.
pub(crate) fn set_mark(sock: &impl AsRawFd, mark: u32) -> io::Result<()> {
    // SAFETY: `setsockopt` reads `size_of::<u32>()` bytes from a live `u32` on a socket
    // descriptor the caller owns for the duration of the call.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&mark as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

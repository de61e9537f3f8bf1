//! An HTTP/1.1 server (hyper) on the userspace stack, attached to the host through a TUN
//! interface. Needs root (or CAP_NET_ADMIN) to create the interface.
//!
//! ```text
//! sudo cargo run --release --example http_server -- [--tun NAME] [--kernel-ip CIDR] [--ip ADDR]
//!     [--port N] [--mtu N] [--offload] [--syn-cookies never|when-full|always] [--backlog N]
//! curl http://10.77.0.2:8080/
//! ```
//!
//! Defaults: `tcptun0`, kernel side `10.77.0.1/24`, stack `10.77.0.2`, port 8080, MTU 1500.
//! Routes: `/` (a greeting), `/bytes/N` (N bytes, byte i = i mod 251), `POST /echo` (the
//! request body back), `/stats` (the stack's and the device's counters). Serves until killed.

#[cfg(target_os = "linux")]
mod app {
    use std::convert::Infallible;
    use std::net::{IpAddr, SocketAddr};
    use std::pin::Pin;
    use std::process::ExitCode;
    use std::sync::OnceLock;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use http_body_util::{combinators::BoxBody, BodyExt, Full};
    use hyper::body::{Body, Frame, Incoming, SizeHint};
    use hyper::{Method, Request, Response, StatusCode};
    use hyper_util::rt::TokioIo;
    use tcp_tokio::{ListenOptions, Stack, SynCookies};
    use tcp_tun::{Tun, TunStatsHandle};

    const USAGE: &str = "usage: http_server [--tun NAME] [--kernel-ip CIDR] [--ip ADDR] [--port N] \
                         [--mtu N] [--offload] [--syn-cookies never|when-full|always] [--backlog N]";

    struct Args {
        tun: String,
        kernel_ip: IpAddr,
        prefix: u8,
        ip: IpAddr,
        port: u16,
        mtu: usize,
        offload: bool,
        syn_cookies: SynCookies,
        backlog: Option<u32>,
    }

    fn parse_args() -> Result<Args, String> {
        let mut a = Args {
            tun: "tcptun0".into(),
            kernel_ip: [10, 77, 0, 1].into(),
            prefix: 24,
            ip: [10, 77, 0, 2].into(),
            port: 8080,
            mtu: 1500,
            offload: false,
            syn_cookies: SynCookies::default(),
            backlog: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--tun" => a.tun = value()?,
                "--kernel-ip" => (a.kernel_ip, a.prefix) = parse_cidr(&value()?)?,
                "--ip" => a.ip = value()?.parse().map_err(|e| format!("--ip: {e}"))?,
                "--port" => a.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
                "--mtu" => a.mtu = value()?.parse().map_err(|e| format!("--mtu: {e}"))?,
                "--offload" => a.offload = true,
                "--syn-cookies" => {
                    a.syn_cookies = match value()?.as_str() {
                        "never" => SynCookies::Never,
                        "when-full" => SynCookies::WhenFull,
                        "always" => SynCookies::Always,
                        other => return Err(format!("--syn-cookies: unknown policy {other:?}")),
                    }
                }
                "--backlog" => {
                    a.backlog = Some(value()?.parse().map_err(|e| format!("--backlog: {e}"))?)
                }
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(a)
    }

    fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
        let (ip, prefix) = s.split_once('/').unwrap_or((s, ""));
        let ip: IpAddr = ip.parse().map_err(|e| format!("--kernel-ip {s:?}: {e}"))?;
        let prefix = if prefix.is_empty() {
            if ip.is_ipv4() {
                24
            } else {
                64
            }
        } else {
            prefix.parse().map_err(|e| format!("--kernel-ip {s:?}: prefix: {e}"))?
        };
        Ok((ip, prefix))
    }

    pub(crate) fn main() -> ExitCode {
        let args = match parse_args() {
            Ok(a) => a,
            Err(e) => {
                if !e.is_empty() {
                    eprintln!("http_server: {e}");
                }
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        };
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        match rt.block_on(serve(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("http_server: {e}");
                ExitCode::FAILURE
            }
        }
    }

    async fn serve(a: Args) -> std::io::Result<()> {
        let tun = Tun::builder()
            .name(&a.tun)
            .kernel_address(a.kernel_ip, a.prefix)
            .mtu(a.mtu)
            .offload(a.offload)
            .build()?;
        let tun_stats = tun.stats();
        let name = tun.name().to_owned();
        let stack = Stack::builder().address(a.ip).build(tun)?;
        let mut opts = ListenOptions { syn_cookies: a.syn_cookies, ..ListenOptions::default() };
        if let Some(b) = a.backlog {
            opts.backlog = b;
        }
        let listener = stack.bind_with(SocketAddr::new(a.ip, a.port), opts).await?;
        let url = match a.ip {
            IpAddr::V4(ip) => format!("http://{ip}:{}", a.port),
            IpAddr::V6(ip) => format!("http://[{ip}]:{}", a.port),
        };
        println!(
            "{name}: kernel side {}/{}, offload {}; listening on {url}",
            a.kernel_ip,
            a.prefix,
            if a.offload { "on" } else { "off" }
        );
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            let stack = stack.clone();
            let tun_stats = tun_stats.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let stack = stack.clone();
                    let tun_stats = tun_stats.clone();
                    async move { Ok::<_, Infallible>(route(req, &stack, &tun_stats)) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    eprintln!("{peer}: {e}");
                }
            });
        }
    }

    type RespBody = BoxBody<Bytes, hyper::Error>;

    fn full(s: impl Into<Bytes>) -> RespBody {
        Full::new(s.into()).map_err(|never| match never {}).boxed()
    }

    fn route(req: Request<Incoming>, stack: &Stack, tun: &TunStatsHandle) -> Response<RespBody> {
        let path = req.uri().path().to_owned();
        match (req.method(), path.as_str()) {
            (&Method::GET, "/") => Response::new(full(
                "hello from a userspace TCP stack on a TUN\n\
                 try /bytes/N, POST /echo, /stats\n",
            )),
            (&Method::GET, p) if p.starts_with("/bytes/") => match p["/bytes/".len()..].parse() {
                Ok(n) => Response::new(PatternBody { at: 0, len: n }.boxed()),
                Err(_) => status(StatusCode::BAD_REQUEST, "/bytes/N takes a byte count\n"),
            },
            (&Method::POST, "/echo") => Response::new(req.into_body().boxed()),
            (&Method::GET, "/stats") => Response::new(full(format!(
                "connections: {}\n{:#?}\n{:#?}\n",
                stack.connection_count(),
                stack.stats(),
                tun.get()
            ))),
            _ => status(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    fn status(code: StatusCode, msg: &'static str) -> Response<RespBody> {
        let mut r = Response::new(full(msg));
        *r.status_mut() = code;
        r
    }

    const CHUNK: usize = 64 * 1024;

    /// `len` bytes where byte i is `i mod 251`, in 64 KiB frames.
    struct PatternBody {
        at: u64,
        len: u64,
    }

    impl Body for PatternBody {
        type Data = Bytes;
        type Error = hyper::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
            if self.at >= self.len {
                return Poll::Ready(None);
            }
            static PATTERN: OnceLock<Bytes> = OnceLock::new();
            let pattern = PATTERN.get_or_init(|| {
                (0..251 + CHUNK).map(|i| (i % 251) as u8).collect::<Vec<_>>().into()
            });
            let n = (self.len - self.at).min(CHUNK as u64) as usize;
            let start = (self.at % 251) as usize;
            self.at += n as u64;
            // A view of the shared pattern: no copy.
            Poll::Ready(Some(Ok(Frame::data(pattern.slice(start..start + n)))))
        }

        fn is_end_stream(&self) -> bool {
            self.at >= self.len
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(self.len - self.at)
        }
    }
}

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    app::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("http_server needs a Linux TUN device");
    std::process::exit(1);
}

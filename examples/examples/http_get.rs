//! Fetch a URL over the userspace stack through a TUN interface and write the body to
//! stdout; exits 0 on a 2xx status. Needs root (or CAP_NET_ADMIN) to create the interface.
//!
//! ```text
//! cargo build --release --example http_get
//! sudo ./target/release/examples/http_get [--tun NAME] [--kernel-ip CIDR] [--ip ADDR] URL
//! ```
//!
//! Defaults: `tcptun0`, kernel side `10.77.0.1/24`, stack `10.77.0.2`. The URL is
//! `http://HOST[:PORT][/PATH]` with HOST an IP address reachable through the interface,
//! usually the kernel side itself (e.g. a `python3 -m http.server --bind 10.77.0.1`).

#[cfg(target_os = "linux")]
mod app {
    use std::net::{IpAddr, SocketAddr};
    use std::process::ExitCode;

    use bytes::Bytes;
    use examples::cli::TunArgs;
    use http_body_util::{BodyExt, Empty};
    use hyper::Request;
    use hyper_util::rt::TokioIo;
    use std::io::Write;
    use tcp_tokio::Stack;
    use tcp_tun::Tun;

    const USAGE: &str =
        "usage: http_get [--tun NAME] [--kernel-ip CIDR] [--ip ADDR] http://HOST[:PORT][/PATH]";

    struct Args {
        at: TunArgs,
        url: String,
    }

    fn parse_args() -> Result<Args, String> {
        let mut a = Args { at: TunArgs::default(), url: String::new() };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
            if a.at.take(&arg, &mut value)? {
                continue;
            }
            match arg.as_str() {
                "-h" | "--help" => return Err(String::new()),
                s if s.starts_with("--") => return Err(format!("unknown option {s:?}")),
                s if a.url.is_empty() => a.url = s.to_owned(),
                s => return Err(format!("unexpected argument {s:?}")),
            }
        }
        if a.url.is_empty() {
            return Err("a URL is required".into());
        }
        Ok(a)
    }

    /// `http://HOST[:PORT][/PATH]` → (address, host header, path).
    fn parse_url(url: &str) -> Result<(SocketAddr, String, String), String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = if let Ok(a) = authority.parse::<SocketAddr>() {
            a
        } else {
            let host = authority.trim_start_matches('[').trim_end_matches(']');
            let ip: IpAddr = host
                .parse()
                .map_err(|_| format!("{url:?}: the host must be an IP address (no DNS here)"))?;
            SocketAddr::new(ip, 80)
        };
        Ok((addr, authority.to_owned(), path.to_owned()))
    }

    pub(crate) fn main() -> ExitCode {
        let args = match examples::cli::args_or_usage("http_get", USAGE, parse_args()) {
            Ok(a) => a,
            Err(code) => return code,
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        match rt.block_on(get(args)) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("http_get: {e}");
                ExitCode::FAILURE
            }
        }
    }

    async fn get(a: Args) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        let (addr, host, path) = parse_url(&a.url)?;
        let at = &a.at;
        let tun = Tun::builder().name(&at.tun).kernel_address(at.kernel_ip, at.prefix).build()?;
        let stack = Stack::builder().address(at.ip).build(tun)?;
        let stream = stack.connect(addr).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let conn = tokio::spawn(conn);
        let req = Request::get(path)
            .header(hyper::header::HOST, host)
            .header(hyper::header::USER_AGENT, "tcp-tokio-http_get")
            .body(Empty::<Bytes>::new())?;
        let mut resp = sender.send_request(req).await?;
        let ok = resp.status().is_success();
        if !ok {
            eprintln!("http_get: {}", resp.status());
        }
        let mut out = std::io::stdout().lock();
        while let Some(frame) = resp.body_mut().frame().await {
            if let Ok(data) = frame?.into_data() {
                out.write_all(&data)?;
            }
        }
        out.flush()?;
        drop(sender);
        let _ = conn.await;
        Ok(ok)
    }
}

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    app::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("http_get needs a Linux TUN device");
    std::process::exit(1);
}

//! An HTTP/1.1 server (hyper) on the userspace stack, attached to the host through a TUN
//! interface. Needs root (or CAP_NET_ADMIN) to create the interface.
//!
//! ```text
//! cargo build --release --example http_server
//! sudo ./target/release/examples/http_server [--tun NAME] [--kernel-ip CIDR] [--ip ADDR]
//!     [--port N] [--mtu N] [--offload] [--syn-cookies never|when-full|always] [--backlog N]
//! curl http://10.77.0.2:8080/
//! ```
//!
//! Defaults: `tcptun0`, kernel side `10.77.0.1/24`, stack `10.77.0.2`, port 8080, MTU 1500.
//! Routes: `/` (a greeting), `/bytes/N` (N bytes, byte i = i mod 251), `POST /echo` (the
//! request body back), `/stats` (the stack's counters as JSON), `/connections` (connections
//! per state and each one's `TcpInfo`): the routes of `http_demo`, from the `examples`
//! library. Serves until killed.

#[cfg(target_os = "linux")]
mod app {
    use std::net::{IpAddr, SocketAddr};
    use std::process::ExitCode;

    use examples::cli::TunArgs;
    use tcp_tokio::{ListenOptions, Stack, SynCookies};
    use tcp_tun::Tun;

    const USAGE: &str = "usage: http_server [--tun NAME] [--kernel-ip CIDR] [--ip ADDR] [--port N] \
                         [--mtu N] [--offload] [--syn-cookies never|when-full|always] [--backlog N]";

    struct Args {
        at: TunArgs,
        port: u16,
        mtu: usize,
        offload: bool,
        syn_cookies: SynCookies,
        backlog: Option<u32>,
    }

    fn parse_args() -> Result<Args, String> {
        let mut a = Args {
            at: TunArgs::default(),
            port: 8080,
            mtu: 1500,
            offload: false,
            syn_cookies: SynCookies::default(),
            backlog: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            if a.at.take(&flag, &mut value)? {
                continue;
            }
            match flag.as_str() {
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

    pub(crate) fn main() -> ExitCode {
        match examples::cli::args_or_usage("http_server", USAGE, parse_args()) {
            Ok(args) => examples::cli::run_multi_thread("http_server", serve(args)),
            Err(code) => code,
        }
    }

    async fn serve(a: Args) -> std::io::Result<()> {
        let TunArgs { tun, kernel_ip, prefix, ip } = a.at;
        let tun = Tun::builder()
            .name(&tun)
            .kernel_address(kernel_ip, prefix)
            .mtu(a.mtu)
            .offload(a.offload)
            .build()?;
        let name = tun.name().to_owned();
        let stack = Stack::builder().address(ip).build(tun)?;
        let mut opts = ListenOptions { syn_cookies: a.syn_cookies, ..ListenOptions::default() };
        if let Some(b) = a.backlog {
            opts.backlog = b;
        }
        let listener = stack.bind_with(SocketAddr::new(ip, a.port), opts).await?;
        let url = match ip {
            IpAddr::V4(ip) => format!("http://{ip}:{}", a.port),
            IpAddr::V6(ip) => format!("http://[{ip}]:{}", a.port),
        };
        println!(
            "{name}: kernel side {}/{}, offload {}; listening on {url}",
            kernel_ip,
            prefix,
            if a.offload { "on" } else { "off" }
        );
        // The same routes as http_demo: /, /bytes/N, POST /echo, /stats, /connections.
        examples::serve(stack, listener).await
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

//! A transparent forwarder (the core of a tun2socks proxy or a VPN client): every TCP
//! connection and UDP flow that arrives on a TUN, to any address, is connected to the same
//! destination with the kernel's own sockets and spliced. Needs root (or CAP_NET_ADMIN).
//!
//! ```text
//! cargo build --release --example tun_forward
//! sudo ./target/release/examples/tun_forward [--tun NAME] [--kernel-ip CIDR] [--ip ADDR]
//!     [--mtu N] [--offload] [--udp-idle SECS] [--fwmark N]
//! ```
//!
//! Defaults: `tcptun0`, kernel side `10.77.0.1/24`, stack `10.77.0.2`, MTU 1500, UDP flows
//! idle out after 60 s, no mark. The stack decides on each TCP connection request before
//! its handshake: the SYN-ACK goes out only once the kernel's connect to the destination
//! succeeded; a refused port is refused with a RST, an unreachable or silent destination
//! (30 s) with ICMP host unreachable.
//!
//! The example never changes routes. Route what should go through it into the TUN, and
//! keep its own traffic out with `--fwmark N` and a policy rule, for instance for a
//! namespace whose uplink is `eth0` via `192.0.2.1`:
//!
//! ```text
//! ip route add default via 192.0.2.1 dev eth0 table 100
//! ip rule add fwmark 1 lookup 100
//! sudo tun_forward --fwmark 1 &
//! ip route replace default dev tcptun0
//! ```
//!
//! Each flow is logged at `info` when it ends (4-tuple, bytes each way, duration, how it
//! ended); `TUN_FORWARD_LOG=debug` shows more. `kill -USR1 <pid>` prints the flows open
//! per state, the totals and the stack's counters as JSON on stdout.

#[cfg(target_os = "linux")]
mod app {
    use std::process::ExitCode;
    use std::time::Duration;

    use examples::cli::TunArgs;
    use examples::forward::{ForwardConfig, Forwarder};
    use tcp_tokio::Stack;
    use tcp_tun::Tun;
    use tokio::signal::unix::{signal, SignalKind};

    const USAGE: &str = "usage: tun_forward [--tun NAME] [--kernel-ip CIDR] [--ip ADDR] [--mtu N] \
                         [--offload] [--udp-idle SECS] [--fwmark N]";

    struct Args {
        at: TunArgs,
        mtu: usize,
        offload: bool,
        cfg: ForwardConfig,
    }

    fn parse_args() -> Result<Args, String> {
        let mut a = Args {
            at: TunArgs::default(),
            mtu: 1500,
            offload: false,
            cfg: ForwardConfig::default(),
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            if a.at.take(&flag, &mut value)? {
                continue;
            }
            match flag.as_str() {
                "--mtu" => a.mtu = value()?.parse().map_err(|e| format!("--mtu: {e}"))?,
                "--offload" => a.offload = true,
                "--udp-idle" => {
                    let secs = value()?.parse().map_err(|e| format!("--udp-idle: {e}"))?;
                    a.cfg.udp_idle = Duration::from_secs(secs);
                }
                "--fwmark" => {
                    a.cfg.fwmark = Some(value()?.parse().map_err(|e| format!("--fwmark: {e}"))?)
                }
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(a)
    }

    pub(crate) fn main() -> ExitCode {
        match examples::cli::args_or_usage("tun_forward", USAGE, parse_args()) {
            Ok(args) => {
                examples::log::StderrLog::install_from_env("TUN_FORWARD_LOG");
                examples::cli::run_multi_thread("tun_forward", forward(args))
            }
            Err(code) => code,
        }
    }

    async fn forward(a: Args) -> std::io::Result<()> {
        let TunArgs { tun, kernel_ip, prefix, ip } = a.at;
        let tun = Tun::builder()
            .name(&tun)
            .kernel_address(kernel_ip, prefix)
            .mtu(a.mtu)
            .offload(a.offload)
            .build()?;
        let name = tun.name().to_owned();
        let stack = Stack::builder().address(ip).config(Forwarder::stack_config()).build(tun)?;
        let fwd = Forwarder::new(stack, a.cfg);
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let stats = fwd.clone();
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                print!("{}", stats.stats_json());
            }
        });
        let mark = a.cfg.fwmark.map_or("none".into(), |m| m.to_string());
        println!(
            "{name}: kernel side {kernel_ip}/{prefix}, stack {ip}, offload {}, fwmark {mark}; \
             forwarding TCP and UDP to any address (SIGUSR1: stats)",
            if a.offload { "on" } else { "off" }
        );
        fwd.run().await
    }
}

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    app::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("tun_forward needs a Linux TUN device");
    std::process::exit(1);
}

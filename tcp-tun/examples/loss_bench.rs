//! Goodput under random loss: a router namespace forwards between the kernel (a host
//! namespace), our stack (on a TUN in the router) and a second kernel host, and iptables
//! drops each MTU-sized packet with probability p (1 % and 5 %) once in each direction of
//! every path (see `Net::set_drop`). Measures kernel → stack and stack → kernel over the TUN
//! (offloads off and on) and Linux → Linux over the veths, all in one run. Needs root;
//! everything happens in namespaces the bench creates and deletes (nothing touches the
//! host's interfaces or tables).
//!
//! ```text
//! sudo cargo run --release -p tcp-tun --example loss_bench -- [--mib N] [--runs R] [--kernel-cc NAME] [--verbose]
//! ```
//! Prints a Markdown table of goodput (Mbit/s of payload, median of R runs of N MiB; defaults
//! 32 MiB and 3 runs). The kernel senders use `--kernel-cc` (default `cubic`, Linux's default
//! and our stack's). `--verbose` prints the stack sender's `TcpInfo` and the kernel sender's
//! `ss -ti` halfway through each transfer.

#[cfg(target_os = "linux")]
mod bench_sys;

#[cfg(target_os = "linux")]
mod bench {
    use crate::bench_sys::{enter, run, set_cc};
    use std::io::{self, Read, Write};
    use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    use tcp_tokio::Stack;
    use tcp_tun::Tun;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The stack's TUN, in the router namespace: the router's end and the stack.
    const TUN_ROUTER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
    const STACK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
    /// The kernel host talking to the stack, and the second kernel host (Linux ↔ Linux).
    const HOST1: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
    const HOST2: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 2);
    const TUN: &str = "lossb0";
    const CHUNK: usize = 256 * 1024;

    /// Run `f` on a new thread inside namespace `ns`.
    fn in_ns<R: Send + 'static>(
        ns: &str,
        f: impl FnOnce() -> io::Result<R> + Send + 'static,
    ) -> std::thread::JoinHandle<io::Result<R>> {
        let ns = ns.to_owned();
        std::thread::spawn(move || {
            enter(&ns)?;
            f()
        })
    }

    /// The three namespaces, deleted on drop (with their devices and iptables rules).
    ///
    /// ```text
    ///   host1 (10.78.0.2) ──veth── router ──veth── host2 (10.79.0.2)
    ///                                │ TUN lossb0 (10.77.0.1) ── the stack (10.77.0.2)
    /// ```
    /// The router forwards; iptables drops each packet with probability p once per direction
    /// (`Net::set_drop`), so every path (host1 ↔ stack, host1 ↔ host2) sees the same loss,
    /// and every drop is a loss on the wire. (A DROP in the sender's own OUTPUT chain is not: Linux's TCP sees
    /// the local error and sends the segment again at once, without any loss recovery.)
    struct Net {
        router: String,
        host1: String,
        host2: String,
    }

    impl Drop for Net {
        fn drop(&mut self) {
            for ns in [&self.router, &self.host1, &self.host2] {
                let _ = run(&["ip", "netns", "del", ns]);
            }
        }
    }

    impl Net {
        fn new() -> io::Result<Net> {
            let id = std::process::id();
            let net = Net {
                router: format!("tcptun-loss-r-{id}"),
                host1: format!("tcptun-loss-h1-{id}"),
                host2: format!("tcptun-loss-h2-{id}"),
            };
            let (r, h1, h2) = (&net.router, &net.host1, &net.host2);
            for ns in [r, h1, h2] {
                run(&["ip", "netns", "add", ns])?;
                run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            }
            for (h, rdev, hdev, net3) in
                [(h1, "vr1", "vh1", "10.78.0"), (h2, "vr2", "vh2", "10.79.0")]
            {
                run(&[
                    "ip", "-n", r, "link", "add", rdev, "type", "veth", "peer", "name", hdev,
                    "netns", h,
                ])?;
                run(&["ip", "-n", r, "addr", "add", &format!("{net3}.1/24"), "dev", rdev])?;
                run(&["ip", "-n", h, "addr", "add", &format!("{net3}.2/24"), "dev", hdev])?;
                // One MTU-sized packet per skb, so the drop rule sees packets, not 64 KiB
                // TSO super-packets.
                for (ns, dev) in [(r, rdev), (h, hdev)] {
                    run(&["ip", "-n", ns, "link", "set", dev, "mtu", "1500", "gso_max_segs", "1"])?;
                    run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
                }
                run(&["ip", "-n", h, "route", "add", "default", "via", &format!("{net3}.1")])?;
            }
            run(&["ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
            Ok(net)
        }

        /// Drop each packet with probability `p`, once per direction, where packets are
        /// MTU-sized: in the router's FORWARD chain for everything but what the stack sends,
        /// and in host1's INPUT chain for what the stack sends. (The router sees the stack's
        /// packets as they entered from the TUN: as GSO super-segments with offloads, and
        /// GRO'd by the TUN's NAPI without them, so one drop there would take out many
        /// segments at once. Host1 gets them cut to MTU size by the router's veth.)
        fn set_drop(&self, p: f64) -> io::Result<()> {
            let p = format!("{p}");
            let random = ["-m", "statistic", "--mode", "random", "--probability", &p, "-j", "DROP"];
            let stack = STACK.to_string();
            let from_stack: &[&str] = &["-s", &stack];
            for (ns, chain, matching) in [
                (&self.router, "FORWARD", &["!", "-i", TUN][..]),
                (&self.host1, "INPUT", from_stack),
            ] {
                let _ = run(&["ip", "netns", "exec", ns, "iptables", "-F", chain]);
                let mut args = vec!["ip", "netns", "exec", ns, "iptables", "-A", chain];
                args.extend(matching);
                args.extend(random);
                run(&args)?;
            }
            Ok(())
        }
    }

    /// The kernel sender's `ss -ti` line for connections to `port`, in the calling thread's
    /// namespace.
    fn ss(port: u16) -> String {
        run(&["ss", "-tinH", "state", "established", &format!("( dport = :{port} )")])
            .unwrap_or_else(|e| e.to_string())
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn mbps(bytes: u64, d: Duration) -> f64 {
        bytes as f64 * 8.0 / d.as_secs_f64() / 1e6
    }

    /// Connect to `to`, send `total` bytes with congestion control `cc`, sample `ss -ti`
    /// halfway if `verbose`, and wait for the peer's close.
    fn kernel_send(to: (Ipv4Addr, u16), total: u64, cc: &str, verbose: bool) -> io::Result<String> {
        let mut s = TcpStream::connect(to)?;
        set_cc(&s, cc)?;
        let buf = vec![7u8; CHUNK];
        let mut sent = 0;
        let mut info = String::new();
        while sent < total {
            let n = (total - sent).min(CHUNK as u64) as usize;
            s.write_all(&buf[..n])?;
            sent += n as u64;
            if verbose && info.is_empty() && sent >= total / 2 {
                info = ss(to.1);
            }
        }
        s.shutdown(Shutdown::Write)?;
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)?;
        Ok(info)
    }

    fn kernel_recv(mut s: TcpStream) -> io::Result<u64> {
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0;
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(got);
            }
            got += n as u64;
        }
    }

    /// (kernel → stack, stack → kernel) durations for `total` bytes between host1 and the
    /// stack on the router's TUN.
    fn tun_run(
        net: &Net,
        offload: bool,
        total: u64,
        cc: &'static str,
        verbose: bool,
    ) -> (Duration, Duration) {
        let host1 = net.host1.clone();
        in_ns(&net.router, move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let tun = Tun::builder()
                    .name(TUN)
                    .kernel_address(TUN_ROUTER.into(), 24)
                    .mtu(1500)
                    .offload(offload)
                    .build()?;
                let tun_stats = tun.stats();
                let stack = Stack::builder().address(STACK.into()).build(tun)?;

                let listener = stack.bind(SocketAddr::from((STACK, 5001))).await?;
                let start = Instant::now();
                let client = in_ns(&host1, move || kernel_send((STACK, 5001), total, cc, verbose));
                let (mut s, _) = listener.accept().await?;
                let mut buf = vec![0u8; CHUNK];
                let mut got = 0u64;
                loop {
                    let n = s.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    got += n as u64;
                }
                let down = start.elapsed();
                assert_eq!(got, total);
                s.shutdown().await?;
                drop(s);
                while !client.is_finished() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let ss_down = client.join().unwrap()?;

                let (tx, rx) = tokio::sync::oneshot::channel();
                let server = in_ns(&host1, move || {
                    let l = TcpListener::bind((HOST1, 5002))?;
                    let _ = tx.send(());
                    kernel_recv(l.accept()?.0)
                });
                rx.await.map_err(io::Error::other)?;
                let start = Instant::now();
                let mut c = stack.connect(SocketAddr::from((HOST1, 5002))).await?;
                let data = vec![7u8; CHUNK];
                let mut sent = 0u64;
                let mut mid = None;
                while sent < total {
                    let n = (total - sent).min(CHUNK as u64) as usize;
                    c.write_all(&data[..n]).await?;
                    sent += n as u64;
                    if mid.is_none() && sent >= total / 2 {
                        mid = Some(c.info());
                    }
                }
                c.shutdown().await?;
                while !server.is_finished() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let up = start.elapsed();
                assert_eq!(server.join().unwrap()?, total);
                if verbose {
                    let tag = format!("offload={offload}");
                    eprintln!("[{tag}] kernel sender (kernel → stack) halfway: {ss_down}");
                    eprintln!("[{tag}] stack sender (stack → kernel) halfway: {mid:?}");
                    eprintln!("[{tag}] stack sender (stack → kernel) at the end: {:?}", c.info());
                    eprintln!("[{tag}] TUN: {:?}", tun_stats.get());
                }
                Ok((down, up))
            })
        })
        .join()
        .unwrap()
        .expect("TUN run")
    }

    /// The kernel's TCP from host1 to host2 through the router.
    fn veth_run(net: &Net, total: u64, cc: &'static str, verbose: bool) -> io::Result<Duration> {
        let (tx, rx) = std::sync::mpsc::channel();
        let server = in_ns(&net.host2, move || {
            let l = TcpListener::bind((HOST2, 5003))?;
            tx.send(()).unwrap();
            kernel_recv(l.accept()?.0)
        });
        rx.recv().map_err(io::Error::other)?;
        let start = Instant::now();
        let info = in_ns(&net.host1, move || kernel_send((HOST2, 5003), total, cc, verbose))
            .join()
            .unwrap()?;
        let got = server.join().unwrap()?;
        let d = start.elapsed();
        assert_eq!(got, total);
        if verbose {
            eprintln!("[veth] kernel sender halfway: {info}");
        }
        Ok(d)
    }

    fn median(mut v: Vec<Duration>) -> Duration {
        v.sort();
        v[v.len() / 2]
    }

    pub(crate) fn main() {
        // SAFETY: `geteuid` takes no arguments and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("loss_bench needs root to create network namespaces and TUN devices");
            std::process::exit(1);
        }
        let (mut mib, mut runs, mut verbose, mut cc) = (32u64, 3usize, false, "cubic");
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--mib" => mib = args.next().and_then(|v| v.parse().ok()).expect("--mib N"),
                "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs R"),
                "--kernel-cc" => {
                    cc = String::leak(args.next().expect("--kernel-cc NAME"));
                }
                "--verbose" => verbose = true,
                "--bench" => {}
                other => panic!(
                    "unknown argument {other:?}; usage: loss_bench [--mib N] [--runs R] [--kernel-cc NAME] [--verbose]"
                ),
            }
        }
        let total = mib << 20;
        let net = Net::new().expect("namespaces");
        println!(
            "| drop each way (MTU 1500, {mib} MiB, median of {runs}, kernel {cc}) | kernel → stack | stack → kernel | Linux → Linux (veth) | stack / Linux (worse direction) |"
        );
        println!("|---|---|---|---|---|");
        for p in [0.01, 0.05] {
            net.set_drop(p).expect("iptables");
            if verbose {
                eprintln!("--- drop {p} ---");
            }
            let veth = mbps(
                total,
                median(
                    (0..runs).map(|_| veth_run(&net, total, cc, verbose).expect("veth")).collect(),
                ),
            );
            for offload in [false, true] {
                let r: Vec<_> =
                    (0..runs).map(|_| tun_run(&net, offload, total, cc, verbose)).collect();
                let down = mbps(total, median(r.iter().map(|r| r.0).collect()));
                let up = mbps(total, median(r.iter().map(|r| r.1).collect()));
                println!(
                    "| {:.0} %, TUN offload {} | {down:.0} Mbit/s | {up:.0} Mbit/s | {veth:.0} Mbit/s | {:.0} % |",
                    p * 100.0,
                    if offload { "on" } else { "off" },
                    down.min(up) / veth * 100.0
                );
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn main() {
    bench::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("loss_bench needs Linux");
}

//! Goodput under random loss: a router namespace forwards between the kernel (a host
//! namespace), our stack (on a TUN in the router) and a second kernel host, and iptables
//! drops each MTU-sized packet with probability p (1 % and 5 %) once in each direction of
//! every path (see `Net::set_drop`). Measures kernel → stack and stack → kernel over the TUN
//! (offloads off and on) and Linux → Linux over the veths, all in one run. Needs root;
//! everything happens in namespaces the bench creates and deletes (nothing touches the
//! host's interfaces or tables).
//!
//! ```text
//! sudo cargo run --release -p tcp-tun --example loss_bench -- [--mib N] [--runs R] [--kernel-cc NAME]
//!     [--stack-cc cubic|bbr|reno] [--loss P,P,..] [--rate MBIT] [--verbose]
//! ```
//! Prints a Markdown table of goodput (Mbit/s of payload, median of R runs of N MiB; defaults
//! 32 MiB and 3 runs). The kernel senders use `--kernel-cc` (default `cubic`, Linux's default
//! and our stack's), the stack `--stack-cc` (default `cubic`). `--loss` lists the drop
//! probabilities measured (default `0.01,0.05`; `0` measures without loss). `--verbose`
//! prints the stack sender's `TcpInfo` and the kernel sender's `ss -ti` halfway through each
//! transfer.
//!
//! `--rate MBIT` (Mbit/s) puts a token bucket (`tc qdisc tbf`, 64 KiB burst, 2 ms of queue)
//! on the router's egress towards each receiver: the TUN for kernel → stack, the veth to
//! host1 for stack → kernel, the veth to host2 for Linux → Linux. Every path then has the
//! same bottleneck at the same point, so the rows compare congestion control rather than
//! CPU. With drops the buckets also cut GSO packets to MTU size (see `tbf`), and the veths
//! carry one packet per skb; without drops the veths carry GSO packets (a kernel sender
//! limited to one MTU-sized packet per skb and pacing with BBR reaches only a few hundred
//! Mbit/s on a small VM). The rounds alternate (veth, TUN offload off, TUN offload on, veth,
//! ...), so drift in the machine's speed shifts every row alike.

#[cfg(target_os = "linux")]
mod bench_sys;

#[cfg(target_os = "linux")]
mod bench {
    use crate::bench_sys::{enter, run, set_cc};
    use std::io::{self, Read, Write};
    use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    use tcp_tokio::{CongestionAlgorithm, Stack};
    use tcp_tun::Tun;
    use tcpcore::EndpointConfig;
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

        /// Drop each packet with probability `p` (none for 0), once per direction, where
        /// packets are MTU-sized: in the router's FORWARD chain for everything but what the stack sends,
        /// and in host1's INPUT chain for what the stack sends. (The router sees the stack's
        /// packets as they entered from the TUN: as GSO super-segments with offloads, and
        /// GRO'd by the TUN's NAPI without them, so one drop there would take out many
        /// segments at once. Host1 gets them cut to MTU size by the `tbf` on the router's veth
        /// to it, see [`tbf`].)
        fn set_drop(&self, p: f64) -> io::Result<()> {
            // Without drops the veths carry GSO packets again: one MTU-sized packet per skb
            // costs a BBR sender a pacing timer per packet, which caps the kernel's at a few
            // hundred Mbit/s on a small VM, below a `--rate` bottleneck.
            let segs = if p > 0.0 { "1" } else { "65535" };
            for (ns, dev) in [
                (&self.router, "vr1"),
                (&self.router, "vr2"),
                (&self.host1, "vh1"),
                (&self.host2, "vh2"),
            ] {
                run(&["ip", "-n", ns, "link", "set", dev, "gso_max_segs", segs])?;
            }
            let p = format!("{p}");
            let random = ["-m", "statistic", "--mode", "random", "--probability", &p, "-j", "DROP"];
            let stack = STACK.to_string();
            let from_stack: &[&str] = &["-s", &stack];
            for (ns, chain, matching) in [
                (&self.router, "FORWARD", &["!", "-i", TUN][..]),
                (&self.host1, "INPUT", from_stack),
            ] {
                let _ = run(&["ip", "netns", "exec", ns, "iptables", "-F", chain]);
                if p == "0" {
                    continue;
                }
                let mut args = vec!["ip", "netns", "exec", ns, "iptables", "-A", chain];
                args.extend(matching);
                args.extend(random);
                run(&args)?;
            }
            Ok(())
        }
    }

    /// A token bucket of `mbit` Mbit/s with 2 ms of queue on `dev` of namespace `ns` (a router
    /// egress), or none for `None`. With `segment` its peak-rate bucket (1 % above the rate)
    /// takes packets of up to ~2.5 kB, so `tbf` cuts every larger GSO packet into MTU-sized
    /// segments and a drop behind it is one segment. (`gso_max_segs 1` does not: the stack's
    /// super-segments come out of the TUN with `gso_segs` unset, which passes that check, and
    /// reach the next hop whole.) The peak bucket releases a packet or two per timer tick,
    /// which costs the router CPU per packet, so it is used only where drops need it.
    fn tbf(ns: &str, dev: &str, mbit: Option<u64>, segment: bool) -> io::Result<()> {
        let Some(mbit) = mbit else {
            let _ = run(&["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root"]);
            return Ok(());
        };
        let (rate, peak) = (format!("{mbit}mbit"), format!("{}mbit", mbit + mbit.div_ceil(100)));
        let mut args = vec![
            "ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate",
            &rate, "burst", "64kb", "latency", "2ms",
        ];
        if segment {
            args.extend(["peakrate", &peak, "mtu", "3000"]);
        }
        run(&args).map(drop)
    }

    /// What the command line chose for every run.
    #[derive(Clone, Copy)]
    struct Opts {
        /// Congestion control of the kernel senders.
        cc: &'static str,
        /// Congestion control of the stack.
        stack_cc: CongestionAlgorithm,
        /// `--rate`: the bottleneck's rate in Mbit/s.
        rate: Option<u64>,
        /// Whether the bottleneck cuts GSO packets to MTU size (with drops, see [`tbf`]).
        segment: bool,
        verbose: bool,
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
    fn tun_run(net: &Net, offload: bool, total: u64, o: Opts) -> (Duration, Duration) {
        let host1 = net.host1.clone();
        let router = net.router.clone();
        let Opts { cc, verbose, .. } = o;
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
                tbf(&router, TUN, o.rate, o.segment)?;
                let mut config = EndpointConfig::default();
                config.conn.congestion = o.stack_cc;
                let stack = Stack::builder().address(STACK.into()).config(config).build(tun)?;

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
        const USAGE: &str = "usage: loss_bench [--mib N] [--runs R] [--kernel-cc NAME] \
                             [--stack-cc cubic|bbr|reno] [--loss P,P,..] [--rate MBIT] [--verbose]";
        let (mut mib, mut runs) = (32u64, 3usize);
        let mut o = Opts {
            cc: "cubic",
            stack_cc: CongestionAlgorithm::Cubic,
            rate: None,
            segment: false,
            verbose: false,
        };
        let mut losses = vec![0.01, 0.05];
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--mib" => mib = args.next().and_then(|v| v.parse().ok()).expect(USAGE),
                "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect(USAGE),
                "--kernel-cc" => o.cc = String::leak(args.next().expect(USAGE)),
                "--stack-cc" => {
                    o.stack_cc = match args.next().as_deref() {
                        Some("cubic") => CongestionAlgorithm::Cubic,
                        Some("bbr") => CongestionAlgorithm::Bbr,
                        Some("reno") => CongestionAlgorithm::NewReno,
                        _ => panic!("{USAGE}"),
                    }
                }
                "--loss" => {
                    losses = args
                        .next()
                        .expect(USAGE)
                        .split(',')
                        .map(|p| p.parse().expect(USAGE))
                        .collect()
                }
                "--rate" => o.rate = Some(args.next().and_then(|v| v.parse().ok()).expect(USAGE)),
                "--verbose" => o.verbose = true,
                "--bench" => {}
                other => panic!("unknown argument {other:?}; {USAGE}"),
            }
        }
        let total = mib << 20;
        let net = Net::new().expect("namespaces");
        let path = match o.rate {
            Some(rate) => format!("{rate} Mbit/s bottleneck, "),
            None => String::new(),
        };
        println!(
            "| drop each way ({path}MTU 1500, {mib} MiB, median of {runs}, kernel {}, stack {:?}) \
             | kernel → stack | stack → kernel | Linux → Linux (veth) | stack / Linux (worse direction) |",
            o.cc, o.stack_cc
        );
        println!("|---|---|---|---|---|");
        for p in losses {
            net.set_drop(p).expect("iptables");
            // The bottleneck on the router's egress towards each receiver: the veths here, the
            // TUN in each run once it exists. Without `--rate`, only drops need one (10 Gbit/s,
            // no bottleneck): on the veth to host1, to cut the stack's super-segments.
            o.segment = p > 0.0;
            let (rate1, rate2) = match o.rate {
                Some(r) => (Some(r), Some(r)),
                None => (o.segment.then_some(10_000), None),
            };
            tbf(&net.router, "vr1", rate1, o.segment).expect("tc");
            tbf(&net.router, "vr2", rate2, o.segment).expect("tc");
            if o.verbose {
                eprintln!("--- drop {p} ---");
            }
            // Round r measures every path once, so drift in the machine's speed shifts all
            // rows alike.
            let (mut veth, mut tun) = (Vec::new(), [Vec::new(), Vec::new()]);
            for _ in 0..runs {
                veth.push(veth_run(&net, total, o.cc, o.verbose).expect("veth"));
                for (i, offload) in [false, true].into_iter().enumerate() {
                    tun[i].push(tun_run(&net, offload, total, o));
                }
            }
            let veth = mbps(total, median(veth));
            for (r, offload) in tun.iter().zip([false, true]) {
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

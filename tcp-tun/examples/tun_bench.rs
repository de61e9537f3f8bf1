//! Bulk throughput over a TUN at MTU 1500, kernel → stack and stack → kernel, offloads off
//! and on, next to the kernel's own TCP across a veth pair measured in the same run. Needs
//! root; everything happens in network namespaces the bench creates (nothing touches the
//! host's interfaces).
//!
//! ```text
//! sudo cargo run --release -p tcp-tun --example tun_bench -- [--mib N] [--runs N]
//!     [--offload off|on|both] [--direction down|up|both] [--no-veth] [--cpu]
//!     [--napi on|off|softirq] [--kernel-cc NAME] [--stack-cc cubic|bbr|reno] [--rr N] [--here]
//!     [--pin] [--spawn] [--notsent-lowat BYTES]
//! ```
//! Prints a Markdown table (Gbit/s of payload, median and best of `--runs` runs of N MiB,
//! default 3 of 1024). `--offload`, `--direction` and `--no-veth` narrow what runs (for
//! profiling one path with `perf record`); `--cpu` prints each thread's CPU time per run and
//! the stack sender's final window and buffer; `--napi` overrides the TUN builder's default
//! for threaded NAPI ([`tcp_tun::TunBuilder::threaded_napi`]), for comparison; each row says
//! whether the TUN got it. `--napi softirq` (with `--here`) makes the interface with
//! `IFF_NAPI` and then switches its NAPI back from a thread to softirq mode.
//!
//! `--rr N` measures round trips instead of bulk: a kernel client (`TCP_NODELAY`) sends 64
//! bytes and waits for the stack to echo them back, N times per run (round trips per second,
//! median and best of `--runs`). `--here` creates the TUN in the bench's own network
//! namespace instead of a new one per run, as an application does; run it under
//! `ip netns exec NS` (a namespace with `lo` up) to measure what a user of
//! `ip netns exec` gets.
//!
//! `--kernel-cc` sets the congestion control of every kernel socket in the run (`TCP_CONGESTION`,
//! default `cubic`, Linux's built-in default), TUN and veth paths alike. It matters for the
//! kernel senders: a host may default to another (`net.ipv4.tcp_congestion_control`), and with
//! `bbr`, which paces every packet with timers, the kernel's own veth throughput on a small VM
//! drops to a fraction of CUBIC's. `--stack-cc` sets the stack's congestion control
//! (`ConnConfig::congestion`, default CUBIC); BBR paces its sender.
//!
//! `--pin` pins the stack's thread and the veth receiver to CPU 0 and the kernel's peer
//! threads to CPU 1: on a machine busy with other work the scheduler otherwise often puts
//! both ends on one CPU (a synchronous wake-up pulls the woken thread to the waker's CPU
//! when no CPU is idle), which measures the scheduler rather than the paths.
//!
//! `--notsent-lowat BYTES` sets `TCP_NOTSENT_LOWAT` on every kernel sender (TUN and veth):
//! with BBR the kernel's send buffer otherwise holds megabytes not yet sent, which have left
//! the cache by the time the receiver copies them.
//!
//! The veth and TUN runs alternate (veth, TUN offload off, TUN offload on, veth, ...), so a
//! machine whose speed drifts during the run shifts every row alike.

#[cfg(target_os = "linux")]
mod bench_sys;

#[cfg(target_os = "linux")]
mod bench {
    use crate::bench_sys::{enter, run};
    use std::io::{self, Read, Write};
    use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    use tcp_tokio::{CongestionAlgorithm, Stack};
    use tcp_tun::Tun;
    use tcpcore::EndpointConfig;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
    const STACK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
    const CHUNK: usize = 256 * 1024;

    /// `--here`: the TUN lives in the bench's own network namespace.
    static HERE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// Run `f` on a thread moved into a new network namespace with `lo` up (with `--here`,
    /// on a thread in the bench's namespace).
    fn in_new_netns<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        if HERE.load(std::sync::atomic::Ordering::Relaxed) {
            return std::thread::spawn(f).join().unwrap();
        }
        std::thread::spawn(move || {
            // SAFETY: `unshare` takes a flag word only; CLONE_NEWNET moves just this thread.
            let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "unshare(CLONE_NEWNET): {}", io::Error::last_os_error());
            run(&["ip", "link", "set", "lo", "up"]).expect("lo up");
            f()
        })
        .join()
        .unwrap()
    }

    /// `--cpu`: print the CPU time each thread spent per direction (on a shared machine the
    /// CPU time per byte is steadier than the throughput).
    static CPU: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// `--napi on|off`: override the TUN builder's threaded-NAPI default.
    static NAPI: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

    /// `--napi softirq` (with `--here`): threaded NAPI asked for, then switched back to
    /// softirq mode through `/sys`, for an interface with `IFF_NAPI` but no NAPI thread.
    static SOFTIRQ: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// `--pin`: the stack's thread (and the veth receiver) on CPU 0, the kernel's peer threads
    /// on CPU 1.
    static PIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// With `--pin`, pin the calling thread to `cpu`.
    fn pin(cpu: usize) {
        if PIN.load(std::sync::atomic::Ordering::Relaxed) {
            crate::bench_sys::pin(cpu);
        }
    }

    /// `--spawn`: the stack's reader (kernel → stack) runs as a spawned task instead of as the
    /// runtime's `block_on` future.
    static SPAWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// `--notsent-lowat BYTES`: `TCP_NOTSENT_LOWAT` on every kernel sender (default: none).
    static NOTSENT_LOWAT: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

    /// `--kernel-cc`: congestion control of the kernel's sockets.
    static KERNEL_CC: std::sync::OnceLock<String> = std::sync::OnceLock::new();

    /// `--stack-cc`: congestion control of the stack's connections.
    static STACK_CC: std::sync::OnceLock<CongestionAlgorithm> = std::sync::OnceLock::new();

    /// The name of a congestion control as `--stack-cc` takes it.
    pub(crate) fn parse_cc(name: &str) -> Option<CongestionAlgorithm> {
        match name {
            "cubic" => Some(CongestionAlgorithm::Cubic),
            "bbr" => Some(CongestionAlgorithm::Bbr),
            "reno" => Some(CongestionAlgorithm::NewReno),
            _ => None,
        }
    }

    /// Give `s` the `--kernel-cc` congestion control.
    fn set_cc(s: &TcpStream) -> io::Result<()> {
        crate::bench_sys::set_cc(s, KERNEL_CC.get().map_or("cubic", String::as_str))
    }

    /// The calling thread's CPU time (user and system).
    fn thread_cpu() -> Duration {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, exclusive timespec for the call.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    /// CPU time of the kernel's NAPI threads (`napi/...`; threaded NAPI only).
    fn napi_cpu() -> Duration {
        let mut ns = 0u64;
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let p = e.path();
            let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
            if comm.starts_with("napi/") {
                let st = std::fs::read_to_string(p.join("schedstat")).unwrap_or_default();
                ns += st.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
            }
        }
        Duration::from_nanos(ns)
    }

    fn report_cpu(who: &str, cpu: Duration, bytes: u64) {
        if CPU.load(std::sync::atomic::Ordering::Relaxed) {
            // Per full-sized segment (1448 payload bytes), the unit the kernel pays for.
            let ns = cpu.as_nanos() as f64 / (bytes as f64 / 1448.0);
            eprintln!("  {who}: {:.2} s CPU, {ns:.0} ns per 1448-byte segment", cpu.as_secs_f64());
        }
    }

    fn gbps(bytes: u64, d: Duration) -> f64 {
        bytes as f64 * 8.0 / d.as_secs_f64() / 1e9
    }

    fn kernel_send(mut s: TcpStream, total: u64) -> io::Result<()> {
        pin(1);
        set_cc(&s)?;
        if let Some(&lowat) = NOTSENT_LOWAT.get() {
            crate::bench_sys::set_notsent_lowat(&s, lowat)?;
        }
        let cpu = thread_cpu();
        let buf = vec![7u8; CHUNK];
        let mut sent = 0;
        while sent < total {
            let n = (total - sent).min(CHUNK as u64) as usize;
            s.write_all(&buf[..n])?;
            sent += n as u64;
        }
        s.shutdown(Shutdown::Write)?;
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)?;
        report_cpu("kernel sender thread", thread_cpu() - cpu, total);
        Ok(())
    }

    fn kernel_recv(mut s: TcpStream, cpu: usize) -> io::Result<u64> {
        pin(cpu);
        set_cc(&s)?;
        let cpu = thread_cpu();
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0;
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                report_cpu("kernel receiver thread", thread_cpu() - cpu, got);
                return Ok(got);
            }
            got += n as u64;
        }
    }

    /// The bench's TUN (with `--napi`) and a stack on it; whether it got threaded NAPI, and
    /// the TUN's counters.
    fn tun_stack(offload: bool) -> (Stack, bool, tcp_tun::TunStatsHandle) {
        let mut tun = Tun::builder()
            .name("bench0")
            .kernel_address(KERNEL.into(), 24)
            .mtu(1500)
            .offload(offload);
        if let Some(&on) = NAPI.get() {
            tun = tun.threaded_napi(on);
        }
        let tun = tun.build().expect("TUN");
        let stats = tun.stats();
        let mut napi = tun.threaded_napi();
        if SOFTIRQ.load(std::sync::atomic::Ordering::Relaxed) {
            std::fs::write("/sys/class/net/bench0/threaded", "0")
                .expect("--napi softirq needs --here and a /sys of the bench's namespace");
            napi = false;
        }
        let mut config = EndpointConfig::default();
        config.conn.congestion = STACK_CC.get().copied().unwrap_or(CongestionAlgorithm::Cubic);
        (Stack::builder().address(STACK.into()).config(config).build(tun).unwrap(), napi, stats)
    }

    /// `--rr`: the time of `n` 64-byte round trips of a kernel client against an echo on the
    /// stack, and whether the TUN had threaded NAPI.
    fn rr_run(offload: bool, n: u64) -> (Duration, bool) {
        in_new_netns(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let (stack, napi, _) = tun_stack(offload);
                let listener = stack.bind(SocketAddr::from((STACK, 5004))).await.unwrap();
                let client = std::thread::spawn(move || -> io::Result<Duration> {
                    let mut s = TcpStream::connect((STACK, 5004))?;
                    s.set_nodelay(true)?;
                    let mut buf = [7u8; 64];
                    let start = Instant::now();
                    for _ in 0..n {
                        s.write_all(&buf)?;
                        s.read_exact(&mut buf)?;
                    }
                    Ok(start.elapsed())
                });
                let (mut s, _) = listener.accept().await.unwrap();
                s.set_nodelay(true).unwrap();
                let mut buf = [0u8; 64];
                // The client's close ends the loop (after its last round trip).
                while s.read_exact(&mut buf).await.is_ok() {
                    s.write_all(&buf).await.unwrap();
                }
                (client.join().unwrap().expect("kernel client"), napi)
            })
        })
    }

    /// (kernel → stack, stack → kernel) times for `total` bytes, and whether the TUN had
    /// threaded NAPI; a direction not in `dirs` (down, up) is skipped and reports zero.
    fn tun_run(offload: bool, total: u64, dirs: (bool, bool)) -> (Duration, Duration, bool) {
        in_new_netns(move || {
            pin(0);
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let (stack, napi, stats) = tun_stack(offload);

                let mut down = Duration::ZERO;
                if dirs.0 {
                    let listener = stack.bind(SocketAddr::from((STACK, 5001))).await.unwrap();
                    let start = Instant::now();
                    let cpu = thread_cpu();
                    let napi_t = napi_cpu();
                    let tun_t = stats.get();
                    let client = std::thread::spawn(move || {
                        kernel_send(TcpStream::connect((STACK, 5001))?, total)
                    });
                    let (mut s, _) = listener.accept().await.unwrap();
                    let reader = async move {
                        let mut buf = vec![0u8; CHUNK];
                        let mut got = 0u64;
                        loop {
                            let n = s.read(&mut buf).await.unwrap();
                            if n == 0 {
                                break;
                            }
                            got += n as u64;
                        }
                        (s, got)
                    };
                    let (mut s, got) = if SPAWN.load(std::sync::atomic::Ordering::Relaxed) {
                        tokio::spawn(reader).await.unwrap()
                    } else {
                        reader.await
                    };
                    down = start.elapsed();
                    if CPU.load(std::sync::atomic::Ordering::Relaxed) {
                        // What the stack wrote here is (nearly) all ACKs.
                        let t = stats.get();
                        let (rx, acks) =
                            (t.rx_packets - tun_t.rx_packets, t.tx_packets - tun_t.tx_packets);
                        eprintln!(
                            "  kernel → stack: {rx} packets read ({} super), {acks} written: \
                             one per {:.0} KiB received",
                            t.rx_super - tun_t.rx_super,
                            total as f64 / 1024.0 / acks.max(1) as f64
                        );
                    }
                    report_cpu("kernel → stack, stack thread", thread_cpu() - cpu, total);
                    report_cpu(
                        "kernel → stack, napi threads",
                        napi_cpu().saturating_sub(napi_t),
                        total,
                    );
                    assert_eq!(got, total);
                    s.shutdown().await.unwrap();
                    drop(s);
                    // The client thread finishes once our FIN arrives; wait without blocking
                    // the runtime that must deliver it.
                    while !client.is_finished() {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    client.join().unwrap().expect("kernel client");
                }
                if !dirs.1 {
                    return (down, Duration::ZERO, napi);
                }

                let kl = TcpListener::bind((KERNEL, 5002)).unwrap();
                let start = Instant::now();
                let cpu = thread_cpu();
                let napi_t = napi_cpu();
                let server = std::thread::spawn(move || kernel_recv(kl.accept()?.0, 1));
                let mut c = stack.connect(SocketAddr::from((KERNEL, 5002))).await.unwrap();
                let data = vec![7u8; CHUNK];
                let mut sent = 0u64;
                while sent < total {
                    let n = (total - sent).min(CHUNK as u64) as usize;
                    c.write_all(&data[..n]).await.unwrap();
                    sent += n as u64;
                }
                if CPU.load(std::sync::atomic::Ordering::Relaxed) {
                    let i = c.info();
                    eprintln!(
                        "  stack sender: cwnd {} B, send buffer {} B, srtt {:?}, {} retransmits",
                        i.cwnd, i.snd_buf, i.srtt, i.retransmits
                    );
                }
                c.shutdown().await.unwrap();
                while !server.is_finished() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let up = start.elapsed();
                report_cpu("stack → kernel, stack thread", thread_cpu() - cpu, total);
                report_cpu(
                    "stack → kernel, napi threads",
                    napi_cpu().saturating_sub(napi_t),
                    total,
                );
                assert_eq!(server.join().unwrap().expect("kernel server"), total);
                (down, up, napi)
            })
        })
    }

    /// Namespaces created with `ip netns add`, deleted on drop.
    struct Netns(Vec<String>);
    impl Drop for Netns {
        fn drop(&mut self) {
            for ns in &self.0 {
                let _ = run(&["ip", "netns", "del", ns]);
            }
        }
    }

    /// The kernel's TCP from namespace a to namespace b across a veth pair at MTU 1500.
    fn veth_run(total: u64) -> io::Result<Duration> {
        let id = std::process::id();
        let (a, b) = (format!("tcptun-bench-a-{id}"), format!("tcptun-bench-b-{id}"));
        let _guard = Netns(vec![a.clone(), b.clone()]);
        run(&["ip", "netns", "add", &a])?;
        run(&["ip", "netns", "add", &b])?;
        run(&[
            "ip", "-n", &a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", &b,
        ])?;
        run(&["ip", "-n", &a, "addr", "add", "10.88.0.1/24", "dev", "va"])?;
        run(&["ip", "-n", &b, "addr", "add", "10.88.0.2/24", "dev", "vb"])?;
        for (ns, dev) in [(&a, "va"), (&b, "vb")] {
            run(&["ip", "-n", ns, "link", "set", dev, "mtu", "1500", "up"])?;
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        let b2 = b.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let server = std::thread::spawn(move || -> io::Result<u64> {
            enter(&b2)?;
            let l = TcpListener::bind(("10.88.0.2", 5003))?;
            tx.send(()).unwrap();
            kernel_recv(l.accept()?.0, 0)
        });
        rx.recv().map_err(io::Error::other)?;
        let a2 = a.clone();
        let start = Instant::now();
        std::thread::spawn(move || -> io::Result<()> {
            enter(&a2)?;
            let s = TcpStream::connect(("10.88.0.2", 5003))?;
            kernel_send(s, total)
        })
        .join()
        .unwrap()?;
        let got = server.join().unwrap()?;
        let d = start.elapsed();
        assert_eq!(got, total);
        Ok(d)
    }

    pub(crate) fn main() {
        // SAFETY: `geteuid` takes no arguments and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("tun_bench needs root to create network namespaces and TUN devices");
            std::process::exit(1);
        }
        const USAGE: &str = "usage: tun_bench [--mib N] [--runs N] [--offload off|on|both] \
                             [--direction down|up|both] [--no-veth] [--cpu] [--napi on|off|softirq] \
                             [--kernel-cc NAME] [--stack-cc cubic|bbr|reno] [--rr N] [--here] [--pin] [--spawn] \
                             [--notsent-lowat BYTES]";
        let (mut mib, mut n_runs, mut veth_on) = (1024u64, 3usize, true);
        let (mut offloads, mut dirs) = (vec![false, true], (true, true));
        let mut rr = None;
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--mib" => mib = args.next().and_then(|v| v.parse().ok()).expect(USAGE),
                "--runs" => n_runs = args.next().and_then(|v| v.parse().ok()).expect(USAGE),
                "--offload" => {
                    offloads = match args.next().as_deref() {
                        Some("off") => vec![false],
                        Some("on") => vec![true],
                        Some("both") => vec![false, true],
                        _ => panic!("{USAGE}"),
                    }
                }
                "--direction" => {
                    dirs = match args.next().as_deref() {
                        Some("down") => (true, false),
                        Some("up") => (false, true),
                        Some("both") => (true, true),
                        _ => panic!("{USAGE}"),
                    }
                }
                "--no-veth" => veth_on = false,
                "--pin" => PIN.store(true, std::sync::atomic::Ordering::Relaxed),
                "--spawn" => SPAWN.store(true, std::sync::atomic::Ordering::Relaxed),
                "--notsent-lowat" => {
                    let v = args.next().and_then(|v| v.parse().ok()).expect(USAGE);
                    NOTSENT_LOWAT.set(v).expect(USAGE);
                }
                "--cpu" => CPU.store(true, std::sync::atomic::Ordering::Relaxed),
                "--napi" => {
                    let on = match args.next().as_deref() {
                        Some("on") => true,
                        Some("off") => false,
                        Some("softirq") => {
                            SOFTIRQ.store(true, std::sync::atomic::Ordering::Relaxed);
                            true
                        }
                        _ => panic!("{USAGE}"),
                    };
                    NAPI.set(on).expect(USAGE);
                }
                "--kernel-cc" => KERNEL_CC.set(args.next().expect(USAGE)).expect(USAGE),
                "--stack-cc" => {
                    let cc = args.next().as_deref().and_then(parse_cc).expect(USAGE);
                    STACK_CC.set(cc).expect(USAGE);
                }
                "--rr" => rr = Some(args.next().and_then(|v| v.parse().ok()).expect(USAGE)),
                "--here" => HERE.store(true, std::sync::atomic::Ordering::Relaxed),
                "--bench" => {}
                "-h" | "--help" => {
                    println!("{USAGE}");
                    return;
                }
                other => panic!("unknown argument {other:?}; {USAGE}"),
            }
        }
        let n_runs = n_runs.max(1);
        let napi_label = |napi: &[bool]| match (napi.iter().all(|&b| b), napi.iter().any(|&b| b)) {
            (true, _) => "on",
            (false, true) => "on in some runs",
            (false, false) => "off",
        };
        if let Some(n) = rr {
            println!(
                "| path (MTU 1500, {n} round trips of 64 B, median of {n_runs}) | round trips/s |"
            );
            println!("|---|---|");
            for offload in offloads {
                let runs: Vec<_> = (0..n_runs).map(|_| rr_run(offload, n)).collect();
                let napi: Vec<_> = runs.iter().map(|r| r.1).collect();
                let mut ds: Vec<_> = runs.iter().map(|r| r.0).collect();
                ds.sort();
                let rate = |d: Duration| n as f64 / d.as_secs_f64() / 1e3;
                println!(
                    "| TUN, offload {}, threaded NAPI {}, kernel client | {:.1} k/s (best {:.1}) |",
                    if offload { "on" } else { "off" },
                    napi_label(&napi),
                    rate(ds[(ds.len() - 1) / 2]),
                    rate(ds[0]),
                );
            }
            return;
        }
        let total = mib << 20;
        // Median and best of the runs, in Gbit/s.
        let summary = |mut ds: Vec<Duration>| {
            ds.sort();
            format!(
                "{:.1} Gbit/s (best {:.1})",
                gbps(total, ds[(ds.len() - 1) / 2]),
                gbps(total, ds[0])
            )
        };
        let cell = |on: bool, ds: Vec<Duration>| if on { summary(ds) } else { "-".to_string() };
        // Round r measures every path once (veth, then each offload), so the medians compare
        // paths measured under the same conditions.
        let mut veth = Vec::new();
        let mut tun: Vec<Vec<(Duration, Duration, bool)>> = vec![Vec::new(); offloads.len()];
        for _ in 0..n_runs {
            if veth_on {
                veth.push(veth_run(total).expect("veth"));
            }
            for (i, &offload) in offloads.iter().enumerate() {
                tun[i].push(tun_run(offload, total, dirs));
            }
        }
        let cc = KERNEL_CC.get().map_or("cubic", String::as_str);
        let stack_cc =
            format!("{:?}", STACK_CC.get().copied().unwrap_or(CongestionAlgorithm::Cubic));
        println!(
            "| path (MTU 1500, {mib} MiB, median of {n_runs}, kernel CC {cc}, stack CC {stack_cc}) \
             | kernel → stack | stack → kernel |"
        );
        println!("|---|---|---|");
        for (runs, offload) in tun.iter().zip(offloads) {
            let napi: Vec<_> = runs.iter().map(|r| r.2).collect();
            println!(
                "| TUN, offload {}, threaded NAPI {} | {} | {} |",
                if offload { "on" } else { "off" },
                napi_label(&napi),
                cell(dirs.0, runs.iter().map(|r| r.0).collect()),
                cell(dirs.1, runs.iter().map(|r| r.1).collect()),
            );
        }
        if veth_on {
            let v = summary(veth);
            println!("| kernel TCP over veth (both ends kernel) | {v} | {v} |");
        }
    }
}

#[cfg(target_os = "linux")]
fn main() {
    bench::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("tun_bench needs Linux");
}

//! The forwarder's bench (issue 13 item 8), in network namespaces it makes (root):
//!
//! - TCP bulk through `tun_forward` (kernel client → TUN → our stack → kernel socket →
//!   veth → kernel server), TUN offloads off and on, against the kernel forwarding the same
//!   transfer itself (client namespace → veth → router namespace with `ip_forward` → veth
//!   → server namespace), in the same run;
//! - UDP datagrams per second through the forwarder (64-byte datagrams, one flow, sent as
//!   fast as the client's kernel takes them; what reaches the server is counted);
//! - the memory of an idle forwarded TCP flow: the process heap (a counting allocator) per
//!   flow with 1,000 idle flows open, and the kernel's socket object size.
//!
//! ```text
//! cargo build --release --example tun_forward_bench
//! sudo ./target/release/examples/tun_forward_bench [--mib N] [--secs S] [--flows N]
//!     [--runs N] [--only off,on,kernel,up,down,udp,mem]
//! ```
//!
//! Defaults: 200 MiB per TCP run, three runs of each TCP configuration (taking turns, so
//! that a shared machine's load falls on all alike; best and median reported, and the CPU
//! seconds per GiB, which load moves less), 2 s of UDP, 1,000 idle flows; everything.
//! `BENCH_DEBUG=1` adds the stack's packet counts after each forwarded run and the
//! forwarder's stats after the UDP run; `BENCH_WATCH=1` samples the forwarded connection's
//! receive queue and window every 20 ms during the TCP runs (on stderr).

#[cfg(target_os = "linux")]
mod app {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::io::{Read, Write};
    use std::net::{Shutdown, SocketAddr, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use examples::forward::Forwarder;
    use examples::netns::{ForwardNet, Netns, SERVER_IP};

    /// Counts the heap in use, for the memory per idle flow.
    struct Counting;

    static HEAP: AtomicI64 = AtomicI64::new(0);

    // SAFETY: every call is forwarded to the system allocator unchanged; the counter only
    // observes sizes.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            HEAP.fetch_add(l.size() as i64, Relaxed);
            // SAFETY: the caller's contract for `alloc`, passed on.
            unsafe { System.alloc(l) }
        }

        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            HEAP.fetch_sub(l.size() as i64, Relaxed);
            // SAFETY: `p` came from `alloc` with layout `l`.
            unsafe { System.dealloc(p, l) }
        }

        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            HEAP.fetch_add(new as i64 - l.size() as i64, Relaxed);
            // SAFETY: the caller's contract for `realloc`, passed on.
            unsafe { System.realloc(p, l, new) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    const MIB: u64 = 1 << 20;
    /// The bulk sink: reads to EOF, answers the byte count.
    const SINK_PORT: u16 = 9000;
    /// The UDP counter.
    const UDP_PORT: u16 = 9001;
    /// Accepts and holds connections idle, allocating nothing per connection.
    const HOLD_PORT: u16 = 9002;
    /// The bulk source: reads an 8-byte count, sends that many bytes, closes.
    const SOURCE_PORT: u16 = 9003;

    const USAGE: &str = "usage: tun_forward_bench [--mib N] [--secs S] [--flows N] [--runs N] \
                         [--only off,on,kernel,up,down,udp,mem]";

    struct Args {
        mib: u64,
        secs: u64,
        flows: usize,
        runs: usize,
        only: Vec<String>,
    }

    impl Args {
        fn wants(&self, what: &str) -> bool {
            self.only.is_empty() || self.only.iter().any(|w| w == what)
        }

        /// `what`, of a group of choices: wanted when named, or when none of its group is
        /// named but another part of the TCP bench is (or nothing is).
        fn wants_of(&self, group: &[&str], what: &str) -> bool {
            const TCP: [&str; 5] = ["off", "on", "kernel", "up", "down"];
            let tcp = self.only.is_empty() || TCP.iter().any(|t| self.wants(t));
            let named = self.only.iter().any(|w| group.contains(&w.as_str()));
            tcp && (self.wants(what) || !named)
        }
    }

    fn parse_args() -> Result<Args, String> {
        let mut a = Args { mib: 200, secs: 2, flows: 1000, runs: 3, only: Vec::new() };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "-h" || flag == "--help" {
                return Err(String::new());
            }
            let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let bad = |e: std::num::ParseIntError| format!("{flag}: {e}");
            match flag.as_str() {
                "--mib" => a.mib = v.parse().map_err(bad)?,
                "--secs" => a.secs = v.parse().map_err(bad)?,
                "--flows" => a.flows = v.parse().map_err(bad)?,
                "--runs" => a.runs = v.parse::<usize>().map_err(bad)?.max(1),
                "--only" => a.only = v.split(',').map(str::to_owned).collect(),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(a)
    }

    pub(crate) fn main() {
        let a = match parse_args() {
            Ok(a) => a,
            Err(e) => {
                if !e.is_empty() {
                    eprintln!("tun_forward_bench: {e}");
                }
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        };
        // SAFETY: `geteuid` takes no arguments and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("tun_forward_bench needs root to make namespaces and a TUN");
            std::process::exit(1);
        }
        // The configurations take turns, run after run, so that the load of a shared machine
        // falls on all of them alike.
        let configs =
            [("off", Path::Offload(false)), ("on", Path::Offload(true)), ("kernel", Path::Kernel)];
        let group = ["off", "on", "kernel"];
        let configs: Vec<_> = configs.into_iter().filter(|(n, _)| a.wants_of(&group, n)).collect();
        let dirs = [false, true].into_iter();
        for down in dirs.filter(|&d| a.wants_of(&["up", "down"], if d { "down" } else { "up" })) {
            if !configs.is_empty() {
                bulk_table(&configs, a.mib, a.runs, down);
            }
        }
        if a.wants("udp") {
            let (sent, got, us) = udp_rate(Duration::from_secs(a.secs));
            println!(
                "UDP through tun_forward, 64-byte datagrams: {sent:.0}/s sent, {got:.0}/s \
                 delivered; the forwarder's CPU time per datagram it took: {us:.1} µs"
            );
        }
        if !a.wants("mem") {
            return;
        }
        let (heap, kernel_obj) = idle_flow_memory(a.flows);
        println!(
            "idle forwarded TCP flow: {heap:.0} bytes of heap (with {} flows open: the stack's \
             connection, the forwarder's task (its splice holds no buffer while idle), the \
             tokio handles of the kernel socket and of the client's), plus the kernel socket \
             (a {kernel_obj}-byte TCP slab object, queues empty)",
            a.flows
        );
    }

    /// Run each configuration `runs` times, taking turns, and print their table.
    fn bulk_table(configs: &[(&str, Path)], mib: u64, runs: usize, down: bool) {
        let mut results: Vec<Vec<Run>> = vec![Vec::new(); configs.len()];
        for _ in 0..runs {
            for (i, (_, path)) in configs.iter().enumerate() {
                results[i].push(path.bulk(mib, down));
            }
        }
        println!(
            "TCP bulk {}, {mib} MiB, {runs} runs each, taking turns (Mbit/s best and median; CPU \
             seconds per GiB, medians: the forwarder's runtime threads, and the whole process: \
             client, forwarder, server):",
            if down { "download (server to client)" } else { "upload (client to server)" },
        );
        let kernel =
            configs.iter().position(|(_, p)| *p == Path::Kernel).map(|i| best(&results[i]));
        for ((name, path), runs) in configs.iter().zip(&results) {
            let label = match path {
                Path::Offload(_) => format!("through tun_forward, offload {name}:"),
                Path::Kernel => "kernel forwarding (ip_forward):".to_owned(),
            };
            let share = match (path, kernel) {
                (Path::Offload(_), Some(k)) => {
                    format!(" ({:.0} % of the kernel)", best(runs) / k * 100.0)
                }
                _ => String::new(),
            };
            let all: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.mbps)).collect();
            println!(
                "  {label:34} best {:6.0} median {:6.0}{share}; CPU s/GiB forwarder {:.2} process {:.2}  [{}]",
                best(runs),
                median(runs.iter().map(|r| r.mbps)),
                median(runs.iter().map(|r| r.fwd_cpu)),
                median(runs.iter().map(|r| r.proc_cpu)),
                all.join(" ")
            );
        }
    }

    /// One way a bulk transfer goes from the client namespace to the server's.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Path {
        /// Through the forwarder, TUN offloads on or off.
        Offload(bool),
        /// Forwarded by the kernel (`ip_forward` in a router namespace).
        Kernel,
    }

    impl Path {
        fn bulk(self, mib: u64, down: bool) -> Run {
            match self {
                Path::Offload(on) => forwarded_bulk(on, mib, down),
                Path::Kernel => kernel_bulk(mib, down),
            }
        }
    }

    /// One bulk transfer's rate and CPU cost.
    #[derive(Clone, Copy, Debug)]
    struct Run {
        mbps: f64,
        /// CPU seconds per GiB of the forwarder's runtime threads (0 for the kernel path).
        fwd_cpu: f64,
        /// CPU seconds per GiB of the whole process (client, forwarder, sink threads, and
        /// the kernel's work done on their behalf in their system calls).
        proc_cpu: f64,
    }

    fn best(runs: &[Run]) -> f64 {
        runs.iter().map(|r| r.mbps).fold(0.0, f64::max)
    }

    fn median(xs: impl Iterator<Item = f64>) -> f64 {
        let mut v: Vec<f64> = xs.collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// CPU time (seconds) the process's tokio worker threads have run so far.
    fn runtime_threads_cpu() -> f64 {
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
        let mut ns = 0u64;
        for t in dir.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if !comm.starts_with("tokio-r") {
                continue;
            }
            let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            ns += stat.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
        }
        ns as f64 / 1e9
    }

    /// CPU time (seconds, user and system) of the whole process so far.
    fn process_cpu() -> f64 {
        // SAFETY: `getrusage` writes one `rusage` into the zeroed struct we own.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }

    /// `total` bytes from a kernel client (in the calling thread's namespace) to the sink,
    /// or with `down` from the source to the client.
    fn bulk(total: u64, down: bool) -> Run {
        if down {
            return download(total);
        }
        let mut s = TcpStream::connect((SERVER_IP, SINK_PORT)).expect("connect");
        let buf = vec![0x5au8; 256 << 10];
        let (fwd0, proc0) = (runtime_threads_cpu(), process_cpu());
        let start = Instant::now();
        let mut sent = 0;
        while sent < total {
            let n = (total - sent).min(buf.len() as u64) as usize;
            s.write_all(&buf[..n]).expect("write");
            sent += n as u64;
        }
        s.shutdown(Shutdown::Write).unwrap();
        let mut count = [0u8; 8];
        s.read_exact(&mut count).expect("the sink's count");
        let took = start.elapsed().as_secs_f64();
        assert_eq!(u64::from_be_bytes(count), total, "bytes at the sink");
        let gib = total as f64 / (1u64 << 30) as f64;
        Run {
            mbps: total as f64 * 8.0 / took / 1e6,
            fwd_cpu: (runtime_threads_cpu() - fwd0) / gib,
            proc_cpu: (process_cpu() - proc0) / gib,
        }
    }

    /// `total` bytes from the source to a kernel client.
    fn download(total: u64) -> Run {
        let mut s = TcpStream::connect((SERVER_IP, SOURCE_PORT)).expect("connect");
        let mut buf = vec![0u8; 256 << 10];
        let (fwd0, proc0) = (runtime_threads_cpu(), process_cpu());
        let start = Instant::now();
        s.write_all(&total.to_be_bytes()).expect("the count");
        let mut got = 0u64;
        loop {
            match s.read(&mut buf).expect("read") {
                0 => break,
                n => got += n as u64,
            }
        }
        let took = start.elapsed().as_secs_f64();
        assert_eq!(got, total, "bytes from the source");
        let gib = total as f64 / (1u64 << 30) as f64;
        Run {
            mbps: total as f64 * 8.0 / took / 1e6,
            fwd_cpu: (runtime_threads_cpu() - fwd0) / gib,
            proc_cpu: (process_cpu() - proc0) / gib,
        }
    }

    /// A TCP sink (reads to EOF, answers the count), a TCP source (sends the count it
    /// reads), a TCP holder and a UDP counter in `ns`, on threads of that namespace for the
    /// rest of the run.
    fn servers(ns: &Netns) -> Arc<AtomicU64> {
        let datagrams = Arc::new(AtomicU64::new(0));
        let count = datagrams.clone();
        ns.run(move || {
            let tcp = std::net::TcpListener::bind((SERVER_IP, SINK_PORT)).unwrap();
            let udp = std::net::UdpSocket::bind((SERVER_IP, UDP_PORT)).unwrap();
            let hold = std::net::TcpListener::bind((SERVER_IP, HOLD_PORT)).unwrap();
            let source = std::net::TcpListener::bind((SERVER_IP, SOURCE_PORT)).unwrap();
            std::thread::spawn(move || {
                for s in source.incoming() {
                    let Ok(mut s) = s else { continue };
                    std::thread::spawn(move || {
                        let mut count = [0u8; 8];
                        if s.read_exact(&mut count).is_err() {
                            return;
                        }
                        let buf = vec![0xa5u8; 256 << 10];
                        let mut left = u64::from_be_bytes(count);
                        while left > 0 {
                            let n = left.min(buf.len() as u64) as usize;
                            if s.write_all(&buf[..n]).is_err() {
                                return;
                            }
                            left -= n as u64;
                        }
                    });
                }
            });
            std::thread::spawn(move || {
                let held: Vec<_> = hold.incoming().collect();
                drop(held);
            });
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while udp.recv(&mut buf).is_ok() {
                    count.fetch_add(1, Relaxed);
                }
            });
            std::thread::spawn(move || {
                for s in tcp.incoming() {
                    let Ok(mut s) = s else { continue };
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 256 << 10];
                        let mut n = 0u64;
                        while let Ok(k) = s.read(&mut buf) {
                            if k == 0 {
                                break;
                            }
                            n += k as u64;
                        }
                        let _ = s.write_all(&n.to_be_bytes());
                    });
                }
            });
        });
        datagrams
    }

    /// [`bulk`] through the forwarder.
    fn forwarded_bulk(offload: bool, mib: u64, down: bool) -> Run {
        let net = ForwardNet::new().expect("namespaces");
        servers(&net.server);
        net.with_forwarder(offload, || {}, move |fwd: Forwarder| {
            let watch = std::env::var_os("BENCH_WATCH").map(|_| {
                let (fwd, stop) = (fwd.clone(), Arc::new(AtomicBool::new(false)));
                let s = stop.clone();
                let h = std::thread::spawn(move || {
                    while !s.load(Relaxed) {
                        for c in fwd.stack().connections() {
                            eprintln!(
                                "recv_q {:8} rcv_wnd {:8} bytes_in {:11} segs_out {}",
                                c.recv_queue, c.info.rcv_wnd, c.info.bytes_received, c.info.segs_out
                            );
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                });
                (stop, h)
            });
            let r = bulk(mib * MIB, down);
            if let Some((stop, h)) = watch {
                stop.store(true, Relaxed);
                h.join().unwrap();
            }
            if std::env::var_os("BENCH_DEBUG").is_some() {
                let t = fwd.stack().totals();
                eprintln!(
                    "offload {offload}: packets in {} ({} B avg), out {} ({} B avg), retransmits {}",
                    t.packets_in,
                    t.bytes_in / t.packets_in.max(1),
                    t.packets_out,
                    t.bytes_out / t.packets_out.max(1),
                    t.retransmits
                );
            }
            r
        })
        .expect("forwarder")
    }

    /// The same transfer forwarded by the kernel: client → router (ip_forward) → server.
    fn kernel_bulk(mib: u64, down: bool) -> Run {
        let (client, router, server) =
            (Netns::new().unwrap(), Netns::new().unwrap(), Netns::new().unwrap());
        let sh = |ns: &Netns, cmd: &str| ns.sh(&cmd.split(' ').collect::<Vec<_>>()).unwrap();
        sh(&router, "ip link add k0 type veth peer name k1");
        sh(&router, &format!("ip link set k1 netns {}", client.tid()));
        sh(&router, "ip link add s0 type veth peer name s1");
        sh(&router, &format!("ip link set s1 netns {}", server.tid()));
        sh(&router, "ip addr add 10.79.0.1/24 dev k0");
        sh(&router, "ip addr add 10.78.0.1/24 dev s0");
        sh(&router, "ip link set k0 up");
        sh(&router, "ip link set s0 up");
        router.run(|| std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")).unwrap();
        sh(&client, "ip addr add 10.79.0.2/24 dev k1");
        sh(&client, "ip link set k1 up");
        sh(&client, "ip route add default via 10.79.0.1");
        sh(&server, &format!("ip addr add {SERVER_IP}/24 dev s1"));
        sh(&server, "ip link set s1 up");
        sh(&server, "ip route add default via 10.78.0.1");
        servers(&server);
        client.run(move || bulk(mib * MIB, down))
    }

    /// 64-byte datagrams through the forwarder on one flow (one sender thread, so the
    /// forwarder keeps a core on 2-core machines) for `secs`: sent and delivered
    /// per second, and the forwarder's CPU time per datagram it took from the TUN (µs).
    fn udp_rate(secs: Duration) -> (f64, f64, f64) {
        let net = ForwardNet::new().expect("namespaces");
        let got = servers(&net.server);
        net.with_forwarder(
            false,
            || {},
            move |fwd: Forwarder| {
                let stop = Arc::new(AtomicBool::new(false));
                let sent = Arc::new(AtomicU64::new(0));
                let senders: Vec<_> = (0..1)
                    .map(|_| {
                        let (stop, sent) = (stop.clone(), sent.clone());
                        std::thread::spawn(move || {
                            let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
                            s.connect((SERVER_IP, UDP_PORT)).unwrap();
                            while !stop.load(Relaxed) {
                                if s.send(&[7u8; 64]).is_ok() {
                                    sent.fetch_add(1, Relaxed);
                                }
                            }
                        })
                    })
                    .collect();
                let before = got.load(Relaxed);
                let (cpu0, taken0) =
                    (runtime_threads_cpu(), fwd.stats().udp_datagrams_up.load(Relaxed));
                std::thread::sleep(secs);
                stop.store(true, Relaxed);
                for s in senders {
                    s.join().unwrap();
                }
                let taken = fwd.stats().udp_datagrams_up.load(Relaxed) - taken0;
                let us = (runtime_threads_cpu() - cpu0) * 1e6 / taken.max(1) as f64;
                if std::env::var_os("BENCH_DEBUG").is_some() {
                    eprintln!("{}", fwd.stats_json());
                }
                let secs = secs.as_secs_f64();
                (sent.load(Relaxed) as f64 / secs, (got.load(Relaxed) - before) as f64 / secs, us)
            },
        )
        .expect("forwarder")
    }

    /// Heap per idle forwarded flow with `n` open, and the kernel's TCP socket object size.
    fn idle_flow_memory(n: usize) -> (f64, u64) {
        let net = ForwardNet::new().expect("namespaces");
        servers(&net.server);
        let heap = net
            .with_forwarder(
                false,
                || {},
                move |fwd: Forwarder| {
                    let rt =
                        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    rt.block_on(async move {
                        let before = HEAP.load(Relaxed);
                        let at = SocketAddr::from((SERVER_IP, HOLD_PORT));
                        let mut conns = Vec::with_capacity(n);
                        for _ in 0..n {
                            conns.push(tokio::net::TcpStream::connect(at).await.expect("connect"));
                        }
                        let start = Instant::now();
                        while fwd.stats().tcp_open.load(Relaxed) < n as u64
                            && start.elapsed() < Duration::from_secs(30)
                        {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        // Let the handshakes' timers and first ACKs settle.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        (HEAP.load(Relaxed) - before) as f64 / n as f64
                    })
                },
            )
            .expect("forwarder");
        (heap, tcp_slab_object_size())
    }

    /// The object size of the kernel's `TCP` slab (struct tcp_sock), 0 when unreadable.
    fn tcp_slab_object_size() -> u64 {
        let slab = std::fs::read_to_string("/proc/slabinfo").unwrap_or_default();
        slab.lines()
            .find(|l| l.starts_with("TCP "))
            .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
            .unwrap_or(0)
    }
}

#[cfg(target_os = "linux")]
fn main() {
    app::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("tun_forward_bench needs Linux namespaces and a TUN device");
    std::process::exit(1);
}

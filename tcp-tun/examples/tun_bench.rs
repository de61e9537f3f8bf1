//! Bulk throughput over a TUN at MTU 1500, kernel → stack and stack → kernel, offloads off
//! and on, next to the kernel's own TCP across a veth pair measured in the same run. Needs
//! root; everything happens in network namespaces the bench creates (nothing touches the
//! host's interfaces).
//!
//! ```text
//! sudo cargo run --release -p tcp-tun --example tun_bench -- [--mib N]
//! ```
//! Prints a Markdown table (Gbit/s of payload, best of three runs of N MiB, default 1024).

#[cfg(target_os = "linux")]
mod bench {
    use std::io::{self, Read, Write};
    use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::process::Command;
    use std::time::{Duration, Instant};

    use tcp_tokio::Stack;
    use tcp_tun::Tun;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
    const STACK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
    const CHUNK: usize = 256 * 1024;

    fn run(args: &[&str]) -> io::Result<()> {
        let out = Command::new(args[0]).args(&args[1..]).output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// Run `f` on a thread moved into a new network namespace with `lo` up.
    fn in_new_netns<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
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

    /// Move the calling thread into the named namespace.
    fn enter(ns: &str) -> io::Result<()> {
        let f = std::fs::File::open(format!("/var/run/netns/{ns}"))?;
        // SAFETY: `f` is an open namespace file, alive for the call; `setns` moves only the
        // calling thread.
        let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn gbps(bytes: u64, d: Duration) -> f64 {
        bytes as f64 * 8.0 / d.as_secs_f64() / 1e9
    }

    fn kernel_send(mut s: TcpStream, total: u64) -> io::Result<()> {
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
        Ok(())
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

    /// (kernel → stack, stack → kernel) times for `total` bytes.
    fn tun_run(offload: bool, total: u64) -> (Duration, Duration) {
        in_new_netns(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let tun = Tun::builder()
                    .name("bench0")
                    .kernel_address(KERNEL.into(), 24)
                    .mtu(1500)
                    .offload(offload)
                    .build()
                    .expect("TUN");
                let stack = Stack::builder().address(STACK.into()).build(tun).unwrap();

                let listener = stack.bind(SocketAddr::from((STACK, 5001))).await.unwrap();
                let start = Instant::now();
                let client = std::thread::spawn(move || {
                    kernel_send(TcpStream::connect((STACK, 5001))?, total)
                });
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; CHUNK];
                let mut got = 0u64;
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    got += n as u64;
                }
                let down = start.elapsed();
                assert_eq!(got, total);
                s.shutdown().await.unwrap();
                drop(s);
                // The client thread finishes once our FIN arrives; wait without blocking
                // the runtime that must deliver it.
                while !client.is_finished() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                client.join().unwrap().expect("kernel client");

                let kl = TcpListener::bind((KERNEL, 5002)).unwrap();
                let start = Instant::now();
                let server = std::thread::spawn(move || kernel_recv(kl.accept()?.0));
                let mut c = stack.connect(SocketAddr::from((KERNEL, 5002))).await.unwrap();
                let data = vec![7u8; CHUNK];
                let mut sent = 0u64;
                while sent < total {
                    let n = (total - sent).min(CHUNK as u64) as usize;
                    c.write_all(&data[..n]).await.unwrap();
                    sent += n as u64;
                }
                c.shutdown().await.unwrap();
                while !server.is_finished() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let up = start.elapsed();
                assert_eq!(server.join().unwrap().expect("kernel server"), total);
                (down, up)
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
            kernel_recv(l.accept()?.0)
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
        let mut mib = 1024u64;
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--mib" => mib = args.next().and_then(|v| v.parse().ok()).expect("--mib N"),
                "--bench" => {}
                other => panic!("unknown argument {other:?}; usage: tun_bench [--mib N]"),
            }
        }
        let total = mib << 20;
        let best = |f: &dyn Fn() -> Duration| (0..3).map(|_| f()).min().unwrap();
        let veth = best(&|| veth_run(total).expect("veth"));
        println!("| path (MTU 1500, {mib} MiB, best of 3) | kernel → stack | stack → kernel |");
        println!("|---|---|---|");
        for offload in [false, true] {
            let runs: Vec<_> = (0..3).map(|_| tun_run(offload, total)).collect();
            let down = runs.iter().map(|r| r.0).min().unwrap();
            let up = runs.iter().map(|r| r.1).min().unwrap();
            println!(
                "| TUN, offload {} | {:.1} Gbit/s | {:.1} Gbit/s |",
                if offload { "on" } else { "off" },
                gbps(total, down),
                gbps(total, up)
            );
        }
        println!(
            "| kernel TCP over veth (both ends kernel) | {:.1} Gbit/s | {:.1} Gbit/s |",
            gbps(total, veth),
            gbps(total, veth)
        );
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

//! 64-byte round trips with a kernel client over a TUN: our stack (tcp-tun, tokio) against
//! smoltcp, in the same run, in the same kind of network namespace, alternating, with
//! threaded NAPI on and off. Needs root.
//!
//! ```text
//! sudo cargo run --release -p benches --example tun_rr -- [--rr N] [--runs N]
//!     [--napi on|off|both] [--only ours|smoltcp] [--here]
//! ```
//! Each run makes a fresh TUN (`IFF_TUN | IFF_NO_PI`, no offloads, MTU 1500), starts one
//! echo server on it in a thread of its own (`benches::tun_echo`), and a kernel client
//! (`TCP_NODELAY`) sends 64 bytes and reads them back N times (default 20,000, after 200
//! not timed). Runs alternate ours and smoltcp, which goes first alternating too; the table
//! gives medians of `--runs` (default 5) round trips per second, the server thread's CPU
//! time per round trip (steadier than the rate on a busy machine), and the ratio ours /
//! smoltcp of the rates.
//!
//! Without `--here` the bench makes a namespace (`ip netns add`), runs itself inside with
//! `ip netns exec` (as a user would; `/sys` there is the namespace's, so both servers can
//! switch threaded NAPI on directly), and deletes it. `--only` runs one server (for
//! `strace -f -c` or `perf record`).

#[cfg(target_os = "linux")]
mod bench {
    use std::io::{self, Read, Write};
    use std::net::TcpStream;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use benches::tun_echo::{self, Served, PORT, SERVER};

    /// Round trips before the timed ones.
    const WARMUP: u64 = 200;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Server {
        Ours,
        Smoltcp,
    }

    /// One run's figures.
    struct Run {
        elapsed: Duration,
        served: Served,
        napi: bool,
    }

    /// One run: a fresh TUN named `name`, `server` on it, `n` timed round trips.
    fn run(server: Server, name: &str, napi: bool, n: u64) -> io::Result<Run> {
        let (tx, rx) = mpsc::channel();
        let name2 = name.to_owned();
        let srv =
            std::thread::Builder::new().name("echo-server".into()).spawn(move || match server {
                Server::Ours => tun_echo::serve_ours(&name2, napi, tx),
                Server::Smoltcp => tun_echo::serve_smoltcp(&name2, napi, tx),
            })?;
        let Ok(granted) = rx.recv() else {
            return Err(srv.join().expect("server thread").expect_err("no ready, no error"));
        };
        let mut s = TcpStream::connect((SERVER, PORT))?;
        s.set_nodelay(true)?;
        let mut buf = [7u8; 64];
        for _ in 0..WARMUP {
            s.write_all(&buf)?;
            s.read_exact(&mut buf)?;
        }
        let start = Instant::now();
        for _ in 0..n {
            s.write_all(&buf)?;
            s.read_exact(&mut buf)?;
        }
        let elapsed = start.elapsed();
        drop(s);
        let served = srv.join().expect("server thread")?;
        assert_eq!(served.bytes, (WARMUP + n) * 64);
        Ok(Run { elapsed, served, napi: granted })
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    /// Run the bench inside a namespace of its own through `ip netns exec`.
    fn reexec_in_netns() -> io::Result<std::process::ExitStatus> {
        let ns = format!("tunrr-{}", std::process::id());
        let ip = |args: &[&str]| -> io::Result<()> {
            let st = std::process::Command::new("ip").args(args).status()?;
            if st.success() {
                Ok(())
            } else {
                Err(io::Error::other(format!("ip {args:?} failed")))
            }
        };
        ip(&["netns", "add", &ns])?;
        let res = ip(&["-n", &ns, "link", "set", "lo", "up"]).and_then(|()| {
            std::process::Command::new("ip")
                .args(["netns", "exec", &ns])
                .arg(std::env::current_exe()?)
                .arg("--here")
                .args(std::env::args().skip(1))
                .status()
        });
        let _ = ip(&["netns", "del", &ns]);
        res
    }

    pub(crate) fn main() {
        // SAFETY: `geteuid` takes no arguments and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("tun_rr needs root to create a network namespace and TUN devices");
            std::process::exit(1);
        }
        const USAGE: &str = "usage: tun_rr [--rr N] [--runs N] [--napi on|off|both] \
                             [--only ours|smoltcp] [--here]";
        let (mut n, mut runs, mut here) = (20_000u64, 5usize, false);
        let mut napis = vec![true, false];
        let mut servers = vec![Server::Ours, Server::Smoltcp];
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--rr" => n = args.next().and_then(|v| v.parse().ok()).expect(USAGE),
                "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect(USAGE),
                "--napi" => {
                    napis = match args.next().as_deref() {
                        Some("on") => vec![true],
                        Some("off") => vec![false],
                        Some("both") => vec![true, false],
                        _ => panic!("{USAGE}"),
                    }
                }
                "--only" => {
                    servers = match args.next().as_deref() {
                        Some("ours") => vec![Server::Ours],
                        Some("smoltcp") => vec![Server::Smoltcp],
                        _ => panic!("{USAGE}"),
                    }
                }
                "--here" => here = true,
                "--bench" => {}
                "-h" | "--help" => {
                    println!("{USAGE}");
                    return;
                }
                other => panic!("unknown argument {other:?}; {USAGE}"),
            }
        }
        if !here {
            match reexec_in_netns() {
                Ok(st) => std::process::exit(st.code().unwrap_or(1)),
                Err(e) => {
                    eprintln!("tun_rr: {e}");
                    std::process::exit(1);
                }
            }
        }
        let runs = runs.max(1);
        println!(
            "| 64 B round trips, kernel client, TUN offload off, MTU 1500 ({n} per run, \
             median of {runs}) | round trips/s | server CPU per round trip | ours / smoltcp |"
        );
        println!("|---|---|---|---|");
        let mut seq = 0;
        for &napi in &napis {
            // results[server] = (rates, cpu per round trip in µs, napi granted in every run)
            let mut results: Vec<(Vec<f64>, Vec<f64>, bool)> =
                servers.iter().map(|_| (Vec::new(), Vec::new(), true)).collect();
            for r in 0..runs {
                let mut order: Vec<usize> = (0..servers.len()).collect();
                if r % 2 == 1 {
                    order.reverse();
                }
                for i in order {
                    seq += 1;
                    let run = run(servers[i], &format!("rr{seq}"), napi, n).expect("run");
                    let res = &mut results[i];
                    res.0.push(n as f64 / run.elapsed.as_secs_f64());
                    res.1.push(run.served.cpu.as_secs_f64() * 1e6 / (n + WARMUP) as f64);
                    res.2 &= run.napi == napi;
                }
            }
            let rates: Vec<f64> = results.iter().map(|r| median(r.0.clone())).collect();
            for (i, (server, res)) in servers.iter().zip(&results).enumerate() {
                let ratio = match (servers.len(), i) {
                    (2, 0) => format!("{:.2}×", rates[0] / rates[1]),
                    _ => String::new(),
                };
                println!(
                    "| {}, threaded NAPI {}{} | {:.1} k/s | {:.1} µs | {ratio} |",
                    match server {
                        Server::Ours => "tcp-tun (tokio)",
                        Server::Smoltcp => "smoltcp 0.12",
                    },
                    if napi { "on" } else { "off" },
                    if res.2 { "" } else { " (not granted in some runs)" },
                    rates[i] / 1e3,
                    median(res.1.clone()),
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
    eprintln!("tun_rr needs Linux");
}

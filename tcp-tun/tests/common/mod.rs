//! Shared by the interop tests: a private network namespace per test, a TUN inside it, and
//! the byte pattern both sides check.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tcp_tokio::{CongestionAlgorithm, Stack, TcpInfo};
use tcp_tun::Tun;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The kernel's side of the TUN.
pub const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The stack's address.
pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The TUN's name inside each test's namespace.
pub const TUN_NAME: &str = "tcptun0";

/// Whether we may create namespaces and TUN devices; prints why not.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: `geteuid` takes no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipping {test}: it needs root (CAP_NET_ADMIN) to create a network namespace and a TUN device");
    }
    root
}

/// Whether `root_or_skip` holds and every tool in `tools` is on the `PATH`. When some are
/// missing, the repository's own `.ci/install-deps` runs first (once per test binary, as root
/// through apt-get); what is still missing afterwards is printed as the reason to skip.
pub fn tools_or_skip(test: &str, tools: &[&str]) -> bool {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    if !root_or_skip(test) {
        return false;
    }
    let missing = || -> Vec<&str> { tools.iter().copied().filter(|t| !on_path(t)).collect() };
    if !missing().is_empty() {
        INSTALL.call_once(|| {
            // Both users of this module (tcp-tun, examples) sit one level below the root.
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/install-deps");
            match Command::new("bash").arg(script).output() {
                Ok(out) if out.status.success() => {}
                Ok(out) => eprintln!("{script} failed: {}", String::from_utf8_lossy(&out.stderr)),
                Err(e) => eprintln!("{script}: {e}"),
            }
        });
    }
    let still = missing();
    if !still.is_empty() {
        eprintln!(
            "skipping {test}: {} missing and .ci/install-deps could not install it",
            still.join(", ")
        );
    }
    still.is_empty()
}

/// Whether `tool` is an executable in a directory of `$PATH`.
fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Run `f` on a dedicated thread that first moves into a new network namespace (with `lo`
/// up). Threads and processes started from that thread, sockets it opens and the TUN it
/// creates all live in that namespace, which disappears when the last of them is gone.
pub fn in_netns<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::spawn(move || {
        // SAFETY: `unshare` takes a flag word only; CLONE_NEWNET moves just this thread
        // (allowed in a multi-threaded process, unlike CLONE_NEWUSER or CLONE_NEWNS).
        let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "unshare(CLONE_NEWNET): {}", io::Error::last_os_error());
        run(&["ip", "link", "set", "lo", "up"]);
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Run a command (in the calling thread's namespace), panicking with its output on failure.
pub fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run .ci/install-deps)", args[0]));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 5 % random loss on the TUN, each way (iptables `statistic`: this kernel has no netem).
pub fn five_percent_loss() {
    five_percent_loss_on(TUN_NAME);
}

/// 5 % random loss each way on interface `dev` of the calling thread's namespace.
pub fn five_percent_loss_on(dev: &str) {
    for (chain, dir) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
        run(&[
            "iptables",
            "-A",
            chain,
            dir,
            dev,
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            "0.05",
            "-j",
            "DROP",
        ]);
    }
}

/// In a new namespace: a TUN (kernel side 10.77.0.1/24, the stack at 10.77.0.2), a
/// current-thread runtime, and `f` given the stack. `setup` runs after the TUN is up, before
/// the stack starts (for iptables rules).
pub fn with_stack<R, F, Fut>(offload: bool, mtu: usize, setup: fn(), f: F) -> R
where
    R: Send + 'static,
    F: FnOnce(Stack) -> Fut + Send + 'static,
    Fut: Future<Output = R>,
{
    in_netns(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let tun = Tun::builder()
                .name(TUN_NAME)
                .kernel_address(IpAddr::V4(KERNEL_IP), 24)
                .mtu(mtu)
                .offload(offload)
                .build()
                .expect("TUN");
            setup();
            let stack = Stack::builder().address(IpAddr::V4(STACK_IP)).build(tun).unwrap();
            f(stack).await
        })
    })
}

/// Run blocking kernel-side work on a thread in the current namespace and await it without
/// blocking the runtime.
pub async fn kernel_side<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let h = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.await {
        Ok(r) => r,
        Err(_) => std::panic::resume_unwind(h.join().unwrap_err()),
    }
}

/// [`kernel_side`] on a thread moved into the named namespace `ns` first (`None`: the
/// caller's).
pub async fn kernel_side_in<R: Send + 'static>(
    ns: Option<&str>,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let ns = ns.map(str::to_owned);
    kernel_side(move || {
        if let Some(ns) = ns {
            enter_netns(&ns);
        }
        f()
    })
    .await
}

/// Move the calling thread into the named namespace (`/var/run/netns/NAME`).
pub fn enter_netns(ns: &str) {
    let f = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("namespace file");
    // SAFETY: `f` is an open namespace file, alive for the call; `setns` moves only the
    // calling thread.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns: {}", io::Error::last_os_error());
}

/// `len` bytes of a xorshift sequence started from `seed`: no repeating pattern of a small
/// period, so a misplaced segment cannot go unnoticed.
pub fn xorshift_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The test pattern: byte `i` of a stream is `i mod 251`.
pub struct Pattern(Vec<u8>);

impl Pattern {
    pub fn new() -> Self {
        Pattern((0..251 * 1024).map(|i| (i % 251) as u8).collect())
    }

    /// Bytes at stream offset `at`, up to `max` of them.
    pub fn at(&self, at: u64, max: usize) -> &[u8] {
        let start = (at % 251) as usize;
        let len = max.min(self.0.len() - 251);
        &self.0[start..start + len]
    }

    /// Check that `buf` is what the stream holds at offset `at`.
    pub fn check(&self, at: u64, buf: &[u8]) {
        let mut off = 0;
        while off < buf.len() {
            let want = self.at(at + off as u64, buf.len() - off);
            let got = &buf[off..off + want.len()];
            if got != want {
                let i = got.iter().zip(want).position(|(a, b)| a != b).unwrap();
                panic!(
                    "byte {} of the stream is {}, expected {}",
                    at + (off + i) as u64,
                    got[i],
                    want[i]
                );
            }
            off += want.len();
        }
    }
}

/// Megabits per second.
pub fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 * 8.0 / secs / 1e6
}

/// What one bulk transfer of [`kernel_to_stack_in`] or [`stack_to_kernel_in`] saw.
pub struct Transfer {
    /// How long it took.
    pub elapsed: Duration,
    /// The kernel socket's congestion control (`TCP_CONGESTION`).
    pub kernel_cc: String,
    /// Our side's congestion control.
    pub stack_cc: CongestionAlgorithm,
    /// Our side's connection at the end.
    pub info: TcpInfo,
}

/// Kernel client → our server listening at `at`: `total` bytes of the pattern, checked byte
/// by byte. Returns how long it took.
pub async fn kernel_to_stack(stack: &Stack, at: SocketAddr, total: u64) -> Duration {
    kernel_to_stack_in(None, stack, at, total).await.elapsed
}

/// Our client → kernel server listening at `at`: `total` bytes of the pattern, checked byte
/// by byte. Returns how long it took.
pub async fn stack_to_kernel(stack: &Stack, at: SocketAddr, total: u64) -> Duration {
    stack_to_kernel_in(None, stack, at, total).await.elapsed
}

/// [`kernel_to_stack`] with the kernel's client in namespace `ns` (else the caller's).
pub async fn kernel_to_stack_in(
    ns: Option<&str>,
    stack: &Stack,
    at: SocketAddr,
    total: u64,
) -> Transfer {
    let pattern = Arc::new(Pattern::new());
    let listener = stack.bind(at).await.unwrap();
    let p = pattern.clone();
    let start = Instant::now();
    let client = kernel_side_in(ns, move || -> io::Result<String> {
        let mut s = TcpStream::connect(at)?;
        let cc = kernel_cc(&s);
        let mut sent = 0u64;
        while sent < total {
            let chunk = p.at(sent, (total - sent).min(64 * 1024) as usize);
            s.write_all(chunk)?;
            sent += chunk.len() as u64;
        }
        s.shutdown(Shutdown::Write)?;
        // Wait for the server's close so every byte was acknowledged.
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)?;
        assert!(rest.is_empty());
        Ok(cc)
    });
    let server = async {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            pattern.check(got, &buf[..n]);
            got += n as u64;
        }
        assert_eq!(got, total, "bytes received by the stack");
        let ours = (s.tcp_congestion().unwrap(), s.info());
        s.shutdown().await.unwrap();
        ours
    };
    let (cc, (stack_cc, info)) = tokio::join!(client, server);
    Transfer { elapsed: start.elapsed(), kernel_cc: cc.expect("kernel client"), stack_cc, info }
}

/// [`stack_to_kernel`] with the kernel's server in namespace `ns` (else the caller's).
pub async fn stack_to_kernel_in(
    ns: Option<&str>,
    stack: &Stack,
    at: SocketAddr,
    total: u64,
) -> Transfer {
    let (ready, listening) = tokio::sync::oneshot::channel();
    let pattern = Arc::new(Pattern::new());
    let p = pattern.clone();
    let start = Instant::now();
    let server = kernel_side_in(ns, move || -> io::Result<(u64, String)> {
        let listener = TcpListener::bind(at)?;
        let _ = ready.send(());
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            p.check(got, &buf[..n]);
            got += n as u64;
        }
        Ok((got, kernel_cc(&s)))
    });
    let client = async {
        listening.await.expect("kernel server listening");
        let mut s = stack.connect(at).await.unwrap();
        let mut sent = 0u64;
        while sent < total {
            let chunk = pattern.at(sent, (total - sent).min(64 * 1024) as usize);
            s.write_all(chunk).await.unwrap();
            sent += chunk.len() as u64;
        }
        s.shutdown().await.unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.unwrap();
        (s.tcp_congestion().unwrap(), s.info())
    };
    let (got, (stack_cc, info)) = tokio::join!(server, client);
    let (got, kernel_cc) = got.expect("kernel server");
    assert_eq!(got, total, "bytes received by the kernel");
    Transfer { elapsed: start.elapsed(), kernel_cc, stack_cc, info }
}

/// The congestion control of kernel socket `s` (`TCP_CONGESTION`).
pub fn kernel_cc(s: &TcpStream) -> String {
    let mut buf = [0u8; 16];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `s` is an open socket; `buf` and `len` are valid for the call.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "TCP_CONGESTION: {}", io::Error::last_os_error());
    String::from_utf8_lossy(&buf[..len as usize]).trim_end_matches('\0').to_owned()
}

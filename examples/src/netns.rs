//! Network namespaces on threads of their own, for the forwarder's namespace tests and its
//! bench: a thread that moved into a new namespace runs the closures sent to it, and what
//! it starts (threads, processes, sockets, TUN devices) lives there too. The namespace
//! disappears with the last of them.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::thread::JoinHandle;

use tcp_tokio::Stack;
use tcp_tun::Tun;

use crate::forward::{ForwardConfig, Forwarder};

type Job = Box<dyn FnOnce() + Send>;

/// A network namespace, and a thread inside it that runs closures ([`Netns::run`]).
#[derive(Debug)]
pub struct Netns {
    jobs: Option<mpsc::Sender<Job>>,
    tid: libc::pid_t,
    thread: Option<JoinHandle<()>>,
}

impl Netns {
    /// A new namespace with `lo` up.
    ///
    /// # Errors
    /// `unshare(CLONE_NEWNET)` failed (not root), or `ip` did.
    pub fn new() -> io::Result<Netns> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            // SAFETY: `unshare` takes a flag word only; CLONE_NEWNET moves just this
            // thread. `gettid` takes nothing and cannot fail.
            let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            let up = if r == 0 {
                run(&["ip", "link", "set", "lo", "up"])
            } else {
                Err(io::Error::last_os_error())
            };
            let _ = ready_tx.send(up.map(|()| unsafe { libc::gettid() }));
            for job in rx {
                job();
            }
        });
        let tid = ready.recv().map_err(|_| io::Error::other("namespace thread died"))??;
        Ok(Netns { jobs: Some(jobs), tid, thread: Some(thread) })
    }

    /// The namespace thread's id: `ip link set DEV netns TID` moves a device in.
    pub fn tid(&self) -> libc::pid_t {
        self.tid
    }

    /// Run `f` on the namespace's thread and return its result (a panic is resumed here).
    pub fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
        });
        self.jobs.as_ref().expect("live").send(job).expect("namespace thread alive");
        match rx.recv().expect("namespace thread alive") {
            Ok(r) => r,
            Err(panic) => resume_unwind(panic),
        }
    }

    /// Run a command in the namespace, failing with its output if it fails.
    ///
    /// # Errors
    /// The command could not start or exited unsuccessfully.
    pub fn sh(&self, args: &[&str]) -> io::Result<()> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.run(move || run(&args.iter().map(String::as_str).collect::<Vec<_>>()))
    }

    /// Spawn a process in the namespace; it is killed when the returned guard drops.
    ///
    /// # Errors
    /// The process could not start.
    pub fn spawn(&self, mut cmd: Command) -> io::Result<Killed> {
        let child = self.run(move || cmd.spawn())?;
        Ok(Killed(child))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A child process killed (and reaped) on drop.
#[derive(Debug)]
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run a command in the calling thread's namespace.
///
/// # Errors
/// It could not start (`NotFound`: run .ci/install-deps) or exited unsuccessfully (its
/// output in the message).
pub fn run(args: &[&str]) -> io::Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", args[0])))?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )))
}

/// The forwarder's TUN.
pub const TUN: &str = "fwdtun0";
/// The kernel's side of the TUN.
pub const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The forwarder's stack's own address.
pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The uplink's address on the forwarder's side of the veth.
pub const UPLINK_IP: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
/// The server namespace's address.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
/// The kernel's IPv6 address on the TUN (a /64).
pub const KERNEL_IP6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);
/// The forwarder's stack's own IPv6 address.
pub const STACK_IP6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);
/// The uplink's IPv6 address on the forwarder's side of the veth (a /64).
pub const UPLINK_IP6: Ipv6Addr = Ipv6Addr::new(0xfd78, 0, 0, 0, 0, 0, 0, 1);
/// The server namespace's IPv6 address.
pub const SERVER_IP6: Ipv6Addr = Ipv6Addr::new(0xfd78, 0, 0, 0, 0, 0, 0, 2);
/// The firewall mark of the forwarder's own sockets.
pub const MARK: u32 = 1;
/// The routing table the mark selects.
pub const TABLE: u32 = 100;

/// The usual tun2socks layout, minus the TUN: a `client` namespace (the applications and the
/// forwarder) and a `server` namespace at [`SERVER_IP`] and [`SERVER_IP6`], joined by a
/// veth whose routes (IPv4 and IPv6) live only in table [`TABLE`], which a rule of each
/// family selects for packets marked [`MARK`]. The forwarder's TUN, made by
/// [`ForwardNet::with_forwarder`], takes everything else.
#[derive(Debug)]
pub struct ForwardNet {
    /// Where the applications and the forwarder run.
    pub client: Netns,
    /// Where the servers run.
    pub server: Netns,
}

impl ForwardNet {
    /// Both namespaces, the veth between them, the policy rule.
    ///
    /// # Errors
    /// Not root, or `ip` failed.
    pub fn new() -> io::Result<ForwardNet> {
        let (client, server) = (Netns::new()?, Netns::new()?);
        let (uplink, srv) = (format!("{UPLINK_IP}/24"), format!("{SERVER_IP}/24"));
        let (mark, table) = (MARK.to_string(), TABLE.to_string());
        let tid = server.tid().to_string();
        client.sh(&["ip", "link", "add", "fwd0", "type", "veth", "peer", "name", "fwd1"])?;
        client.sh(&["ip", "link", "set", "fwd1", "netns", &tid])?;
        client.sh(&["ip", "addr", "add", &uplink, "dev", "fwd0", "noprefixroute"])?;
        client.sh(&["ip", "link", "set", "fwd0", "up"])?;
        let net = "10.78.0.0/24";
        let src = UPLINK_IP.to_string();
        client.sh(&["ip", "route", "add", net, "dev", "fwd0", "src", &src, "table", &table])?;
        client.sh(&["ip", "rule", "add", "fwmark", &mark, "lookup", &table])?;
        // The same for IPv6, without duplicate address detection so the addresses work at
        // once.
        let (uplink6, srv6) = (format!("{UPLINK_IP6}/64"), format!("{SERVER_IP6}/64"));
        let dev = ["dev", "fwd0", "nodad", "noprefixroute"];
        client.sh(&[&["ip", "-6", "addr", "add", &uplink6][..], &dev].concat())?;
        let (net6, src6) = ("fd78::/64", UPLINK_IP6.to_string());
        let route = ["ip", "-6", "route", "add", net6, "dev", "fwd0", "src", &src6];
        client.sh(&[&route[..], &["table", &table]].concat())?;
        client.sh(&["ip", "-6", "rule", "add", "fwmark", &mark, "lookup", &table])?;
        // Replies from the server arrive on a device the main table does not route back to.
        client.run(|| {
            for dev in ["all", "default", "fwd0"] {
                let path = format!("/proc/sys/net/ipv4/conf/{dev}/rp_filter");
                std::fs::write(path, "0")?;
            }
            io::Result::Ok(())
        })?;
        server.sh(&["ip", "addr", "add", &srv, "dev", "fwd1"])?;
        server.sh(&["ip", "-6", "addr", "add", &srv6, "dev", "fwd1", "nodad"])?;
        server.sh(&["ip", "link", "set", "fwd1", "up"])?;
        Ok(ForwardNet { client, server })
    }

    /// In the client namespace: the TUN [`TUN`] (MTU 1500, `offload` as given, IPv4 and IPv6)
    /// with the default routes of both families into it, `setup` (for iptables rules), a
    /// stack at [`STACK_IP`] and [`STACK_IP6`] on a
    /// multi-thread runtime, and a [`Forwarder`] on it marking its sockets [`MARK`]; then
    /// `f` on a thread of that namespace. The forwarder stops when `f` returns.
    ///
    /// # Errors
    /// The TUN, the route or the stack could not be made.
    pub fn with_forwarder<R: Send + 'static>(
        &self,
        offload: bool,
        setup: fn(),
        f: impl FnOnce(Forwarder) -> R + Send + 'static,
    ) -> io::Result<R> {
        let cfg = ForwardConfig { fwmark: Some(MARK), ..ForwardConfig::default() };
        self.with_forwarder_config(offload, cfg, setup, f)
    }

    /// [`ForwardNet::with_forwarder`] with the forwarder's configuration given (its
    /// `fwmark` should be `Some(MARK)`).
    ///
    /// # Errors
    /// As [`ForwardNet::with_forwarder`].
    pub fn with_forwarder_config<R: Send + 'static>(
        &self,
        offload: bool,
        cfg: ForwardConfig,
        setup: fn(),
        f: impl FnOnce(Forwarder) -> R + Send + 'static,
    ) -> io::Result<R> {
        self.client.run(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(async move {
                let tun = Tun::builder()
                    .name(TUN)
                    .kernel_address(IpAddr::V4(KERNEL_IP), 24)
                    .mtu(1500)
                    .offload(offload)
                    .build()?;
                run(&["ip", "route", "add", "default", "dev", TUN])?;
                let kernel6 = format!("{KERNEL_IP6}/64");
                run(&["ip", "-6", "addr", "add", &kernel6, "dev", TUN, "nodad"])?;
                run(&["ip", "-6", "route", "add", "default", "dev", TUN])?;
                setup();
                let stack = Stack::builder()
                    .address(IpAddr::V4(STACK_IP))
                    .address(IpAddr::V6(STACK_IP6))
                    .config(Forwarder::stack_config())
                    .build(tun)?;
                let fwd = Forwarder::new(stack, cfg);
                let task = tokio::spawn(fwd.clone().start()?);
                let (tx, rx) = tokio::sync::oneshot::channel();
                let h = std::thread::spawn(move || {
                    let _ = tx.send(f(fwd));
                });
                let r = match rx.await {
                    Ok(r) => r,
                    Err(_) => resume_unwind(h.join().unwrap_err()),
                };
                task.abort();
                Ok(r)
            })
        })
    }
}

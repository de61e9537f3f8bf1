//! Echo servers on a Linux TUN, for the round-trip bench against a kernel client
//! (`examples/tun_rr.rs`): tcp-tokio on [`tcp_tun::Tun`] with the simplest tokio echo loop,
//! and smoltcp on the raw TUN descriptor, driven the way smoltcp's own examples drive a TUN
//! (poll the interface, serve the socket, wait in `poll(2)` until the descriptor is readable
//! or smoltcp's next deadline). Both make the same interface in the calling thread's network
//! namespace: `IFF_TUN | IFF_NO_PI`, no offloads, MTU 1500, the kernel at [`KERNEL`]`/24`,
//! and `IFF_NAPI` with threaded NAPI when asked for. Needs root.
//!
//! Each server serves one connection on [`PORT`], echoing whatever arrives, and returns the
//! CPU time its thread spent from the connection's arrival to its end.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;
use std::sync::mpsc::Sender;
use std::time::Duration;

use smoltcp::iface::{Config, Interface, PollResult, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The kernel's side of the TUN.
pub const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The echo server's address (ours or smoltcp's).
pub const SERVER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The echo port.
pub const PORT: u16 = 5004;
/// The interface MTU.
pub const MTU: usize = 1500;
/// Send and receive buffers of the smoltcp socket (tcp-tokio's initial size).
const BUFFER: usize = 256 * 1024;
/// A server gives up after this long without its connection ending.
const LIMIT: Duration = Duration::from_secs(120);

/// What a server reports once its connection ended.
#[derive(Clone, Copy, Debug)]
pub struct Served {
    /// CPU time of the server's thread (user and system) from accepting the connection to
    /// its end: the stack, the application and the system calls of both.
    pub cpu: Duration,
    /// Bytes echoed.
    pub bytes: u64,
}

/// The calling thread's CPU time (user and system).
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, exclusive timespec for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Our stack: a [`tcp_tun::Tun`] named `name` (threaded NAPI as `napi` asks), a tcp-tokio
/// stack on a current-thread runtime, and an echo task. `ready` gets whether the TUN got
/// threaded NAPI once the server listens.
///
/// # Errors
/// Creating the TUN, or the connection failing.
pub fn serve_ours(name: &str, napi: bool, ready: Sender<bool>) -> io::Result<Served> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let tun = tcp_tun::Tun::builder()
            .name(name)
            .kernel_address(KERNEL.into(), 24)
            .mtu(MTU)
            .offload(false)
            .threaded_napi(napi)
            .build()?;
        let granted = tun.threaded_napi();
        let stack = tcp_tokio::Stack::builder()
            .address(SERVER.into())
            .build(tun)
            .map_err(io::Error::other)?;
        let listener = stack.bind(SocketAddr::from((SERVER, PORT))).await?;
        let _ = ready.send(granted);
        let (mut s, _) = tokio::time::timeout(LIMIT, listener.accept())
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        let cpu = thread_cpu();
        // A task per connection, as a tokio server spawns it (a future in `block_on` itself
        // would cost a non-blocking `epoll_wait` each time the stack's task wakes it).
        let echo = tokio::spawn(async move {
            s.set_nodelay(true)?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut bytes = 0;
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<u64, io::Error>(bytes);
                }
                s.write_all(&buf[..n]).await?;
                bytes += n as u64;
            }
        });
        let bytes = echo.await.map_err(io::Error::other)??;
        Ok(Served { cpu: thread_cpu() - cpu, bytes })
    })
}

/// smoltcp: a TUN named `name` made by hand with the same flags and settings as
/// [`serve_ours`]'s, an `Interface` (medium IP) with one TCP socket (Nagle off, as the
/// other side's `set_nodelay`), and the poll loop of smoltcp's examples. `ready` gets
/// whether the TUN got threaded NAPI once the socket listens.
///
/// # Errors
/// Creating the TUN, or the connection not ending within two minutes.
pub fn serve_smoltcp(name: &str, napi: bool, ready: Sender<bool>) -> io::Result<Served> {
    let (fd, granted) = make_tun(name, napi)?;
    let mut dev = TunDev { fd: fd.as_raw_fd(), rx: vec![0; MTU], tx: vec![0; MTU] };
    let start = smoltcp::time::Instant::now();
    let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut dev, start);
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::Ipv4(SERVER), 24)).expect("one address");
    });
    let mut sockets = SocketSet::new(Vec::new());
    let mut sock = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; BUFFER]),
        tcp::SocketBuffer::new(vec![0; BUFFER]),
    );
    sock.set_nagle_enabled(false);
    sock.listen(PORT).map_err(io::Error::other)?;
    let h = sockets.add(sock);
    let _ = ready.send(granted);

    let deadline = std::time::Instant::now() + LIMIT;
    let mut cpu = None;
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0;
    loop {
        let now = smoltcp::time::Instant::now();
        iface.poll(now, &mut dev, &mut sockets);
        let s = sockets.get_mut::<tcp::Socket<'_>>(h);
        if cpu.is_none() && s.is_active() {
            cpu = Some(thread_cpu());
        }
        while s.can_recv() && s.send_capacity() - s.send_queue() >= buf.len() {
            let n = s.recv_slice(&mut buf).map_err(io::Error::other)?;
            let sent = s.send_slice(&buf[..n]).map_err(io::Error::other)?;
            debug_assert_eq!(sent, n);
            bytes += n as u64;
        }
        if s.state() == tcp::State::CloseWait && !s.can_recv() {
            s.close();
        }
        let done = cpu.is_some() && !s.is_open();
        // What the socket just queued leaves now rather than after another wait.
        while iface.poll_egress(now, &mut dev, &mut sockets) == PollResult::SocketStateChanged {}
        if done {
            let cpu = thread_cpu() - cpu.unwrap_or_default();
            return Ok(Served { cpu, bytes });
        }
        if std::time::Instant::now() > deadline {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        let delay = iface.poll_delay(smoltcp::time::Instant::now(), &sockets);
        wait_readable(dev.fd, delay.map(|d| Duration::from_micros(d.total_micros())));
    }
}

/// Block until `fd` is readable or `timeout` passed (`None`: no limit), as smoltcp's
/// `phy_wait` does (with `poll(2)` instead of `select(2)`).
fn wait_readable(fd: RawFd, timeout: Option<Duration>) {
    let ms = timeout.map_or(-1, |d| d.as_micros().div_ceil(1000).min(1000) as libc::c_int);
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: `p` is one valid, exclusive pollfd for the call.
    unsafe { libc::poll(&mut p, 1, ms) };
}

/// `IFF_NAPI` (linux/if_tun.h; not in the `libc` crate).
const IFF_NAPI: libc::c_int = 0x0010;

/// A TUN named `name` in the calling thread's namespace, set up as `tcp_tun::TunBuilder`
/// sets up its own without offloads; whether threaded NAPI was switched on (through `/sys`,
/// which must be this namespace's: run under `ip netns exec`).
fn make_tun(name: &str, napi: bool) -> io::Result<(OwnedFd, bool)> {
    // SAFETY: the path is a NUL-terminated string; `open` has no other memory effects.
    let fd = unsafe {
        libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `ifreq` is a plain C struct for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes().take(libc::IFNAMSIZ - 1)) {
        *dst = src as libc::c_char;
    }
    let flags = libc::IFF_TUN | libc::IFF_NO_PI | if napi { IFF_NAPI } else { 0 };
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `ifreq`, valid and exclusive for the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let granted = napi && std::fs::write(format!("/sys/class/net/{name}/threaded"), "1").is_ok();
    ip(&["addr", "add", &format!("{KERNEL}/24"), "dev", name])?;
    ip(&["link", "set", name, "mtu", &MTU.to_string(), "up"])?;
    Ok((fd, granted))
}

/// Run `ip ARGS`.
fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim())))
}

/// smoltcp's view of the TUN: one `read(2)` per packet received, one `write(2)` per packet
/// sent, into and out of buffers allocated once.
struct TunDev {
    fd: RawFd,
    rx: Vec<u8>,
    tx: Vec<u8>,
}

/// A packet just read.
struct Rx<'a>(&'a [u8]);

/// Room for one packet, written to the TUN once filled.
struct Tx<'a> {
    fd: RawFd,
    buf: &'a mut [u8],
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let r = f(&mut self.buf[..len]);
        // SAFETY: the first `len` bytes of `buf` are valid for reads for the whole call.
        // A failed write is a lost packet, as on a NIC; TCP retransmits.
        unsafe { libc::write(self.fd, self.buf.as_ptr().cast(), len) };
        r
    }
}

impl Device for TunDev {
    type RxToken<'a>
        = Rx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = Tx<'a>
    where
        Self: 'a;

    fn receive(&mut self, _now: smoltcp::time::Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        // SAFETY: `rx` is valid for writes of its length for the whole call.
        let n = unsafe { libc::read(self.fd, self.rx.as_mut_ptr().cast(), self.rx.len()) };
        let n = usize::try_from(n).ok()?;
        Some((Rx(&self.rx[..n]), Tx { fd: self.fd, buf: &mut self.tx }))
    }

    fn transmit(&mut self, _now: smoltcp::time::Instant) -> Option<Tx<'_>> {
        Some(Tx { fd: self.fd, buf: &mut self.tx })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = MTU;
        caps
    }
}

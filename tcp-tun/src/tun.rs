//! [`Tun`] and its builder.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tcp_tokio::{Capabilities, Device, TxMeta};
use tokio::io::unix::AsyncFd;

use crate::sys;
use crate::vnet::{self, VnetHdr, F_NEEDS_CSUM, HDR_LEN};

/// Packets moved per `poll_recv`/`poll_send` call at most.
const BATCH: usize = 64;

/// The offload mask with offloads on: what the kernel may hand us unfinished (partial
/// checksums, TCP super-segments over IPv4 and IPv6).
const OFFLOADS: libc::c_uint = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;

/// A Linux TUN interface carrying the stack's IP packets to and from the kernel.
///
/// Each packet is one `read(2)` or `write(2)` on the non-blocking descriptor, driven by
/// [`AsyncFd`]; a batch ends when the kernel has nothing more (`EAGAIN`) or the caller's
/// buffers are full. Nothing is allocated per packet.
///
/// With offloads on ([`TunBuilder::offload`]) every packet carries a virtio-net header:
/// - **receive**: the kernel may hand over a TCP super-segment of up to 64 KiB (what its
///   TSO would have split), which goes to the stack whole (the stack accepts segments larger
///   than its MSS; see [`Capabilities::gro`]); a checksum the kernel left partial
///   (`VIRTIO_NET_HDR_F_NEEDS_CSUM`) is completed first;
/// - **send**: a run of full-sized segments of one connection at the front of a batch
///   (consecutive sequence numbers, identical headers) is coalesced into one GSO
///   super-segment (`gso_size` = the segments' payload length), written with one `writev`
///   straight from the stack's buffers; the kernel treats it as one large segment. Other
///   packets go out one by one with an empty header.
///
/// Without offloads the interface is made with threaded NAPI where the kernel allows it
/// ([`TunBuilder::threaded_napi`], [`Tun::threaded_napi`]). Where it does not (Linux before
/// 5.12, or not root; see [`TunBuilder::threaded_napi`]), the `Tun` works the same,
/// but the kernel's receive path for each packet the stack writes (IP, TCP, waking the
/// reader) runs inside that `write(2)` on the stack's thread, one packet at a time and
/// without GRO. Measured with `tun_bench --cpu` at MTU 1500 on a 2-vCPU VM (under
/// `ip netns exec`): per 1448-byte segment sent, the stack's thread spends 1.3–1.4 µs
/// instead of 0.8–1.1 and the kernel's receiving thread about 1.2 µs instead of 0.35 (the
/// NAPI thread adds 0.25–0.8), and stack → kernel bulk throughput without offloads falls
/// from 9.6–10 to 5–6 Gbit/s. Everything with offloads is unaffected, and 64-byte
/// request/response traffic gains (no NAPI thread to wake per packet: 92 k round trips/s
/// against 57 in the same run). This is said once per process at `info` level.
///
/// Dropping the `Tun` closes the descriptor, and the kernel removes the interface.
#[derive(Debug)]
pub struct Tun {
    fd: AsyncFd<OwnedFd>,
    name: String,
    mtu: usize,
    offload: bool,
    threaded_napi: bool,
    stats: Arc<Counters>,
}

/// Counters of a [`Tun`] ([`Tun::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TunStats {
    /// Packets read from the kernel (a super-segment counts once).
    pub rx_packets: u64,
    /// Super-segments among them (virtio-net `gso_type` TCPv4 or TCPv6).
    pub rx_super: u64,
    /// Packets dropped on receive: larger than the buffer, a bad virtio-net header, or a TCP
    /// segment the kernel did not vouch for whose checksum is wrong.
    pub rx_dropped: u64,
    /// Packets written to the kernel (a super-segment counts once).
    pub tx_packets: u64,
    /// Super-segments among them.
    pub tx_super: u64,
    /// Stack segments that went out inside super-segments.
    pub tx_coalesced: u64,
}

#[derive(Debug, Default)]
struct Counters {
    rx_packets: AtomicU64,
    rx_super: AtomicU64,
    rx_dropped: AtomicU64,
    tx_packets: AtomicU64,
    tx_super: AtomicU64,
    tx_coalesced: AtomicU64,
}

/// A shared view of a [`Tun`]'s counters that stays valid after the `Tun` moved into a
/// stack.
#[derive(Clone, Debug)]
pub struct TunStatsHandle(Arc<Counters>);

impl TunStatsHandle {
    /// The counters now.
    pub fn get(&self) -> TunStats {
        let c = &self.0;
        TunStats {
            rx_packets: c.rx_packets.load(Ordering::Relaxed),
            rx_super: c.rx_super.load(Ordering::Relaxed),
            rx_dropped: c.rx_dropped.load(Ordering::Relaxed),
            tx_packets: c.tx_packets.load(Ordering::Relaxed),
            tx_super: c.tx_super.load(Ordering::Relaxed),
            tx_coalesced: c.tx_coalesced.load(Ordering::Relaxed),
        }
    }
}

/// Builds a [`Tun`]: name, the kernel side's address, MTU and offloads.
#[derive(Clone, Debug)]
#[must_use]
pub struct TunBuilder {
    name: String,
    kernel: Option<(IpAddr, u8)>,
    mtu: usize,
    offload: bool,
    /// `None`: on exactly when offloads are off.
    threaded_napi: Option<bool>,
}

impl Default for TunBuilder {
    fn default() -> Self {
        TunBuilder {
            name: "tcptun0".into(),
            kernel: None,
            mtu: 1500,
            offload: false,
            threaded_napi: None,
        }
    }
}

impl TunBuilder {
    /// The interface name (default `tcptun0`; at most 15 bytes; a `%d` in it lets the kernel
    /// pick a number).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The address the kernel's side of the interface gets, with its prefix length; the
    /// stack takes another address of that subnet. IPv4 is set with ioctls (`SIOCSIFADDR`),
    /// IPv6 over rtnetlink without duplicate address detection, so it is usable at once (it
    /// needs an MTU of at least 1280). Without one the interface is up but unnumbered.
    pub fn kernel_address(mut self, ip: IpAddr, prefix: u8) -> Self {
        self.kernel = Some((ip, prefix));
        self
    }

    /// The interface MTU in bytes, IP header included (default 1500, at least 68 and at most
    /// 65535).
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu;
        self
    }

    /// Checksum and segmentation offloads through virtio-net headers (default off). See
    /// [`Tun`].
    pub fn offload(mut self, on: bool) -> Self {
        self.offload = on;
        self
    }

    /// Let the kernel process the packets the stack sends in a kernel thread of the
    /// interface, with GRO (default: on when offloads are off): the device is created with
    /// `IFF_NAPI` and its NAPI switched to threaded mode. Without it the kernel runs its
    /// whole receive path (IP, TCP, waking the reader) inside each `write(2)` of the stack,
    /// one packet at a time, on the stack's own thread; with it a `write` only queues the
    /// packet, and the kernel thread takes the queue in batches on another CPU. Measured
    /// with `tun_bench` at MTU 1500 without offloads: the stack's CPU time per segment sent
    /// falls by a fifth to two fifths, the kernel receiver's by two thirds, and stack →
    /// kernel bulk throughput rises by 60–100 % (see [`Tun`]).
    /// The price is a wake-up of that thread per packet when packets come one at a time:
    /// 64-byte round trips with a kernel client were a tenth to two fifths slower with it
    /// (57 against 92, 127 against 139 and 96 against 157 k/s in three runs of
    /// `benches`' `tun_rr`); pass `false` for a request/response service that never moves
    /// bulk data to the kernel's side. With offloads the stack writes 64 KiB super-segments and the kernel's work per
    /// write is already small; the thread did not measurably help there, so it is off by
    /// default.
    ///
    /// Turning the thread on writes `/sys/class/net/NAME/threaded` (Linux ≥ 5.12): through
    /// the process's `/sys` when that is the sysfs of the interface's network namespace (the
    /// root namespace, `ip netns exec`), else through a sysfs mounted for that namespace in a
    /// private mount namespace of a short-lived thread (which needs `CAP_SYS_ADMIN`). When
    /// neither works the interface is made again without `IFF_NAPI`, as with `false`, and
    /// the first time in a process this is logged at `info`; [`Tun::threaded_napi`] says
    /// what was granted.
    pub fn threaded_napi(mut self, on: bool) -> Self {
        self.threaded_napi = Some(on);
        self
    }

    /// Create the interface. Call inside a tokio runtime with I/O enabled. The interface
    /// lives in the network namespace of the calling thread.
    ///
    /// # Errors
    /// - `NotFound` when `/dev/net/tun` does not exist (module not loaded, or a container
    ///   without the device);
    /// - `PermissionDenied` without `CAP_NET_ADMIN`;
    /// - `AddrInUse` when another process holds a TUN of that name, or a non-TUN interface
    ///   has it;
    /// - `InvalidInput` for a bad name, MTU, address or prefix;
    /// - `Other` outside a tokio runtime, or any other error of the kernel, with the step
    ///   that failed.
    pub fn build(self) -> io::Result<Tun> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        if self.name.is_empty() || self.name.len() >= libc::IFNAMSIZ {
            return Err(invalid(format!(
                "interface name {:?} must be 1 to {} bytes",
                self.name,
                libc::IFNAMSIZ - 1
            )));
        }
        if self.name.bytes().any(|b| b == 0 || b == b'/' || b.is_ascii_whitespace()) {
            return Err(invalid(format!(
                "interface name {:?} has a forbidden character",
                self.name
            )));
        }
        if !(68..=65_535).contains(&self.mtu) {
            return Err(invalid(format!("MTU {} is outside 68..=65535", self.mtu)));
        }
        if let Some((ip, prefix)) = self.kernel {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if prefix > max {
                return Err(invalid(format!(
                    "bad address {ip}/{prefix}: prefix longer than {max}"
                )));
            }
            if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
                return Err(invalid(format!(
                    "bad address {ip}/{prefix}: the kernel side needs a unicast, non-loopback address"
                )));
            }
            if let IpAddr::V4(v4) = ip {
                if v4.is_broadcast() {
                    return Err(invalid(format!("bad address {ip}/{prefix}: broadcast")));
                }
            }
            // RFC 8200 §5: IPv6 needs links of MTU 1280 or more; Linux keeps IPv6 off below.
            if ip.is_ipv6() && self.mtu < 1280 {
                return Err(invalid(format!(
                    "bad address {ip}/{prefix}: IPv6 needs an MTU of at least 1280, not {}",
                    self.mtu
                )));
            }
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other("Tun::build must be called inside a tokio runtime"));
        }

        let fd = open_device()?;
        let mut flags = libc::IFF_TUN | libc::IFF_NO_PI;
        if self.offload {
            flags |= libc::IFF_VNET_HDR;
        }
        if self.threaded_napi.unwrap_or(!self.offload) {
            let napi = self.set_iff(&fd, flags | sys::IFF_NAPI)?;
            match sys::set_threaded_napi(&napi) {
                Ok(()) => return self.finish(fd, napi, true),
                Err(e) => {
                    // Closing the descriptor removes the interface; make it again below.
                    drop(fd);
                    no_threaded_napi(&napi, &e);
                }
            }
            let fd = open_device()?;
            let name = self.set_iff(&fd, flags)?;
            return self.finish(fd, name, false);
        }
        let name = self.set_iff(&fd, flags)?;
        self.finish(fd, name, false)
    }

    /// `TUNSETIFF` with `flags`, with the errors a person understands.
    fn set_iff(&self, fd: &OwnedFd, flags: libc::c_int) -> io::Result<String> {
        sys::set_iff(fd, &self.name, flags).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => permission_denied(&e),
            Some(libc::EBUSY) => io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("TUN interface name {:?} is in use by another process ({e})", self.name),
            ),
            Some(libc::EINVAL) => io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "interface name {:?} is taken by an interface that is not a TUN ({e})",
                    self.name
                ),
            ),
            _ => context(e, &format!("creating TUN interface {:?} (TUNSETIFF)", self.name)),
        })
    }

    /// The steps after `TUNSETIFF`: offloads, MTU, address, link up, and the `AsyncFd`.
    fn finish(self, fd: OwnedFd, name: String, threaded_napi: bool) -> io::Result<Tun> {
        let step = |what: &str| format!("{what} on {name}");
        if self.offload {
            sys::set_vnet_hdr_size(&fd, HDR_LEN)
                .map_err(|e| context(e, &step("TUNSETVNETHDRSZ")))?;
        }
        // Always explicit: the mask survives on the device.
        let mask = if self.offload { OFFLOADS } else { 0 };
        sys::set_offload(&fd, mask).map_err(|e| context(e, &step("TUNSETOFFLOAD")))?;
        sys::set_mtu(&name, self.mtu).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("MTU {} refused by the kernel for {name}", self.mtu),
            ),
            Some(libc::EPERM | libc::EACCES) => permission_denied(&e),
            _ => context(e, &step("setting the MTU")),
        })?;
        if let Some((ip, prefix)) = self.kernel {
            set_address(&name, ip, prefix)?;
        }
        sys::set_up(&name).map_err(|e| context(e, &step("bringing the link up")))?;
        Tun::register(fd, name, self.mtu, self.offload, threaded_napi)
    }
}

/// Say once per process, at `info`, that threaded NAPI could not be had and what that costs;
/// every occurrence at `debug`.
fn no_threaded_napi(name: &str, e: &io::Error) {
    static SAID: std::sync::Once = std::sync::Once::new();
    let mut first = false;
    SAID.call_once(|| first = true);
    if first {
        tracing::info!(
            interface = %name,
            error = %e,
            "no threaded NAPI (needs Linux >= 5.12 and root: CAP_NET_ADMIN and write access to \
             /sys/class/net/NAME/threaded, and CAP_SYS_ADMIN where /sys shows another network \
             namespace): the kernel's receive path for every packet the stack sends runs \
             inside the stack's write(2), which roughly halves bulk throughput from the stack \
             without offloads"
        );
    } else {
        tracing::debug!(interface = %name, error = %e, "no threaded NAPI; continuing without");
    }
}

/// Open `/dev/net/tun`, with the errors a person understands.
fn open_device() -> io::Result<OwnedFd> {
    sys::open_clone_device().map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no /dev/net/tun ({e}): load the tun module (modprobe tun), or pass the device \
                 into the container (--device /dev/net/tun)"
            ),
        ),
        Some(libc::EPERM | libc::EACCES) => permission_denied(&e),
        _ => context(e, "opening /dev/net/tun"),
    })
}

fn permission_denied(e: &io::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "creating a TUN device needs CAP_NET_ADMIN: run as root or grant the capability \
             ({e})"
        ),
    )
}

fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn set_address(name: &str, ip: IpAddr, prefix: u8) -> io::Result<()> {
    match ip {
        IpAddr::V4(v4) => sys::set_ipv4(name, v4, prefix).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL | libc::EADDRNOTAVAIL) => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad address {ip}/{prefix} for {name}: {e}"),
            ),
            _ => context(e, &format!("setting address {ip}/{prefix} on {name}")),
        }),
        IpAddr::V6(v6) => sys::set_ipv6(name, v6, prefix).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL | libc::EADDRNOTAVAIL) => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad address {ip}/{prefix} for {name}: {e}"),
            ),
            Some(libc::EAFNOSUPPORT) => io::Error::new(
                io::ErrorKind::Unsupported,
                format!("cannot set {ip}/{prefix} on {name}: IPv6 is not available ({e})"),
            ),
            _ => context(e, &format!("setting address {ip}/{prefix} on {name}")),
        }),
    }
}

impl Tun {
    /// A builder with the defaults: `tcptun0`, MTU 1500, no address, offloads off.
    pub fn builder() -> TunBuilder {
        TunBuilder::default()
    }

    /// Take over a TUN descriptor that is already attached to an interface: one handed over
    /// by a VPN service (Android's `VpnService.Builder.establish()`), or by a parent process
    /// that created the interface. Call inside a tokio runtime with I/O enabled, in the
    /// network namespace the interface lives in.
    ///
    /// What the caller must have set up: the interface (`TUNSETIFF` with `IFF_TUN |
    /// IFF_NO_PI`, and `IFF_VNET_HDR` for offloads), its addresses, routes and MTU, and the
    /// link up; the stack then takes an address the kernel routes to this interface.
    /// `IFF_NO_PI` cannot be checked everywhere (Linux 6.18 reports it in `TUNGETIFF`
    /// whether or not it was set); without it every packet would carry a 4-byte prefix the
    /// stack does not expect, and nothing would get through.
    /// `from_fd` changes nothing of that. It learns the interface's name and flags
    /// (`TUNGETIFF`) and its MTU (`SIOCGIFMTU` by that name), and puts the descriptor in
    /// non-blocking mode (which the open file description shares with any other holder).
    ///
    /// Offloads follow the descriptor: without `IFF_VNET_HDR` each read or write is one
    /// plain IP packet of at most the MTU, as with [`TunBuilder::offload`]`(false)`. With
    /// it, every packet carries a 10-byte virtio-net header in the host's byte order (the
    /// header size is set to 10 if it was another) and the offload mask is set to
    /// `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6` (the mask cannot be read back, and the stack
    /// needs to know what the kernel may hand it): the kernel then hands over unfinished
    /// checksums and TCP super-segments, and the stack sends super-segments, as with
    /// [`TunBuilder::offload`]`(true)`.
    ///
    /// Threaded NAPI is left as the interface has it; [`Tun::threaded_napi`] says `false`
    /// (not switched on by this crate). Dropping the `Tun` closes the descriptor; whether the
    /// interface then goes away is up to whoever else holds it (or `TUNSETPERSIST`).
    ///
    /// # Errors
    /// - `InvalidInput` when the descriptor is not a TUN attached to an interface, is a TAP,
    ///   was opened without `IFF_NO_PI` or with `IFF_NAPI_FRAGS`;
    /// - `NotFound` when the interface is not visible in the calling thread's network
    ///   namespace (its MTU cannot be read);
    /// - `Other` outside a tokio runtime, or any other error of the kernel, with the step
    ///   that failed.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Tun> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other("Tun::from_fd must be called inside a tokio runtime"));
        }
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        let (name, flags) = sys::get_iff(&fd).map_err(|e| {
            invalid(format!("not a TUN descriptor attached to an interface (TUNGETIFF: {e})"))
        })?;
        if flags & libc::IFF_TUN == 0 {
            return Err(invalid(format!("{name} is a TAP (Ethernet frames), not a TUN")));
        }
        if flags & libc::IFF_NO_PI == 0 {
            return Err(invalid(format!(
                "{name} was opened without IFF_NO_PI (packets would carry a 4-byte prefix)"
            )));
        }
        if flags & libc::IFF_NAPI_FRAGS != 0 {
            return Err(invalid(format!("{name} was opened with IFF_NAPI_FRAGS")));
        }
        let step = |what: &str| format!("{what} on {name}");
        let offload = flags & libc::IFF_VNET_HDR != 0;
        if offload {
            let size = sys::vnet_hdr_size(&fd).map_err(|e| context(e, &step("TUNGETVNETHDRSZ")))?;
            if size != HDR_LEN {
                sys::set_vnet_hdr_size(&fd, HDR_LEN)
                    .map_err(|e| context(e, &step("TUNSETVNETHDRSZ")))?;
            }
            sys::set_offload(&fd, OFFLOADS).map_err(|e| context(e, &step("TUNSETOFFLOAD")))?;
        }
        let mtu = sys::mtu(&name).map_err(|e| match e.raw_os_error() {
            Some(libc::ENODEV) => io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "interface {name} is not in this thread's network namespace; call \
                     Tun::from_fd in the namespace it lives in ({e})"
                ),
            ),
            _ => context(e, &step("reading the MTU")),
        })?;
        sys::set_nonblocking(&fd).map_err(|e| context(e, &step("setting O_NONBLOCK")))?;
        Tun::register(fd, name, mtu, offload, false)
    }

    /// Hand the descriptor to tokio.
    fn register(
        fd: OwnedFd,
        name: String,
        mtu: usize,
        offload: bool,
        threaded_napi: bool,
    ) -> io::Result<Tun> {
        // SAFETY: `fd` is an open descriptor that the `OwnedFd` owns and moves into the
        // `AsyncFd`, so it stays open and the same for the `AsyncFd`'s whole life, and
        // `OwnedFd::as_raw_fd` always returns it.
        let fd = unsafe { AsyncFd::register(fd) }
            .map_err(|e| context(e.into(), "registering the TUN with tokio"))?;
        Ok(Tun { fd, name, mtu, offload, threaded_napi, stats: Arc::default() })
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether checksum and segmentation offloads are on.
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// Whether the kernel takes the packets the stack writes in a NAPI thread of the
    /// interface ([`TunBuilder::threaded_napi`]): asked for and granted.
    pub fn threaded_napi(&self) -> bool {
        self.threaded_napi
    }

    /// A handle to the device's counters that outlives moving the `Tun` into a stack.
    pub fn stats(&self) -> TunStatsHandle {
        TunStatsHandle(self.stats.clone())
    }

    /// Read one packet into `buf`; `Ok(None)` when it was dropped.
    fn read_one(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let fd = self.fd.get_ref().as_raw_fd();
        if !self.offload {
            let n = sys::read(fd, buf)?;
            // A packet that filled the buffer may have been cut short.
            return Ok((n < buf.len() || n == self.mtu).then_some(n));
        }
        let mut hdr = [0u8; HDR_LEN];
        let n = sys::read_with_header(fd, &mut hdr, buf)?;
        let Some(len) = n.checked_sub(HDR_LEN) else { return Ok(None) };
        if len >= buf.len() && len > self.mtu {
            return Ok(None);
        }
        let h = VnetHdr::decode(&hdr);
        if h.gso_type & 0x7f != vnet::GSO_NONE {
            self.stats.rx_super.fetch_add(1, Ordering::Relaxed);
        }
        // The stack trusts our checksums (`Capabilities::rx_checksum`): a packet the kernel
        // built itself (`NEEDS_CSUM`, its checksum left partial) or verified (`DATA_VALID`)
        // never left memory or was checked; anything else we check here.
        if h.flags & (F_NEEDS_CSUM | vnet::F_DATA_VALID) == 0 && !vnet::tcp_checksum_ok(&buf[..len])
        {
            return Ok(None);
        }
        Ok(Some(len))
    }
}

impl Device for Tun {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        lens: &mut [usize],
    ) -> Poll<io::Result<usize>> {
        let want = bufs.len().min(lens.len());
        if want == 0 {
            return Poll::Ready(Ok(0));
        }
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let mut n = 0;
            let mut dropped = 0;
            while n < want {
                match self.read_one(&mut bufs[n]) {
                    Ok(Some(len)) => {
                        lens[n] = len;
                        n += 1;
                    }
                    Ok(None) => dropped += 1,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.count_rx(n, dropped);
                        return Poll::Ready(if n > 0 { Ok(n) } else { Err(e) });
                    }
                }
            }
            self.count_rx(n, dropped);
            if n > 0 {
                return Poll::Ready(Ok(n));
            }
        }
    }

    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        packets: &[IoSlice<'_>],
        meta: &[TxMeta],
    ) -> Poll<io::Result<usize>> {
        if packets.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // The writes are tried before tokio is asked whether the descriptor is writable: a
        // TUN's queue is almost never full, and the readiness check (the task's cooperative
        // budget, the registration's readiness word) sat in front of every answer of
        // request/response traffic. Only a refused write (`EAGAIN`) goes through the
        // readiness, which then registers the waker.
        let fd = self.fd.get_ref().as_raw_fd();
        let mut w = self.write_batch(fd, packets, meta);
        loop {
            match w.failed {
                // Report once; the packet that failed is lost, as on a NIC.
                Some(e) if w.taken == 0 => return Poll::Ready(Err(e)),
                _ if w.taken > 0 => return Poll::Ready(Ok(w.taken)),
                _ => {}
            }
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            w = self.write_batch(fd, packets, meta);
            if w.blocked {
                guard.clear_ready();
            }
        }
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_batch = BATCH;
        if self.offload {
            caps.gro = true;
            caps.rx_checksum = true;
            caps.tx_checksum = true;
            caps.gso_max_size = Some(65_535);
        }
        caps
    }
}

/// What [`Tun::write_batch`] did.
struct Written {
    /// Packets written from the front.
    taken: usize,
    /// The error that stopped it, other than `EAGAIN`.
    failed: Option<io::Error>,
    /// The kernel refused a packet with `EAGAIN`.
    blocked: bool,
}

impl Tun {
    fn count_rx(&self, n: usize, dropped: u64) {
        self.stats.rx_packets.fetch_add(n as u64, Ordering::Relaxed);
        if dropped > 0 {
            self.stats.rx_dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// Write packets from the front of `packets` until the kernel refuses one: without
    /// offloads one `write(2)` each, counted once per batch; with offloads
    /// [`Tun::write_front`]'s super-segments and single packets.
    fn write_batch(&self, fd: i32, packets: &[IoSlice<'_>], meta: &[TxMeta]) -> Written {
        let mut w = Written { taken: 0, failed: None, blocked: false };
        while w.taken < packets.len() {
            let res = if self.offload {
                let (res, used) = self.write_front(fd, &packets[w.taken..], &meta[w.taken..]);
                res.map(|()| used)
            } else {
                sys::write(fd, &packets[w.taken]).map(|_| 1)
            };
            match res {
                Ok(used) => w.taken += used,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    w.blocked = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    w.failed = Some(e);
                    break;
                }
            }
        }
        if !self.offload {
            self.stats.tx_packets.fetch_add(w.taken as u64, Ordering::Relaxed);
        }
        w
    }

    /// Write the packet(s) at the front of `packets` (offloads on): a super-segment the
    /// stack built or a run of segments coalesced into one, else one packet with an empty
    /// header. Returns how many were taken.
    fn write_front(
        &self,
        fd: i32,
        packets: &[IoSlice<'_>],
        meta: &[TxMeta],
    ) -> (io::Result<()>, usize) {
        let m = meta.first().copied().unwrap_or_default();
        if m.gso_size.is_some() || m.csum_partial {
            let hdr = vnet::header_for(&packets[0], m.gso_size, m.csum_partial).encode();
            let r = sys::writev(fd, &[&hdr, &packets[0]]).map(|_| ());
            if r.is_ok() {
                self.stats.tx_packets.fetch_add(1, Ordering::Relaxed);
                if m.gso_size.is_some() {
                    self.stats.tx_super.fetch_add(1, Ordering::Relaxed);
                }
            }
            return (r, 1);
        }
        let mut views: [&[u8]; vnet::MAX_SEGS] = [&[]; vnet::MAX_SEGS];
        let k = packets.len().min(vnet::MAX_SEGS);
        for (v, p) in views.iter_mut().zip(&packets[..k]) {
            *v = p;
        }
        if let Some(s) = vnet::coalesce(&views[..k]) {
            let mut parts: [&[u8]; vnet::MAX_SEGS + 1] = [&[]; vnet::MAX_SEGS + 1];
            parts[0] = &s.head[..s.head_len];
            for (part, p) in parts[1..].iter_mut().zip(&views[..s.count]) {
                *part = &p[s.payload_at..];
            }
            let r = sys::writev(fd, &parts[..=s.count]).map(|_| ());
            if r.is_ok() {
                self.stats.tx_packets.fetch_add(1, Ordering::Relaxed);
                self.stats.tx_super.fetch_add(1, Ordering::Relaxed);
                self.stats.tx_coalesced.fetch_add(s.count as u64, Ordering::Relaxed);
            }
            return (r, s.count);
        }
        let hdr = VnetHdr::default().encode();
        let r = sys::writev(fd, &[&hdr, &packets[0]]).map(|_| ());
        if r.is_ok() {
            self.stats.tx_packets.fetch_add(1, Ordering::Relaxed);
        }
        (r, 1)
    }
}

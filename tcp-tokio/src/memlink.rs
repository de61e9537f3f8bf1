//! [`MemLink`]: two [`Device`]s joined back to back in memory, with seeded faults.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io::{self, IoSlice, IoSliceMut};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::device::{Capabilities, Device, TxMeta};
use crate::lock;

/// One end of an in-memory link: what one end sends, the other receives.
///
/// Each direction is a bounded queue (default 1024 packets): when it is full, further
/// packets are dropped, as a NIC ring drops them. Faults (loss, delay, reordering,
/// duplication) are drawn from a seeded generator, so a test run is reproducible; delays use
/// [`tokio::time`], so they follow a paused test clock.
///
/// Like a Linux veth or loopback, a link offers offloads by default (see
/// [`MemLinkBuilder::offload`]): TCP super-segments of up to 64 KiB cross it whole, and
/// checksums are neither completed nor checked, since nothing in memory corrupts them. A link
/// with loss, reordering or duplication carries MTU-sized packets only, so that those faults
/// hit single segments.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// use std::time::Duration;
/// use tcp_tokio::MemLink;
///
/// let (a, b) = MemLink::pair();
/// let (c, d) = MemLink::builder()
///     .mtu(9000)
///     .loss(0.05)
///     .delay(Duration::from_millis(1))
///     .reorder(0.01)
///     .seed(7)
///     .pair();
/// # drop((a, b, c, d)); Ok(()) }
/// ```
#[derive(Debug)]
pub struct MemLink {
    tx: Arc<Queue>,
    rx: Arc<Queue>,
    mtu: usize,
    faults: Faults,
    /// Offloads are on (asked for, and no per-packet faults).
    offload: bool,
    rng: u64,
    /// Bottleneck rate in bytes per second (`None`: unlimited).
    rate: Option<u64>,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Each packet's fate in `poll_send` (kept to reuse its allocation).
    plan: Vec<(usize, u8, Duration)>,
}

/// Counters of one direction of a [`MemLink`] (what this end sent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStats {
    /// Packets handed to the link.
    pub sent: u64,
    /// Packets delivered to the other end.
    pub delivered: u64,
    /// Packets dropped by the loss fault.
    pub lost: u64,
    /// Packets dropped because the queue was full.
    pub overflowed: u64,
    /// Packets dropped for being larger than the MTU.
    pub oversized: u64,
    /// Extra copies made by the duplication fault.
    pub duplicated: u64,
    /// Packets held back so later ones overtake them.
    pub reordered: u64,
}

#[derive(Clone, Copy, Debug)]
struct Faults {
    loss: f64,
    delay: Duration,
    reorder: f64,
    reorder_delay: Duration,
    duplicate: f64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    delivered: AtomicU64,
    lost: AtomicU64,
    overflowed: AtomicU64,
    oversized: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
}

/// One direction of the link.
#[derive(Debug)]
struct Queue {
    inner: Mutex<QueueInner>,
    counters: Counters,
}

#[derive(Debug)]
struct QueueInner {
    /// Packets that may be received now, in order.
    ready: VecDeque<Vec<u8>>,
    /// Packets still in flight, by release time (and a sequence number to keep ties in order).
    delayed: BTreeMap<(Instant, u64), Vec<u8>>,
    next_seq: u64,
    capacity: usize,
    /// With a rate limit, when the link finishes serializing the packets queued so far.
    busy_until: Option<Instant>,
    /// The receiving end's waker.
    waker: Option<Waker>,
    /// Spent packet buffers, reused by the sender.
    pool: Vec<Vec<u8>>,
}

impl Queue {
    fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Queue {
            inner: Mutex::new(QueueInner {
                ready: VecDeque::new(),
                delayed: BTreeMap::new(),
                next_seq: 0,
                capacity,
                busy_until: None,
                waker: None,
                pool: Vec::new(),
            }),
            counters: Counters::default(),
        })
    }
}

/// Builds a [`MemLink`] pair with an MTU, a queue bound and seeded faults.
#[derive(Clone, Debug)]
#[must_use]
pub struct MemLinkBuilder {
    mtu: usize,
    queue: usize,
    faults: Faults,
    offload: bool,
    rate: Option<u64>,
    seed: u64,
}

impl MemLinkBuilder {
    /// Largest packet carried, in bytes (default 1500). Larger packets are dropped.
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu.max(68);
        self
    }

    /// Packets each direction holds before dropping (default 1024).
    pub fn queue_len(mut self, packets: usize) -> Self {
        self.queue = packets.max(1);
        self
    }

    /// Probability (0..=1) that a packet is lost.
    pub fn loss(mut self, p: f64) -> Self {
        self.faults.loss = p.clamp(0.0, 1.0);
        self
    }

    /// One-way delay of every packet (default none).
    pub fn delay(mut self, d: Duration) -> Self {
        self.faults.delay = d;
        self
    }

    /// A bottleneck of `bytes_per_sec` in each direction (default none: packets cross at
    /// once): a packet leaves after the ones queued before it, taking its length over the
    /// rate, then the [`delay`](Self::delay). The queue bound holds the packets waiting.
    pub fn rate(mut self, bytes_per_sec: u64) -> Self {
        self.rate = Some(bytes_per_sec.max(1));
        self
    }

    /// Probability (0..=1) that a packet is held back an extra
    /// [`reorder_delay`](Self::reorder_delay) so that later packets overtake it.
    pub fn reorder(mut self, p: f64) -> Self {
        self.faults.reorder = p.clamp(0.0, 1.0);
        self
    }

    /// How long a reordered packet is held back (default 1 ms).
    pub fn reorder_delay(mut self, d: Duration) -> Self {
        self.faults.reorder_delay = d;
        self
    }

    /// Probability (0..=1) that a packet is delivered twice.
    pub fn duplicate(mut self, p: f64) -> Self {
        self.faults.duplicate = p.clamp(0.0, 1.0);
        self
    }

    /// Offer GSO, GRO and checksum offload to the stacks (default on, as a Linux veth or
    /// loopback does): bulk data crosses in super-segments of up to 64 KiB (each stands for
    /// MTU-sized segments), checksums are left partial and not verified. Ignored when the
    /// link has loss, reordering or duplication.
    pub fn offload(mut self, on: bool) -> Self {
        self.offload = on;
        self
    }

    /// Seed of the fault generator (default 0). Each direction derives its own stream.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The two joined ends.
    pub fn pair(self) -> (MemLink, MemLink) {
        let (ab, ba) = (Queue::new(self.queue), Queue::new(self.queue));
        let f = self.faults;
        let offload = self.offload && f.loss == 0.0 && f.reorder == 0.0 && f.duplicate == 0.0;
        let end = |tx: &Arc<Queue>, rx: &Arc<Queue>, salt: u64| MemLink {
            tx: tx.clone(),
            rx: rx.clone(),
            mtu: self.mtu,
            faults: self.faults,
            offload,
            rng: splitmix(self.seed ^ salt),
            rate: self.rate,
            sleep: None,
            plan: Vec::new(),
        };
        (end(&ab, &ba, 0x0005_eeda), end(&ba, &ab, 0x0005_eedb))
    }
}

impl MemLink {
    /// Two ends joined by a perfect link (MTU 1500, queues of 1024 packets).
    pub fn pair() -> (MemLink, MemLink) {
        MemLink::builder().pair()
    }

    /// A builder for a link with another MTU, queue bound or faults.
    pub fn builder() -> MemLinkBuilder {
        MemLinkBuilder {
            mtu: 1500,
            queue: 1024,
            faults: Faults {
                loss: 0.0,
                delay: Duration::ZERO,
                reorder: 0.0,
                reorder_delay: Duration::from_millis(1),
                duplicate: 0.0,
            },
            offload: true,
            rate: None,
            seed: 0,
        }
    }

    /// Counters of the packets this end sent.
    pub fn stats(&self) -> LinkStats {
        let c = &self.tx.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LinkStats {
            sent: get(&c.sent),
            delivered: get(&c.delivered),
            lost: get(&c.lost),
            overflowed: get(&c.overflowed),
            oversized: get(&c.oversized),
            duplicated: get(&c.duplicated),
            reordered: get(&c.reordered),
        }
    }

    /// A uniform draw in [0, 1).
    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        self.rng = splitmix(self.rng);
        ((self.rng >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// Largest super-segment a link with offloads carries (the IPv4 length field's limit).
const MAX_SUPER_SEGMENT: usize = 65_535;

/// SplitMix64: a small, well-mixed generator for fault decisions.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Device for MemLink {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        lens: &mut [usize],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut q = lock(&self.rx.inner);
            if !q.delayed.is_empty() {
                let now = Instant::now();
                while let Some(entry) = q.delayed.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let p = entry.remove();
                    q.ready.push_back(p);
                }
            }
            let mut n = 0;
            while n < bufs.len().min(lens.len()) {
                let Some(p) = q.ready.pop_front() else { break };
                if p.len() <= bufs[n].len() {
                    bufs[n][..p.len()].copy_from_slice(&p);
                    lens[n] = p.len();
                    n += 1;
                }
                if q.pool.len() < 256 {
                    q.pool.push(p);
                }
            }
            if n > 0 {
                self.rx.counters.delivered.fetch_add(n as u64, Ordering::Relaxed);
                return Poll::Ready(Ok(n));
            }
            if q.waker.as_ref().is_none_or(|w| !w.will_wake(cx.waker())) {
                q.waker = Some(cx.waker().clone());
            }
            let Some(&(next, _)) = q.delayed.keys().next() else { return Poll::Pending };
            drop(q);
            let sleep = match &mut self.sleep {
                Some(s) => {
                    if s.deadline() != next {
                        s.as_mut().reset(next);
                    }
                    s
                }
                None => self.sleep.insert(Box::pin(tokio::time::sleep_until(next))),
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn poll_send(
        &mut self,
        _cx: &mut Context<'_>,
        packets: &[IoSlice<'_>],
        meta: &[TxMeta],
    ) -> Poll<io::Result<usize>> {
        let tx = self.tx.clone();
        let c = &tx.counters;
        c.sent.fetch_add(packets.len() as u64, Ordering::Relaxed);
        let f = self.faults;
        let delayed = !f.delay.is_zero() || f.reorder > 0.0 || self.rate.is_some();
        let now = if delayed { Some(Instant::now()) } else { None };
        // Decide every fault before taking the lock.
        let mut plan = std::mem::take(&mut self.plan);
        plan.clear();
        for (i, p) in packets.iter().enumerate() {
            let gso = self.offload && meta.get(i).is_some_and(|m| m.gso_size.is_some());
            if p.len() > if gso { MAX_SUPER_SEGMENT } else { self.mtu } {
                c.oversized.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if self.chance(f.loss) {
                c.lost.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let copies = if self.chance(f.duplicate) {
                c.duplicated.fetch_add(1, Ordering::Relaxed);
                2
            } else {
                1
            };
            let mut d = f.delay;
            if self.chance(f.reorder) {
                c.reordered.fetch_add(1, Ordering::Relaxed);
                d += f.reorder_delay;
            }
            plan.push((i, copies, d));
        }
        let mut q = lock(&tx.inner);
        for &(i, copies, d) in &plan {
            for _ in 0..copies {
                if q.ready.len() + q.delayed.len() >= q.capacity {
                    c.overflowed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let mut buf = q.pool.pop().unwrap_or_default();
                buf.clear();
                buf.extend_from_slice(&packets[i]);
                match now {
                    Some(now) => {
                        let mut at = now;
                        if let Some(rate) = self.rate {
                            // Serialized behind the packets queued before it.
                            let start = q.busy_until.map_or(now, |b| b.max(now));
                            let ns = buf.len() as u128 * 1_000_000_000 / u128::from(rate);
                            at = start + Duration::from_nanos(ns as u64);
                            q.busy_until = Some(at);
                        }
                        let seq = q.next_seq;
                        q.next_seq += 1;
                        q.delayed.insert((at + d, seq), buf);
                    }
                    None => q.ready.push_back(buf),
                }
            }
        }
        let waker = q.waker.take();
        drop(q);
        self.plan = plan;
        if let Some(w) = waker {
            w.wake();
        }
        Poll::Ready(Ok(packets.len()))
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        if self.offload {
            caps.gso_max_size = Some(MAX_SUPER_SEGMENT);
            caps.gro = true;
            caps.rx_checksum = true;
            caps.tx_checksum = true;
        }
        caps
    }
}

//! The driver task: the only owner of the device, and the only caller of the engine's
//! inputs, timers and outputs.
//!
//! Each poll runs one bounded pass:
//! 1. take the cells streams marked dirty (`Shared::notify`) and register the driver's waker;
//! 2. send what the device refused last time;
//! 3. receive up to [`RX_BUDGET`] packets, routing each through the endpoint (under the
//!    endpoint lock, one lock per batch) to its connection's cell (locked per packet); after
//!    every [`RX_ACK_BYTES`] received, steps 5 and 6a run first, so ACKs leave in between;
//! 4. run the endpoint's timers and the due entries of the timer heap;
//! 5. drain the work queue: each cell's `poll_transmit` until `None` or the transmit batch is
//!    full ([`TX_BUDGET`] packets, or no arena room for one more, MTU- or GSO-sized), then
//!    refresh its heap entry and note if it drained;
//! 6. hand the packets to the device, tell the endpoint about drained connections, and wake
//!    the tasks whose connections had events — after every lock is released.
//!
//! If a budget ran out the driver wakes itself and yields (fairness). Otherwise it sleeps
//! on one `tokio::time::Sleep` set to the earliest deadline (timer heap or endpoint), after
//! checking the clock first.
//!
//! Request/response traffic takes a shorter way. When the device had nothing left at the
//! end of the last pass and the first packet of a new one wakes a task (the reader of a
//! request), the pass ends right after routing it: it wakes that task and itself, and
//! leaves the rest (reading until the device is empty, timers, transmitting) to the next
//! pass, which transmits first. So the application's answer is written after a packet read,
//! one engine call and one task switch, not after a whole pass (on a TUN, a `read(2)` that
//! only says `EAGAIN` and everything else above); the work is the same, moved behind the
//! answer.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::io::{IoSlice, IoSliceMut};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tcpcore::{DatagramEvent, Instant, State, Transmit};
use tokio::time::Sleep;

use crate::cell::{Cell, Inner};
use crate::device::{Device, TxMeta};
use crate::lifecycle::Life;
use crate::lock;
use crate::net::udp::{self as udp, UdpCell};
use crate::observe::{wire_segments, Counts};
use crate::stack::{EpState, Shared};

/// Most packets received per driver poll.
const RX_BUDGET: usize = 256;
/// Receive buffers offered to the device in a `poll_recv` unless the previous call of the
/// pass filled all it was offered.
const FIRST_RX_OFFER: usize = 4;
/// Bytes received after which a driver poll sends what is due (the ACKs for them) before it
/// reads more: just under one full 64 KiB super-segment, so with GRO each super-segment gets
/// its ACK, as Linux ACKs each GRO'd packet it processes (RFC 5681 §4.2's "at least every
/// second full-sized segment", at GRO granularity); without GRO one ACK per ~41 full-sized
/// packets. Reading up to [`RX_BUDGET`] super-segments (16 MiB) before one ACK, as a stack
/// thread short of CPU did, gave the kernel's BBR sender one ACK per 1.6 MB; a rate-based
/// sender's delivery-rate samples then overestimate the path (draft-ietf-ccwg-bbr, ACK
/// aggregation) and its throughput to the stack fell to a third on a busy 2-vCPU VM.
const RX_ACK_BYTES: usize = 60 * 1024;
/// Bytes received after which a driver poll ends (once their ACKs are out) so that the
/// tasks it woke run before it reads more: a few super-segments, well within a CPU's cache.
/// With GRO, [`RX_BUDGET`] packets are up to 16 MiB, and a sender whose next packet our own
/// ACK sets off (Linux's BBR, cwnd-limited: its ACK processing transmits inside our write
/// of the ACK) keeps the device from ever running dry, so a pass ran until tokio's
/// cooperative budget stopped it, 4 MiB later; the application then copied out data that
/// had long left the cache, and the stack's thread needed twice the CPU per segment. Eight
/// super-segments, not four: at four, just under the initial 256 KiB receive window, a
/// current-thread runtime without offloads lost a third of its bulk throughput
/// (`cargo bench -p benches --bench throughput`, 2.9 → 1.9 GiB/s).
const RX_PASS_BYTES: usize = 8 * RX_ACK_BYTES;
/// Most packets sent per driver poll.
const TX_BUDGET: usize = 256;
/// Fewest super-segments the transmit arena holds (when the device does GSO).
const TX_SUPER_SEGMENTS: usize = 16;
/// Timer-heap entries the driver keeps room for however few are armed.
const MIN_TIMER_ROOM: usize = 64;
/// Most timer-heap entries handled per driver poll.
const TIMER_BUDGET: usize = 1024;

/// An entry of the timer heap. A cell has one live entry, the one whose `gen` is its
/// `timer_gen`; the others are stale, skipped when they come up and dropped by
/// [`Driver::compact_timers`] once they dominate the heap.
struct TimerEntry {
    at: Instant,
    gen: u32,
    cell: Arc<Cell>,
}

impl PartialEq for TimerEntry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for TimerEntry {}
impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TimerEntry {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest deadline must come first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}

/// The future the stack spawns. Ends when no handle, stream or listener is left and every
/// connection is gone.
pub(crate) struct Driver {
    shared: Arc<Shared>,
    device: Box<dyn Device>,
    /// Cells that may have output, events or a changed timer; each at most once (`queued`).
    work: VecDeque<Arc<Cell>>,
    timers: BinaryHeap<TimerEntry>,
    /// Live connections, as of the last pass (bounds the timer heap).
    live: usize,
    /// The endpoint's own next deadline, as of the last pass.
    ep_deadline: Option<Instant>,
    rx_bufs: Vec<Vec<u8>>,
    rx_lens: Vec<usize>,
    /// The allocations of the slice lists handed to the device, kept empty between polls.
    rx_slices: Vec<IoSliceMut<'static>>,
    tx_slices: Vec<IoSlice<'static>>,
    /// Outgoing packets, written back to back: packet `i` is `tx_arena[tx_pkts[i]]` with
    /// `tx_meta[i]`; those from `tx_sent` on are waiting for the device.
    tx_arena: Vec<u8>,
    tx_used: usize,
    tx_pkts: Vec<(usize, usize)>,
    tx_meta: Vec<TxMeta>,
    tx_sent: usize,
    /// Room given to each `poll_transmit`: the MTU, or the device's GSO limit.
    tx_slot: usize,
    batch: usize,
    sleep: Pin<Box<Sleep>>,
    wakers: Vec<Waker>,
    drained: Vec<Arc<Cell>>,
    /// Packets to our own addresses, delivered without the device (loopback).
    loopback: VecDeque<Vec<u8>>,
    loopback_pool: Vec<Vec<u8>>,
    /// Packet and byte counts, published to `Shared::totals` after each pass.
    counts: Counts,
    /// [`Stack::shutdown`](crate::Stack::shutdown)'s deadline, once asked for.
    shutdown_at: Option<Instant>,
    /// The connections left at that deadline were aborted.
    aborted: bool,
    /// UDP sockets with datagrams to send.
    udp_work: VecDeque<Arc<UdpCell>>,
    /// The last `poll_recv` found the device empty (or none was made yet): the next pass
    /// starts with one packet and may end after it (see the module documentation).
    rx_idle: bool,
    /// The last pass ended after waking tasks for its first packet: this one transmits
    /// before it receives.
    resume: bool,
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>, device: Box<dyn Device>) -> Self {
        let caps = device.capabilities();
        let mtu = device.mtu();
        let batch = caps.max_batch.clamp(1, RX_BUDGET);
        let rx_size = if caps.gro { mtu.max(65_536) } else { mtu };
        let tx_slot = mtu.max(caps.offload().gso_max_size);
        Driver {
            sleep: Box::pin(tokio::time::sleep_until(shared.epoch)),
            shared,
            device,
            work: VecDeque::new(),
            timers: BinaryHeap::new(),
            live: 0,
            ep_deadline: None,
            rx_bufs: vec![vec![0; rx_size]; batch],
            rx_lens: vec![0; batch],
            rx_slices: Vec::with_capacity(batch),
            tx_slices: Vec::with_capacity(batch),
            tx_arena: vec![0; (TX_BUDGET * mtu).max(TX_SUPER_SEGMENTS * tx_slot)],
            tx_used: 0,
            tx_pkts: Vec::with_capacity(TX_BUDGET),
            tx_meta: Vec::with_capacity(TX_BUDGET),
            tx_sent: 0,
            tx_slot,
            batch,
            wakers: Vec::new(),
            drained: Vec::new(),
            loopback: VecDeque::new(),
            loopback_pool: Vec::new(),
            counts: Counts::default(),
            shutdown_at: None,
            aborted: false,
            udp_work: VecDeque::new(),
            rx_idle: true,
            resume: false,
        }
    }

    /// Step 3: receive and route packets. Returns whether the budget ran out, or whether the
    /// pass ends early ([`Rx::Early`]).
    fn receive(&mut self, cx: &mut Context<'_>, now: Instant) -> Rx {
        let mut budget = RX_BUDGET;
        let mut bytes = 0;
        if !self.loopback.is_empty() {
            let mut st = lock(&self.shared.ep);
            while budget > 0 {
                let Some(p) = self.loopback.pop_front() else { break };
                budget -= 1;
                self.counts.received(p.len());
                route(&mut st, now, &p, &mut self.work, &mut self.wakers);
                self.loopback_pool.push(p);
            }
            crate::intercept::pump(&mut st, &mut self.work, &mut self.wakers);
            if budget == 0 {
                return Rx::More;
            }
        }
        // A call offers a few buffers unless the one before filled all it was offered: a
        // device with one packet at a time (request/response traffic) then costs a few
        // slices per call, including the call that only registers for the next packet,
        // instead of a whole batch of them built and dropped each time. After the device was
        // found empty the first call takes one packet, which may end the pass early.
        let mut first_alone = self.rx_idle && !self.resume;
        let mut offer = if first_alone { 1 } else { FIRST_RX_OFFER };
        let mut pass_bytes = 0;
        while budget > 0 {
            if bytes >= RX_ACK_BYTES {
                pass_bytes += bytes;
                // The ACKs (and whatever else is due) of what was read leave now, within the
                // pass: ending the pass instead costs a reschedule of the driver each time.
                bytes = 0;
                let tx_full = self.transmit(now);
                if !self.flush(cx) {
                    // The device wakes the driver when it has room.
                    return Rx::Done;
                }
                if tx_full || pass_bytes >= RX_PASS_BYTES {
                    return Rx::More;
                }
            }
            // Read no more buffers than the byte budget can fill (one super-segment with GRO).
            let room = (RX_ACK_BYTES - bytes).div_ceil(self.rx_bufs[0].len());
            let want = budget.min(self.batch).min(offer).min(room);
            let mut slices = recycle(std::mem::take(&mut self.rx_slices));
            slices.extend(self.rx_bufs[..want].iter_mut().map(|b| IoSliceMut::new(b)));
            let polled = self.device.poll_recv(cx, &mut slices, &mut self.rx_lens[..want]);
            self.rx_slices = recycle(slices);
            let n = match polled {
                Poll::Ready(Ok(n)) => n.min(want),
                Poll::Ready(Err(e)) => {
                    tracing::warn!(error = %e, "device receive failed");
                    self.counts.recv_errors += 1;
                    self.rx_idle = true;
                    return Rx::Done;
                }
                Poll::Pending => {
                    self.rx_idle = true;
                    return Rx::Done;
                }
            };
            if n == 0 {
                self.rx_idle = true;
                return Rx::Done;
            }
            self.rx_idle = false;
            offer = if n == want { self.batch } else { FIRST_RX_OFFER };
            budget = budget.saturating_sub(n);
            let mut st = lock(&self.shared.ep);
            for i in 0..n {
                let packet = &self.rx_bufs[i][..self.rx_lens[i]];
                bytes += packet.len();
                self.counts.received(packet.len());
                let ours = dst_ip(packet).is_some_and(|ip| self.shared.is_local_exact(ip));
                if ours || crate::intercept::takes_all(&st) {
                    route(&mut st, now, packet, &mut self.work, &mut self.wakers);
                } else {
                    // Not for us: a host does not answer for other addresses.
                    tracing::trace!("dropped a packet for another address");
                    self.counts.not_local += 1;
                }
            }
            crate::intercept::pump(&mut st, &mut self.work, &mut self.wakers);
            drop(st);
            if first_alone
                && !self.wakers.is_empty()
                && !mid_stream(&self.rx_bufs[0][..self.rx_lens[0]])
            {
                // The first packet after a quiet spell woke a task (a request for its
                // reader): let it answer before the rest of the pass.
                return Rx::Early;
            }
            first_alone = false;
        }
        Rx::More
    }

    /// Step 4: endpoint timers and its queued replies, then due connection timers. Returns
    /// whether a budget ran out.
    fn run_timers(&mut self, now: Instant) -> bool {
        {
            let shared = self.shared.clone();
            let mut st = lock(&shared.ep);
            if st.ep.poll_timeout().is_some_and(|t| t <= now) {
                st.ep.handle_timeout(now);
            }
            while !self.tx_full() {
                match st.ep.poll_transmit(now, self.tx_room()) {
                    Some(t) => self.commit_tx(t),
                    None => break,
                }
            }
            self.ep_deadline = st.ep.poll_timeout();
            self.live = st.live;
        }
        let mut budget = TIMER_BUDGET;
        while self.timers.peek().is_some_and(|t| t.at <= now) {
            if budget == 0 {
                return true;
            }
            budget -= 1;
            let entry = self.timers.pop().expect("peeked");
            let mut inner = lock(&entry.cell.inner);
            if inner.removed || inner.timer_gen != entry.gen {
                continue; // stale: the cell re-armed since
            }
            inner.armed = None;
            if inner.conn.poll_timeout().is_some_and(|t| t <= now) {
                inner.conn.handle_timeout(now);
                inner.take_wakers(&mut self.wakers);
            }
            // The work pass transmits what the timer made due and re-arms the heap.
            if !inner.queued {
                inner.queued = true;
                drop(inner);
                self.work.push_back(entry.cell);
            }
        }
        false
    }

    /// Step 4b, after [`Stack::shutdown`](crate::Stack::shutdown): note its deadline, and
    /// once it has passed abort every connection still open (RFC 9293 §3.10.5: RST).
    fn enforce_shutdown(&mut self, now: Instant) {
        if self.shutdown_at.is_none() {
            self.shutdown_at = lock(&self.shared.life).deadline;
        }
        if self.aborted || self.shutdown_at.is_none_or(|at| now < at) {
            return;
        }
        self.aborted = true;
        let mut aborted = 0;
        {
            let st = lock(&self.shared.ep);
            for cell in st.conns.iter().flatten() {
                let mut inner = lock(&cell.inner);
                let done = matches!(inner.conn.state(), State::Closed | State::TimeWait);
                if inner.removed || done {
                    continue;
                }
                inner.conn.abort();
                aborted += 1;
                if !inner.queued {
                    inner.queued = true;
                    drop(inner);
                    self.work.push_back(cell.clone());
                }
            }
        }
        tracing::debug!(aborted, "shutdown deadline: aborted the connections left");
        lock(&self.shared.life).aborted = aborted;
    }

    /// Whether the transmit batch is full (packet budget, or no room for one more packet).
    fn tx_full(&self) -> bool {
        self.tx_pkts.len() >= TX_BUDGET || self.tx_arena.len() - self.tx_used < self.tx_slot
    }

    /// Where the next packet is written (check [`Driver::tx_full`] first).
    fn tx_room(&mut self) -> &mut [u8] {
        &mut self.tx_arena[self.tx_used..self.tx_used + self.tx_slot]
    }

    /// Keep the packet just written into [`Driver::tx_room`]: for the device, or for
    /// ourselves.
    fn commit_tx(&mut self, t: Transmit) {
        let at = self.tx_used;
        let packet = &self.tx_arena[at..at + t.len];
        let (segments, bytes) = wire_segments(packet, t.gso_size);
        self.counts.sent(segments, bytes);
        if dst_ip(packet).is_some_and(|ip| self.shared.is_local_exact(ip)) {
            let mut p = self.loopback_pool.pop().unwrap_or_default();
            p.clear();
            p.extend_from_slice(packet);
            if t.csum_partial {
                // No device completes it on this path.
                tcpcore::wire::ip::complete_tcp_checksum(&mut p);
            }
            self.counts.loopback += 1;
            self.loopback.push_back(p);
            return;
        }
        self.tx_pkts.push((at, t.len));
        self.tx_meta.push(TxMeta::of(&t));
        self.tx_used += t.len;
    }

    /// Step 5: drain the work queue into the transmit batch. Returns whether the transmit
    /// budget ran out with work left.
    fn transmit(&mut self, now: Instant) -> bool {
        while let Some(cell) = self.work.pop_front() {
            if self.tx_full() {
                self.work.push_front(cell);
                return true;
            }
            let mut inner = lock(&cell.inner);
            inner.queued = false;
            if inner.removed {
                continue;
            }
            let mut unfinished = false;
            loop {
                if self.tx_full() {
                    unfinished = true;
                    break;
                }
                match inner.conn.poll_transmit(now, self.tx_room()) {
                    Some(t) => self.commit_tx(t),
                    None => break,
                }
            }
            inner.take_wakers(&mut self.wakers);
            self.arm(&cell, &mut inner);
            if inner.conn.is_drained() {
                drop(inner);
                self.drained.push(cell);
                continue;
            }
            // FA-02: closed but held for the application: step 6b frees its 4-tuple.
            if inner.conn.state() == tcpcore::State::Closed {
                self.drained.push(cell.clone());
            }
            if unfinished {
                inner.queued = true;
                drop(inner);
                self.work.push_front(cell);
                return true;
            }
        }
        false
    }

    /// Step 5b: drain the UDP sockets' send queues into the transmit batch, waking their
    /// writers. Returns whether the transmit budget ran out with work left.
    fn transmit_udp(&mut self, now: Instant) -> bool {
        while let Some(cell) = self.udp_work.pop_front() {
            let mut inner = lock(&cell.inner);
            while !self.tx_full() {
                match inner.sock.poll_transmit(now, self.tx_room()) {
                    Some(t) => self.commit_tx(t),
                    None => break,
                }
            }
            inner.wake(crate::cell::WRITE, &mut self.wakers);
            if inner.sock.wants_transmit() {
                drop(inner);
                self.udp_work.push_front(cell);
                return true;
            }
            inner.queued = false;
        }
        false
    }

    /// Put the cell's next deadline in the heap unless its live entry comes earlier or at
    /// the same time (it then fires early, harmlessly, and the work pass re-arms). A new
    /// entry makes the old one stale.
    fn arm(&mut self, cell: &Arc<Cell>, inner: &mut Inner) {
        if let Some(t) = inner.conn.poll_timeout() {
            if inner.armed.is_none_or(|a| t < a) {
                inner.armed = Some(t);
                inner.timer_gen = inner.timer_gen.wrapping_add(1);
                self.timers.push(TimerEntry { at: t, gen: inner.timer_gen, cell: cell.clone() });
            }
        }
    }

    /// Step 6a: hand queued packets to the device. Returns false if it could not take all.
    fn flush(&mut self, cx: &mut Context<'_>) -> bool {
        let count = self.tx_pkts.len();
        while self.tx_sent < count {
            let end = count.min(self.tx_sent + self.batch);
            let mut slices = recycle(std::mem::take(&mut self.tx_slices));
            slices.extend(
                self.tx_pkts[self.tx_sent..end]
                    .iter()
                    .map(|&(at, len)| IoSlice::new(&self.tx_arena[at..at + len])),
            );
            let polled = self.device.poll_send(cx, &slices, &self.tx_meta[self.tx_sent..end]);
            self.tx_slices = recycle(slices);
            match polled {
                Poll::Ready(Ok(n)) => self.tx_sent += n.clamp(1, end - self.tx_sent),
                Poll::Ready(Err(e)) => {
                    // Like a UDP send error: the packets are lost; TCP retransmits.
                    tracing::warn!(error = %e, "device send failed");
                    self.counts.send_errors += 1;
                    self.counts.send_lost += (end - self.tx_sent) as u64;
                    self.tx_sent = end;
                }
                Poll::Pending => return false,
            }
        }
        self.tx_sent = 0;
        self.tx_used = 0;
        self.tx_pkts.clear();
        self.tx_meta.clear();
        true
    }

    /// Step 6b: drained connections leave the endpoint (TIME-WAIT stays as a compact entry)
    /// and the table; the cell itself lives on while a stream refers to it.
    fn close_drained(&mut self) {
        if self.drained.is_empty() {
            return;
        }
        let mut st = lock(&self.shared.ep);
        for cell in self.drained.drain(..) {
            let mut inner = lock(&cell.inner);
            if inner.removed {
                continue;
            }
            if !inner.conn.is_drained() {
                // FA-02: closed but held for the application (reset before its first call):
                // a new SYN on its 4-tuple goes to the listener, as Linux unhashes it.
                st.ep.release_tuple(cell.handle, &inner.conn);
                continue;
            }
            inner.removed = true;
            self.counts.connection_closed(&inner.conn);
            st.ep.connection_closed(cell.handle, &inner.conn);
            drop(inner);
            st.remove(cell.handle.0);
        }
        self.live = st.live;
    }

    /// Drop the stale heap entries once they dominate the heap: those of removed cells, and
    /// every entry of a cell but its live one. Lazy deletion alone keeps them until their
    /// deadline: a closed connection, buffers and all, until its SYN's RTO a second later
    /// (megabytes of dead cells at thousands of connections per second), and a keepalive
    /// connection one entry per short timer that fires before its 2-hour deadline (120,000
    /// per connection over two hours of a segment every 60 ms). Run after every pass;
    /// amortized O(1) per entry: afterwards the heap holds at most one entry per live cell
    /// (plus those of cells a stream held locked), so it never exceeds
    /// `max(64, 2 × live connections)` between passes.
    fn compact_timers(&mut self) {
        self.shrink_timers();
        if self.timers.len() <= 64 || self.timers.len() <= 2 * self.live {
            return;
        }
        // A cell an application holds locked right now keeps its entries (they are only
        // stale, never wrong): the driver does not wait on a stream here.
        self.timers.retain(|e| match e.cell.inner.try_lock() {
            Ok(inner) => !inner.removed && inner.timer_gen == e.gen,
            Err(_) => true,
        });
    }

    /// Give the timer heap's room back once it is three quarters empty, keeping twice what
    /// it holds: idle connections arm no timer, so after a burst of opens (each arming its
    /// SYN's retransmission) the heap would otherwise keep 24 bytes or more per connection it
    /// ever held (issue 12). Amortized O(1): the heap must double again before the next.
    fn shrink_timers(&mut self) {
        let cap = self.timers.capacity();
        if cap > 4 * MIN_TIMER_ROOM && self.timers.len() < cap / 4 {
            self.timers.shrink_to(MIN_TIMER_ROOM.max(2 * self.timers.len()));
        }
    }

    /// Whether the driver is done: no handle left (or the stack shut down), nothing left to
    /// send and no connection left.
    fn finished(&self) -> bool {
        (Arc::strong_count(&self.shared) == 1 || self.shutdown_at.is_some())
            && self.tx_pkts.is_empty()
            && self.loopback.is_empty()
            && self.work.is_empty()
            && self.udp_work.is_empty()
            && lock(&self.shared.ep).live == 0
    }
}

/// How [`Driver::receive`] ended.
enum Rx {
    /// The device is empty (or failed, or cannot send the ACKs due).
    Done,
    /// A budget ran out with packets left.
    More,
    /// The pass's first packet, after the device had been found empty, woke a task.
    Early,
}

/// The destination address of an IP packet, if it has a plausible header.
fn dst_ip(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 => {
            let b: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        6 => {
            let b: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        _ => None,
    }
}

/// Whether `packet` is a TCP segment in the middle of a stream: it carries data but not PSH,
/// so the sender has more queued behind it (RFC 9293 §3.9.1.2: PSH marks where the sender's
/// application stopped writing, the data up to it to be delivered promptly). A bulk
/// transfer's segments are such; a request's last segment is not.
/// A peek at two header fields, not [`tcpcore::wire::parse_with`]: it runs for every request
/// of request/response traffic, before the endpoint parses (and checks) the packet anyway.
fn mid_stream(packet: &[u8]) -> bool {
    const PSH: u8 = 0x08;
    let (tcp_at, total) = match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 20 && packet[9] == 6 => {
            let total = u16::from_be_bytes([packet[2], packet[3]]);
            (usize::from(packet[0] & 0x0f) * 4, usize::from(total))
        }
        // With an extension header (next header not TCP) it counts as not mid-stream.
        Some(6) if packet.len() >= 40 && packet[6] == 6 => {
            (40, 40 + usize::from(u16::from_be_bytes([packet[4], packet[5]])))
        }
        _ => return false,
    };
    match packet.get(tcp_at..tcp_at + 20) {
        Some(tcp) => total > tcp_at + usize::from(tcp[12] >> 4) * 4 && tcp[13] & PSH == 0,
        None => false,
    }
}

/// Route one packet through the endpoint to its cell.
fn route(
    st: &mut EpState,
    now: Instant,
    packet: &[u8],
    work: &mut VecDeque<Arc<Cell>>,
    wakers: &mut Vec<Waker>,
) {
    let event = st.ep.handle(now, packet);
    // The segment is bound by reference: moving it (~150 bytes) out of the event copies it.
    let (h, seg, pmtu, icmp) = match event {
        Some(DatagramEvent::Connection(h, ref seg)) => (h, Some(seg), None, None),
        Some(DatagramEvent::PathMtu(h, p)) => (h, None, Some(p), None),
        Some(DatagramEvent::IcmpError(h, e)) => (h, None, None, Some(e)),
        Some(DatagramEvent::NewConnection(h, conn)) => {
            let port = conn.local_addr().port();
            let cell = Arc::new(Cell::new(h, *conn, true));
            st.insert(cell.clone());
            work.push_back(cell);
            for l in st.listeners.iter_mut().filter(|l| l.addr.port() == port) {
                wakers.extend(l.waker.take());
            }
            return;
        }
        Some(DatagramEvent::Reassembled(r)) => {
            // A datagram completed by this fragment: route the whole packet.
            route(st, now, r.packet(), work, wakers);
            st.ep.recycle(r);
            return;
        }
        Some(DatagramEvent::Udp(h, d)) => return udp::deliver(st, h, &d, wakers),
        Some(DatagramEvent::UdpError(h, e)) => return udp::deliver_error(st, h, e, wakers),
        None => return,
    };
    let Some(cell) = st.get(h.0) else { return };
    let mut inner = lock(&cell.inner);
    if let Some(seg) = seg {
        inner.conn.handle_segment(now, seg);
    }
    if let Some(p) = pmtu {
        // RFC 1191 / RFC 8201: the connection checks the quote and lowers its MSS.
        inner.conn.handle_path_mtu(now, p.mtu, p.seq);
    }
    if let Some(e) = icmp {
        // RFC 1122 §4.2.3.9: a hard error fails a pending connect at once (IC-07); a soft
        // one becomes the error of a later timeout (IC-08).
        inner.conn.handle_icmp_error(now, e);
    }
    inner.take_wakers(wakers);
    if !inner.queued {
        inner.queued = true;
        drop(inner);
        work.push_back(cell.clone());
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Finished, or dropped with its runtime: either way no more packets move.
        Life::end(&self.shared);
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        {
            let mut n = lock(&this.shared.notify);
            crate::cell::register(&mut n.waker, cx.waker());
            if !n.dirty.is_empty() {
                this.work.extend(n.dirty.drain(..));
            }
            if !n.udp_dirty.is_empty() {
                this.udp_work.extend(n.udp_dirty.drain(..));
            }
        }
        let now = this.shared.now();
        let mut more = false;
        let mut writable = this.flush(cx);
        if this.resume && writable {
            // After an early end: what the woken tasks wrote (their answers) leaves before
            // the device is read again.
            more |= this.transmit(now);
            writable = this.flush(cx);
        }
        match this.receive(cx, now) {
            Rx::Done => {}
            Rx::More => more = true,
            Rx::Early => {
                // The rest of this pass is the next one's, which runs after the woken tasks.
                this.resume = true;
                for w in this.wakers.drain(..) {
                    w.wake();
                }
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        this.resume = false;
        more |= this.run_timers(now);
        this.enforce_shutdown(now);
        if writable {
            more |= this.transmit(now);
            more |= this.transmit_udp(now);
            if !this.flush(cx) {
                // The device wakes us when it has room; until then produce nothing more.
                more = false;
            }
        }
        more |= !this.loopback.is_empty();
        this.close_drained();
        this.compact_timers();
        this.shared.timer_entries.store(this.timers.len(), AtomicOrdering::Relaxed);
        this.shared.totals.publish(&this.counts);
        for w in this.wakers.drain(..) {
            w.wake();
        }
        if this.finished() {
            tracing::debug!("stack driver finished");
            return Poll::Ready(());
        }
        if more {
            // Yield as `tokio::task::yield_now` does: the wake-up is deferred until the
            // scheduler has run the other tasks and polled for I/O, and on a current-thread
            // runtime the `block_on` future too (a plain self-wake queues the driver behind
            // nothing it waits for, and tokio polls `block_on` again only after 61 tasks).
            let mut yielded = std::pin::pin!(tokio::task::yield_now());
            if yielded.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
        let shutdown = this.shutdown_at.filter(|_| !this.aborted);
        let next = this.timers.peek().map(|t| t.at).into_iter().chain(this.ep_deadline);
        let next = next.chain(shutdown).min();
        if let Some(t) = next {
            // The pass's own clock reading: a deadline that passed during the pass is in the
            // past for the `Sleep`, which then fires at once.
            if t <= now {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            // Re-armed only for an earlier deadline, or once it fired: waking before a later
            // deadline costs a pass that finds nothing due and re-arms, where moving the
            // timer at every pass (each segment pushes the retransmission deadline back)
            // costs a timer-wheel removal and insertion every time.
            let deadline = this.shared.deadline(t);
            if deadline < this.sleep.deadline() || this.sleep.is_elapsed() {
                this.sleep.as_mut().reset(deadline);
            }
            if this.sleep.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            }
        }
        Poll::Pending
    }
}

/// The allocation of `v`, emptied, as a vector of another element type of the same layout
/// (here: slices of another lifetime). Collecting an empty `IntoIter` in place keeps its
/// buffer, so the device's slice lists cost no allocation per poll.
fn recycle<A, B>(mut v: Vec<A>) -> Vec<B> {
    v.clear();
    v.into_iter().map(|_| unreachable!("the vector is empty")).collect()
}

#[cfg(test)]
mod tests {
    use super::mid_stream;

    /// An IPv4 TCP packet with `flags` and `payload` bytes of data.
    fn v4(flags: u8, payload: usize) -> Vec<u8> {
        let total = 40 + payload;
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[9] = 6;
        p[20 + 12] = 5 << 4;
        p[20 + 13] = flags;
        p
    }

    /// The same over IPv6 (no extension headers).
    fn v6(flags: u8, payload: usize) -> Vec<u8> {
        let mut p = vec![0u8; 60 + payload];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
        p[6] = 6;
        p[40 + 12] = 5 << 4;
        p[40 + 13] = flags;
        p
    }

    const ACK: u8 = 0x10;
    const PSH: u8 = 0x08;

    /// RR-01: only a data segment without PSH counts as the middle of a stream (the driver
    /// then keeps reading instead of ending its pass after the first packet); a request's
    /// last segment (PSH), a pure ACK, a SYN or FIN without data, anything not TCP or cut
    /// short does not.
    #[test]
    fn rr_01_mid_stream_is_data_without_psh() {
        for make in [v4, v6] {
            assert!(mid_stream(&make(ACK, 1448)));
            assert!(!mid_stream(&make(ACK | PSH, 64)));
            assert!(!mid_stream(&make(ACK, 0)));
            assert!(!mid_stream(&make(0x02, 0)));
            let short = make(ACK, 1448);
            assert!(!mid_stream(&short[..30]));
        }
        let mut udp = v4(ACK, 100);
        udp[9] = 17;
        assert!(!mid_stream(&udp));
        assert!(!mid_stream(&[]));
    }
}

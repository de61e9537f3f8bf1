//! TCP Fast Open (RFC 7413) on one connection: the client's SYN with data and cookie (or a
//! cookie request) and its fallback, and the server's child that accepted data on a SYN.
//! The state lives in the connection's lazily allocated `Rare` part: a connection that does
//! not use Fast Open pays nothing for it.

use super::recv_buf::Stored;
use super::{ev, Connection, State};
use crate::wire::{FastOpenOption, SeqNum};

/// Linux `MAX_TCP_OPTION_SPACE`: the option bytes the SYN's data size leaves room for.
const SYN_OPTION_SPACE: u32 = 40;

/// Fast Open state of one connection.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FastOpenConn {
    /// Client: the option our first SYN carries (a cookie, or a request when it has none).
    pub(crate) syn_option: Option<FastOpenOption>,
    /// Client: the SYN waits for the first write (Linux `TCP_FASTOPEN_CONNECT`).
    pub(crate) defer_syn: bool,
    /// Client: most data our first SYN may carry (0: a cookie request carries none).
    pub(crate) syn_space: u32,
    /// Data bytes our first SYN carried (client), or the peer's SYN carried and we
    /// accepted (server).
    pub(crate) syn_data: u32,
    /// Server: a child made by a Fast Open SYN, which may send data before the handshake
    /// completes (RFC 7413 §4.2.2).
    pub(crate) child: bool,
    /// The data of the SYN was acknowledged (client) or accepted (server): Linux
    /// `TCPI_OPT_SYN_DATA`.
    pub(crate) syn_data_acked: bool,
}

impl Connection {
    /// Client Fast Open (RFC 7413 §4.2.1): the SYN waits for the first write, then carries
    /// `cookie` and up to a segment of that data; without a cookie it carries a cookie
    /// request and no data, unless `no_cookie` (RFC 7413 §7.2, Linux `tcp_fastopen` bit 0x4)
    /// lets data go without one. `peer_mss` is the MSS the server announced last time, which
    /// bounds the SYN's data. Call before the first [`Connection::poll_transmit`].
    pub fn set_fast_open(
        &mut self,
        cookie: Option<FastOpenOption>,
        peer_mss: Option<u16>,
        no_cookie: bool,
    ) {
        self.unsync_timers();
        if self.state != State::SynSent || self.snd_max != self.iss {
            return;
        }
        let mss = u32::from(self.our_mss());
        let mss = peer_mss.map_or(mss, |m| mss.min(u32::from(m).max(64)));
        let space = mss.saturating_sub(SYN_OPTION_SPACE);
        let fo = &mut self.rare.fast_open;
        // Without a cookie the SYN asks for one at once, as Linux's `TCP_FASTOPEN_CONNECT`
        // (it defers only when it has data to put on the SYN).
        match cookie {
            Some(c) if c.len > 0 => {
                fo.syn_option = Some(c);
                fo.syn_space = space;
                fo.defer_syn = true;
            }
            _ if no_cookie => {
                fo.syn_space = space;
                fo.defer_syn = true;
            }
            c => fo.syn_option = Some(c.unwrap_or_default()),
        }
    }

    /// Whether Fast Open delays this connection's SYN until the first write.
    pub(crate) fn syn_deferred(&self) -> bool {
        self.rare.is_allocated() && self.rare.fast_open.defer_syn
    }

    /// While the Fast Open SYN waits for the first write: the most data it will carry (a
    /// write of more queues the rest behind it, sent once the handshake completes).
    pub fn fast_open_syn_room(&self) -> Option<usize> {
        self.syn_deferred().then(|| self.rare.fast_open.syn_space as usize)
    }

    /// Send the deferred Fast Open SYN now, with whatever data is queued (none: Linux's
    /// `sendto(MSG_FASTOPEN)` of nothing sends the cookie alone).
    pub fn release_syn(&mut self) {
        self.unsync_timers();
        if self.syn_deferred() {
            self.rare.fast_open.defer_syn = false;
        }
    }

    /// A Fast Open child (server) may write before its handshake completes
    /// (RFC 7413 §4.2.2), and a deferred Fast Open connect writes into its SYN.
    pub fn writes_before_established(&self) -> bool {
        self.syn_deferred()
            || (self.state == State::SynReceived
                && self.rare.is_allocated()
                && self.rare.fast_open.child)
    }

    /// Whether the data of the SYN was acknowledged (client) or accepted (server): Linux's
    /// `TCPI_OPT_SYN_DATA`.
    pub fn syn_data_acked(&self) -> bool {
        self.rare.is_allocated() && self.rare.fast_open.syn_data_acked
    }

    /// Data bytes and Fast Open option of our first SYN (none for a retransmitted SYN:
    /// as Linux, it goes without data or option, in case a middlebox dropped them).
    pub(crate) fn fast_open_syn(&self) -> (u32, Option<FastOpenOption>) {
        if self.state != State::SynSent || self.snd_max != self.iss || !self.rare.is_allocated() {
            return (0, None);
        }
        let fo = &self.rare.fast_open;
        let data = (self.send_buf.len() as u32).min(fo.syn_space);
        (data, fo.syn_option)
    }

    /// Our first SYN left carrying `data` bytes.
    pub(crate) fn fast_open_syn_sent(&mut self, data: u32) {
        if data > 0 {
            self.rare.fast_open.syn_data = data;
        }
    }

    /// RFC 7413 §4.2.2: the SYN-ACK acknowledged our SYN at `ack`. Data it did not
    /// acknowledge is sent again at once, as ordinary data (the server dropped it: no
    /// cookie, a bad one, or no Fast Open at all).
    pub(crate) fn fast_open_on_syn_ack(&mut self, ack: SeqNum) {
        if !self.rare.is_allocated() || self.rare.fast_open.syn_data == 0 {
            return;
        }
        let end = self.iss + 1 + self.rare.fast_open.syn_data;
        let acked = ack.since(self.iss + 1).min(self.send_buf.len() as u32);
        self.send_buf.consume(acked as usize);
        self.info.bytes_acked += u64::from(acked);
        if ack >= end {
            self.rare.fast_open.syn_data_acked = true;
        } else {
            self.snd_nxt = self.snd_una;
            self.info.cold.retransmits += 1;
        }
    }

    /// Data on the SYN-ACK that established this active open (a Fast Open server may send
    /// it, RFC 7413 §4.2.2; RFC 9293 §3.10.7.3 queues it for after the handshake): in order
    /// at RCV.NXT, taken as far as the buffer goes.
    pub(crate) fn take_syn_ack_data(&mut self, data: &[u8]) {
        self.store_handshake_data(data);
    }

    /// Store data that came on a SYN or SYN-ACK at RCV.NXT, as much as the receive buffer
    /// holds (RFC 9293 §3.10.7.4's window trim, before any window was offered): what is
    /// acknowledged is what was kept, and the peer sends the rest again (RFC 7413 §4.2.2).
    /// Returns the bytes kept.
    fn store_handshake_data(&mut self, data: &[u8]) -> u32 {
        let room = self.recv_buf.limit().saturating_sub(self.recv_buf.unread());
        let data = &data[..data.len().min(room)];
        if data.is_empty() {
            return 0;
        }
        let Stored::Advanced(n) = self.recv_buf.store(self.rcv_nxt, self.rcv_nxt, data) else {
            return 0;
        };
        self.rcv_nxt += n;
        self.info.bytes_received += u64::from(n);
        if n > 0 {
            self.events |= ev::READABLE;
        }
        n
    }

    /// Server Fast Open (RFC 7413 §4.2.2): this passive connection was made by a SYN with a
    /// valid cookie; its `data` is accepted now, acknowledged by our SYN-ACK, and the
    /// connection may send before the handshake completes.
    pub fn accept_fast_open(&mut self, data: &[u8]) {
        self.unsync_timers();
        if self.state != State::SynReceived || self.snd_max != self.iss {
            return;
        }
        self.rare.fast_open.child = true;
        let n = self.store_handshake_data(data);
        if n > 0 {
            self.last_ack_sent = self.rcv_nxt;
            self.rare.fast_open.syn_data_acked = true;
            self.rare.fast_open.syn_data = n;
        }
    }

    /// Bytes of the peer's SYN we accepted (a Fast Open child's), 0 for any other.
    pub(crate) fn fast_open_syn_bytes(&self) -> u64 {
        if self.rare.is_allocated() && self.rare.fast_open.child {
            u64::from(self.rare.fast_open.syn_data)
        } else {
            0
        }
    }

    /// A connection a Fast Open SYN made (server side).
    pub(crate) fn is_fast_open_child(&self) -> bool {
        self.rare.is_allocated() && self.rare.fast_open.child
    }

    /// A Fast Open child whose SYN-ACK is out may send data in SYN-RECEIVED.
    pub(crate) fn fast_open_child_sends(&self) -> bool {
        self.state == State::SynReceived
            && self.snd_nxt != self.iss
            && self.rare.is_allocated()
            && self.rare.fast_open.child
    }
}

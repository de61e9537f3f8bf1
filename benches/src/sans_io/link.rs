//! The in-memory packet link both stacks run over: one FIFO of whole IP packets per
//! direction, with recycled MTU-sized buffers so that moving a packet allocates nothing.

use std::collections::VecDeque;

/// One direction of the link: packets in flight and the buffers free for new ones.
#[derive(Debug)]
pub struct Pipe {
    queue: VecDeque<(Vec<u8>, usize)>,
    free: Vec<Vec<u8>>,
    mtu: usize,
    /// Packets carried since the pipe was made.
    pub carried: u64,
}

impl Pipe {
    /// An empty pipe for packets of at most `mtu` bytes.
    pub fn new(mtu: usize) -> Self {
        Pipe { queue: VecDeque::new(), free: Vec::new(), mtu, carried: 0 }
    }

    /// A buffer of `mtu` bytes to write a packet into.
    pub fn alloc(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_else(|| vec![0; self.mtu])
    }

    /// Send the first `len` bytes of `buf`.
    pub fn push(&mut self, buf: Vec<u8>, len: usize) {
        self.carried += 1;
        self.queue.push_back((buf, len));
    }

    /// The oldest packet in flight and its length; give the buffer back with
    /// [`Pipe::recycle`].
    pub fn pop(&mut self) -> Option<(Vec<u8>, usize)> {
        self.queue.pop_front()
    }

    /// Packets in flight.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// No packet in flight.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Return a buffer for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.free.push(buf);
    }

    /// The free-buffer list (for a receive token that recycles its buffer when consumed).
    pub(crate) fn free_list(&mut self) -> &mut Vec<Vec<u8>> {
        &mut self.free
    }
}

/// Both directions between the client and the server.
#[derive(Debug)]
pub struct Link {
    /// Client to server.
    pub c2s: Pipe,
    /// Server to client.
    pub s2c: Pipe,
}

impl Link {
    /// A link carrying packets of at most `mtu` bytes.
    pub fn new(mtu: usize) -> Self {
        Link { c2s: Pipe::new(mtu), s2c: Pipe::new(mtu) }
    }

    /// Packets in flight both ways.
    pub fn in_flight(&self) -> usize {
        self.c2s.len() + self.s2c.len()
    }

    /// Packets carried both ways so far.
    pub fn carried(&self) -> u64 {
        self.c2s.carried + self.s2c.carried
    }
}

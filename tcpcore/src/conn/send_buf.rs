//! The send buffer: a ring of bytes from SND.UNA onwards (acknowledged bytes leave from the
//! front, the application appends at the back). Its logical capacity only grows (send-buffer
//! auto-tuning, `autotune.rs`); its storage grows on demand (see `ring`).

/// A byte ring with a logical capacity.
#[derive(Debug)]
pub(crate) struct SendBuf {
    buf: Box<[u8]>,
    /// Logical capacity.
    cap: usize,
    head: usize,
    len: usize,
    /// The application filled the buffer since the last growth (Linux `SOCK_NOSPACE`, set
    /// when a writer finds no room): the buffer, not the application, limits what is queued.
    full: bool,
}

impl SendBuf {
    pub(crate) fn new(capacity: usize) -> Self {
        SendBuf { buf: Box::default(), cap: capacity.max(1), head: 0, len: 0, full: false }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// Whether a write found the buffer full since the last [`SendBuf::grow`].
    pub(crate) fn was_full(&self) -> bool {
        self.full
    }

    /// Raise the logical capacity to `cap` (never lowers it); storage follows on demand.
    pub(crate) fn grow(&mut self, cap: usize) {
        self.cap = self.cap.max(cap);
        self.full = false;
    }

    /// Set the logical capacity (`SO_SNDBUF`), even below the bytes queued: nothing is
    /// dropped, there is just no room until enough is acknowledged.
    pub(crate) fn set_capacity(&mut self, cap: usize) {
        self.cap = cap.max(1);
        self.full = false;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn free(&self) -> usize {
        self.cap.saturating_sub(self.len)
    }

    /// Append as much of `data` as fits; returns the bytes taken.
    pub(crate) fn push(&mut self, data: &[u8]) -> usize {
        let free = self.free();
        let n = data.len().min(free);
        self.full |= n == free;
        if n == 0 {
            return 0;
        }
        super::ring::reserve(&mut self.buf, &mut self.head, self.len + n, self.cap);
        let cap = self.buf.len();
        let tail = super::ring::wrap(self.head + self.len, cap);
        let first = n.min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&data[..first]);
        if first < n {
            // Wrapped (rarely: a small write usually fits before the end). Not an empty
            // copy: that is still a call to `memcpy`.
            self.buf[..n - first].copy_from_slice(&data[first..n]);
        }
        self.len += n;
        n
    }

    /// Drop `n` acknowledged bytes from the front.
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        if n == 0 {
            return;
        }
        self.head = super::ring::wrap(self.head + n, self.buf.len());
        self.len -= n;
        if self.len == 0 {
            self.head = 0;
        }
    }

    /// Bytes of storage allocated.
    pub(crate) fn allocated(&self) -> usize {
        self.buf.len()
    }

    /// Free the storage if the buffer is empty (it is allocated again on demand); returns
    /// the bytes freed.
    pub(crate) fn release_if_empty(&mut self) -> usize {
        if self.len > 0 {
            return 0;
        }
        self.head = 0;
        core::mem::take(&mut self.buf).len()
    }

    /// The bytes at `offset..offset + len` from the front, as up to two slices.
    pub(crate) fn slices(&self, offset: usize, len: usize) -> [&[u8]; 2] {
        let len = len.min(self.len.saturating_sub(offset));
        if len == 0 {
            return [&[], &[]];
        }
        let cap = self.buf.len();
        let start = super::ring::wrap(self.head + offset, cap);
        let first = len.min(cap - start);
        [&self.buf[start..start + first], &self.buf[..len - first]]
    }
}

#[cfg(test)]
mod tests {
    use super::SendBuf;

    #[test]
    fn ring_wraps() {
        let mut b = SendBuf::new(8);
        assert_eq!(b.push(b"abcdef"), 6);
        b.consume(4);
        assert_eq!(b.push(b"ghijklmn"), 6);
        let [x, y] = b.slices(1, 100);
        assert_eq!([x, y].concat(), b"fghijkl");
        assert_eq!(b.free(), 0);
        assert!(b.was_full());
    }

    #[test]
    fn grow_keeps_bytes_and_clears_full() {
        let mut b = SendBuf::new(4);
        assert_eq!(b.push(b"abcdef"), 4);
        assert!(b.was_full());
        b.consume(1);
        b.grow(8);
        assert!(!b.was_full());
        assert_eq!((b.capacity(), b.free()), (8, 5));
        assert_eq!(b.push(b"efgh"), 4);
        assert!(!b.was_full());
        let [x, y] = b.slices(0, 100);
        assert_eq!([x, y].concat(), b"bcdefgh");
        b.grow(2);
        assert_eq!(b.capacity(), 8, "never shrinks");
    }
}

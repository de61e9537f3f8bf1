//! Storage shared by the send and receive rings: allocated on first use and grown by doubling
//! up to the ring's logical capacity, so a connection pays for buffer memory only as its data
//! needs it (as Linux charges socket memory per skb). Windows and limits always use the
//! logical capacity; only the allocation is lazy. Growth happens O(log capacity) times per
//! connection, never per segment once the ring has reached its working size.

/// Smallest allocation: enough for a small request or reply; short exchanges (the
/// connection-rate case) then touch a few cache lines instead of zeroing a page per ring.
const MIN_ALLOC: usize = 512;

/// Largest allocation filled by hand rather than requested zeroed (see `grow`).
const SMALL_ALLOC: usize = 4096;

/// Make `buf` hold at least `need` bytes (never more than `cap` unless `need` is), keeping
/// the ring's bytes in order from `head`, which becomes 0.
#[inline]
pub(crate) fn reserve(buf: &mut Box<[u8]>, head: &mut usize, need: usize, cap: usize) {
    // Inline: on the per-segment path the ring is already large enough.
    if need > buf.len() {
        grow(buf, head, need, cap);
    }
}

#[cold]
fn grow(buf: &mut Box<[u8]>, head: &mut usize, need: usize, cap: usize) {
    let old = buf.len();
    let len = need.next_power_of_two().max(MIN_ALLOC).min(cap).max(need);
    let grown = if len <= SMALL_ALLOC {
        // A plain allocation, filled here: small zeroed allocations (`calloc`) skip the
        // allocator's per-thread cache in glibc, and every connection of a short exchange
        // makes two rings per end (a third of the allocator's cost per connection).
        let mut v = Vec::with_capacity(len);
        v.extend_from_slice(&buf[*head..]);
        v.extend_from_slice(&buf[..*head]);
        v.resize(len, 0);
        v.into_boxed_slice()
    } else {
        // Large: zeroed pages come free from the OS and stay untouched until used.
        let mut grown = vec![0; len].into_boxed_slice();
        let first = old - *head;
        grown[..first].copy_from_slice(&buf[*head..]);
        grown[first..old].copy_from_slice(&buf[..*head]);
        grown
    };
    *buf = grown;
    *head = 0;
}

/// `i % cap` for a ring index: `i` is almost always below `2 * cap` (a position within the
/// ring plus an offset or length no larger than it), where a comparison replaces the
/// division, which costs tens of cycles on every segment.
#[inline]
pub(crate) fn wrap(i: usize, cap: usize) -> usize {
    if i < cap {
        i
    } else if i - cap < cap {
        i - cap
    } else {
        i % cap
    }
}

//! Deterministic byte streams for the simulator's applications: [`pattern_fill`] makes the
//! bytes of a seeded stream at any offset, [`StreamHash`] hashes a stream however it was split,
//! so a receiver can check every byte without keeping a copy of what was sent.

/// Bytes of the deterministic stream `seed` starting at stream offset `offset`: word `i` of
/// the stream is SplitMix64 of `seed + i`, little-endian.
pub fn pattern_fill(seed: u64, offset: u64, out: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < out.len() {
        let word = splitmix(seed.wrapping_add(pos / 8)).to_le_bytes();
        let skip = (pos % 8) as usize;
        let n = (8 - skip).min(out.len() - i);
        out[i..i + n].copy_from_slice(&word[skip..skip + n]);
        i += n;
        pos += n as u64;
    }
}

/// SplitMix64: one well-mixed word per input word.
pub(super) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A running hash of a byte stream that does not depend on how the stream was split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamHash {
    h: u64,
    carry: [u8; 8],
    carried: usize,
    len: u64,
}

impl Default for StreamHash {
    fn default() -> Self {
        StreamHash { h: 0xcbf2_9ce4_8422_2325, carry: [0; 8], carried: 0, len: 0 }
    }
}

impl StreamHash {
    /// Mix in the next bytes of the stream.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.carried > 0 {
            let n = (8 - self.carried).min(data.len());
            self.carry[self.carried..self.carried + n].copy_from_slice(&data[..n]);
            self.carried += n;
            data = &data[n..];
            if self.carried < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.carry));
            self.carried = 0;
        }
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            self.word(u64::from_le_bytes(w.try_into().unwrap_or_default()));
        }
        let rest = words.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carried = rest.len();
    }

    fn word(&mut self, w: u64) {
        let h = (self.h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.h = h ^ (h >> 29);
    }

    /// The hash of the stream so far (its length included).
    pub fn value(&self) -> u64 {
        let mut tail = [0u8; 8];
        tail[..self.carried].copy_from_slice(&self.carry[..self.carried]);
        let mut h = *self;
        h.word(u64::from_le_bytes(tail));
        h.word(self.len);
        h.h
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Nothing hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

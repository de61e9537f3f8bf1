//! TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018).

use super::SeqNum;

/// One SACK block: the half-open range `[left, right)` of received sequence space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SackBlock {
    /// First sequence number of the block.
    pub left: SeqNum,
    /// Sequence number just past the block.
    pub right: SeqNum,
}

/// The timestamps option (RFC 7323 §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timestamps {
    /// TSval: the sender's timestamp clock.
    pub tsval: u32,
    /// TSecr: the echoed TSval of the peer.
    pub tsecr: u32,
}

/// A TCP Fast Open option (RFC 7413 §4.1.1): kind 34, or the experimental kind 254 with
/// magic 0xF989 (RFC 6994) that early clients used and Linux still accepts. An empty cookie
/// is a cookie request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastOpenOption {
    /// The cookie bytes: the first `len` are valid.
    pub cookie: [u8; 16],
    /// Cookie length: 0 (a request) or 4..=16 and even (RFC 7413 §4.1.1).
    pub len: u8,
    /// Sent as the experimental option (kind 254, magic 0xF989).
    pub exp: bool,
}

impl FastOpenOption {
    /// A cookie request: the option with no cookie.
    pub fn request(exp: bool) -> Self {
        FastOpenOption { exp, ..FastOpenOption::default() }
    }

    /// An option carrying `cookie` (its first 16 bytes).
    pub fn with_cookie(cookie: &[u8], exp: bool) -> Self {
        let len = cookie.len().min(16);
        let mut c = [0; 16];
        c[..len].copy_from_slice(&cookie[..len]);
        FastOpenOption { cookie: c, len: len as u8, exp }
    }

    /// The valid cookie bytes (empty for a request).
    pub fn cookie(&self) -> &[u8] {
        &self.cookie[..usize::from(self.len.min(16))]
    }

    /// Bytes on the wire, with the NOP padding to a multiple of 4.
    pub fn wire_len(&self) -> usize {
        let head = if self.exp { 4 } else { 2 };
        (head + usize::from(self.len.min(16))).div_ceil(4) * 4
    }

    /// RFC 7413 §4.1.1: a cookie is 4 to 16 bytes, even; other lengths are ignored.
    fn parse(body: &[u8], exp: bool) -> Option<Self> {
        match body.len() {
            0 => Some(FastOpenOption::request(exp)),
            4..=16 if body.len() % 2 == 0 => Some(FastOpenOption::with_cookie(body, exp)),
            _ => None,
        }
    }
}

/// The options of one segment that the engine understands. Unknown options are skipped by
/// their length when parsing and never emitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2), only meaningful on SYNs.
    pub mss: Option<u16>,
    /// Window scale shift (kind 3), clamped to 14 on parse (RFC 7323 §2.3).
    pub window_scale: Option<u8>,
    /// SACK-permitted (kind 4).
    pub sack_permitted: bool,
    /// Timestamps (kind 8).
    pub timestamps: Option<Timestamps>,
    /// SACK blocks (kind 5): the first `sack_count` entries are valid.
    pub sack_blocks: [SackBlock; 4],
    /// How many of `sack_blocks` are valid (0..=4).
    pub sack_count: u8,
    /// TCP Fast Open (kind 34 or 254/0xF989), only meaningful on SYNs (RFC 7413).
    pub fast_open: Option<FastOpenOption>,
}

impl TcpOptions {
    /// The valid SACK blocks.
    pub fn sacks(&self) -> &[SackBlock] {
        &self.sack_blocks[..usize::from(self.sack_count.min(4))]
    }

    /// Bytes these options take on the wire, padded to a multiple of 4.
    ///
    /// Exactly what [`TcpOptions::emit`] writes: a multiple of 4 and at most 40 (RFC 9293
    /// §3.1: the data offset limits the header to 60 bytes). SACK blocks that do not fit
    /// beside the other options are left out (see [`TcpOptions::emitted_sacks`]).
    pub fn wire_len(&self) -> usize {
        if self.sack_count == 0 {
            return self.fixed_len();
        }
        self.fixed_len() + sack_len(self.emitted_sacks())
    }

    /// How many of the SACK blocks [`TcpOptions::emit`] writes: all valid ones (at most 4)
    /// if they fit within the 40 option bytes beside the other options, else as many as fit
    /// (3 beside timestamps, RFC 2018 §3).
    pub fn emitted_sacks(&self) -> usize {
        let room = MAX_LEN - self.fixed_len();
        let fit = if room >= SACK_OVERHEAD { (room - SACK_OVERHEAD) / SACK_BLOCK_LEN } else { 0 };
        self.sacks().len().min(fit)
    }

    /// Bytes of every option except the SACK blocks.
    fn fixed_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        if self.timestamps.is_some() {
            n += 12;
        } else if self.sack_permitted {
            n += 4;
        }
        if self.window_scale.is_some() {
            n += 4;
        }
        if let Some(fo) = &self.fast_open {
            n += fo.wire_len();
        }
        n
    }

    /// Parse the option bytes of a TCP header (the bytes after the fixed 20).
    ///
    /// RFC 9293 §3.1: options are a kind byte, then for every kind but End of Option List (0)
    /// and No-Operation (1) a length byte counting the kind and length bytes. Parsing stops
    /// at EOL; unknown kinds are skipped by their length (RFC 9293 §3.2, "must be prepared to
    /// handle an illegal option length"). A length below 2, a length running past the end,
    /// or a known kind with the wrong length is [`ParseError::BadOption`](super::ParseError).
    /// A repeated option overrides the earlier one.
    #[inline]
    pub fn parse(bytes: &[u8]) -> Result<TcpOptions, super::ParseError> {
        let mut opts = TcpOptions::default();
        opts.parse_into(bytes)?;
        Ok(opts)
    }

    /// [`TcpOptions::parse`] into `self`, which holds the defaults: parsing straight into a
    /// [`super::TcpRepr`] saves building the options beside it and copying them.
    #[inline(always)]
    pub(crate) fn parse_into(&mut self, bytes: &[u8]) -> Result<(), super::ParseError> {
        // RFC 7323 Appendix A: NOP, NOP, timestamps is the layout nearly every segment of a
        // connection with timestamps carries; read it without the loop (as Linux
        // `tcp_fast_parse_options` does), inlined into the caller with the no-option case.
        if let [KIND_NOP, KIND_NOP, KIND_TS, 10, a0, a1, a2, a3, e0, e1, e2, e3] = *bytes {
            self.timestamps = Some(Timestamps {
                tsval: u32::from_be_bytes([a0, a1, a2, a3]),
                tsecr: u32::from_be_bytes([e0, e1, e2, e3]),
            });
            return Ok(());
        }
        if !bytes.is_empty() {
            *self = Self::parse_any(bytes)?;
        }
        Ok(())
    }

    /// [`TcpOptions::parse`] for any layout.
    fn parse_any(bytes: &[u8]) -> Result<TcpOptions, super::ParseError> {
        use super::ParseError::BadOption;
        let mut opts = TcpOptions::default();
        let mut rest = bytes;
        while let Some((&kind, after_kind)) = rest.split_first() {
            match kind {
                KIND_EOL => break,
                KIND_NOP => {
                    rest = after_kind;
                    continue;
                }
                _ => {}
            }
            let len = usize::from(*after_kind.first().ok_or(BadOption)?);
            if len < 2 {
                return Err(BadOption);
            }
            let body = rest.get(2..len).ok_or(BadOption)?;
            rest = rest.get(len..).ok_or(BadOption)?;
            match (kind, body) {
                (KIND_MSS, &[a, b]) => opts.mss = Some(u16::from_be_bytes([a, b])),
                // RFC 7323 §2.3: a shift above 14 is logged and treated as 14.
                (KIND_WS, &[shift]) => opts.window_scale = Some(shift.min(MAX_WS)),
                (KIND_SACK_PERM, &[]) => opts.sack_permitted = true,
                (KIND_SACK, blocks) => {
                    // RFC 2018 §3: length 2 + 8n; we accept n >= 1 and keep the first 4.
                    if blocks.is_empty() || blocks.len() % SACK_BLOCK_LEN != 0 {
                        return Err(BadOption);
                    }
                    let mut count = 0;
                    for (slot, b) in opts.sack_blocks.iter_mut().zip(blocks.chunks_exact(8)) {
                        *slot = SackBlock {
                            left: SeqNum(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
                            right: SeqNum(u32::from_be_bytes([b[4], b[5], b[6], b[7]])),
                        };
                        count += 1;
                    }
                    opts.sack_count = count;
                }
                (KIND_TS, &[a0, a1, a2, a3, e0, e1, e2, e3]) => {
                    opts.timestamps = Some(Timestamps {
                        tsval: u32::from_be_bytes([a0, a1, a2, a3]),
                        tsecr: u32::from_be_bytes([e0, e1, e2, e3]),
                    })
                }
                (KIND_FASTOPEN, cookie) => opts.fast_open = FastOpenOption::parse(cookie, false),
                (KIND_EXP, [m0, m1, cookie @ ..]) if [*m0, *m1] == FASTOPEN_MAGIC => {
                    opts.fast_open = FastOpenOption::parse(cookie, true)
                }
                (KIND_MSS | KIND_WS | KIND_SACK_PERM | KIND_TS, _) => return Err(BadOption),
                _ => {} // Unknown kind: skipped by its length.
            }
        }
        Ok(opts)
    }

    /// Write the options into `buf` (which is exactly `self.wire_len()` long), padding with NOP
    /// / EOL. Layout follows Linux so traces look familiar.
    ///
    /// Order: MSS; then SACK-permitted and timestamps as `4,2,8,10,TS` when both, `1,1,8,10,TS`
    /// or `1,1,4,2` when one; then `1,3,3,shift` for window scale; then `1,1,5,len,blocks`
    /// for SACK blocks; last the Fast Open option, NOP-padded after it. Writes beyond `buf`
    /// are dropped rather than panicking; any bytes of `buf` past `wire_len()` are filled with EOL (0).
    pub fn emit(&self, buf: &mut [u8]) {
        if let (None, false, Some(ts), None, 0, None) = (
            self.mss,
            self.sack_permitted,
            self.timestamps,
            self.window_scale,
            self.sack_count,
            &self.fast_open,
        ) {
            // Every segment of an established connection with timestamps (RFC 7323
            // Appendix A layout): what the general path below writes, in one store.
            if let Some((head, pad)) = buf.split_first_chunk_mut::<12>() {
                let (v, e) = (ts.tsval.to_be_bytes(), ts.tsecr.to_be_bytes());
                *head = [
                    KIND_NOP, KIND_NOP, KIND_TS, 10, v[0], v[1], v[2], v[3], e[0], e[1], e[2], e[3],
                ];
                // Nothing to pad when `buf` is the 12 bytes `wire_len` gives (no call to
                // `memset` for an empty slice, on every segment).
                if !pad.is_empty() {
                    pad.fill(KIND_EOL);
                }
                return;
            }
        }
        let mut w = Writer { buf, at: 0 };
        if let Some(mss) = self.mss {
            w.put(&[KIND_MSS, 4]);
            w.put(&mss.to_be_bytes());
        }
        match (self.sack_permitted, self.timestamps) {
            (sack_perm, Some(ts)) => {
                if sack_perm {
                    w.put(&[KIND_SACK_PERM, 2]);
                } else {
                    w.put(&[KIND_NOP, KIND_NOP]);
                }
                w.put(&[KIND_TS, 10]);
                w.put(&ts.tsval.to_be_bytes());
                w.put(&ts.tsecr.to_be_bytes());
            }
            (true, None) => w.put(&[KIND_NOP, KIND_NOP, KIND_SACK_PERM, 2]),
            (false, None) => {}
        }
        if let Some(shift) = self.window_scale {
            w.put(&[KIND_NOP, KIND_WS, 3, shift.min(MAX_WS)]);
        }
        let n = self.emitted_sacks();
        if n > 0 {
            w.put(&[KIND_NOP, KIND_NOP, KIND_SACK, sack_len(n) as u8 - 2]);
            for b in self.sacks().iter().take(n) {
                w.put(&b.left.get().to_be_bytes());
                w.put(&b.right.get().to_be_bytes());
            }
        }
        if let Some(fo) = &self.fast_open {
            let start = w.at;
            if fo.exp {
                w.put(&[KIND_EXP, 4 + fo.len.min(16)]);
                w.put(&FASTOPEN_MAGIC);
            } else {
                w.put(&[KIND_FASTOPEN, 2 + fo.len.min(16)]);
            }
            w.put(fo.cookie());
            while w.at < start + fo.wire_len() {
                w.put(&[KIND_NOP]);
            }
        }
        let at = w.at;
        if let Some(pad) = w.buf.get_mut(at..) {
            pad.fill(KIND_EOL);
        }
    }
}

/// Option kinds (IANA "TCP Option Kind Numbers").
const KIND_EOL: u8 = 0;
const KIND_NOP: u8 = 1;
const KIND_MSS: u8 = 2;
const KIND_WS: u8 = 3;
const KIND_SACK_PERM: u8 = 4;
const KIND_SACK: u8 = 5;
const KIND_TS: u8 = 8;
const KIND_FASTOPEN: u8 = 34;
/// RFC 6994 shared experimental option; Fast Open's magic follows (RFC 7413 §4.1.1).
const KIND_EXP: u8 = 254;
const FASTOPEN_MAGIC: [u8; 2] = [0xF9, 0x89];

/// Largest window scale shift (RFC 7323 §2.3).
const MAX_WS: u8 = 14;
/// Most option bytes a header can carry (data offset 15 × 4 − 20).
const MAX_LEN: usize = 40;
/// NOP, NOP, kind, length in front of the SACK blocks.
const SACK_OVERHEAD: usize = 4;
/// Bytes per SACK block.
const SACK_BLOCK_LEN: usize = 8;

/// Bytes taken by `n` SACK blocks with their NOP padding (0 for none).
fn sack_len(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        SACK_OVERHEAD + n * SACK_BLOCK_LEN
    }
}

/// A cursor that writes into a slice and silently drops what does not fit.
struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.at..end) {
            dst.copy_from_slice(bytes);
        }
        self.at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_open_options_round_trip_in_both_kinds() {
        for exp in [false, true] {
            for cookie in [&[][..], &[1, 2, 3, 4], &[9; 8], &[7; 16]] {
                let o = TcpOptions {
                    mss: Some(1460),
                    sack_permitted: true,
                    window_scale: Some(7),
                    fast_open: Some(FastOpenOption::with_cookie(cookie, exp)),
                    ..TcpOptions::default()
                };
                let mut buf = [0xAA; 40];
                let n = o.wire_len();
                assert_eq!(n % 4, 0);
                o.emit(&mut buf[..n]);
                assert_eq!(TcpOptions::parse(&buf[..n]).unwrap(), o, "{cookie:?} exp {exp}");
            }
        }
        // An odd or too short cookie is ignored, not an error (RFC 7413 §4.1.1).
        assert_eq!(TcpOptions::parse(&[34, 5, 1, 2, 3, 1, 1, 1]).unwrap().fast_open, None);
        // Another experiment's kind 254 is skipped.
        assert_eq!(TcpOptions::parse(&[254, 4, 0x12, 0x34]).unwrap().fast_open, None);
    }

    #[test]
    fn nop_nop_timestamps_fast_path_agrees_with_the_general_parser() {
        let ts = [8, 10, 1, 2, 3, 4, 5, 6, 7, 8];
        let fast = [&[KIND_NOP, KIND_NOP][..], &ts].concat();
        let general = [&ts[..], &[KIND_NOP, KIND_EOL]].concat();
        let want = Timestamps { tsval: 0x0102_0304, tsecr: 0x0506_0708 };
        assert_eq!(TcpOptions::parse(&fast).unwrap().timestamps, Some(want));
        assert_eq!(TcpOptions::parse(&fast), TcpOptions::parse(&general));
        // A malformed timestamp option in the same place still fails.
        let mut bad = fast.clone();
        bad[3] = 9;
        assert!(TcpOptions::parse(&bad).is_err());
    }
}

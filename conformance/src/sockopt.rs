//! `setsockopt`/`getsockopt`: the options tcpcore supports, Linux's defaults for the ones
//! it reads back, and `ENOPROTOOPT` (counted) for everything else.

use std::time::Duration;

use crate::errno::*;
use crate::sockets::Host;

const SOL_SOCKET: i32 = 1;
const SOL_TCP: i32 = 6;
const SO_REUSEADDR: i32 = 2;
const SO_TYPE: i32 = 3;
const SO_ERROR: i32 = 4;
const SO_SNDBUF: i32 = 7;
const SO_RCVBUF: i32 = 8;
const SO_KEEPALIVE: i32 = 9;
const SO_LINGER: i32 = 13;
const SO_REUSEPORT: i32 = 15;
const SO_MARK: i32 = 36;
const SO_MEMINFO: i32 = 55;
/// Accepted and read back; `MSG_ZEROCOPY` sends then copy, as Linux does when it cannot pin
/// the pages (completion notifications are not produced).
const SO_ZEROCOPY: i32 = 60;
const TCP_NODELAY: i32 = 1;
const TCP_MAXSEG: i32 = 2;
const TCP_CORK: i32 = 3;
const TCP_KEEPIDLE: i32 = 4;
const TCP_KEEPINTVL: i32 = 5;
const TCP_KEEPCNT: i32 = 6;
const TCP_LINGER2: i32 = 8;
const TCP_SYNCNT: i32 = 7;
const TCP_DEFER_ACCEPT: i32 = 9;
const TCP_INFO: i32 = 11;
const TCP_CONGESTION: i32 = 13;
const TCP_USER_TIMEOUT: i32 = 18;
const TCP_FASTOPEN: i32 = 23;
const TCP_CC_INFO: i32 = 26;
const TCP_FASTOPEN_CONNECT: i32 = 30;
const TCP_FASTOPEN_KEY: i32 = 33;
/// Linux `TCP_INQ`: `recvmsg` reports the bytes left to read in a `TCP_CM_INQ` message.
pub(crate) const TCP_INQ: i32 = 36;

/// Options set on a socket. Those tcpcore has per-connection setters for are applied when
/// the connection exists ([`apply`]); buffer sizes and keepalive timings are endpoint-wide
/// in tcpcore, so they are remembered and read back but do not change the stack.
#[derive(Clone, Debug, Default)]
pub(crate) struct Opts {
    pub(crate) reuseaddr: bool,
    pub(crate) nodelay: bool,
    pub(crate) keepalive: bool,
    pub(crate) user_timeout_ms: u32,
    /// `SO_LINGER` with `l_onoff` set: the linger time in seconds.
    pub(crate) linger: Option<i32>,
    pub(crate) sndbuf: Option<i32>,
    pub(crate) rcvbuf: Option<i32>,
    pub(crate) maxseg: Option<i32>,
    pub(crate) keepidle: Option<i32>,
    pub(crate) keepintvl: Option<i32>,
    pub(crate) keepcnt: Option<i32>,
    /// `TCP_LINGER2` in seconds (FIN-WAIT-2 timeout of an orphan).
    pub(crate) linger2: Option<i32>,
    /// `TCP_INQ`: `recvmsg` appends a `TCP_CM_INQ` control message.
    pub(crate) inq: bool,
    /// `SO_ZEROCOPY`.
    pub(crate) zerocopy: bool,
    /// `TCP_CORK`.
    pub(crate) cork: bool,
    /// `SO_MARK` (a routing mark: read back, no effect on a single-link stack).
    pub(crate) mark: i32,
    /// `TCP_DEFER_ACCEPT`, as SYN-ACK timeouts (Linux `secs_to_retrans`), given to `listen`.
    pub(crate) defer_accept: u8,
    /// `TCP_SYNCNT`: SYN retransmissions before `connect` gives up (for connections opened
    /// after it is set).
    pub(crate) syncnt: Option<u8>,
    /// `TCP_FASTOPEN`: the listener's Fast Open queue length.
    pub(crate) fastopen: i32,
    /// `TCP_FASTOPEN_CONNECT`: `connect` defers the SYN to the first write.
    pub(crate) fastopen_connect: bool,
    /// `TCP_FASTOPEN_KEY`: the listener's own cookie key.
    pub(crate) fastopen_key: Option<[u8; 16]>,
}

impl Opts {
    /// `TCP_MAXSEG` as tcpcore's `max_segment`.
    pub(crate) fn max_segment(&self) -> Option<u16> {
        self.maxseg.and_then(|v| u16::try_from(v).ok())
    }
}

/// Push the socket's options into its connection, or its listener.
pub(crate) fn apply(host: &mut Host, fd: i32) {
    host.update_listener(fd);
    let Some(s) = host.socks.get(&fd) else { return };
    let o = s.opts.clone();
    if let Ok(c) = host.conn(fd) {
        // Only changes reach the connection: setting TCP_NODELAY pushes (see `set`).
        if c.nodelay() != o.nodelay {
            c.set_nodelay(o.nodelay);
        }
        if c.cork() != o.cork {
            c.set_cork(o.cork);
        }
        c.set_keepalive(o.keepalive);
        if let Some(n) = o.syncnt {
            c.set_syn_retries(n);
        }
        let ut = (o.user_timeout_ms > 0).then(|| Duration::from_millis(o.user_timeout_ms.into()));
        c.set_user_timeout(ut);
        if let Some(secs) = o.linger2.filter(|s| *s > 0) {
            c.set_fin_wait2_timeout(Duration::from_secs(secs as u64));
        }
    }
    host.stack.drive();
}

fn int(val: &[u8]) -> Res<i32> {
    let b: [u8; 4] = val.get(..4).ok_or(EINVAL)?.try_into().map_err(|_| EINVAL)?;
    Ok(i32::from_ne_bytes(b))
}

/// `setsockopt(2)`.
pub(crate) fn set(host: &mut Host, fd: i32, level: i32, name: i32, val: &[u8]) -> Res<()> {
    // Linux: TCP_FASTOPEN_CONNECT needs the client side of `tcp_fastopen` on.
    if (level, name) == (SOL_TCP, TCP_FASTOPEN_CONNECT) && !host.stack.ep.config().fast_open.client
    {
        return Err(EOPNOTSUPP);
    }
    let o = &mut host.sock(fd)?.opts;
    match (level, name) {
        (SOL_SOCKET, SO_REUSEADDR | SO_REUSEPORT) => o.reuseaddr = int(val)? != 0,
        (SOL_SOCKET, SO_KEEPALIVE) => o.keepalive = int(val)? != 0,
        (SOL_SOCKET, SO_ZEROCOPY) => o.zerocopy = int(val)? != 0,
        (SOL_SOCKET, SO_MARK) => o.mark = int(val)?,
        (SOL_SOCKET, SO_SNDBUF) => o.sndbuf = Some(int(val)?),
        (SOL_SOCKET, SO_RCVBUF) => o.rcvbuf = Some(int(val)?),
        (SOL_SOCKET, SO_LINGER) => {
            let on = int(val)?;
            let secs = int(val.get(4..).ok_or(EINVAL)?)?;
            o.linger = (on != 0).then_some(secs);
        }
        (SOL_TCP, TCP_NODELAY) => {
            o.nodelay = int(val)? != 0;
            // Linux pushes what is queued each time TCP_NODELAY is set, corked or not.
            if o.nodelay {
                apply(host, fd);
                if let Ok(c) = host.conn(fd) {
                    c.set_nodelay(true);
                }
                host.stack.drive();
                return Ok(());
            }
        }
        (SOL_TCP, TCP_CORK) => o.cork = int(val)? != 0,
        (SOL_TCP, TCP_MAXSEG) => {
            // Linux: 0 resets; else within [TCP_MIN_MSS, MAX_TCP_WINDOW].
            let v = int(val)?;
            if v != 0 && !(88..=32_767).contains(&v) {
                return Err(EINVAL);
            }
            o.maxseg = (v != 0).then_some(v);
        }
        (SOL_TCP, TCP_KEEPIDLE) => o.keepidle = Some(positive(int(val)?)?),
        (SOL_TCP, TCP_KEEPINTVL) => o.keepintvl = Some(positive(int(val)?)?),
        (SOL_TCP, TCP_KEEPCNT) => o.keepcnt = Some(positive(int(val)?)?),
        (SOL_TCP, TCP_LINGER2) => o.linger2 = Some(int(val)?),
        (SOL_TCP, TCP_INQ) => o.inq = int(val)? != 0,
        (SOL_TCP, TCP_DEFER_ACCEPT) => o.defer_accept = secs_to_retrans(int(val)?),
        (SOL_TCP, TCP_FASTOPEN) => o.fastopen = int(val)?.max(0),
        (SOL_TCP, TCP_SYNCNT) => {
            o.syncnt =
                Some(u8::try_from(int(val)?).ok().filter(|n| (1..=127).contains(n)).ok_or(EINVAL)?)
        }
        (SOL_TCP, TCP_FASTOPEN_CONNECT) => o.fastopen_connect = int(val)? != 0,
        (SOL_TCP, TCP_FASTOPEN_KEY) => {
            // Linux: a primary key, or a primary and a backup (16 or 32 bytes).
            if val.len() != 16 && val.len() != 32 {
                return Err(EINVAL);
            }
            let mut key = [0; 16];
            key.copy_from_slice(&val[..16]);
            o.fastopen_key = Some(key);
        }
        (SOL_TCP, TCP_USER_TIMEOUT) => {
            o.user_timeout_ms = u32::try_from(int(val)?).map_err(|_| EINVAL)?
        }
        (SOL_TCP, TCP_CONGESTION) => {
            let name: Vec<u8> = val.iter().copied().take_while(|b| *b != 0).collect();
            if name != b"cubic" && name != b"reno" {
                return Err(ENOENT);
            }
        }
        _ => return Err(unsupported(host, level, name)),
    }
    apply(host, fd);
    Ok(())
}

/// Linux `secs_to_retrans` with a 1 s initial timeout doubling up to 120 s: the SYN-ACK
/// timeouts that cover `secs`.
fn secs_to_retrans(secs: i32) -> u8 {
    if secs <= 0 {
        return 0;
    }
    let (mut res, mut timeout, mut period) = (1u8, 1, 1);
    while secs > period && res < 255 {
        res += 1;
        timeout = (timeout * 2).min(120);
        period += timeout;
    }
    res
}

/// Linux `retrans_to_secs`: the seconds `retrans` SYN-ACK timeouts last.
fn retrans_to_secs(retrans: u8) -> i32 {
    let (mut period, mut timeout) = (0, 1);
    for _ in 0..retrans {
        period += timeout;
        timeout = (timeout * 2).min(120);
    }
    period
}

fn positive(v: i32) -> Res<i32> {
    if v < 1 {
        Err(EINVAL)
    } else {
        Ok(v)
    }
}

fn unsupported(host: &mut Host, level: i32, name: i32) -> Errno {
    *host.unsupported.entry((level, name)).or_default() += 1;
    ENOPROTOOPT
}

/// `getsockopt(2)`: writes the value into `out` and returns its length.
pub(crate) fn get(host: &mut Host, fd: i32, level: i32, name: i32, out: &mut [u8]) -> Res<usize> {
    let cfg = crate::stack::config().conn;
    let o = host.sock(fd)?.opts.clone();
    let v: i32 = {
        match (level, name) {
            (SOL_SOCKET, SO_TYPE) => 1,
            (SOL_SOCKET, SO_REUSEADDR) => o.reuseaddr.into(),
            (SOL_SOCKET, SO_KEEPALIVE) => o.keepalive.into(),
            (SOL_SOCKET, SO_ZEROCOPY) => o.zerocopy.into(),
            (SOL_SOCKET, SO_MARK) => o.mark,
            // Linux doubles the requested size for bookkeeping overhead (socket(7)).
            (SOL_SOCKET, SO_SNDBUF) => o.sndbuf.map_or(cfg.send_buffer as i32, |v| v * 2),
            (SOL_SOCKET, SO_RCVBUF) => o.rcvbuf.map_or(cfg.recv_buffer as i32, |v| v * 2),
            (SOL_SOCKET, SO_LINGER) => return copy_out(out, &linger_bytes(o.linger)),
            (SOL_SOCKET, SO_ERROR) => host.take_error(fd).unwrap_or(0),
            (SOL_SOCKET, SO_MEMINFO) => return copy_out(out, &[0u8; 36]),
            (SOL_TCP, TCP_NODELAY) => o.nodelay.into(),
            (SOL_TCP, TCP_CORK) => o.cork.into(),
            (SOL_TCP, TCP_MAXSEG) => match host.conn(fd) {
                Ok(c) => c.info().snd_mss as i32,
                Err(_) => o.maxseg.unwrap_or(536),
            },
            (SOL_TCP, TCP_KEEPIDLE) => o.keepidle.unwrap_or(cfg.keepalive_idle.as_secs() as i32),
            (SOL_TCP, TCP_KEEPINTVL) => {
                o.keepintvl.unwrap_or(cfg.keepalive_interval.as_secs() as i32)
            }
            (SOL_TCP, TCP_KEEPCNT) => o.keepcnt.unwrap_or(cfg.keepalive_probes.into()),
            (SOL_TCP, TCP_USER_TIMEOUT) => o.user_timeout_ms as i32,
            (SOL_TCP, TCP_INQ) => o.inq.into(),
            (SOL_TCP, TCP_DEFER_ACCEPT) => retrans_to_secs(o.defer_accept),
            (SOL_TCP, TCP_FASTOPEN) => o.fastopen,
            (SOL_TCP, TCP_FASTOPEN_CONNECT) => o.fastopen_connect.into(),
            (SOL_TCP, TCP_LINGER2) => o.linger2.unwrap_or(cfg.fin_wait2_timeout.as_secs() as i32),
            (SOL_TCP, TCP_CONGESTION) => return copy_out(out, b"cubic\0\0\0\0\0\0\0\0\0\0\0"),
            (SOL_TCP, TCP_CC_INFO) => return copy_out(out, &[0u8; 16]),
            (SOL_TCP, TCP_INFO) => {
                let info = host.conn(fd).ok().map(|c| c.info());
                let bytes = crate::tcp_info::linux_layout(info, host.stack.now);
                return copy_out(out, &bytes);
            }
            _ => return Err(unsupported(host, level, name)),
        }
    };
    copy_out(out, &v.to_ne_bytes())
}

/// The value of a `TCP_CM_INQ` control message, as Linux's `tcp_inq_hint`: the bytes left
/// to read, or 1 when none are left and the peer has closed (so the reader knows to read
/// once more for the end of stream).
pub(crate) fn inq_hint(host: &mut Host, fd: i32) -> Option<i32> {
    if !host.socks.get(&fd)?.opts.inq {
        return None;
    }
    let c = host.conn(fd).ok()?;
    let left = c.seq_vars().recv_buffered as i32;
    let eof = matches!(
        c.state(),
        tcpcore::State::CloseWait
            | tcpcore::State::LastAck
            | tcpcore::State::Closing
            | tcpcore::State::TimeWait
            | tcpcore::State::Closed
    );
    Some(if left == 0 && eof { 1 } else { left })
}

fn linger_bytes(l: Option<i32>) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&i32::from(l.is_some()).to_ne_bytes());
    b[4..].copy_from_slice(&l.unwrap_or(0).to_ne_bytes());
    b
}

fn copy_out(out: &mut [u8], v: &[u8]) -> Res<usize> {
    let n = out.len().min(v.len());
    out[..n].copy_from_slice(&v[..n]);
    Ok(n)
}

//! Shared pieces of the HTTP examples: the router a hyper server runs over the stack, a
//! streamed pattern body, a byte checker for it, and the stack's stats and connections as
//! JSON.
//!
//! `http_demo` (two stacks over [`MemLink`](tcp_tokio::MemLink)) and the TUN `http_server`
//! serve the same routes with [`serve`]:
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | a short HTML page listing the routes |
//! | `GET /bytes/N` | exactly `N` bytes, byte `i` being `i % 251`, streamed in 64 KiB chunks |
//! | `POST /echo` | the request body, streamed back as it arrives |
//! | `GET /stats` | the serving stack's totals and endpoint counters as JSON ([`stats_json`]) |
//! | `GET /connections` | connections per state and each connection's `TcpInfo` as JSON ([`connections_json`]) |
//!
//! The server code is what one writes for `tokio::net`: only the `use` lines name
//! `tcp_tokio` instead.

pub mod cli;
#[cfg(target_os = "linux")]
pub mod forward;
#[cfg(target_os = "linux")]
mod forward_udp;
pub mod log;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod splice;

/// The README's code blocks, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tcp_tokio::net::{TcpListener, TcpStream};
use tcp_tokio::Stack;

/// The body type of every response.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// Byte `i` of a `/bytes/N` body is `i % PERIOD`. 251 is prime, so the pattern never lines
/// up with a power-of-two chunk or segment size and a misplaced chunk is caught.
pub const PERIOD: u64 = 251;

/// Size of the chunks a [`PatternBody`] yields.
pub const CHUNK: usize = 64 << 10;

/// `CHUNK + PERIOD` bytes of the pattern: any chunk of it, starting at any phase, is a slice.
static PATTERN: [u8; CHUNK + PERIOD as usize] = pattern_table();

const fn pattern_table() -> [u8; CHUNK + PERIOD as usize] {
    let mut t = [0; CHUNK + PERIOD as usize];
    let mut i = 0;
    while i < t.len() {
        t[i] = (i % PERIOD as usize) as u8;
        i += 1;
    }
    t
}

/// The pattern bytes `[offset, offset + len)`, `len ≤ CHUNK`, without copying.
fn pattern_slice(offset: u64, len: usize) -> &'static [u8] {
    let phase = (offset % PERIOD) as usize;
    &PATTERN[phase..phase + len]
}

/// A body of `len` pattern bytes (byte `i` is `i % 251`), yielded as 64 KiB slices of a
/// static table: nothing is allocated however long the body is.
#[derive(Clone, Debug)]
pub struct PatternBody {
    pos: u64,
    len: u64,
}

impl PatternBody {
    /// A body of `len` bytes.
    pub fn new(len: u64) -> Self {
        PatternBody { pos: 0, len }
    }
}

impl hyper::body::Body for PatternBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let left = self.len - self.pos;
        if left == 0 {
            return Poll::Ready(None);
        }
        let n = left.min(CHUNK as u64) as usize;
        let chunk = Bytes::from_static(pattern_slice(self.pos, n));
        self.pos += n as u64;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.pos == self.len
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len - self.pos)
    }
}

/// Checks a stream of chunks against the pattern, byte by byte.
#[derive(Clone, Debug, Default)]
pub struct PatternCheck {
    pos: u64,
}

/// The first byte that differs from the pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Its offset in the stream.
    pub offset: u64,
    /// The pattern's byte there.
    pub expected: u8,
    /// The byte received.
    pub got: u8,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "byte {} is {:#04x}, expected {:#04x}", self.offset, self.got, self.expected)
    }
}

impl std::error::Error for Mismatch {}

impl PatternCheck {
    /// A checker at offset 0.
    pub fn new() -> Self {
        PatternCheck::default()
    }

    /// Check the next `chunk` of the stream.
    ///
    /// # Errors
    /// The first byte that differs.
    pub fn check(&mut self, chunk: &[u8]) -> Result<(), Mismatch> {
        for piece in chunk.chunks(CHUNK) {
            let want = pattern_slice(self.pos, piece.len());
            if piece != want {
                let i = piece.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
                return Err(Mismatch {
                    offset: self.pos + i as u64,
                    expected: want[i],
                    got: piece[i],
                });
            }
            self.pos += piece.len() as u64;
        }
        Ok(())
    }

    /// Bytes checked so far.
    pub fn position(&self) -> u64 {
        self.pos
    }
}

/// The short page served at `/`.
pub const INDEX: &str = "<!doctype html>
<title>tcpstack</title>
<h1>Hello from a userspace TCP/IP stack</h1>
<p>This page came over tcp-tokio, not the kernel's TCP.</p>
<ul>
<li><a href=\"/bytes/1024\">GET /bytes/N</a>: N bytes, byte i = i mod 251</li>
<li>POST /echo: the request body back</li>
<li><a href=\"/stats\">GET /stats</a>: the stack's counters as JSON</li>
<li><a href=\"/connections\">GET /connections</a>: connections per state, and each one's TCP_INFO</li>
</ul>
";

/// Answer one request. Never fails: bad requests get a 4xx response.
///
/// # Errors
/// None (the error type is `Infallible`, as `hyper::service::service_fn` wants).
pub async fn route(stack: &Stack, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    let resp = match (req.method(), path) {
        (&Method::GET, "/") => with_type(full(INDEX), "text/html; charset=utf-8"),
        (&Method::GET, "/stats") => with_type(full(stats_json(stack)), "application/json"),
        (&Method::GET, "/connections") => {
            with_type(full(connections_json(stack)), "application/json")
        }
        (&Method::GET, p) if p.starts_with("/bytes/") => match p["/bytes/".len()..].parse() {
            Ok(n) => with_type(
                Response::new(PatternBody::new(n).map_err(|never| match never {}).boxed()),
                "application/octet-stream",
            ),
            Err(_) => status(StatusCode::BAD_REQUEST, "/bytes/N wants a byte count\n"),
        },
        (&Method::POST, "/echo") => {
            let ty = req.headers().get(CONTENT_TYPE).cloned();
            let mut resp = Response::new(EchoBody::start(req.into_body()).await.boxed());
            if let Some(ty) = ty {
                resp.headers_mut().insert(CONTENT_TYPE, ty);
            }
            resp
        }
        (_, "/" | "/stats" | "/connections" | "/echo") => {
            status(StatusCode::METHOD_NOT_ALLOWED, "wrong method\n")
        }
        (_, p) if p.starts_with("/bytes/") => {
            status(StatusCode::METHOD_NOT_ALLOWED, "wrong method\n")
        }
        _ => status(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(resp)
}

/// The answer to `POST /echo`: the request body's first frame, read before answering, then
/// the rest as it arrives.
///
/// Reading first matters to clients that send `Expect: 100-continue` (curl does for bodies
/// over 1 MiB): hyper sends `100 Continue` when the body is first polled, and a response
/// that went out before that makes such a client wait out its timeout (1 s for curl) before
/// it sends the body (RFC 9110 §10.1.1).
struct EchoBody {
    first: Option<Result<Frame<Bytes>, hyper::Error>>,
    rest: Incoming,
}

impl EchoBody {
    async fn start(mut rest: Incoming) -> Self {
        let first = rest.frame().await;
        EchoBody { first, rest }
    }
}

impl hyper::body::Body for EchoBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.first.take() {
            Some(first) => Poll::Ready(Some(first)),
            None => Pin::new(&mut self.rest).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let first = match &self.first {
            Some(Ok(frame)) => frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => 0,
        };
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + first);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + first);
        }
        hint
    }
}

fn full(body: impl Into<Bytes>) -> Response<Body> {
    Response::new(Full::new(body.into()).map_err(|never| match never {}).boxed())
}

fn with_type(mut resp: Response<Body>, ty: &'static str) -> Response<Body> {
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ty));
    resp
}

fn status(code: StatusCode, msg: &'static str) -> Response<Body> {
    let mut resp = with_type(full(msg), "text/plain; charset=utf-8");
    *resp.status_mut() = code;
    resp
}

/// Serve HTTP/1.1 with [`route`] on one accepted connection until the client closes it.
///
/// # Errors
/// hyper's error for a broken connection or a malformed request.
pub async fn serve_connection(stack: Stack, stream: TcpStream) -> Result<(), hyper::Error> {
    let service = hyper::service::service_fn(move |req| {
        let stack = stack.clone();
        async move { route(&stack, req).await }
    });
    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await
}

/// Accept connections on `listener` forever, each served by [`serve_connection`] on its own
/// task. Connection errors are printed to stderr and do not stop the server.
///
/// # Errors
/// An error of `accept` itself.
pub async fn serve(stack: Stack, listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let stack = stack.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_connection(stack, stream).await {
                eprintln!("http: connection from {peer}: {e}");
            }
        });
    }
}

/// `GET /stats`: the stack's totals ([`Stack::totals`]: every packet and byte in and out,
/// retransmissions, drops by where they happened, the endpoint's counters under
/// `"endpoint"`), plus `connections`, the connections the stack still drives, as a JSON
/// object.
pub fn stats_json(stack: &Stack) -> String {
    let mut v = serde_json::to_value(stack.totals()).expect("counters serialize");
    v["connections"] = stack.connection_count().into();
    pretty(&v)
}

/// `GET /connections`: the `netstat` and `ss -ti` views as one JSON object: `"counts"`, the
/// connections per state ([`Stack::state_counts`], SYN-RECEIVED and TIME-WAIT included),
/// and `"connections"`, one object per connection ([`Stack::connections`]: addresses,
/// state, queues and `TcpInfo`).
pub fn connections_json(stack: &Stack) -> String {
    let listing = serde_json::json!({
        "counts": stack.state_counts(),
        "connections": stack.connections(),
    });
    pretty(&listing)
}

fn pretty(v: &serde_json::Value) -> String {
    let mut out = serde_json::to_string_pretty(v).expect("a JSON value serializes");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Body as _;

    #[test]
    fn pattern_body_is_exact_and_chunked() {
        let mut check = PatternCheck::new();
        let mut body = PatternBody::new(3 * CHUNK as u64 + 17);
        assert_eq!(body.size_hint().exact(), Some(3 * CHUNK as u64 + 17));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut chunks = 0;
        while let Poll::Ready(Some(Ok(f))) = Pin::new(&mut body).poll_frame(&mut cx) {
            let data = f.into_data().unwrap();
            for (k, b) in data.iter().enumerate() {
                assert_eq!(u64::from(*b), (check.position() + k as u64) % PERIOD);
            }
            check.check(&data).unwrap();
            chunks += 1;
        }
        assert_eq!((chunks, check.position()), (4, 3 * CHUNK as u64 + 17));
        assert!(body.is_end_stream());
    }

    #[test]
    fn check_reports_the_first_wrong_byte() {
        let mut check = PatternCheck::new();
        check.check(&[0, 1, 2]).unwrap();
        assert_eq!(check.check(&[3, 9]), Err(Mismatch { offset: 4, expected: 4, got: 9 }));
    }
}

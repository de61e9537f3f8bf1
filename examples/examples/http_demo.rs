//! HTTP over the userspace stack, no root needed: two stacks joined by an in-memory link, a
//! hyper server on one and a hyper client on the other.
//!
//! ```sh
//! cargo run --release --example http_demo
//! ```
//!
//! The client makes a few small requests, downloads 100 MiB from `/bytes/104857600` and
//! echoes 10 MiB through `POST /echo`, checks every byte, and prints each request, its
//! status and the throughput. It exits 0 on success and 1 with a message on any mismatch.

use std::convert::Infallible;
use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use examples::{serve, PatternBody, PatternCheck, INDEX};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HOST;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tcp_tokio::{MemLink, Stack};

const SERVER_IP: &str = "10.0.0.1";
const CLIENT_IP: &str = "10.0.0.2";
const SERVER: &str = "10.0.0.1:80";
const DOWNLOAD: u64 = 100 << 20;
const ECHO: u64 = 10 << 20;
/// The whole demo takes a second or two in release; a hang is a failure, not a wait.
const DEADLINE: Duration = Duration::from_secs(300);

type Failure = Box<dyn Error + Send + Sync>;
type ReqBody = BoxBody<Bytes, Infallible>;

fn main() -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    let result = match rt {
        Ok(rt) => rt.block_on(async {
            match tokio::time::timeout(DEADLINE, run()).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {DEADLINE:?}").into()),
            }
        }),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => {
            println!("ok: every byte checked");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("http_demo: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Failure> {
    let (a, b) = MemLink::pair();
    let server = Stack::builder().address(SERVER_IP.parse()?).build(a)?;
    let client = Stack::builder().address(CLIENT_IP.parse()?).build(b)?;
    println!("server stack {SERVER_IP}, client stack {CLIENT_IP}, joined by MemLink (MTU 1500, GSO/GRO on)");

    let listener = server.bind(SERVER).await?;
    println!("hyper server listening on {}", listener.local_addr()?);
    tokio::spawn(serve(server.clone(), listener));

    let stream = client.connect(SERVER).await?;
    println!("hyper client connected from {} to {}", stream.local_addr()?, stream.peer_addr()?);
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("http_demo: client connection: {e}");
        }
    });

    // The index page.
    let (resp, ms) = timed(request(&mut send, Method::GET, "/", empty())).await?;
    let body = expect(resp, StatusCode::OK)?.into_body().collect().await?.to_bytes();
    if body != INDEX.as_bytes() {
        return Err("GET / returned a different page".into());
    }
    println!("GET /                     -> 200 OK, {} bytes in {ms:.2} ms", body.len());

    // A small pattern body, and an unknown path.
    let (resp, ms) = timed(request(&mut send, Method::GET, "/bytes/1000", empty())).await?;
    let n = check_pattern(expect(resp, StatusCode::OK)?, 1000).await?;
    println!("GET /bytes/1000           -> 200 OK, {n} bytes checked in {ms:.2} ms");
    let (resp, ms) = timed(request(&mut send, Method::GET, "/nowhere", empty())).await?;
    expect(resp, StatusCode::NOT_FOUND)?.into_body().collect().await?;
    println!("GET /nowhere              -> 404 Not Found in {ms:.2} ms");

    // 100 MiB down.
    let path = format!("/bytes/{DOWNLOAD}");
    let started = Instant::now();
    let resp = request(&mut send, Method::GET, &path, empty()).await?;
    let n = check_pattern(expect(resp, StatusCode::OK)?, DOWNLOAD).await?;
    println!("GET {path:<22}-> 200 OK, {}", rate(n, started.elapsed()));

    // 10 MiB up and back down, streamed both ways at once.
    let started = Instant::now();
    let body = PatternBody::new(ECHO).boxed();
    let resp = request(&mut send, Method::POST, "/echo", body).await?;
    let n = check_pattern(expect(resp, StatusCode::OK)?, ECHO).await?;
    println!(
        "POST /echo ({} MiB)       -> 200 OK, {} echoed",
        ECHO >> 20,
        rate(n, started.elapsed())
    );

    // The server's counters: every segment in and out, and the endpoint's own.
    let stats = get_json(&mut send, "/stats").await?;
    println!("GET /stats                -> 200 OK:");
    for key in ["connections", "packets_in", "packets_out", "bytes_out", "retransmits"] {
        println!("    {key}: {}", stats[key]);
    }
    println!("    endpoint.passive_opens: {}", stats["endpoint"]["passive_opens"]);
    if stats["endpoint"]["passive_opens"] != 1 {
        return Err(format!("GET /stats: expected one passive open in\n{stats:#}").into());
    }
    let drops = ["drops_not_local", "drops_connection", "drops_endpoint", "drops_send_error"];
    if drops.iter().any(|k| stats[k] != 0) {
        return Err(format!("GET /stats: the server dropped packets\n{stats:#}").into());
    }
    // Every segment counts: at least one per MSS of what the server sent.
    let least = (DOWNLOAD + ECHO) / 1460;
    if stats["packets_out"].as_u64().is_none_or(|n| n < least) {
        return Err(format!("GET /stats: fewer than {least} packets out\n{stats:#}").into());
    }

    // The netstat and ss -ti views.
    let conns = get_json(&mut send, "/connections").await?;
    let listing = conns["connections"].as_array().map_or(&[][..], Vec::as_slice);
    println!("GET /connections          -> 200 OK: {} connection(s)", listing.len());
    for c in listing {
        let info = &c["info"];
        println!(
            "    {} -> {} {} cwnd {} srtt {} µs",
            c["local"], c["remote"], c["state"], info["cwnd"], info["srtt_us"]
        );
    }
    if conns["counts"]["ESTABLISHED"] != 1 {
        return Err(format!("GET /connections: expected one ESTABLISHED in\n{conns:#}").into());
    }

    // Stop the server: FIN to the client, which closes in turn.
    let aborted = server.shutdown(Duration::from_secs(1)).await;
    println!("server shut down, {aborted} connection(s) aborted");
    Ok(())
}

/// GET `path` and parse the JSON body.
async fn get_json(
    send: &mut SendRequest<ReqBody>,
    path: &str,
) -> Result<serde_json::Value, Failure> {
    let resp = request(send, Method::GET, path, empty()).await?;
    let body = expect(resp, StatusCode::OK)?.into_body().collect().await?.to_bytes();
    Ok(serde_json::from_slice(&body)?)
}

fn empty() -> ReqBody {
    Empty::new().boxed()
}

async fn request(
    send: &mut SendRequest<ReqBody>,
    method: Method,
    path: &str,
    body: ReqBody,
) -> Result<Response<Incoming>, Failure> {
    let req = Request::builder().method(method).uri(path).header(HOST, SERVER_IP).body(body)?;
    send.ready().await?;
    Ok(send.send_request(req).await?)
}

/// Run `f`, returning its value and the milliseconds it took.
async fn timed<T>(
    f: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<(T, f64), Failure> {
    let started = Instant::now();
    let out = f.await?;
    Ok((out, started.elapsed().as_secs_f64() * 1e3))
}

fn expect(resp: Response<Incoming>, want: StatusCode) -> Result<Response<Incoming>, Failure> {
    if resp.status() == want {
        Ok(resp)
    } else {
        Err(format!("status {}, expected {want}", resp.status()).into())
    }
}

/// Read the body, checking every byte against the pattern and the total length.
async fn check_pattern(resp: Response<Incoming>, len: u64) -> Result<u64, Failure> {
    let mut body = resp.into_body();
    let mut check = PatternCheck::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            check.check(&data)?;
        }
    }
    if check.position() != len {
        return Err(format!("body of {} bytes, expected {len}", check.position()).into());
    }
    Ok(check.position())
}

fn rate(bytes: u64, took: Duration) -> String {
    let s = took.as_secs_f64();
    format!(
        "{} MiB in {s:.3} s: {:.0} MiB/s ({:.2} Gbit/s)",
        bytes >> 20,
        bytes as f64 / s / f64::from(1 << 20),
        bytes as f64 * 8.0 / s / 1e9,
    )
}

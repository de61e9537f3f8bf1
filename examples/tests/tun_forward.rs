//! `tun_forward` in the usual tun2socks layout (issue 13 item 7): a client namespace whose
//! default route is the forwarder's TUN, a policy rule that keeps the forwarder's own
//! (marked) sockets on a veth to a server namespace, and kernel servers there. Everything
//! the client namespace dials goes through the forwarder, and the applications (curl, dig,
//! plain sockets) see what they would see talking to the servers directly. Each test makes
//! its own namespaces; without root it prints why it skipped.

#![cfg(target_os = "linux")]

#[path = "../../tcp-tun/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use examples::forward::{ForwardConfig, Forwarder};
use examples::netns::{ForwardNet, Killed, Netns, MARK, SERVER_IP, SERVER_IP6, TUN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1 << 20;
/// The kernel HTTP server (python's http.server) serving the download file.
const HTTP_PORT: u16 = 8000;
/// The upload sink: answers a POST with the SHA-256 of its body.
const SINK_PORT: u16 = 8001;
/// A TCP echo server (Rust, kernel sockets).
const ECHO_PORT: u16 = 7000;

/// The upload sink, in Python's standard library.
const SINK: &str = r#"
import hashlib, http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers['Content-Length']); h = hashlib.sha256()
        while n > 0:
            b = self.rfile.read(min(n, 1 << 20))
            if not b: break
            h.update(b); n -= len(b)
        body = h.hexdigest().encode()
        self.send_response(200); self.send_header('Content-Length', str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H)
print('ready', flush=True)
s.serve_forever()
"#;

/// A DNS server answering every A query with 192.0.2.7, in Python's standard library.
const DNS: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print('ready', flush=True)
while True:
    q, peer = s.recvfrom(4096)
    i = 12
    while q[i] != 0: i += q[i] + 1
    question = q[12:i + 5]
    answer = b'\xc0\x0c' + struct.pack('>HHIH', 1, 1, 60, 4) + bytes([192, 0, 2, 7])
    s.sendto(q[:2] + b'\x81\x80' + struct.pack('>HHHH', 1, 1, 0, 0) + question + answer, peer)
"#;

/// The tests one at a time: each moves tens of MiB through a TUN on a 2-core machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A file of `len` bytes that is not a repeating pattern of a small period.
fn random_file(name: &str, len: usize) -> std::path::PathBuf {
    let data = common::xorshift_bytes(0x9e37_79b9_7f4a_7c15 ^ len as u64, len);
    let dir = std::env::temp_dir().join(format!("tun_forward_{name}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("blob");
    std::fs::write(&path, data).unwrap();
    path
}

/// Start `cmd` in `ns` and wait (bounded by the child's own startup) for its first line
/// on stdout, which says it listens.
fn start_server(ns: &Netns, mut cmd: Command) -> Killed {
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = ns.spawn(cmd).expect("server");
    let out = child.0.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    assert!(!line.is_empty(), "the server exited before listening");
    child
}

/// The HTTP servers: `python3 -m http.server` serving `dir`, and the upload sink.
fn http_servers(ns: &Netns, dir: &std::path::Path) -> Vec<Killed> {
    let ip = SERVER_IP.to_string();
    let mut http = Command::new("python3");
    http.args(["-u", "-m", "http.server", "--bind", &ip, "--directory"]);
    http.arg(dir).arg(HTTP_PORT.to_string());
    let mut sink = Command::new("python3");
    sink.args(["-u", "-c", SINK, &ip, &SINK_PORT.to_string()]);
    vec![start_server(ns, http), start_server(ns, sink)]
}

/// TCP and UDP echo servers on kernel sockets in `ns`, until the returned sender drops.
fn echo_server(ns: &Netns) -> tokio::sync::oneshot::Sender<()> {
    echo_server_at(ns, SocketAddr::from((SERVER_IP, ECHO_PORT)))
}

/// TCP and UDP echo servers on kernel sockets at `at` in `ns`, until the returned sender
/// drops.
fn echo_server_at(ns: &Netns, at: SocketAddr) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    ns.run(move || {
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let sock = if at.is_ipv4() {
                    tokio::net::TcpSocket::new_v4().unwrap()
                } else {
                    tokio::net::TcpSocket::new_v6().unwrap()
                };
                sock.bind(at).unwrap();
                let listener = sock.listen(4096).unwrap();
                let udp = tokio::net::UdpSocket::bind(at).await.unwrap();
                ready_tx.send(()).unwrap();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65_536];
                    while let Ok((n, from)) = udp.recv_from(&mut buf).await {
                        let _ = udp.send_to(&buf[..n], from).await;
                    }
                });
                let serve = async {
                    loop {
                        let (mut s, _) = listener.accept().await.unwrap();
                        tokio::spawn(async move {
                            let (mut r, mut w) = s.split();
                            let _ = tokio::io::copy(&mut r, &mut w).await;
                            let _ = w.shutdown().await;
                        });
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = stopped => {}
                }
            });
        })
    });
    ready.recv().unwrap();
    stop
}

/// The forwarder on a TUN in `net`'s client namespace (offloads off; `setup` run once the
/// default route points into the TUN, for iptables), and `f` on a thread of that namespace.
fn with_forwarder<R: Send + 'static>(
    net: &ForwardNet,
    setup: fn(),
    f: impl FnOnce(Forwarder) -> R + Send + 'static,
) -> R {
    net.with_forwarder(false, setup, f).expect("the forwarder")
}

/// Run curl with `args` and a bound on its run time.
fn curl(args: &[&str], max: Duration) -> Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "-H", "Expect:", "--max-time"])
        .arg(max.as_secs().to_string())
        .args(args)
        .output()
        .expect("curl")
}

/// Download `path` (served by http.server) and upload it to the sink, both through the
/// forwarder, and check both byte for byte (the upload by the sink's SHA-256).
fn download_and_upload(path: &std::path::Path, max: Duration) {
    let want = std::fs::read(path).unwrap();
    let url = format!("http://{SERVER_IP}:{HTTP_PORT}/blob");
    let start = Instant::now();
    let got = curl(&[&url], max);
    let took = start.elapsed();
    assert!(got.status.success(), "download: {}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(got.stdout.len(), want.len(), "bytes downloaded");
    assert!(got.stdout == want, "the download differs from the file");
    eprintln!("download {} MiB in {took:.2?}", want.len() / MIB);

    let sum = Command::new("sha256sum").arg(path).output().expect("sha256sum");
    let sum = String::from_utf8(sum.stdout).unwrap();
    let sum = sum.split_whitespace().next().unwrap();
    let url = format!("http://{SERVER_IP}:{SINK_PORT}/");
    let start = Instant::now();
    let got = curl(&["--data-binary", &format!("@{}", path.display()), &url], max);
    let took = start.elapsed();
    assert!(got.status.success(), "upload: {}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(String::from_utf8_lossy(&got.stdout), sum, "SHA-256 of the upload");
    eprintln!("upload {} MiB in {took:.2?}", want.len() / MIB);
}

/// AI-01 through `tun_forward`: curl downloads a file from a kernel HTTP server and uploads
/// it to another, both through the forwarder, byte-exact; each flow shows in the stats.
#[test]
fn ai_01_curl_download_and_upload_through_the_forwarder_byte_exact() {
    let name = "ai_01_curl_download_and_upload_through_the_forwarder_byte_exact";
    if !common::tools_or_skip(name, &["curl", "python3"]) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let net = ForwardNet::new().expect("namespaces");
    let path = random_file("ai_01", 100 * MIB);
    let _servers = http_servers(&net.server, path.parent().unwrap());
    let p = path.clone();
    let stats = with_forwarder(
        &net,
        || {},
        move |fwd| {
            download_and_upload(&p, Duration::from_secs(120));
            fwd.stats_json()
        },
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["flows"]["tcp"]["forwarded"], 2, "{stats}");
    assert!(v["flows"]["tcp"]["bytes_down"].as_u64().unwrap() > 100 * MIB as u64, "{stats}");
    assert!(v["flows"]["tcp"]["bytes_up"].as_u64().unwrap() > 100 * MIB as u64, "{stats}");
}

/// AI-02 through `tun_forward`: a connection to a closed port upstream is refused with a
/// RST before any handshake, so curl fails with "couldn't connect" (exit code 7,
/// ECONNREFUSED), as it would without the forwarder.
#[test]
fn ai_02_refused_upstream_is_connection_refused_at_curl() {
    let name = "ai_02_refused_upstream_is_connection_refused_at_curl";
    if !common::tools_or_skip(name, &["curl"]) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let net = ForwardNet::new().expect("namespaces");
    let (out, refused) = with_forwarder(
        &net,
        || {},
        |fwd| {
            let out = curl(&[&format!("http://{SERVER_IP}:9/")], Duration::from_secs(20));
            (out, fwd.stats().tcp_refused.load(Relaxed))
        },
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "curl's exit code: {err}");
    assert!(err.contains("connect"), "curl says: {err}");
    assert_eq!(refused, 1);
}

/// AI-01 at scale through `tun_forward`: 1,000 kernel connections open at once through the
/// forwarder to an echo server, each echoing its own bytes after all are connected.
#[test]
fn ai_01_thousand_concurrent_connections_through_the_forwarder() {
    let name = "ai_01_thousand_concurrent_connections_through_the_forwarder";
    if !common::root_or_skip(name) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let net = ForwardNet::new().expect("namespaces");
    let _stop = echo_server(&net.server);
    let (open, stats) = with_forwarder(&net, || {}, thousand_echoes);
    assert_eq!(open, THOUSAND as u64, "flows spliced at once");
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["flows"]["tcp"]["reset"], 0, "{stats}");
}

const THOUSAND: usize = 1000;

/// 1,000 kernel clients connect to the echo server through the forwarder; once all are
/// connected and the forwarder has spliced them all, each sends its own message, closes and
/// checks the echo. Returns the flows spliced at once and the forwarder's stats.
fn thousand_echoes(fwd: Forwarder) -> (u64, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let connected = Arc::new(tokio::sync::Barrier::new(THOUSAND + 1));
        let go = Arc::new(tokio::sync::Barrier::new(THOUSAND + 1));
        let mut tasks = Vec::new();
        for i in 0..THOUSAND {
            let (connected, go) = (connected.clone(), go.clone());
            tasks.push(tokio::spawn(async move {
                let at = SocketAddr::from((SERVER_IP, ECHO_PORT));
                let mut s = tokio::net::TcpStream::connect(at).await.unwrap();
                connected.wait().await;
                go.wait().await;
                let msg = format!("connection {i} says hello").repeat(20);
                s.write_all(msg.as_bytes()).await.unwrap();
                s.shutdown().await.unwrap();
                let mut back = String::new();
                s.read_to_string(&mut back).await.unwrap();
                assert_eq!(back, msg, "connection {i}");
            }));
        }
        let deadline = Duration::from_secs(60);
        tokio::time::timeout(deadline, connected.wait()).await.expect("all connected");
        // A client's connect returns on the SYN-ACK; the forwarder splices the flow once
        // its side has the client's ACK too. Wait for that, bounded.
        let spliced = || fwd.stats().tcp_open.load(Relaxed);
        let start = Instant::now();
        while spliced() < THOUSAND as u64 && start.elapsed() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let open = spliced();
        go.wait().await;
        for t in tasks {
            tokio::time::timeout(deadline, t).await.expect("echo in time").unwrap();
        }
        (open, fwd.stats_json())
    })
}

/// AI-01 on a lossy TUN: with 5 % of the packets dropped each way between the client's
/// kernel and the forwarder, the download and the upload through it stay byte-exact.
#[test]
fn ai_01_five_percent_loss_on_the_tun_byte_exact() {
    let name = "ai_01_five_percent_loss_on_the_tun_byte_exact";
    if !common::tools_or_skip(name, &["curl", "python3", "iptables"]) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let net = ForwardNet::new().expect("namespaces");
    let path = random_file("loss", 10 * MIB);
    let _servers = http_servers(&net.server, path.parent().unwrap());
    let p = path.clone();
    with_forwarder(&net, five_percent_loss_on_tun, move |_| {
        download_and_upload(&p, Duration::from_secs(180))
    });
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// 5 % random loss each way on the forwarder's TUN (iptables `statistic`).
fn five_percent_loss_on_tun() {
    common::five_percent_loss_on(TUN);
}

/// AI-01 for UDP through `tun_forward`: `dig` in the client namespace resolves names
/// through the forwarder against a DNS server in the server namespace, unchanged.
#[test]
fn ai_01_dig_through_the_forwarder() {
    let name = "ai_01_dig_through_the_forwarder";
    if !common::tools_or_skip(name, &["dig", "python3"]) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let net = ForwardNet::new().expect("namespaces");
    let mut dns = Command::new("python3");
    dns.args(["-u", "-c", DNS, &SERVER_IP.to_string(), "53"]);
    let _dns = start_server(&net.server, dns);
    let (answers, stats) = with_forwarder(
        &net,
        || {},
        |fwd| {
            let answers: Vec<String> = ["example.com", "a.b.example.org", "tcp-stack.test"]
                .iter()
                .map(|q| {
                    let out = Command::new("dig")
                        .args(["+short", "+time=5", "+tries=2", &format!("@{SERVER_IP}"), q])
                        .output()
                        .expect("dig");
                    String::from_utf8_lossy(&out.stdout).trim().to_owned()
                })
                .collect();
            (answers, fwd.stats_json())
        },
    );
    assert_eq!(answers, ["192.0.2.7"; 3], "{stats}");
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["flows"]["udp"]["flows"], 3, "one flow per query (a new port each): {stats}");
}

/// FR-01/FR-02 through `tun_forward`: a 10 KiB datagram (fragmented by the client's kernel
/// at MTU 1500, reassembled by the stack) reaches the UDP echo server and its 10 KiB echo
/// (fragmented by the stack) comes back whole.
#[test]
fn fr_01_fr_02_ten_kib_datagram_through_the_forwarder() {
    let name = "fr_01_fr_02_ten_kib_datagram_through_the_forwarder";
    if !common::root_or_skip(name) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let net = ForwardNet::new().expect("namespaces");
    let _stop = echo_server(&net.server);
    let (echo, reassembled) = with_forwarder(
        &net,
        || {},
        |fwd| {
            let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            sock.connect((SERVER_IP, ECHO_PORT)).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let msg: Vec<u8> = (0..10 * 1024).map(|i| (i * 7 % 251) as u8).collect();
            sock.send(&msg).unwrap();
            let mut buf = vec![0u8; 65_536];
            let n = sock
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("the echo: {e}: {}", fwd.stats_json()));
            (buf[..n] == msg[..], fwd.stack().stats().frag_reassembled)
        },
    );
    assert!(echo, "the echo differs from the datagram");
    assert!(reassembled >= 1, "the stack reassembled the datagram");
}

/// AI-01 for UDP at scale through `tun_forward`: 1,000 clients, each its own flow, send
/// their own datagram at once and get it echoed (a client that hears nothing in 1 s sends
/// again, as resolvers do); the forwarder counts exactly 1,000 flows.
#[test]
fn ai_01_thousand_concurrent_udp_flows_through_the_forwarder() {
    let name = "ai_01_thousand_concurrent_udp_flows_through_the_forwarder";
    if !common::root_or_skip(name) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let net = ForwardNet::new().expect("namespaces");
    let _stop = echo_server(&net.server);
    let stats = with_forwarder(
        &net,
        || {},
        |fwd| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let mut tasks = Vec::new();
                for i in 0..THOUSAND {
                    tasks.push(tokio::spawn(async move {
                        let sock = tokio::net::UdpSocket::bind("0.0.0.0:0").await.unwrap();
                        sock.connect((SERVER_IP, ECHO_PORT)).await.unwrap();
                        let msg = format!("flow {i} says hello");
                        let mut buf = [0u8; 64];
                        for _ in 0..5 {
                            sock.send(msg.as_bytes()).await.unwrap();
                            let wait =
                                tokio::time::timeout(Duration::from_secs(1), sock.recv(&mut buf));
                            if let Ok(n) = wait.await {
                                assert_eq!(&buf[..n.unwrap()], msg.as_bytes(), "flow {i}");
                                return;
                            }
                        }
                        panic!("flow {i}: no echo after 5 tries");
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
                fwd.stats_json()
            })
        },
    );
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["flows"]["udp"]["flows"], THOUSAND, "{stats}");
}

/// AI-03 through `tun_forward`: a UDP datagram to a closed port upstream comes back as port
/// unreachable from the address the client dialled, so the client's connected socket fails
/// with ECONNREFUSED, as without the forwarder (IPv4 and IPv6).
#[test]
fn ai_03_refused_udp_upstream_is_connection_refused_at_the_client() {
    let name = "ai_03_refused_udp_upstream_is_connection_refused_at_the_client";
    if !common::root_or_skip(name) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let net = ForwardNet::new().expect("namespaces");
    let (errors, stats) = with_forwarder(
        &net,
        || {},
        |fwd| {
            let closed = [SocketAddr::from((SERVER_IP, 9)), SocketAddr::from((SERVER_IP6, 9))];
            let errors: Vec<_> = closed
                .iter()
                .map(|at| {
                    let any = if at.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                    let sock = std::net::UdpSocket::bind(any).unwrap();
                    sock.connect(at).unwrap();
                    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    sock.send(b"anyone there?").unwrap();
                    let mut buf = [0u8; 64];
                    sock.recv(&mut buf).map(|_| ()).unwrap_err().kind()
                })
                .collect();
            (errors, fwd.stats_json())
        },
    );
    let refused = std::io::ErrorKind::ConnectionRefused;
    assert_eq!(errors, [refused, refused], "{stats}");
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["flows"]["udp"]["refused"], 2, "{stats}");
}

/// AI-01 over IPv6 through `tun_forward`: 8 MiB through a TCP echo at an IPv6 server
/// address (the client half-closes, the echo comes back whole, byte for byte), then UDP
/// datagrams of 100 bytes and of 10 KiB (fragmented both ways, RFC 8200 §4.5) echoed
/// byte-exact.
#[test]
fn ai_01_ipv6_tcp_and_udp_through_the_forwarder_byte_exact() {
    let name = "ai_01_ipv6_tcp_and_udp_through_the_forwarder_byte_exact";
    if !common::root_or_skip(name) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let net = ForwardNet::new().expect("namespaces");
    let at = SocketAddr::from((SERVER_IP6, ECHO_PORT));
    let _stop = echo_server_at(&net.server, at);
    let data = common::xorshift_bytes(0x2545_f491_4f6c_dd1d, 8 * MIB);
    let want = data.clone();
    let (tcp, udp, stats) = with_forwarder(
        &net,
        || {},
        move |fwd| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let tcp = rt.block_on(async move {
                let s = tokio::net::TcpStream::connect(at).await.expect("connect over IPv6");
                let (mut r, mut w) = s.into_split();
                let writer = tokio::spawn(async move {
                    w.write_all(&data).await.unwrap();
                    w.shutdown().await.unwrap();
                });
                let mut got = Vec::new();
                let read = r.read_to_end(&mut got);
                tokio::time::timeout(Duration::from_secs(60), read).await.expect("echo").unwrap();
                writer.await.unwrap();
                got
            });
            let sock = std::net::UdpSocket::bind("[::]:0").unwrap();
            sock.connect(at).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let udp: Vec<bool> = [100usize, 10 * 1024]
                .iter()
                .map(|&len| {
                    let msg: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
                    sock.send(&msg).unwrap();
                    let mut buf = vec![0u8; 65_536];
                    let n =
                        sock.recv(&mut buf).unwrap_or_else(|e| panic!("the {len}-byte echo: {e}"));
                    buf[..n] == msg[..]
                })
                .collect();
            (tcp, udp, fwd.stats_json())
        },
    );
    assert_eq!(tcp.len(), want.len(), "bytes echoed over IPv6: {stats}");
    assert!(tcp == want, "the IPv6 echo differs from what was sent");
    assert_eq!(udp, [true, true], "UDP echoes over IPv6 byte-exact: {stats}");
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["flows"]["tcp"]["forwarded"], 1, "{stats}");
    assert_eq!(v["flows"]["udp"]["flows"], 1, "{stats}");
}

/// AI-01 for UDP: a flow through `tun_forward` ends after its idle time without a datagram
/// either way (its kernel socket closed), and the client's next datagram makes a new flow
/// that works as the first did.
#[test]
fn ai_01_udp_flow_ends_when_idle_and_a_new_one_follows() {
    let name = "ai_01_udp_flow_ends_when_idle_and_a_new_one_follows";
    if !common::root_or_skip(name) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let net = ForwardNet::new().expect("namespaces");
    let _stop = echo_server(&net.server);
    let cfg = ForwardConfig {
        fwmark: Some(MARK),
        udp_idle: Duration::from_millis(500),
        ..ForwardConfig::default()
    };
    let (ended, stats) = net
        .with_forwarder_config(
            false,
            cfg,
            || {},
            |fwd| {
                let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
                sock.connect((SERVER_IP, ECHO_PORT)).unwrap();
                sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let echo = |msg: &[u8]| {
                    sock.send(msg).unwrap();
                    let mut buf = [0u8; 64];
                    let n = sock.recv(&mut buf).expect("the echo");
                    assert_eq!(&buf[..n], msg);
                };
                echo(b"first");
                // The flow ends between one and two idle times after its last datagram.
                let start = Instant::now();
                while fwd.stats().udp_open.load(Relaxed) > 0
                    && start.elapsed() < Duration::from_secs(10)
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let ended = start.elapsed();
                echo(b"second");
                (ended, fwd.stats_json())
            },
        )
        .expect("the forwarder");
    assert!(ended < Duration::from_secs(3), "the idle flow ended after {ended:?}: {stats}");
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["flows"]["udp"]["flows"], 2, "{stats}");
    assert_eq!(v["flows"]["udp"]["open"], 1, "{stats}");
}

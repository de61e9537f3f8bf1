//! `http_server`'s routes on a real TUN, driven by curl, the way a user first tries the stack:
//! a 10 MiB `POST /echo` (both directions at once, with the server's window closing whenever
//! the echo cannot write) and a 10 MiB download, with and without 5 % iptables loss each way.
//! Each test runs in a network namespace of its own; without root it prints why it skipped.

#![cfg(target_os = "linux")]

#[path = "../../tcp-tun/tests/common/mod.rs"]
mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{kernel_side, mbps, KERNEL_IP, STACK_IP, TUN_NAME};
use tcp_tokio::Stack;
use tcp_tun::Tun;

const MIB: usize = 1 << 20;
const PORT: u16 = 8080;

/// A 10 MiB body that is not a repeating pattern of a small period, so a misplaced segment
/// cannot go unnoticed.
fn body() -> Vec<u8> {
    common::xorshift_bytes(0x9e37_79b9_7f4a_7c15, 10 * MIB)
}

/// Run curl (in the test's namespace) with `args` and a bound on its run time; returns what
/// it wrote to stdout and how long it took.
fn curl(args: &[&str], max: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--max-time"])
        .arg(max.as_secs().to_string())
        .args(args)
        .output()
        .expect("curl");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "curl {args:?} failed after {took:.1?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.stdout, took)
}

/// The TUN tests of this file one at a time: the lossless one compares two rates, which a
/// concurrent lossy run on the other core would skew.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `http_server` as it runs: its routes on a stack on a TUN (offloads off), on a
/// multi-thread runtime. `f` runs on a kernel-side thread in the same namespace.
fn with_http_server<R: Send + 'static>(setup: fn(), f: impl FnOnce() -> R + Send + 'static) -> R {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    common::in_netns(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let tun = Tun::builder()
                .name(TUN_NAME)
                .kernel_address(IpAddr::V4(KERNEL_IP), 24)
                .mtu(1500)
                .build()
                .expect("TUN");
            setup();
            let stack = Stack::builder().address(IpAddr::V4(STACK_IP)).build(tun).unwrap();
            let listener = stack.bind(SocketAddr::from((STACK_IP, PORT))).await.unwrap();
            let server = tokio::spawn(examples::serve(stack.clone(), listener));
            let r = kernel_side(f).await;
            server.abort();
            r
        })
    })
}

/// curl POSTs 10 MiB to `/echo`, checks the answer, and returns how long it took.
fn curl_echo(name: &str, max: Duration) -> Duration {
    let sent = body();
    let path = std::env::temp_dir().join(format!("{name}_{}.bin", std::process::id()));
    std::fs::write(&path, &sent).unwrap();
    let url = format!("http://{STACK_IP}:{PORT}/echo");
    let (back, took) = curl(&["--data-binary", &format!("@{}", path.display()), &url], max);
    let _ = std::fs::remove_file(&path);
    assert_eq!(back.len(), sent.len(), "bytes echoed");
    assert!(back == sent, "the echo differs from what was sent");
    eprintln!(
        "{name}: echo 10 MiB in {took:.2?} ({:.0} Mbit/s each way)",
        mbps(10 * MIB as u64, took.as_secs_f64())
    );
    took
}

/// curl downloads 10 MiB from `/bytes/N`, checks it, and returns how long it took.
fn curl_download(name: &str, max: Duration) -> Duration {
    let url = format!("http://{STACK_IP}:{PORT}/bytes/{}", 10 * MIB);
    let (got, took) = curl(&[&url], max);
    assert_eq!(got.len(), 10 * MIB, "bytes downloaded");
    assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8), "download differs");
    eprintln!(
        "{name}: download 10 MiB in {took:.2?} ({:.0} Mbit/s)",
        mbps(10 * MIB as u64, took.as_secs_f64())
    );
    took
}

/// FL-04 on a real path: the 10 MiB echo through `http_server` with 5 % loss each way
/// completes byte-exact within 120 s (it used to crawl at kbit/s: the server's closed window
/// hid the kernel's ACKs).
#[test]
fn fl_04_curl_echo_10mib_at_5_percent_loss_each_way() {
    let name = "fl_04_curl_echo_10mib_at_5_percent_loss_each_way";
    if !common::tools_or_skip(name, &["curl", "iptables"]) {
        return;
    }
    let echo = with_http_server(common::five_percent_loss, move || {
        curl_download(name, Duration::from_secs(300));
        curl_echo(name, Duration::from_secs(300))
    });
    assert!(echo < Duration::from_secs(120), "10 MiB echo at 5 % loss took {echo:.1?}");
}

/// The middle of `times`.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// FL-04 without loss: the echo (10 MiB each way at once) runs at least half as fast as the
/// one-way download of 10 MiB, comparing the medians of five runs of each. Without offloads
/// both are bound by the CPU on a 2-vCPU machine and the echo has twice the packets to move,
/// so the ratio sits near 0.6 on an idle VM (0.4-0.67 per round): a round below the line is
/// measured again, up to three rounds.
#[test]
fn fl_04_curl_echo_10mib_without_loss_at_least_half_the_download_rate() {
    let name = "fl_04_curl_echo_10mib_without_loss_at_least_half_the_download_rate";
    if !common::tools_or_skip(name, &["curl"]) {
        return;
    }
    let rounds = with_http_server(
        || {},
        move || {
            let max = Duration::from_secs(60);
            let round = || {
                let download = median((0..5).map(|_| curl_download(name, max)).collect());
                let echo = median((0..5).map(|_| curl_echo(name, max)).collect());
                (echo, download)
            };
            // Up to three rounds, stopping at the first that meets the line.
            let mut rounds = Vec::new();
            while rounds.len() < 3 {
                let (echo, download) = round();
                rounds.push((echo, download));
                if echo <= download * 2 {
                    break;
                }
            }
            rounds
        },
    );
    let (echo, download) = *rounds.last().unwrap();
    assert!(
        echo <= download * 2,
        "echo {echo:.2?} is slower than half the download rate ({download:.2?}); rounds: {rounds:?}"
    );
}

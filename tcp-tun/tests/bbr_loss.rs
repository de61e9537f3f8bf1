//! BBR-20: a bulk transfer with BBR at both ends, the stack on a TUN and the kernel's own TCP,
//! under 1 % random loss each way, arrives byte-exact in both directions (correctness, not
//! speed; `examples/loss_bench.rs --stack-cc bbr --kernel-cc bbr` measures the speed).
//!
//! The loss is placed as `loss_bench` places it, where packets are MTU-sized, so a drop is one
//! segment and never a whole super-segment:
//! ```text
//!   host (kernel TCP, BBR) ──veth── router ── TUN ── the stack (BBR)
//! ```
//! the router's `FORWARD` chain drops what the host sends (its veth carries one packet per skb,
//! `gso_max_segs 1`), and the host's `INPUT` chain drops what the stack sends (a `tbf` on the
//! router's veth cuts the stack's super-segments to MTU size). Both rules must have dropped
//! packets. Needs root, iptables, tc and the kernel's `bbr`; without them each test prints why
//! it skipped.

#![cfg(target_os = "linux")]

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{kernel_to_stack_in, run, stack_to_kernel_in};
use tcp_tokio::{CongestionAlgorithm, Stack};
use tcp_tun::Tun;
use tcpcore::EndpointConfig;

/// The router's end of the TUN, the stack, and the kernel host.
const ROUTER_TUN: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const HOST: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
const TUN: &str = "bbrloss0";
const TOTAL: u64 = 8 << 20;

/// The two named namespaces, deleted (with their devices and rules) on drop.
struct Net {
    router: String,
    host: String,
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.router, &self.host] {
            let _ = std::process::Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

impl Net {
    /// Host and router joined by a veth pair that carries one MTU-sized packet per skb, the
    /// host on BBR (`net.ipv4.tcp_congestion_control` is per namespace), and the drops of
    /// `p` each way (the TUN itself is made by the test, in the router).
    fn new(tag: &str, p: f64) -> Net {
        let id = std::process::id();
        let net =
            Net { router: format!("tcptun-{tag}-r-{id}"), host: format!("tcptun-{tag}-h-{id}") };
        let (r, h) = (&net.router, &net.host);
        for ns in [r, h] {
            run(&["ip", "netns", "add", ns]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        run(&[
            "ip", "-n", r, "link", "add", "vr", "type", "veth", "peer", "name", "vh", "netns", h,
        ]);
        run(&["ip", "-n", r, "addr", "add", "10.78.0.1/24", "dev", "vr"]);
        run(&["ip", "-n", h, "addr", "add", "10.78.0.2/24", "dev", "vh"]);
        for (ns, dev) in [(r, "vr"), (h, "vh")] {
            run(&["ip", "-n", ns, "link", "set", dev, "mtu", "1500", "gso_max_segs", "1", "up"]);
        }
        // `gso_max_segs 1` does not cut the stack's super-segments: they leave the TUN with
        // `gso_segs` unset, which passes that check, and would reach the host whole. A token
        // bucket whose peak-rate bucket takes packets of up to ~2.5 kB segments every larger
        // GSO packet (10 Gbit/s: no bottleneck for this test).
        run(&[
            "ip",
            "netns",
            "exec",
            r,
            "tc",
            "qdisc",
            "add",
            "dev",
            "vr",
            "root",
            "tbf",
            "rate",
            "10gbit",
            "burst",
            "64kb",
            "latency",
            "2ms",
            "peakrate",
            "10100mbit",
            "mtu",
            "3000",
        ]);
        run(&["ip", "-n", h, "route", "add", "default", "via", "10.78.0.1"]);
        run(&["ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        run(&["ip", "netns", "exec", h, "sysctl", "-qw", "net.ipv4.tcp_congestion_control=bbr"]);
        let p = p.to_string();
        let random = ["-m", "statistic", "--mode", "random", "--probability", &p, "-j", "DROP"];
        let stack = STACK.to_string();
        for (ns, chain, matching) in
            [(r, "FORWARD", &["!", "-i", TUN][..]), (h, "INPUT", &["-s", &stack][..])]
        {
            let mut args = vec!["ip", "netns", "exec", ns, "iptables", "-A", chain];
            args.extend(matching);
            args.extend(random);
            run(&args);
        }
        net
    }
}

/// Whether we are root, iptables is there and the kernel has BBR; prints why not.
fn can_run(test: &str) -> bool {
    if !common::tools_or_skip(test, &["iptables", "tc"]) {
        return false;
    }
    let available = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control")
        .unwrap_or_default();
    // Linux loads tcp_bbr on first use when it is a module; ask for it once to find out.
    let _ = std::process::Command::new("modprobe").arg("tcp_bbr").output();
    let loaded = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control")
        .unwrap_or_default();
    let bbr = available.split_whitespace().chain(loaded.split_whitespace()).any(|c| c == "bbr");
    if !bbr {
        eprintln!("skipping {test}: the kernel has no bbr congestion control (tcp_bbr)");
    }
    bbr
}

/// Kernel → stack, then stack → kernel, `TOTAL` bytes each, BBR at every sender, checked byte
/// by byte at the receivers.
fn bbr_both_ways(tag: &str, offload: bool) {
    let net = Net::new(tag, 0.01);
    let host = net.host.clone();
    let tag = tag.to_owned();
    std::thread::spawn({
        let router = net.router.clone();
        move || {
            common::enter_netns(&router);
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let tun = Tun::builder()
                    .name(TUN)
                    .kernel_address(ROUTER_TUN.into(), 24)
                    .mtu(1500)
                    .offload(offload)
                    .build()
                    .expect("TUN");
                let mut config = EndpointConfig::default();
                config.conn.congestion = CongestionAlgorithm::Bbr;
                let stack =
                    Stack::builder().address(STACK.into()).config(config).build(tun).unwrap();
                let run = async {
                    kernel_to_stack(&stack, &host).await;
                    stack_to_kernel(&stack, &host).await;
                };
                tokio::time::timeout(Duration::from_secs(120), run)
                    .await
                    .unwrap_or_else(|_| panic!("{tag}: transfers timed out"));
            })
        }
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
    let (to_stack, from_stack) = (dropped(&net.router, "FORWARD"), dropped(&net.host, "INPUT"));
    eprintln!("dropped: {to_stack} packets towards the stack, {from_stack} from it");
    assert!(to_stack > 0 && from_stack > 0, "the loss rules dropped nothing");
}

/// Packets the DROP rule of `chain` in namespace `ns` dropped.
fn dropped(ns: &str, chain: &str) -> u64 {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "iptables", "-L", chain, "-v", "-n", "-x"])
        .output()
        .expect("iptables");
    let out = String::from_utf8_lossy(&out.stdout);
    let rule = out.lines().find(|l| l.contains("DROP")).expect("the DROP rule");
    rule.split_whitespace().next().and_then(|n| n.parse().ok()).expect("packet count")
}

async fn kernel_to_stack(stack: &Stack, host: &str) {
    let t = kernel_to_stack_in(Some(host), stack, (STACK, 5001).into(), TOTAL).await;
    assert_eq!(t.kernel_cc, "bbr", "the kernel sender's congestion control");
    assert_eq!(t.stack_cc, CongestionAlgorithm::Bbr, "the stack receiver's congestion control");
    eprintln!("kernel (bbr) → stack: {TOTAL} bytes byte-exact");
}

async fn stack_to_kernel(stack: &Stack, host: &str) {
    let t = stack_to_kernel_in(Some(host), stack, (HOST, 5002).into(), TOTAL).await;
    assert_eq!(t.stack_cc, CongestionAlgorithm::Bbr, "the stack sender's congestion control");
    let info = t.info;
    assert!(info.retransmits > 0, "1 % loss each way retransmitted nothing: {info:?}");
    eprintln!(
        "stack (bbr) → kernel: {TOTAL} bytes byte-exact, {} retransmits, {} RTOs",
        info.retransmits, info.timeouts
    );
}

/// BBR-20: with offloads off (one packet per `read`/`write`).
#[test]
fn bbr_20_both_ways_with_one_percent_loss_offload_off() {
    if can_run("bbr_20_both_ways_with_one_percent_loss_offload_off") {
        bbr_both_ways("bbr20off", false);
    }
}

/// BBR-20: with offloads on (GRO'd super-segments in, TSO super-segments out).
#[test]
fn bbr_20_both_ways_with_one_percent_loss_offload_on() {
    if can_run("bbr_20_both_ways_with_one_percent_loss_offload_on") {
        bbr_both_ways("bbr20on", true);
    }
}

//! Running one suite: each script in its own packetdrill process, with a real-time timeout.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// Real time one script may take (the stack runs in virtual time: passing scripts take
/// milliseconds; a hang means the stack waits for something that never comes).
const TIMEOUT: Duration = Duration::from_secs(20);

/// Scripts run at once (the CI machines have 2 cores).
const JOBS: usize = 2;

/// Local address of the stack, given to packetdrill and to the shim alike.
const LOCAL_IP: &str = "192.168.0.1";

/// Remote address of the scripts, as Google's `run_all.py` gives it.
const REMOTE_IP: &str = "192.0.2.1";

/// How one script went.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    /// Exit status 0.
    Pass,
    /// The first line packetdrill reported, and its message.
    Fail { line: Option<u32>, message: String },
}

/// A script's name relative to the suite directory, and its outcome.
pub(crate) type Result = (String, Outcome);

/// The `.pkt` files under `dir` (recursively), sorted, whose name contains `filter`.
pub(crate) fn scripts(dir: &Path, filter: Option<&str>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pkt") {
                out.push(p);
            }
        }
    }
    out.retain(|p| filter.is_none_or(|f| p.to_string_lossy().contains(f)));
    out.sort();
    out
}

/// Run every script, `JOBS` at a time.
pub(crate) fn all(
    packetdrill: &Path,
    so: &Path,
    dir: &Path,
    scripts: &[PathBuf],
    extra: &[&str],
) -> Vec<Result> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..JOBS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(script) = scripts.get(i) else { break };
                let name =
                    script.strip_prefix(dir).unwrap_or(script).to_string_lossy().into_owned();
                let outcome = one(packetdrill, so, script, extra);
                results.lock().unwrap_or_else(|e| e.into_inner()).push((name, outcome));
            });
        }
    });
    let mut r = results.into_inner().unwrap_or_else(|e| e.into_inner());
    r.sort_by(|a, b| a.0.cmp(&b.0));
    r
}

/// The sysctls the shim maps onto the stack's configuration.
const SYSCTLS: [&str; 7] = [
    "tcp_timestamps",
    "tcp_sack",
    "tcp_window_scaling",
    "tcp_slow_start_after_idle",
    "tcp_ecn",
    "tcp_fastopen",
    "tcp_fastopen_key",
];

/// The script's sysctl settings the shim understands, as `,sysctl.NAME=VALUE` pairs for
/// `--so_flags`, in the order a shell would apply them: the script's init command (its shell
/// block before any event) and the `defaults.sh` it runs; the patched packetdrill shows the
/// shim each later command at its time instead of running it (`Stack::shell_command`).
fn sysctl_flags(script: &Path) -> String {
    let dir = script.parent().unwrap_or(Path::new("."));
    let text = std::fs::read_to_string(script).unwrap_or_default();
    let mut out = String::new();
    // Only the init command, a shell block before any event: later ones reach the shim at
    // their time (the patched packetdrill shows it each command).
    let mut blocks = text.split('`');
    let before = blocks.next().unwrap_or("");
    let init = before
        .lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with("//") || l.starts_with("--") || l.starts_with("/*"));
    for block in blocks.take(usize::from(init)) {
        for word in block.split_whitespace() {
            let setting = if word.ends_with("defaults.sh") {
                read_defaults(&dir.join(word))
            } else {
                word.to_string()
            };
            for w in setting.split_whitespace() {
                // Quotes, and the backslash of a continued line.
                let w = w.trim_matches(['"', '\\']);
                let w = w.rsplit(['.', '/']).next().unwrap_or(w);
                if let Some((name, value)) = w.split_once('=') {
                    if SYSCTLS.contains(&name) {
                        out.push_str(&format!(",sysctl.{name}={value}"));
                    }
                }
            }
        }
    }
    out
}

/// A `defaults.sh`, following the links git checks out as text files holding the target's
/// relative path (`tcp/common/defaults.sh` is one, to `net/common/defaults.sh`).
fn read_defaults(path: &Path) -> String {
    let mut path = path.to_path_buf();
    for _ in 0..4 {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let target = text.trim();
        if target.lines().count() == 1 && target.ends_with("defaults.sh") {
            path = path.parent().unwrap_or(Path::new(".")).join(target);
            continue;
        }
        return text;
    }
    String::new()
}

/// The script's own `--local_ip=` and `--remote_ip=` header options: the runner gives
/// them on the command line in their place (packetdrill lets the command line win), so a
/// script written for other addresses (its cookies depend on them) still gets its own.
fn script_addrs(script: &Path) -> (String, String) {
    let text = std::fs::read_to_string(script).unwrap_or_default();
    let header = text.lines().take_while(|l| {
        l.trim().is_empty() || l.trim_start().starts_with("--") || l.trim_start().starts_with("//")
    });
    let (mut local, mut remote) = (LOCAL_IP.to_string(), REMOTE_IP.to_string());
    for l in header {
        if let Some(v) = l.trim().strip_prefix("--local_ip=") {
            local = v.trim().to_string();
        } else if let Some(v) = l.trim().strip_prefix("--remote_ip=") {
            remote = v.trim().to_string();
        }
    }
    (local, remote)
}

/// Run one script in its directory (scripts include `../common/defaults.sh` and the like),
/// with the flags Google's `run_all.py` gives every IPv4 run plus the suite's `extra`.
fn one(packetdrill: &Path, so: &Path, script: &Path, extra: &[&str]) -> Outcome {
    let mut cmd = Command::new(packetdrill);
    let (local, remote) = script_addrs(script);
    cmd.arg(format!("--so_filename={}", so.display()))
        .arg(format!("--so_flags=local_ip={local}{}", sysctl_flags(script)))
        .args(["--send_omit_free", "--ip_version=ipv4"])
        .arg(format!("--local_ip={local}"))
        .args(["--gateway_ip=192.168.0.1", "--netmask_ip=255.255.0.0"])
        .arg(format!("--remote_ip={remote}"))
        .args(["-D", "TFO_COOKIE=3021b9d889017eeb", "-D", "CODE=host_unreachable"])
        .args(["-D", "CMSG_LEVEL_IP=SOL_IP", "-D", "CMSG_TYPE_RECVERR=IP_RECVERR"])
        .args(extra)
        .arg(script.file_name().unwrap_or_default())
        .current_dir(script.parent().unwrap_or(Path::new(".")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Fail { line: None, message: format!("spawn: {e}") },
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                let message = format!("timeout after {} s (real time)", TIMEOUT.as_secs());
                return Outcome::Fail { line: None, message };
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Outcome::Fail { line: None, message: format!("wait: {e}") },
        }
    }
    let Ok(out) = child.wait_with_output() else {
        return Outcome::Fail { line: None, message: "no output".into() };
    };
    if out.status.success() {
        return Outcome::Pass;
    }
    let text = String::from_utf8_lossy(&out.stderr);
    first_error(&text).unwrap_or_else(|| {
        let message = text.lines().next().unwrap_or("").to_string();
        let message = if message.is_empty() { format!("exit {}", out.status) } else { message };
        Outcome::Fail { line: None, message }
    })
}

/// packetdrill's first `script.pkt:LINE: message` line.
fn first_error(stderr: &str) -> Option<Outcome> {
    stderr.lines().find_map(|l| {
        let (_, rest) = l.split_once(".pkt:")?;
        let (line, msg) = rest.split_once(':')?;
        let line = line.trim().parse().ok()?;
        Some(Outcome::Fail { line: Some(line), message: msg.trim().to_string() })
    })
}

//! Runs packetdrill suites against tcpcore through the conformance shim.
//!
//! `cargo run --release -p conformance -- [--check] SUITE [FILTER]` with SUITE `google`
//! (`../shared/packetdrill/gtests/net/tcp/`) or `gvisor`
//! (`../shared/packetdrill-gvisor/test/packetdrill/`). `../shared` is the folder beside the
//! repository; `CONFORMANCE_SHARED` overrides it. Writes `conformance/results/SUITE.md`
//! (unfiltered runs only) and ends with `conformance SUITE: P passed, F failed, S skipped of T`.
//! `--check` fails when a script of `conformance/expected-pass/SUITE.txt` fails.

mod build;
mod run;
mod table;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const CRATE_DIR: &str = env!("CARGO_MANIFEST_DIR");

fn usage() -> ExitCode {
    eprintln!("usage: conformance [--check] google|gvisor [FILTER]");
    ExitCode::from(2)
}

/// The folder holding packetdrill and the suites.
fn shared_dir() -> PathBuf {
    std::env::var_os("CONFORMANCE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(CRATE_DIR).join("../../shared"))
}

/// The cargo target directory: this binary lives in `target/<profile>/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_else(|| "target".into())
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().position(|a| a == "--check").map(|i| args.remove(i)).is_some();
    let (Some(suite), filter) = (args.first().cloned(), args.get(1).cloned()) else {
        return usage();
    };
    let shared = shared_dir();
    // gVisor's packetdrill_test.sh runs its scripts with a 100 ms tolerance.
    let (dir, extra): (_, &[&str]) = match suite.as_str() {
        "google" => (shared.join("packetdrill/gtests/net/tcp"), &[]),
        "gvisor" => {
            (shared.join("packetdrill-gvisor/test/packetdrill"), &["--tolerance_usecs=100000"])
        }
        _ => return usage(),
    };
    let under_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if let Some(why) = build::missing_tools() {
        if under_ci {
            eprintln!("conformance: cannot build packetdrill: {why}");
            return ExitCode::FAILURE;
        }
        println!("conformance {suite}: skipped: cannot build packetdrill: {why}");
        return ExitCode::SUCCESS;
    }
    let target = target_dir();
    let so = target.join(format!("{}/libconformance.so", profile(&target)));
    let packetdrill = match build::packetdrill(&shared, &target) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("conformance: {e}");
            return ExitCode::FAILURE;
        }
    };
    let scripts = run::scripts(&dir, filter.as_deref());
    let results = run::all(&packetdrill, &so, &dir, &scripts, extra);
    report(&suite, &results, filter.is_none(), check)
}

/// The profile directory this binary was built in (`release` or `debug`).
fn profile(target: &Path) -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .and_then(|p| p.strip_prefix(target).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "release".into())
}

/// Print and write the table, check the ratchet, print the summary line.
fn report(suite: &str, results: &[run::Result], write: bool, check: bool) -> ExitCode {
    let crate_dir = Path::new(CRATE_DIR);
    let classes =
        std::fs::read_to_string(crate_dir.join(format!("classes/{suite}.tsv"))).unwrap_or_default();
    let md = table::markdown(suite, results, &table::classes(&classes));
    if write {
        let path = crate_dir.join(format!("results/{suite}.md"));
        if let Err(e) = std::fs::write(&path, &md) {
            eprintln!("conformance: write {}: {e}", path.display());
        }
    }
    for (name, outcome) in results {
        match outcome {
            run::Outcome::Pass => println!("pass {name}"),
            run::Outcome::Fail { line, message } => {
                println!("FAIL {name}:{} {message}", line.map_or(String::new(), |l| l.to_string()))
            }
        }
    }
    let mut ok = true;
    if check {
        let expected =
            std::fs::read_to_string(crate_dir.join(format!("expected-pass/{suite}.txt")))
                .unwrap_or_default();
        for want in expected.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let passed = results.iter().any(|(n, o)| n == want && matches!(o, run::Outcome::Pass));
            if !passed {
                eprintln!("conformance: expected pass regressed: {suite}/{want}");
                ok = false;
            }
        }
    }
    let passed = results.iter().filter(|r| matches!(r.1, run::Outcome::Pass)).count();
    println!(
        "conformance {suite}: {passed} passed, {} failed, 0 skipped of {}",
        results.len() - passed,
        results.len()
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

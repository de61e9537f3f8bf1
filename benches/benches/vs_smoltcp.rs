//! tcpcore against smoltcp, sans-IO, in the same process: two endpoints of each engine over
//! the same in-memory packet link, driven the same way (see `benches::sans_io`). Criterion
//! measures each case for both engines; then a summary runs five interleaved rounds of every
//! case (tcpcore and smoltcp alternately, alternating which goes first) and prints the
//! medians and the ratio tcpcore/smoltcp.
//!
//! `cargo bench -p benches --bench vs_smoltcp` (a few minutes). A criterion filter (e.g.
//! `-- bulk_1500`) also limits the summary. `VS_SMOLTCP_ROUNDS=N` changes the rounds.
//! For profiling, `VS_SMOLTCP_PROFILE=tcpcore/bulk_1500_csum` runs only that engine and case
//! for the summary's rounds of work (or `VS_SMOLTCP_UNITS` units: bytes, connections or
//! round trips), without criterion: deterministic work for `perf record` or for counting
//! instructions (`valgrind --tool=callgrind` where the CPU has no counters).

use std::time::{Duration, Instant};

use benches::sans_io::smoltcp_pair::SmoltcpPair;
use benches::sans_io::tcpcore_pair::TcpcorePair;
use benches::sans_io::{Case, Pair, Work};
use criterion::{BenchmarkId, Criterion, Throughput};

/// Units of work per criterion iteration.
fn iter_units(case: Case) -> u64 {
    match case.work {
        Work::Bulk => 1 << 20,
        Work::Echo | Work::RequestResponse => 1,
    }
}

fn bench_case<P: Pair>(c: &mut Criterion, case: Case) {
    let mut g = c.benchmark_group(format!("vs_smoltcp/{}", case.name()));
    let units = iter_units(case);
    g.throughput(match case.work {
        Work::Bulk => Throughput::Bytes(units),
        Work::Echo | Work::RequestResponse => Throughput::Elements(units),
    });
    g.bench_function(BenchmarkId::from_parameter(P::NAME), |b| {
        let mut pair = P::new(case);
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                pair.run(units);
            }
            t.elapsed()
        });
    });
    g.finish();
}

/// Seconds for one round of `case` on a fresh pair (setup not timed).
fn round<P: Pair>(case: Case, units: u64) -> f64 {
    let mut pair = P::new(case);
    let t = Instant::now();
    pair.run(units);
    t.elapsed().as_secs_f64()
}

/// Like [`round`], also returning the packets the round's work carried (setup excluded).
fn profile_round<P: Pair>(case: Case, units: u64) -> (f64, u64) {
    let mut pair = P::new(case);
    let before = pair.packets();
    let t = Instant::now();
    pair.run(units);
    (t.elapsed().as_secs_f64(), pair.packets() - before)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn summary(cases: &[Case], rounds: usize) {
    println!("\ntcpcore vs smoltcp 0.12, sans-IO, {rounds} interleaved rounds, medians:");
    println!("{:<32} {:>12} {:>12} {:>8}", "case", "tcpcore", "smoltcp", "ratio");
    for &case in cases {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let units = case.round_units();
        for r in 0..rounds {
            if r % 2 == 0 {
                ours.push(round::<TcpcorePair>(case, units));
                theirs.push(round::<SmoltcpPair>(case, units));
            } else {
                theirs.push(round::<SmoltcpPair>(case, units));
                ours.push(round::<TcpcorePair>(case, units));
            }
        }
        let (a, b) = (case.rate(units, median(ours)), case.rate(units, median(theirs)));
        println!(
            "{:<32} {:>12} {:>12} {:>7.2}x",
            case.name(),
            format!("{a:.2} {}", case.unit()),
            format!("{b:.2}"),
            a / b
        );
    }
}

/// The criterion filter, if any: the first argument that is not an option.
fn filter() -> Option<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let with_value = ["--warm-up-time", "--measurement-time", "--sample-size", "--save-baseline"];
    let mut i = 0;
    while i < args.len() {
        if with_value.contains(&args[i].as_str()) {
            i += 2;
            continue;
        }
        if !args[i].starts_with('-') {
            return Some(args[i].clone());
        }
        i += 1;
    }
    None
}

fn main() {
    let rounds = std::env::var("VS_SMOLTCP_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    if let Ok(spec) = std::env::var("VS_SMOLTCP_PROFILE") {
        let (stack, name) = spec.split_once('/').expect("VS_SMOLTCP_PROFILE=STACK/CASE");
        let case = Case::all().into_iter().find(|c| c.name() == name).expect("no such case");
        let units = std::env::var("VS_SMOLTCP_UNITS").ok().and_then(|u| u.parse().ok());
        let units = units.unwrap_or(case.round_units());
        let (secs, packets) = (0..rounds)
            .map(|_| match stack {
                "smoltcp" => profile_round::<SmoltcpPair>(case, units),
                _ => profile_round::<TcpcorePair>(case, units),
            })
            .fold((0.0, 0), |(s, p), (s1, p1)| (s + s1, p + p1));
        let rate = case.rate(units * rounds as u64, secs);
        let per_unit = packets as f64 / (units * rounds as u64) as f64;
        let (per, what) = match case.work {
            Work::Bulk => (per_unit * f64::from(1 << 20), "MiB"),
            Work::Echo => (per_unit, "connection"),
            Work::RequestResponse => (per_unit, "round trip"),
        };
        println!("{stack}/{name}: {rate:.2} {}, {per:.2} packets per {what}", case.unit());
        return;
    }
    let filter = filter();
    let cases: Vec<Case> = Case::all()
        .into_iter()
        .filter(|c| {
            filter.as_deref().is_none_or(|f| format!("vs_smoltcp/{}", c.name()).contains(f))
        })
        .collect();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .configure_from_args();
    for &case in &cases {
        bench_case::<TcpcorePair>(&mut c, case);
        bench_case::<SmoltcpPair>(&mut c, case);
    }
    c.final_summary();
    if !cases.is_empty() {
        summary(&cases, rounds);
    }
}

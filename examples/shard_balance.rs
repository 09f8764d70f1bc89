//! Imbalance of a 4-way split of 40 tests with skewed durations: clnrm's split (longest
//! processing time first, from recorded durations) against a plain modulo split and the
//! hash split clnrm falls back to without a baseline. Imbalance = slowest shard / mean shard
//! (1.00 is perfect); the job matrix waits for the slowest shard.
//!
//! `cargo run --example shard_balance [SEEDS]` (default 1000 random suites)

use clnrm::perf::sim::Rng;
use clnrm::plan::assign_shards;

const TESTS: usize = 40;
const SHARDS: u32 = 4;

fn imbalance(durations: &[f64], assignment: &[u32]) -> f64 {
    let mut load = vec![0.0; SHARDS as usize];
    for (d, s) in durations.iter().zip(assignment) {
        load[*s as usize] += d;
    }
    let mean = load.iter().sum::<f64>() / f64::from(SHARDS);
    load.iter().copied().fold(0.0, f64::max) / mean
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let seeds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let (mut lpt, mut modulo, mut hashed) = (Vec::new(), Vec::new(), Vec::new());
    for seed in 0..seeds {
        let mut rng = Rng::new(seed);
        // Skewed: log-normal durations (sigma 1.2), a few tests dominate, as in real suites.
        let durations: Vec<f64> = (0..TESTS)
            .map(|_| 1000.0 * (1.2 * rng.normal()).exp())
            .collect();
        let named: Vec<(String, Option<f64>)> = durations
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("tests/t{i:02}.clnrm.toml"), Some(*d)))
            .collect();
        let unnamed: Vec<(String, Option<f64>)> =
            named.iter().map(|(n, _)| (n.clone(), None)).collect();
        let by_index: Vec<u32> = (0..TESTS as u32).map(|i| i % SHARDS).collect();
        lpt.push(imbalance(&durations, &assign_shards(&named, SHARDS)));
        modulo.push(imbalance(&durations, &by_index));
        hashed.push(imbalance(&durations, &assign_shards(&unnamed, SHARDS)));
    }
    println!(
        "{TESTS} tests, {SHARDS} shards, {seeds} random skewed suites (log-normal, sigma 1.2)\n"
    );
    println!("| split | median max/mean | p95 max/mean |");
    println!("|---|---:|---:|");
    for (name, v) in [
        ("clnrm, by recorded durations (LPT)", lpt),
        ("plain modulo (index % 4)", modulo),
        ("clnrm without a baseline (stable hash)", hashed),
    ] {
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        let p95 = sorted[(sorted.len() * 95 / 100).min(sorted.len() - 1)];
        println!("| {name} | {:.3} | {:.3} |", median(v), p95);
    }
}

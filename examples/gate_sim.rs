//! Simulation of the perf gate on noisy shared runners; prints a markdown table.
//!
//! `cargo run --release --example gate_sim [PRS] [SEED]` (defaults: 2000 PRs per cell, seed 42).
//! See `clnrm::perf::sim` for the model.

use clnrm::perf::sim::{markdown_table, simulate, SimConfig};
use clnrm::perf::GateConfig;

fn main() {
    let mut args = std::env::args().skip(1);
    let prs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(42);
    let gate = GateConfig::default();
    let mut cells = Vec::new();
    for (i, s) in [0.02, 0.03, 0.05].into_iter().enumerate() {
        for (j, slowdown) in [0.0, 0.10, 0.15, 0.20, 0.50].into_iter().enumerate() {
            let cfg = SimConfig {
                scenario_noise: s,
                slowdown,
                prs,
                seed: seed.wrapping_add((i * 10 + j) as u64 * 0x1000_0001),
                ..SimConfig::default()
            };
            let r = simulate(&cfg, &gate);
            eprintln!("s = {s}, slowdown = {slowdown}: {r:?}");
            cells.push((cfg, r));
        }
    }
    let c = SimConfig::default();
    println!(
        "{} scenarios, history {}, runner noise {:.0} % (lognormal), outliers {:.0} % x{}, {} re-measurements of flagged scenarios, seed {seed}\n",
        c.scenarios, c.history, c.runner_noise * 100.0, c.outlier_prob * 100.0, c.outlier_factor, c.remeasure
    );
    print!("{}", markdown_table(&cells));
}

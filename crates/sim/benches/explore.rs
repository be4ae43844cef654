//! Explorer speed on the seed's scenario (a bench binary, not criterion: the figures are
//! throughput and medians over seeds, printed as a table). Thread CPU time (bench-clock), so
//! other jobs on the shared cores do not count.
//!
//! `cargo bench -p sim --bench explore` (`BENCH_RUNS=N` for N runs per row instead of 1000)
//!
//! * schedules per CPU-second on the LS1028A board (the built-in KBox A-230-LS) for each trigger
//!   (reboot, kexec, unbind) and kernel (linux-6.1, linux-6.2, quiesce), random strategy; and
//!   for reboot, PCT too;
//! * runs and seconds to the first linux-6.1 failure per strategy, median over 20 seeds.

use explore::{ExploreOptions, Strategy};
use sim::scenario::{KernelBehaviour, Property, RebootConfig, RebootScenario, Trigger};
use std::sync::Arc;

/// The allocator the smmu-lab command line runs the explorer with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn scenario(kernel: KernelBehaviour, trigger: Trigger) -> Arc<RebootScenario> {
    let mut config = RebootConfig::new(kernel, sim::kbox_a230_ls());
    config.trigger = trigger;
    Arc::new(RebootScenario {
        config,
        properties: Property::DEFAULT.to_vec(),
        boot_cache: Default::default(),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run a tiny version.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runs = if quick {
        20
    } else {
        std::env::var("BENCH_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000)
    };
    println!("schedules per CPU-second, LS1028A (KBox A-230-LS), one core ({runs} runs each, keep going):");
    let mut rows = Vec::new();
    for trigger in Trigger::ALL {
        for kernel in KernelBehaviour::ALL {
            rows.push((trigger, kernel, Strategy::Random));
        }
    }
    for kernel in KernelBehaviour::ALL {
        rows.push((Trigger::Reboot, kernel, Strategy::Pct { depth: 3 }));
    }
    for (trigger, kernel, strategy) in rows {
        let t = bench_clock::Timer::start();
        let rep = explore::explore(
            scenario(kernel, trigger),
            ExploreOptions {
                strategy,
                runs,
                seed: 1,
                jobs: 1,
                stop_at_first: false,
                max_steps: 2_000_000,
            },
            &|_, _| {},
        );
        let secs = t.elapsed().as_secs_f64();
        println!(
            "  {:<7} {:<10} {:<7} {:>8.0} schedules/s  ({} runs, {} failing)",
            trigger.name(),
            kernel.name(),
            strategy.name(),
            rep.runs as f64 / secs,
            rep.runs,
            rep.failing_runs
        );
    }
    let seeds = if quick { 3 } else { 20 };
    println!("first linux-6.1 failure (reboot), median over {seeds} seeds:");
    for strategy in [
        Strategy::Random,
        Strategy::Pct { depth: 3 },
        Strategy::Dfs {
            preemption_bound: 2,
        },
    ] {
        let mut runs_to = Vec::new();
        let mut secs_to = Vec::new();
        // DFS is deterministic: one search, not one per seed.
        let n = if matches!(strategy, Strategy::Dfs { .. }) {
            1
        } else {
            seeds
        };
        for seed in 0..n {
            let t = bench_clock::Timer::start();
            let rep = explore::explore(
                scenario(KernelBehaviour::Linux61, Trigger::Reboot),
                ExploreOptions {
                    strategy,
                    runs: 100_000,
                    seed,
                    jobs: 1,
                    stop_at_first: true,
                    max_steps: 2_000_000,
                },
                &|_, _| {},
            );
            secs_to.push(t.elapsed().as_secs_f64());
            runs_to.push(rep.first_failure.map(|f| f.index + 1).unwrap_or(rep.runs) as f64);
        }
        println!(
            "  {:<7} {:>6.1} runs  {:>9.4} s",
            strategy.name(),
            median(runs_to),
            median(secs_to)
        );
    }
}

//! `smmu-lab bisect FILE.toml --property P [--from V] [--to V]`: walk the kernel history from
//! one kernel to another, one named fix at a time in history order, explore the file on each
//! kernel, and report the last kernel on which the property fails (with a replay token) and
//! the first fix after which it holds in every explored schedule.

use crate::common::shell_quote;
use crate::file_model;
use crate::sim::scenario::ScheduleRef;
use crate::Outcome;
use explore::Strategy;
use kernel_history::{Fix, Kernel};
use scenario_file::Budget;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario file.
    #[arg(value_name = "FILE.toml")]
    file: PathBuf,
    /// The property to bisect on.
    #[arg(long)]
    property: String,
    /// First kernel of the walk (default: the file's).
    #[arg(long, value_name = "SPEC")]
    from: Option<String>,
    /// Last kernel of the walk (default: current).
    #[arg(long, value_name = "SPEC")]
    to: Option<String>,
    /// Search on each kernel: dfs (default), pct or random.
    #[arg(long, default_value = "dfs")]
    strategy: String,
    /// Run budget on each kernel.
    #[arg(long, default_value_t = 10_000)]
    runs: u64,
    /// DFS preemption bound (default 2) or PCT depth (default 3).
    #[arg(long)]
    depth: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads for random and pct (results do not depend on it).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
}

fn parse(spec: &str) -> Result<Kernel, String> {
    Kernel::parse(spec).map_err(|e| e.to_string())
}

/// The kernels of the walk: `from`, then one fix added (or removed) at a time, in history
/// order, until `to`; each with the fix that made it.
pub fn history(from: &Kernel, to: &Kernel) -> Vec<(Option<Fix>, Kernel)> {
    let mut walk = vec![(None, from.clone())];
    let mut k = from.clone();
    for fix in Fix::ALL {
        let next = match (from.contains(fix), to.contains(fix)) {
            (false, true) => k.with_fix(fix),
            (true, false) => k.without_fix(fix),
            _ => continue,
        };
        k = next;
        walk.push((Some(fix), k.clone()));
    }
    walk
}

pub fn run(args: &Args, json: bool) -> Result<Outcome, String> {
    if json {
        return Err("--json is not available for bisect yet".into());
    }
    crate::common::check_runs(args.runs, args.strategy == "dfs")?;
    let strategy = match args.strategy.as_str() {
        "dfs" => Strategy::Dfs {
            preemption_bound: args.depth.unwrap_or(2),
        },
        "pct" => Strategy::Pct {
            depth: args.depth.unwrap_or(3).max(1),
        },
        "random" => Strategy::Random,
        s => return Err(format!("unknown strategy '{s}': choose dfs, pct or random")),
    };
    let budget = Budget {
        strategy,
        runs: args.runs,
        seed: args.seed,
    };
    let base = file_model::load(&args.file, None)?;
    let from = match &args.from {
        Some(s) => parse(s)?,
        None => base.kernel.clone(),
    };
    let to = parse(args.to.as_deref().unwrap_or("current"))?;
    // Every kernel of the walk is prepared before any search starts; a kernel the model that
    // runs this file has no code path for is reported and skipped.
    let mut steps = Vec::new();
    let mut skipped = Vec::new();
    for (fix, k) in history(&from, &to) {
        match base.with_kernel(&k) {
            Ok(mut l) => {
                l.restrict(&args.property)?;
                steps.push((fix, l));
            }
            Err(why) => skipped.push((fix, k, why)),
        }
    }
    if steps.is_empty() {
        return Err(format!(
            "no kernel from {from} to {to} can run {}",
            args.file.display()
        ));
    }
    outln!(
        "bisect {} on {}: {} kernels from {from} to {to}, each searched by {}",
        shell_quote(&args.file.display().to_string()),
        args.property,
        steps.len(),
        crate::check_cmd::budget_text(&budget)
    );
    for (fix, k, why) in &skipped {
        let change = fix.map(|x| format!(" (+{x})")).unwrap_or_default();
        outln!("  {k}{change}: skipped, cannot run: {why}");
    }
    let mut results = Vec::new();
    for (fix, l) in &steps {
        let f = file_model::explore_file(l, budget, args.jobs, true, &|_, _| {});
        let change = fix
            .map(|x| format!("+{x} \"{}\"", x.subject()))
            .unwrap_or_else(|| "(start)".into());
        let verdict = match &f.first {
            Some((run, _, s)) => format!(
                "fails (run {run}): {}",
                l.token(ScheduleRef::Sparse(s.clone()))
            ),
            None => format!(
                "holds ({} runs{})",
                f.runs,
                if f.exhausted { ", exhaustive" } else { "" }
            ),
        };
        outln!("  {:<40} {change}", l.kernel.to_string());
        outln!("  {:<40}   {verdict}", "");
        results.push(f.first.is_some());
    }
    let Some(last_fail) = results.iter().rposition(|f| *f) else {
        outln!("{} holds on every kernel of the walk", args.property);
        return Ok(Outcome::Clean);
    };
    let (_, lf) = &steps[last_fail];
    outln!("last kernel where {} fails: {}", args.property, lf.kernel);
    match steps.get(last_fail + 1) {
        Some((Some(fix), l)) => {
            outln!(
                "first fix after which it holds: {fix} \"{}\" ({}; every explored schedule: {})",
                fix.subject(),
                l.kernel,
                crate::check_cmd::budget_text(&budget)
            );
            Ok(Outcome::Clean)
        }
        _ => {
            outln!("it still fails on {to}: no fix of the walk makes it hold");
            Ok(Outcome::Violated)
        }
    }
}

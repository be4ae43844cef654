//! `smmu-lab bisect FILE.toml --property P [--from V] [--to V]`: walk the kernel history from
//! one kernel to another, one named fix at a time in history order, explore the file on each
//! kernel, and report the last kernel on which the property fails (with a replay token) and
//! the first fix after which it holds in every explored schedule.

use crate::common::shell_quote;
use crate::file_model;
use crate::json_out::{Bisect, BisectKernel, FixRef, SkippedKernel};
use crate::sim::scenario::ScheduleRef;
use crate::CommandOutcome;
use explore::Strategy;
use kernel_history::{Fix, KernelSpec};
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
    /// Seed of the pct and random searches (a dfs draws nothing from it).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads for random and pct (results do not depend on it).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
}

fn parse(spec: &str) -> Result<KernelSpec, String> {
    KernelSpec::parse(spec).map_err(|e| e.to_string())
}

/// The kernels of the walk: `from`, then one fix added (or removed) at a time, in history
/// order, until `to`; each with the fix that made it.
pub fn history(from: &KernelSpec, to: &KernelSpec) -> Vec<(Option<Fix>, KernelSpec)> {
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

pub fn run(args: &Args, json: bool) -> Result<CommandOutcome, String> {
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
    let search = crate::check_cmd::budget_text(&budget);
    let mut kernels = Vec::new();
    for (fix, l) in &steps {
        let f = file_model::explore_file(l, budget, args.jobs, true, &|_, _| {});
        kernels.push(BisectKernel {
            kernel: l.kernel.to_string(),
            fix: fix.map(FixRef::from),
            fails: f.first.is_some(),
            run: f.first.as_ref().map(|x| x.0),
            token: f
                .first
                .as_ref()
                .map(|(_, _, s)| l.token(ScheduleRef::Sparse(s.clone())).to_string()),
            runs: f.runs,
            exhaustive: f.exhausted,
        });
    }
    let last_fail = kernels.iter().rposition(|k| k.fails);
    let first_fix = last_fail
        .and_then(|i| steps.get(i + 1))
        .and_then(|(fix, _)| *fix);
    let out = Bisect {
        schema: "smmu-lab/bisect/v1",
        file: args.file.display().to_string(),
        property: args.property.clone(),
        from: from.to_string(),
        to: to.to_string(),
        search,
        skipped: skipped
            .iter()
            .map(|(fix, k, why)| SkippedKernel {
                kernel: k.to_string(),
                fix: fix.map(FixRef::from),
                why: why.clone(),
            })
            .collect(),
        last_failing: last_fail.map(|i| kernels[i].kernel.clone()),
        first_fix: first_fix.map(FixRef::from),
        kernels,
    };
    if json {
        crate::json_out::print(&out)?;
    } else {
        text(args, &out);
    }
    Ok(match (&out.last_failing, &out.first_fix) {
        (Some(_), None) => CommandOutcome::Violated,
        _ => CommandOutcome::Clean,
    })
}

/// The bisection as text.
fn text(args: &Args, b: &Bisect) {
    outln!(
        "bisect {} on {}: {} kernels from {} to {}, each searched by {}",
        shell_quote(&args.file.display().to_string()),
        b.property,
        b.kernels.len(),
        b.from,
        b.to,
        b.search
    );
    for k in &b.skipped {
        let change = k
            .fix
            .as_ref()
            .map(|x| format!(" (+{})", x.id))
            .unwrap_or_default();
        outln!("  {}{change}: skipped, cannot run: {}", k.kernel, k.why);
    }
    for k in &b.kernels {
        let change = k
            .fix
            .as_ref()
            .map(|x| format!("+{} \"{}\"", x.id, x.subject))
            .unwrap_or_else(|| "(start)".into());
        let verdict = match (&k.run, &k.token) {
            (Some(run), Some(token)) => format!("fails (run {run}): {token}"),
            _ => format!(
                "holds ({} runs{})",
                k.runs,
                if k.exhaustive { ", exhaustive" } else { "" }
            ),
        };
        outln!("  {:<40} {change}", k.kernel);
        outln!("  {:<40}   {verdict}", "");
    }
    let Some(last) = &b.last_failing else {
        outln!("{} holds on every kernel of the walk", b.property);
        return;
    };
    outln!("last kernel where {} fails: {last}", b.property);
    match &b.first_fix {
        Some(fix) => {
            let after = b
                .kernels
                .iter()
                .skip_while(|k| &k.kernel != last)
                .nth(1)
                .map(|k| k.kernel.clone())
                .unwrap_or_default();
            outln!(
                "first fix after which it holds: {} \"{}\" ({after}; every explored schedule: {})",
                fix.id,
                fix.subject,
                b.search
            );
        }
        None => outln!(
            "it still fails on {}: no fix of the walk makes it hold",
            b.to
        ),
    }
}

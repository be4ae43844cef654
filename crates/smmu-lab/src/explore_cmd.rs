//! `smmu-lab explore SCENARIO --kernel K|all --strategy pct|random|dfs --runs N`.

use crate::common::{self, MachineArgs};
use crate::replay_cmd::ReplayFile;
use crate::sim::scenario::{KernelBehaviour, Property, ReplayToken, ScheduleRef, Trigger};
use crate::Outcome;
use explore::{ExploreOptions, RunResult, Strategy};
use std::io::IsTerminal;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StrategyName {
    /// Probabilistic concurrency testing (few, well-placed preemptions).
    Pct,
    /// A uniformly random choice at every scheduling point.
    Random,
    /// Every interleaving with at most --depth preemptions, depth first.
    Dfs,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// reboot, kexec or unbind.
    #[arg(value_parser = common::parse_trigger, default_value = "reboot")]
    scenario: Trigger,
    /// linux-6.1, linux-6.2, quiesce, a kernel spec one of them runs (v6.1+ce31e6ca68bd), or all
    /// (a summary across the three).
    #[arg(long, default_value = "linux-6.1")]
    kernel: String,
    #[arg(long, value_enum, default_value = "pct")]
    strategy: StrategyName,
    /// Run budget per kernel.
    #[arg(long, default_value_t = 1000)]
    runs: u64,
    /// PCT: priority change points (bug depth); DFS: preemption bound.
    #[arg(long)]
    depth: Option<usize>,
    /// Worker threads (random and PCT: independent streams; DFS: one search split between them).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Properties checked (repeatable): no-oops, no-stray-dma, no-foreign-dma, no-lost-write,
    /// no-fault. Default: all but no-fault.
    #[arg(long = "property", value_parser = common::parse_property)]
    properties: Vec<Property>,
    /// Keep going after the first failure (count all failures in the budget).
    #[arg(long)]
    keep_going: bool,
    /// Where to write the replay file of a failure (default smmu-lab-replay-KERNEL.json).
    #[arg(long, value_name = "FILE")]
    replay_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    machine: MachineArgs,
}

/// The result for one kernel behaviour.
#[derive(Debug, serde::Serialize)]
struct KernelSummary {
    kernel: String,
    strategy: String,
    runs: u64,
    failing_runs: u64,
    failures: std::collections::BTreeMap<String, u64>,
    exhausted: bool,
    first_failure: Option<FailureSummary>,
}

#[derive(Debug, serde::Serialize)]
struct FailureSummary {
    run: u64,
    violations: Vec<String>,
    decisions: usize,
    preemptions: usize,
    deviations_before_minimising: usize,
    token: String,
    replay: String,
    replay_file: String,
    verdict: Option<crate::sim::scenario::Verdict>,
}

pub fn run(args: &Args, json: bool) -> Result<Outcome, String> {
    let kernels: Vec<KernelBehaviour> = if args.kernel == "all" {
        KernelBehaviour::ALL.to_vec()
    } else {
        vec![common::parse_kernel(&args.kernel)?]
    };
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let strategy = match args.strategy {
        StrategyName::Pct => Strategy::Pct {
            depth: args.depth.unwrap_or(3),
        },
        StrategyName::Random => Strategy::Random,
        StrategyName::Dfs => Strategy::Dfs {
            preemption_bound: args.depth.unwrap_or(2),
        },
    };
    // Validate the machine once, before any run.
    args.machine.board()?;
    args.machine.params()?;
    let mut summaries = Vec::new();
    for kernel in kernels.iter().copied() {
        let cfg = args.machine.config(args.scenario, kernel)?;
        let scn = Arc::new(common::scenario(cfg, &args.properties));
        let bar = progress_bar(args.runs, kernel);
        let report = explore::explore(
            scn.clone(),
            ExploreOptions {
                strategy,
                runs: args.runs,
                seed: args.seed,
                jobs: args.jobs,
                stop_at_first: !args.keep_going,
                max_steps: crate::run_cmd::MAX_STEPS,
            },
            &|done, failing| {
                bar.set_position(done);
                bar.set_message(format!("{failing} failing"));
            },
        );
        bar.finish_and_clear();
        let mut first = None;
        if let Some(f) = &report.first_failure {
            let property = f.violations.first().cloned().unwrap_or_default();
            let (schedule, rec) = explore::minimise(
                scn.clone(),
                &f.schedule,
                &property,
                crate::run_cmd::MAX_STEPS,
            );
            let token = ReplayToken {
                trigger: args.scenario,
                kernel,
                schedule: ScheduleRef::Sparse(schedule),
            };
            let path = match (&args.replay_file, kernels.len()) {
                (Some(p), 1) => p.clone(),
                (Some(p), _) => p.with_file_name(format!(
                    "{}-{}.json",
                    p.file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or("smmu-lab-replay"),
                    kernel.name()
                )),
                (None, _) => format!("smmu-lab-replay-{}.json", kernel.name()).into(),
            };
            let file = ReplayFile {
                schema: crate::replay_cmd::REPLAY_SCHEMA.into(),
                token: token.to_string(),
                dtb: args.machine.dtb.clone(),
                cmdline: args.machine.cmdline.clone(),
                no_timestamps: args.machine.no_timestamps,
                flood: args.machine.flood,
                actor_steps: args.machine.actor_steps,
                traffic: args.machine.traffic.clone(),
                properties: scn
                    .properties
                    .iter()
                    .map(|p| p.name().to_string())
                    .collect(),
            };
            let text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
            std::fs::write(&path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
            let verdict = rec.as_ref().and_then(|r| match &r.outcome {
                RunResult::Completed(Ok(o)) => Some(o.verdict.clone()),
                _ => None,
            });
            first = Some(FailureSummary {
                run: f.index,
                violations: f.violations.clone(),
                decisions: rec.as_ref().map(|r| r.steps).unwrap_or(f.steps),
                preemptions: rec.as_ref().map(|r| r.preemptions).unwrap_or(f.preemptions),
                deviations_before_minimising: f.schedule.deviations.len(),
                replay: format!("smmu-lab replay {token}{}", args.machine.replay_suffix()),
                token: token.to_string(),
                replay_file: path.display().to_string(),
                verdict,
            });
        }
        summaries.push(KernelSummary {
            kernel: kernel.name().into(),
            strategy: strategy.name().into(),
            runs: report.runs,
            failing_runs: report.failing_runs,
            failures: report.failures.clone(),
            exhausted: report.exhausted,
            first_failure: first,
        });
    }
    let any_failure = summaries.iter().any(|s| s.failing_runs > 0);
    if json {
        common::print_json(&serde_json::json!({
            "schema": "smmu-lab/explore/v1",
            "scenario": args.scenario.name(),
            "seed": args.seed,
            "kernels": summaries,
        }))?;
    } else {
        for s in &summaries {
            print_summary(s);
        }
        if summaries.len() > 1 {
            print_table(&summaries);
        }
    }
    Ok(if any_failure {
        Outcome::Violated
    } else {
        Outcome::Clean
    })
}

fn progress_bar(runs: u64, kernel: KernelBehaviour) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(runs);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix:>10} [{bar:40}] {pos}/{len} runs, {msg} ({per_sec})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(kernel.name());
    bar
}

fn print_summary(s: &KernelSummary) {
    let outcome = if s.failing_runs == 0 {
        if s.exhausted {
            "no property violated; the bounded space was exhausted".to_string()
        } else {
            "no property violated".to_string()
        }
    } else {
        let f: Vec<String> = s
            .failures
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!("{} failing ({})", s.failing_runs, f.join(", "))
    };
    outln!("{} ({}): {} runs, {outcome}", s.kernel, s.strategy, s.runs);
    if let Some(f) = &s.first_failure {
        outln!(
            "  first failure: run {}, violated {}; minimised from {} to {} deviations ({} decisions, {} preemptions)",
            f.run,
            f.violations.join(", "),
            f.deviations_before_minimising,
            f.token.rsplit(':').next().map(|s| if s == "s" { 0 } else { s.split('.').count() }).unwrap_or(0),
            f.decisions,
            f.preemptions
        );
        if let Some(v) = &f.verdict {
            for line in common::verdict_text(v).lines().skip(1) {
                outln!("  {line}");
            }
        }
        outln!("  reproduce: {}", f.replay);
        outln!("  replay file: {}", f.replay_file);
    }
}

fn print_table(summaries: &[KernelSummary]) {
    outln!();
    outln!(
        "{:<10} {:>6} {:>8} {:>8} {:>10} {:>10} {:>10}  first failing token",
        "kernel",
        "runs",
        "failing",
        "no-oops",
        "stray-dma",
        "foreign",
        "lost-write"
    );
    for s in summaries {
        let n = |p: &str| s.failures.get(p).copied().unwrap_or(0);
        outln!(
            "{:<10} {:>6} {:>8} {:>8} {:>10} {:>10} {:>10}  {}{}",
            s.kernel,
            s.runs,
            s.failing_runs,
            n("no-oops"),
            n("no-stray-dma"),
            n("no-foreign-dma"),
            n("no-lost-write"),
            s.first_failure
                .as_ref()
                .map(|f| f.token.as_str())
                .unwrap_or("-"),
            if s.exhausted { " (exhaustive)" } else { "" }
        );
    }
}

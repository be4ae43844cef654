//! `smmu-lab explore SCENARIO --kernel K|all --strategy pct|random|dfs --runs N`.

use crate::common::{self, MachineArgs};
use crate::replay_cmd::ReplayFile;
use crate::sim::scenario::{KernelBehaviour, Property, ReplayToken, ScheduleRef};
use crate::CommandOutcome;
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
    /// A scenario file (FILE.toml, docs/scenarios.md), or reboot, kexec, unbind or crash-kexec.
    #[arg(
        default_value = "reboot",
        value_name = "FILE.toml|reboot|kexec|unbind|crash-kexec"
    )]
    scenario: String,
    /// linux-6.1, linux-6.2, quiesce, a kernel spec one of them runs (v6.1+ce31e6ca68bd), or all
    /// (a summary across the three). With a file: a kernel spec in place of the file's.
    /// Default: linux-6.1, or the file's.
    #[arg(long)]
    kernel: Option<String>,
    #[arg(long, value_enum, default_value = "pct")]
    strategy: StrategyName,
    /// Run budget per kernel (random and pct: at most 1000000000; dfs stops by itself when
    /// its bounded space is exhausted).
    #[arg(long, default_value_t = 1000)]
    runs: u64,
    /// PCT: priority change points (bug depth, at least 1; default 3); DFS: preemption bound
    /// (0 allowed: the default schedule only; default 2).
    #[arg(long)]
    depth: Option<usize>,
    /// Worker threads for random and pct (results are identical for any value; only the wall
    /// time changes). A dfs is one search and runs on one thread.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Seed of the exploration: random and pct draw every run's schedule from it, so the same
    /// seed gives the same runs, byte for byte.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Properties checked (repeatable): no-oops, no-stray-dma, no-foreign-dma, no-lost-write,
    /// no-dma-through-freed-domain, no-fault, no-use-after-free, smmu-probed. Default: all but
    /// no-fault and smmu-probed.
    #[arg(long = "property", value_parser = common::parse_property)]
    properties: Vec<Property>,
    /// Keep going after the first failure (count all failures in the budget).
    #[arg(long)]
    keep_going: bool,
    /// Print how often each outcome occurred over the runs (map-path Oops, unmap-path Oops,
    /// USF reports before the Oops, use-after-free, clean). Implies --keep-going.
    #[arg(long)]
    stats: bool,
    /// Directory the replay file of a failure is written to, as smmu-lab-replay-KERNEL.json
    /// (default: the current directory; created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<std::path::PathBuf>,
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
    unexercised_runs: u64,
    failures: std::collections::BTreeMap<String, u64>,
    outcomes: std::collections::BTreeMap<String, u64>,
    #[serde(skip)]
    show_outcomes: bool,
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

pub fn run(args: &Args, json: bool) -> Result<CommandOutcome, String> {
    if crate::file_model::is_file_arg(&args.scenario) {
        return explore_file(args, json);
    }
    let trigger = common::parse_trigger(&args.scenario)?;
    let kernel_arg = args.kernel.as_deref().unwrap_or("linux-6.1");
    let kernels: Vec<KernelBehaviour> = if kernel_arg == "all" {
        KernelBehaviour::ALL.to_vec()
    } else {
        vec![common::parse_kernel(kernel_arg)?]
    };
    common::check_runs(args.runs, args.strategy == StrategyName::Dfs)?;
    if args.jobs == 0 {
        return Err("--jobs must be at least 1".into());
    }
    if args.strategy == StrategyName::Pct && args.depth == Some(0) {
        return Err("--depth must be at least 1 for pct (1: no priority change point)".into());
    }
    if args.strategy == StrategyName::Dfs && args.jobs > 1 {
        eprintln!(
            "smmu-lab: note: --jobs {} has no effect with --strategy dfs: a DFS is one search, made on one thread",
            args.jobs
        );
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
    // Validate the machine once, before any run: options, board, command line, and the
    // scenario itself (a board it cannot run on is an input error, never a violation).
    args.machine.board()?;
    args.machine.params()?;
    let mut scenarios = Vec::new();
    for kernel in kernels.iter().copied() {
        let cfg = args.machine.config(trigger, kernel)?;
        let scn = Arc::new(common::scenario(cfg, &args.properties));
        common::check_scenario(&scn)?;
        scenarios.push((kernel, scn));
    }
    let out_dir = args.out.clone().unwrap_or_default();
    let mut summaries = Vec::new();
    let mut files = Vec::new();
    for (kernel, scn) in scenarios {
        let bar = progress_bar(args.runs, kernel);
        let report = explore::explore(
            scn.clone(),
            ExploreOptions {
                strategy,
                runs: args.runs,
                seed: args.seed,
                jobs: args.jobs,
                stop_at_first: !(args.keep_going || args.stats),
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
            if let RunResult::Completed(Err(e)) = &f.outcome {
                return Err(format!("{kernel}: {e}"));
            }
            let property = f.violations.first().cloned().unwrap_or_default();
            let (schedule, rec) = explore::minimise(
                scn.clone(),
                &f.schedule,
                &property,
                crate::run_cmd::MAX_STEPS,
            );
            let token = ReplayToken {
                trigger,
                kernel,
                schedule: ScheduleRef::Sparse(schedule),
            };
            let path = out_dir.join(format!("smmu-lab-replay-{}.json", kernel.name()));
            let file = ReplayFile::new(
                token.to_string(),
                &args.machine,
                scn.properties
                    .iter()
                    .map(|p| p.name().to_string())
                    .collect(),
            );
            let text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
            // Written once every kernel is explored, so an error leaves nothing half-written.
            files.push((path.clone(), text + "\n"));
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
            unexercised_runs: report.unexercised_runs,
            failures: report.failures.clone(),
            outcomes: report.outcomes.clone(),
            show_outcomes: args.stats,
            exhausted: report.exhausted,
            first_failure: first,
        });
    }
    if !files.is_empty() && !out_dir.as_os_str().is_empty() {
        std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    }
    for (path, text) in files {
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let any_failure = summaries.iter().any(|s| s.failing_runs > 0);
    if json {
        common::print_json(&serde_json::json!({
            "schema": "smmu-lab/explore/v2",
            "scenario": trigger.name(),
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
        CommandOutcome::Violated
    } else {
        CommandOutcome::Clean
    })
}

fn strategy_of(args: &Args) -> Result<Strategy, String> {
    common::check_runs(args.runs, args.strategy == StrategyName::Dfs)?;
    if args.jobs == 0 {
        return Err("--jobs must be at least 1".into());
    }
    if args.strategy == StrategyName::Pct && args.depth == Some(0) {
        return Err("--depth must be at least 1 for pct (1: no priority change point)".into());
    }
    Ok(match args.strategy {
        StrategyName::Pct => Strategy::Pct {
            depth: args.depth.unwrap_or(3),
        },
        StrategyName::Random => Strategy::Random,
        StrategyName::Dfs => Strategy::Dfs {
            preemption_bound: args.depth.unwrap_or(2),
        },
    })
}

/// `explore FILE.toml`: search the file's schedules on its kernel (or `--kernel`).
fn explore_file(args: &Args, json: bool) -> Result<CommandOutcome, String> {
    let strategy = strategy_of(args)?;
    let kernel = args
        .kernel
        .as_deref()
        .map(kernel_history::KernelSpec::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    let mut l = crate::file_model::load(std::path::Path::new(&args.scenario), kernel.as_ref())?;
    if let [p] = args.properties.as_slice() {
        l.restrict(p.name())?;
    } else if !args.properties.is_empty() {
        return Err(
            "with a scenario file, give one --property (or none: the file's [check])".into(),
        );
    }
    let budget = scenario_file::Budget {
        strategy,
        runs: args.runs,
        seed: args.seed,
    };
    let f = crate::file_model::explore_file(&l, budget, args.jobs, !args.keep_going, &|_, _| {});
    let first = f.first.as_ref().map(|(run, violations, schedule)| {
        let token = l.token(ScheduleRef::Sparse(schedule.clone())).to_string();
        crate::json_out::FirstFailure {
            run: *run,
            violations: violations.clone(),
            replay: format!(
                "smmu-lab replay {} {token}",
                common::shell_quote(&args.scenario)
            ),
            token,
        }
    });
    let out = crate::json_out::ExploreFile {
        schema: "smmu-lab/explore-file/v1",
        file: args.scenario.clone(),
        name: l.scenario.name.clone(),
        kernel: l.kernel.to_string(),
        model: l.runnable.model(),
        strategy: strategy.name().to_string(),
        runs: f.runs,
        failing_runs: f.failing_runs,
        exhaustive: f.exhausted,
        failures: f.failures.clone(),
        first_failure: first,
    };
    if json {
        crate::json_out::print(&out)?;
    } else {
        explore_file_text(&out);
    }
    Ok(if out.first_failure.is_some() {
        CommandOutcome::Violated
    } else {
        CommandOutcome::Clean
    })
}

/// An exploration of a file as text.
fn explore_file_text(e: &crate::json_out::ExploreFile) {
    outln!(
        "{} on {} ({}, {}): {} runs, {}",
        e.name,
        e.kernel,
        e.model,
        e.strategy,
        e.runs,
        if e.failing_runs == 0 {
            if e.exhaustive {
                "no property violated; the bounded space was exhausted".to_string()
            } else {
                "no property violated".to_string()
            }
        } else {
            let v: Vec<String> = e
                .failures
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            format!("{} failing ({})", e.failing_runs, v.join(", "))
        }
    );
    if let Some(f) = &e.first_failure {
        outln!(
            "  first failure: run {}, violated {}",
            f.run,
            f.violations.join(", ")
        );
        outln!("  reproduce: {}", f.replay);
    }
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
    let outcome = if s.failing_runs == 0 && s.unexercised_runs == s.runs {
        format!("not exercised: in every run {}", common::NO_DMA)
    } else if s.failing_runs == 0 {
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
    if s.unexercised_runs > 0 && s.unexercised_runs < s.runs {
        outln!(
            "  {} of the runs moved no DMA and exercised no property",
            s.unexercised_runs
        );
    }
    if s.show_outcomes {
        let outcomes = &s.outcomes;
        outln!("  outcomes over {} runs:", s.runs);
        for (k, n) in outcomes {
            outln!(
                "    {n:>7}  {:>5.1}%  {k}",
                100.0 * *n as f64 / s.runs.max(1) as f64
            );
        }
    }
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

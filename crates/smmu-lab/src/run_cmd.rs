//! `smmu-lab run SCENARIO --kernel K [--seed N]`: one run, its log and verdict.

use crate::common::{self, MachineArgs};
use crate::mmio_log_out::MmioLogOut;
use crate::sim::scenario::{Property, ReplayToken, ScheduleRef};
use crate::CommandOutcome;
use explore::{RunResult, Strategy};
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A scenario file (FILE.toml, docs/scenarios.md), or what CPU 1 does while the NIC is
    /// flooded: reboot (reboot -f), kexec, unbind (the SMMU), crash-kexec (a panic into the
    /// kdump kernel).
    #[arg(
        default_value = "reboot",
        value_name = "FILE.toml|reboot|kexec|unbind|crash-kexec"
    )]
    scenario: String,
    /// Kernel behaviour: linux-6.1 (the bug), linux-6.2 (the fix), quiesce (ours), or a kernel
    /// spec (v6.1, v6.1+ce31e6ca68bd, v6.2-ce31e6ca68bd; smmu-lab kernel list). With a file:
    /// a kernel spec in place of the file's. Default: linux-6.1, or the file's.
    #[arg(long)]
    kernel: Option<String>,
    /// Seed of the random interleaving; the same seed gives the same run, byte for byte.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Properties that decide the exit code (repeatable): no-oops, no-stray-dma, no-foreign-dma, no-lost-write,
    /// no-dma-through-freed-domain, no-fault, no-use-after-free, smmu-probed. Default: all but
    /// no-fault and smmu-probed.
    #[arg(long = "property", value_parser = common::parse_property)]
    properties: Vec<Property>,
    #[command(flatten)]
    machine: MachineArgs,
    /// Also write the run as a self-contained HTML page (timeline, log, verdict).
    #[arg(long, value_name = "FILE.html")]
    report: Option<std::path::PathBuf>,
    /// Also write every SMMU register access and queue command, with phase markers, to FILE
    /// (format: docs/mmio-log.md).
    #[arg(long, value_name = "FILE")]
    mmio_log: Option<std::path::PathBuf>,
}

pub fn run(args: &Args, json: bool) -> Result<CommandOutcome, String> {
    if crate::file_model::is_file_arg(&args.scenario) {
        if args.mmio_log.is_some() {
            return Err("--mmio-log is not available for scenario files yet".into());
        }
        return run_file(args, json);
    }
    let mmio_log = args
        .mmio_log
        .as_deref()
        .map(MmioLogOut::check)
        .transpose()?;
    let trigger = common::parse_trigger(&args.scenario)?;
    let kernel = common::parse_kernel(args.kernel.as_deref().unwrap_or("linux-6.1"))?;
    let mut cfg = args.machine.config(trigger, kernel)?;
    cfg.mmio_log = mmio_log.is_some();
    let scn = Arc::new(common::scenario(cfg, &args.properties));
    let schedule = ScheduleRef::Seeded {
        strategy: Strategy::Random,
        seed: args.seed,
    };
    let rec = explore::run_one(scn.clone(), Strategy::Random, args.seed, MAX_STEPS);
    let token = ReplayToken {
        trigger,
        kernel,
        schedule,
    };
    show(
        &scn,
        &token,
        &args.machine,
        rec.outcome,
        &rec.violations,
        json,
        &Files {
            report: args.report.as_deref(),
            mmio_log: mmio_log.as_ref(),
        },
    )
}

/// `run FILE.toml`: one run of a scenario file on the random schedule of `--seed`.
fn run_file(args: &Args, json: bool) -> Result<CommandOutcome, String> {
    let kernel = args
        .kernel
        .as_deref()
        .map(kernel_history::KernelSpec::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    let l = crate::file_model::load(std::path::Path::new(&args.scenario), kernel.as_ref())?;
    let schedule = ScheduleRef::Seeded {
        strategy: Strategy::Random,
        seed: args.seed,
    };
    let r = crate::file_model::run_file(&l, &schedule)?;
    show_file_run(&args.scenario, &l, schedule, &r, json, true)
}

/// Print one run of a file (shared by run and replay): text, or `smmu-lab/run-file/v1`.
/// `replay_line`: the text ends with the command that reproduces the run.
pub fn show_file_run(
    file: &str,
    l: &crate::file_model::Loaded,
    schedule: ScheduleRef,
    r: &crate::file_model::RunText,
    json: bool,
    replay_line: bool,
) -> Result<CommandOutcome, String> {
    let token = l.token(schedule).to_string();
    let replay = format!("smmu-lab replay {} {token}", common::shell_quote(file));
    if json {
        crate::json_out::print(&crate::json_out::FileRun {
            schema: "smmu-lab/run-file/v1",
            file: file.to_string(),
            kernel: l.kernel.to_string(),
            model: r.model,
            token,
            replay,
            violations: &r.violations,
            verdict: r.verdict.as_ref(),
            findings: &r.findings,
            log: &r.log,
        })?;
    } else {
        out!("{}", r.text);
        if r.violations.is_empty() {
            outln!("properties: all held");
        } else {
            outln!("properties violated: {}", r.violations.join(", "));
        }
        if replay_line {
            outln!("replay: {replay}");
        }
    }
    Ok(if r.violations.is_empty() {
        CommandOutcome::Clean
    } else {
        CommandOutcome::Violated
    })
}

/// Files a run writes besides its output: the HTML report and the MMIO log.
pub struct Files<'a> {
    pub report: Option<&'a std::path::Path>,
    pub mmio_log: Option<&'a MmioLogOut>,
}

/// Upper bound of scheduling decisions in one run.
pub const MAX_STEPS: usize = 2_000_000;

/// Print one run (shared by run and replay).
pub fn show(
    scn: &crate::sim::scenario::RebootScenario,
    token: &ReplayToken,
    machine: &MachineArgs,
    outcome: RunResult<
        Result<crate::sim::scenario::RebootOutcome, crate::sim::scenario::MachineSetupError>,
    >,
    violations: &[String],
    json: bool,
    files: &Files<'_>,
) -> Result<CommandOutcome, String> {
    let o = match outcome {
        RunResult::Completed(Ok(o)) => o,
        RunResult::Completed(Err(e)) => return Err(e.to_string()),
        RunResult::Failed(p) => return Err(format!("internal error (please report): {p}")),
    };
    let replay = format!("smmu-lab replay {token}{}", machine.replay_suffix());
    if let (Some(out), Some(text)) = (files.mmio_log, &o.mmio_log) {
        out.write(text)?;
    }
    if let Some(path) = files.report {
        let html = crate::report::html(&o, &token.to_string(), &replay, violations);
        std::fs::write(path, html).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if json {
        let mut v = common::run_json(&token.to_string(), &o, violations, &scn.properties);
        v["replay"] = serde_json::Value::String(replay);
        common::print_json(&v)?;
    } else {
        out!("{}", o.log);
        outln!();
        out!("{}", common::verdict_text(&o.verdict));
        if !violations.is_empty() {
            outln!("properties violated: {}", violations.join(", "));
        } else if o.verdict.dma_transactions == 0 {
            outln!("properties: not exercised: {}", common::NO_DMA);
        } else {
            outln!("properties: all held");
        }
        outln!("hash: {:016x}", crate::sim::scenario::outcome_hash(&o));
        outln!("replay: {replay}");
    }
    Ok(if violations.is_empty() {
        CommandOutcome::Clean
    } else {
        CommandOutcome::Violated
    })
}

//! `smmu-lab demo`: the seed's `reboot -f` under ping flood on the built-in board, under the
//! buggy kernel, the fixed kernel and our policy, with the verdicts side by side.

use crate::common::{self, MachineArgs};
use crate::sim::scenario::{KernelBehaviour, Property, ReplayToken, ScheduleRef, Trigger, Verdict};
use crate::CommandOutcome;
use explore::{ExploreOptions, RunResult, Strategy};
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs tried per kernel (PCT, stops at the first violation; 1 to 1000000000).
    #[arg(long, default_value_t = 200)]
    runs: u64,
    /// Seed of each kernel's PCT search; the same seed gives the same demo, byte for byte.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    machine: MachineArgs,
}

#[derive(Debug, serde::Serialize)]
struct Row {
    kernel: String,
    runs: u64,
    violations: Vec<String>,
    verdict: Verdict,
    replay: String,
}

pub fn run(args: &Args, json: bool) -> Result<CommandOutcome, String> {
    common::check_runs(args.runs, false)?;
    if args.machine.build.is_some() {
        return Err(
            "--build does not apply to demo: it compares the policies, each on a build of its own release (use run or explore with --build)"
                .into(),
        );
    }
    let mut rows = Vec::new();
    let mut crash_log = None;
    for kernel in KernelBehaviour::ALL {
        let cfg = args.machine.config(Trigger::Reboot, kernel)?;
        let scn = Arc::new(common::scenario(cfg, &Property::DEFAULT));
        common::check_scenario(&scn)?;
        let report = explore::explore(
            scn.clone(),
            ExploreOptions {
                strategy: Strategy::Pct { depth: 3 },
                runs: args.runs,
                seed: args.seed,
                jobs: 1,
                stop_at_first: true,
                max_steps: crate::run_cmd::MAX_STEPS,
            },
            &|_, _| {},
        );
        // Show the first violation, or the last run when every run held.
        let rec = match report.first_failure {
            Some(f) => {
                let property = f.violations.first().cloned().unwrap_or_default();
                let (schedule, rec) = explore::minimise(
                    scn.clone(),
                    &f.schedule,
                    &property,
                    crate::run_cmd::MAX_STEPS,
                );
                rec.map(|r| (schedule, r))
            }
            None => {
                let r = explore::run_one(
                    scn.clone(),
                    Strategy::Pct { depth: 3 },
                    args.seed,
                    crate::run_cmd::MAX_STEPS,
                );
                Some((r.schedule.clone(), r))
            }
        };
        let Some((schedule, rec)) = rec else {
            return Err(format!("{kernel}: the failing run could not be replayed"));
        };
        let o = match rec.outcome {
            RunResult::Completed(Ok(o)) => o,
            RunResult::Completed(Err(e)) => return Err(format!("{kernel}: {e}")),
            RunResult::Failed(p) => {
                return Err(format!("{kernel}: internal error (please report): {p}"))
            }
        };
        let token = ReplayToken {
            trigger: Trigger::Reboot,
            kernel,
            schedule: ScheduleRef::Sparse(schedule),
        };
        if kernel == KernelBehaviour::Linux61 {
            crash_log = Some(o.log.clone());
        }
        rows.push(Row {
            kernel: kernel.name().into(),
            runs: report.runs,
            violations: rec.violations.clone(),
            verdict: o.verdict,
            replay: format!("smmu-lab replay {token}{}", args.machine.replay_suffix()),
        });
    }
    if json {
        common::print_json(&serde_json::json!({
            "schema": "smmu-lab/demo/v2",
            "kernels": rows,
        }))?;
        return Ok(CommandOutcome::Clean);
    }
    outln!(
        "smmu-lab demo: reboot -f during a ping flood on {}",
        args.machine.board()?.hardware_name()
    );
    outln!("(the arm-smmu shutdown of Linux 6.1, of 6.2 with the seed's fix, and of our quiesce policy)");
    outln!(
        "(all three on the {} DMA core: only the shutdown policy differs{})",
        args.machine.dma_core,
        if args.machine.dma_core == "linux" {
            "; --dma-core safe compares them on smmu-lab's safe core"
        } else {
            ""
        }
    );
    outln!();
    if let Some(log) = crash_log {
        outln!("linux-6.1, from `reboot -f` on:");
        let mut on = false;
        for line in log.lines() {
            on |= line.contains("kvm: exiting hardware virtualization");
            if on {
                outln!("  {line}");
            }
        }
        outln!();
    }
    let cell = |r: &Row, f: &dyn Fn(&Verdict) -> String| f(&r.verdict);
    let header: Vec<String> = rows.iter().map(|r| r.kernel.clone()).collect();
    outln!(
        "{:<26}{}",
        "",
        header
            .iter()
            .map(|h| format!("{h:<22}"))
            .collect::<String>()
    );
    let line = |name: &str, f: &dyn Fn(&Verdict) -> String| {
        outln!(
            "{:<26}{}",
            name,
            rows.iter()
                .map(|r| format!("{:<22}", cell(r, f)))
                .collect::<String>()
        );
    };
    line("oops", &|v| match &v.oops {
        Some(o) => format!("yes, {}", o.dma_call.trim_end_matches("_attrs")),
        None => "no".into(),
    });
    line("stray DMA (writes/reads)", &|v| {
        format!("{}/{}", v.stray_dma_writes, v.stray_dma_reads)
    });
    line("foreign DMA", &|v| v.foreign_dma.to_string());
    line("freed-domain DMA", &|v| v.freed_domain_dma.to_string());
    line("blocked transactions", &|v| {
        v.blocked_transactions.to_string()
    });
    line("global faults logged", &|v| {
        v.global_faults_logged.to_string()
    });
    line("use-after-free", &|v| v.use_after_free.to_string());
    line("NIC DMA aborts (TX/RX)", &|v| {
        if !v.execution.measures_nic() {
            return "not modelled".to_string();
        }
        format!(
            "{}/{}{}",
            v.nic_errors.tx_dma_aborts,
            v.nic_errors.rx_dma_aborts,
            if v.nic_errors.tx_ring_stalled {
                ", TX stopped"
            } else {
                ""
            }
        )
    });
    line("packets delivered/dropped", &|v| {
        format!("{}/{}", v.packets_delivered, v.packets_dropped)
    });
    line("shutdown", &|v| {
        if v.completed {
            format!("done, {} µs", v.shutdown_time_ns / 1000)
        } else {
            "kernel panic".into()
        }
    });
    outln!(
        "{:<26}{}",
        "runs until shown",
        rows.iter()
            .map(|r| format!("{:<22}", r.runs))
            .collect::<String>()
    );
    outln!();
    for r in &rows {
        let what = if r.violations.is_empty() && r.verdict.dma_transactions == 0 {
            format!("exercised no property: {}", common::NO_DMA)
        } else if r.violations.is_empty() {
            "held every property".to_string()
        } else {
            format!("violated {}", r.violations.join(", "))
        };
        outln!("{} {what}: {}", r.kernel, r.replay);
    }
    Ok(CommandOutcome::Clean)
}

//! `smmu-lab kernel list|show SPEC`: kernels as a version preset plus named fixes.

use crate::CommandOutcome;
use kernel_history::{Fix, KernelSpec, Origin, Preset, SmmuOff, Switches};
use scenario_file::today;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: KernelCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KernelCommand {
    /// The version presets and every fix the model knows.
    List,
    /// A kernel spec's fixes, the layer switches they set, and whether today's machine runs it.
    #[command(
        after_help = "Examples:\n  smmu-lab kernel show v6.1\n  smmu-lab kernel show v6.1+ce31e6ca68bd\n  smmu-lab kernel show v6.2-ce31e6ca68bd+quiesce"
    )]
    Show {
        /// PRESET{+FIX|-FIX}: a version (v6.0, v6.1, v6.2, v6.12, current) with fixes added
        /// or removed by 12-hex commit id or our own change's name.
        spec: String,
    },
}

fn origin(f: Fix) -> String {
    match f.origin() {
        Origin::Linux { landed_in, .. } => format!("Linux {landed_in}"),
        Origin::Ours => "smmu-lab".into(),
    }
}

pub fn run(args: &Args, json: bool) -> Result<CommandOutcome, String> {
    match &args.command {
        KernelCommand::List => list(json),
        KernelCommand::Show { spec } => show(spec, json),
    }
}

fn list(json: bool) -> Result<CommandOutcome, String> {
    if json {
        let presets: Vec<_> = Preset::ALL
            .iter()
            .map(|p| serde_json::json!({"name": p.name(), "fixes": p.fixes().iter().map(|f| f.id()).collect::<Vec<_>>()}))
            .collect();
        let fixes: Vec<_> = Fix::ALL
            .iter()
            .map(|f| serde_json::json!({"id": f.id(), "subject": f.subject(), "origin": origin(*f), "switches": f.switches()}))
            .collect();
        crate::common::print_json(&serde_json::json!({
            "schema": "smmu-lab/kernels/v1",
            "presets": presets,
            "fixes": fixes,
        }))?;
        return Ok(CommandOutcome::Clean);
    }
    outln!("Presets (a release is the set of the model's fixes it contains):");
    for p in Preset::ALL {
        let fixes: Vec<&str> = p.fixes().iter().map(|f| f.id()).collect();
        let alias = if p == Preset::V6_13 { " (current)" } else { "" };
        outln!(
            "  {:<6}{alias:<10} {}",
            p.name(),
            if fixes.is_empty() {
                "(none)".to_string()
            } else {
                fixes.join(" ")
            }
        );
    }
    outln!();
    outln!("Fixes:");
    for f in Fix::ALL {
        outln!("  {:<18} {:<12} {}", f.id(), origin(f), f.subject());
        outln!("  {:<18} {:<12} switches {}", "", "", f.switches());
    }
    Ok(CommandOutcome::Clean)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The probe path's switches of the real crates, one line each: layer, what, on.
fn probe_switches(sw: &Switches) -> [(&'static str, &'static str, bool); 9] {
    [
        (
            "arm-smmu",
            "device_group() under stream_map_mutex",
            sw.group_lookup_under_stream_map_mutex,
        ),
        (
            "arm-smmu",
            "device_group() error return unlocks",
            sw.unlock_on_group_conflict,
        ),
        (
            "iommu",
            "every probe serialised by iommu_probe_device_lock",
            sw.probe_serialised,
        ),
        (
            "iommu",
            "default domain allocated under group->mutex",
            sw.default_domain_under_group_mutex,
        ),
        (
            "iommu",
            "attach and direct mappings under group->mutex",
            sw.attach_under_group_mutex,
        ),
        (
            "iommu",
            "claim_dma_owner error puts the group",
            sw.claim_owner_puts_group_on_error,
        ),
        (
            "arm-smmu",
            "clients deferred until the SMMU is bound",
            sw.defer_client_until_bound,
        ),
        (
            "dma-iommu",
            "IOVA domain init under the cookie mutex",
            sw.iova_domain_init_under_cookie_mutex,
        ),
        (
            "iova",
            "flush-queue teardown waits for its timer",
            sw.fq_teardown_waits_for_timer,
        ),
    ]
}

fn show(spec: &str, json: bool) -> Result<CommandOutcome, String> {
    let kernel = KernelSpec::parse(spec).map_err(|e| e.to_string())?;
    let sw = Switches::of(&kernel);
    let runs_today = today::behaviour(&kernel);
    let smmu_off = match sw.smmu_off {
        SmmuOff::Bypass => "sCR0.CLIENTPD (every stream bypasses)",
        SmmuOff::BlockStreams => "every S2CR faults (streams blocked)",
    };
    if json {
        let fixes: Vec<_> = kernel
            .fixes()
            .iter()
            .map(|f| {
                serde_json::json!({
                    "id": f.id(),
                    "subject": f.subject(),
                    "origin": origin(*f),
                    "added": kernel.added.contains(f),
                })
            })
            .collect();
        crate::common::print_json(&serde_json::json!({
            "schema": "smmu-lab/kernel/v1",
            "kernel": kernel.to_string(),
            "preset": kernel.preset.name(),
            "fixes": fixes,
            "removed": kernel.removed.iter().map(|f| f.id()).collect::<Vec<_>>(),
            "switches": {
                "iommu": {
                    "unregister_releases_devices": sw.unregister_releases_devices,
                    "unguarded_dma_domain": sw.unguarded_dma_domain,
                    "map_sg_signed_result_check": sw.map_sg_signed_result_check,
                },
                "probe": probe_switches(&sw).iter().map(|(layer, what, on)| serde_json::json!({"layer": layer, "switch": what, "on": on})).collect::<Vec<_>>(),
                "arm_smmu": {
                    "shutdown_runs_remove": sw.shutdown_runs_remove,
                    "zero_tlbi_writes": sw.zero_tlbi_writes,
                    "smmu_off": match sw.smmu_off { SmmuOff::Bypass => "bypass", SmmuOff::BlockStreams => "block-streams" },
                },
                "arm_smmu_v3": {
                    "shutdown_runs_remove": sw.v3_shutdown_runs_remove,
                    "kdump_aborts_before_disable": sw.v3_kdump_aborts_before_disable,
                    "kdump_keeps_smmu": sw.v3_kdump_keeps_smmu,
                },
            },
            "runs_today_as": runs_today.as_ref().ok().map(|b| b.name()),
            "not_today_because": runs_today.as_ref().err().map(|e| e.to_string()),
        }))?;
        return Ok(CommandOutcome::Clean);
    }
    outln!("kernel {kernel}");
    outln!("  fixes, in history order:");
    if kernel.fixes().is_empty() {
        outln!("    (none)");
    }
    for f in kernel.fixes() {
        let how = if kernel.added.contains(&f) {
            "added"
        } else {
            "in the preset"
        };
        outln!("    {:<18} {}  [{}, {how}]", f.id(), f.subject(), origin(f));
    }
    for f in &kernel.removed {
        outln!(
            "    -{:<17} {}  [{}, removed]",
            f.id(),
            f.subject(),
            origin(*f)
        );
    }
    outln!("  switches:");
    outln!(
        "    iommu     unregister releases the instance's devices: {}",
        yes_no(sw.unregister_releases_devices)
    );
    outln!(
        "    iommu     DMA API reads the group unguarded (a released group is Linux's oops): {}",
        yes_no(sw.unguarded_dma_domain)
    );
    outln!(
        "    iommu     dma_map_sg checks the mapping's result signed: {}",
        yes_no(sw.map_sg_signed_result_check)
    );
    outln!(
        "    arm-smmu  .shutdown runs .remove (unregisters): {}",
        yes_no(sw.shutdown_runs_remove)
    );
    outln!("    arm-smmu  turning the SMMU off writes: {smmu_off}");
    outln!(
        "    arm-smmu  TLB maintenance registers written with the constant 0: {}",
        yes_no(sw.zero_tlbi_writes)
    );
    outln!(
        "    arm-smmu-v3  .shutdown runs .remove (unregisters): {}",
        yes_no(sw.v3_shutdown_runs_remove)
    );
    outln!(
        "    arm-smmu-v3  kdump kernel sets GBPA.ABORT before disabling an enabled SMMU: {}",
        yes_no(sw.v3_kdump_aborts_before_disable)
    );
    outln!(
        "    arm-smmu-v3  kdump kernel resets and keeps the SMMU, event queue off: {}",
        yes_no(sw.v3_kdump_keeps_smmu)
    );
    for (layer, what, on) in probe_switches(&sw) {
        outln!("    {layer:<9} {what}: {}", yes_no(on));
    }
    outln!("  real stack: runs every kernel");
    match runs_today {
        Ok(b) => {
            outln!("  reboot machine: runs it as --kernel {b}");
            // Today's behaviours fix both drivers' policies together.
            if sw.v3_shutdown_policy().ok() != Some(crate::sim::v3::driver_of(b).1) {
                outln!(
                    "  (on SMMUv3 boards --kernel {b} runs arm-smmu-v3 {} 32ea2c57dc21, unlike this kernel)",
                    if sw.v3_shutdown_runs_remove { "with" } else { "without" }
                );
            }
        }
        Err(e) => outln!("  reboot machine: cannot run it yet: {e}"),
    }
    Ok(CommandOutcome::Clean)
}

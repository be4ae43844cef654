//! kdump on SMMUv3 (issue 14's corpus, b63b3439b856 and 3f54c447df34): QEMU's virt board with a
//! flooded PCI function at 00:01.0 (stream ID 0x8) whose driver never stops it, and a crash
//! kexec. The capture kernel's arm-smmu-v3 finds the SMMU enabled with the crashed kernel's
//! stream table, while the function's receive DMA is still in flight.
//!
//! * Before b63b3439b856 the reset leaves GBPA as it is: on QEMU (GBPA bypass) DMA that arrives
//!   while CR0.SMMUEN = 0 goes to the IOVA as a physical address (stray).
//! * b63b3439b856: GBPA.ABORT, SMMU disabled, probe -EBUSY: nothing stray, but the capture kernel
//!   has no SMMU (`smmu-probed` fails).
//! * 3f54c447df34: GBPA.ABORT, full reset, the event queue off: nothing stray, probed, and the
//!   crashed kernel's faults are not reported.

use arm_smmu_v3::EnabledAtProbe;
use explore::{ExploreOptions, Report, RunResult, Strategy};
use sim::scenario::{
    KernelBehaviour, Property, RebootConfig, RebootOutcome, RebootScenario, ScenarioError, Trigger,
};
use std::sync::Arc;

const NIC: &str = "0000:00:01.0";

fn board() -> sim::Board {
    let mut b = sim::Board::from_dtb(&lab_fixtures::qemu_virt_smmuv3_dtb()).unwrap();
    b.add_pci_function(&"00:01.0=e1000e".parse().unwrap())
        .unwrap();
    b
}

fn scenario(at_probe: EnabledAtProbe) -> Arc<RebootScenario> {
    let mut config = RebootConfig::new(KernelBehaviour::Linux62, board());
    config.trigger = Trigger::CrashKexec;
    config.traffic = vec![NIC.to_string()];
    config.v3_enabled_at_probe = at_probe;
    let mut properties = Property::DEFAULT.to_vec();
    properties.push(Property::SmmuProbed);
    Arc::new(RebootScenario { config, properties })
}

type Rep = Report<RunResult<Result<RebootOutcome, ScenarioError>>>;

fn explore(scn: &Arc<RebootScenario>, runs: u64) -> Rep {
    explore::explore(
        scn.clone(),
        ExploreOptions {
            strategy: Strategy::Random,
            runs,
            seed: 1,
            max_steps: 2_000_000,
            ..Default::default()
        },
        &|_, _| {},
    )
}

#[test]
fn probe() {
    for at in [
        EnabledAtProbe::ResetAsFound,
        EnabledAtProbe::KdumpAbortAndFail,
        EnabledAtProbe::AbortThenReset,
    ] {
        let rep = explore(&scenario(at), 200);
        eprintln!("{at:?}: {:?}", rep.failures);
        if let Some(f) = &rep.first_failure {
            if let RunResult::Completed(Ok(o)) = &f.outcome {
                eprintln!(
                    "{}\n{:?}",
                    o.log.lines().rev().take(12).collect::<Vec<_>>().join("\n"),
                    o.verdict
                );
            }
        }
    }
}
